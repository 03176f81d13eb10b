// Package engine opens WebSocket connections at scale on nbio's event loop
// and drives each connection's flow, recording every event into a
// stats.Recorder.
//
//	eng, err := engine.New(cfg)         // validates cfg, fills defaults; nothing is dialed yet
//	if err != nil { ... }
//	res, err := eng.Run(ctx, progress)  // until cfg.Duration is over or ctx is done
//	// res is the finished *stats.Result: counts, latencies, timeline, the
//	// configuration that ran, the ramp, error samples, this process's CPU and RSS.
//
// Run hands every interval (normally a second) of counters and histograms to
// the sinks given to it, in order, from one goroutine, so a caller can show
// progress, stream intervals to another process or write a histogram log
// while the run goes on. The engine changes no process-wide setting unless
// Config.TuneProcess asks it to (the CLI does: the open-file limit, nbio's
// connection table, returning the ramp's memory to the OS), and it never
// configures nbio's logger: call QuietLogs once at start to keep nbio's
// start/stop lines off stdout.
//
// Design, in the order a connection meets it:
//   - A pacer hands out connection numbers at cfg.ConnectRate; each waits for
//     one of cfg.HandshakeConcurrency handshake slots, then a goroutine of its
//     own does the blocking parts (TCP connect from the chosen source
//     address, TLS), writes the upgrade request and hands the socket to nbio.
//     At most cfg.HandshakeConcurrency handshakes are in flight, the wait for
//     the 101 included, and nothing else caps them; each has its own timer.
//   - nbio's pollers read; the connection parses the 101 and then frames
//     itself (package wsproto), on the poller goroutine, with no copy when a
//     frame arrives whole.
//   - Senders (one goroutine each, a few per process) keep a heap of
//     per-connection send times on a grid spread evenly across connections
//     (open model) and write each message on schedule, stamping it with the
//     connection and sequence number; replies are matched by that id. Latency
//     counts from the scheduled time (corrected for coordinated omission) and
//     from the actual send (uncorrected).
//   - Stats shards are per poller and per sender, so the hot path never
//     shares a lock across goroutines.
//
// With Config.Plan set, the engine runs a scenario instead of the echo flow:
// a controller (control.go) opens and retires connections so that the open
// count follows the plan's phases, and each connection runs its flow's steps
// as an event-driven state machine (flow.go) whose timers live on the
// senders (flowtimer.go). Each step's latency is recorded under its name,
// corrected and uncorrected (stats.Shard.Step):
//
//	plan, err := scenario.Load("chat.yaml")
//	err = plan.Override(scenario.Overrides{Target: url})
//	eng, err := engine.New(engine.Config{Plan: plan})
package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"

	"github.com/wsload/wsload/engine/hostlimits"
	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/internal/buildinfo"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// Engine runs one load test. Use New, then Run once.
type Engine struct {
	cfg    Config
	target *url.URL
	addrs  []string // the target's resolved host:port, connections spread over them
	rec    *stats.Recorder
	echo   scenario.Echo
	op     wsproto.Opcode
	tlsCfg *tls.Config

	base    time.Time // monotonic origin of all int64 nanosecond times
	period  int64     // ns between two sends of one connection; 0 = idle
	nb      *nbio.Engine
	senders []*sender
	dialSh  *stats.Shard

	mu    sync.Mutex
	conns []*conn // by connection number; nil until dialed

	sem      chan struct{} // handshakes in flight
	stopping atomic.Bool   // no new sends; closing
	closing  atomic.Int32  // close code being sent at the end (1000 or 1001)
	fdLimit  atomic.Bool   // an EMFILE was seen: stop dialing
	estab    atomic.Int64  // connections established so far
	rampNS   atomic.Int64  // when the last requested connection was established
	gate     rampGate      // Config.SendAfterRamp (afterramp.go)

	samples sync.Map // reason → first error text seen, for the report

	tmplOnce  sync.Once    // echoTemplate (reply.go)
	tmpl      []byte       // the echo message of connection 0, sequence 0
	endReason atomic.Value // string: why the run ended (stats.End*), set by Run

	plain [][]byte // per poller: plaintext buffer for wss reads, made on first use

	ran   atomic.Bool                // Run was called: an Engine runs once
	sinks []func(iv *stats.Interval) // the Run's own aggregate, then the caller's sinks

	unknown *stats.Backend // connections' backend until known; nil = no per-backend breakdown

	// Scenario runs (control.go, flow.go); plan is nil for the echo flow.
	plan     *scenario.Plan
	dq       *dialQueue
	active   atomic.Int64 // logical connections running (dialing, open, reconnecting)
	newFails atomic.Int64 // new connections whose first dial failed
	opened   int          // connections opened so far; controller goroutine only
	seed     uint64       // of the per-connection random sources

	// holdSend, when set (tests only), runs in the sender before each send:
	// it lets a test hold the generator back and check that the corrected
	// latency includes the lateness and the uncorrected one does not.
	holdSend func()
	// slowWrite, when set (tests only), runs inside each scenario send's
	// write, after its clock was read: a write that takes long, which the
	// uncorrected latency must include, as the echo flow's does.
	slowWrite func()
	// stop, when set (tests only), ends the run once closed, as if its
	// duration were over (drain, close 1000): a test's run lasts until what
	// it waits for has happened, with the duration as the deadline.
	stop chan struct{}
	// planClock, when set (tests only), is the time into the plan that the
	// controller follows instead of the time since the start, so a test can
	// walk through the phases at the pace the machine allows.
	planClock func() time.Duration
}

// shards is the number of stats shards a run records into: one per poller,
// one per sender, one for the dialers.
func shards(cfg Config) int {
	p := cfg.Pollers
	if p <= 0 || p > MaxPollers { // out of range: New refuses it; size for the default meanwhile
		p = runtime.GOMAXPROCS(0)
	}
	return p + numSenders(p) + 1
}

func numSenders(pollers int) int { return max(1, pollers) }

// New validates cfg, fills in its defaults and prepares a run with its own
// recorder; nothing is dialed before Run.
func New(cfg Config) (*Engine, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	rec := stats.NewRecorder(shards(cfg))
	e := &Engine{cfg: cfg, target: u, rec: rec, echo: scenario.Echo{Size: cfg.Size, Binary: cfg.Binary}, op: wsproto.OpText}
	if cfg.Binary {
		e.op = wsproto.OpBinary
	}
	if cfg.Rate > 0 {
		e.period = int64(float64(time.Second) / cfg.Rate)
		if e.period < 1000 {
			return nil, fmt.Errorf("engine: rate %v per connection is above one message per microsecond", cfg.Rate)
		}
	}
	if u.Scheme == "wss" {
		e.tlsCfg = &tls.Config{InsecureSkipVerify: cfg.InsecureTLS, ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}
		if p := cfg.Plan; p != nil {
			if p.TLS.ServerName != "" {
				e.tlsCfg.ServerName = p.TLS.ServerName
			}
			if p.TLS.CAFile != "" {
				pem, err := os.ReadFile(p.TLS.CAFile)
				if err != nil {
					return nil, fmt.Errorf("engine: tls ca_file: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("engine: tls ca_file %s: no PEM certificate in it", p.TLS.CAFile)
				}
				e.tlsCfg.RootCAs = pool
			}
		}
	}
	e.plan = cfg.Plan
	e.seed = rand.Uint64()
	e.closing.Store(1000)
	if cfg.BackendFrom.Enabled() {
		e.unknown = rec.Backend("")
	}
	return e, nil
}

// Config returns the configuration as validated by New, defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// SampleErrors returns one example error text per failure reason, so a report
// can say what "tls" or "http_502" meant in this run.
func (e *Engine) SampleErrors() map[string]string {
	out := map[string]string{}
	e.samples.Range(func(k, v any) bool { out[k.(string)] = v.(string); return true })
	return out
}

// Ramp is the time from the start until every requested connection was
// established; ok is false when not all of them were.
func (e *Engine) Ramp() (d time.Duration, ok bool) {
	ns := e.rampNS.Load()
	return time.Duration(ns), ns > 0
}

// Open is the number of connections open right now; safe to call while Run
// runs.
func (e *Engine) Open() int64 { return e.rec.Open() }

func (e *Engine) now() int64 { return int64(time.Since(e.base)) }

// Run performs the load test: pre-flight checks, ramp, steady state, drain,
// close, and returns its Result. It returns when cfg.Duration has passed
// (then the connections are closed with 1000) or ctx is done (1001); an
// interrupted run's Result holds what was measured until then. Each sink
// receives every interval in order, from one goroutine, the last one
// (usually shorter) before Run returns; a sink must not modify or keep the
// interval. A failed pre-flight check, a target that does not resolve, or ctx
// ending while waiting for Config.StartAt returns an error and no Result;
// failures of individual connections are recorded in the Result, not
// returned. Run can be called once.
func (e *Engine) Run(ctx context.Context, sinks ...func(iv *stats.Interval)) (*stats.Result, error) {
	if e.ran.Swap(true) {
		return nil, errors.New("engine: Run called twice on one Engine")
	}
	if err := e.preflight(); err != nil {
		return nil, err
	}
	addrs, err := resolve(ctx, e.target)
	if err != nil {
		return nil, err
	}
	e.addrs = addrs

	if wait := time.Until(e.cfg.StartAt); !e.cfg.StartAt.IsZero() && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("engine: interrupted while waiting for the start at %s: %w", e.cfg.StartAt.Format(time.RFC3339), ctx.Err())
		case <-t.C:
		}
	}
	use0 := selfUsage()

	e.nb = nbio.NewEngine(nbio.Config{
		Name:    "wsload",
		NPoller: e.cfg.Pollers,
		// One read buffer per poller, not per connection: idle connections cost
		// no buffer memory.
		ReadBufferSize: 64 << 10,
		// Bytes a connection may hold waiting to be written beyond what the
		// kernel's socket buffer takes: a server that stops reading makes
		// nbio close the connection (ErrOverflow, counted as backpressure)
		// instead of growing wsload's memory without bound.
		MaxWriteBufferSize: e.cfg.MaxWriteBuffer,
	})
	e.nb.OnData(e.onData)
	e.nb.OnClose(e.onClose)
	if err := e.nb.Start(); err != nil {
		return nil, fmt.Errorf("engine: start event loop: %w", err)
	}

	e.base = time.Now()
	e.rec.SetStart(e.base)
	agg := stats.NewAggregate(e.base)
	e.sinks = append([]func(*stats.Interval){agg.Add}, sinks...)
	if e.plan == nil {
		e.conns = make([]*conn, e.cfg.Connections)
	} else {
		e.dq = newDialQueue(e)
	}
	e.sem = make(chan struct{}, e.cfg.HandshakeConcurrency)
	e.dialSh = e.rec.Shard(e.cfg.Pollers + numSenders(e.cfg.Pollers))
	e.plain = make([][]byte, e.cfg.Pollers)
	e.senders = make([]*sender, numSenders(e.cfg.Pollers))
	for i := range e.senders {
		e.senders[i] = newSender(e, e.rec.Shard(e.cfg.Pollers+i))
	}

	runCtx, cancelRun := context.WithTimeout(ctx, e.cfg.Duration)
	defer cancelRun()
	if e.stop != nil {
		go func() {
			select {
			case <-e.stop:
				cancelRun()
			case <-runCtx.Done():
			}
		}()
	}

	var wg sync.WaitGroup
	tickDone := make(chan struct{})
	go func() { defer close(tickDone); e.tick(runCtx) }()
	for _, s := range e.senders {
		wg.Add(1)
		go func() { defer wg.Done(); s.run(runCtx) }()
	}
	dialDone := make(chan struct{})
	go func() {
		defer close(dialDone)
		if e.plan != nil {
			e.control(runCtx)
		} else {
			e.ramp(runCtx)
		}
	}()
	if e.plan == nil {
		go e.endWhenAllClosed(runCtx, dialDone, cancelRun)
	}

	<-runCtx.Done()
	var ph phases
	ph.loadEnd = time.Now() // the load window ends: no scheduled send after this
	interrupted := ctx.Err() != nil
	if interrupted {
		e.endReason.CompareAndSwap(nil, stats.EndInterrupted)
	}
	e.endReason.CompareAndSwap(nil, stats.EndDuration)
	e.stopping.Store(true)
	wg.Wait()  // senders stopped: nothing new goes out
	<-dialDone // no dial in progress

	if !interrupted {
		e.drain(ctx)
	}
	e.expireAll(ctx.Err() != nil)
	ph.drainEnd = time.Now()
	code := 1000
	if interrupted || ctx.Err() != nil {
		code = 1001
	}
	e.closeAll(code)
	ph.closeEnd = time.Now()
	e.nb.Stop()
	<-tickDone
	e.emit(e.rec.Rotate(time.Now()))
	return e.result(agg, ph, use0, selfUsage()), nil
}

// phases are when a run's load window, its drain and its close ended.
type phases struct{ loadEnd, drainEnd, closeEnd time.Time }

// emit hands iv to the run's aggregate and the caller's sinks, in order.
func (e *Engine) emit(iv *stats.Interval) {
	for _, sink := range e.sinks {
		sink(iv)
	}
}

// result builds the finished run's Result from its aggregate: what ran (the
// validated configuration), its load window, drain and close (rates are over
// the load window), what it cost this process (CPU between u0 and u1, peak
// RSS), the ramp and one error text per reason.
func (e *Engine) result(agg *stats.Aggregate, ph phases, u0, u1 usage) *stats.Result {
	gen := stats.Generator{
		CPUUserS:    u1.userS - u0.userS,
		CPUSysS:     u1.sysS - u0.sysS,
		MaxRSSBytes: u1.maxRSS,
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		PID:         os.Getpid(),
	}
	gen.Host, _ = os.Hostname()
	res := agg.Result(stats.Header{
		Version:   buildinfo.Version(),
		Target:    e.cfg.URL,
		Start:     e.base,
		Config:    e.cfg.Stats(),
		Generator: gen,
		Load:      ph.loadEnd.Sub(e.base),
		Drain:     ph.drainEnd.Sub(ph.loadEnd),
		Close:     ph.closeEnd.Sub(ph.drainEnd),
	})
	if d, ok := e.Ramp(); ok {
		res.Connections.RampS = d.Seconds()
	}
	if samples := e.SampleErrors(); len(samples) > 0 {
		res.ErrorSamples = samples
	}
	res.EndReason = e.EndReason()
	if len(e.addrs) > 1 {
		res.Config.Addresses = e.addrs
	}
	return res
}

// preflight raises the open-file limit and refuses a run that cannot fit the
// host, before anything is dialed: no EMFILE storm halfway through.
func (e *Engine) preflight() error {
	if e.cfg.TuneProcess {
		if _, _, err := hostlimits.RaiseFileLimit(); err != nil {
			return fmt.Errorf("engine: raise open-file limit: %w", err)
		}
	}
	h, err := hostlimits.Read()
	if err != nil {
		return fmt.Errorf("engine: read host limits: %w", err)
	}
	// nbio indexes connections by fd in a table of MaxOpenFiles entries (a
	// process-wide setting): no larger than the fds this process can have.
	if e.cfg.TuneProcess && h.FileHard > 0 && h.FileHard < uint64(nbio.MaxOpenFiles) {
		nbio.MaxOpenFiles = int(h.FileHard)
	}
	return hostlimits.Check(h, hostlimits.Need{
		Connections:     e.cfg.Connections,
		Targets:         1,
		SourceIPs:       len(e.cfg.SourceIPs),
		Procs:           1,
		ExtraFDsPerProc: e.cfg.ExtraFDs,
	})
}

// lookupNetIP resolves host names; tests replace it to make a name resolve to several
// loopback addresses.
var lookupNetIP = net.DefaultResolver.LookupNetIP

// resolve looks the target host up once, so a DNS failure stops the run before it starts, and
// returns every address of its preferred family (IPv4 when it has any, as most clients on
// dual-stack hosts): a name in front of several balancers (DNS round robin) gets the
// connections spread over all of them, as a population of clients would, instead of one
// address taking the whole load.
func resolve(ctx context.Context, u *url.URL) ([]string, error) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(ip.String(), port)}, nil
	}
	ips, err := lookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		if err == nil {
			err = errors.New("no address")
		}
		return nil, fmt.Errorf("engine: resolve %q: %w", host, err)
	}
	var v4, v6 []string
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		ip = ip.Unmap()
		if seen[ip] {
			continue
		}
		seen[ip] = true
		if ip.Is4() {
			v4 = append(v4, net.JoinHostPort(ip.String(), port))
		} else {
			v6 = append(v6, net.JoinHostPort(ip.String(), port))
		}
	}
	if len(v4) > 0 {
		return v4, nil
	}
	return v6, nil
}

// tick rotates the recorder every interval, aligned to the run's start.
func (e *Engine) tick(ctx context.Context) {
	next := e.base.Add(e.cfg.Interval)
	released := false
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.emit(e.rec.Rotate(time.Now()))
		if e.cfg.TuneProcess && !released && e.rampNS.Load() > 0 {
			// The ramp is over: hand its garbage (upgrade requests and
			// responses, dialer buffers) back to the OS once, so holding many
			// idle connections costs only what they keep.
			released = true
			debug.FreeOSMemory()
		}
		next = next.Add(e.cfg.Interval)
		t.Reset(time.Until(next))
	}
}

// forEachConn calls f for every connection dialed so far.
func (e *Engine) forEachConn(f func(c *conn)) {
	e.mu.Lock()
	conns := e.conns
	e.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			f(c)
		}
	}
}

// drain waits, up to the reply timeout, for replies to messages already
// sent on connections still open; it ends as soon as none is awaited (a
// closed connection awaits nothing: its messages were counted timed out
// when it ended).
func (e *Engine) drain(ctx context.Context) {
	if e.period == 0 && e.plan == nil {
		return
	}
	deadline := time.Now().Add(e.cfg.ReplyTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		outstanding := 0
		e.forEachConn(func(c *conn) { outstanding += c.outstanding() })
		if outstanding == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expireAll settles the replies still missing after the drain: timed out,
// or in flight when the run was interrupted before their timeout.
func (e *Engine) expireAll(interrupted bool) {
	e.forEachConn(func(c *conn) { c.expireAll(interrupted) })
}

// EndReason says why the run ended (stats.EndDuration, EndInterrupted,
// EndAllClosed); empty before Run has ended.
func (e *Engine) EndReason() string {
	s, _ := e.endReason.Load().(string)
	return s
}

// endWhenAllClosed ends an echo run early once every connection is gone and
// none is left to dial: nothing more can be sent or received, so waiting for
// the duration (and then the reply timeout) would measure nothing.
func (e *Engine) endWhenAllClosed(ctx context.Context, dialDone <-chan struct{}, end context.CancelFunc) {
	select {
	case <-ctx.Done():
		return
	case <-dialDone:
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		// The open gauge is one atomic load; only when it reads 0 are the
		// connections looked at one by one (some may still be handshaking).
		open := int(e.rec.Open())
		if open == 0 {
			e.forEachConn(func(c *conn) {
				if !c.isClosed() {
					open++
				}
			})
		}
		if open == 0 {
			e.endReason.CompareAndSwap(nil, stats.EndAllClosed)
			end()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// closeAll starts the close handshake on every open connection and waits for
// the servers' answers, at most CloseTimeout; connections that have not
// answered by then count as close_timeout and close abnormally (1006).
func (e *Engine) closeAll(code int) {
	e.closing.Store(int32(code))
	e.forEachConn(func(c *conn) { c.startClose(code) })
	deadline := time.Now().Add(e.cfg.CloseTimeout)
	for time.Now().Before(deadline) {
		open := 0
		e.forEachConn(func(c *conn) {
			if !c.isClosed() {
				open++
			}
		})
		if open == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.forEachConn(func(c *conn) { c.closeTimedOut(e.cfg.CloseTimeout) })
}

func (e *Engine) sample(reason string, err error) {
	if err != nil {
		e.samples.LoadOrStore(reason, err.Error())
	}
}

// onData is nbio's read callback, on a poller goroutine.
func (e *Engine) onData(nbc *nbio.Conn, data []byte) {
	c, ok := nbc.Session().(*conn)
	if !ok {
		_ = nbc.Close()
		return
	}
	c.onData(nbc, data)
}

// onClose is nbio's close callback (asynchronous, after the fd is closed).
func (e *Engine) onClose(nbc *nbio.Conn, err error) {
	if c, ok := nbc.Session().(*conn); ok {
		c.onClosed(nbc, err)
	}
}
