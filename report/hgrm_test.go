package report

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wsload/wsload/stats"
)

// hgrmRow is one parsed percentile line of an .hgrm file.
type hgrmRow struct {
	value, percentile float64
	count             int64
	fields            int
}

// parseHgrm splits an .hgrm text the way the HdrHistogram plotter does: on
// blanks, skipping the header and the "#[" footer. It fails the test on any
// line it cannot read.
func parseHgrm(t *testing.T, text string) (rows []hgrmRow, footer []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 5 {
		t.Fatalf("hgrm has %d lines:\n%s", len(lines), text)
	}
	if want := "       Value     Percentile TotalCount 1/(1-Percentile)"; lines[0] != want {
		t.Fatalf("hgrm header = %q, want %q", lines[0], want)
	}
	if lines[1] != "" {
		t.Fatalf("hgrm line 2 = %q, want it blank", lines[1])
	}
	for _, l := range lines[2:] {
		if strings.HasPrefix(l, "#[") {
			footer = append(footer, l)
			continue
		}
		f := strings.Fields(l)
		if len(f) != 3 && len(f) != 4 {
			t.Fatalf("hgrm line %q has %d fields, want 3 or 4", l, len(f))
		}
		v, err1 := strconv.ParseFloat(f[0], 64)
		p, err2 := strconv.ParseFloat(f[1], 64)
		n, err3 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("hgrm line %q: %v %v %v", l, err1, err2, err3)
		}
		rows = append(rows, hgrmRow{v, p, n, len(f)})
	}
	return rows, footer
}

func hist1to1000() *hdrhistogram.Histogram {
	h := stats.NewHistogram()
	for v := 1; v <= 1000; v++ {
		stats.Record(h, time.Duration(v)*time.Microsecond)
	}
	return h
}

// TestWriteHgrmKnownDistribution checks the .hgrm of 1..1000 µs against
// what that distribution is: p99 is 990 µs, shown as 0.990 ms, and so on.
func TestWriteHgrmKnownDistribution(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHgrm(&b, hist1to1000()); err != nil {
		t.Fatalf("WriteHgrm: %v", err)
	}
	out := b.String()
	rows, footer := parseHgrm(t, out)

	for i, r := range rows {
		if i > 0 {
			prev := rows[i-1]
			if r.value < prev.value || r.percentile <= prev.percentile || r.count < prev.count {
				t.Fatalf("hgrm rows %d and %d are not monotonic: %+v then %+v", i-1, i, prev, r)
			}
		}
		if last := i == len(rows)-1; last != (r.fields == 3) {
			t.Fatalf("hgrm row %d of %d has %d fields: only the last (100%%) row omits 1/(1-Percentile)", i, len(rows), r.fields)
		}
	}
	// Rows fall on the reporting ticks (5 per half distance to 100%), so the
	// row for q is the first at or above it; for 1..1000 µs its value is
	// q seconds' worth of milliseconds, within a tick's width.
	for _, tc := range []struct {
		q, wantMS, tolMS float64
	}{
		{0, 0.001, 0},
		{0.5, 0.500, 0.001},
		{0.9, 0.900, 0.001},
		{0.99, 0.990, 0.001},
		{0.999, 0.999, 0.001},
		{1, 1.000, 0},
	} {
		i := slices.IndexFunc(rows, func(r hgrmRow) bool { return r.percentile >= tc.q-1e-9 })
		if i < 0 {
			t.Fatalf("hgrm has no row at or above percentile %g:\n%s", tc.q, out)
		}
		if r := rows[i]; math.Abs(r.value-tc.wantMS) > tc.tolMS+1e-9 || r.count != int64(math.Round(r.value*1000)) {
			t.Fatalf("hgrm row for percentile %g = %+v, want %.3f ms (±%.3f) and a count equal to the value in µs", tc.q, r, tc.wantMS, tc.tolMS)
		}
	}
	if last := rows[len(rows)-1]; last.percentile != 1 || last.count != 1000 {
		t.Fatalf("hgrm's last row = %+v, want percentile 1 and the total count", last)
	}
	// The mean of 1..1000 is 500.5 µs; the standard deviation of the
	// discrete uniform distribution is sqrt((n²-1)/12).
	wantFooter := []string{
		fmt.Sprintf("#[Mean    = %12.3f, StdDeviation   = %12.3f]", 500.5/1000, 288.6749902572095/1000),
		fmt.Sprintf("#[Max     = %12.3f, Total count    = %12d]", 1.0, 1000),
		fmt.Sprintf("#[Buckets = %12d, SubBuckets     = %12d]", 22, 2048),
	}
	if strings.Join(footer, "\n") != strings.Join(wantFooter, "\n") {
		t.Fatalf("hgrm footer:\n%s\nwant:\n%s", strings.Join(footer, "\n"), strings.Join(wantFooter, "\n"))
	}
}

func TestWriteHgrmEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHgrm(&b, stats.NewHistogram()); err != nil {
		t.Fatalf("WriteHgrm: %v", err)
	}
	rows, footer := parseHgrm(t, b.String())
	if len(rows) != 0 || len(footer) != 3 || !strings.Contains(footer[1], "Total count    =            0") {
		t.Fatalf("empty histogram's hgrm has rows %v and footer %q", rows, footer)
	}
}

// TestBucketGeometry checks our recomputation of the bucket counts against
// hdrhistogram-go's own footer (PercentilesPrint prints its private fields).
func TestBucketGeometry(t *testing.T) {
	for _, g := range []struct{ lo, hi, sig int64 }{
		{stats.LowestUS, stats.HighestUS, stats.SigFigs},
		{1, 1_000_000, 2},
		{1, 1 << 62, 5},
		{1000, 1_000_000_000, 3},
		{7, 10_000, 1},
	} {
		h := hdrhistogram.New(g.lo, g.hi, int(g.sig))
		_ = h.RecordValue(g.lo)
		var ref bytes.Buffer
		if _, err := h.PercentilesPrint(&ref, 1, 1); err != nil {
			t.Fatalf("PercentilesPrint: %v", err)
		}
		b, s := bucketGeometry(h)
		want := fmt.Sprintf("#[Buckets = %12d, SubBuckets     = %12d]", b, s)
		if !strings.Contains(ref.String(), want) {
			t.Fatalf("geometry %+v: we say %q, hdrhistogram-go says:\n%s", g, want, ref.String())
		}
	}
}

func TestHistogramOf(t *testing.T) {
	r := degradedRun(t).Result
	for _, tc := range []struct {
		name string
		want int64
	}{
		{"rtt", r.Latency.RTT.Count},
		{"rtt_uncorrected", r.Latency.RTTUncorrected.Count},
		{"handshake", r.Latency.Handshake.Count},
		{"send_lag", r.Latency.SendLag.Count},
	} {
		h, err := HistogramOf(r, tc.name)
		if err != nil {
			t.Fatalf("HistogramOf(%q): %v", tc.name, err)
		}
		if h.TotalCount() != tc.want || tc.want == 0 {
			t.Fatalf("HistogramOf(%q) holds %d samples, the result says %d", tc.name, h.TotalCount(), tc.want)
		}
	}
	if _, err := HistogramOf(r, "p99"); err == nil || !strings.Contains(err.Error(), "rtt_uncorrected") {
		t.Fatalf("HistogramOf(p99) error = %v, want one naming the known histograms", err)
	}
	bad := *r
	bad.Latency.RTT.HDR = ""
	if _, err := HistogramOf(&bad, "rtt"); err == nil {
		t.Fatalf("HistogramOf accepted a latency with samples but no hdr")
	}
}
