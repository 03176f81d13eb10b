package stats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/wsload/wsload/internal/termsafe"
)

// Significance guards of Compare: a difference within them is "≈", not
// better or worse. Latencies also need to differ by more than the
// histogram's resolution at that value (1 µs below 2 ms, 0.1% above).
const (
	LatencyTolerance = 0.02 // of the larger value
	RateTolerance    = 0.01 // messages per second: durations differ by a tick
	CPUTolerance     = 0.02 // CPU per message is measured coarsely
)

// Figure kinds: how a row's values are formatted and how much noise its
// significance guard allows. Counts are exact: any difference is real.
const (
	KindCount   = "count"
	KindRate    = "rate"    // per second
	KindLatency = "latency" // µs
	KindCPU     = "cpu"     // µs of CPU per message
)

// Comparison is the side-by-side comparison of runs Compare builds.
type Comparison struct {
	Labels []string     `json:"labels"`
	Rows   []CompareRow `json:"rows"`
	// Summary has one line per run after the first: how it fares against
	// the first, and its rtt p99 change.
	Summary []string `json:"summary"`
}

// CompareRow is one headline figure of every run.
type CompareRow struct {
	Name         string
	Kind         string    // Kind*
	HigherBetter bool      // rates, established, peak open; lower is better for the rest
	Values       []float64 // per run; NaN when the run did not measure it
	// Diff and Pct are each run's difference from the first run, absolute
	// and in percent of the first's value; NaN where not computable.
	Diff, Pct []float64
	// Verdict is each run against the first: +1 better, -1 worse, 0 ≈
	// (within the significance guard, or not comparable). Verdict[0] is 0.
	Verdict []int
	// Best are the runs no other run beats significantly; nil when every
	// run is ≈ the others or fewer than two measured the figure.
	Best []int
}

// MarshalJSON writes NaN, which JSON cannot hold, as null.
func (r CompareRow) MarshalJSON() ([]byte, error) {
	nums := func(v []float64) []*float64 {
		out := make([]*float64, len(v))
		for i := range v {
			if !math.IsNaN(v[i]) && !math.IsInf(v[i], 0) {
				out[i] = &v[i]
			}
		}
		return out
	}
	better := "lower"
	if r.HigherBetter {
		better = "higher"
	}
	return json.Marshal(struct {
		Name    string     `json:"name"`
		Kind    string     `json:"kind"`
		Better  string     `json:"better"`
		Values  []*float64 `json:"values"`
		Diff    []*float64 `json:"diff"`
		Pct     []*float64 `json:"diff_pct"`
		Verdict []int      `json:"verdict"`
		Best    []int      `json:"best"`
	}{r.Name, r.Kind, better, nums(r.Values), nums(r.Diff), nums(r.Pct), r.Verdict, r.Best})
}

// figure is one row's definition.
type figure struct {
	name   string
	kind   string
	higher bool
	get    func(*Result) float64
}

func latencyFig(name string, l func(*Result) *Latency, v func(*Latency) int64) figure {
	return figure{name, KindLatency, false, func(r *Result) float64 {
		if lat := l(r); lat.Count > 0 {
			return float64(v(lat))
		}
		return math.NaN()
	}}
}

func compareFigures() []figure {
	figs := []figure{
		{"connections established", KindCount, true, func(r *Result) float64 { return float64(r.Connections.Established) }},
		{"connections failed", KindCount, false, func(r *Result) float64 { return float64(r.Connections.Failed) }},
		{"peak open", KindCount, true, func(r *Result) float64 { return float64(r.Connections.PeakOpen) }},
		{"messages sent/s", KindRate, true, func(r *Result) float64 { return r.Messages.SentPerS }},
		{"messages received/s", KindRate, true, func(r *Result) float64 { return r.Messages.ReceivedPerS }},
		{"timeouts", KindCount, false, func(r *Result) float64 { return float64(r.Messages.TimedOut) }},
		{"errors", KindCount, false, func(r *Result) float64 {
			var n int64
			for _, c := range r.Errors {
				n += c
			}
			return float64(n)
		}},
	}
	for _, l := range []struct {
		name string
		get  func(*Result) *Latency
	}{
		{"rtt", func(r *Result) *Latency { return &r.Latency.RTT }},
		{"rtt uncorrected", func(r *Result) *Latency { return &r.Latency.RTTUncorrected }},
	} {
		for _, p := range []string{"p50", "p90", "p99", "p999"} {
			figs = append(figs, latencyFig(l.name+" "+p, l.get, func(lat *Latency) int64 { v, _ := lat.Percentile(p); return v }))
		}
		figs = append(figs, latencyFig(l.name+" max", l.get, func(lat *Latency) int64 { return lat.MaxUS }))
	}
	hs := func(r *Result) *Latency { return &r.Latency.Handshake }
	return append(figs,
		latencyFig("handshake p50", hs, func(l *Latency) int64 { return l.P50US }),
		latencyFig("handshake p99", hs, func(l *Latency) int64 { return l.P99US }),
		latencyFig("send lag p99", func(r *Result) *Latency { return &r.Latency.SendLag }, func(l *Latency) int64 { return l.P99US }),
		figure{"generator CPU/msg", KindCPU, false, func(r *Result) float64 {
			g := r.Generator
			if g.CPUUserS+g.CPUSysS <= 0 || r.Messages.Sent+r.Messages.Received == 0 {
				return math.NaN() // CPU not measured, or no messages to divide by
			}
			return g.CPUPerMsgUS
		}},
	)
}

// headlineFigure is the row the summary quotes.
const headlineFigure = "rtt p99"

// Compare lines up the headline figures of results: connections
// established and failed, peak open, messages sent and received per second,
// timeouts, errors, corrected and uncorrected RTT p50/p90/p99/p999/max,
// handshake p50/p99, send lag p99 and the generator's CPU per message. Each
// run is compared with the first; differences within the significance guards
// (LatencyTolerance and the histogram resolution, RateTolerance,
// CPUTolerance; counts are exact) are "≈". labels name the runs; missing
// ones default to A, B, C….
func Compare(labels []string, results []*Result) *Comparison {
	c := &Comparison{Labels: make([]string, len(results))}
	for i := range results {
		if i < len(labels) && labels[i] != "" {
			c.Labels[i] = labels[i]
		} else {
			c.Labels[i] = runLetter(i)
		}
	}
	n := len(results)
	for _, f := range compareFigures() {
		row := CompareRow{Name: f.name, Kind: f.kind, HigherBetter: f.higher,
			Values: make([]float64, n), Diff: make([]float64, n), Pct: make([]float64, n), Verdict: make([]int, n)}
		for i, r := range results {
			row.Values[i] = f.get(r)
		}
		for i, v := range row.Values {
			base := row.Values[0]
			row.Diff[i] = v - base
			switch {
			case math.IsNaN(row.Diff[i]):
				row.Pct[i] = math.NaN()
			case base == 0 && v == 0:
				row.Pct[i] = 0
			case base == 0:
				row.Pct[i] = math.NaN()
			default:
				row.Pct[i] = 100 * (v - base) / math.Abs(base)
			}
			row.Verdict[i] = row.versus(0, i)
		}
		row.Best = row.best()
		c.Rows = append(c.Rows, row)
	}
	for i := 1; i < n; i++ {
		c.Summary = append(c.Summary, c.summary(i))
	}
	return c
}

// versus is +1 when run j is significantly better than run i, -1 when
// worse, 0 when ≈ or not comparable.
func (r *CompareRow) versus(i, j int) int {
	a, b := r.Values[i], r.Values[j]
	if math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	d := b - a
	if math.Abs(d) <= tolerance(r.Kind, a, b) {
		return 0
	}
	if (d > 0) == r.HigherBetter {
		return 1
	}
	return -1
}

// tolerance is the largest difference between a and b that is "≈".
func tolerance(kind string, a, b float64) float64 {
	hi := max(math.Abs(a), math.Abs(b))
	switch kind {
	case KindLatency:
		return max(LatencyTolerance*hi, float64(resolution(int64(hi))))
	case KindRate:
		return RateTolerance * hi
	case KindCPU:
		return CPUTolerance * hi
	}
	return 0
}

// resolution is the width of the histogram bucket holding v µs: values
// closer than that are indistinguishable in a recorded histogram. With
// wsload's 3 significant digits the 2048 sub-buckets of 1 µs cover values
// below 2048 µs, and every doubling above doubles the width.
func resolution(v int64) int64 {
	w := int64(1)
	for v = min(v, HighestUS); v >= 2048; v >>= 1 {
		w <<= 1
	}
	return w
}

func (r *CompareRow) best() []int {
	var valid, best []int
	for i, v := range r.Values {
		if !math.IsNaN(v) {
			valid = append(valid, i)
		}
	}
	for _, i := range valid {
		beaten := false
		for _, j := range valid {
			if r.versus(i, j) > 0 {
				beaten = true
				break
			}
		}
		if !beaten {
			best = append(best, i)
		}
	}
	if len(valid) < 2 || len(best) == len(valid) {
		return nil
	}
	return best
}

// summary describes run i against the first run.
func (c *Comparison) summary(i int) string {
	var better, worse, same, measured int
	var head *CompareRow
	for k := range c.Rows {
		row := &c.Rows[k]
		if row.Name == headlineFigure {
			head = row
		}
		if math.IsNaN(row.Values[0]) || math.IsNaN(row.Values[i]) {
			continue
		}
		measured++
		switch row.Verdict[i] {
		case 1:
			better++
		case -1:
			worse++
		default:
			same++
		}
	}
	s := fmt.Sprintf("%s vs %s: better on %d of %d figures, worse on %d, ≈ on %d", c.Labels[i], c.Labels[0], better, measured, worse, same)
	if head == nil || math.IsNaN(head.Values[0]) || math.IsNaN(head.Values[i]) {
		return s
	}
	change := fmt.Sprintf("%s -> %s", FormatUS(int64(head.Values[0])), FormatUS(int64(head.Values[i])))
	switch p := head.Pct[i]; {
	case head.Verdict[i] == 0:
		return fmt.Sprintf("%s; %s ≈ (%s)", s, head.Name, change)
	case p < 0:
		return fmt.Sprintf("%s; %s %.0f%% lower (%s)", s, head.Name, -p, change)
	default:
		return fmt.Sprintf("%s; %s %.0f%% higher (%s)", s, head.Name, p, change)
	}
}

func runLetter(i int) string {
	if i < 26 {
		return string(rune('A' + i))
	}
	return fmt.Sprintf("run%d", i+1)
}

// cells returns the table of c as text cells: a header, then one line per
// row: name, then per run its value, and for every run after the first its
// difference and percentage, then the better runs.
func (c *Comparison) cells() [][]string {
	head := []string{"figure"}
	for i, l := range c.Labels {
		head = append(head, l)
		if i > 0 {
			head = append(head, "Δ", "Δ%")
		}
	}
	head = append(head, "better")
	out := [][]string{head}
	for _, row := range c.Rows {
		line := []string{row.Name}
		for i, v := range row.Values {
			line = append(line, fmtFigure(row.Kind, v, false))
			if i > 0 {
				line = append(line, fmtFigure(row.Kind, row.Diff[i], true), fmtPct(row.Pct[i]))
			}
		}
		line = append(line, c.bestText(&row))
		out = append(out, line)
	}
	return out
}

func (c *Comparison) bestText(row *CompareRow) string {
	measured := 0
	for _, v := range row.Values {
		if !math.IsNaN(v) {
			measured++
		}
	}
	switch {
	case measured < 2:
		return ""
	case row.Best == nil:
		return "≈"
	}
	names := make([]string, len(row.Best))
	for k, i := range row.Best {
		names[k] = c.Labels[i]
	}
	return strings.Join(names, " ≈ ")
}

func fmtFigure(kind string, v float64, signed bool) string {
	if math.IsNaN(v) {
		return "-"
	}
	sign := ""
	if signed {
		switch {
		case v > 0:
			sign = "+"
		case v < 0:
			sign = "-"
		}
		v = math.Abs(v)
	}
	switch kind {
	case KindRate:
		return sign + fmtRate(v)
	case KindLatency:
		if signed && v == 0 {
			return "0"
		}
		return sign + FormatUS(int64(math.Round(v)))
	case KindCPU:
		return sign + fmt.Sprintf("%.2fµs", v)
	}
	return sign + fmt.Sprintf("%.0f", v)
}

func fmtPct(p float64) string {
	switch {
	case math.IsNaN(p):
		return "-"
	case p == 0:
		return "0%"
	}
	return fmt.Sprintf("%+.1f%%", p)
}

// compareNote explains the table's conventions.
func compareNote(first string) string {
	return fmt.Sprintf("Δ is each run minus %s. ≈ means within %.0f%% and the histogram's precision on latency, %.0f%% on rates, %.0f%% on CPU; counts are exact. rtt is measured from the scheduled send time (coordinated omission corrected).",
		first, 100*LatencyTolerance, 100*RateTolerance, 100*CPUTolerance)
}

// WriteText writes c as an aligned table, the summary lines and a note on
// what Δ and ≈ mean.
func (c *Comparison) WriteText(w io.Writer) error {
	var b bytes.Buffer
	cells := c.cells()
	widths := make([]int, len(cells[0]))
	for _, line := range cells {
		for k, s := range line {
			widths[k] = max(widths[k], len([]rune(s)))
		}
	}
	for _, line := range cells {
		for k, s := range line {
			pad := strings.Repeat(" ", widths[k]-len([]rune(s)))
			switch {
			case k == 0:
				b.WriteString(s + pad)
			case k == len(line)-1:
				b.WriteString("  " + s)
			default:
				b.WriteString("  " + pad + s)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, s := range c.Summary {
		b.WriteString(s + "\n")
	}
	if len(c.Labels) > 0 {
		b.WriteString(compareNote(c.Labels[0]) + "\n")
	}
	if _, err := termsafe.NewWriter(w).Write(b.Bytes()); err != nil { // labels, backend names: escaped
		return fmt.Errorf("stats: writing comparison: %w", err)
	}
	return nil
}

// WriteMarkdown writes c as a GitHub-flavoured Markdown table, the summary
// as a list and the note.
func (c *Comparison) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	esc := strings.NewReplacer("|", `\|`, "\n", " ")
	for n, line := range c.cells() {
		b.WriteString("|")
		for _, s := range line {
			b.WriteString(" " + esc.Replace(s) + " |")
		}
		b.WriteString("\n")
		if n == 0 {
			b.WriteString("|")
			for k := range line {
				if k == 0 || k == len(line)-1 {
					b.WriteString(" --- |")
				} else {
					b.WriteString(" ---: |")
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n")
	for _, s := range c.Summary {
		b.WriteString("- " + esc.Replace(s) + "\n")
	}
	if len(c.Labels) > 0 {
		b.WriteString("\n" + esc.Replace(compareNote(c.Labels[0])) + "\n")
	}
	if _, err := termsafe.NewWriter(w).Write(b.Bytes()); err != nil { // labels, backend names: escaped
		return fmt.Errorf("stats: writing comparison: %w", err)
	}
	return nil
}
