// Package fleet spreads one wsload run over several worker processes on this
// host and merges what they measure into one stream of Intervals, so that a
// run larger than one process's open-file limit still gives one exact answer:
// histograms merge bucket by bucket, counters add, and seconds align on the
// wall clock.
//
// The parent starts N copies of its own executable with `--worker i/N`
// appended to the run's flags; each worker takes its share of the load
// (partition.Partition, Sources, Target), streams one line per second on its
// stdout through a Reporter, and ends with a Done line carrying its own
// totals. The parent side is Run:
//
//	rep, err := fleet.Run(ctx, fleet.Options{
//		Procs:      4,
//		Exe:        exe, // os.Executable()
//		Args:       []string{"run", "ws://127.0.0.1:8080/", "-c", "50000", "--start-at", "1767225600"},
//		Start:      time.Unix(1767225600, 0),
//		OnInterval: func(iv *stats.Interval) { agg.Add(iv) }, // merged, one per second, in order
//		Stderr:     os.Stderr,
//	})
//	if err != nil { ... }                // no worker could be started
//	for _, w := range rep.Warnings() { ... } // a worker that died: its data up to then is kept
//
// The worker side:
//
//	rep := fleet.NewReporter(os.Stdout)
//	eng, err := engine.New(cfg)
//	res, err := eng.Run(ctx, func(iv *stats.Interval) { _ = rep.Interval(iv) })
//	_ = rep.Done(res.Connections.RampS, res.ErrorSamples)
//
// Cancelling ctx sends SIGINT to every worker (they close their connections
// and report what they measured), and SIGKILL after Options.Grace.
package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/wsload/wsload/stats"
)

// Defaults for Options fields left zero.
const (
	DefaultHold   = 2 * time.Second
	DefaultGrace  = 15 * time.Second
	DefaultPeriod = time.Second
	// stderrLines is how many of a worker's last stderr lines a report keeps.
	stderrLines = 8
)

// Options configure Run.
type Options struct {
	// Procs is the number of worker processes, at least 1.
	Procs int
	// Exe is the wsload executable the workers run (os.Executable()).
	Exe string
	// Args are the worker's arguments, subcommand first; Run appends
	// "--worker i/N" for each.
	Args []string
	// Start is the workers' common start (their --start-at): seconds are
	// aligned from it. Zero means when Run is called.
	Start time.Time
	// OnInterval receives the merged Interval of each second, in time order,
	// from one goroutine.
	OnInterval func(*stats.Interval)
	// Stderr receives the workers' stderr, each line prefixed with
	// "worker i/N: "; nil discards it (reports still keep the last lines).
	Stderr io.Writer
	// Hold is how long a second waits for a worker that has not reported it
	// yet; Grace is how long workers get between SIGINT and SIGKILL once ctx
	// is done or End has passed; Period is the workers' interval. Zero values
	// are the defaults.
	Hold, Grace, Period time.Duration
	// End, when set, is the latest time the workers' run can be over
	// (start, duration, the drain and close bounds, a margin). A worker still
	// running then is wedged (stopped, or stuck): it is sent SIGINT, and
	// SIGKILL Grace later, and reported, with its data up to then kept. Zero:
	// no deadline but ctx.
	End time.Time
}

// Worker is what Run knows about one worker process.
type Worker struct {
	Index, Of int // worker Index of Of, counting from 1
	PID       int
	// Intervals counts the Interval lines received; LastEnd is the end of
	// the last one.
	Intervals int
	LastEnd   time.Time
	// Done is the worker's last line, nil when it never sent one (it died).
	Done *Done
	// Exit describes how the process ended ("exit status 1", "signal:
	// killed"); ExitCode is its exit code, -1 when a signal ended it.
	Exit     string
	ExitCode int
	// StreamErr is set when the worker's stdout was not the protocol.
	StreamErr error
	// Stderr holds the worker's last stderr lines.
	Stderr []string
	// Resource use from the worker's rusage, once it has ended.
	CPUUserS, CPUSysS float64
	MaxRSSBytes       int64
	// Overran is set when the worker was still running at Options.End and
	// was stopped by a signal.
	Overran bool
	ended   bool // its exit event reached Run's loop
}

// Name is "worker i/N (pid P)".
func (w *Worker) Name() string {
	return fmt.Sprintf("worker %d/%d (pid %d)", w.Index, w.Of, w.PID)
}

// Died reports whether the worker ended without its Done line: killed,
// crashed, or failed before it could run.
func (w *Worker) Died() bool { return w.Done == nil }

// Report is the outcome of Run: one entry per worker, in index order.
type Report struct {
	Workers []*Worker
	// Interrupted is set when Run's context was cancelled: the workers were
	// sent SIGINT, and a worker that stopped cleanly with a non-zero exit
	// code is then not worth a warning.
	Interrupted bool
	// overrun is how long after Options.End the wedged workers were stopped.
	overrun time.Duration
}

// Warnings says, for a human, which workers died or failed and what of
// their data was kept.
func (r *Report) Warnings() []string {
	var out []string
	for _, w := range r.Workers {
		var msg string
		switch {
		case w.Overran:
			kept := "it sent no data"
			if w.Intervals > 0 {
				kept = fmt.Sprintf("its data up to %s (%d intervals) is kept", w.LastEnd.UTC().Format("15:04:05"), w.Intervals)
			}
			msg = fmt.Sprintf("%s was still running %s after the run should have ended (stopped or stuck) and was stopped (%s): %s",
				w.Name(), r.overrun.Round(time.Second), w.Exit, kept)
		case w.Died():
			kept := "it sent no data"
			if w.Intervals > 0 {
				kept = fmt.Sprintf("its data up to %s (%d intervals) is kept", w.LastEnd.UTC().Format("15:04:05"), w.Intervals)
			}
			msg = fmt.Sprintf("%s died (%s): %s", w.Name(), w.Exit, kept)
		case w.StreamErr != nil:
			msg = fmt.Sprintf("%s: %v", w.Name(), w.StreamErr)
		case w.ExitCode != 0 && !r.Interrupted:
			msg = fmt.Sprintf("%s ended with %s", w.Name(), w.Exit)
		default:
			continue
		}
		if w.StreamErr != nil && w.Died() {
			msg += fmt.Sprintf("; %v", w.StreamErr)
		}
		if len(w.Stderr) > 0 {
			msg += "; its last stderr: " + strings.Join(w.Stderr, " | ")
		}
		out = append(out, msg)
	}
	return out
}

// Usage sums the workers' CPU time and peak RSS: the peaks of processes
// that ran side by side add up to an upper bound of their joint peak.
func (r *Report) Usage() (userS, sysS float64, maxRSSBytes int64) {
	for _, w := range r.Workers {
		userS += w.CPUUserS
		sysS += w.CPUSysS
		maxRSSBytes += w.MaxRSSBytes
	}
	return userS, sysS, maxRSSBytes
}

// DoneTotal merges the Totals of the workers' Done lines: what the workers
// themselves counted. For workers that all finished, it equals the merge of
// everything OnInterval received.
func (r *Report) DoneTotal() *stats.Interval {
	t := stats.NewInterval(time.Time{}, time.Time{})
	for _, w := range r.Workers {
		if w.Done != nil {
			t.Merge(w.Done.Total)
		}
	}
	return t
}

// Ramp is the slowest worker's ramp time, ok only when every worker
// established all its connections.
func (r *Report) Ramp() (rampS float64, ok bool) {
	for _, w := range r.Workers {
		if w.Done == nil || w.Done.RampS <= 0 {
			return 0, false
		}
		rampS = max(rampS, w.Done.RampS)
	}
	return rampS, len(r.Workers) > 0
}

// Samples merges the workers' error samples: one text per reason.
func (r *Report) Samples() map[string]string {
	out := map[string]string{}
	for _, w := range r.Workers {
		if w.Done == nil {
			continue
		}
		for k, v := range w.Done.Samples {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out
}

// event is one thing a worker's goroutines tell the loop in Run.
type event struct {
	w    int
	iv   *stats.Interval
	done *Done
	exit bool
}

// Run starts o.Procs workers, merges their streams into o.OnInterval and
// returns when every worker has ended. A worker that dies is reported in
// the Report, never as an error: its Intervals up to then are kept. Run
// returns an error only when the options are invalid or a worker could not
// be started (the workers already started are then stopped).
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Procs < 1 || o.Procs > MaxProcs {
		return nil, fmt.Errorf("fleet: %d worker processes: want 1 to %d", o.Procs, MaxProcs)
	}
	if o.Exe == "" {
		return nil, errors.New("fleet: no executable for the workers")
	}
	if o.Hold <= 0 {
		o.Hold = DefaultHold
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Period <= 0 {
		o.Period = DefaultPeriod
	}
	if o.Start.IsZero() {
		o.Start = time.Now()
	}
	emit := o.OnInterval
	if emit == nil {
		emit = func(*stats.Interval) {}
	}

	rep := &Report{Workers: make([]*Worker, o.Procs)}
	cmds := make([]*exec.Cmd, o.Procs)
	events := make(chan event, 4*o.Procs)
	var errMu sync.Mutex // serializes writes to o.Stderr
	var wg sync.WaitGroup

	for i := range cmds {
		w := &Worker{Index: i + 1, Of: o.Procs}
		rep.Workers[i] = w
		args := append(append([]string(nil), o.Args...), "--worker", fmt.Sprintf("%d/%d", w.Index, w.Of))
		cmd := exec.Command(o.Exe, args...)
		cmd.SysProcAttr = procAttr()
		stdout, err := cmd.StdoutPipe()
		if err == nil {
			var stderr io.ReadCloser
			if stderr, err = cmd.StderrPipe(); err == nil {
				if err = cmd.Start(); err == nil {
					w.PID = cmd.Process.Pid
					cmds[i] = cmd
					wg.Add(1)
					go func() {
						defer wg.Done()
						watch(i, w, cmd, stdout, stderr, events, o.Stderr, &errMu)
					}()
					continue
				}
			}
		}
		// Stop the workers already started; their events are not needed.
		for _, c := range cmds[:i] {
			_ = c.Process.Kill()
		}
		go func() {
			for range events {
			}
		}()
		wg.Wait()
		close(events)
		return nil, fmt.Errorf("fleet: start worker %d/%d (%s): %w", i+1, o.Procs, o.Exe, err)
	}

	al := newAligner(o.Procs, o.Start, o.Period, o.Hold, emit)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	ctxDone := ctx.Done()
	var killC, endC <-chan time.Time
	if !o.End.IsZero() {
		endT := time.NewTimer(time.Until(o.End))
		defer endT.Stop()
		endC = endT.C
	}
	running := o.Procs
	for running > 0 {
		var timerC <-chan time.Time
		if d := al.deadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
			timerC = timer.C
		}
		select {
		case ev := <-events:
			w := rep.Workers[ev.w]
			now := time.Now()
			switch {
			case ev.iv != nil:
				w.Intervals++
				w.LastEnd = ev.iv.End
				al.add(ev.w, ev.iv, now)
			case ev.done != nil:
				w.Done = ev.done
			case ev.exit:
				running--
				w.ended = true
				al.exit(ev.w, now)
			}
		case <-timerC:
			al.flush(time.Now())
		case <-ctxDone:
			ctxDone, endC = nil, nil
			rep.Interrupted = true
			signalAll(cmds, os.Interrupt)
			killC = time.After(o.Grace)
		case <-endC:
			// The run is over by every bound: whoever is still running is wedged.
			endC, ctxDone = nil, nil
			rep.overrun = o.Grace
			for i, c := range cmds {
				if w := rep.Workers[i]; !w.ended {
					w.Overran = true
					_ = c.Process.Signal(os.Interrupt)
				}
			}
			killC = time.After(o.Grace)
		case <-killC:
			killC = nil
			signalAll(cmds, os.Kill)
		}
		if timerC != nil && !timer.Stop() {
			select { // drain a fire that raced with another event
			case <-timer.C:
			default:
			}
		}
	}
	wg.Wait()
	al.drain()
	return rep, nil
}

// signalAll sends sig to every worker; one that already ended ignores it.
func signalAll(cmds []*exec.Cmd, sig os.Signal) {
	for _, c := range cmds {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(sig)
		}
	}
}

// watch reads worker i's stdout and stderr to the end, then waits for the
// process and records how it ended. It runs on its own goroutine; it writes
// w's fields that the loop in Run does not (PID is set before), and the loop
// reads them only after wg.Wait.
func watch(i int, w *Worker, cmd *exec.Cmd, stdout, stderr io.Reader, events chan<- event, fwd io.Writer, errMu *sync.Mutex) {
	var rw sync.WaitGroup
	rw.Add(1)
	go func() {
		defer rw.Done()
		prefix := fmt.Sprintf("worker %d/%d: ", w.Index, w.Of)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 4096), 1<<20)
		var last []string
		for sc.Scan() {
			line := sc.Text()
			if len(last) == stderrLines {
				last = append(last[:0], last[1:]...)
			}
			last = append(last, line)
			if fwd != nil {
				errMu.Lock()
				fmt.Fprintf(fwd, "%s%s\n", prefix, line)
				errMu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // a line over 1 MB: drain so the worker never blocks
		w.Stderr = last
	}()
	err := readStream(stdout,
		func(iv *stats.Interval) { events <- event{w: i, iv: iv} },
		func(d *Done) { events <- event{w: i, done: d} },
		func(text string) {
			if fwd != nil {
				errMu.Lock()
				fmt.Fprintf(fwd, "worker %d/%d (stdout): %s\n", w.Index, w.Of, text)
				errMu.Unlock()
			}
		})
	if err != nil {
		w.StreamErr = err
		// Keep draining so the worker is not blocked on a full pipe; what it
		// writes from here on cannot be trusted.
		_, _ = io.Copy(io.Discard, stdout)
	}
	rw.Wait()
	_ = cmd.Wait() // the exit status is read from ProcessState below
	if ps := cmd.ProcessState; ps != nil {
		w.Exit = ps.String()
		w.ExitCode = ps.ExitCode()
		w.CPUUserS, w.CPUSysS, w.MaxRSSBytes = usage(ps)
	}
	events <- event{w: i, exit: true}
}
