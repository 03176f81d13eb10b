package engine

import (
	"container/heap"
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/stats"
)

// sender writes scheduled messages for its share of the connections. One
// goroutine; a min-heap of next send times. Sends follow the schedule whether
// or not replies came (open model); when the goroutine cannot keep up, the
// lateness is recorded as send lag and included in the corrected latency.
type sender struct {
	e  *Engine
	sh *stats.Shard

	mu      sync.Mutex
	added   []due         // handed over by pollers, merged into q by run
	retimed []*flowState  // scenario flows whose timer changed (flowtimer.go)
	wake    chan struct{} // capacity 1: "added or retimed is not empty"

	q        dueHeap
	fq       flowHeap // scenario flows' timers, one entry per flow at most
	sweepAt  int64    // next expiry sweep of q's connections (reply.go)
	sweepPos int      // where in q the sweep under way goes on; 0 = none under way
	payload  []byte
	frame    []byte
	comp     *wsproto.Compressor // only when compression is negotiated somewhere
}

type due struct {
	at int64
	c  *conn
}

type dueHeap []due

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newSender(e *Engine, sh *stats.Shard) *sender {
	return &sender{e: e, sh: sh, wake: make(chan struct{}, 1)}
}

// add schedules c's first send at at; safe from any goroutine.
func (s *sender) add(c *conn, at int64) {
	s.mu.Lock()
	s.added = append(s.added, due{at, c})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sender) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var added []due
	var retimed []*flowState
	for {
		s.mu.Lock()
		added, s.added = s.added, added[:0]
		retimed, s.retimed = s.retimed, retimed[:0]
		s.mu.Unlock()
		for _, d := range added {
			heap.Push(&s.q, d)
		}
		s.retime(retimed)
		clear(retimed) // drop the pointers: a finished flow's connection can be collected
		if !s.fireFlows(ctx) {
			return
		}
		now := s.e.now()
		for len(s.q) > 0 && s.q[0].at <= now {
			if ctx.Err() != nil {
				return
			}
			d := &s.q[0]
			if next, ok := s.fire(d.c, d.at); ok {
				d.at = next
				heap.Fix(&s.q, 0)
			} else {
				heap.Pop(&s.q)
			}
			now = s.e.now()
		}
		wait := time.Hour
		if len(s.q) > 0 {
			if now >= s.sweepAt && s.sweep(now) {
				s.sweepAt = now + int64(sweepEvery)
			}
			wait = time.Duration(min(s.q[0].at, s.sweepAt) - now)
		}
		if len(s.fq) > 0 {
			wait = min(wait, time.Duration(s.fq[0].hat-now))
		}
		switch {
		case wait <= 0:
		case wait <= preciseWait:
			// Never shorter than minWait: at high rates the sends due in the
			// meantime go out as one batch, instead of a syscall per send.
			sleepPrecise(max(wait, minWait))
		default:
			// Wake a little early: Go timers fire up to a millisecond late here;
			// the next round finishes the wait with sleepPrecise.
			timer.Reset(wait - preciseWait/2)
			select {
			case <-ctx.Done():
				return
			case <-s.wake: // Reset above needs no drain: Go 1.23+ timers hold no stale value
			case <-timer.C:
			}
		}
	}
}

// preciseWait is the longest wait done with sleepPrecise instead of a Go
// timer. Go's runtime timers wake on a millisecond grid on Linux (a 50 µs
// timer fires after ~1.05 ms, measured on the 2-core machines): every send
// would leave up to 1 ms late and the corrected latency would carry the
// generator's own timer granularity. A nanosleep wakes within ~100 µs.
const preciseWait = 2 * time.Millisecond

// minWait is the shortest sleep: it bounds the sender's wake-ups to a few
// thousand a second (each costs a syscall and a context switch), at the
// price of sends up to minWait late at high rates.
const minWait = 200 * time.Microsecond

// sleepPrecise blocks the calling goroutine's thread in nanosleep for d
// (≤ preciseWait, so cancellation and new work wait at most that long).
func sleepPrecise(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}

// sweep expires the unanswered messages of the connections this sender
// sends for, so timeouts are counted when they happen even when a
// connection's next send is far off. It looks at most sweepChunk
// connections per call, so that sends due meanwhile are not held up, and
// reports whether it went through all of q. (Sends reorder q between calls:
// a connection may be looked at twice or not at all in one pass; it is
// then expired by the next pass or its next send.)
func (s *sender) sweep(now int64) bool {
	if s.sweepPos >= len(s.q) { // q shrank since the last call
		s.sweepPos = 0
		return true
	}
	end := min(s.sweepPos+sweepChunk, len(s.q))
	for _, d := range s.q[s.sweepPos:end] {
		c := d.c
		c.mu.Lock()
		if c.state == stOpen || c.state == stClosing {
			c.expire(now, s.sh)
		}
		c.mu.Unlock()
	}
	if end >= len(s.q) {
		s.sweepPos = 0
		return true
	}
	s.sweepPos = end
	return false
}

// sweepChunk is how many connections one sweep call looks at.
const sweepChunk = 512

// fire sends c's message scheduled at sched and returns the next send time;
// ok is false when c no longer sends.
func (s *sender) fire(c *conn, sched int64) (next int64, ok bool) {
	e := s.e
	if e.holdSend != nil {
		e.holdSend()
	}
	c.mu.Lock()
	if c.state != stOpen {
		c.mu.Unlock()
		return 0, false
	}
	now := e.now()
	c.expire(now, s.sh)
	seq := c.seq
	c.seq++
	s.payload = e.echo.AppendMessage(s.payload[:0], c.id, seq)
	if c.deflt {
		var err error
		if s.comp == nil {
			s.comp, err = wsproto.NewCompressor(wsproto.DefaultCompressionLevel)
		}
		if err == nil {
			s.frame, err = s.comp.AppendMessage(s.frame[:0], e.op, s.payload, c.mask())
		}
		if err != nil {
			c.mu.Unlock()
			s.sh.Error("compress")
			return 0, false
		}
	} else {
		s.frame = wsproto.AppendFrame(s.frame[:0], e.op, true, s.payload, c.mask())
	}
	c.out = append(c.out, pending{seq: seq, sched: sched, sent: now})
	bk := c.sendBackend()
	if err := c.write(s.frame); err != nil {
		// The message never went out: it is not sent, so it must not time out when the
		// close callback (which nbio runs once mu is free) counts what is still unanswered.
		// nbio closes the connection; its close callback records why.
		c.out = c.out[:len(c.out)-1]
		c.mu.Unlock()
		return 0, false
	}
	c.mu.Unlock()
	s.sh.SentFor(bk, len(s.payload), time.Duration(now-sched))
	return sched + e.period, true
}
