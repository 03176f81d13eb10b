package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// CapacityPoint is one load level of a capacity search: the level held,
// what the target did at it, and whether that met the SLO.
type CapacityPoint struct {
	Level     float64 // connections, or messages per second: Capacity.LevelName says which
	P99US     int64   // corrected RTT p99 at this level, µs
	ErrorsPct float64 // failed connections and errors, in percent of attempts
	OK        bool    // the level met the SLO
}

// Capacity is the outcome of a capacity search, drawn by CapacityCurve.
type Capacity struct {
	LevelName string // what Level counts, for the axis: "connections", "messages/s"
	SLO       string // the criterion in words, e.g. "p99 ≤ 50ms, errors ≤ 0.1%"
	Points    []CapacityPoint
}

// Knee returns the capacity: the highest level of the unbroken run of OK
// levels from the lowest up, in level order. A level that failed ends the
// run even if a higher one passed again (a noisy pass above a failure is
// not capacity). ok is false when there are no points or the lowest level
// already failed.
func Knee(points []CapacityPoint) (knee CapacityPoint, ok bool) {
	for _, p := range sortedByLevel(points) {
		if !p.OK {
			break
		}
		knee, ok = p, true
	}
	return knee, ok
}

func sortedByLevel(points []CapacityPoint) []CapacityPoint {
	s := slices.Clone(points)
	slices.SortStableFunc(s, func(a, b CapacityPoint) int {
		switch {
		case a.Level < b.Level:
			return -1
		case a.Level > b.Level:
			return 1
		}
		return 0
	})
	return s
}

var (
	okColor   = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	failColor = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	kneeColor = color.RGBA{0x55, 0x55, 0x55, 0xff}
)

var capacityTmpl = withFigure(template.Must(template.New("capacity").Parse(`<div class="capacity">
{{- if .HasKnee}}
<p class="knee">Capacity (knee): <strong>{{.Knee}}</strong> {{.LevelName}}: the highest level of the unbroken run of levels that met the SLO{{if .SLO}} ({{.SLO}}){{end}}.</p>
{{- else}}
<p class="knee bad">No capacity found: the lowest level tried already missed the SLO{{if .SLO}} ({{.SLO}}){{end}}.</p>
{{- end}}
<div class="charts">
{{- range .Figures}}{{template "figure" .}}{{end}}
</div>
<table class="data compact"><thead><tr><th class="num">{{.LevelName}}</th><th class="num">p99 RTT</th><th class="num">errors</th><th>SLO</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr{{if .Knee}} class="knee-row"{{end}}><td class="num">{{.Level}}</td><td class="num">{{.P99}}</td><td class="num">{{.Errors}}</td><td>{{if .OK}}<span class="tag ok">met</span>{{else}}<span class="tag bad">missed</span>{{end}}{{if .Knee}} <span class="tag">knee</span>{{end}}</td></tr>
{{- end}}
</tbody></table>
</div>
`)))

// CapacityCurve renders a capacity search as an HTML fragment: the corrected
// p99 RTT and the error rate against the load level, levels that missed the
// SLO marked in red, the knee (see Knee) marked with a dashed line, and a
// table of the levels. It renders nothing for no points.
func CapacityCurve(c Capacity) (template.HTML, error) {
	if len(c.Points) == 0 {
		return "", nil
	}
	pts := sortedByLevel(c.Points)
	knee, hasKnee := Knee(pts)
	levelName := c.LevelName
	if levelName == "" {
		levelName = "level"
	}

	var p99, errs, p99Fail, errsFail plotter.XYs
	for _, p := range pts {
		a := plotter.XY{X: p.Level, Y: float64(p.P99US) / 1000}
		b := plotter.XY{X: p.Level, Y: p.ErrorsPct}
		p99, errs = append(p99, a), append(errs, b)
		if !p.OK {
			p99Fail, errsFail = append(p99Fail, a), append(errsFail, b)
		}
	}

	marks := func(fail plotter.XYs, yMax float64) ([]plot.Plotter, error) {
		var m []plot.Plotter
		if len(fail) > 0 {
			sc, err := plotter.NewScatter(fail)
			if err != nil {
				return nil, err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: failColor, Radius: vg.Points(3.5), Shape: draw.CircleGlyph{}}
			m = append(m, sc)
		}
		if hasKnee {
			l, err := plotter.NewLine(plotter.XYs{{X: knee.Level, Y: 0}, {X: knee.Level, Y: yMax}})
			if err != nil {
				return nil, err
			}
			l.Color = kneeColor
			l.Width = vg.Points(1)
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			lb, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: knee.Level, Y: yMax}}, Labels: []string{"knee " + fmtCount(knee.Level)}})
			if err != nil {
				return nil, err
			}
			lb.TextStyle[0] = text.Style{Color: kneeColor, Font: font.From(chartFont, 9), XAlign: draw.XLeft, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
			lb.Offset = vg.Point{X: vg.Points(3)}
			m = append(m, l, lb)
		}
		return m, nil
	}
	maxY := func(xys plotter.XYs) float64 {
		var m float64
		for _, p := range xys {
			m = max(m, p.Y)
		}
		if m == 0 {
			m = 1
		}
		return m
	}
	var figs []figure
	for _, spec := range []struct {
		id, title, yLabel string
		xys, fail         plotter.XYs
		name              string
	}{
		{"capacity-p99", "p99 round-trip time by load level", "p99 RTT (ms)", p99, p99Fail, "p99 RTT (corrected)"},
		{"capacity-errors", "Errors by load level", "errors (%)", errs, errsFail, "errors (% of attempts)"},
	} {
		m, err := marks(spec.fail, maxY(spec.xys))
		if err != nil {
			return "", fmt.Errorf("report: capacity chart: %w", err)
		}
		fig, _, err := render(chartSpec{
			id: spec.id, title: spec.title,
			xLabel: levelName, yLabel: spec.yLabel,
			series: []series{{name: spec.name, xys: spec.xys, color: palette[0], points: true}},
			marks:  m,
		})
		if err != nil {
			return "", err
		}
		if len(spec.fail) > 0 {
			fig.Legend = append(fig.Legend, legendEntry{Name: "missed the SLO", Color: cssColor(failColor), Marker: "●"})
		}
		if hasKnee {
			fig.Legend = append(fig.Legend, legendEntry{Name: "knee (capacity)", Color: cssColor(kneeColor), Dashed: true})
		}
		figs = append(figs, fig)
	}

	type row struct {
		Level, P99, Errors string
		OK, Knee           bool
	}
	var rows []row
	for _, p := range pts {
		rows = append(rows, row{
			Level:  fmtCount(p.Level),
			P99:    fmtUS(p.P99US),
			Errors: fmt.Sprintf("%.2f%%", p.ErrorsPct),
			OK:     p.OK,
			Knee:   hasKnee && p == knee,
		})
	}
	var b bytes.Buffer
	err := capacityTmpl.Execute(&b, map[string]any{
		"HasKnee": hasKnee, "Knee": fmtCount(knee.Level), "LevelName": levelName, "SLO": c.SLO,
		"Figures": figs, "Rows": rows,
	})
	if err != nil {
		return "", fmt.Errorf("report: capacity: %w", err)
	}
	return template.HTML(b.String()), nil
}
