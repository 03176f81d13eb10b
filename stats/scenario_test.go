package stats

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func chatScenario() *Scenario {
	return &Scenario{
		File:   "scripts/scenarios/chat.yaml",
		SHA256: "4f2c0d1e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d",
		Flows:  []ScenarioFlow{{Name: "listener", Weight: 0.95}, {Name: "publisher", Weight: 0.05}},
		Phases: []ScenarioPhase{
			{Kind: "connections", DurationS: 30, From: 0, To: 500},
			{Name: "steady", Kind: "connections", DurationS: 180, From: 500, To: 500},
		},
	}
}

func TestScenarioString(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Scenario
		want string
	}{
		{"chat", chatScenario(), "chat.yaml: 2 flows (listener 95%, publisher 5%), phases ramp 0→500 30s, hold 500 3m"},
		{"arrivals and ramp down", &Scenario{File: "churn.yml", Flows: []ScenarioFlow{{Name: "visit", Weight: 1}},
			Phases: []ScenarioPhase{{Kind: "arrivals", DurationS: 90, Rate: 12.5}, {Kind: "connections", DurationS: 1.5, From: 40, To: 0}}},
			"churn.yml: 1 flow (visit 100%), phases arrivals 12.5/s 1m30s, ramp 40→0 1.5s"},
		{"long", &Scenario{File: `C:\s\soak.yaml`, Flows: []ScenarioFlow{{Name: "a", Weight: 1.0 / 3}, {Name: "b", Weight: 2.0 / 3}},
			Phases: []ScenarioPhase{{Kind: "connections", DurationS: 7200, From: 10, To: 10}}},
			"soak.yaml: 2 flows (a 33.33%, b 66.67%), phases hold 10 2h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

// stepRun records one second of a scenario run: a paced send step with
// some late sends, an expect with timeouts, a send step that failed.
func stepRun(t *testing.T, scen *Scenario, sends int) *Result {
	t.Helper()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(2)
	rec.SetStart(t0)
	for i := range sends {
		s := rec.Shard(i % 2)
		lag := time.Duration(i%4) * 700 * time.Microsecond // 0, 0.7, 1.4, 2.1 ms: half are late
		s.Sent(10, lag)
		s.StepSent("publish", lag)
		s.Step("listen", 2*time.Millisecond, time.Millisecond)
	}
	rec.Shard(0).StepTimedOut("listen")
	rec.Shard(1).StepError("bye")
	agg := NewAggregate(t0)
	agg.Add(rec.Rotate(t0.Add(time.Second)))
	return agg.Result(Header{Version: "test", Target: "ws://127.0.0.1:1/", Start: t0, Config: Config{Connections: 4, Scenario: scen}})
}

func TestStepCountersAndScenarioRoundTrip(t *testing.T) {
	res := stepRun(t, chatScenario(), 100)
	check := func(where string, r *Result) {
		t.Helper()
		pub, listen, bye := r.Latency.Steps["publish"], r.Latency.Steps["listen"], r.Latency.Steps["bye"]
		if pub.Sent != 100 || pub.Late != 50 || pub.Count != 0 || pub.SendLag == nil || pub.SendLag.Count != 100 {
			t.Fatalf("%s: publish = sent %d late %d count %d lag %+v, want 100 sent, 50 late, 0 count, 100 lags", where, pub.Sent, pub.Late, pub.Count, pub.SendLag)
		}
		if got := pub.SendLag.P99US; got < 2090 || got > 2110 {
			t.Fatalf("%s: publish lag p99 = %dµs, want 2100µs", where, got)
		}
		if listen.Count != 100 || listen.Corrected.Count != 100 || listen.Timeouts != 1 || listen.SendLag != nil || listen.Sent != 0 {
			t.Fatalf("%s: listen = %+v, want count 100, 1 timeout, no sends", where, listen)
		}
		if bye.Errors != 1 || bye.Count != 0 {
			t.Fatalf("%s: bye = %+v, want 1 error", where, bye)
		}
		if !reflect.DeepEqual(r.Config.Scenario, chatScenario()) {
			t.Fatalf("%s: scenario = %+v, want %+v", where, r.Config.Scenario, chatScenario())
		}
	}
	check("aggregate", res)

	var buf bytes.Buffer
	if err := EncodeResult(&buf, res); err != nil {
		t.Fatalf("encode: %v", err)
	}
	for _, key := range []string{`"scenario": {`, `"sha256": "4f2c`, `"send_lag": {`, `"late": 50`, `"timeouts": 1`} {
		if !strings.Contains(buf.String(), key) {
			t.Fatalf("JSON lacks %s:\n%s", key, buf.String())
		}
	}
	back, err := DecodeResult(&buf)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	check("JSON round trip", back)

	var text bytes.Buffer
	if err := WriteText(&text, back); err != nil {
		t.Fatalf("text: %v", err)
	}
	for _, want := range []string{
		"Config       scenario chat.yaml: 2 flows (listener 95%, publisher 5%), phases ramp 0→500 30s, hold 500 3m, peak 4 connections",
		"\npublish          0       100        50    2.10ms    2.10ms         0         0\n",
		"\nlisten         100         0         0         -         -         1         0\n",
		"\nstep listen (corrected)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("text summary lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "no scheduled messages") || strings.Contains(text.String(), "step publish (corrected)") {
		t.Fatalf("a scenario run's summary uses the echo wording, or a latency row for a send step:\n%s", text.String())
	}
}

func TestMergeStepsAndScenarios(t *testing.T) {
	a, b := stepRun(t, chatScenario(), 100), stepRun(t, chatScenario(), 40)
	b.Config.Scenario.File = "/elsewhere/chat.yaml" // same bytes, another path: one scenario
	a.Generator.PID, b.Generator.PID = 1, 2         // two processes, not the same run twice
	m, err := Merge(a, b)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	pub, listen := m.Latency.Steps["publish"], m.Latency.Steps["listen"]
	if pub.Sent != 140 || pub.Late != 70 || pub.SendLag == nil || pub.SendLag.Count != 140 || listen.Count != 140 || listen.Timeouts != 2 || m.Latency.Steps["bye"].Errors != 2 {
		t.Fatalf("merged steps: publish %+v, listen %+v", pub, listen)
	}
	if m.Config.Scenario == nil || m.Config.Scenario.File != a.Config.Scenario.File {
		t.Fatalf("merged scenario = %+v, want the first input's", m.Config.Scenario)
	}
	m.Config.Scenario.Flows[0].Name = "changed"
	if a.Config.Scenario.Flows[0].Name != "listener" {
		t.Fatal("the merged scenario shares the input's flows")
	}

	other := chatScenario()
	other.File, other.SHA256 = "echo.yaml", strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		b    *Scenario
	}{
		{"different file", other},
		{"echo run", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := stepRun(t, tc.b, 10)
			_, err := Merge(a, c)
			if !errors.Is(err, ErrMixedScenarios) || !strings.Contains(err.Error(), "--allow-mixed-targets") {
				t.Fatalf("Merge of two scenarios: err = %v, want ErrMixedScenarios naming --allow-mixed-targets", err)
			}
			m, err := MergeOptions{AllowMixedTargets: true}.Merge(a, c)
			if err != nil {
				t.Fatalf("merge with AllowMixedTargets: %v", err)
			}
			if !strings.Contains(strings.Join(m.Generator.Warnings, "\n"), "different scenarios") {
				t.Fatalf("no warning about the mixed scenarios: %q", m.Generator.Warnings)
			}
		})
	}
}

func TestStepCountersWire(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(1)
	rec.SetStart(t0)
	s := rec.Shard(0)
	s.StepSent("publish", 3*time.Millisecond)
	s.StepSent("publish", 0)
	s.StepTimedOut("listen")
	s.StepError("publish")
	iv := rec.Rotate(t0.Add(time.Second))
	var buf bytes.Buffer
	if err := EncodeInterval(&buf, iv); err != nil {
		t.Fatalf("encode: %v", err)
	}
	back, err := DecodeInterval(bytes.TrimSpace(buf.Bytes()))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	p, l := back.Steps["publish"], back.Steps["listen"]
	if p == nil || l == nil || p.Sent != 2 || p.Late != 1 || p.Errors != 1 || count(p.SendLag) != 2 || l.TimedOut != 1 || l.SendLag != nil {
		t.Fatalf("decoded steps: publish %+v, listen %+v", p, l)
	}

	// The next interval starts from zero, and an idle step is not sent.
	iv = rec.Rotate(t0.Add(2 * time.Second))
	if st := iv.Steps["publish"]; !st.idle() {
		t.Fatalf("rotated step kept counters: %+v", st)
	}
	buf.Reset()
	if err := EncodeInterval(&buf, iv); err != nil {
		t.Fatalf("encode: %v", err)
	}
	if strings.Contains(buf.String(), "publish") {
		t.Fatalf("an idle step was encoded: %s", buf.String())
	}
}

func TestStepCountersAllocationFree(t *testing.T) {
	s := NewRecorder(1).Shard(0)
	s.StepSent("publish", time.Millisecond)
	s.StepTimedOut("listen")
	s.StepError("publish")
	allocs := testing.AllocsPerRun(1000, func() {
		s.StepSent("publish", 2*time.Millisecond)
		s.StepTimedOut("listen")
		s.StepError("publish")
	})
	if allocs != 0 {
		t.Fatalf("step counters allocate %v times per round", allocs)
	}
}
