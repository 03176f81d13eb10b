package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Charts are drawn by gonum/plot into SVG and inlined into the page. Titles
// and legends are HTML around the SVG (figure and figcaption), so they wrap,
// stay selectable and are escaped by html/template; the SVG holds the axes
// and the data only.

// palette is the colour of each run (compare view) or each series (one run):
// Tableau 10's first eight, distinguishable by most colour-blind readers and
// in greyscale print thanks to the dashes that tell series kinds apart.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, // blue
	{0xd6, 0x27, 0x28, 0xff}, // red
	{0x2c, 0xa0, 0x2c, 0xff}, // green
	{0xff, 0x7f, 0x0e, 0xff}, // orange
	{0x94, 0x67, 0xbd, 0xff}, // purple
	{0x8c, 0x56, 0x4b, 0xff}, // brown
	{0xe3, 0x77, 0xc2, 0xff}, // pink
	{0x17, 0xbe, 0xcf, 0xff}, // cyan
}

func colorAt(i int) color.RGBA { return palette[i%len(palette)] }

func cssColor(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

var (
	inkColor  = color.RGBA{0x33, 0x33, 0x33, 0xff}
	gridColor = color.RGBA{0xe3, 0xe6, 0xea, 0xff}
	axisColor = color.RGBA{0x99, 0x99, 0x99, 0xff}
)

// Chart sizes in points; the page scales the SVG to its column (viewBox).
const (
	chartW = 7 * vg.Inch
	chartH = 3.2 * vg.Inch
)

// The plots use Liberation Sans, whose metrics gonum/plot lays text out
// with; the page's CSS falls back to Arial (metric-compatible) and then any
// sans-serif, so nothing is fetched and labels keep their place.
var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// series is one line of a chart.
type series struct {
	name   string
	xys    plotter.XYs
	color  color.RGBA
	dashed bool
	points bool // draw a dot at each point (sparse data)
}

// legendEntry is a figcaption swatch: colour, dash or marker, and name.
type legendEntry struct {
	Name   string
	Color  string // CSS colour
	Dashed bool
	Marker string // a glyph shown instead of a line, e.g. "×"
}

// figure is a rendered chart: its title, the inline SVG and the legend.
type figure struct {
	ID     string // stable id, used by tests and anchors
	Title  string
	Note   string // a sentence under the title: what is plotted, units
	SVG    template.HTML
	Legend []legendEntry
}

// xKind selects the horizontal axis.
type xKind int

const (
	xLinear     xKind = iota
	xPercentile       // 1/(1-q) on a log scale, labelled in percent
)

type chartSpec struct {
	id, title, note string
	xLabel, yLabel  string
	x               xKind
	series          []series
	// marks are extra plotters drawn over the series (knee lines, labels).
	marks []plot.Plotter
}

func newPlot() *plot.Plot {
	p := plot.New()
	p.BackgroundColor = color.White
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = font.From(chartFont, 11)
		ax.Label.TextStyle.Color = inkColor
		ax.Tick.Label.Font = font.From(chartFont, 10)
		ax.Tick.Label.Color = inkColor
		ax.LineStyle.Color = axisColor
		ax.Tick.LineStyle.Color = axisColor
		ax.Tick.Length = vg.Points(4)
		ax.Padding = vg.Points(2)
	}
	return p
}

// render draws spec into an SVG figure. A spec whose series hold no points
// gives ok=false: the page then says there is nothing to plot instead of
// drawing empty axes.
func render(spec chartSpec) (fig figure, ok bool, err error) {
	p := newPlot()
	p.X.Label.Text = spec.xLabel
	p.Y.Label.Text = spec.yLabel
	var n int
	for _, s := range spec.series {
		n += len(s.xys)
	}
	if n == 0 {
		return figure{}, false, nil
	}
	grid := plotter.NewGrid()
	grid.Horizontal.Color = gridColor
	grid.Vertical.Color = gridColor
	grid.Horizontal.Width = vg.Points(0.5)
	grid.Vertical.Width = vg.Points(0.5)
	p.Add(grid)

	for _, s := range spec.series {
		if len(s.xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xys)
		if err != nil {
			return figure{}, false, fmt.Errorf("report: chart %s, series %s: %w", spec.id, s.name, err)
		}
		l.Color = s.color
		l.Width = vg.Points(1.5)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(l)
		if s.points {
			sc, err := plotter.NewScatter(s.xys)
			if err != nil {
				return figure{}, false, fmt.Errorf("report: chart %s, series %s: %w", spec.id, s.name, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: s.color, Radius: vg.Points(2.2), Shape: draw.CircleGlyph{}}
			p.Add(sc)
		}
		fig.Legend = append(fig.Legend, legendEntry{Name: s.name, Color: cssColor(s.color), Dashed: s.dashed})
	}
	p.Add(spec.marks...)

	// Latencies, rates and counts start at zero: a chart whose y axis starts
	// at the minimum exaggerates small changes.
	p.Y.Min = 0
	if p.Y.Max <= 0 {
		p.Y.Max = 1
	}
	p.Y.Max *= 1.05
	p.Y.Tick.Marker = niceTicker{}
	switch spec.x {
	case xPercentile:
		p.X.Scale = plot.LogScale{}
		p.X.Min = 1
		decades := int(math.Ceil(math.Log10(math.Max(p.X.Max, 100)) - 1e-9))
		decades = min(max(decades, 2), 7)
		p.X.Max = math.Pow10(decades)
		p.X.Tick.Marker = percentileTicks(decades)
	default:
		if p.X.Min > 0 {
			p.X.Min = 0
		}
		if p.X.Max <= p.X.Min {
			p.X.Max = p.X.Min + 1
		}
		p.X.Tick.Marker = niceTicker{}
	}

	fig.ID, fig.Title, fig.Note = spec.id, spec.title, spec.note
	fig.SVG, err = toSVG(p, chartW, chartH)
	if err != nil {
		return figure{}, false, fmt.Errorf("report: chart %s: %w", spec.id, err)
	}
	return fig, true, nil
}

// xmlProlog matches what vgsvg writes before the <svg> element, which is
// not allowed inside HTML.
var xmlProlog = regexp.MustCompile(`^(?s)\s*<\?xml[^>]*\?>\s*(<!--.*?-->\s*)?`)

func toSVG(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", err
	}
	out := xmlProlog.ReplaceAllString(b.String(), "")
	if !strings.HasPrefix(out, "<svg") {
		return "", fmt.Errorf("unexpected SVG from vgsvg: %.40q", out)
	}
	out = strings.Replace(out, "<svg ", `<svg role="img" preserveAspectRatio="xMidYMid meet" `, 1)
	// Safe: the SVG is produced by vgsvg, which XML-escapes every text it
	// draws (tick labels and axis labels are ours, never from a Result).
	return template.HTML(out), nil
}

// percentileTicks labels 10^0 .. 10^decades on a 1/(1-q) axis as 0%, 90%,
// 99%, 99.9%, … the way HdrHistogram's plotter does.
func percentileTicks(decades int) plot.ConstantTicks {
	var ticks plot.ConstantTicks
	for d := 0; d <= decades; d++ {
		v := math.Pow10(d)
		ticks = append(ticks, plot.Tick{Value: v, Label: percentileLabel(d)})
		if d < decades {
			for m := 2; m < 10; m++ {
				ticks = append(ticks, plot.Tick{Value: v * float64(m)})
			}
		}
	}
	return ticks
}

// percentileLabel names the percentile 1 - 10^-d: 0%, 90%, 99%, 99.9%, …
func percentileLabel(d int) string {
	switch d {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", d-2) + "%"
}

// percentileXYs turns a histogram (µs) into the points of a percentile
// distribution plot: x = 1/(1-q), y = latency in ms. The 100% point, at
// infinity on this axis, is left out; the tables give the maximum.
func percentileXYs(h *hdrhistogram.Histogram) plotter.XYs {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	var xys plotter.XYs
	for _, b := range h.CumulativeDistributionWithTicks(hgrmTicksPerHalfDistance) {
		if b.Quantile >= 100 {
			continue
		}
		x := 1 / (1 - b.Quantile/100)
		xys = append(xys, plotter.XY{X: x, Y: float64(b.ValueAt) / 1000})
	}
	return xys
}

// niceTicker places about six major ticks at 1, 2 or 5 × 10^k and labels
// them compactly (12k, 1.5M), so axes of message rates stay readable.
type niceTicker struct{}

func (niceTicker) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		hi = lo + 1
	}
	step := niceStep((hi - lo) / 5)
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: compactNumber(v, step)})
	}
	return ticks
}

func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	mag := math.Pow10(int(math.Floor(math.Log10(raw))))
	switch f := raw / mag; {
	case f <= 1:
		return mag
	case f <= 2:
		return 2 * mag
	case f <= 5:
		return 5 * mag
	}
	return 10 * mag
}

// compactNumber formats a tick value with no more decimals than step needs,
// using k and M above ten thousand.
func compactNumber(v, step float64) string {
	av := math.Abs(v)
	switch {
	case av >= 1e6 && step >= 1e5:
		return strconv.FormatFloat(v/1e6, 'f', decimalsFor(step/1e6), 64) + "M"
	case av >= 1e4 && step >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', decimalsFor(step/1e3), 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', decimalsFor(step), 64)
}

func decimalsFor(step float64) int {
	if step >= 1 {
		return 0
	}
	return min(int(math.Ceil(-math.Log10(step)-1e-9)), 6)
}
