package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/stats"
)

// Helpers for echo-flow tests that pass on any machine, busy or quiet: a run
// lasts until what the test waits for has happened (all connections up, so
// many replies seen), with a deadline long enough for an oversubscribed
// machine under -race, and the test then checks exact counts. Timing is
// checked only by what holds on any machine: order, lower bounds, and
// ratios between figures of the same run.

// echoDeadline bounds every wait of the echo tests: it is the duration of a
// run that ends on a condition.
const echoDeadline = 120 * time.Second

// echoTimeout is the handshake, reply and close timeout of runs whose
// timeouts are not what the test is about: as long as the run's deadline, so
// a handshake or a reply that a busy machine delays is waited for, never
// counted as a failure. The engine waits for replies and closes only as long
// as some are missing, so it costs a quiet machine nothing.
const echoTimeout = echoDeadline

// echoInterval is how often a run hands its totals to the condition.
const echoInterval = 50 * time.Millisecond

// echoWait says when runEcho ends a run and what it lets a test hook in.
type echoWait struct {
	// until is asked, at every interval, whether what the test waits for
	// has happened, given the run's totals so far. Nil: the run lasts its
	// duration.
	until func(tot *stats.Interval) bool
	// interrupt ends the run by cancelling its context (an interrupt: close
	// code 1001, no drain) instead of as its duration would (drain, 1000).
	interrupt bool
	// setup runs after New and before Run (e.g. to set holdSend).
	setup func(*Engine)
	// observe sees every interval, in order, before until.
	observe func(iv *stats.Interval)
}

// echoRun is one engine run started by startEcho.
type echoRun struct {
	cfg   Config
	eng   *Engine
	w     echoWait
	start time.Time

	mu       sync.Mutex
	agg      *stats.Aggregate
	met      bool          // until held before the deadline
	ended    chan struct{} // closed when until held
	done     chan struct{} // closed when Run returned
	err      error         // Run's error
	res      *stats.Result // Run's result
	deadline time.Time     // no later than the run's own end by duration
}

// startEcho applies the test defaults to cfg (duration echoDeadline, timeouts
// echoTimeout, interval echoInterval; a field set by the test is kept), makes
// the engine and starts Run in its own goroutine.
func startEcho(t *testing.T, cfg Config, w echoWait) *echoRun {
	t.Helper()
	setDefault(&cfg.Duration, echoDeadline)
	setDefault(&cfg.HandshakeTimeout, echoTimeout)
	setDefault(&cfg.ReplyTimeout, echoTimeout)
	setDefault(&cfg.CloseTimeout, echoTimeout)
	setDefault(&cfg.Interval, echoInterval)
	r := &echoRun{cfg: cfg, w: w, start: time.Now(), ended: make(chan struct{}), done: make(chan struct{})}
	r.agg = stats.NewAggregate(r.start)
	r.deadline = r.start.Add(cfg.Duration)
	ctx, cancel := context.WithCancel(context.Background())
	sink := func(iv *stats.Interval) {
		if w.observe != nil {
			w.observe(iv)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.agg.Add(iv)
		// An interval after the deadline is the run's last, at its end by
		// duration: what holds then did not happen in time.
		if !r.met && w.until != nil && time.Now().Before(r.deadline) && w.until(r.agg.Total()) {
			r.met = true
			if w.interrupt {
				cancel()
			}
			close(r.ended)
		}
	}
	eng, err := New(r.cfg)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	r.eng = eng
	if !w.interrupt {
		eng.stop = r.ended
	}
	if w.setup != nil {
		w.setup(eng)
	}
	go func() {
		defer close(r.done)
		defer cancel()
		r.res, r.err = eng.Run(ctx, sink)
	}()
	return r
}

// wait waits for Run to return and gives the run's result. It fails the
// test when Run failed or when until did not hold before the deadline; an
// interrupted run must return within echoDeadline of the interrupt.
func (r *echoRun) wait(t *testing.T) *stats.Result {
	t.Helper()
	if r.w.interrupt {
		select {
		case <-r.done:
		case <-r.ended:
			select {
			case <-r.done:
			case <-time.After(echoDeadline):
				t.Fatalf("Run did not return within %v of the interrupt", echoDeadline)
			}
		}
	} else {
		<-r.done
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res
	if r.w.until != nil && !r.met {
		t.Fatalf("what the test waited for did not happen within %v: connections %+v messages %+v errors %v",
			r.cfg.Duration, res.Connections, res.Messages, res.Errors)
	}
	return res
}

// runEcho runs cfg until w.until holds (startEcho, then wait).
func runEcho(t *testing.T, cfg Config, w echoWait) (*stats.Result, *Engine) {
	t.Helper()
	r := startEcho(t, cfg, w)
	return r.wait(t), r.eng
}

// allUp waits for n connections established and at least msgs replies.
func allUp(n int, msgs int64) func(tot *stats.Interval) bool {
	return func(tot *stats.Interval) bool {
		return tot.Established == int64(n) && tot.Received >= msgs
	}
}

// allFailed waits for n connection attempts failed.
func allFailed(n int) func(tot *stats.Interval) bool {
	return func(tot *stats.Interval) bool { return tot.Failed == int64(n) }
}

// allClosed waits for n established connections closed (by the target:
// the run has not ended yet).
func allClosed(n int) func(tot *stats.Interval) bool {
	return func(tot *stats.Interval) bool { return tot.Established == int64(n) && tot.Closed == int64(n) }
}
