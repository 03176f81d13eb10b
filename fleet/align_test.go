package fleet

import (
	"testing"
	"time"

	"github.com/wsload/wsload/stats"
)

func TestAligner(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	// iv makes worker w's interval ending at t0+end with sent = w*100+slot-ish marker.
	iv := func(end time.Duration, sent int64) *stats.Interval {
		x := stats.NewInterval(t0.Add(end-time.Second), t0.Add(end))
		x.Sent = sent
		x.Open = 1
		return x
	}
	ms := time.Millisecond
	type step struct {
		w    int           // worker; -1: advance the clock only; -2: worker w2 exits
		end  time.Duration // interval end
		sent int64         //
		exit int           // worker that exits (with w == -2)
		at   time.Duration // clock
		want []int64       // Sent of the intervals released by this step, in order
	}
	for _, tc := range []struct {
		name    string
		workers int
		steps   []step
		drain   []int64
	}{
		{"released when all reported", 2, []step{
			{w: 0, end: 1000 * ms, sent: 1, at: 1000 * ms},
			{w: 1, end: 1010 * ms, sent: 2, at: 1010 * ms, want: []int64{3}},
			{w: 1, end: 2010 * ms, sent: 4, at: 2010 * ms},
			{w: 0, end: 2000 * ms, sent: 8, at: 2020 * ms, want: []int64{12}},
		}, nil},
		{"held at most hold", 2, []step{
			{w: 0, end: 1000 * ms, sent: 1, at: 1000 * ms},
			{w: -1, at: 2900 * ms},
			{w: -1, at: 3000 * ms, want: []int64{1}},
			// worker 1 is late for slot 1, which is gone: it joins slot 2.
			{w: 1, end: 1000 * ms, sent: 2, at: 3100 * ms},
			{w: 0, end: 2000 * ms, sent: 4, at: 3100 * ms, want: []int64{6}},
		}, nil},
		{"a short last interval moves to the next slot", 1, []step{
			{w: 0, end: 1000 * ms, sent: 1, at: 1000 * ms, want: []int64{1}},
			{w: 0, end: 1200 * ms, sent: 2, at: 1200 * ms, want: []int64{2}},
		}, nil},
		{"an exited worker is not waited for", 2, []step{
			{w: 0, end: 1000 * ms, sent: 1, at: 1000 * ms},
			{w: -2, exit: 1, at: 1100 * ms, want: []int64{1}},
			{w: 0, end: 2000 * ms, sent: 2, at: 2000 * ms, want: []int64{2}},
		}, nil},
		{"out of order arrival is released in time order", 2, []step{
			{w: 0, end: 1000 * ms, sent: 1, at: 1000 * ms},
			{w: 0, end: 2000 * ms, sent: 2, at: 2000 * ms},
			// Worker 1 skipped slot 1 (it started late): reporting slot 2
			// completes slot 1 too.
			{w: 1, end: 2000 * ms, sent: 20, at: 2000 * ms, want: []int64{1, 22}},
		}, nil},
		{"drain releases the rest", 3, []step{
			{w: 0, end: 1000 * ms, sent: 1, at: 1000 * ms},
			{w: 0, end: 2000 * ms, sent: 2, at: 1000 * ms},
		}, []int64{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			var total int64
			a := newAligner(tc.workers, t0, time.Second, 2*time.Second, func(x *stats.Interval) {
				got = append(got, x.Sent)
				total += x.Sent
			})
			var in int64
			for i, s := range tc.steps {
				got = nil
				now := t0.Add(s.at)
				switch s.w {
				case -1:
					a.flush(now)
				case -2:
					a.exit(s.exit, now)
				default:
					in += s.sent
					a.add(s.w, iv(s.end, s.sent), now)
				}
				if !equalInts(got, s.want) {
					t.Fatalf("step %d: released %v, want %v", i, got, s.want)
				}
			}
			got = nil
			a.drain()
			if !equalInts(got, tc.drain) {
				t.Fatalf("drain released %v, want %v", got, tc.drain)
			}
			if total != in {
				t.Fatalf("released %d messages in all, want %d: the aligner must not lose or double data", total, in)
			}
		})
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
