package stats

import (
	"math"
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

// Quantile is the one wrapper for a percentile of a histogram, in percent
// (0–100), not a fraction: Quantile(h, 99.9) is p999. A nil or empty
// histogram gives 0.
//
// It computes what HdrHistogram's reference implementations do (Java's
// AbstractHistogram.getValueAtPercentile, hdr-histogram-js's
// getValueAtPercentile), so wsload's numbers equal theirs on the same
// histogram:
//
//   - the rank is rounded up, ceil(p·N/100), after taking one ulp off p so
//     that floating-point noise cannot push an exact rank one sample higher
//     (99% of 100 samples is rank 99, not 100), and it is at least 1;
//   - the value is that of the bucket where the cumulative count first
//     reaches the rank: its highest equivalent value, or its lowest for p0.
//
// So Quantile(h, 0) is h.Min() and Quantile(h, 100) is h.Max().
// hdrhistogram-go's own ValueAtQuantile rounds p·N to the nearest rank
// instead, which reads one sample low whenever p·N/100 has a fractional part
// below one half: on 198 samples its p99 is the 196th value, the
// reference's the 197th.
func Quantile(h *hdrhistogram.Histogram, percent float64) int64 {
	if h == nil || h.TotalCount() == 0 {
		return 0
	}
	if percent == 0 {
		// Rank 1, lowest equivalent value: the same for both roundings.
		return h.ValueAtQuantile(0)
	}
	rank := refRank(percent, h.TotalCount())
	// The bucket walk is hdrhistogram-go's (allocation-free, exported only
	// through ValueAtQuantile): ask it for a percent whose rank, rounded
	// either to nearest or up, is exactly rank. rank - 1/4 keeps a quarter
	// of a sample of margin on both sides, far more than the few ulps of
	// error in the division and the library's multiplication (for any count
	// below 2^50); it is above 0, so the library returns the highest
	// equivalent value. Export or Distribution would copy or allocate the
	// histogram's counts on every call.
	total := float64(h.TotalCount())
	return h.ValueAtQuantile(100 * (float64(rank) - 0.25) / total)
}

// refRank is the reference's rank for percent of total samples, in
// [1, total]: Java's getValueAtPercentile,
//
//	requested = min(max(nextAfter(p, -inf), 0), 100)
//	rank = max(1, ceil(requested * total / 100))
//
// clamped to total (Java returns 0 past it, which only float error can
// reach). NaN gives rank 1, as in Java. hdr-histogram-js takes its ulp off
// p·N/100 instead of off p; the two give the same rank at every count below
// 10^7 for wsload's percentiles, and differ by one only at counts near 10^12.
func refRank(percent float64, total int64) int64 {
	requested := math.Min(math.Max(math.Nextafter(percent, math.Inf(-1)), 0), 100)
	fp := math.Ceil(requested * float64(total) / 100)
	switch {
	case !(fp >= 1): // NaN, and the ranks below the first sample
		return 1
	case fp >= float64(total):
		return total
	}
	return int64(fp)
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
