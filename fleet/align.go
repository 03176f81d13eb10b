package fleet

import (
	"time"

	"github.com/wsload/wsload/stats"
)

// aligner merges the Intervals of several workers that belong to the same
// wall-clock second and releases the merged Intervals in time order.
//
// An Interval's slot is its end, in whole periods since the common start,
// rounded: workers that start together (--start-at) rotate within a few
// milliseconds of each other, so their k-th seconds share slot k. A slot is
// released when every live worker has reported it (or a later one), or when
// hold has passed since its first Interval arrived, so a stuck worker delays
// the live line by at most hold. Invariants: each worker contributes at most
// one Interval per slot (a second Interval that rounds into a slot the
// worker already filled, such as a short last one, moves to the next slot),
// and nothing is released out of order (an Interval for a slot already
// released, from a worker more than hold late, joins the next slot): the
// totals stay exact whatever the timing.
type aligner struct {
	start   time.Time
	period  time.Duration
	hold    time.Duration
	emit    func(*stats.Interval)
	last    []int64 // per worker: the highest slot it filled, -1 before any
	live    []bool
	pending map[int64]*pendingSlot
	next    int64 // the lowest slot that may still be released
}

type pendingSlot struct {
	iv    *stats.Interval
	first time.Time // when its first Interval arrived
}

func newAligner(workers int, start time.Time, period, hold time.Duration, emit func(*stats.Interval)) *aligner {
	a := &aligner{start: start, period: period, hold: hold, emit: emit,
		last: make([]int64, workers), live: make([]bool, workers), pending: map[int64]*pendingSlot{}}
	for i := range a.last {
		a.last[i] = -1
		a.live[i] = true
	}
	return a
}

// slotOf is iv's end in periods since the start, rounded to the nearest.
func (a *aligner) slotOf(iv *stats.Interval) int64 {
	d := iv.End.Sub(a.start)
	if d < 0 {
		return 0
	}
	return int64((d + a.period/2) / a.period)
}

// add takes worker w's next Interval.
func (a *aligner) add(w int, iv *stats.Interval, now time.Time) {
	slot := max(a.slotOf(iv), a.last[w]+1, a.next)
	a.last[w] = slot
	p := a.pending[slot]
	if p == nil {
		p = &pendingSlot{iv: stats.NewInterval(time.Time{}, time.Time{}), first: now}
		a.pending[slot] = p
	}
	p.iv.Merge(iv)
	a.flush(now)
}

// exit marks worker w as gone: no slot waits for it any more.
func (a *aligner) exit(w int, now time.Time) {
	a.live[w] = false
	a.flush(now)
}

// flush releases, in order, every slot that is complete or has waited hold.
func (a *aligner) flush(now time.Time) {
	for len(a.pending) > 0 {
		s, p := a.lowest()
		if !a.complete(s) && now.Sub(p.first) < a.hold {
			return
		}
		delete(a.pending, s)
		a.next = s + 1
		a.emit(p.iv)
	}
}

// drain releases every pending slot in order, whoever is still live.
func (a *aligner) drain() {
	for len(a.pending) > 0 {
		s, p := a.lowest()
		delete(a.pending, s)
		a.next = s + 1
		a.emit(p.iv)
	}
}

// deadline is when the lowest pending slot stops waiting; zero when nothing
// is pending.
func (a *aligner) deadline() time.Time {
	if len(a.pending) == 0 {
		return time.Time{}
	}
	_, p := a.lowest()
	return p.first.Add(a.hold)
}

func (a *aligner) complete(slot int64) bool {
	for w, l := range a.last {
		if a.live[w] && l < slot {
			return false
		}
	}
	return true
}

func (a *aligner) lowest() (int64, *pendingSlot) {
	first := true
	var s int64
	for k := range a.pending {
		if first || k < s {
			s, first = k, false
		}
	}
	return s, a.pending[s]
}
