package stats

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wsload/wsload/internal/testenv"
)

// The reference percentiles: HdrHistogram's Java getValueAtPercentile as
// hdr-histogram-js computes it, run by testdata/node/hdr-percentiles.js on
// the histograms' V2 compressed base64 encoding (the "hdr" wsload writes).
// The names and percents are the script's.
var refPercentiles = []struct {
	Name    string
	Percent float64
}{
	{"p0", 0}, {"p25", 25}, {"p50", 50}, {"p75", 75}, {"p90", 90}, {"p95", 95},
	{"p99", 99}, {"p999", 99.9}, {"p9999", 99.99}, {"p100", 100},
}

// refValues is one line of the script's output: count, min, max and one
// value per refPercentiles name.
type refValues map[string]int64

// refGoldenFile holds the reference's values for refGoldenCases, written by
// go test ./stats -run TestQuantileReferenceGolden -update (which runs the
// script) so the values are checked even where node is not installed.
const refGoldenFile = "quantile_ref.json"

type refGolden struct {
	Name string    `json:"name"`
	HDR  string    `json:"hdr"`
	Ref  refValues `json:"ref"`
}

// refGoldenCases are small counts, where rounding the rank matters most,
// with values over several magnitudes (µs to the histogram's 1-hour top).
func refGoldenCases() []struct {
	name string
	h    *hdrhistogram.Histogram
} {
	type tc = struct {
		name string
		h    *hdrhistogram.Histogram
	}
	hist := func(values ...int64) *hdrhistogram.Histogram {
		h := NewHistogram()
		for _, v := range values {
			if err := h.RecordValue(v); err != nil {
				panic(fmt.Sprintf("RecordValue(%d): %v", v, err))
			}
		}
		return h
	}
	// spread returns n values from 1 µs to about 1 hour, evenly on a log scale.
	spread := func(n int) []int64 {
		vs := make([]int64, n)
		for i := range vs {
			vs[i] = int64(math.Round(math.Pow(10, 9.5*float64(i)/float64(max(n-1, 1)))))
		}
		return vs
	}
	seq := func(n int64) []int64 {
		vs := make([]int64, n)
		for i := range vs {
			vs[i] = int64(i) + 1
		}
		return vs
	}
	// The issue's run: 198 round trips, 196 of them fast (up to 18.6 ms) and
	// two slow (65.1 ms). Rounding 0.99·198 = 196.02 to the nearest rank read
	// p99 as 18.6 ms; the reference's rank is 197.
	issue := make([]int64, 0, 198)
	for i := range 196 {
		issue = append(issue, 2_000+int64(i)*85)
	}
	issue = append(issue, 65_100, 65_100)
	return []tc{
		{"empty", NewHistogram()},
		{"1 sample", hist(4_321)},
		{"2 samples", hist(7, 250_000)},
		{"3 samples", hist(1, 3_000, 2_000_000_000)},
		{"7 samples", hist(spread(7)...)},
		{"7 equal samples", hist(900, 900, 900, 900, 900, 900, 900)},
		{"100 samples", hist(spread(100)...)},
		{"100 samples 1..100", hist(seq(100)...)},
		{"198 samples", hist(spread(198)...)},
		{"198 samples issue 9", hist(issue...)},
		{"1000 samples 1..1000", hist(seq(1000)...)},
		{"10000 samples 1..10000", hist(seq(10_000)...)},
		{"at the top", hist(1, 50, HighestUS, HighestUS)},
	}
}

// TestQuantileReferenceGolden checks Quantile against the reference values
// committed in testdata, and with -update rewrites them from the reference.
func TestQuantileReferenceGolden(t *testing.T) {
	cases := refGoldenCases()
	path := filepath.Join("testdata", refGoldenFile)
	if *update {
		hdrs := make([]string, len(cases))
		for i, c := range cases {
			hdrs[i] = encodeHDR(t, c.h)
		}
		refs := runRefScript(t, hdrs)
		golden := make([]refGolden, len(cases))
		for i, c := range cases {
			golden[i] = refGolden{Name: c.name, HDR: hdrs[i], Ref: refs[i]}
		}
		b, err := json.MarshalIndent(golden, "", "  ")
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatalf("writing %s: %v", path, err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s (go test ./stats -run TestQuantileReferenceGolden -update writes it): %v", path, err)
	}
	var golden []refGolden
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(golden) != len(cases) {
		t.Fatalf("%s has %d cases, the test %d: rerun with -update", path, len(golden), len(cases))
	}
	for i, g := range golden {
		c := cases[i]
		h, err := (&Latency{HDR: g.HDR, Count: g.Ref["count"]}).Histogram()
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		if g.Name != c.name || !h.Equals(c.h) {
			t.Fatalf("%s case %d is %q, no longer the test's %q histogram: rerun with -update", path, i, g.Name, c.name)
		}
		checkAgainstRef(t, g.Name, h, g.Ref)
	}
	// The issue's numbers: p99 of the 198 round trips is the slow one.
	for _, g := range golden {
		if g.Name == "198 samples issue 9" && g.Ref["p99"] != 65_119 {
			t.Fatalf("%s: reference p99 = %d µs, want 65.1 ms (65119, the highest value equivalent to 65100)", g.Name, g.Ref["p99"])
		}
	}
}

// TestQuantileReferenceLive runs the reference on the golden cases and on
// random histograms and requires Quantile (and Min, Max and the count) to
// equal it exactly, every percentile of every histogram.
func TestQuantileReferenceLive(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		h    *hdrhistogram.Histogram
	}
	var cases []tc
	for _, c := range refGoldenCases() {
		cases = append(cases, tc{c.name, c.h})
	}
	rng := rand.New(rand.NewPCG(9, 99))
	for i := range 200 {
		h, desc := randomRefHistogram(rng)
		cases = append(cases, tc{fmt.Sprintf("random %d: %s", i, desc), h})
	}
	hdrs := make([]string, len(cases))
	for i, c := range cases {
		hdrs[i] = encodeHDR(t, c.h)
	}
	refs := runRefScript(t, hdrs)
	for i, c := range cases {
		checkAgainstRef(t, c.name, c.h, refs[i])
	}
}

// randomRefHistogram returns a histogram of a random size (1 to a few
// thousand samples, sometimes with counts in the millions per value), with
// values log-uniform over a random span of magnitudes, sometimes in a few
// clusters, sometimes up against the histogram's top.
func randomRefHistogram(rng *rand.Rand) (*hdrhistogram.Histogram, string) {
	h := NewHistogram()
	var n int
	switch rng.IntN(4) {
	case 0:
		n = 1 + rng.IntN(12)
	case 1:
		n = 1 + rng.IntN(300)
	default:
		n = 1 + rng.IntN(5000)
	}
	lo := rng.Float64() * 6             // log10 of the lowest value: 1 µs .. 1 s
	hi := lo + rng.Float64()*(9.556-lo) // .. up to log10(HighestUS)
	clusters := 0
	if rng.IntN(3) == 0 {
		clusters = 1 + rng.IntN(4)
	}
	centers := make([]int64, clusters)
	for i := range centers {
		centers[i] = int64(math.Pow(10, lo+rng.Float64()*(hi-lo)))
	}
	heavy := rng.IntN(5) == 0
	for range n {
		var v int64
		if clusters > 0 {
			v = centers[rng.IntN(clusters)]
		} else {
			v = int64(math.Pow(10, lo+rng.Float64()*(hi-lo)))
		}
		v = min(max(v, LowestUS), HighestUS)
		count := int64(1)
		if heavy {
			count = 1 + rng.Int64N(2_000_000)
		}
		if err := h.RecordValues(v, count); err != nil {
			panic(fmt.Sprintf("RecordValues(%d, %d): %v", v, count, err))
		}
	}
	if rng.IntN(10) == 0 {
		_ = h.RecordValue(HighestUS)
	}
	return h, fmt.Sprintf("%d values, 10^%.1f..10^%.1f µs, %d clusters, heavy %v, %d samples", n, lo, hi, clusters, heavy, h.TotalCount())
}

// checkAgainstRef requires Quantile at every reference percentile, and the
// count, Min and Max, to equal the reference's values.
func checkAgainstRef(t *testing.T, name string, h *hdrhistogram.Histogram, ref refValues) {
	t.Helper()
	got := refValues{"count": h.TotalCount(), "min": h.Min(), "max": h.Max()}
	for _, p := range refPercentiles {
		got[p.Name] = Quantile(h, p.Percent)
	}
	var diffs []string
	for _, k := range append([]string{"count", "min", "max"}, refNames()...) {
		want, ok := ref[k]
		if !ok {
			t.Fatalf("%s: the reference gave no %q: %v", name, k, ref)
		}
		if got[k] != want {
			diffs = append(diffs, fmt.Sprintf("%s %d, reference %d", k, got[k], want))
		}
	}
	if len(diffs) > 0 {
		t.Errorf("%s: %s", name, strings.Join(diffs, "; "))
	}
}

func refNames() []string {
	names := make([]string, len(refPercentiles))
	for i, p := range refPercentiles {
		names[i] = p.Name
	}
	return names
}

func encodeHDR(t *testing.T, h *hdrhistogram.Histogram) string {
	t.Helper()
	l, err := NewLatency(h)
	if err != nil {
		t.Fatalf("NewLatency: %v", err)
	}
	return l.HDR
}

// refInstallHint is the remedy for a missing node or hdr-histogram-js: a
// skipped cross-check would look like a passing one.
const refInstallHint = "run ./scripts/test.sh, it installs node and the npm packages of testdata/node (npm ci)"

// runRefScript runs testdata/node/hdr-percentiles.js on hdrs and returns
// its values, one per histogram. A missing node, a missing or other version
// of hdr-histogram-js than package.json pins, fails the test.
func runRefScript(t *testing.T, hdrs []string) []refValues {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %s", refInstallHint)
	}
	dir := filepath.Join(root, "testdata", "node")
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	readJSON(t, filepath.Join(dir, "package.json"), &pkg)
	var mod struct {
		Version string `json:"version"`
	}
	modPath := filepath.Join(dir, "node_modules", "hdr-histogram-js", "package.json")
	if _, err := os.Stat(modPath); err != nil {
		t.Fatalf("the npm package hdr-histogram-js is not installed (no %s): %s", modPath, refInstallHint)
	}
	readJSON(t, modPath, &mod)
	if want := pkg.Dependencies["hdr-histogram-js"]; mod.Version != want {
		t.Fatalf("hdr-histogram-js %s is installed, package.json pins %q: %s", mod.Version, want, refInstallHint)
	}

	cmd := exec.Command(node, filepath.Join(dir, "hdr-percentiles.js"))
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(strings.Join(hdrs, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node hdr-percentiles.js: %v; stderr:\n%s", err, stderr.String())
	}
	var refs []refValues
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r refValues
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("node hdr-percentiles.js printed %q: %v", sc.Text(), err)
		}
		refs = append(refs, r)
	}
	if len(refs) != len(hdrs) {
		t.Fatalf("node hdr-percentiles.js printed %d lines for %d histograms; stderr:\n%s", len(refs), len(hdrs), stderr.String())
	}
	return refs
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: %s", err, refInstallHint)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// MarshalJSON writes count, min, max, then the percentiles in refPercentiles
// order, so the golden file reads in order.
func (r refValues) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range append([]string{"count", "min", "max"}, refNames()...) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q: %d", k, r[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// javaValueAtPercentile is Java's AbstractHistogram.getValueAtPercentile
// written out over the histogram's buckets (bars, from Distribution), for
// checking Quantile's use of hdrhistogram-go's bucket walk at every rank
// without node.
func javaValueAtPercentile(bars []hdrhistogram.Bar, percentile float64) int64 {
	var n int64
	for _, b := range bars {
		n += b.Count
	}
	requested := math.Min(math.Max(math.Nextafter(percentile, math.Inf(-1)), 0), 100)
	count := max(int64(math.Ceil(requested*float64(n)/100)), 1)
	var total int64
	for _, b := range bars {
		total += b.Count
		if total >= count {
			if percentile == 0 {
				return b.From
			}
			return b.To
		}
	}
	return 0
}

// TestQuantileEveryRank checks Quantile against javaValueAtPercentile at
// every rank of histograms of 1 to 100 samples (and a few up to 300), each in its own bucket, at
// the percents where the rank steps (k/N·100 and its neighbouring floats),
// and at random percents.
func TestQuantileEveryRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range append(seqInts(1, 100), 128, 197, 198, 199, 255, 300) {
		h := NewHistogram()
		for i := range n {
			// Distinct buckets across magnitudes: 1 µs-wide buckets below
			// 2048 µs, wider above.
			v := int64(i + 1)
			if i%2 == 1 {
				v = int64(i+1) * 10_007
			}
			_ = h.RecordValue(v)
		}
		percents := []float64{0, 100, -1, 101, math.Inf(1), math.Inf(-1)}
		for _, p := range refPercentiles {
			percents = append(percents, p.Percent)
		}
		for k := 0; k <= n; k++ {
			p := 100 * float64(k) / float64(n)
			percents = append(percents, p, math.Nextafter(p, 0), math.Nextafter(p, 200), math.Nextafter(math.Nextafter(p, 200), 200))
		}
		for range 50 {
			percents = append(percents, rng.Float64()*100)
		}
		var bars []hdrhistogram.Bar // the non-empty ones, to keep the walk short
		for _, b := range h.Distribution() {
			if b.Count > 0 {
				bars = append(bars, b)
			}
		}
		for _, p := range percents {
			if got, want := Quantile(h, p), javaValueAtPercentile(bars, p); got != want {
				t.Fatalf("%d samples: Quantile(%v) = %d, Java's getValueAtPercentile %d", n, p, got, want)
			}
		}
		if Quantile(h, 0) != h.Min() || Quantile(h, 100) != h.Max() {
			t.Fatalf("%d samples: p0 %d, p100 %d; Min %d, Max %d", n, Quantile(h, 0), Quantile(h, 100), h.Min(), h.Max())
		}
	}
	// NaN: Java's rank 1 (its long cast of NaN is 0, raised to 1), highest
	// equivalent value.
	h := NewHistogram()
	_ = h.RecordValue(5000)
	_ = h.RecordValue(9000)
	if got := Quantile(h, math.NaN()); got != Quantile(h, 1) {
		t.Fatalf("Quantile(NaN) = %d, want the first sample's highest equivalent value %d", got, Quantile(h, 1))
	}
}

func seqInts(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestRefRank(t *testing.T) {
	for _, tc := range []struct {
		percent float64
		total   int64
		want    int64
	}{
		{99, 100, 99}, // not 100: the ulp taken off p
		{99, 198, 197},
		{99, 199, 198},
		{50, 1, 1},
		{50, 2, 1},
		{50, 3, 2},
		{25, 7, 2},
		{99.9, 1000, 999},
		{99.99, 10_000, 9999},
		{99.99, 10_001, 10_000},
		{0, 5, 1},
		{-3, 5, 1},
		{100, 5, 5},
		{250, 5, 5},
		{math.Inf(1), 5, 5},
		{math.NaN(), 5, 1},
		{1e-300, 5, 1},
		{99.9, 3_000_000_000, 2_997_000_000},
	} {
		if got := refRank(tc.percent, tc.total); got != tc.want {
			t.Errorf("refRank(%v, %d) = %d, want %d", tc.percent, tc.total, got, tc.want)
		}
	}
}

// TestQuantileAllocs: Quantile runs once per percentile per interval and
// report, on histograms of 184 KB of counts; it must not copy them.
func TestQuantileAllocs(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 100_000; v += 7 {
		_ = h.RecordValue(v)
	}
	if a := testing.AllocsPerRun(100, func() {
		for _, p := range refPercentiles {
			_ = Quantile(h, p.Percent)
		}
	}); a != 0 {
		t.Fatalf("Quantile allocates %v times per call", a)
	}
}
