package engine

import (
	"container/heap"
	"context"
)

// Timers of scenario flows (sleeps, paced iterations, expect and ping
// timeouts, replay spacing, reconnect backoff) run on the senders, beside
// the echo grid, so no connection needs a goroutine or a runtime timer.
//
// The truth is flowState.timerAt, written under the connection's mutex: when
// the flow wants flowState.timer to be called (0: not at all). The sender
// keeps at most one heap entry per flow (flowState.hidx, owned by the sender
// goroutine) and reconciles it with timerAt when the flow asks (retimeLocked).
// An entry that fires re-reads timerAt under the mutex, so an entry that is
// early, or whose wait was cancelled or already satisfied, does nothing
// harmful: cancelling needs no round trip to the sender at all.

// flowHeap is a min-heap of flows by their entry's time, with positions
// tracked so that a flow's entry can be moved or removed.
type flowHeap []*flowState

func (h flowHeap) Len() int           { return len(h) }
func (h flowHeap) Less(i, j int) bool { return h[i].hat < h[j].hat }
func (h flowHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}
func (h *flowHeap) Push(x any) {
	f := x.(*flowState)
	f.hidx = len(*h)
	*h = append(*h, f)
}
func (h *flowHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	f.hidx = -1
	return f
}

// setTimer asks for f.timer at at (ns since Engine.base); 0 cancels. Called
// with the connection's mutex held.
func (f *flowState) setTimer(at int64) {
	if f.timerAt == at {
		return
	}
	f.timerAt = at
	if at == 0 || f.timerQueued {
		return // a cancelled entry fires harmlessly; a queued request reads timerAt later
	}
	f.timerQueued = true
	s := f.snd
	s.mu.Lock()
	s.retimed = append(s.retimed, f)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// retime reconciles the heap entries of flows whose timer changed.
func (s *sender) retime(fs []*flowState) {
	for _, f := range fs {
		f.c.mu.Lock()
		at := f.timerAt
		f.timerQueued = false
		f.c.mu.Unlock()
		s.place(f, at)
	}
}

// place puts f's heap entry at at, or removes it for 0. Sender goroutine only.
func (s *sender) place(f *flowState, at int64) {
	switch {
	case at == 0:
		if f.hidx >= 0 {
			heap.Remove(&s.fq, f.hidx)
		}
	case f.hidx >= 0:
		f.hat = at
		heap.Fix(&s.fq, f.hidx)
	default:
		f.hat = at
		heap.Push(&s.fq, f)
	}
}

// fireFlows runs the flow timers that are due; false when ctx is done.
func (s *sender) fireFlows(ctx context.Context) bool {
	e := s.e
	for len(s.fq) > 0 && s.fq[0].hat <= e.now() {
		if ctx.Err() != nil {
			return false
		}
		f := heap.Pop(&s.fq).(*flowState)
		c := f.c
		c.mu.Lock()
		now := e.now()
		at := f.timerAt
		switch {
		case at == 0: // cancelled
		case at > now: // moved later; a queued request may move it again
			c.mu.Unlock()
			s.place(f, at)
			continue
		default:
			f.timerAt = 0
			f.timer(now)
		}
		c.mu.Unlock()
	}
	return true
}
