package engine

import (
	"context"
	"testing"
	"time"

	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

// plan parses a scenario for target and applies it as wsload run would.
func plan(t *testing.T, target, src string) *scenario.Plan {
	t.Helper()
	p, err := scenario.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("scenario:\n%v", err)
	}
	if err := p.Override(scenario.Overrides{Target: target}); err != nil {
		t.Fatalf("override: %v", err)
	}
	return p
}

// runPlan runs p and returns the result.
func runPlan(t *testing.T, p *scenario.Plan, tweak func(*Config)) (*stats.Result, *Engine) {
	t.Helper()
	cfg := Config{Plan: p, ReplyTimeout: 2 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	return run(t, context.Background(), cfg)
}

func stepCount(r *stats.Result, name string) int64 { return r.Latency.Steps[name].Corrected.Count }

func TestFlowSendExpect(t *testing.T) {
	s := startServer(t, server.Config{})
	p := plan(t, s.URL(), `
phases: [{connections: 10, duration: 1500ms}]
flows:
  - name: echo
    steps:
      - repeat:
          rate: 20
          steps:
            - send: {json: {id: "${conn}-${seq}"}}
            - expect: {regex: '"id":"\d+-\d+"', timeout: 1s}
              name: rtt
`)
	r, _ := runPlan(t, p, nil)
	t.Logf("sent %d received %d steps %v errors %v", r.Messages.Sent, r.Messages.Received, stepCount(r, "rtt"), r.Errors)
	if r.Connections.Established != 10 || len(r.Errors) != 0 {
		t.Fatalf("connections %+v errors %v", r.Connections, r.Errors)
	}
	if n := stepCount(r, "rtt"); n < 200 || n != r.Messages.Received {
		t.Fatalf("rtt count %d, received %d, sent %d", n, r.Messages.Received, r.Messages.Sent)
	}
}
