package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/engine/hostlimits"
	"github.com/wsload/wsload/internal/atomicfile"
	"github.com/wsload/wsload/internal/termsafe"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/slo"
	"github.com/wsload/wsload/stats"
)

const runExamples = `Examples:
  # The demo: no URL starts an embedded echo server and load-tests it.
  wsload run

  # 5,000 connections, one message per second each, for 30 s; JSON result to a file.
  wsload run ws://127.0.0.1:8080/ -c 5000 -r 1 -d 30s -o result.json

  # Connection capacity: ramp 20,000 idle connections at 2,000/s over four source addresses.
  wsload run ws://127.0.0.1:8080/ -c 20000 --connect-rate 2000 -r 0 -d 60s --source-ips 127.0.0.2-127.0.0.5

  # wss with a self-signed certificate, a token header (redacted in reports) and a subprotocol.
  wsload run wss://127.0.0.1:8443/ws --insecure -H 'Authorization: Bearer $TOKEN' --subprotocol chat

  # A CI gate through a balancer: split by backend, exit 4 when an objective is broken.
  wsload run ws://127.0.0.1:8080/ -c 1000 -r 1 -d 30s --backend-from header:X-Backend --slo 'rtt.p99<50ms,errors<0.1%'
`

// runOptions are the flags of `wsload run`, parsed.
type runOptions struct {
	cfg     engine.Config
	headers []string
	sources string
	out     string
	format  string
	quiet   bool
	verbose bool // --verbose: nbio's own log lines on stderr
	cpuprof string
	hlog    string

	backendFrom string   // --backend-from, parsed into cfg.BackendFrom
	sloText     string   // --slo as typed
	slo         slo.Spec // parsed --slo; empty = no objectives

	spread spreadOptions // --procs, --segment, --start-at, --worker (procs.go)

	target string // --target: replaces a scenario's target (runscenario.go)

	// A scenario run (runscenario.go): what produced it, for the result, and
	// the whole run's peak connections, which a --procs worker takes its
	// share of.
	scenario *stats.Scenario
	planPeak int
}

// outputs lists the files a run writes, by flag, for checkOutputs.
func (o *runOptions) outputs() []output {
	return []output{{"--out", o.out}, {"--hlog", o.hlog}, {"--cpuprofile", o.cpuprof}}
}

func runFlags(o *runOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	c := &o.cfg
	fs.IntVarP(&c.Connections, "connections", "c", engine.DefaultConnections, "concurrent connections to open and hold (with a scenario: its peak, scaling its connections phases)")
	fs.Float64Var(&c.ConnectRate, "connect-rate", 0, "new connections per second, in total (0 = as fast as the target accepts, bounded by --handshake-concurrency)")
	fs.IntVar(&c.HandshakeConcurrency, "handshake-concurrency", engine.DefaultHandshakeConcurrency, "most handshakes (connect + TLS + upgrade) in flight at once")
	fs.DurationVarP(&c.Duration, "duration", "d", engine.DefaultDuration, "length of the whole run, ramp included (with a scenario: scales its phases)")
	fs.StringVar(&o.target, "target", "", "with a scenario file: the target URL replacing the file's (ws:// or wss://)")
	fs.Float64VarP(&c.Rate, "rate", "r", engine.DefaultRate, "messages per second PER CONNECTION, sent on schedule whether or not replies came (0 = hold connections idle)")
	fs.IntVar(&c.Size, "size", engine.DefaultSize, "message payload bytes (the first 28 text / 16 binary bytes carry the message id)")
	fs.BoolVar(&c.Binary, "binary", false, "send binary frames instead of text")
	fs.StringArrayVarP(&o.headers, "header", "H", nil, "extra upgrade request header 'Name: value' (repeatable); secrets are redacted in reports")
	fs.StringSliceVar(&c.Subprotocols, "subprotocol", nil, "WebSocket subprotocol to offer (repeatable or comma-separated)")
	fs.StringVar(&c.Origin, "origin", "", "Origin header")
	fs.BoolVar(&c.Compression, "compression", false, "offer permessage-deflate (no context takeover)")
	fs.BoolVar(&c.InsecureTLS, "insecure", false, "skip TLS certificate verification (self-signed targets)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", engine.DefaultHandshakeTimeout, "limit for TCP connect + TLS + upgrade")
	fs.DurationVar(&c.ReplyTimeout, "reply-timeout", engine.DefaultReplyTimeout, "a message without reply after this counts as timed out")
	fs.StringVar(&o.sources, "source-ips", "", "local addresses to spread connections over: a list or ranges, e.g. 127.0.0.2-127.0.0.9")
	fs.IntVar(&c.Pollers, "pollers", 0, "event loops (0 = one per CPU)")
	fs.StringVarP(&o.out, "out", "o", "", "write the JSON result to FILE (atomically)")
	fs.StringVar(&o.hlog, "hlog", "", "also write per-second rtt, rtt_uncorrected and handshake histograms to FILE, an HdrHistogram interval log")
	fs.StringVar(&o.format, "format", "text", "what to print on stdout at the end: text or json")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no live progress on stderr")
	fs.BoolVar(&o.verbose, "verbose", false, verboseHelp)
	fs.StringVar(&o.cpuprof, "cpuprofile", "", "write wsload's own CPU profile to FILE (for go tool pprof)")
	fs.StringVar(&o.backendFrom, "backend-from", "", "split results by backend: header:NAME (a response header of the upgrade) or message:REGEX (the first message; group 1 is the id)")
	fs.StringVar(&o.sloText, "slo", "", "objectives to judge the run by, e.g. 'rtt.p99<50ms,errors<0.1%'; exit 4 when any is broken")
	addSpreadFlags(fs, &o.spread)
	fs.SortFlags = false
	return fs
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	var o runOptions
	fs := runFlags(&o)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wsload run [URL | SCENARIO.yaml] [flags]\n\nLoad-tests a WebSocket target with the echo flow: every connection sends\n--rate messages per second and measures each reply's round trip. Given a\nscenario file instead, runs its phases and flows (one latency row per step).\n\n%s%s%s\nFlags:\n%s", runExamples, scenarioExamples, spreadExamples, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if fs.NArg() > 1 && o.spread.procs == "" && o.spread.worker == "" && !isScenarioArg(fs.Arg(0)) {
		fmt.Fprintf(stderr, "wsload run: one target URL at most, got %q (several targets need --procs: each worker process dials one)\n", fs.Args())
		return exitUsage
	}
	if o.format != "text" && o.format != "json" {
		fmt.Fprintf(stderr, "wsload run: --format must be text or json, got %q\n", o.format)
		return exitUsage
	}
	h, err := parseHeaders(o.headers)
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage
	}
	o.cfg.Header = h
	if o.sources != "" {
		if o.cfg.SourceIPs, err = engine.ParseSourceIPs(o.sources); err != nil {
			fmt.Fprintf(stderr, "wsload run: --source-ips: %v\n", err)
			return exitUsage
		}
	}
	if o.cfg.BackendFrom, err = engine.ParseBackendFrom(o.backendFrom); err != nil {
		fmt.Fprintf(stderr, "wsload run: --backend-from: %v\n", err)
		return exitUsage
	}
	if o.sloText != "" {
		if o.slo, err = slo.Parse(o.sloText); err != nil {
			fmt.Fprintf(stderr, "wsload run: --slo: %v\n%s\n", err, sloPointer(err))
			return exitUsage
		}
	}
	if err := checkOutputs(o.outputs()...); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage
	}
	if isScenarioArg(fs.Arg(0)) {
		return runScenario(&o, fs, fs.Arg(0), args, stdout, stderr)
	}
	if o.target != "" {
		fmt.Fprintf(stderr, "wsload run: --target goes with a scenario file; give the URL as the argument: wsload run %s\n", o.target)
		return exitUsage
	}
	if code, handled := spread(&o, fs.Args(), args, stdout, stderr); handled {
		return code
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nbioLog(o.verbose)

	embedded := fs.NArg() == 0
	var srv *server.Server
	if embedded {
		srv, err = server.Start(server.Config{Addr: "127.0.0.1:0", Pollers: 1})
		if err != nil {
			fmt.Fprintf(stderr, "wsload run: start the embedded echo server: %v\n", err)
			return exitRunFailed
		}
		defer srv.Shutdown(context.Background())
		o.cfg.URL = srv.URL()
		o.cfg.ExtraFDs = o.cfg.Connections // the server's side of every connection lives in this process too
		fmt.Fprintf(stderr, "wsload: no target given: load-testing an embedded echo server at %s\n", o.cfg.URL)
	} else {
		o.cfg.URL = fs.Arg(0)
	}
	return execute(ctx, &o, embedded, stdout, stderr)
}

// execute runs the engine, shows progress and writes the results.
func execute(ctx context.Context, o *runOptions, embedded bool, stdout, stderr io.Writer) int {
	progress := newProgress(stderr, o.quiet, o.cfg.Duration)
	var mu sync.Mutex
	start := time.Now()
	if o.cfg.StartAt.After(start) {
		start = o.cfg.StartAt // the engine waits until then: the run starts there
	}
	agg := stats.NewAggregate(start)
	var hlog *stats.HlogWriter // nil without --hlog: its methods then do nothing
	if o.hlog != "" {
		var err error
		if hlog, err = stats.CreateHlog(o.hlog, start); err != nil {
			fmt.Fprintf(stderr, "wsload run: --hlog: %v\n", err)
			return exitOutput
		}
		defer hlog.Close()
	}
	o.cfg.OnInterval = func(iv *stats.Interval) {
		mu.Lock()
		agg.Add(iv)
		_ = hlog.WriteInterval(iv) // an error sticks; Close reports it
		mu.Unlock()
		progress.update(iv, iv.End.Sub(start))
	}
	rec := stats.NewRecorder(engine.Shards(o.cfg))
	eng, err := engine.New(o.cfg, rec)
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage
	}
	if o.cpuprof != "" {
		f, err := atomicfile.Create(o.cpuprof)
		if err != nil {
			fmt.Fprintf(stderr, "wsload run: --cpuprofile: %v\n", err)
			return exitUsage
		}
		defer func() { // after StopCPUProfile, deferred below, has flushed the profile
			if err := f.Commit(); err != nil {
				fmt.Fprintf(stderr, "wsload run: --cpuprofile: %v\n", err)
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "wsload run: --cpuprofile: %v\n", err)
			return exitUsage
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTimes()
	if err := eng.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		var le *hostlimits.LimitError
		if errors.As(err, &le) {
			if embedded {
				fmt.Fprintf(stderr, "hint: without a URL the target runs inside this process and holds the other end of every connection: start `wsload serve` in another process and give its URL (wsload run ws://127.0.0.1:8080/ -c %d …); --procs then applies too\n", o.cfg.Connections)
			}
			return exitLimits
		}
		return exitRunFailed
	}
	progress.done()
	cpu1 := cpuTimes()

	gen := stats.Generator{
		CPUUserS:    cpu1.user - cpu0.user,
		CPUSysS:     cpu1.sys - cpu0.sys,
		MaxRSSBytes: cpu1.maxRSS,
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		PID:         os.Getpid(),
	}
	gen.Host, _ = os.Hostname()
	mu.Lock()
	res := agg.Result(stats.Header{
		Version:   Version,
		Target:    o.cfg.URL,
		Start:     start,
		Config:    eng.Config().Stats(),
		Generator: gen,
	})
	mu.Unlock()
	res.Config.Segment = o.spread.seg
	res.Config.Scenario = o.scenario
	if d, ok := eng.Ramp(); ok {
		res.Connections.RampS = d.Seconds()
	}
	res.EndReason = eng.EndReason()
	if embedded {
		res.Generator.Warnings = append(res.Generator.Warnings,
			"the target ran inside this process (no URL given): CPU and memory figures include it; give a URL to measure a real target")
	}
	return finish(ctx.Err() != nil, exitOK, o, res, eng.SampleErrors(), hlog, stdout, stderr)
}

// finish judges a finished run (one process or many), writes its result
// file and log, prints the summary, and returns the exit code. code is what
// the caller already knows (e.g. a worker died).
func finish(interrupted bool, code int, o *runOptions, res *stats.Result, samples map[string]string, hlog *stats.HlogWriter, stdout, stderr io.Writer) int {
	if len(o.slo) > 0 {
		res.SLO = slo.Evaluate(o.slo, res)
	}
	if res.Connections.Established == 0 {
		code = exitRunFailed
	}
	if interrupted {
		code = exitInterrupted
		fmt.Fprintln(stderr, "wsload run: interrupted: reporting what was measured")
	}
	if code == exitOK && stats.Broken(res.SLO) {
		code = exitSLO
		fmt.Fprintf(stderr, "wsload run: SLO broken (%s): exit %d\n", o.sloText, exitSLO)
	}
	if o.out != "" {
		if err := stats.WriteJSONFile(o.out, res); err != nil {
			fmt.Fprintf(stderr, "wsload run: %v\n", err)
			code = exitOutput
		}
	}
	if err := hlog.Close(); err != nil {
		fmt.Fprintf(stderr, "wsload run: --hlog: %v\n", err)
		code = exitOutput
	}
	switch o.format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	default:
		_ = stats.WriteText(stdout, res)
		writeSamples(stdout, samples)
	}
	if res.Connections.Established == 0 {
		fmt.Fprintf(stderr, "wsload run: no connection was established to %s%s\n", stats.RedactURL(res.Target), firstSample(res, samples))
	}
	return code
}

// writeSamples prints one example error text per reason, so "tls" or
// "bad_handshake" in the summary can be understood.
func writeSamples(w io.Writer, samples map[string]string) {
	if len(samples) == 0 {
		return
	}
	reasons := make([]string, 0, len(samples))
	for r := range samples {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	w = termsafe.NewWriter(w) // the examples quote what servers sent
	fmt.Fprintln(w, "Error examples:")
	for _, r := range reasons {
		fmt.Fprintf(w, "  %-24s %s\n", r, samples[r])
	}
}

func firstSample(res *stats.Result, samples map[string]string) string {
	best, n := "", int64(-1)
	for r, c := range res.Errors {
		if c > n || (c == n && r < best) {
			best, n = r, c
		}
	}
	if best == "" {
		return ""
	}
	if s, ok := samples[best]; ok {
		return fmt.Sprintf(": %s (%s)", best, s)
	}
	return ": " + best
}

// parseHeaders turns repeated -H 'Name: value' into a header.
func parseHeaders(list []string) (http.Header, error) {
	h := http.Header{}
	for _, kv := range list {
		name, value, ok := strings.Cut(kv, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
			return nil, fmt.Errorf("-H %q: want 'Name: value'", kv)
		}
		h.Add(name, strings.TrimSpace(value))
	}
	return h, nil
}

type cpuSample struct {
	user, sys float64
	maxRSS    int64
}

// cpuTimes is this process's own CPU time: on shared machines wall time says
// little about the generator's cost.
func cpuTimes() cpuSample {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuSample{}
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return cpuSample{user: tv(ru.Utime), sys: tv(ru.Stime), maxRSS: ru.Maxrss * 1024}
}

// progress shows one line per interval on stderr: rewritten in place on a
// terminal, plain lines otherwise (CI logs, files).
type progress struct {
	w     io.Writer
	quiet bool
	tty   bool
	total time.Duration
	shown bool
}

func newProgress(w io.Writer, quiet bool, total time.Duration) *progress {
	p := &progress{w: w, quiet: quiet, total: total}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(iv *stats.Interval, elapsed time.Duration) {
	if p.quiet {
		return
	}
	line := stats.FormatProgress(iv, elapsed, p.total)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.shown = true
}

func (p *progress) done() {
	if p.tty && p.shown {
		fmt.Fprintln(p.w)
	}
}
