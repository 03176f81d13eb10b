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
	"github.com/wsload/wsload/partition"
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

// applySegment narrows cfg to segment seg of its run (--segment 2/4): partition slot
// seg.Index-1 of seg.Count, echo and scenario runs alike.
func applySegment(cfg *engine.Config, seg stats.Segment) error {
	if seg.IsZero() {
		return nil
	}
	whole := cfg.Connections
	applyPartition(cfg, partition.Partition{Slot: seg.Index - 1, Slots: seg.Count})
	if cfg.Connections == 0 {
		if cfg.Plan != nil {
			return fmt.Errorf("--segment %s: the scenario's peak of %d connections leaves segment %d empty; give -c %d or more, or fewer segments", seg, whole, seg.Index, seg.Count)
		}
		return fmt.Errorf("--segment %s: -c %d connections leave segment %d empty; give at least %d connections", seg, whole, seg.Index, seg.Count)
	}
	return nil
}

// applyWorker narrows cfg (already narrowed to its segment) to worker i (from 1) of n: the
// i-th of n sub-slots of its partition, a share of the handshakes in flight, its source
// addresses, and its target.
func applyWorker(cfg *engine.Config, targets []string, i, n int) {
	applyPartition(cfg, cfg.Partition.Split(i-1, n))
	hc := cfg.HandshakeConcurrency
	if hc <= 0 {
		hc = engine.DefaultHandshakeConcurrency
	}
	cfg.HandshakeConcurrency = max(1, (hc+n-1)/n)
	cfg.SourceIPs = fleet.Sources(cfg.SourceIPs, i, n)
	cfg.URL = fleet.Target(targets, i, n)
}

// applyPartition narrows cfg, which describes a whole run or a part of it (Connections of
// TotalConnections), to p: p's share of the whole run's connections (a scenario's: of its peak
// and of every phase), numbered as the whole run numbers them, and the same part of the connect
// rate.
func applyPartition(cfg *engine.Config, p partition.Partition) {
	if cfg.TotalConnections == 0 {
		cfg.TotalConnections = cfg.Connections
	}
	share := int(p.Share(int64(cfg.TotalConnections)))
	if cfg.Connections > 0 {
		cfg.ConnectRate = cfg.ConnectRate * float64(share) / float64(cfg.Connections)
	}
	cfg.Partition, cfg.Connections = p, share
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
		return 0, false // one process: the caller runs it (and says when it waits for --start-at)
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
	applyWorker(&o.cfg, targets, w.Index, w.Count)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nbioLog(o.verbose) // stderr only: stdout is the interval stream

	rep := fleet.NewReporter(stdout)
	if o.cfg.Connections == 0 { // more workers than connections: nothing to do
		_ = rep.Done(0, nil)
		return exitOK
	}
	o.cfg.TuneProcess = true
	eng, err := engine.New(o.cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage
	}
	res, err := eng.Run(ctx, func(iv *stats.Interval) {
		if err := rep.Interval(iv); err != nil {
			fmt.Fprintf(stderr, "wsload run: %v\n", err)
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		var le *hostlimits.LimitError
		if errors.As(err, &le) {
			return exitLimits
		}
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitRunFailed
	}
	if err := rep.Done(res.Connections.RampS, res.ErrorSamples); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitOutput
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return exitOK
}

// wedgeMargin is how long past every bound of its run (runBound) a --procs worker may still be
// running before the parent calls it wedged, stops it and reports it: generous, since a worker
// on a busy host tears down slowly, and still finite, since a stopped or stuck worker would keep
// the parent waiting forever. Tests lower it.
var wedgeMargin = 30 * time.Second

// runBound is the longest a worker's run of cfg (resolved) can take from its start: the
// duration, the drain (the reply timeout), the close handshakes, and wedgeMargin.
func runBound(cfg engine.Config) time.Duration {
	return cfg.Duration + cfg.ReplyTimeout + cfg.CloseTimeout + wedgeMargin
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
	// Ctrl-C from here on reaches the workers (fleet.Run) and ends the run with exit 130, also
	// while everyone waits for the start.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	// The config as the workers resolve it: defaults filled in. It bounds the run (a wedged
	// worker is stopped after that) and is the result's config block, the same one a single
	// process records.
	cfg := o.cfg
	cfg.URL = targets[0]
	if rc, err := cfg.Resolved(); err == nil {
		cfg = rc
	}
	var mu sync.Mutex // fleet calls OnInterval from one goroutine; mu documents agg's owner
	rep, err := fleet.Run(ctx, fleet.Options{
		Procs: procs,
		Exe:   exe,
		Args:  wargs,
		Start: start,
		End:   start.Add(runBound(cfg)),
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
	mu.Lock()
	hdr := stats.Header{Version: Version, Target: strings.Join(targets, ","), Start: start, Config: cfg.Stats(), Generator: gen}
	if !rep.Interrupted {
		// The workers sent on schedule for the run's duration from the common start: that is
		// the load window the rates are over (each worker's drain and close follow it).
		hdr.Load = cfg.Duration
	}
	res := agg.Result(hdr)
	mu.Unlock()
	res.ErrorSamples = rep.Samples()
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
		fmt.Sprintf("generated by %s: CPU time is their sum, max_rss_bytes the sum of their peaks", plural(procs, "worker process", "worker processes")))
	warnings := rep.Warnings()
	res.Generator.Warnings = append(res.Generator.Warnings, warnings...)

	code := exitOK
	for _, w := range warnings {
		fmt.Fprintf(stderr, "wsload run: %s\n", w)
		code = exitRunFailed
	}
	return finish(rep.Interrupted, code, o, res, hlog, stdout, stderr)
}
