package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"maps"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/wsload/wsload/stats"
)

var levelColor = color.RGBA{0x88, 0x88, 0x88, 0xff}

var recoveryTmpl = withFigure(template.Must(template.New("recovery").Parse(`<div class="recovery">
{{- range .Findings}}
<p class="finding">{{.}}</p>
{{- end}}
<div class="two">
{{range .Figures}}{{template "figure" .}}{{end}}
</div>
<table class="data"><thead><tr><th></th>{{range .Runs}}<th class="num">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr><td>{{.Name}}</td>{{range .Cells}}<td class="num{{if .Class}} {{.Class}}{{end}}">{{.Text}}<span class="sub">{{.Sub}}</span></td>{{end}}</tr>
{{- end}}
</tbody></table>
<p class="note">Recovery is read from the timeline at one-second resolution: dropped = the start of the first second that ended below {{.Pct}} of the target open count after reaching it, back = the end of the first second at or above it again. Reconnects count the scenario's reconnect steps; drops are the connections closed with a code other than 1000. Open at end is each backend's open connections in the last second before wsload closed its own.</p>
</div>
`)))

// recoverySection renders "Reconnects and recovery" for runs that dropped
// connections (stats.Result.Recovery): the open connections over time with
// the drop and the recovery marked, each backend's open connections at the
// end as bars, a table per run, and, comparing runs, which recovered faster
// and which ended with its connections spread more evenly, in words. It
// renders nothing when no run has a Recovery.
func recoverySection(runs []Run) (template.HTML, error) {
	if !slices.ContainsFunc(runs, func(r Run) bool { return r.Result.Recovery != nil }) {
		return "", nil
	}
	var figs []figure
	fig, err := recoveryTimeline(runs)
	if err != nil {
		return "", err
	}
	figs = append(figs, fig)
	if fig, ok, err := openAtEndBars(runs); err != nil {
		return "", err
	} else if ok {
		figs = append(figs, fig)
	}

	type rrow struct {
		Name  string
		Cells []rcell
	}
	row := func(name string, f func(r *stats.Result, rec *stats.Recovery) rcell) rrow {
		rw := rrow{Name: name}
		for _, run := range runs {
			if rec := run.Result.Recovery; rec != nil {
				rw.Cells = append(rw.Cells, f(run.Result, rec))
			} else {
				rw.Cells = append(rw.Cells, rcell{Text: "–", Sub: "nothing dropped"})
			}
		}
		return rw
	}
	secs := func(v *float64, none string) rcell {
		if v == nil {
			return rcell{Text: none}
		}
		return rcell{Text: fmt.Sprintf("%.0f s", *v)}
	}
	rows := []rrow{
		row("Reconnects", func(_ *stats.Result, rec *stats.Recovery) rcell {
			return rcell{Text: fmtInt(rec.Reconnects)}
		}),
		row("Dropped (by close code)", func(_ *stats.Result, rec *stats.Recovery) rcell {
			var n int64
			var parts []string
			for _, code := range slices.Sorted(maps.Keys(rec.DropsByCode)) {
				n += rec.DropsByCode[code]
				parts = append(parts, fmt.Sprintf("%d %s: %s", code, strings.Trim(closeCodeName(code), "()"), fmtInt(rec.DropsByCode[code])))
			}
			return rcell{Text: fmtInt(n), Sub: strings.Join(parts, " · ")}
		}),
		row("Target open", func(_ *stats.Result, rec *stats.Recovery) rcell {
			return rcell{Text: fmtInt(rec.Target), Sub: "back = " + fmtInt(rec.Level) + " open"}
		}),
		row("Fell below at", func(_ *stats.Result, rec *stats.Recovery) rcell { return secs(rec.DroppedAtS, "never") }),
		row("Lowest open", func(_ *stats.Result, rec *stats.Recovery) rcell {
			if rec.DroppedAtS == nil {
				return rcell{Text: "–"}
			}
			return rcell{Text: fmtInt(rec.MinOpen)}
		}),
		row("Back at", func(_ *stats.Result, rec *stats.Recovery) rcell {
			if rec.DroppedAtS == nil {
				return rcell{Text: "–"}
			}
			return secs(rec.RecoveredAtS, "not by the end")
		}),
		row("Time to recover", func(_ *stats.Result, rec *stats.Recovery) rcell {
			if rec.DroppedAtS == nil {
				return rcell{Text: "–"}
			}
			c := secs(rec.RecoverS, "did not")
			if rec.RecoverS == nil {
				c.Class = "worse"
			}
			return c
		}),
		row("Open at end: busiest/least busy", func(r *stats.Result, _ *stats.Recovery) rcell {
			s := openAtEndSpread(r)
			if s == nil {
				return rcell{Text: "–", Sub: "no per-backend data (--backend-from)"}
			}
			ratio := "∞"
			if s.MaxMinRatio != nil {
				ratio = fmt.Sprintf("%.2f×", *s.MaxMinRatio)
			}
			return rcell{Text: ratio, Sub: fmt.Sprintf("%s/%s over %d backends, cv %.3f", fmtInt(s.Max), fmtInt(s.Min), s.Backends, s.CV)}
		}),
	}
	if len(runs) > 1 {
		markBest(rows[6].Cells, runs, func(r *stats.Result) (float64, bool) {
			if rec := r.Recovery; rec != nil && rec.RecoverS != nil {
				return *rec.RecoverS, true
			}
			return 0, false
		})
		markBest(rows[7].Cells, runs, func(r *stats.Result) (float64, bool) {
			if s := openAtEndSpread(r); s != nil {
				return s.CV, true
			}
			return 0, false
		})
	}
	var labels []string
	for _, r := range runs {
		labels = append(labels, r.Label)
	}
	var b bytes.Buffer
	err = recoveryTmpl.Execute(&b, map[string]any{
		"Findings": recoveryFindings(runs), "Figures": figs, "Runs": labels, "Rows": rows,
		"Pct": fmt.Sprintf("%.0f%%", 100*stats.RecoveredFraction),
	})
	if err != nil {
		return "", fmt.Errorf("report: recovery: %w", err)
	}
	return template.HTML(b.String()), nil
}

// rcell is a cell of the recovery table.
type rcell struct{ Text, Sub, Class string }

// markBest classes the cell of the run with the lowest value "better" and
// those with a higher one "worse", when at least two runs have a value.
func markBest(cells []rcell, runs []Run, value func(r *stats.Result) (float64, bool)) {
	best, n := 0.0, 0
	for _, r := range runs {
		if v, ok := value(r.Result); ok {
			if n == 0 || v < best {
				best = v
			}
			n++
		}
	}
	if n < 2 {
		return
	}
	for i, r := range runs {
		v, ok := value(r.Result)
		if !ok {
			continue
		}
		if v == best {
			cells[i].Class = "better"
		} else {
			cells[i].Class = "worse"
		}
	}
}

// openAtEndSpread is r's spread of open connections at the end, nil when
// the run did not tell backends apart (or predates open_at_end).
func openAtEndSpread(r *stats.Result) *stats.Spread {
	if r.BackendSpread == nil {
		return nil
	}
	return r.BackendSpread.OpenAtEnd
}

// recoveryTimeline draws each run's open connections over time with its
// target level, the second it fell below it and the second it was back.
func recoveryTimeline(runs []Run) (figure, error) {
	multi := len(runs) > 1
	cs := chartSpec{id: "recovery-open", title: "Open connections: drop and recovery",
		note:   "Open connections at the end of each second. Dashed: where the open count fell below the level; dotted: where it was back.",
		xLabel: "time since start (s)", yLabel: "open connections"}
	var yMax float64
	for _, r := range runs {
		for _, p := range r.Result.Timeline {
			yMax = max(yMax, float64(p.Open))
		}
	}
	yMax = max(yMax, 1)
	var legend []legendEntry
	levels := map[int64]bool{}
	for ri, r := range runs {
		var xys plotter.XYs
		for _, p := range r.Result.Timeline {
			xys = append(xys, plotter.XY{X: p.T, Y: float64(p.Open)})
		}
		name := "open"
		if multi {
			name = r.Label
		}
		cs.series = append(cs.series, series{name: name, xys: xys, color: colorAt(ri), points: len(xys) <= 12})
		rec := r.Result.Recovery
		if rec == nil {
			continue
		}
		if rec.Level > 0 && !levels[rec.Level] && r.Result.Timeline != nil {
			levels[rec.Level] = true
			last := r.Result.Timeline[len(r.Result.Timeline)-1].T
			m, err := markLine(plotter.XYs{{X: 0, Y: float64(rec.Level)}, {X: last, Y: float64(rec.Level)}}, levelColor, []vg.Length{vg.Points(1), vg.Points(2)},
				fmt.Sprintf("%.0f%% of %s", 100*stats.RecoveredFraction, fmtInt(rec.Target)), draw.YBottom)
			if err != nil {
				return figure{}, err
			}
			cs.marks = append(cs.marks, m...)
		}
		prefix := ""
		if multi {
			prefix = r.Label + " "
		}
		// Runs' labels stack downwards so they do not overprint.
		if at := rec.DroppedAtS; at != nil {
			y := yMax * (1 - 0.07*float64(ri))
			m, err := markLine(plotter.XYs{{X: *at, Y: 0}, {X: *at, Y: y}}, colorAt(ri), []vg.Length{vg.Points(5), vg.Points(3)}, prefix+"drop", draw.YTop)
			if err != nil {
				return figure{}, err
			}
			cs.marks = append(cs.marks, m...)
		}
		if back := rec.RecoveredAtS; back != nil {
			label := fmt.Sprintf("%sback (%.0f s)", prefix, *rec.RecoverS)
			y := yMax * (0.8 - 0.07*float64(ri))
			m, err := markLine(plotter.XYs{{X: *back, Y: 0}, {X: *back, Y: y}}, colorAt(ri), []vg.Length{vg.Points(1.5), vg.Points(2)}, label, draw.YTop)
			if err != nil {
				return figure{}, err
			}
			cs.marks = append(cs.marks, m...)
		}
	}
	fig, _, err := render(cs)
	if err != nil {
		return figure{}, err
	}
	fig.Legend = append(fig.Legend, legend...)
	if len(levels) > 0 {
		fig.Legend = append(fig.Legend, legendEntry{Name: fmt.Sprintf("%.0f%% of the target (recovered)", 100*stats.RecoveredFraction), Color: cssColor(levelColor), Dashed: true})
	}
	return fig, nil
}

// markLine is a thin line through xys with a small label at its last point.
func markLine(xys plotter.XYs, c color.RGBA, dashes []vg.Length, label string, yAlign draw.YAlignment) ([]plot.Plotter, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, fmt.Errorf("report: recovery chart: %w", err)
	}
	l.Color, l.Width, l.Dashes = c, vg.Points(1), dashes
	end := xys[len(xys)-1]
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{end}, Labels: []string{label}})
	if err != nil {
		return nil, fmt.Errorf("report: recovery chart: %w", err)
	}
	lb.TextStyle[0] = text.Style{Color: c, Font: font.From(chartFont, 9), XAlign: draw.XLeft, YAlign: yAlign, Handler: plot.DefaultTextHandler}
	lb.Offset = vg.Point{X: vg.Points(3)}
	return []plot.Plotter{l, lb}, nil
}

// openAtEndBars draws each backend's open connections at the end of the
// run as horizontal bars, one colour per run; ok is false when no run told
// backends apart.
func openAtEndBars(runs []Run) (fig figure, ok bool, err error) {
	names := map[string]bool{}
	for _, r := range runs {
		for name := range r.Result.Backends {
			if name != stats.UnknownBackend && name != stats.OtherBackends {
				names[name] = true
			}
		}
	}
	if len(names) == 0 {
		return figure{}, false, nil
	}
	order := slices.Sorted(maps.Keys(names))
	svg, legend, err := backendBars(runs, order, "connections open at the end", func(c stats.BackendConnections) int64 { return c.OpenAtEnd })
	if err != nil {
		return figure{}, false, fmt.Errorf("report: open-at-end chart: %w", err)
	}
	return figure{ID: "recovery-open-at-end", Title: "Open connections per backend at the end", SVG: svg, Legend: legend,
		Note: "Where the long-lived connections were when the run ended, reconnects included: equal bars mean the balancer evened them out again after the drop."}, true, nil
}

// recoveryFindings says in words what the section shows: per run, what
// dropped and how fast it came back, and where its connections ended; when
// comparing, which run recovered faster and which ended more evenly spread,
// and why that matters.
func recoveryFindings(runs []Run) []string {
	var out []string
	for _, r := range runs {
		rec := r.Result.Recovery
		if rec == nil {
			continue
		}
		var drops int64
		for _, n := range rec.DropsByCode {
			drops += n
		}
		s := fmt.Sprintf("%s: %s connections dropped, %s reconnects", r.Label, fmtInt(drops), fmtInt(rec.Reconnects))
		switch {
		case rec.DroppedAtS == nil:
			s += "; the open count stayed at its level"
		case rec.RecoverS == nil:
			s += fmt.Sprintf("; open fell to %s at %.0f s and was not back at %s by the end", fmtInt(rec.MinOpen), *rec.DroppedAtS, fmtInt(rec.Level))
		default:
			s += fmt.Sprintf("; open fell to %s at %.0f s and was back at %s after %.0f s", fmtInt(rec.MinOpen), *rec.DroppedAtS, fmtInt(rec.Level), *rec.RecoverS)
		}
		if lo, hi, ok := endExtremes(r.Result); ok {
			s += fmt.Sprintf(". At the end, %s held the most open connections (%s) and %s the fewest (%s)",
				hi, fmtInt(r.Result.Backends[hi].Connections.OpenAtEnd), lo, fmtInt(r.Result.Backends[lo].Connections.OpenAtEnd))
		}
		out = append(out, s+".")
	}
	if len(runs) < 2 {
		return out
	}
	// Which is better: the more even spread at the end matters most for
	// long-lived connections (it lasts as long as they do); the recovery
	// time says how long clients were away.
	var even, uneven *Run
	for i := range runs {
		s := openAtEndSpread(runs[i].Result)
		if s == nil || runs[i].Result.Recovery == nil {
			continue
		}
		if even == nil || s.CV < openAtEndSpread(even.Result).CV {
			even = &runs[i]
		}
		if uneven == nil || s.CV > openAtEndSpread(uneven.Result).CV {
			uneven = &runs[i]
		}
	}
	if even != nil && uneven != nil && even != uneven {
		se, su := openAtEndSpread(even.Result), openAtEndSpread(uneven.Result)
		out = append(out, fmt.Sprintf("Better spread after the drop: %s (coefficient of variation %.3f against %.3f for %s). Where the reconnecting clients land is the balancer's choice: "+
			"one that takes turns (roundrobin) gives the restarted, empty backend only its share of them, so it stays emptier than the others; "+
			"one that counts connections (leastconn) sends them to the backend with the fewest — the restarted one — until the counts are even again. "+
			"With long-lived connections the imbalance lasts as long as they do: %s's busiest backend holds %s connections where an even spread gives %s.",
			even.Label, se.CV, su.CV, uneven.Label, uneven.Label, fmtInt(su.Max), fmtInt(evenShare(uneven.Result))))
	}
	fast := -1
	for i, r := range runs {
		if rec := r.Result.Recovery; rec != nil && rec.RecoverS != nil {
			if fast < 0 || *rec.RecoverS < *runs[fast].Result.Recovery.RecoverS {
				fast = i
			}
		}
	}
	if fast >= 0 {
		var others []string
		for i, r := range runs {
			if i == fast {
				continue
			}
			if rec := r.Result.Recovery; rec != nil && rec.RecoverS != nil {
				others = append(others, fmt.Sprintf("%s %.0f s", r.Label, *rec.RecoverS))
			} else if rec != nil && rec.DroppedAtS != nil {
				others = append(others, r.Label+" not back by the end")
			}
		}
		if len(others) > 0 {
			out = append(out, fmt.Sprintf("Faster recovery: %s, back in %.0f s (%s); the reconnecting clients' backoff sets a floor for every balancer.",
				runs[fast].Label, *runs[fast].Result.Recovery.RecoverS, strings.Join(others, ", ")))
		}
	}
	return out
}

// endExtremes names the named backends with the fewest and the most open
// connections at the end.
func endExtremes(r *stats.Result) (lo, hi string, ok bool) {
	if openAtEndSpread(r) == nil {
		return "", "", false
	}
	for _, name := range slices.Sorted(maps.Keys(r.Backends)) {
		if name == stats.UnknownBackend || name == stats.OtherBackends {
			continue
		}
		v := r.Backends[name].Connections.OpenAtEnd
		if !ok || v < r.Backends[lo].Connections.OpenAtEnd {
			lo = name
		}
		if !ok || v > r.Backends[hi].Connections.OpenAtEnd {
			hi = name
		}
		ok = true
	}
	return lo, hi, ok
}

// evenShare is the open connections at the end per named backend if they
// were spread evenly.
func evenShare(r *stats.Result) int64 {
	var sum, n int64
	for name, b := range r.Backends {
		if name != stats.UnknownBackend && name != stats.OtherBackends {
			sum += b.Connections.OpenAtEnd
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return (sum + n/2) / n
}
