package stats

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// splitRun records one synthetic run of 40 connections over 3 seconds,
// either whole (seg zero) or only the connections of one of 4 segments
// (connection c belongs to segment c%4+1), so the 4 segment results hold
// exactly the whole run's samples between them. It also returns the RTT
// samples it recorded, in µs.
func splitRun(t *testing.T, seg Segment) (*Result, []int64) {
	t.Helper()
	const conns = 40
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	rec := NewRecorder(2)
	rec.SetStart(t0)
	agg := NewAggregate(t0)
	rng := rand.New(rand.NewPCG(1, 2)) // the same stream for every split
	var rtts []int64
	mine := func(c int) bool { return seg.IsZero() || c%seg.Count == seg.Index-1 }
	for sec := 1; sec <= 3; sec++ {
		for c := range conns {
			// Draw for every connection, mine or not, so each split sees the
			// same values for the same connection.
			hs := time.Duration(500+rng.IntN(3000)) * time.Microsecond
			var svc []time.Duration
			for range 30 {
				// Log-uniform from 50 µs to ~50 ms, so percentiles span
				// several histogram buckets.
				svc = append(svc, time.Duration(50*math.Exp(rng.Float64()*6.9))*time.Microsecond)
			}
			if !mine(c) {
				continue
			}
			s := rec.Shard(c)
			if sec == 1 {
				s.ConnAttempted()
				if c == 7 {
					s.ConnFailed("refused")
					continue
				}
				s.ConnEstablished(hs)
			}
			if c == 7 {
				continue
			}
			for i, d := range svc {
				lag := time.Duration(i) * time.Microsecond
				s.Sent(100, lag)
				if c == 13 && i == 0 {
					s.TimedOut()
					s.Other(OtherLate, 100)
					continue
				}
				if c == 14 && i == 0 {
					s.InFlight(1)
					s.Other(Other(sec%4), 100) // each kind, in different seconds
					continue
				}
				s.Received(100)
				s.RTT(d+lag, d)
				s.Step("login", d, d)
				rtts = append(rtts, (d + lag).Microseconds())
			}
			if sec == 3 {
				s.ConnClosed(1000 + 6*(c%2))
			}
		}
		agg.Add(rec.Rotate(t0.Add(time.Duration(sec) * time.Second)))
	}
	n := conns
	if !seg.IsZero() {
		n = conns / seg.Count
	}
	return agg.Result(Header{
		Version: "0.1.0-test", Target: "ws://127.0.0.1:8080/", Start: t0, Duration: 3 * time.Second,
		Load: 2500 * time.Millisecond, Drain: 400 * time.Millisecond, Close: 100 * time.Millisecond,
		Config:    Config{Connections: n, Rate: 10, Size: 100, DurationS: 3, Pollers: 1, Segment: seg},
		Generator: Generator{CPUUserS: 0.25, CPUSysS: 0.05, GOMAXPROCS: 1, MaxRSSBytes: 10 << 20, Host: "gen", PID: 100 + seg.Index},
	}), rtts
}

func TestMergeSegmentsEqualsWhole(t *testing.T) {
	whole, samples := splitRun(t, Segment{})
	var parts []*Result
	for i := 1; i <= 4; i++ {
		r, _ := splitRun(t, Segment{Index: i, Count: 4})
		parts = append(parts, r)
	}
	// Merge out of order: the result must not depend on it.
	got, err := Merge(parts[2], parts[0], parts[3], parts[1])
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if !reflect.DeepEqual(got.Connections, whole.Connections) {
		t.Fatalf("connections: merged %+v, whole %+v", got.Connections, whole.Connections)
	}
	if !reflect.DeepEqual(got.Messages, whole.Messages) {
		t.Fatalf("messages: merged %+v, whole %+v", got.Messages, whole.Messages)
	}
	// Rates are over the load window, in each part and in the merge (the same window here).
	if m := whole.Messages; whole.LoadS != 2.5 || got.LoadS != 2.5 || m.SentPerS != float64(m.Sent)/2.5 || m.ReceivedPerS != float64(m.Received)/2.5 {
		t.Fatalf("load %.2fs (merged %.2fs), sent %d at %.3f/s, received %d at %.3f/s: want the rates over the 2.5 s load window",
			whole.LoadS, got.LoadS, m.Sent, m.SentPerS, m.Received, m.ReceivedPerS)
	}
	if m := whole.Messages; m.InFlight != 3 || m.Duplicate != 1 || m.Late != 4 || m.Corrupt != 1 {
		t.Fatalf("messages %+v: want in flight 3, duplicate 1, late 4, corrupt 1", m)
	}
	if !reflect.DeepEqual(got.CloseCodes, whole.CloseCodes) || !reflect.DeepEqual(got.Errors, whole.Errors) {
		t.Fatalf("close codes/errors: merged %v %v, whole %v %v", got.CloseCodes, got.Errors, whole.CloseCodes, whole.Errors)
	}
	// Histogram addition is exact: every summary and the encoding itself
	// equal those of the single run over all samples.
	if !reflect.DeepEqual(got.Latency, whole.Latency) {
		t.Fatalf("latency: merged\n%+v\nwhole\n%+v", got.Latency, whole.Latency)
	}
	// And the percentiles are those of the raw samples within the
	// histograms' precision (3 significant digits).
	slices.Sort(samples)
	for _, p := range Percentiles {
		exact := samples[int(math.Ceil(p.Percent/100*float64(len(samples))))-1]
		v, _ := got.Latency.RTT.Percentile(p.Name)
		if diff := math.Abs(float64(v - exact)); diff > float64(exact)/1000+1 {
			t.Fatalf("rtt %s: merged %d µs, exact %d µs", p.Name, v, exact)
		}
	}
	if len(got.Timeline) != len(whole.Timeline) {
		t.Fatalf("timeline: merged %d points, whole %d", len(got.Timeline), len(whole.Timeline))
	}
	for i, w := range whole.Timeline {
		g := got.Timeline[i]
		if g.T != w.T || g.LenS != w.LenS || g.Open != w.Open || g.Established != w.Established || g.Failed != w.Failed ||
			g.Closed != w.Closed || g.Sent != w.Sent || g.Received != w.Received || g.Errors != w.Errors || g.TimedOut != w.TimedOut {
			t.Fatalf("timeline[%d]: merged %+v, whole %+v", i, g, w)
		}
		// Per-second percentiles are the parts' maximum: an upper bound.
		if g.RTTP50US < w.RTTP50US || g.RTTP99US < w.RTTP99US {
			t.Fatalf("timeline[%d]: merged rtt p50/p99 %d/%d below the whole run's %d/%d", i, g.RTTP50US, g.RTTP99US, w.RTTP50US, w.RTTP99US)
		}
	}
	if got.DurationS != 3 || got.Config.Connections != 40 || got.Config.Rate != 10 || got.Config.Pollers != 4 || !got.Config.Segment.IsZero() {
		t.Fatalf("duration/config: %g %+v", got.DurationS, got.Config)
	}
	if g := got.Generator; math.Abs(g.CPUUserS-1) > 1e-9 || g.GOMAXPROCS != 4 || g.MaxRSSBytes != 10<<20 || g.Host != "gen" ||
		math.Abs(g.CPUPerMsgUS-1.2e6/float64(got.Messages.Received)) > 1e-6 {
		t.Fatalf("generator: %+v", g)
	}
	var segs []string
	for _, s := range got.Sources {
		segs = append(segs, s.Segment)
	}
	if want := []string{"3/4", "1/4", "4/4", "2/4"}; !slices.Equal(segs, want) || got.Sources[0].PID != 103 {
		t.Fatalf("sources: %+v, want segments %v", got.Sources, want)
	}
	// Each input's warnings come along, named.
	if !slices.ContainsFunc(got.Generator.Warnings, func(w string) bool { return strings.HasPrefix(w, "segment 4/4: ") && strings.Contains(w, "failed") }) {
		t.Fatalf("warnings lack segment 4/4's failure warning: %q", got.Generator.Warnings)
	}

	// Merging merged halves equals merging the parts.
	a, err := Merge(parts[0], parts[1])
	if err != nil {
		t.Fatalf("Merge(1/4, 2/4): %v", err)
	}
	if !slices.ContainsFunc(a.Generator.Warnings, func(w string) bool { return strings.Contains(w, "only 2 of 4 segments merged (missing 3/4, 4/4)") }) {
		t.Fatalf("partial merge does not warn: %q", a.Generator.Warnings)
	}
	b, err := Merge(parts[2], parts[3])
	if err != nil {
		t.Fatalf("Merge(3/4, 4/4): %v", err)
	}
	ab, err := Merge(a, b)
	if err != nil {
		t.Fatalf("Merge(halves): %v", err)
	}
	if !reflect.DeepEqual(ab.Latency, whole.Latency) || !reflect.DeepEqual(ab.Messages, whole.Messages) || len(ab.Sources) != 4 {
		t.Fatalf("merge of merged halves differs from the whole run: %+v, %d sources", ab.Messages, len(ab.Sources))
	}
	if _, err := Merge(a, parts[1]); err == nil || !strings.Contains(err.Error(), "both segment 2/4") {
		t.Fatalf("Merge(merged 1-2, 2/4) = %v, want an overlap error", err)
	}
}

func TestMergeRefuses(t *testing.T) {
	seg := func(i, n int) *Result {
		r := sampleResult(t)
		r.Config.Segment = Segment{Index: i, Count: n}
		return r
	}
	other := sampleResult(t)
	other.Target = "ws://127.0.0.1:9090/"
	v2 := sampleResult(t)
	v2.Schema = "wsload.result/v2"
	badHDR := sampleResult(t)
	badHDR.Latency.RTT.HDR = "bm90IGEgaGlzdG9ncmFt"
	for _, tc := range []struct {
		name  string
		opts  MergeOptions
		in    []*Result
		want  string
		isErr error
	}{
		{"none", MergeOptions{}, nil, "no results", nil},
		{"nil input", MergeOptions{}, []*Result{sampleResult(t), nil}, "input 2 is nil", nil},
		{"overlapping segments", MergeOptions{Names: []string{"a.json", "b.json"}}, []*Result{seg(2, 4), seg(2, 4)}, "a.json and b.json are both segment 2/4", nil},
		{"segment counts differ", MergeOptions{}, []*Result{seg(1, 4), seg(2, 3)}, "segment counts differ: segment 1/4 is segment 1/4 but segment 2/3 is segment 2/3", nil},
		{"segmented with whole", MergeOptions{Names: []string{"a", "b"}}, []*Result{seg(1, 2), sampleResult(t)}, "a is segment 1/2 but b is not segmented", nil},
		{"invalid segment", MergeOptions{}, []*Result{seg(5, 4), seg(1, 4)}, "segment 5/4", nil},
		{"schema", MergeOptions{Names: []string{"a.json", "new.json"}}, []*Result{sampleResult(t), v2}, `new.json has schema "wsload.result/v2"`, nil},
		{"schema of a single input", MergeOptions{}, []*Result{v2}, "schema", nil},
		{"targets", MergeOptions{}, []*Result{sampleResult(t), other}, "input 1 -> ws://127.0.0.1:8080/echo, input 2 -> ws://127.0.0.1:9090/", ErrMixedTargets},
		{"bad hdr", MergeOptions{}, []*Result{sampleResult(t), badHDR}, "input 2: latency.rtt", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.opts.Merge(tc.in...)
			if err == nil {
				t.Fatalf("Merge succeeded (%v), want an error containing %q", r.Target, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "stats: merge: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one prefixed \"stats: merge: \" containing %q", err, tc.want)
			}
			if tc.isErr != nil && !errors.Is(err, tc.isErr) {
				t.Fatalf("error %q does not wrap %v", err, tc.isErr)
			}
		})
	}

	// AllowMixedTargets merges them, names both and says so.
	r, err := MergeOptions{AllowMixedTargets: true}.Merge(sampleResult(t), other)
	if err != nil {
		t.Fatalf("Merge with AllowMixedTargets: %v", err)
	}
	if r.Target != "ws://127.0.0.1:8080/echo, ws://127.0.0.1:9090/" || !slices.ContainsFunc(r.Generator.Warnings, func(w string) bool { return strings.HasPrefix(w, "merged results of different targets") }) {
		t.Fatalf("mixed merge: target %q, warnings %q", r.Target, r.Generator.Warnings)
	}
}

func TestMergeOneIsACopy(t *testing.T) {
	in := sampleResult(t)
	want := encode(t, in)
	got, err := Merge(in)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if g := encode(t, got); string(g) != string(want) {
		t.Fatalf("Merge of one result differs from it:\n%s\nwant\n%s", g, want)
	}
	got.Errors["x"] = 1
	got.Timeline[0].Sent = -1
	if string(encode(t, in)) != string(want) {
		t.Fatalf("changing the copy changed the input")
	}
}

// timelineResult is a Result with only a timeline and what it implies.
func timelineResult(start time.Time, peak int64, pts ...Point) *Result {
	r := &Result{Schema: Schema, Tool: Tool, Target: "ws://127.0.0.1:1/", Start: start, Timeline: pts}
	for _, p := range pts {
		r.DurationS = p.T
		r.Messages.Sent += p.Sent
	}
	r.Connections.PeakOpen = peak
	return r
}

func TestMergeTimelineAlignment(t *testing.T) {
	whole := time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC)
	pts := func(opens ...int64) []Point {
		var out []Point
		for i, o := range opens {
			out = append(out, Point{T: float64(i + 1), LenS: 1, Open: o, Sent: 100, RTTP50US: 100 * int64(i+1), RTTP99US: 900})
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		a, b     *Result
		want     []Point
		duration float64
		peak     int64
	}{
		{
			// 300 ms apart, both inside the same wall-clock seconds.
			name: "same seconds",
			a:    timelineResult(whole, 10, pts(10, 10, 0)...),
			b:    timelineResult(whole.Add(300*time.Millisecond), 20, pts(20, 20, 0)...),
			want: []Point{
				{T: 1.3, LenS: 1, Open: 30, Sent: 200, RTTP50US: 100, RTTP99US: 900},
				{T: 2.3, LenS: 1, Open: 30, Sent: 200, RTTP50US: 200, RTTP99US: 900},
				{T: 3.3, LenS: 1, Open: 0, Sent: 200, RTTP50US: 300, RTTP99US: 900},
			},
			duration: 3.3, peak: 30,
		},
		{
			// 300 ms apart across a second boundary: b's points end one
			// wall-clock second later, so they pair with a's next point; a
			// has finished (open 0) in b's last second, b had not started
			// in a's first.
			name: "across a second boundary",
			a:    timelineResult(whole.Add(800*time.Millisecond), 5, pts(5, 7, 3)...),
			b:    timelineResult(whole.Add(1100*time.Millisecond), 11, pts(11, 2, 4)...),
			want: []Point{
				{T: 1, LenS: 1, Open: 5, Sent: 100, RTTP50US: 100, RTTP99US: 900},
				{T: 2, LenS: 1, Open: 18, Sent: 200, RTTP50US: 200, RTTP99US: 900},
				{T: 3, LenS: 1, Open: 5, Sent: 200, RTTP50US: 300, RTTP99US: 900},
				{T: 3.3, LenS: 1, Open: 4, Sent: 100, RTTP50US: 300, RTTP99US: 900},
			},
			duration: 3.3, peak: 18,
		},
		{
			// A short last interval falls into the same second as the one
			// before it: counts and lengths add, open is the latest.
			name: "short last interval",
			a: timelineResult(whole, 9,
				Point{T: 1, LenS: 1, Open: 9, Sent: 10}, Point{T: 2, LenS: 1, Open: 8, Sent: 10}, Point{T: 2.4, LenS: 0.4, Open: 1, Sent: 4}),
			b: timelineResult(whole.Add(100*time.Millisecond), 50,
				Point{T: 1, LenS: 1, Open: 2, Sent: 10}),
			want: []Point{
				{T: 1.1, LenS: 1, Open: 11, Sent: 20},
				{T: 2.4, LenS: 1.4, Open: 1, Sent: 14},
			},
			duration: 2.4, peak: 50, // b's own peak beats any summed second
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Merge(tc.a, tc.b)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			if math.Abs(got.DurationS-tc.duration) > 1e-9 || got.Connections.PeakOpen != tc.peak {
				t.Fatalf("duration %g, peak %d; want %g, %d", got.DurationS, got.Connections.PeakOpen, tc.duration, tc.peak)
			}
			if len(got.Timeline) != len(tc.want) {
				t.Fatalf("timeline %+v, want %+v", got.Timeline, tc.want)
			}
			for i, w := range tc.want {
				g := got.Timeline[i]
				g.T = math.Round(g.T*1e6) / 1e6
				g.LenS = math.Round(g.LenS*1e6) / 1e6
				if g != w {
					t.Fatalf("timeline[%d] = %+v, want %+v", i, g, w)
				}
			}
			if want := float64(tc.a.Messages.Sent+tc.b.Messages.Sent) / tc.duration; math.Abs(got.Messages.SentPerS-want) > 1e-9 {
				t.Fatalf("sent/s %g, want %g (per second of the whole span)", got.Messages.SentPerS, want)
			}
		})
	}
}

func TestSegmentParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Segment
		err  bool
	}{
		{"", Segment{}, false},
		{"1/4", Segment{1, 4}, false},
		{" 4 / 4 ", Segment{4, 4}, false},
		{"0/4", Segment{}, true},
		{"5/4", Segment{}, true},
		{"1/0", Segment{}, true},
		{"0/0", Segment{}, true},
		{"1", Segment{}, true},
		{"a/b", Segment{}, true},
		{"-1/4", Segment{}, true},
	} {
		got, err := ParseSegment(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Fatalf("ParseSegment(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && got.String() != strings.ReplaceAll(tc.in, " ", "") {
			t.Fatalf("Segment%v.String() = %q", got, got.String())
		}
	}
}

func TestSegmentJSONCompatible(t *testing.T) {
	// A v1 result written before segments and sources existed decodes, and
	// an unsegmented result still writes neither field.
	old := encode(t, sampleResult(t))
	if strings.Contains(string(old), `"segment"`) || strings.Contains(string(old), `"sources"`) {
		t.Fatalf("an unsegmented, unmerged result writes segment or sources:\n%s", old)
	}
	r, err := DecodeResult(strings.NewReader(string(old)))
	if err != nil || !r.Config.Segment.IsZero() || r.Sources != nil {
		t.Fatalf("DecodeResult: %v, segment %v, sources %v", err, r.Config.Segment, r.Sources)
	}
	r.Config.Segment = Segment{2, 4}
	r.Sources = []Source{{Name: "a.json", Segment: "2/4"}}
	back, err := DecodeResult(strings.NewReader(string(encode(t, r))))
	if err != nil || back.Config.Segment != (Segment{2, 4}) || back.Sources[0].Segment != "2/4" {
		t.Fatalf("round trip: %v, %+v", err, back)
	}
}

func TestMergeBackends(t *testing.T) {
	part := func(seg int, rtts map[string][]int64) *Result {
		r := sampleResult(t)
		r.Config.Segment = Segment{Index: seg, Count: 2}
		r.Config.BackendFrom = "header:X-Backend"
		r.Backends = map[string]BackendResult{}
		for name, vs := range rtts {
			h := NewHistogram()
			for _, v := range vs {
				Record(h, time.Duration(v)*time.Microsecond)
			}
			l, err := NewLatency(h)
			if err != nil {
				t.Fatalf("NewLatency: %v", err)
			}
			r.Backends[name] = BackendResult{
				Connections: BackendConnections{Established: int64(len(vs)), PeakOpen: int64(len(vs))},
				Messages:    BackendMessages{Sent: int64(len(vs)), Received: int64(len(vs))},
				Errors:      map[string]int64{"read": 1}, CloseCodes: map[int]int64{1000: 2}, RTT: l,
			}
		}
		return r
	}
	a := part(1, map[string][]int64{"b1": {100, 200, 300}, "b2": {400}})
	a.SLO = []Verdict{{Objective: "rtt.p99<1ms", OK: true}}
	b := part(2, map[string][]int64{"b1": {150}, "b3": {500, 600}})
	got, err := Merge(a, b)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	b1 := got.Backends["b1"]
	if len(got.Backends) != 3 || b1.Connections.Established != 4 || b1.Connections.PeakOpen != 4 || b1.Messages.Received != 4 ||
		b1.Errors["read"] != 2 || b1.CloseCodes[1000] != 4 || b1.RTT.Count != 4 || b1.RTT.MinUS != 100 || b1.RTT.MaxUS != 300 {
		t.Fatalf("merged backends: %+v", got.Backends)
	}
	if s := got.BackendSpread; s == nil || s.Backends != 3 || s.Min != 1 || s.Max != 4 {
		t.Fatalf("spread %+v, want 3 backends, established 1..4", s)
	}
	if got.SLO != nil || !slices.ContainsFunc(got.Generator.Warnings, func(w string) bool { return strings.Contains(w, "SLO verdicts are not carried over") }) {
		t.Fatalf("SLO %v, warnings %q", got.SLO, got.Generator.Warnings)
	}
}

// TestMergeRefusesDuplicatesAndDisjoint: the same unsegmented run given
// twice would double every count, and runs that never ran together would
// make up a concurrency neither had; both are refused unless allowed.
func TestMergeRefusesDuplicatesAndDisjoint(t *testing.T) {
	run := func(pid int, start time.Time) *Result {
		r := sampleResult(t)
		r.Generator.Host, r.Generator.PID, r.Start = "gen", pid, start
		return r
	}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	a := run(1, t0)
	dur := secondsToDuration(a.DurationS)
	sameRun := run(1, t0)
	otherProc := run(2, t0.Add(dur/2))       // another process, overlapping
	later := run(3, t0.Add(dur+time.Second)) // started after a ended
	touching := run(4, t0.Add(dur))          // started as a ended
	merged, err := MergeOptions{Names: []string{"a.json", "b.json"}}.Merge(a, otherProc)
	if err != nil {
		t.Fatalf("merging two processes of one load: %v", err)
	}
	for _, tc := range []struct {
		name  string
		in    []*Result
		want  string
		isErr error
	}{
		{"same run twice", []*Result{a, sameRun}, "input 1 and input 2 are the same run (start 2025-01-02T03:04:05.6Z, host \"gen\", pid 1)", ErrDuplicate},
		{"same run inside a merge", []*Result{merged, sameRun}, "input 1 (a.json) and input 2 are the same run", ErrDuplicate},
		{"disjoint", []*Result{a, later}, "input 1 ended at 2025-01-02T03:04:08.6Z, before input 2 started at 2025-01-02T03:04:09.6Z", ErrDisjoint},
		{"one of three disjoint", []*Result{later, otherProc, a}, "input 3 ended", ErrDisjoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Merge(tc.in...)
			if err == nil {
				t.Fatalf("Merge succeeded (sent %d), want an error containing %q", r.Messages.Sent, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "stats: merge: ") || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.isErr) {
				t.Fatalf("error %q, want one prefixed \"stats: merge: \" containing %q and wrapping %v", err, tc.want, tc.isErr)
			}
		})
	}

	// Two containers named after their host, each its own PID 1, started
	// together: only the measured duration tells them apart, and does.
	twin := run(1, t0)
	twin.DurationS += 0.001
	if _, err := Merge(a, twin); err != nil {
		t.Fatalf("merging two runs that share start, host and PID: %v", err)
	}
	// Runs that touch at one instant did run together at that instant.
	if _, err := Merge(a, touching); err != nil {
		t.Fatalf("merging runs that touch: %v", err)
	}
	// The overrides merge them, and the counts are what was asked: doubled.
	r, err := MergeOptions{AllowDuplicates: true}.Merge(a, sameRun)
	if err != nil {
		t.Fatalf("AllowDuplicates: %v", err)
	}
	if r.Messages.Sent != 2*a.Messages.Sent {
		t.Fatalf("AllowDuplicates: sent %d, want %d", r.Messages.Sent, 2*a.Messages.Sent)
	}
	r, err = MergeOptions{AllowDisjoint: true}.Merge(a, later)
	if err != nil {
		t.Fatalf("AllowDisjoint: %v", err)
	}
	if r.Messages.Sent != 2*a.Messages.Sent {
		t.Fatalf("AllowDisjoint: sent %d, want %d", r.Messages.Sent, 2*a.Messages.Sent)
	}
}
