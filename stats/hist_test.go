package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

func TestQuantileOf1To1000(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 1000; v++ {
		if err := h.RecordValue(v); err != nil {
			t.Fatalf("RecordValue(%d): %v", v, err)
		}
	}
	for _, tc := range []struct {
		percent float64
		want    int64
	}{
		{50, 500},
		{90, 900},
		{99, 990},
		{99.9, 999},
		{100, 1000},
	} {
		if got := Quantile(h, tc.percent); !h.ValuesAreEquivalent(got, tc.want) {
			t.Fatalf("Quantile(1..1000, %v) = %d, want %d", tc.percent, got, tc.want)
		}
	}
	// A fraction instead of a percent is the classic bug (p0.99 for p99).
	if got := Quantile(h, 0.99); got > 10 {
		t.Fatalf("Quantile(h, 0.99) = %d: the wrapper is not taking percent", got)
	}
	if got := Quantile(nil, 99); got != 0 {
		t.Fatalf("Quantile(nil) = %d, want 0", got)
	}
	if got := Quantile(NewHistogram(), 99); got != 0 {
		t.Fatalf("Quantile(empty) = %d, want 0", got)
	}
}

// TestPercentilesOneSpelling pins the names and percents, and checks that
// Latency's JSON keys and Percentile accessor use exactly those names.
func TestPercentilesOneSpelling(t *testing.T) {
	want := []struct {
		Name    string
		Percent float64
	}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}, {"p9999", 99.99}}
	if len(Percentiles) != len(want) {
		t.Fatalf("Percentiles has %d entries, want %d", len(Percentiles), len(want))
	}
	h := NewHistogram()
	for v := int64(1); v <= 100_000; v++ {
		_ = h.RecordValue(v)
	}
	l, err := NewLatency(h)
	if err != nil {
		t.Fatalf("NewLatency: %v", err)
	}
	b, err := json.Marshal(l)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	for i, p := range Percentiles {
		if p.Name != want[i].Name || p.Percent != want[i].Percent {
			t.Fatalf("Percentiles[%d] = %v, want %v", i, p, want[i])
		}
		got, ok := l.Percentile(p.Name)
		if !ok {
			t.Fatalf("Latency.Percentile(%q) unknown", p.Name)
		}
		if exp := Quantile(h, p.Percent); got != exp {
			t.Fatalf("Latency.Percentile(%q) = %d, want Quantile(%v) = %d", p.Name, got, p.Percent, exp)
		}
		js, ok := keys[p.Name+"_us"].(float64)
		if !ok {
			t.Fatalf("Latency JSON has no %q key: %s", p.Name+"_us", b)
		}
		if int64(js) != got {
			t.Fatalf("JSON %s_us = %v, want %d", p.Name, js, got)
		}
	}
	if _, ok := l.Percentile("p99.9"); ok {
		t.Fatalf("Latency.Percentile accepts a second spelling p99.9")
	}
}

// TestQuantileKnownDistributions compares histogram quantiles with exact
// ones (nearest rank over the sorted samples): with 3 significant digits the
// relative error must stay within 0.1%.
func TestQuantileKnownDistributions(t *testing.T) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() int64
	}{
		{"uniform 1us..1s", func() int64 { return 1 + rng.Int64N(1_000_000) }},
		{"exponential mean 10ms", func() int64 { return 1 + int64(rng.ExpFloat64()*10_000) }},
		{"uniform 1s..1h", func() int64 { return 1_000_000 + rng.Int64N(HighestUS-1_000_000) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			samples := make([]int64, n)
			for i := range samples {
				samples[i] = tc.gen()
				if err := h.RecordValue(samples[i]); err != nil {
					t.Fatalf("RecordValue(%d): %v", samples[i], err)
				}
			}
			slices.Sort(samples)
			for _, p := range Percentiles {
				rank := int(math.Ceil(p.Percent/100*n - 1e-6))
				exact := samples[rank-1]
				got := Quantile(h, p.Percent)
				if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 0.001 {
					t.Fatalf("%s: Quantile = %d, exact %d, relative error %.5f > 0.1%%", p.Name, got, exact, rel)
				}
			}
		})
	}
}

func TestRecordClamps(t *testing.T) {
	for _, tc := range []struct {
		name        string
		d           time.Duration
		want        int64
		clampedHigh bool
	}{
		{"zero", 0, 1, false},
		{"negative", -5 * time.Millisecond, 1, false},
		{"sub-microsecond", 500 * time.Nanosecond, 1, false},
		{"in range", 1234 * time.Microsecond, 1234, false},
		{"exactly one hour", time.Hour, HighestUS, false},
		{"two hours", 2 * time.Hour, HighestUS, true},
		{"max duration", time.Duration(math.MaxInt64), HighestUS, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistogram()
			Record(h, tc.d)
			if h.TotalCount() != 1 {
				t.Fatalf("Record(%v): count %d, want 1 (a sample must never be lost)", tc.d, h.TotalCount())
			}
			if got := h.Max(); !h.ValuesAreEquivalent(got, tc.want) {
				t.Fatalf("Record(%v) recorded %d, want %d", tc.d, got, tc.want)
			}
			if got := record(NewHistogram(), tc.d); got != tc.clampedHigh {
				t.Fatalf("record(%v) clampedHigh = %v, want %v", tc.d, got, tc.clampedHigh)
			}
		})
	}
}

// TestMergeHistForeignGeometry: a histogram with a wider range merges without
// losing samples; the ones beyond an hour are clamped and counted.
func TestMergeHistForeignGeometry(t *testing.T) {
	wide := hdrhistogram.New(1, 100*HighestUS, SigFigs)
	for _, v := range []int64{5, 1000, 2 * HighestUS, 3 * HighestUS} {
		if err := wide.RecordValue(v); err != nil {
			t.Fatalf("RecordValue(%d): %v", v, err)
		}
	}
	dst := NewHistogram()
	if got := mergeHist(dst, wide); got != 2 {
		t.Fatalf("mergeHist clamped %d, want 2", got)
	}
	if dst.TotalCount() != 4 {
		t.Fatalf("merged count %d, want 4", dst.TotalCount())
	}
	if got := dst.Max(); !dst.ValuesAreEquivalent(got, HighestUS) {
		t.Fatalf("merged max %d, want %d", got, HighestUS)
	}
	same := NewHistogram()
	_ = same.RecordValue(7)
	if got := mergeHist(dst, same); got != 0 {
		t.Fatalf("mergeHist of the same geometry clamped %d, want 0", got)
	}
}
