package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/stats"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("writing golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (go test ./report -run %s -update rewrites it); got:\n%s", name, t.Name(), got)
	}
}

// failedRun is a run where nothing was established: no latency samples, an
// almost empty timeline.
func failedRun(t testing.TB) Run {
	agg := stats.NewAggregate(t0)
	iv := stats.NewInterval(t0, t0.Add(time.Second))
	iv.Attempted, iv.Failed = 5, 5
	iv.ConnFailures = map[string]int64{"refused": 4, "dns": 1}
	iv.Errors = map[string]int64{"refused": 4, "dns": 1}
	agg.Add(iv)
	return Run{Label: "down", Result: agg.Result(stats.Header{Version: "0.1.0-test", Target: "ws://127.0.0.1:1/", Config: stats.Config{Connections: 5, ConnectRate: 100}})}
}

type pageCase struct {
	name    string
	runs    func(t testing.TB) []Run
	opt     Options
	figures []string // ids of the charts the page must draw
}

var pageCases = []pageCase{
	{"single.html", func(t testing.TB) []Run { return []Run{balancedRun(t)} }, Options{Capacity: &sampleCapacity}, []string{
		"latency-rtt", "latency-handshake", "latency-send-lag",
		"timeline-open", "timeline-rates", "timeline-p99", "timeline-errors",
		"capacity-p99", "capacity-errors", "backends-connections",
	}},
	{"compare.html", func(t testing.TB) []Run { return []Run{healthyRun(t), degradedRun(t)} }, Options{}, []string{
		"latency-rtt", "latency-handshake", "latency-send-lag",
		"timeline-open", "timeline-rates", "timeline-p99", "timeline-errors",
	}},
	{"failed.html", func(t testing.TB) []Run { return []Run{failedRun(t)} }, Options{Title: "Target down"}, []string{
		"timeline-open", "timeline-rates", "timeline-errors",
	}},
	{"recovery.html", rigRuns, Options{Title: "roundrobin vs leastconn"}, []string{
		"latency-handshake", "latency-send-lag",
		"timeline-open", "timeline-rates", "timeline-errors",
		"recovery-open", "recovery-open-at-end", "backends-connections",
	}},
	{"capacity.html", func(t testing.TB) []Run { r, _ := capacityPage(t); return r }, func() Options { _, o := capacityPage(nil); return o }(), []string{
		"latency-rtt", "latency-handshake", "latency-send-lag",
		"timeline-open", "timeline-rates", "timeline-p99", "timeline-errors",
		"capacity-p99", "capacity-errors",
	}},
}

func writePage(t testing.TB, pc pageCase) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteHTML(&b, pc.runs(t), pc.opt); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return b.Bytes()
}

var svgElement = regexp.MustCompile(`(?s)<svg .*?</svg>`)

// TestWriteHTMLGolden pins the page's structure. The SVG of each chart is
// replaced by a placeholder: what the charts show is tested below and in
// the browser, and gonum/plot's exact coordinates are not ours to pin.
func TestWriteHTMLGolden(t *testing.T) {
	for _, pc := range pageCases {
		t.Run(pc.name, func(t *testing.T) {
			out := writePage(t, pc)
			golden(t, pc.name, svgElement.ReplaceAll(out, []byte("<svg><!-- chart --></svg>")))
		})
	}
}

var figureRE = regexp.MustCompile(`(?s)<figure class="chart" id="([^"]+)">(.*?)</figure>`)

func TestWriteHTMLCharts(t *testing.T) {
	for _, pc := range pageCases {
		t.Run(pc.name, func(t *testing.T) {
			out := string(writePage(t, pc))
			var ids []string
			for _, m := range figureRE.FindAllStringSubmatch(out, -1) {
				ids = append(ids, m[1])
				body := m[2]
				if !strings.Contains(body, "<svg ") || !strings.Contains(body, "viewBox=") || strings.Count(body, "<path") < 3 {
					t.Fatalf("figure %s has no drawn SVG:\n%.400s", m[1], body)
				}
				if strings.Contains(body, "<?xml") {
					t.Fatalf("figure %s keeps the XML prolog, which is invalid inside HTML", m[1])
				}
			}
			if strings.Join(ids, " ") != strings.Join(pc.figures, " ") {
				t.Fatalf("charts drawn: %v\nwant: %v", ids, pc.figures)
			}
		})
	}
}

// TestPercentileAxis checks the latency chart is on HdrHistogram's scale:
// percentile labels on the x axis, and a point at x=100 (99%) for p99.
func TestPercentileAxis(t *testing.T) {
	out := string(writePage(t, pageCases[0]))
	m := figureRE.FindStringSubmatch(out)
	if m == nil || m[1] != "latency-rtt" {
		t.Fatalf("first chart is not latency-rtt")
	}
	for _, label := range []string{">0%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<", ">percentile<", ">latency (ms)<"} {
		if !strings.Contains(m[2], label) {
			t.Fatalf("latency-rtt chart lacks the axis text %s", label)
		}
	}
	xys := percentileXYs(hist1to1000())
	var found bool
	for _, p := range xys {
		if p.X >= 100 {
			if p.Y < 0.989 || p.Y > 0.992 {
				t.Fatalf("at x=%g (the 99th percentile) the plot shows %g ms, want 0.99", p.X, p.Y)
			}
			found = true
			break
		}
	}
	if !found || xys[0].X != 1 {
		t.Fatalf("percentile points of 1..1000 µs do not start at x=1 and reach x=100: %v", xys)
	}
}

// TestWriteHTMLSelfContained: the page must open offline, so it may
// reference nothing outside itself.
func TestWriteHTMLSelfContained(t *testing.T) {
	allowed := []string{
		`xmlns="http://www.w3.org/2000/svg"`, // namespace names, never fetched
		`xmlns:xlink="http://www.w3.org/1999/xlink"`,
	}
	for _, pc := range pageCases {
		t.Run(pc.name, func(t *testing.T) {
			out := string(writePage(t, pc))
			for _, a := range allowed {
				out = strings.ReplaceAll(out, a, "")
			}
			for _, bad := range []string{"http://", "https://", "<link", "<img", "<iframe", "<object", "<embed", " src=", "href=", "@import", "url(", "@font-face"} {
				if i := strings.Index(out, bad); i >= 0 {
					t.Fatalf("page references something outside itself (%q): ...%s...", bad, out[max(0, i-80):min(len(out), i+80)])
				}
			}
		})
	}
}

// TestWriteHTMLEscapes feeds markup through every string a Result or the
// command line can put on the page.
func TestWriteHTMLEscapes(t *testing.T) {
	const evil = `<img src=x onerror=alert(1)>`
	r := degradedRun(t)
	r.Label = "label" + evil
	res := *r.Result
	res.Target = "ws://127.0.0.1/" + evil
	res.Version = "v" + evil
	res.Errors = map[string]int64{"reason" + evil: 3}
	res.Connections.FailedByReason = map[string]int64{}
	res.Config.Headers = map[string]string{"X-Evil": evil}
	res.Generator.Warnings = []string{"warning" + evil}
	steps := map[string]stats.StepLatency{}
	for _, s := range res.Latency.Steps {
		steps["step"+evil] = s
	}
	res.Latency.Steps = steps
	res.Backends = map[string]stats.BackendResult{"backend" + evil: {Connections: stats.BackendConnections{Established: 3}}}
	r.Result = &res
	var b bytes.Buffer
	if err := WriteHTML(&b, []Run{r, healthyRun(t)}, Options{}); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	out := b.String()
	if strings.Contains(out, "<img") {
		i := strings.Index(out, "<img")
		t.Fatalf("unescaped markup on the page: ...%s...", out[max(0, i-120):i+40])
	}
	for _, where := range []string{"label", "ws://127.0.0.1/", "reason", "step", "backend", "warning"} {
		if !strings.Contains(out, where+"&lt;img src=x onerror=alert(1)&gt;") {
			t.Fatalf("the %s text is missing or escaped differently", where)
		}
	}
}

// TestCompareTable checks the compare view judges each figure in the right
// direction on two runs whose difference is known: degraded has the slower
// target, the failures and the errors.
func TestCompareTable(t *testing.T) {
	runs := []Run{healthyRun(t), degradedRun(t)}
	tab, summary := compareTable(runs)
	if len(tab.Head) != 4 || tab.Head[1] != "haproxy-roundrobin (baseline)" || tab.Head[3] != "Best" {
		t.Fatalf("compare head = %q", tab.Head)
	}
	if len(summary) != 1 || !strings.Contains(summary[0], "haproxy-leastconn vs haproxy-roundrobin") {
		t.Fatalf("compare summary = %q", summary)
	}
	rows := map[string][]cell{}
	for _, r := range tab.Rows {
		rows[r[0].Text] = r
	}
	for _, tc := range []struct {
		figure, class, sub, best string
	}{
		{"connections established", "num worse", "-5.0%, worse", "haproxy-roundrobin"},
		{"connections failed", "num worse", "+5, worse", "haproxy-roundrobin"},
		{"messages received/s", "num worse", "", "haproxy-roundrobin"},
		{"rtt p99", "num worse", "", "haproxy-roundrobin"},
		{"rtt max", "num worse", "", "haproxy-roundrobin"},
		{"errors", "num worse", "+10, worse", "haproxy-roundrobin"},
		// Send lag below the stalls (1 message in 500): within the guard.
		{"send lag p99", "num same", "", "≈"},
	} {
		r, ok := rows[tc.figure]
		if !ok {
			t.Fatalf("compare table has no row %q", tc.figure)
		}
		if r[2].Class != tc.class || r[3].Text != tc.best || (tc.sub != "" && r[2].Sub != tc.sub) {
			t.Fatalf("row %q: candidate %q (%q), best %q; want %q (%q), %q", tc.figure, r[2].Class, r[2].Sub, r[3].Text, tc.class, tc.sub, tc.best)
		}
	}
	// Swapping the runs swaps the judgement.
	tab, _ = compareTable([]Run{runs[1], runs[0]})
	for _, r := range tab.Rows {
		if r[0].Text == "rtt p99" && r[2].Class != "num better" {
			t.Fatalf("with the degraded run as baseline, the healthy run's p99 is %q, want better", r[2].Class)
		}
	}
	// A run without RTT samples is not compared on RTT.
	tab, _ = compareTable([]Run{healthyRun(t), failedRun(t)})
	for _, r := range tab.Rows {
		if r[0].Text == "rtt p99" && (r[2].Text != "–" || r[2].Sub != "" || r[3].Text != "–") {
			t.Fatalf("p99 against a run without samples: %+v", r)
		}
	}
}

func TestVerdict(t *testing.T) {
	warnOnly := healthyRun(t).Result
	w := *warnOnly
	w.Generator.Warnings = []string{"the generator was CPU-bound"}
	for _, tc := range []struct {
		name  string
		r     *stats.Result
		class string
		items []string
	}{
		{"healthy", healthyRun(t).Result, "ok", nil},
		{"generator warning", &w, "warn", []string{"the generator was CPU-bound"}},
		{"degraded", degradedRun(t).Result, "bad", []string{
			"connection attempts failed", "replies timed out", "5 errors on established connections: read 3, invalid_frame 2",
			"7 connections closed with an abnormal close code",
		}},
		{"nothing established", failedRun(t).Result, "bad", []string{"no connection was established"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verdictOf(tc.r)
			if v.Class != tc.class {
				t.Fatalf("verdict %q (%v), want %q", v.Class, v.Items, tc.class)
			}
			all := strings.Join(v.Items, "\n")
			for _, want := range tc.items {
				if !strings.Contains(all, want) {
					t.Fatalf("verdict items lack %q:\n%s", want, all)
				}
			}
		})
	}
}

func TestWriteHTMLRefuses(t *testing.T) {
	if err := WriteHTML(&bytes.Buffer{}, nil, Options{}); err == nil {
		t.Fatalf("WriteHTML accepted no runs")
	}
	if err := WriteHTML(&bytes.Buffer{}, []Run{{Label: "x"}}, Options{}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("WriteHTML of a run without result: %v", err)
	}
}

func TestBackendsSection(t *testing.T) {
	got, err := backendsSection([]Run{healthyRun(t)})
	if err != nil || got != "" {
		t.Fatalf("backendsSection without backends = %q, %v; want nothing", got, err)
	}
	lb := balancedRun(t)
	got, err = backendsSection([]Run{healthyRun(t), lb})
	if err != nil {
		t.Fatalf("backendsSection: %v", err)
	}
	out := string(got)
	// 100 connections over three backends by c%3: 34, 33, 33.
	for _, want := range []string{
		`id="backends-connections"`, "<td>app-1</td>", "<td>app-3</td>",
		`<td class="num">34<span class="sub">34.0%`, `<td class="num">–<span class="sub"></span></td>`,
		"busiest/least busy 1.03× (34/33)", "backend from header:X-Backend",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("backends section lacks %q:\n%s", want, svgElement.ReplaceAllString(out, "<svg/>"))
		}
	}
	// The slower backend's p99 shows in its row.
	b3 := lb.Result.Backends["app-3"].RTT.P99US
	if b3 <= lb.Result.Backends["app-1"].RTT.P99US || !strings.Contains(out, "p99 "+fmtUS(b3)) {
		t.Fatalf("backend app-3's p99 %s is not shown as the slowest", fmtUS(b3))
	}
}
