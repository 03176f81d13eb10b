package stats

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestRecorderConcurrent records from many goroutines, several per shard and
// spread over shards, while Rotate runs; the totals must be exact.
func TestRecorderConcurrent(t *testing.T) {
	const (
		shards     = 3
		goroutines = 16
		perG       = 2000
	)
	start := time.Unix(1000, 0)
	rec := NewRecorder(shards)
	agg := NewAggregate(start)

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half the goroutines share shard 0, the rest spread out.
			key := g
			if g%2 == 0 {
				key = 0
			}
			s := rec.Shard(key)
			for i := range perG {
				s.ConnAttempted()
				if i%10 == 0 {
					s.ConnFailed("refused")
					continue
				}
				s.ConnEstablished(time.Millisecond)
				s.Sent(64, time.Duration(i%7)*time.Microsecond)
				s.Received(64)
				s.RTT(time.Duration(100+i)*time.Microsecond, 100*time.Microsecond)
				s.Step("login", 2*time.Millisecond, time.Millisecond)
				if i%3 == 0 {
					s.TimedOut()
					s.Unmatched()
					s.Error("read")
				}
				s.ConnClosed(1000)
			}
		}()
	}
	done := make(chan struct{})
	var rotWG sync.WaitGroup
	rotWG.Add(1)
	go func() {
		defer rotWG.Done()
		for i := 1; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			agg.Add(rec.Rotate(start.Add(time.Duration(i) * time.Millisecond)))
			time.Sleep(time.Millisecond)
		}
	}()
	wg.Wait()
	close(done)
	rotWG.Wait()
	agg.Add(rec.Rotate(start.Add(time.Hour)))

	tot := agg.Total()
	n := int64(goroutines * perG)
	failed := int64(goroutines * (perG / 10))
	ok := n - failed
	var every3 int64
	for i := range perG {
		if i%10 != 0 && i%3 == 0 {
			every3++
		}
	}
	every3 *= goroutines
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"attempted", tot.Attempted, n},
		{"failed", tot.Failed, failed},
		{"established", tot.Established, ok},
		{"closed", tot.Closed, ok},
		{"sent", tot.Sent, ok},
		{"received", tot.Received, ok},
		{"bytes sent", tot.BytesSent, 64 * ok},
		{"bytes received", tot.BytesReceived, 64 * ok},
		{"timed out", tot.TimedOut, every3},
		{"unmatched", tot.Unmatched, every3},
		{"errors[refused]", tot.Errors["refused"], failed},
		{"errors[read]", tot.Errors["read"], every3},
		{"conn failures[refused]", tot.ConnFailures["refused"], failed},
		{"conn failures[read]", tot.ConnFailures["read"], 0},
		{"close codes[1000]", tot.CloseCodes[1000], ok},
		{"handshake count", tot.Handshake.TotalCount(), ok},
		{"rtt count", tot.RTT.TotalCount(), ok},
		{"rtt uncorrected count", tot.RTTUncorrected.TotalCount(), ok},
		{"send lag count", tot.SendLag.TotalCount(), ok},
		{"step corrected count", tot.Steps["login"].Corrected.TotalCount(), ok},
		{"step uncorrected count", tot.Steps["login"].Uncorrected.TotalCount(), ok},
		{"open now", rec.Open(), 0},
		{"open at end", tot.Open, 0},
	} {
		if c.got != c.want {
			t.Fatalf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

func TestRotateResets(t *testing.T) {
	t0 := time.Unix(0, 0)
	rec := NewRecorder(2)
	for key := range 4 {
		s := rec.Shard(key)
		s.ConnAttempted()
		s.ConnEstablished(time.Millisecond)
		s.Sent(10, 0)
		s.RTT(time.Millisecond, time.Millisecond)
		s.Step("a", time.Millisecond, time.Millisecond)
		s.Error("write")
		s.ConnFailed("timeout")
	}
	rec.Shard(1).ConnClosed(1006)

	first := rec.Rotate(t0.Add(time.Second))
	if first.Attempted != 4 || first.Established != 4 || first.Sent != 4 || first.RTT.TotalCount() != 4 ||
		first.Errors["write"] != 4 || first.Errors["timeout"] != 4 || first.CloseCodes[1006] != 1 ||
		first.Steps["a"].Corrected.TotalCount() != 4 {
		t.Fatalf("first interval lost events: %+v", first)
	}
	if first.Open != 3 || first.PeakOpen != 4 {
		t.Fatalf("first interval open %d peak %d, want 3 and 4", first.Open, first.PeakOpen)
	}

	second := rec.Rotate(t0.Add(2 * time.Second))
	if !second.Start.Equal(first.End) || !second.End.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("second interval spans %v..%v, want %v..%v", second.Start, second.End, first.End, t0.Add(2*time.Second))
	}
	if second.Attempted != 0 || second.Established != 0 || second.Sent != 0 || second.Failed != 0 ||
		second.RTT.TotalCount() != 0 || second.Handshake.TotalCount() != 0 || second.ErrorCount() != 0 ||
		len(second.CloseCodes) != 0 || len(second.Steps) != 0 {
		t.Fatalf("second interval not empty after Rotate: %+v", second)
	}
	// The gauge carries over: still 3 open, and the peak of an idle
	// interval is its level.
	if second.Open != 3 || second.PeakOpen != 3 {
		t.Fatalf("second interval open %d peak %d, want 3 and 3", second.Open, second.PeakOpen)
	}

	// Recording after two swaps lands in a reused spare and is counted once.
	rec.Shard(0).Sent(1, 0)
	rec.Shard(0).Step("a", time.Millisecond, time.Millisecond)
	third := rec.Rotate(t0.Add(3 * time.Second))
	if third.Sent != 1 || third.SendLag.TotalCount() != 1 || third.Steps["a"].Corrected.TotalCount() != 1 {
		t.Fatalf("third interval: sent %d, send lag count %d; want 1 and 1", third.Sent, third.SendLag.TotalCount())
	}
}

func TestShardKeys(t *testing.T) {
	rec := NewRecorder(3)
	for _, tc := range []struct{ a, b int }{{0, 3}, {1, 4}, {-1, 1}, {-4, 1}, {5, 2}} {
		if rec.Shard(tc.a) != rec.Shard(tc.b) {
			t.Fatalf("Shard(%d) != Shard(%d)", tc.a, tc.b)
		}
	}
	if rec.Shard(0) == rec.Shard(1) {
		t.Fatalf("Shard(0) == Shard(1) with 3 shards")
	}
	if one := NewRecorder(0); one.Shard(7) == nil {
		t.Fatalf("NewRecorder(0) has no shard")
	}
}

// TestIntervalMergeEqualsSingle: recording events split over two recorders
// and merging their intervals equals recording all of them into one.
func TestIntervalMergeEqualsSingle(t *testing.T) {
	t0 := time.Unix(100, 0)
	one, a, b := NewRecorder(1), NewRecorder(2), NewRecorder(3)
	for i := range 1000 {
		split := a
		if i%3 == 0 {
			split = b
		}
		for _, r := range []*Recorder{one, split} {
			s := r.Shard(i)
			s.ConnRequested(2)
			s.ConnAttempted()
			s.ConnNotStarted(1)
			s.HandshakeWaited(time.Duration(i) * time.Millisecond)
			s.ConnEstablished(time.Duration(i) * time.Microsecond)
			s.Sent(i, time.Duration(i%50)*time.Microsecond)
			s.Received(2 * i)
			s.RTT(time.Duration(i*i)*time.Microsecond, time.Duration(i)*time.Microsecond)
			s.Step(fmt.Sprintf("s%d", i%3), time.Duration(i)*time.Millisecond, time.Duration(i)*time.Microsecond)
			s.ConnClosed(1000 + i%2)
			s.Error(fmt.Sprintf("e%d", i%4))
			if i%5 == 0 {
				s.ConnFailed("refused")
				s.TimedOut()
			}
		}
	}
	want := one.Rotate(t0.Add(time.Second))
	got := a.Rotate(t0.Add(time.Second))
	got.Merge(b.Rotate(t0.Add(time.Second)))
	got.Start, want.Start = t0, t0 // the recorders were created at different instants
	if err := equalIntervals(got, want); err != nil {
		t.Fatalf("merged interval differs from recording into one: %v", err)
	}
}

func equalIntervals(a, b *Interval) error {
	if !a.Start.Equal(b.Start) || !a.End.Equal(b.End) {
		return fmt.Errorf("span %v..%v vs %v..%v", a.Start, a.End, b.Start, b.End)
	}
	ca := [...]int64{a.Requested, a.Attempted, a.Established, a.Failed, a.NotStarted, a.Closed, a.Sent, a.Received, a.BytesSent, a.BytesReceived, a.TimedOut, a.Unmatched, a.Clamped, a.Open}
	cb := [...]int64{b.Requested, b.Attempted, b.Established, b.Failed, b.NotStarted, b.Closed, b.Sent, b.Received, b.BytesSent, b.BytesReceived, b.TimedOut, b.Unmatched, b.Clamped, b.Open}
	if ca != cb {
		return fmt.Errorf("counters %v vs %v", ca, cb)
	}
	if fmt.Sprint(a.Errors) != fmt.Sprint(b.Errors) || fmt.Sprint(a.ConnFailures) != fmt.Sprint(b.ConnFailures) ||
		fmt.Sprint(a.CloseCodes) != fmt.Sprint(b.CloseCodes) {
		return fmt.Errorf("maps %v %v %v vs %v %v %v", a.Errors, a.ConnFailures, a.CloseCodes, b.Errors, b.ConnFailures, b.CloseCodes)
	}
	if !a.Handshake.Equals(b.Handshake) || !a.RTT.Equals(b.RTT) || !a.RTTUncorrected.Equals(b.RTTUncorrected) || !a.SendLag.Equals(b.SendLag) ||
		count(a.HandshakeWait) != count(b.HandshakeWait) || count(a.HandshakeWait) > 0 && !a.HandshakeWait.Equals(b.HandshakeWait) {
		return fmt.Errorf("histograms differ")
	}
	if len(a.Steps) != len(b.Steps) {
		return fmt.Errorf("%d steps vs %d", len(a.Steps), len(b.Steps))
	}
	for name, s := range a.Steps {
		o := b.Steps[name]
		if o == nil || !s.Corrected.Equals(o.Corrected) || !s.Uncorrected.Equals(o.Uncorrected) {
			return fmt.Errorf("step %q differs", name)
		}
	}
	return nil
}

func TestShardAllocationFree(t *testing.T) {
	rec := NewRecorder(1)
	s := rec.Shard(0)
	// First use of each name and code may allocate; steady state must not.
	s.ConnFailed("refused")
	s.Error("read")
	s.ConnClosed(1000)
	s.Step("login", time.Millisecond, time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() {
		s.ConnAttempted()
		s.ConnEstablished(time.Millisecond)
		s.Sent(64, time.Microsecond)
		s.Received(64)
		s.RTT(2*time.Millisecond, time.Millisecond)
		s.Step("login", time.Millisecond, time.Millisecond)
		s.TimedOut()
		s.Unmatched()
		s.Error("read")
		s.ConnFailed("refused")
		s.ConnClosed(1000)
	})
	if allocs != 0 {
		t.Fatalf("hot path allocates %v times per round", allocs)
	}
}

func BenchmarkShardRTT(b *testing.B) {
	s := NewRecorder(1).Shard(0)
	b.ReportAllocs()
	var i int
	for b.Loop() {
		i++
		s.RTT(time.Duration(i&0xffff)*time.Microsecond, time.Duration(i&0xfff)*time.Microsecond)
	}
}

func BenchmarkShardRTTParallel(b *testing.B) {
	rec := NewRecorder(4)
	b.ReportAllocs()
	var key int
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		s := rec.Shard(key)
		key++
		mu.Unlock()
		i := 0
		for pb.Next() {
			i++
			s.RTT(time.Duration(i&0xffff)*time.Microsecond, time.Duration(i&0xfff)*time.Microsecond)
		}
	})
}
