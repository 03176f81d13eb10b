package main

// Scaling `wsload run` out: --procs (worker processes on this host, merged
// live by package fleet), --segment (one equal share of a load that several
// machines make together), --start-at (start them together) and the hidden
// --worker (what a worker process runs).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/engine/hostlimits"
	"github.com/wsload/wsload/fleet"
	"github.com/wsload/wsload/stats"
)

// startLead is how far ahead a --procs run schedules its workers' common
// start, so that all of them have started and passed their pre-flight
// checks by then and their seconds line up. A variable only so that tests
// on a loaded machine, where starting a -race worker can take longer, can
// give more.
var startLead = time.Second

const spreadExamples = `
  # More connections than one process may open: worker processes sized from the
  # open-file limit, connections spread over four source addresses, one merged report.
  wsload run ws://127.0.0.1:8080/ -c 50000 -r 0.2 -d 60s --procs auto --source-ips 127.0.0.2-127.0.0.5

  # Several targets (e.g. one wsload serve per port): each worker dials one of them.
  wsload run ws://127.0.0.1:9001/ ws://127.0.0.1:9002/ -c 20000 --procs 2

  # Three machines make one load together, starting at the same second; merge afterwards.
  wsload run ws://10.0.0.5:8080/ -c 150000 --segment 1/3 --start-at 2025-06-01T12:00:00Z -o seg-1.json --hlog seg-1.hlog
  wsload merge seg-1.json seg-2.json seg-3.json -o all.json
`

// spreadOptions are the flags that spread a run over processes or machines.
type spreadOptions struct {
	procs   string // N or "auto"
	segment string // i/n
	startAt string // RFC 3339 or unix seconds
	worker  string // i/N: this process is worker i of a --procs run (hidden)

	seg stats.Segment // parsed --segment, recorded in the result
}

// addSpreadFlags registers the spreading flags on fs.
func addSpreadFlags(fs *pflag.FlagSet, o *spreadOptions) {
	fs.StringVar(&o.procs, "procs", "", "spread the connections over N worker processes on this host, or 'auto' to size N from the open-file limit; one merged report")
	fs.StringVar(&o.segment, "segment", "", "take the i-th of n equal shares of the load (connections and connect rate), e.g. 2/4 on the second of four machines; merge the results with 'wsload merge'")
	fs.StringVar(&o.startAt, "start-at", "", "wait until TIME (RFC 3339, e.g. 2025-06-01T12:00:00Z, or unix seconds) before dialing, so that segments on several machines start together")
	fs.StringVar(&o.worker, "worker", "", "run as worker i/N of a --procs run: stream intervals on stdout (used by wsload itself)")
	_ = fs.MarkHidden("worker")
}

// parseStartAt parses --start-at: RFC 3339 or unix seconds (fractions
// allowed). A time more than a second in the past is refused: the run would
// start late without saying so, and segments would not line up.
func parseStartAt(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs < 0 || secs > 1<<40 {
			return time.Time{}, fmt.Errorf("--start-at %q: want RFC 3339 (2025-06-01T12:00:00Z) or unix seconds (e.g. $(( $(date +%%s) + 30 )))", s)
		}
		whole, frac := math.Modf(secs)
		t = time.Unix(int64(whole), int64(math.Round(frac*1e9)))
	}
	if late := now.Sub(t); late > time.Second {
		return time.Time{}, fmt.Errorf("--start-at %q is %v in the past: give a time ahead, e.g. $(( $(date +%%s) + 30 ))", s, late.Round(time.Second))
	}
	return t, nil
}

// parseProcs parses --procs: "" (one process), a number, or "auto" (0).
func parseProcs(s string) (n int, auto bool, err error) {
	switch s {
	case "":
		return 1, false, nil
	case "auto":
		return 0, true, nil
	}
	n, err = strconv.Atoi(s)
	if err != nil || n < 1 || n > fleet.MaxProcs {
		return 0, false, fmt.Errorf("--procs %q: want a number from 1 to %d, or auto", s, fleet.MaxProcs)
	}
	return n, false, nil
}

// applySegment narrows cfg to the Index-th of Count equal shares of its
// connections and connect rate; the connection ids keep counting within the
// whole load (FirstID, TotalConnections), so the send grid of the segments
// together is the grid of one run.
func applySegment(cfg *engine.Config, seg stats.Segment) error {
	if seg.IsZero() {
		return nil
	}
	if cfg.Plan != nil {
		return applyPlanSegment(cfg, seg)
	}
	total := cfg.Connections
	first, count := fleet.Share(0, total, seg.Index, seg.Count)
	if count == 0 {
		return fmt.Errorf("--segment %s: -c %d connections leave segment %d empty; give at least %d connections", seg, total, seg.Index, seg.Count)
	}
	cfg.ConnectRate = fleet.ShareRate(cfg.ConnectRate, total, seg.Index, seg.Count)
	cfg.FirstID, cfg.Connections, cfg.TotalConnections = first, count, total
	return nil
}

// applyWorker narrows cfg (already narrowed to its segment) to worker i of
// n: its share of the connections and connect rate, of the handshakes in
// flight, its source addresses, and its target.
func applyWorker(cfg *engine.Config, targets []string, i, n int) {
	if cfg.TotalConnections == 0 {
		cfg.TotalConnections = cfg.FirstID + cfg.Connections
	}
	first, count := fleet.Share(cfg.FirstID, cfg.Connections, i, n)
	cfg.ConnectRate = fleet.ShareRate(cfg.ConnectRate, cfg.Connections, i, n)
	cfg.FirstID, cfg.Connections = first, count
	hc := cfg.HandshakeConcurrency
	if hc <= 0 {
		hc = engine.DefaultHandshakeConcurrency
	}
	cfg.HandshakeConcurrency = max(1, (hc+n-1)/n)
	cfg.SourceIPs = fleet.Sources(cfg.SourceIPs, i, n)
	cfg.URL = fleet.Target(targets, i, n)
}

// applyPlanSegment narrows a scenario run to plan slot Index-1 of Count
// (engine.Config.PlanSlot): its share of every connections phase and of
// every arrivals count, its connections numbered as the whole run would.
// Connections, the pre-flight's peak, becomes the slot's share of the peak.
func applyPlanSegment(cfg *engine.Config, seg stats.Segment) error {
	peak := cfg.Connections
	cfg.PlanSlot, cfg.PlanSlots = seg.Index-1, seg.Count
	share := int(engine.PlanShare(int64(peak), cfg.PlanSlot, cfg.PlanSlots))
	if share == 0 {
		return fmt.Errorf("--segment %s: the scenario's peak of %d connections leaves segment %d empty; give -c %d or more, or fewer segments", seg, peak, seg.Index, seg.Count)
	}
	cfg.Connections = share
	return nil
}

// applyPlanWorker narrows a scenario run (already narrowed to its segment)
// to worker i of n: plan slot s of a segment of slots splits into slot
// s + (i-1)*slots of slots*n, which keeps the shares and numbers exact
// (engine.PlanShare of a PlanShare is a PlanShare). peak is the whole run's.
func applyPlanWorker(cfg *engine.Config, peak, i, n int) {
	slot, slots := cfg.PlanSlot, max(cfg.PlanSlots, 1)
	cfg.PlanSlot, cfg.PlanSlots = slot+(i-1)*slots, slots*n
	cfg.Connections = int(engine.PlanShare(int64(peak), cfg.PlanSlot, cfg.PlanSlots))
	hc := cfg.HandshakeConcurrency
	if hc <= 0 {
		hc = engine.DefaultHandshakeConcurrency
	}
	cfg.HandshakeConcurrency = max(1, (hc+n-1)/n)
	cfg.SourceIPs = fleet.Sources(cfg.SourceIPs, i, n)
}

// spread handles --segment, --start-at, --procs and --worker after the
// flags are parsed. It narrows o.cfg for a segment and sets its StartAt;
// then it runs a worker or a multi-process run and reports handled, or
// leaves a single-process run to the caller.
func spread(o *runOptions, targets, args []string, stdout, stderr io.Writer) (code int, handled bool) {
	s := &o.spread
	var err error
	if s.seg, err = stats.ParseSegment(s.segment); err != nil {
		fmt.Fprintf(stderr, "wsload run: --segment %q: want INDEX/COUNT with 1 <= INDEX <= COUNT, e.g. 2/4\n", s.segment)
		return exitUsage, true
	}
	now := time.Now()
	if s.worker != "" {
		// The parent chose this start for its workers, startLead ahead. A worker that took
		// longer than that to start (a busy host) begins at once instead of refusing; the
		// parent merges by wall-clock second either way.
		now = time.Time{}
	}
	if o.cfg.StartAt, err = parseStartAt(s.startAt, now); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage, true
	}
	if err := applySegment(&o.cfg, s.seg); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage, true
	}
	if s.worker != "" {
		return runWorker(o, targets, stdout, stderr), true
	}
	procs, auto, err := parseProcs(s.procs)
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage, true
	}
	if len(targets) == 0 && (auto || procs > 1) {
		fmt.Fprintf(stderr, "wsload run: --procs needs a target URL (the embedded demo server lives in one process); start one with `wsload serve --addr 127.0.0.1:8080`\n")
		return exitUsage, true
	}
	if !auto && procs == 1 && len(targets) <= 1 {
		if !o.cfg.StartAt.IsZero() {
			fmt.Fprintf(stderr, "wsload: waiting until %s to start\n", o.cfg.StartAt.Format(time.RFC3339Nano))
		}
		return 0, false // one process: the caller runs it
	}
	return runProcs(o, targets, args, procs, auto, stdout, stderr), true
}

// runWorker is `wsload run … --worker i/N`: run this worker's share and
// stream it to the parent on stdout. Its exit code says how it ended; its
// data is in the stream.
func runWorker(o *runOptions, targets []string, stdout, stderr io.Writer) int {
	w, err := stats.ParseSegment(o.spread.worker)
	if err != nil || w.IsZero() {
		fmt.Fprintf(stderr, "wsload run: --worker %q: want i/N\n", o.spread.worker)
		return exitUsage
	}
	if len(targets) == 0 {
		fmt.Fprintln(stderr, "wsload run: --worker needs the target URL")
		return exitUsage
	}
	if o.cfg.Plan != nil {
		applyPlanWorker(&o.cfg, o.planPeak, w.Index, w.Count)
	} else {
		applyWorker(&o.cfg, targets, w.Index, w.Count)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nbioLog(o.verbose) // stderr only: stdout is the interval stream

	rep := fleet.NewReporter(stdout)
	if o.cfg.Connections == 0 { // more workers than connections: nothing to do
		_ = rep.Done(0, nil)
		return exitOK
	}
	o.cfg.OnInterval = func(iv *stats.Interval) {
		if err := rep.Interval(iv); err != nil {
			fmt.Fprintf(stderr, "wsload run: %v\n", err)
		}
	}
	eng, err := engine.New(o.cfg, stats.NewRecorder(engine.Shards(o.cfg)))
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage
	}
	if err := eng.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		var le *hostlimits.LimitError
		if errors.As(err, &le) {
			return exitLimits
		}
		return exitRunFailed
	}
	ramp, _ := eng.Ramp()
	if err := rep.Done(ramp.Seconds(), eng.SampleErrors()); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitOutput
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return exitOK
}

// runProcs runs the load over worker processes and reports it as one run.
func runProcs(o *runOptions, targets, args []string, procs int, auto bool, stdout, stderr io.Writer) int {
	if _, _, err := hostlimits.RaiseFileLimit(); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
	}
	h, err := hostlimits.Read()
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitRunFailed
	}
	need := hostlimits.Need{Connections: o.cfg.Connections, Targets: len(targets), SourceIPs: len(o.cfg.SourceIPs), Procs: procs}
	if auto {
		need.Procs = len(targets)
		if procs, err = fleet.AutoProcs(h, need); err != nil {
			fmt.Fprintf(stderr, "wsload run: --procs auto: %v\n", err)
			return exitLimits
		}
		procs = (procs + len(targets) - 1) / len(targets) * len(targets) // every target gets as many workers
		need.Procs = procs
		fmt.Fprintf(stderr, "wsload: --procs auto: %d worker processes for %d connections (open-file limit %d per process", procs, o.cfg.Connections, h.FileSoft)
		if len(targets) > 1 {
			fmt.Fprintf(stderr, ", %d targets", len(targets))
		}
		fmt.Fprintln(stderr, ")")
	}
	if procs%len(targets) != 0 {
		fmt.Fprintf(stderr, "wsload run: --procs %d over %d targets: want a multiple of %d, so each target gets the same share (each worker dials one target)\n", procs, len(targets), len(targets))
		return exitUsage
	}
	if procs > o.cfg.Connections {
		fmt.Fprintf(stderr, "wsload run: --procs %d is more than the %d connections to open: use --procs %d or fewer\n", procs, o.cfg.Connections, o.cfg.Connections)
		return exitUsage
	}
	if err := hostlimits.Check(h, need); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitLimits
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: find the wsload executable for the workers: %v\n", err)
		return exitRunFailed
	}
	start := o.cfg.StartAt
	if start.IsZero() {
		start = time.Now().Add(startLead)
	} else {
		fmt.Fprintf(stderr, "wsload: waiting until %s to start\n", start.Format(time.RFC3339Nano))
	}
	// The workers get the same flags; the last --start-at wins, and each
	// worker takes its own share of what they describe.
	wargs := append([]string{"run"}, args...)
	wargs = append(wargs, "--start-at", start.UTC().Format(time.RFC3339Nano))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	progress := newProgress(stderr, o.quiet, o.cfg.Duration)
	agg := stats.NewAggregate(start)
	var hlog *stats.HlogWriter // nil without --hlog: its methods then do nothing
	if o.hlog != "" {
		if hlog, err = stats.CreateHlog(o.hlog, start); err != nil {
			fmt.Fprintf(stderr, "wsload run: --hlog: %v\n", err)
			return exitOutput
		}
		defer hlog.Close()
	}
	var mu sync.Mutex // fleet calls OnInterval from one goroutine; mu documents agg's owner
	rep, err := fleet.Run(ctx, fleet.Options{
		Procs: procs,
		Exe:   exe,
		Args:  wargs,
		Start: start,
		OnInterval: func(iv *stats.Interval) {
			mu.Lock()
			agg.Add(iv)
			_ = hlog.WriteInterval(iv) // an error sticks; Close reports it
			mu.Unlock()
			progress.update(iv, iv.End.Sub(start))
		},
		Stderr: stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitRunFailed
	}
	progress.done()

	user, sys, rss := rep.Usage()
	gen := stats.Generator{CPUUserS: user, CPUSysS: sys, MaxRSSBytes: rss, GOMAXPROCS: runtime.GOMAXPROCS(0), PID: os.Getpid()}
	gen.Host, _ = os.Hostname()
	cfg := o.cfg
	cfg.URL = strings.Join(targets, ",")
	mu.Lock()
	res := agg.Result(stats.Header{Version: Version, Target: cfg.URL, Start: start, Config: cfg.Stats(), Generator: gen})
	mu.Unlock()
	res.Config.Segment = o.spread.seg
	res.Config.Scenario = o.scenario
	if ramp, ok := rep.Ramp(); ok {
		res.Connections.RampS = ramp
	}
	if rep.Interrupted {
		// Workers do not report why they ended yet: only an interrupt is known here.
		res.EndReason = stats.EndInterrupted
	}
	res.Generator.Warnings = append(res.Generator.Warnings,
		fmt.Sprintf("generated by %d worker processes: CPU time is their sum, max_rss_bytes the sum of their peaks", procs))
	warnings := rep.Warnings()
	res.Generator.Warnings = append(res.Generator.Warnings, warnings...)

	code := exitOK
	for _, w := range warnings {
		fmt.Fprintf(stderr, "wsload run: %s\n", w)
		code = exitRunFailed
	}
	return finish(rep.Interrupted, code, o, res, rep.Samples(), hlog, stdout, stderr)
}
