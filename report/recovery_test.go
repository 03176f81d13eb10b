package report

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/capacity"
	"github.com/wsload/wsload/stats"
)

// rigRuns are two real results of scripts/rig/compare.sh --reconnect (300
// connections, 20 s, b2 restarted at 8 s through HAProxy): roundrobin leaves
// the restarted backend with a third of its share at the end, leastconn
// fills it back up.
func rigRuns(t testing.TB) []Run {
	var runs []Run
	for _, f := range []struct{ path, label string }{{"testdata/rig-rr.json", "roundrobin"}, {"testdata/rig-lc.json", "leastconn"}} {
		r, err := Load(f.path, f.label)
		if err != nil {
			t.Fatalf("%v", err)
		}
		runs = append(runs, r)
	}
	return runs
}

func TestRecoverySection(t *testing.T) {
	out := string(writePage(t, pageCase{runs: rigRuns}))
	sec := regexp.MustCompile(`(?s)<section id="recovery">.*?</section>`).FindString(out)
	if sec == "" {
		t.Fatalf("no recovery section in the page")
	}
	ids := regexp.MustCompile(`<figure class="chart" id="([^"]+)"`).FindAllStringSubmatch(sec, -1)
	if len(ids) != 2 || ids[0][1] != "recovery-open" || ids[1][1] != "recovery-open-at-end" {
		t.Fatalf("recovery charts %v, want recovery-open and recovery-open-at-end", ids)
	}
	for _, want := range []string{
		"roundrobin: 100 connections dropped, 100 reconnects",
		"b2 the fewest (33)",
		"Better spread after the drop: leastconn",
		">roundrobin drop<", ">leastconn back (4 s)<", // the marks on the chart
		"1001 going away: 100",
	} {
		if !strings.Contains(sec, want) {
			t.Fatalf("recovery section lacks %q:\n%s", want, sec)
		}
	}
	// The busiest/least busy row marks leastconn better, roundrobin worse.
	row := regexp.MustCompile(`(?s)<tr><td>Open at end: busiest/least busy</td>(.*?)</tr>`).FindStringSubmatch(sec)
	if row == nil || !regexp.MustCompile(`(?s)num worse">4\.06×.*num better">1\.01×`).MatchString(row[1]) {
		t.Fatalf("open-at-end row does not mark leastconn better: %v", row)
	}

	// A run that dropped nothing has no section.
	if strings.Contains(string(writePage(t, pageCases[0])), `id="recovery"`) {
		t.Fatalf("a run without drops got a recovery section")
	}
}

// capacitySearch is a capacity search of three connection levels with the
// knee at 200, each step carrying a run's result unless t is nil.
func capacitySearch(t testing.TB) *capacity.Result {
	step := func(n, conns int, ok bool, p99 int64) capacity.Step {
		var res *stats.Result
		if t != nil { // nil: the curve only (a page case's static Options)
			res = healthy.result(t, "ws://127.0.0.1:8080/echo")
		}
		return capacity.Step{N: n, Phase: "step", Level: capacity.Level{Connections: conns, Rate: float64(conns)}, OK: ok,
			Figures: capacity.Figures{RTTP99US: p99, ErrorsPct: map[bool]float64{true: 0, false: 2}[ok]}, Result: res}
	}
	knee := capacity.Level{Connections: 200, Rate: 200}
	bad := capacity.Level{Connections: 300, Rate: 300}
	return &capacity.Result{Schema: capacity.Schema, Tool: "wsload", Target: "ws://127.0.0.1:8080/echo", Start: t0,
		Dimension: capacity.Connections, Connections: "100:300:100", SLO: "rtt.p99<50ms", Knee: &knee, FirstBad: &bad,
		Summary: "capacity: 200 connections", HoldS: 5 * time.Second.Seconds(),
		Steps: []capacity.Step{step(1, 100, true, 4000), step(2, 200, true, 20_000), step(3, 300, false, 90_000)}}
}

func TestCapacityOf(t *testing.T) {
	c := capacitySearch(t)
	curve := CapacityOf(c)
	if curve.LevelName != "connections" || curve.SLO != "rtt.p99<50ms" || len(curve.Points) != 3 {
		t.Fatalf("CapacityOf = %+v", curve)
	}
	if k, ok := Knee(curve.Points); !ok || k.Level != 200 || k.P99US != 20_000 {
		t.Fatalf("knee of the converted curve = %+v, %v; want the search's knee, 200", k, ok)
	}
	c.Steps[1].Error = "dial: refused"
	if k, _ := Knee(CapacityOf(c).Points); k.Level != 100 {
		t.Fatalf("a step that could not run must count as missed: knee %v", k.Level)
	}
	c.Steps[1].Error = ""
	run, ok := CapacityRun(c)
	if !ok || run.Result != c.Steps[1].Result || !strings.HasPrefix(run.Label, "knee (step 2)") {
		t.Fatalf("CapacityRun = %q, %v; want the knee step", run.Label, ok)
	}
	c.Knee = nil
	if run, _ := CapacityRun(c); run.Result != c.Steps[0].Result {
		t.Fatalf("without a knee CapacityRun = %q, want the first step", run.Label)
	}
	c.Dimension = capacity.Rate
	if curve := CapacityOf(c); curve.LevelName != "messages/s" || curve.Points[2].Level != 300 {
		t.Fatalf("rate search: %+v", curve)
	}
}

// capacityPage is the page of a capacity search given alone: its curve,
// and the knee step's run.
func capacityPage(t testing.TB) ([]Run, Options) {
	c := capacitySearch(t)
	run, _ := CapacityRun(c)
	curve := CapacityOf(c)
	return []Run{run}, Options{Title: "wsload capacity: " + c.Target, Capacity: &curve}
}
