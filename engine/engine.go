// Package engine opens WebSocket connections at scale on nbio's event loop
// and drives each connection's flow, recording every event into a
// stats.Recorder.
//
//	rec := stats.NewRecorder(engine.Shards(cfg))
//	eng, err := engine.New(cfg, rec)        // validates cfg, fills defaults
//	if err != nil { ... }
//	err = eng.Run(ctx)                      // returns when cfg.Duration is over or ctx is done
//
// Design, in the order a connection meets it:
//   - A pacer hands out connection numbers at cfg.ConnectRate; a small pool of
//     dialer goroutines does the blocking parts (TCP connect from the chosen
//     source address, TLS), writes the upgrade request and hands the socket to
//     nbio. At most cfg.HandshakeConcurrency handshakes are in flight, the
//     wait for the 101 included; each has its own timer.
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
//	eng, err := engine.New(engine.Config{Plan: plan}, rec)
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
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// Engine runs one load test. Use New, then Run once.
type Engine struct {
	cfg    Config
	target *url.URL
	addr   string // resolved host:port
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

	samples sync.Map // reason → first error text seen, for the report

	tmplOnce  sync.Once    // echoTemplate (reply.go)
	tmpl      []byte       // the echo message of connection 0, sequence 0
	endReason atomic.Value // string: why the run ended (stats.End*), set by Run

	plain [][]byte // per poller: plaintext buffer for wss reads, made on first use

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

// Shards is the number of stats shards New expects the recorder to have:
// one per poller, one per sender, one for the dialers.
func Shards(cfg Config) int {
	p := cfg.Pollers
	if p <= 0 || p > MaxPollers { // out of range: New refuses it; size for the default meanwhile
		p = runtime.GOMAXPROCS(0)
	}
	return p + numSenders(p) + 1
}

func numSenders(pollers int) int { return max(1, pollers) }

// New validates cfg and prepares a run; nothing is dialed before Run.
func New(cfg Config, rec *stats.Recorder) (*Engine, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, errors.New("engine: nil recorder")
	}
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
					return nil, fmt.Errorf("engine: tls ca_file: %v", err)
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

func (e *Engine) now() int64 { return int64(time.Since(e.base)) }

// Run performs the load test: pre-flight checks, ramp, steady state, drain,
// close. It returns when cfg.Duration has passed (then the connections are
// closed with 1000) or ctx is done (1001). A failed pre-flight check returns
// an error before anything is dialed; failures of individual connections are
// recorded, not returned.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.preflight(); err != nil {
		return err
	}
	addr, err := resolve(ctx, e.target)
	if err != nil {
		return err
	}
	e.addr = addr

	if wait := time.Until(e.cfg.StartAt); !e.cfg.StartAt.IsZero() && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}

	e.nb = nbio.NewEngine(nbio.Config{
		Name:    "wsload",
		NPoller: e.cfg.Pollers,
		// One read buffer per poller, not per connection: idle connections cost
		// no buffer memory.
		ReadBufferSize: 64 << 10,
	})
	e.nb.OnData(e.onData)
	e.nb.OnClose(e.onClose)
	if err := e.nb.Start(); err != nil {
		return fmt.Errorf("engine: start event loop: %v", err)
	}

	e.base = time.Now()
	e.rec.SetStart(e.base)
	if e.plan == nil {
		e.conns = make([]*conn, e.cfg.Connections)
	} else {
		e.dq = newDialQueue()
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
	code := 1000
	if interrupted || ctx.Err() != nil {
		code = 1001
	}
	e.closeAll(code)
	e.nb.Stop()
	<-tickDone
	if e.cfg.OnInterval != nil {
		e.cfg.OnInterval(e.rec.Rotate(time.Now()))
	}
	return nil
}

// preflight raises the open-file limit and refuses a run that cannot fit the
// host, before anything is dialed: no EMFILE storm halfway through.
func (e *Engine) preflight() error {
	if _, _, err := hostlimits.RaiseFileLimit(); err != nil {
		return fmt.Errorf("engine: raise open-file limit: %v", err)
	}
	h, err := hostlimits.Read()
	if err != nil {
		return fmt.Errorf("engine: read host limits: %v", err)
	}
	// nbio indexes connections by fd in a table of MaxOpenFiles entries.
	if h.FileHard > 0 && h.FileHard < uint64(nbio.MaxOpenFiles) {
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

// resolve looks the target host up once, so every connection dials the same
// address and a DNS failure stops the run before it starts.
func resolve(ctx context.Context, u *url.URL) (string, error) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "wss" {
			port = "443"
		}
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.JoinHostPort(ip.String(), port), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("engine: resolve %q: %v", host, err)
	}
	pick := ips[0]
	for _, ip := range ips { // prefer IPv4, like most clients on dual-stack loopback
		if ip.Unmap().Is4() {
			pick = ip.Unmap()
			break
		}
	}
	return net.JoinHostPort(pick.String(), port), nil
}

// tick rotates the recorder every interval, aligned to the run's start.
func (e *Engine) tick(ctx context.Context) {
	if e.cfg.OnInterval == nil {
		<-ctx.Done()
		return
	}
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
		e.cfg.OnInterval(e.rec.Rotate(time.Now()))
		if !released && e.rampNS.Load() > 0 {
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
