package stats

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry shared by every histogram wsload records, so histograms
// from any process or machine merge exactly: 1 µs .. 1 hour, 3 significant
// digits (relative error below 0.1%), values in microseconds.
const (
	LowestUS  int64 = 1
	HighestUS int64 = 3_600_000_000
	SigFigs         = 3
)

// Percentiles is the one spelling of percentile names across code, JSON
// (as "<name>_us") and text. Percent is what Quantile takes.
var Percentiles = []struct {
	Name    string
	Percent float64
}{
	{"p50", 50},
	{"p90", 90},
	{"p99", 99},
	{"p999", 99.9},
	{"p9999", 99.99},
}

// NewHistogram returns an empty histogram with wsload's geometry. It holds a
// dense counts array of about 184 KB, whatever is recorded into it.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(LowestUS, HighestUS, SigFigs)
}

// Record records d in microseconds, clamped into [LowestUS, HighestUS]:
// RecordValue rejects out-of-range values, and a sample must never be lost
// silently, so a clamped sample still counts (at the bound). Sub-microsecond
// durations (and negative ones, from clock steps) count as 1 µs.
func Record(h *hdrhistogram.Histogram, d time.Duration) {
	record(h, d)
}

// record is Record that also reports whether d was above HighestUS, so shards
// can count the samples whose true value the histogram no longer holds.
// Clamping up to LowestUS is not reported: it is within the resolution.
func record(h *hdrhistogram.Histogram, d time.Duration) (clampedHigh bool) {
	us := d.Microseconds()
	if us < LowestUS {
		us = LowestUS
	} else if us > HighestUS {
		us = HighestUS
		clampedHigh = true
	}
	// Cannot fail: us is within the geometry's range.
	_ = h.RecordValue(us)
	return clampedHigh
}

// Quantile is the one wrapper around ValueAtQuantile, whose argument is in
// percent (0–100), not a fraction: Quantile(h, 99.9) is p999. A nil or empty
// histogram gives 0.
func Quantile(h *hdrhistogram.Histogram, percent float64) int64 {
	if h == nil {
		return 0
	}
	return h.ValueAtQuantile(percent)
}

// mergeHist adds src into dst and returns how many samples had to be clamped.
// Histograms wsload wrote share one geometry and merge exactly; a histogram
// from another tool with a wider range could hold values dst cannot, and
// those are recorded at dst's highest value rather than dropped.
func mergeHist(dst, src *hdrhistogram.Histogram) (clamped int64) {
	if src == nil || src.TotalCount() == 0 {
		return 0
	}
	if dst.Merge(src) == 0 {
		return 0
	}
	// Merge recorded the in-range values and dropped the rest. A zero-count
	// RecordValues is a range check that changes nothing.
	for _, b := range src.Distribution() {
		if b.Count == 0 || dst.RecordValues(b.From, 0) == nil {
			continue
		}
		if dst.RecordValues(dst.HighestTrackableValue(), b.Count) == nil {
			clamped += b.Count
		}
	}
	return clamped
}
