package stats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

// compareRuns returns three runs: A (sampleResult), B (faster RTT, fewer
// failures, more replies, slower handshakes, more CPU, the rest within the
// guards) and C (no messages at all).
func compareRuns(t *testing.T) (a, b, c *Result) {
	t.Helper()
	a, b, c = sampleResult(t), sampleResult(t), sampleResult(t)
	b.Connections.Failed, b.Connections.PeakOpen = 0, 20
	b.Connections.Established = 20
	b.Messages.SentPerS *= 1.005    // within RateTolerance
	b.Messages.ReceivedPerS *= 1.05 // beyond it
	b.Messages.TimedOut = 0
	b.Errors = map[string]int64{}
	scale := func(l *Latency, f float64) {
		for _, p := range []*int64{&l.P50US, &l.P90US, &l.P99US, &l.P999US, &l.P9999US, &l.MaxUS} {
			*p = int64(math.Round(float64(*p) * f))
		}
	}
	scale(&b.Latency.RTT, 0.62)
	scale(&b.Latency.RTTUncorrected, 1.01)
	scale(&b.Latency.Handshake, 1.25)
	b.Generator.CPUPerMsgUS *= 1.1

	c.Latency.RTT, c.Latency.RTTUncorrected, c.Latency.SendLag = Latency{}, Latency{}, Latency{}
	c.Messages = Messages{}
	c.Generator.CPUPerMsgUS = 0
	return a, b, c
}

func TestCompareGolden(t *testing.T) {
	a, b, c := compareRuns(t)
	for _, tc := range []struct {
		name   string
		labels []string
		runs   []*Result
		write  func(*Comparison, *bytes.Buffer) error
	}{
		{"compare.golden", []string{"roundrobin", "leastconn"}, []*Result{a, b}, func(c *Comparison, w *bytes.Buffer) error { return c.WriteText(w) }},
		{"compare.md.golden", []string{"roundrobin", "leastconn"}, []*Result{a, b}, func(c *Comparison, w *bytes.Buffer) error { return c.WriteMarkdown(w) }},
		{"compare3.golden", nil, []*Result{a, b, c}, func(c *Comparison, w *bytes.Buffer) error { return c.WriteText(w) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.write(Compare(tc.labels, tc.runs), &buf); err != nil {
				t.Fatalf("write: %v", err)
			}
			golden(t, tc.name, buf.Bytes())
		})
	}
}

// TestCompareVerdicts checks the comparison's judgement, independent of the
// golden files' layout.
func TestCompareVerdicts(t *testing.T) {
	a, b, c := compareRuns(t)
	cmp := Compare([]string{"rr", ""}, []*Result{a, b, c})
	if got := strings.Join(cmp.Labels, ","); got != "rr,B,C" {
		t.Fatalf("labels %q, want rr,B,C", got)
	}
	rows := map[string]CompareRow{}
	for _, r := range cmp.Rows {
		rows[r.Name] = r
	}
	if len(rows) != 21 {
		t.Fatalf("%d figures, want 21", len(rows))
	}
	for _, tc := range []struct {
		name    string
		verdict int // B against A
		best    []int
	}{
		{"connections established", 1, []int{1}},
		{"connections failed", 1, []int{1}},
		{"peak open", 1, []int{1}},
		{"messages sent/s", 0, []int{0, 1}}, // C sent nothing
		{"messages received/s", 1, []int{1}},
		{"timeouts", 1, []int{1, 2}},
		{"errors", 1, []int{1}},
		{"rtt p99", 1, []int{1}},        // C has no rtt: not comparable
		{"rtt uncorrected p50", 0, nil}, // 1% apart: ≈
		{"handshake p50", -1, []int{0, 2}},
		{"send lag p99", 0, nil},
		{"generator CPU/msg", -1, []int{0}},
	} {
		r, ok := rows[tc.name]
		if !ok {
			t.Fatalf("no row %q", tc.name)
		}
		if r.Verdict[1] != tc.verdict || !equalInts(r.Best, tc.best) {
			t.Fatalf("%s: values %v, B verdict %d, best %v; want %d, %v", tc.name, r.Values, r.Verdict[1], r.Best, tc.verdict, tc.best)
		}
	}
	if r := rows["rtt p99"]; !math.IsNaN(r.Values[2]) || !math.IsNaN(r.Pct[2]) || r.Verdict[2] != 0 {
		t.Fatalf("rtt p99 of a run without messages: %v %v %v, want NaN, NaN, 0", r.Values[2], r.Pct[2], r.Verdict[2])
	}
	if p := rows["rtt p99"].Pct[1]; math.Abs(p+38) > 0.1 {
		t.Fatalf("rtt p99 change %.2f%%, want -38%%", p)
	}
	// Better: established, failed, peak open, received/s, timeouts, errors
	// and the 5 rtt figures; worse: handshake p50, p99 and CPU; ≈: sent/s,
	// the 5 uncorrected rtt figures and send lag.
	want := "B vs rr: better on 11 of 21 figures, worse on 3, ≈ on 7; rtt p99 38% lower (1.18ms -> 730µs)"
	if cmp.Summary[0] != want {
		t.Fatalf("summary %q, want %q", cmp.Summary[0], want)
	}
	// JSON holds NaN as null.
	js, err := json.Marshal(cmp)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	if row := fmt.Sprintf(`"name":"rtt p99","kind":"latency","better":"lower","values":[%d,%d,null]`, a.Latency.RTT.P99US, b.Latency.RTT.P99US); !strings.Contains(string(js), row) {
		t.Fatalf("json lacks the rtt p99 row with a null:\n%s", js)
	}
}

func equalInts(a, b []int) bool {
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

func TestCompareGuards(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		higher bool
		a, b   float64
		want   int
	}{
		{KindLatency, false, 1000, 1019, 0},  // 1.9%: ≈
		{KindLatency, false, 1000, 1021, -1}, // 2.1% worse
		{KindLatency, false, 1000, 979, 1},   // 2.1% better
		{KindLatency, false, 10, 11, 0},      // 1 µs: the histogram's resolution
		{KindLatency, false, 10, 12, -1},     // 2 µs: worse
		{KindLatency, false, 100000, 101900, 0},
		{KindRate, true, 1000, 1009, 0},
		{KindRate, true, 1000, 1011, 1},
		{KindCPU, false, 10, 10.1, 0},
		{KindCPU, false, 10, 10.3, -1},
		{KindCount, false, 0, 1, -1}, // one failure is real
		{KindCount, true, 5000, 4999, -1},
		{KindCount, true, 7, 7, 0},
		{KindLatency, false, math.NaN(), 5, 0},
	} {
		r := CompareRow{Kind: tc.kind, HigherBetter: tc.higher, Values: []float64{tc.a, tc.b}}
		if got := r.versus(0, 1); got != tc.want {
			t.Fatalf("%s %v -> %v: verdict %d, want %d", tc.kind, tc.a, tc.b, got, tc.want)
		}
	}
}

// TestResolution pins resolution to hdrhistogram's own bucket boundaries.
func TestResolution(t *testing.T) {
	h := NewHistogram()
	for _, v := range []int64{1, 1000, 2047, 2048, 4095, 4096, 123_456, 10_000_000, HighestUS} {
		w := resolution(v)
		lo := v
		for lo > 0 && h.ValuesAreEquivalent(lo-1, v) {
			lo--
		}
		if !h.ValuesAreEquivalent(lo, lo+w-1) || h.ValuesAreEquivalent(lo, lo+w) {
			t.Fatalf("resolution(%d) = %d, but the bucket from %d is not that wide", v, w, lo)
		}
	}
}
