package stats

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recordBackends records a deterministic second: for each backend name, n
// connections established through it, msgs messages each with RTTs of
// base+i µs, one timeout and one error per backend.
func recordBackends(rec *Recorder, counts map[string]int, msgs int, base time.Duration) {
	key := 0
	for name, n := range counts {
		b := rec.Backend(name)
		for range n {
			s := rec.Shard(key)
			key++
			s.ConnAttempted()
			s.ConnEstablished(time.Millisecond)
			s.BackendEstablished(b)
			for i := range msgs {
				s.SentFor(b, 64, 0)
				s.ReceivedFor(b, 64)
				s.RTTFor(b, base+time.Duration(i)*time.Microsecond, base)
			}
		}
		s := rec.Shard(key)
		s.TimedOutFor(b)
		s.Error("read")
		s.BackendError(b, "read")
	}
}

func TestBackendsAggregate(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(3)
	rec.SetStart(t0)
	agg := NewAggregate(t0)

	recordBackends(rec, map[string]int{"b1": 10, "b2": 5}, 20, time.Millisecond)
	unknown := rec.Backend("")
	rec.Shard(0).ConnFailed("refused")
	rec.Shard(0).BackendFailed(unknown, "refused")
	agg.Add(rec.Rotate(t0.Add(time.Second)))

	// Second 2: b2 loses all its connections, b1 gets 10 more.
	recordBackends(rec, map[string]int{"b1": 10}, 0, 0)
	for i := range 5 {
		rec.Shard(i).ConnClosed(1006)
		rec.Shard(i).BackendClosed(rec.Backend("b2"), 1006)
	}
	agg.Add(rec.Rotate(t0.Add(2 * time.Second)))

	res := agg.Result(Header{Target: "ws://127.0.0.1:1/", Start: t0, Config: Config{BackendFrom: "header:X-Backend"}})
	b1, b2, un := res.Backends["b1"], res.Backends["b2"], res.Backends[UnknownBackend]
	if len(res.Backends) != 3 {
		t.Fatalf("backends %v, want b1, b2 and %s", res.Backends, UnknownBackend)
	}
	for _, c := range []struct {
		name      string
		got, want BackendConnections
	}{
		{"b1", b1.Connections, BackendConnections{Established: 20, PeakOpen: 20, OpenAtEnd: 20}},
		{"b2", b2.Connections, BackendConnections{Established: 5, Closed: 5, PeakOpen: 5}},
		{"unknown", un.Connections, BackendConnections{Failed: 1}},
	} {
		if c.got != c.want {
			t.Fatalf("%s connections = %+v, want %+v", c.name, c.got, c.want)
		}
	}
	if b1.Messages != (BackendMessages{Sent: 200, Received: 200, TimedOut: 2}) {
		t.Fatalf("b1 messages = %+v", b1.Messages)
	}
	if b2.CloseCodes[1006] != 5 || b2.Errors["read"] != 1 || un.Errors["refused"] != 1 {
		t.Fatalf("b2 close codes %v errors %v, unknown errors %v", b2.CloseCodes, b2.Errors, un.Errors)
	}
	// b1's RTTs are 1000..1019 µs, b2's the same: p99 within precision.
	if b1.RTT.Count != 200 || b2.RTT.Count != 100 || math.Abs(float64(b1.RTT.P99US-1019)) > 2 {
		t.Fatalf("rtt b1 %+v b2 count %d", b1.RTT, b2.RTT.Count)
	}
	// Backends add up to the run-wide figures.
	var est, recv int64
	for _, b := range res.Backends {
		est += b.Connections.Established
		recv += b.Messages.Received
	}
	if est != res.Connections.Established || recv != res.Messages.Received {
		t.Fatalf("backends sum to %d established %d received, run has %d and %d", est, recv, res.Connections.Established, res.Messages.Received)
	}

	s := res.BackendSpread
	if s == nil || s.By != "established" || s.Backends != 2 || s.Min != 5 || s.Max != 20 || s.MaxMinRatio == nil || *s.MaxMinRatio != 4 {
		t.Fatalf("spread = %+v", s)
	}
	if p := s.PeakOpen; p == nil || p.By != "peak_open" || p.Min != 5 || p.Max != 20 {
		t.Fatalf("peak open spread = %+v", p)
	}

	var text bytes.Buffer
	if err := WriteText(&text, res); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	for _, want := range []string{"Backends (by header:X-Backend)", "  b1 ", "  b2 ", UnknownBackend, "spread over 2 backends: established max/min 4.00 (20/5), cv 0.600"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, text.String())
		}
	}
}

func TestBackendsJSONRoundTrip(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(2)
	rec.SetStart(t0)
	recordBackends(rec, map[string]int{"b1": 3, "b2": 3}, 5, 2*time.Millisecond)
	agg := NewAggregate(t0)
	agg.Add(rec.Rotate(t0.Add(time.Second)))
	res := agg.Result(Header{Target: "ws://127.0.0.1:1/", Start: t0})
	res.SLO = []Verdict{{Objective: "rtt.p99<50ms", Metric: "rtt.p99", Op: "<", Threshold: 50000, Actual: 2004, Unit: "us", OK: true}}

	var buf bytes.Buffer
	if err := EncodeResult(&buf, res); err != nil {
		t.Fatalf("EncodeResult: %v", err)
	}
	for _, want := range []string{`"backends": {`, `"b1": {`, `"backend_spread": {`, `"max_min_ratio": 1`, `"by": "established"`, `"slo": [`} {
		if !strings.Contains(buf.String(), want) {
			t.Fatalf("JSON lacks %s:\n%s", want, buf.String())
		}
	}
	got, err := DecodeResult(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("DecodeResult: %v", err)
	}
	a, _ := json.Marshal(res)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the result:\n%s\n%s", a, b)
	}
	l := got.Backends["b2"].RTT
	h, err := l.Histogram()
	if err != nil || h.TotalCount() != 15 {
		t.Fatalf("b2 rtt histogram: %v, count %d", err, h.TotalCount())
	}

	// A tampered backend histogram is refused like a run-wide one.
	bad := strings.Replace(buf.String(), `"count": 15`, `"count": 16`, 1)
	if _, err := DecodeResult(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "backends[") {
		t.Fatalf("DecodeResult of a bad backend hdr: %v", err)
	}
}

// TestBackendsMerge merges the same second of two processes: counters and
// histograms add up, the open gauges too.
func TestBackendsMerge(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var ivs []*Interval
	for p, counts := range []map[string]int{{"b1": 4, "b2": 2}, {"b2": 3, "b3": 1}} {
		rec := NewRecorder(2)
		rec.SetStart(t0)
		recordBackends(rec, counts, 10, time.Duration(p+1)*time.Millisecond)
		ivs = append(ivs, rec.Rotate(t0.Add(time.Second)))
	}
	m := NewInterval(time.Time{}, time.Time{})
	for _, iv := range ivs {
		m.Merge(iv)
	}
	want := map[string]struct{ est, open, recv, rtt int64 }{
		"b1": {4, 4, 40, 40},
		"b2": {5, 5, 50, 50},
		"b3": {1, 1, 10, 10},
	}
	if len(m.Backends) != len(want) {
		t.Fatalf("merged backends %v", m.Backends)
	}
	for name, w := range want {
		d := m.Backends[name]
		if d.Established != w.est || d.Open != w.open || d.PeakOpen != w.open || d.Received != w.recv || count(d.RTT) != w.rtt {
			t.Fatalf("%s = est %d open %d peak %d recv %d rtt %d, want %+v", name, d.Established, d.Open, d.PeakOpen, d.Received, count(d.RTT), w)
		}
	}
	// b2's RTTs came from both processes: 1000..1009 and 2000..2009 µs.
	if lo, hi := m.Backends["b2"].RTT.Min(), m.Backends["b2"].RTT.Max(); lo != 1000 || hi < 2008 || hi > 2010 {
		t.Fatalf("b2 merged rtt range %d..%d", lo, hi)
	}
	// The inputs are not modified.
	if ivs[0].Backends["b2"].Established != 2 {
		t.Fatalf("Merge modified its input: %+v", ivs[0].Backends["b2"])
	}
}

// TestForMethodsMatchPlain pins that the per-backend variants record the
// run-wide figures exactly as the plain methods do.
func TestForMethodsMatchPlain(t *testing.T) {
	plain, with := NewRecorder(1), NewRecorder(1)
	b := with.Backend("b1")
	for _, rec := range []*Recorder{plain, with} {
		s := rec.Shard(0)
		for i := range 50 {
			lag := time.Duration(i) * time.Millisecond
			if rec == plain {
				s.Sent(10, lag)
				s.Received(12)
				s.RTT(lag+time.Millisecond, lag)
				s.TimedOut()
			} else {
				s.SentFor(b, 10, lag)
				s.ReceivedFor(b, 12)
				s.RTTFor(b, lag+time.Millisecond, lag)
				s.TimedOutFor(b)
			}
		}
		s.RTT(2*time.Hour, time.Second) // clamped
	}
	now := time.Now()
	p, w := plain.Rotate(now), with.Rotate(now)
	w.Backends = nil
	p.Start, w.Start = now, now
	for name, pair := range map[string][2]int64{
		"sent": {p.Sent, w.Sent}, "bytes sent": {p.BytesSent, w.BytesSent}, "received": {p.Received, w.Received},
		"bytes received": {p.BytesReceived, w.BytesReceived}, "timed out": {p.TimedOut, w.TimedOut}, "clamped": {p.Clamped, w.Clamped},
		"rtt": {count(p.RTT), count(w.RTT)}, "rtt p99": {Quantile(p.RTT, 99), Quantile(w.RTT, 99)},
		"rtt uncorrected p50": {Quantile(p.RTTUncorrected, 50), Quantile(w.RTTUncorrected, 50)},
		"send lag p90":        {Quantile(p.SendLag, 90), Quantile(w.SendLag, 90)},
	} {
		if pair[0] != pair[1] {
			t.Fatalf("%s: plain %d, per-backend variant %d", name, pair[0], pair[1])
		}
	}
}

func TestBackendGaugeAcrossIntervals(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(1)
	rec.SetStart(t0)
	agg := NewAggregate(t0)
	b := rec.Backend("b1")
	s := rec.Shard(0)
	open := func(n int) {
		for range n {
			s.BackendEstablished(b)
		}
	}
	closeN := func(n int) {
		for range n {
			s.BackendClosed(b, 1000)
		}
	}
	open(8)
	closeN(6) // peak 8 within the second, 2 at its end
	iv1 := rec.Rotate(t0.Add(time.Second))
	// Nothing happens in the second second: the gauge still reports 2 open.
	iv2 := rec.Rotate(t0.Add(2 * time.Second))
	open(3)
	iv3 := rec.Rotate(t0.Add(3 * time.Second))
	for i, c := range []struct {
		iv         *Interval
		open, peak int64
	}{{iv1, 2, 8}, {iv2, 2, 2}, {iv3, 5, 5}} {
		d := c.iv.Backends["b1"]
		if d == nil || d.Open != c.open || d.PeakOpen != c.peak {
			t.Fatalf("interval %d: b1 = %+v, want open %d peak %d", i+1, d, c.open, c.peak)
		}
		agg.Add(c.iv)
	}
	if d := agg.Total().Backends["b1"]; d.Open != 5 || d.PeakOpen != 8 {
		t.Fatalf("aggregate b1 open %d peak %d, want 5 and 8", d.Open, d.PeakOpen)
	}
	if r := agg.Result(Header{}); r.Backends["b1"].Connections.PeakOpen != 8 {
		t.Fatalf("result peak_open = %d, want 8", r.Backends["b1"].Connections.PeakOpen)
	}
}

func TestBackendNames(t *testing.T) {
	rec := NewRecorder(1)
	if a, b := rec.Backend(""), rec.Backend(UnknownBackend); a != b || a.Name() != UnknownBackend {
		t.Fatalf("empty name gave %q, want the %s backend", a.Name(), UnknownBackend)
	}
	if rec.Backend("b1") != rec.Backend("b1") {
		t.Fatalf("the same name gave two backends")
	}
	for i := range MaxBackends + 10 {
		rec.Backend("s" + strconv.Itoa(i))
	}
	if got := rec.Backend("one-too-many").Name(); got != OtherBackends {
		t.Fatalf("backend beyond MaxBackends named %q, want %q", got, OtherBackends)
	}
	if n := len(rec.backends.list); n != MaxBackends+1 {
		t.Fatalf("%d backends registered, want %d (the cap plus %s)", n, MaxBackends+1, OtherBackends)
	}
}

func TestComputeSpread(t *testing.T) {
	one := 1.0
	for _, c := range []struct {
		values []int64
		ratio  *float64
		cv     float64
	}{
		{[]int64{100, 100, 100}, &one, 0},
		{[]int64{50, 150}, ptr(3.0), 0.5},
		{[]int64{0, 10}, nil, 1},
		{[]int64{7}, &one, 0},
		{[]int64{0, 0}, nil, 0},
	} {
		s := ComputeSpread("established", c.values)
		if (s.MaxMinRatio == nil) != (c.ratio == nil) || (c.ratio != nil && math.Abs(*s.MaxMinRatio-*c.ratio) > 1e-9) {
			t.Fatalf("%v: max/min %v, want %v", c.values, s.MaxMinRatio, c.ratio)
		}
		if math.Abs(s.CV-c.cv) > 1e-9 {
			t.Fatalf("%v: cv %v, want %v", c.values, s.CV, c.cv)
		}
	}
	if ComputeSpread("established", nil) != nil {
		t.Fatalf("spread of no backends is not nil")
	}
}

func ptr[T any](v T) *T { return &v }

// TestBackendHotPathAllocs checks the per-message methods do not allocate
// once the backend's slot and histogram exist, and that rotating keeps them.
func TestBackendHotPathAllocs(t *testing.T) {
	rec := NewRecorder(1)
	b := rec.Backend("b1")
	s := rec.Shard(0)
	warm := func() {
		s.SentFor(b, 64, time.Microsecond)
		s.ReceivedFor(b, 64)
		s.RTTFor(b, time.Millisecond, time.Millisecond)
		s.TimedOutFor(b)
	}
	warm()
	rec.Rotate(time.Now())
	warm() // the swapped-in spare gets its slot
	rec.Rotate(time.Now())
	if n := testing.AllocsPerRun(1000, warm); n != 0 {
		t.Fatalf("per-message backend recording allocates %v times per message", n)
	}
}

// TestBackendsWireRoundTrip checks the per-backend data survives the
// worker→parent line encoding exactly, and that bad counts are refused.
func TestBackendsWireRoundTrip(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(2)
	rec.SetStart(t0)
	recordBackends(rec, map[string]int{"b1": 4, "b2": 2}, 10, time.Millisecond)
	rec.Shard(0).BackendFailed(rec.Backend(""), "http_503")
	rec.Shard(1).BackendClosed(rec.Backend("b2"), 1001)
	iv := rec.Rotate(t0.Add(time.Second))

	var buf bytes.Buffer
	if err := EncodeInterval(&buf, iv); err != nil {
		t.Fatalf("EncodeInterval: %v", err)
	}
	got, err := DecodeInterval(buf.Bytes())
	if err != nil {
		t.Fatalf("DecodeInterval: %v", err)
	}
	if len(got.Backends) != len(iv.Backends) {
		t.Fatalf("decoded %d backends, want %d", len(got.Backends), len(iv.Backends))
	}
	for name, w := range iv.Backends {
		g := got.Backends[name]
		if g == nil || g.Established != w.Established || g.Failed != w.Failed || g.Closed != w.Closed ||
			g.Open != w.Open || g.PeakOpen != w.PeakOpen || g.Sent != w.Sent || g.Received != w.Received ||
			g.TimedOut != w.TimedOut || len(g.Errors) != len(w.Errors) || len(g.CloseCodes) != len(w.CloseCodes) ||
			count(g.RTT) != count(w.RTT) || Quantile(g.RTT, 99) != Quantile(w.RTT, 99) {
			t.Fatalf("backend %s decoded as %+v, want %+v", name, g, w)
		}
	}
	bad := strings.Replace(buf.String(), `"established":4`, `"established":-4`, 1)
	if bad == buf.String() {
		t.Fatalf("test line has no b1 established count: %s", buf.String())
	}
	if _, err := DecodeInterval([]byte(bad)); err == nil || !strings.Contains(err.Error(), "backend") {
		t.Fatalf("DecodeInterval of a negative backend count: %v", err)
	}
}
