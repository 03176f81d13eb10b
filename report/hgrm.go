package report

import (
	"bufio"
	"fmt"
	"io"
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wsload/wsload/stats"
)

// HistogramNames are the Result histograms that HistogramOf knows, in the
// spelling of the Result JSON's latency fields.
var HistogramNames = []string{"rtt", "rtt_uncorrected", "handshake", "send_lag"}

// HistogramOf decodes the named latency histogram of r (one of
// HistogramNames). Values are in microseconds.
func HistogramOf(r *stats.Result, name string) (*hdrhistogram.Histogram, error) {
	var l *stats.Latency
	switch name {
	case "rtt":
		l = &r.Latency.RTT
	case "rtt_uncorrected":
		l = &r.Latency.RTTUncorrected
	case "handshake":
		l = &r.Latency.Handshake
	case "send_lag":
		l = &r.Latency.SendLag
	default:
		return nil, fmt.Errorf("report: unknown histogram %q (want one of rtt, rtt_uncorrected, handshake, send_lag)", name)
	}
	h, err := l.Histogram()
	if err != nil {
		return nil, fmt.Errorf("report: latency.%s: %w", name, err)
	}
	return h, nil
}

// The .hgrm layout, as HdrHistogram's Java outputPercentileDistribution
// writes it and the HdrHistogram plotter reads it: five reporting ticks per
// half distance to 100%, values scaled from our microseconds to milliseconds.
const (
	hgrmTicksPerHalfDistance = 5
	hgrmScale                = 1000.0 // µs per ms
)

// WriteHgrm writes h (values in µs) as HdrHistogram's standard percentile
// distribution text, the .hgrm format, with values in milliseconds:
//
//	       Value     Percentile TotalCount 1/(1-Percentile)
//
//	       0.990 0.990000000000        990         100.00
//	...
//	#[Mean    =        0.500, StdDeviation   =        0.289]
//	#[Max     =        1.000, Total count    =         1000]
//	#[Buckets =           22, SubBuckets     =         2048]
//
// It follows the Java implementation's formats byte for byte, including the
// last line (100%) that has no 1/(1-Percentile) column, because the usual
// plotters split lines on blanks and take only the rows with four fields.
// hdrhistogram-go's PercentilesPrint differs (tab header, "inf" column).
func WriteHgrm(w io.Writer, h *hdrhistogram.Histogram) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)")
	if h.TotalCount() > 0 {
		for _, b := range h.CumulativeDistributionWithTicks(hgrmTicksPerHalfDistance) {
			q := b.Quantile / 100
			v := float64(b.ValueAt) / hgrmScale
			if b.Quantile != 100 {
				fmt.Fprintf(bw, "%12.3f %2.12f %10d %14.2f\n", v, q, b.Count, 1/(1-q))
			} else {
				fmt.Fprintf(bw, "%12.3f %2.12f %10d\n", v, q, b.Count)
			}
		}
	}
	mean, sd := 0.0, 0.0
	if h.TotalCount() > 0 {
		mean, sd = h.Mean()/hgrmScale, h.StdDev()/hgrmScale
	}
	fmt.Fprintf(bw, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean, sd)
	fmt.Fprintf(bw, "#[Max     = %12.3f, Total count    = %12d]\n", float64(h.Max())/hgrmScale, h.TotalCount())
	buckets, sub := bucketGeometry(h)
	fmt.Fprintf(bw, "#[Buckets = %12d, SubBuckets     = %12d]\n", buckets, sub)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("report: writing hgrm: %w", err)
	}
	return nil
}

// bucketGeometry recomputes the histogram's bucket and sub-bucket counts,
// which hdrhistogram-go keeps unexported, the way HdrHistogram derives them
// from the lowest and highest trackable values and the significant figures.
func bucketGeometry(h *hdrhistogram.Histogram) (buckets, subBuckets int64) {
	largestSingleUnit := 2 * int64(math.Pow10(int(h.SignificantFigures())))
	subMagnitude := int(math.Ceil(math.Log2(float64(largestSingleUnit))))
	subBuckets = int64(1) << subMagnitude
	unitMagnitude := int(math.Floor(math.Log2(float64(h.LowestTrackableValue()))))
	smallestUntrackable := subBuckets << unitMagnitude
	buckets = 1
	for smallestUntrackable <= h.HighestTrackableValue() {
		if smallestUntrackable > math.MaxInt64/2 {
			return buckets + 1, subBuckets
		}
		smallestUntrackable <<= 1
		buckets++
	}
	return buckets, subBuckets
}
