package slo

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/wsload/wsload/stats"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
	}{
		{"rtt.p99<50ms", Spec{{"rtt.p99<50ms", "rtt.p99", "<", 50000, "us"}}},
		{" rtt.p99 < 50ms , handshake.p999<=1.5s,errors<0.1%", Spec{
			{"rtt.p99<50ms", "rtt.p99", "<", 50000, "us"},
			{"handshake.p999<=1.5s", "handshake.p999", "<=", 1500000, "us"},
			{"errors<0.1%", "errors", "<", 0.1, "%"},
		}},
		{"timeouts<1%,established>=99.9%", Spec{
			{"timeouts<1%", "timeouts", "<", 1, "%"},
			{"established>=99.9%", "established", ">=", 99.9, "%"},
		}},
		{"received_per_s>=900,sent_per_s>1000/s", Spec{
			{"received_per_s>=900", "received_per_s", ">=", 900, "/s"},
			{"sent_per_s>1000/s", "sent_per_s", ">", 1000, "/s"},
		}},
		{"rtt_uncorrected.max<800us,send_lag.p50<1ms", Spec{
			{"rtt_uncorrected.max<800us", "rtt_uncorrected.max", "<", 800, "us"},
			{"send_lag.p50<1ms", "send_lag.p50", "<", 1000, "us"},
		}},
		{"step.login.ok.p99<200ms", Spec{{"step.login.ok.p99<200ms", "step.login.ok.p99", "<", 200000, "us"}}},
	} {
		got, err := Parse(c.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Fatalf("Parse(%q) = %+v, want %+v", c.in, got, c.want)
		}
		again, err := Parse(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("Parse(%q) of String() = %+v, %v", got.String(), again, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		in  string
		col int // 1-based
		msg string
	}{
		{"", 1, "no objectives"},
		{"rtt.p99<50ms,", 14, "empty objective"},
		{"rtt.p99<50ms,rt.p99<1s", 14, `unknown metric "rt.p99"`},
		{"rtt.p98<50ms", 1, `unknown statistic "p98"`},
		{"rtt<50ms", 1, `"rtt" needs a percentile`},
		{"rtt.p99 50ms", 1, "has no comparison"},
		{"rtt.p99=50ms", 8, `comparison "="`},
		{"rtt.p99!=50ms", 8, `comparison "!="`},
		{"rtt.p99<50", 9, "needs a unit: 50ms"},
		{"rtt.p99<fast", 9, "not a duration"},
		{"rtt.p99<", 9, "missing value"},
		{"errors<0.1", 8, "is a percentage: write 0.1%"},
		{"errors<101%", 8, "between 0% and 100%"},
		{"errors<-1%", 8, "between 0% and 100%"},
		{"errors<NaN%", 8, "between 0% and 100%"},
		{"received_per_s>=lots", 17, "not a rate"},
		{"<5ms", 1, "missing metric"},
		{"step.p99<1s", 1, "want step.NAME.p99"},
		{"step.a.b<1s", 1, `unknown statistic "b"`},
		{"step.größe.p99<1s,x<1", 19, `unknown metric "x"`}, // columns count runes, not bytes
	} {
		_, err := Parse(c.in)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("Parse(%q) = %v, want a *SyntaxError", c.in, err)
		}
		if !strings.Contains(se.Error(), c.msg) || !strings.HasPrefix(se.Error(), "slo: ") {
			t.Fatalf("Parse(%q) error %q, want it to contain %q", c.in, se.Error(), c.msg)
		}
		if want := "column " + strconv.Itoa(c.col) + " "; !strings.Contains(se.Error(), want) {
			t.Fatalf("Parse(%q) error %q, want %q", c.in, se.Error(), want)
		}
		lines := strings.Split(se.Pointer(), "\n")
		if len(lines) != 2 || lines[0] != c.in || len([]rune(lines[1])) != c.col {
			t.Fatalf("Parse(%q) pointer %q, want a caret in column %d", c.in, se.Pointer(), c.col)
		}
	}
}

// result is a run of 1000 attempted connections (990 established) and 10000
// messages, with the latencies given.
func result() *stats.Result {
	r := &stats.Result{
		Config:      stats.Config{Connections: 1000},
		Connections: stats.Connections{Attempted: 1000, Established: 990, Failed: 10},
		Messages:    stats.Messages{Sent: 10000, Received: 9950, TimedOut: 50, SentPerS: 1000, ReceivedPerS: 995},
		Errors:      map[string]int64{"http_503": 10, "reset": 1},
	}
	r.Latency.RTT = stats.Latency{Count: 9950, P50US: 2000, P99US: 40000, P999US: 60000, MaxUS: 90000}
	r.Latency.RTTUncorrected = stats.Latency{Count: 9950, P99US: 30000}
	r.Latency.Handshake = stats.Latency{Count: 990, P99US: 800000}
	r.Latency.Steps = map[string]stats.StepLatency{"login": {Corrected: stats.Latency{Count: 10, P99US: 150000}}}
	return r
}

func TestEvaluate(t *testing.T) {
	for _, c := range []struct {
		obj    string
		actual float64
		ok     bool
		note   string
	}{
		{"rtt.p99<50ms", 40000, true, ""},
		{"rtt.p99<40ms", 40000, false, ""},
		{"rtt.p99<=40ms", 40000, true, ""},
		{"rtt.p999<50ms", 60000, false, ""},
		{"rtt.max<100ms", 90000, true, ""},
		{"rtt_uncorrected.p99<35ms", 30000, true, ""},
		{"handshake.p99<1s", 800000, true, ""},
		{"send_lag.p99<1ms", 0, false, "no samples"},
		{"step.login.p99<200ms", 150000, true, ""},
		{"step.logout.p99<200ms", 0, false, `no step "logout" in this result`},
		// 11 errors of 1000 connections + 10000 messages.
		{"errors<0.1%", 0.1, false, ""},
		{"errors<=0.1%", 0.1, true, ""},
		{"timeouts<1%", 0.5, true, ""},
		{"established>=99.9%", 99, false, ""},
		{"established>=99%", 99, true, ""},
		{"received_per_s>=900", 995, true, ""},
		{"sent_per_s>1000", 1000, false, ""},
	} {
		spec, err := Parse(c.obj)
		if err != nil {
			t.Fatalf("Parse(%q): %v", c.obj, err)
		}
		v := Evaluate(spec, result())
		if len(v) != 1 {
			t.Fatalf("%s: %d verdicts", c.obj, len(v))
		}
		if g := v[0]; g.OK != c.ok || g.Note != c.note || g.Objective != c.obj || abs(g.Actual-c.actual) > 1e-9 {
			t.Fatalf("%s: verdict %+v, want actual %v ok %v note %q", c.obj, g, c.actual, c.ok, c.note)
		}
	}
	// An empty run: ratios are vacuous, established is not.
	spec, _ := Parse("errors<1%,timeouts<1%,established>=99%")
	v := Evaluate(spec, &stats.Result{})
	if !v[0].OK || !v[1].OK || v[2].OK || v[0].Note != "nothing attempted" {
		t.Fatalf("empty run verdicts %+v", v)
	}
	if !stats.Broken(v) {
		t.Fatalf("Broken(%+v) = false", v)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"rtt.p99<50ms,handshake.p99<1s,errors<0.1%", "timeouts<1%,established>=99.9%",
		"received_per_s>=100/s", "step.a.b.p99<=1s", "rtt.p99<", ",", "größe<1%", "rtt.max>1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(s) {
				t.Fatalf("Parse(%q): error %v without a position inside the spec", s, err)
			}
			_ = se.Pointer()
			return
		}
		if len(spec) == 0 {
			t.Fatalf("Parse(%q) accepted no objectives", s)
		}
		again, err := Parse(spec.String())
		if err != nil || !reflect.DeepEqual(again, spec) {
			t.Fatalf("Parse(%q) = %+v; re-parsing %q gave %+v, %v", s, spec, spec.String(), again, err)
		}
		Evaluate(spec, &stats.Result{})
	})
}
