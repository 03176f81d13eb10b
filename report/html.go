package report

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/wsload/wsload/stats"
)

// Options change what WriteHTML puts on the page.
type Options struct {
	// Title replaces the page's heading ("wsload report: TARGET", or
	// "wsload compare: N runs").
	Title string
	// Capacity, when set, adds the capacity curve section (CapacityCurve).
	Capacity *Capacity
}

//go:embed report.html.tmpl
var pageTmplText string

// figureTmpl draws one figure; the page and the capacity fragment share it.
const figureTmpl = `<figure class="chart" id="{{.ID}}"><figcaption><span class="ft">{{.Title}}</span>{{if .Note}} <span class="fn">{{.Note}}</span>{{end}}</figcaption>
{{.SVG}}
{{- if .Legend}}<ul class="legend">{{range .Legend}}<li>{{if .Marker}}<span class="mk" style="color: {{.Color}}">{{.Marker}}</span>{{else}}<span class="sw{{if .Dashed}} dashed{{end}}" style="border-top-color: {{.Color}}"></span>{{end}}{{.Name}}</li>{{end}}</ul>{{end}}</figure>
`

var pageTmpl = withFigure(template.Must(template.New("page").Parse(pageTmplText)))

// withFigure adds the shared "figure" template to t and returns t.
func withFigure(t *template.Template) *template.Template {
	template.Must(t.New("figure").Parse(figureTmpl))
	return t
}

// WriteHTML writes a self-contained HTML report of runs to w: inline CSS and
// SVG only, nothing fetched, so it opens offline and can be mailed or
// attached to a change review. One run gives the run's report; several give
// the compare view, the first run being the baseline every other run's
// difference is computed against. Every string from a Result is escaped.
func WriteHTML(w io.Writer, runs []Run, opt Options) error {
	if len(runs) == 0 {
		return errors.New("report: no runs to report")
	}
	for i, r := range runs {
		if r.Result == nil {
			return fmt.Errorf("report: run %d (%q) has no result", i+1, r.Label)
		}
	}
	pg, err := buildPage(runs, opt)
	if err != nil {
		return err
	}
	if err := pageTmpl.Execute(w, pg); err != nil {
		return fmt.Errorf("report: writing html: %w", err)
	}
	return nil
}

// page is what the template renders.
type page struct {
	Title    string
	Compare  bool
	Runs     []runView
	Cards    []cardGroup // one run
	Headline *table      // compare
	// CompareSummary says in a line per run how it fares against the first.
	CompareSummary []string
	Latency        []figure
	Timeline       []figure
	// Charts left out for lack of data, said in words.
	LatencyEmpty, TimelineEmpty []string
	Capacity                    template.HTML
	Steps                       *table
	Backends                    template.HTML
	Recovery                    template.HTML // reconnects and recovery, when a run dropped connections
	CloseCodes                  *table
	Errors                      *table
	Config                      *table
	Version                     string
}

type runView struct {
	Label, Color, Target, Date, Duration, Version string
	Verdict                                       verdict
}

type verdict struct {
	Class string // ok, warn, bad
	Word  string
	Items []string
	SLO   []sloView // the run's service-level objectives, when it had any
}

type sloView struct {
	Objective, Actual, Note string
	OK                      bool
}

type table struct {
	Head []string
	Rows [][]cell
}

// NumCol reports whether column i holds numbers (right-aligned), judged by
// the first row, so a head aligns with its column.
func (t *table) NumCol(i int) bool {
	return len(t.Rows) > 0 && i < len(t.Rows[0]) && strings.HasPrefix(t.Rows[0][i].Class, "num")
}

type cell struct {
	Text  string
	Sub   string // a second, smaller line: a difference, a share
	Class string // num, better, worse, …
	Color string // a swatch before the text (a run's colour)
}

type cardGroup struct {
	Title string
	Cards []card
}

type card struct {
	Label, Value, Sub string
	Class             string
}

func buildPage(runs []Run, opt Options) (*page, error) {
	pg := &page{Compare: len(runs) > 1, Version: runs[0].Result.Version}
	for i, r := range runs {
		res := r.Result
		pg.Runs = append(pg.Runs, runView{
			Label:    r.Label,
			Color:    cssColor(colorAt(i)),
			Target:   res.Target,
			Date:     res.Start.UTC().Format("2006-01-02 15:04:05 UTC"),
			Duration: fmtSeconds(res.DurationS),
			Version:  res.Version,
			Verdict:  verdictOf(res),
		})
	}
	switch {
	case opt.Title != "":
		pg.Title = opt.Title
	case pg.Compare:
		pg.Title = fmt.Sprintf("wsload compare: %d runs", len(runs))
	default:
		pg.Title = "wsload report: " + runs[0].Result.Target
	}
	if pg.Compare {
		pg.Headline, pg.CompareSummary = compareTable(runs)
	} else {
		pg.Cards = headlineCards(runs[0].Result)
	}

	var err error
	if pg.Latency, pg.LatencyEmpty, err = latencyFigures(runs); err != nil {
		return nil, err
	}
	if pg.Timeline, pg.TimelineEmpty, err = timelineFigures(runs); err != nil {
		return nil, err
	}
	if opt.Capacity != nil {
		if pg.Capacity, err = CapacityCurve(*opt.Capacity); err != nil {
			return nil, err
		}
	}
	if pg.Backends, err = backendsSection(runs); err != nil {
		return nil, err
	}
	if pg.Recovery, err = recoverySection(runs); err != nil {
		return nil, err
	}
	pg.Steps = stepsTable(runs)
	pg.CloseCodes = closeCodesTable(runs)
	pg.Errors = errorsTable(runs)
	pg.Config = configTable(runs)
	return pg, nil
}

// verdictOf sums a run up. Its items are the Result's generator.warnings
// (stats.Diagnose: failed connections, timeouts, the generator's own limits,
// clamped samples) plus what those do not cover: errors on established
// connections and abnormal close codes. A broken SLO, failed connections,
// errors or timeouts make it red, anything else listed amber, nothing
// green. The SLO verdicts are listed with it.
func verdictOf(r *stats.Result) verdict {
	c, m := r.Connections, r.Messages
	items := slices.Clone(r.Generator.Warnings)
	runtime := map[string]int64{}
	for reason, n := range r.Errors {
		if rest := n - c.FailedByReason[reason]; rest > 0 {
			runtime[reason] = rest
		}
	}
	if len(runtime) > 0 {
		items = append(items, fmt.Sprintf("%s errors on established connections: %s", fmtInt(sum(runtime)), topReasons(runtime, 3)))
	}
	var abnormal int64
	for code, n := range r.CloseCodes {
		if code != 1000 && code != 1001 {
			abnormal += n
		}
	}
	if abnormal > 0 {
		items = append(items, fmt.Sprintf("%s connections closed with an abnormal close code (see Close codes)", fmtInt(abnormal)))
	}
	var slo []sloView
	for _, v := range r.SLO {
		slo = append(slo, sloView{Objective: v.Objective, Actual: stats.FormatValue(v.Actual, v.Unit), Note: v.Note, OK: v.OK})
	}
	bad := c.Failed > 0 || (c.Attempted > 0 && c.Established == 0) || m.TimedOut > 0 || len(runtime) > 0
	switch {
	case stats.Broken(r.SLO):
		return verdict{Class: "bad", Word: "SLO broken", Items: items, SLO: slo}
	case bad:
		return verdict{Class: "bad", Word: "Errors", Items: items, SLO: slo}
	case len(items) > 0:
		return verdict{Class: "warn", Word: "Warnings", Items: items, SLO: slo}
	}
	return verdict{Class: "ok", Word: "Healthy", SLO: slo,
		Items: []string{"no failed connections, errors, timeouts or generator warnings"}}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// topReasons lists up to n reasons by count, most first: "refused 4, dns 1".
func topReasons(m map[string]int64, n int) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for i, k := range keys {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s", k, fmtInt(m[k])))
	}
	return strings.Join(parts, ", ")
}

// metric is one headline figure of the one-run view. value's ok is false
// when the run has no such measurement (no RTT samples): it is shown as "–".
type metric struct {
	group, name string // a card's group and label
	value       func(r *stats.Result) (float64, bool)
	format      func(float64) string
}

func count(f func(r *stats.Result) int64) func(r *stats.Result) (float64, bool) {
	return func(r *stats.Result) (float64, bool) { return float64(f(r)), true }
}

func lat(l func(r *stats.Result) *stats.Latency, v func(l *stats.Latency) int64) func(r *stats.Result) (float64, bool) {
	return func(r *stats.Result) (float64, bool) {
		x := l(r)
		return float64(v(x)), x.Count > 0
	}
}

func rtt(r *stats.Result) *stats.Latency       { return &r.Latency.RTT }
func handshake(r *stats.Result) *stats.Latency { return &r.Latency.Handshake }

func fmtUSf(v float64) string { return fmtUS(int64(v)) }

var metrics = []metric{
	{"Connections", "established", count(func(r *stats.Result) int64 { return r.Connections.Established }), fmtCount},
	{"Connections", "peak open", count(func(r *stats.Result) int64 { return r.Connections.PeakOpen }), fmtCount},
	{"Messages", "sent per second", func(r *stats.Result) (float64, bool) { return r.Messages.SentPerS, true }, fmtRate},
	{"Messages", "received per second", func(r *stats.Result) (float64, bool) { return r.Messages.ReceivedPerS, true }, fmtRate},
	{"Round-trip time (corrected)", "p50", lat(rtt, func(l *stats.Latency) int64 { return l.P50US }), fmtUSf},
	{"Round-trip time (corrected)", "p99", lat(rtt, func(l *stats.Latency) int64 { return l.P99US }), fmtUSf},
	{"Round-trip time (corrected)", "p99.9", lat(rtt, func(l *stats.Latency) int64 { return l.P999US }), fmtUSf},
	{"Round-trip time (corrected)", "max", lat(rtt, func(l *stats.Latency) int64 { return l.MaxUS }), fmtUSf},
	{"Handshake", "p99", lat(handshake, func(l *stats.Latency) int64 { return l.P99US }), fmtUSf},
	{"Failures", "failed connections", count(func(r *stats.Result) int64 { return r.Connections.Failed }), fmtCount},
	{"Failures", "timed-out messages", count(func(r *stats.Result) int64 { return r.Messages.TimedOut }), fmtCount},
	{"Failures", "errors", count(func(r *stats.Result) int64 { return sum(r.Errors) }), fmtCount},
}

func headlineCards(r *stats.Result) []cardGroup {
	var groups []cardGroup
	for _, m := range metrics {
		if len(groups) == 0 || groups[len(groups)-1].Title != m.group {
			groups = append(groups, cardGroup{Title: m.group})
		}
		g := &groups[len(groups)-1]
		v, ok := m.value(r)
		c := card{Label: m.name, Value: "–"}
		if ok {
			c.Value = m.format(v)
			// Failures are tinted when there are any.
			if m.group == "Failures" && v > 0 {
				c.Class = "bad"
			}
		}
		g.Cards = append(g.Cards, c)
	}
	return groups
}

// compareTable is the compare view's headline table, from stats.Compare so
// it judges exactly as `wsload compare` does: each figure per run, each
// later run's difference from the first (the baseline) and whether that is
// better, worse or ≈ (within the significance guards), and the best run.
func compareTable(runs []Run) (*table, []string) {
	labels := make([]string, len(runs))
	results := make([]*stats.Result, len(runs))
	for i, r := range runs {
		labels[i], results[i] = r.Label, r.Result
	}
	cmp := stats.Compare(labels, results)
	t := &table{Head: []string{"Figure"}}
	for i, l := range cmp.Labels {
		if i == 0 {
			l += " (baseline)"
		}
		t.Head = append(t.Head, l)
	}
	t.Head = append(t.Head, "Best")
	for _, row := range cmp.Rows {
		cells := []cell{{Text: row.Name}}
		for i, v := range row.Values {
			c := cell{Text: "–", Class: "num"}
			if !math.IsNaN(v) {
				c.Text = fmtKind(row.Kind, v)
			}
			if i > 0 && !math.IsNaN(v) && !math.IsNaN(row.Values[0]) {
				word, class := "≈", "same"
				switch row.Verdict[i] {
				case 1:
					word, class = "better", "better"
				case -1:
					word, class = "worse", "worse"
				}
				diff := "same"
				switch {
				case !math.IsNaN(row.Pct[i]) && row.Diff[i] != 0:
					diff = fmt.Sprintf("%+.1f%%", row.Pct[i])
				case row.Diff[i] > 0:
					diff = "+" + fmtKind(row.Kind, row.Diff[i])
				case row.Diff[i] < 0:
					diff = "-" + fmtKind(row.Kind, -row.Diff[i])
				}
				c.Sub, c.Class = diff+", "+word, "num "+class
			}
			cells = append(cells, c)
		}
		best := cell{Text: "≈"}
		var measured int
		for _, v := range row.Values {
			if !math.IsNaN(v) {
				measured++
			}
		}
		switch {
		case measured < 2:
			best.Text = "–"
		case len(row.Best) == 1:
			best = cell{Text: cmp.Labels[row.Best[0]], Color: cssColor(colorAt(row.Best[0]))}
		case len(row.Best) > 1:
			var names []string
			for _, i := range row.Best {
				names = append(names, cmp.Labels[i])
			}
			best.Text = strings.Join(names, ", ")
		}
		t.Rows = append(t.Rows, append(cells, best))
	}
	return t, cmp.Summary
}

// fmtKind formats a stats.Compare figure by its kind.
func fmtKind(kind string, v float64) string {
	switch kind {
	case stats.KindLatency:
		return fmtUS(int64(math.Round(v)))
	case stats.KindRate:
		return fmtRate(v)
	case stats.KindCPU:
		return fmt.Sprintf("%.1fµs", v)
	}
	return fmtCount(v)
}

// latencyFigures draws the percentile distributions, HdrHistogram style:
// RTT corrected and uncorrected, handshake, and send lag.
func latencyFigures(runs []Run) (figs []figure, empty []string, err error) {
	multi := len(runs) > 1
	name := func(run Run, kind string) string {
		if multi {
			return run.Label + " " + kind
		}
		return kind
	}
	type kind struct {
		hist   string
		label  string
		dashed bool
	}
	for _, spec := range []struct {
		id, title, note string
		kinds           []kind
	}{
		{"latency-rtt", "Round-trip time by percentile",
			"Corrected is measured from each message's scheduled send time, so it includes any wait to be sent (coordinated omission corrected); uncorrected from the actual send time, and hides such waits.",
			[]kind{{"rtt", "corrected", false}, {"rtt_uncorrected", "uncorrected", true}}},
		{"latency-handshake", "Handshake time by percentile",
			"From the start of the dial to the 101 Switching Protocols response (TCP connect, TLS and upgrade).",
			[]kind{{"handshake", "handshake", false}}},
		{"latency-send-lag", "Send lag by percentile (the generator's health)",
			"How late messages left the generator after their scheduled time; large values mean the generator, not the target, limited the run.",
			[]kind{{"send_lag", "send lag", false}}},
	} {
		cs := chartSpec{id: spec.id, title: spec.title, note: spec.note, x: xPercentile,
			xLabel: "percentile", yLabel: "latency (ms)"}
		for ri, run := range runs {
			for ki, k := range spec.kinds {
				h, err := HistogramOf(run.Result, k.hist)
				if err != nil {
					return nil, nil, fmt.Errorf("report: %s: %w", run.Label, err)
				}
				clr := colorAt(ri)
				if !multi {
					clr = colorAt(ki)
				}
				cs.series = append(cs.series, series{name: name(run, k.label), xys: percentileXYs(h), color: clr, dashed: k.dashed})
			}
		}
		fig, ok, err := render(cs)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			empty = append(empty, spec.title+": no samples to plot.")
			continue
		}
		figs = append(figs, fig)
	}
	return figs, empty, nil
}

// timelineFigures draws the run's seconds from the timeline: open
// connections, message rates, p99 RTT and errors.
func timelineFigures(runs []Run) (figs []figure, empty []string, err error) {
	multi := len(runs) > 1
	type kind struct {
		label  string
		dashed bool
		y      func(p stats.Point) (float64, bool)
	}
	rate := func(n func(p stats.Point) int64) func(p stats.Point) (float64, bool) {
		return func(p stats.Point) (float64, bool) {
			if p.LenS <= 0 {
				return 0, false
			}
			return float64(n(p)) / p.LenS, true
		}
	}
	for _, spec := range []struct {
		id, title, note, yLabel string
		kinds                   []kind
	}{
		{"timeline-open", "Open connections", "Connections open at the end of each second.", "connections",
			[]kind{{"open", false, func(p stats.Point) (float64, bool) { return float64(p.Open), true }}}},
		{"timeline-rates", "Messages per second", "Messages sent (dashed) and received (solid) in each second.", "messages/s",
			[]kind{
				{"received/s", false, rate(func(p stats.Point) int64 { return p.Received })},
				{"sent/s", true, rate(func(p stats.Point) int64 { return p.Sent })},
			}},
		{"timeline-p99", "p99 round-trip time per second", "Corrected RTT p99 of the replies received in each second; seconds without replies are skipped.", "p99 RTT (ms)",
			[]kind{{"p99 RTT", false, func(p stats.Point) (float64, bool) {
				return float64(p.RTTP99US) / 1000, p.Received > 0 && p.RTTP99US > 0
			}}}},
		{"timeline-errors", "Errors and timeouts per second", "Connection failures and runtime errors (solid) and replies timed out (dashed) in each second.", "per second",
			[]kind{
				{"errors/s", false, rate(func(p stats.Point) int64 { return p.Errors })},
				{"timeouts/s", true, rate(func(p stats.Point) int64 { return p.TimedOut })},
			}},
	} {
		cs := chartSpec{id: spec.id, title: spec.title, note: spec.note, xLabel: "time since start (s)", yLabel: spec.yLabel}
		for ri, run := range runs {
			for ki, k := range spec.kinds {
				var xys plotter.XYs
				for _, p := range run.Result.Timeline {
					if y, ok := k.y(p); ok {
						xys = append(xys, plotter.XY{X: p.T, Y: y})
					}
				}
				clr := colorAt(ri)
				name := k.label
				if multi {
					name = run.Label + " " + k.label
				} else if spec.id == "timeline-errors" {
					clr = []color.RGBA{palette[1], palette[3]}[ki]
				} else {
					clr = colorAt(ki)
				}
				cs.series = append(cs.series, series{name: name, xys: xys, color: clr, dashed: k.dashed, points: len(xys) <= 12})
			}
		}
		fig, ok, err := render(cs)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			empty = append(empty, spec.title+": nothing to plot.")
			continue
		}
		figs = append(figs, fig)
	}
	return figs, empty, nil
}

func stepsTable(runs []Run) *table {
	multi := len(runs) > 1
	t := &table{Head: []string{"Step", "count", "p50", "p90", "p99", "p99.9", "max", "p99 uncorrected"}}
	for ri, run := range runs {
		steps := run.Result.Latency.Steps
		for _, name := range slices.Sorted(maps.Keys(steps)) {
			s := steps[name]
			first := cell{Text: name}
			if multi {
				first = cell{Text: run.Label + ": " + name, Color: cssColor(colorAt(ri))}
			}
			l := s.Corrected
			row := []cell{first, {Text: fmtInt(l.Count), Class: "num"}}
			for _, v := range []int64{l.P50US, l.P90US, l.P99US, l.P999US, l.MaxUS} {
				row = append(row, latCell(v, l.Count))
			}
			row = append(row, latCell(s.Uncorrected.P99US, s.Uncorrected.Count))
			t.Rows = append(t.Rows, row)
		}
	}
	if len(t.Rows) == 0 {
		return nil
	}
	return t
}

func latCell(us, count int64) cell {
	if count == 0 {
		return cell{Text: "–", Class: "num"}
	}
	return cell{Text: fmtUS(us), Class: "num"}
}

// perRunCounts is a table with one row per key and one count column per
// run; keys sort by their total, largest first, then by name.
func perRunCounts(runs []Run, head string, counts func(r *stats.Result) map[string]int64, label func(key string) string, sub func(r *stats.Result, key string) string) *table {
	totals := map[string]int64{}
	for _, run := range runs {
		for k, n := range counts(run.Result) {
			totals[k] += n
		}
	}
	if len(totals) == 0 {
		return nil
	}
	keys := slices.Collect(maps.Keys(totals))
	sort.Slice(keys, func(i, j int) bool {
		if totals[keys[i]] != totals[keys[j]] {
			return totals[keys[i]] > totals[keys[j]]
		}
		return keys[i] < keys[j]
	})
	t := &table{Head: []string{head}}
	for _, run := range runs {
		t.Head = append(t.Head, run.Label)
	}
	if len(runs) == 1 {
		t.Head[1] = "count"
	}
	for _, k := range keys {
		row := []cell{{Text: label(k)}}
		for _, run := range runs {
			n := counts(run.Result)[k]
			c := cell{Text: fmtInt(n), Class: "num"}
			if sub != nil && n > 0 {
				c.Sub = sub(run.Result, k)
			}
			row = append(row, c)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

func closeCodesTable(runs []Run) *table {
	return perRunCounts(runs, "Close code",
		func(r *stats.Result) map[string]int64 {
			m := map[string]int64{}
			for code, n := range r.CloseCodes {
				m[fmt.Sprintf("%04d", code)] += n
			}
			return m
		},
		func(key string) string {
			var code int
			fmt.Sscanf(key, "%d", &code)
			if name := closeCodeName(code); name != "" {
				return fmt.Sprintf("%d %s", code, name)
			}
			return fmt.Sprint(code)
		}, nil)
}

func errorsTable(runs []Run) *table {
	return perRunCounts(runs, "Error",
		func(r *stats.Result) map[string]int64 { return r.Errors },
		func(key string) string { return key },
		func(r *stats.Result, key string) string {
			n, conn := r.Errors[key], r.Connections.FailedByReason[key]
			switch {
			case conn == n:
				return "connecting"
			case conn > 0:
				return fmt.Sprintf("%s connecting", fmtInt(conn))
			}
			return "established"
		})
}

func configTable(runs []Run) *table {
	t := &table{Head: []string{"Setting"}}
	for _, run := range runs {
		t.Head = append(t.Head, run.Label)
	}
	if len(runs) == 1 {
		t.Head[1] = "value"
	}
	// A row whose v gives "" for every run is left out.
	rows := []struct {
		name string
		v    func(r *stats.Result) string
	}{
		{"target", func(r *stats.Result) string { return r.Target }},
		{"connections", func(r *stats.Result) string { return fmtInt(int64(r.Config.Connections)) }},
		{"connect rate", func(r *stats.Result) string {
			if r.Config.ConnectRate > 0 {
				return fmtRate(r.Config.ConnectRate) + " in total"
			}
			return "as fast as the target accepts"
		}},
		{"messages", func(r *stats.Result) string {
			c := r.Config
			if c.Rate <= 0 {
				return "none scheduled (connections held idle)"
			}
			kind := "text"
			if c.Binary {
				kind = "binary"
			}
			return fmt.Sprintf("%g/s per connection, %d B %s", c.Rate, c.Size, kind)
		}},
		{"duration", func(r *stats.Result) string {
			return fmt.Sprintf("%s configured, %s measured", fmtSeconds(r.Config.DurationS), fmtSeconds(r.DurationS))
		}},
		{"source addresses", func(r *stats.Result) string {
			return orDefault(strings.Join(r.Config.SourceIPs, " "), "chosen by the kernel")
		}},
		{"headers", func(r *stats.Result) string {
			var hs []string
			for _, k := range slices.Sorted(maps.Keys(r.Config.Headers)) {
				hs = append(hs, k+": "+r.Config.Headers[k])
			}
			return orDefault(strings.Join(hs, "; "), "none")
		}},
		{"subprotocols", func(r *stats.Result) string { return orDefault(strings.Join(r.Config.Subprotocols, ", "), "none") }},
		{"timeouts", func(r *stats.Result) string {
			return fmt.Sprintf("handshake %s, reply %s", fmtSeconds(r.Config.HandshakeTimeoutS), fmtSeconds(r.Config.ReplyTimeoutS))
		}},
		{"event loops", func(r *stats.Result) string { return orDefault(pollers(r.Config.Pollers), "one per CPU") }},
		{"generator", func(r *stats.Result) string {
			g := r.Generator
			s := fmt.Sprintf("CPU %.2fs user + %.2fs sys", g.CPUUserS, g.CPUSysS)
			if g.GOMAXPROCS > 0 {
				s += fmt.Sprintf(" (GOMAXPROCS %d)", g.GOMAXPROCS)
			}
			s += fmt.Sprintf(", %.1fµs CPU per message, max RSS %s, send lag p99 %s", g.CPUPerMsgUS, fmtBytes(g.MaxRSSBytes), fmtUS(r.Latency.SendLag.P99US))
			if g.Clamped > 0 {
				s += fmt.Sprintf(", %s samples above 1 h clamped", fmtInt(g.Clamped))
			}
			return s
		}},
		{"merged from", func(r *stats.Result) string {
			var parts []string
			for _, src := range r.Sources {
				p := orDefault(src.Name, src.Target)
				var where []string
				if src.Host != "" {
					where = append(where, src.Host)
				}
				if src.PID > 0 {
					where = append(where, fmt.Sprintf("pid %d", src.PID))
				}
				if src.Segment != "" {
					where = append(where, "segment "+src.Segment)
				}
				if len(where) > 0 {
					p += " (" + strings.Join(where, ", ") + ")"
				}
				parts = append(parts, p)
			}
			return strings.Join(parts, "; ")
		}},
		{"segment", func(r *stats.Result) string { return r.Config.Segment.String() }},
		{"backends told apart by", func(r *stats.Result) string { return r.Config.BackendFrom }},
		{"wsload", func(r *stats.Result) string { return orDefault(r.Version, "unknown version") }},
	}
	for _, rw := range rows {
		row := []cell{{Text: rw.name}}
		var any bool
		for _, run := range runs {
			v := rw.v(run.Result)
			any = any || v != ""
			row = append(row, cell{Text: v})
		}
		if any {
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

func pollers(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

var backendsTmpl = withFigure(template.Must(template.New("backends").Parse(`<div class="two">
{{range .Figures}}{{template "figure" .}}{{end}}
<div><table class="data"><thead><tr><th>Backend</th>{{range .Runs}}<th class="num">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr><td>{{.Name}}</td>{{range .Cells}}<td class="num">{{.Text}}<span class="sub">{{.Sub}}</span></td>{{end}}</tr>
{{- end}}
</tbody></table>
{{- range .Notes}}
<p class="note">{{.}}</p>
{{- end}}
</div>
</div>
`)))

// backendsSection renders the per-backend breakdown (Result.Backends, from
// --backend-from): connections established per backend as bars, one colour
// per run, and a table of each backend's connections, share, peak open,
// failures, messages and p99 RTT, with the spread over backends. It renders
// nothing when no run has backends.
func backendsSection(runs []Run) (template.HTML, error) {
	names := map[string]bool{}
	for _, r := range runs {
		for name := range r.Result.Backends {
			names[name] = true
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	order := slices.Sorted(maps.Keys(names))

	svg, legend, err := backendBars(runs, order, "connections established", func(c stats.BackendConnections) int64 { return c.Established })
	if err != nil {
		return "", fmt.Errorf("report: backends chart: %w", err)
	}
	fig := figure{ID: "backends-connections", Title: "Connections per backend", SVG: svg, Legend: legend,
		Note: "Where the balancer sent the established connections; an even split shows bars of equal length."}

	type bcell struct{ Text, Sub string }
	type brow struct {
		Name  string
		Cells []bcell
	}
	var rows []brow
	for _, name := range order {
		row := brow{Name: name}
		for _, r := range runs {
			b, ok := r.Result.Backends[name]
			if !ok {
				row.Cells = append(row.Cells, bcell{Text: "–"})
				continue
			}
			var total int64
			for _, o := range r.Result.Backends {
				total += o.Connections.Established
			}
			var sub []string
			if total > 0 {
				sub = append(sub, fmt.Sprintf("%.1f%%", 100*float64(b.Connections.Established)/float64(total)))
			}
			sub = append(sub, "peak "+fmtInt(b.Connections.PeakOpen))
			if b.Connections.Failed > 0 {
				sub = append(sub, fmtInt(b.Connections.Failed)+" failed")
			}
			sub = append(sub, fmtInt(b.Messages.Received)+" msgs")
			if b.Messages.TimedOut > 0 {
				sub = append(sub, fmtInt(b.Messages.TimedOut)+" timed out")
			}
			if b.RTT.Count > 0 {
				sub = append(sub, "p99 "+fmtUS(b.RTT.P99US))
			}
			row.Cells = append(row.Cells, bcell{Text: fmtInt(b.Connections.Established), Sub: strings.Join(sub, " · ")})
		}
		rows = append(rows, row)
	}
	var labels, notes []string
	for _, r := range runs {
		labels = append(labels, r.Label)
		if s := r.Result.BackendSpread; s != nil {
			n := fmt.Sprintf("%s: over %d backends, %s", r.Label, s.Backends, describeSpread(s))
			if s.PeakOpen != nil {
				n += "; " + describeSpread(s.PeakOpen)
			}
			if from := r.Result.Config.BackendFrom; from != "" {
				n += " (backend from " + from + ")"
			}
			notes = append(notes, n+".")
		}
	}
	var b strings.Builder
	err = backendsTmpl.Execute(&b, map[string]any{"Figures": []figure{fig}, "Runs": labels, "Rows": rows, "Notes": notes})
	if err != nil {
		return "", fmt.Errorf("report: backends: %w", err)
	}
	return template.HTML(b.String()), nil
}

// describeSpread says how even a Spread is: "established: busiest/least
// busy 1.03× (34/33), coefficient of variation 0.014".
func describeSpread(s *stats.Spread) string {
	by := strings.ReplaceAll(s.By, "_", " ")
	if s.MaxMinRatio == nil {
		return fmt.Sprintf("%s: a backend got none (max %s), coefficient of variation %.3f", by, fmtInt(s.Max), s.CV)
	}
	return fmt.Sprintf("%s: busiest/least busy %.2f× (%s/%s), coefficient of variation %.3f", by, *s.MaxMinRatio, fmtInt(s.Max), fmtInt(s.Min), s.CV)
}

// backendBars draws one value per backend as horizontal bars, one colour per
// run, first backend on top: names of any length stay readable, and the
// chart grows with the number of backends. order lists the backends.
func backendBars(runs []Run, order []string, xLabel string, value func(stats.BackendConnections) int64) (template.HTML, []legendEntry, error) {
	p := newPlot()
	p.X.Label.Text = xLabel
	const barW = 12
	var legend []legendEntry
	for ri, r := range runs {
		vals := make(plotter.Values, len(order))
		for i, name := range order {
			vals[len(order)-1-i] = float64(value(r.Result.Backends[name].Connections))
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(barW))
		if err != nil {
			return "", nil, err
		}
		bars.Horizontal = true
		bars.Color = colorAt(ri)
		bars.LineStyle.Width = 0
		// Runs stack top to bottom in run order within each backend's band.
		bars.Offset = vg.Points(barW * (float64(len(runs)-1)/2 - float64(ri)))
		p.Add(bars)
		legend = append(legend, legendEntry{Name: r.Label, Color: cssColor(colorAt(ri)), Marker: "■"})
	}
	reversed := slices.Clone(order)
	slices.Reverse(reversed)
	p.NominalY(reversed...)
	p.X.Min = 0
	if p.X.Max <= 0 {
		p.X.Max = 1
	}
	p.X.Max *= 1.05
	p.X.Tick.Marker = niceTicker{}
	h := vg.Points(float64(len(order)*len(runs)*barW)*1.5) + 0.9*vg.Inch
	svg, err := toSVG(p, chartW, max(h, 2*vg.Inch))
	return svg, legend, err
}
