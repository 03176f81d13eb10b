package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// spreadScenario is a scenario whose step counts are exact: every
// connection runs a counted repeat and then sleeps past the run's end, so
// no connection is replaced and each flow's counts follow from which
// connection numbers pick it.
const spreadScenario = `target: %s
phases:
  - connections: 7
    duration: 8s
flows:
  - name: talker
    weight: 2
    steps:
      - repeat:
          count: 4
          rate: 10
          steps:
            - send: {text: "talk ${conn}-${seq}"}
              name: say
            - expect: {regex: "^talk ", timeout: 5s}
              name: heard
      - sleep: 1h
  - name: quiet
    weight: 1
    steps:
      - send: {text: "hello ${conn}"}
        name: hello
      - expect: {regex: "^hello ", timeout: 5s}
        name: hello.rtt
      - sleep: 1h
`

// expectedFlows counts the connections 0 … n-1 that pick each flow, as one
// process numbers them.
func expectedFlows(t *testing.T, file string, n int) map[string]int64 {
	t.Helper()
	plan, err := scenario.Load(file)
	if err != nil {
		t.Fatalf("load %s: %v", file, err)
	}
	out := map[string]int64{}
	for id := range n {
		out[plan.Flows[plan.FlowIndex(uint64(id))].Name]++
	}
	return out
}

// A scenario over two worker processes: the merged step counts are those of
// one process running it, so the workers split every level exactly and
// numbered their connections as one process would.
func TestRunScenarioProcs(t *testing.T) {
	patientLead(t)
	url := startServe(t)
	t.Setenv(asWsloadEnv, "1")
	dir := t.TempDir()
	file := filepath.Join(dir, "talk.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(spreadScenario, url)), 0o644); err != nil {
		t.Fatal(err)
	}
	flows := expectedFlows(t, file, 7)
	if flows["talker"] == 0 || flows["quiet"] == 0 {
		t.Fatalf("flows %v: the test needs both", flows)
	}
	out := filepath.Join(dir, "r.json")
	var stdout, stderr bytes.Buffer
	code := runCmd([]string{file, "--procs", "2", "-q", "--pollers", "1", "-o", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	res, err := stats.ReadResultFile(out)
	if err != nil {
		t.Fatal(err)
	}
	steps := res.Latency.Steps
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"established", res.Connections.Established, 7},
		{"say sent", steps["say"].Sent, 4 * flows["talker"]},
		{"heard count", steps["heard"].Count, 4 * flows["talker"]},
		{"hello sent", steps["hello"].Sent, flows["quiet"]},
		{"hello.rtt count", steps["hello.rtt"].Count, flows["quiet"]},
		{"heard timeouts", steps["heard"].Timeouts, 0},
		{"say send lags", steps["say"].SendLag.Count, 4 * flows["talker"]},
	} {
		if c.got != c.want {
			t.Fatalf("%s = %d, want %d (flows %v)\nsummary:\n%s", c.what, c.got, c.want, flows, stdout.String())
		}
	}
	sc := res.Config.Scenario
	if sc == nil || sc.File != file || len(sc.SHA256) != 64 || len(sc.Flows) != 2 || len(sc.Phases) != 1 || sc.Phases[0].To != 7 {
		t.Fatalf("result's scenario = %+v", sc)
	}
	if !containsStr(res.Generator.Warnings, "2 worker processes") {
		t.Fatalf("warnings %q: not a 2-process run", res.Generator.Warnings)
	}
	for _, w := range []string{"Config       scenario talk.yaml: 2 flows (talker 66.67%, quiet 33.33%), phases hold 7 8s", "\nsay "} {
		if !strings.Contains(stdout.String(), w) {
			t.Fatalf("summary lacks %q:\n%s", w, stdout.String())
		}
	}
}
