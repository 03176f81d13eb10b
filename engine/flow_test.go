package engine

import (
	"slices"

	"context"
	"github.com/wsload/wsload/internal/testenv"
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

// loadScript loads scripts/scenarios/NAME scaled to conns and d (0: as in
// the file) against target.
func loadScript(t *testing.T, name, target string, conns int, d time.Duration) *scenario.Plan {
	t.Helper()
	p, err := scenario.Load("../scripts/scenarios/" + name)
	if err != nil {
		t.Fatalf("load %s:\n%v", name, err)
	}
	if err := p.Override(scenario.Overrides{Target: target, Connections: conns, Duration: d}); err != nil {
		t.Fatalf("override %s: %v", name, err)
	}
	return p
}

// noErrors fails unless the run recorded no errors besides the allowed reasons.
func noErrors(t *testing.T, r *stats.Result, eng *Engine, allowed ...string) {
	t.Helper()
	for reason, n := range r.Errors {
		if !slices.Contains(allowed, reason) {
			t.Fatalf("%d × %s (e.g. %s); all errors %v", n, reason, eng.SampleErrors()[reason], r.Errors)
		}
	}
}

func TestScriptEcho(t *testing.T) {
	for _, target := range []string{"serve", "node"} {
		t.Run(target, func(t *testing.T) {
			var url string
			if target == "serve" {
				url = startServer(t, server.Config{}).URL()
			} else {
				url = testenv.NodeWS(t, "echo")
			}
			// 20 connections: a 0.45 s ramp, a 2.3 s hold, a 0.2 s ramp down; 10 msg/s each.
			r, eng := runPlan(t, loadScript(t, "echo.yaml", url, 20, 3*time.Second), nil)
			noErrors(t, r, eng)
			c := r.Connections
			if c.Established != 20 || c.Closed != 20 || r.CloseCodes[1000] != 20 || c.PeakOpen != 20 {
				t.Fatalf("connections %+v close codes %v", c, r.CloseCodes)
			}
			n := stepCount(r, "echo.rtt")
			if n < 400 || n != r.Messages.Received || r.Messages.Sent-n > 20 || r.Messages.Unmatched != 0 {
				t.Fatalf("echo.rtt %d of %d sent, %d received, %d unmatched", n, r.Messages.Sent, r.Messages.Received, r.Messages.Unmatched)
			}
		})
	}
}

// TestScriptChat runs the chat room against two broadcast servers: ours and
// npm's ws. Every stamped message a publisher sends reaches every listener.
func TestScriptChat(t *testing.T) {
	for _, target := range []string{"serve", "node"} {
		t.Run(target, func(t *testing.T) {
			var url string
			if target == "serve" {
				url = startServer(t, server.Config{Broadcast: true}).URL()
			} else {
				url = testenv.NodeWS(t, "broadcast")
			}
			p := loadScript(t, "chat.yaml", url, 40, 3*time.Second)
			pubs := 0
			for id := range 40 {
				if p.Flows[p.FlowIndex(uint64(id))].Name == "publisher" {
					pubs++
				}
			}
			r, eng := runPlan(t, p, nil)
			noErrors(t, r, eng)
			if r.Connections.Established != 40 {
				t.Fatalf("connections %+v", r.Connections)
			}
			got := stepCount(r, "chat.delivery")
			// Publishers send 2/s after a join and a pause of up to 1 s;
			// listeners count each stamped message once it reached them.
			if pubs == 0 || got < int64(pubs*(40-pubs)) {
				t.Fatalf("%d publishers, %d deliveries measured (want at least one message per publisher to every listener); sent %d received %d",
					pubs, got, r.Messages.Sent, r.Messages.Received)
			}
			d := r.Latency.Steps["chat.delivery"].Corrected
			if d.P50US <= 0 || d.P99US < d.P50US || d.MaxUS > 1_000_000 {
				t.Fatalf("delivery latency %+v", d)
			}
		})
	}
}

func TestScriptLogin(t *testing.T) {
	t.Setenv("API_KEY", "k-123")
	ps := startProtoServer(t, "k-123")
	// 20 arrivals per second for 2 s; each logs in, subscribes and takes updates.
	r, eng := runPlan(t, loadScript(t, "login.yaml", ps.URL, 0, 2*time.Second), nil)
	noErrors(t, r, eng)
	logins := ps.logins.Load()
	if logins < 30 || ps.badUsers.Load() != 0 || ps.subBad.Load() != 0 {
		t.Fatalf("server saw %d logins (%d bad users), %d good and %d bad subscriptions", logins, ps.badUsers.Load(), ps.subOK.Load(), ps.subBad.Load())
	}
	if w, s := stepCount(r, "login.welcome"), stepCount(r, "login.to_subscribed"); w < logins-2 || s < w-2 || s != ps.subOK.Load() {
		t.Fatalf("%d logins: %d welcomes, %d subscriptions measured (server: %d)", logins, w, s, ps.subOK.Load())
	}
	if u := stepCount(r, "login.update"); u < 100 {
		t.Fatalf("only %d updates measured", u)
	}
	// login.to_subscribed measures from the login mark: at least the welcome's round trip.
	st := r.Latency.Steps
	if st["login.to_subscribed"].Corrected.MinUS < st["login.welcome"].Corrected.MinUS {
		t.Fatalf("to_subscribed min %dµs < welcome min %dµs", st["login.to_subscribed"].Corrected.MinUS, st["login.welcome"].Corrected.MinUS)
	}
	for _, id := range []string{"wsload-0", "wsload-1", "wsload-29"} {
		if _, ok := ps.clients.Load(id); !ok {
			t.Fatalf("no X-Client: %s header seen", id)
		}
	}
}

func TestScriptSubscribe(t *testing.T) {
	ps := startProtoServer(t, "")
	p := loadScript(t, "subscribe.yaml", ps.URL, 20, 2*time.Second)
	// Think times of 25 s do not fit a test: ping every 100 ms instead.
	p.Flows[0].Steps[2].Repeat.Steps[0].Sleep = &scenario.Distribution{Kind: scenario.DistFixed, Fixed: 100 * time.Millisecond}
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng)
	if n := stepCount(r, "subscribe.ack"); n != 20 || r.Connections.Established != 20 {
		t.Fatalf("%d acks for %d connections", n, r.Connections.Established)
	}
	if n := stepCount(r, "subscribe.ping"); n < 100 || n > ps.pings.Load() {
		t.Fatalf("%d pongs measured, server answered %d pings", n, ps.pings.Load())
	}
}

func TestScriptReplay(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	// The HAR holds 5 client messages over 3 s (1.5 s at speed 2) and 5
	// server messages; the echo returns each client message.
	r, eng := runPlan(t, loadScript(t, "replay.yaml", url, 0, 2*time.Second), nil)
	noErrors(t, r, eng)
	n := stepCount(r, "browser.replay@19")
	if n < 10 || n != r.Messages.Received {
		t.Fatalf("%d replies measured, %d received, %d sent", n, r.Messages.Received, r.Messages.Sent)
	}

	// Arrivals, then a cool-down in which every replay finishes and closes.
	p := plan(t, url, `
phases: [{arrivals: 4, duration: 1s}, {connections: 0, duration: 2500ms}]
flows:
  - name: r
    steps:
      - replay: {file: ../scripts/scenarios/sample.har, url_contains: /socket, speed: 2}
        name: replay
      - sleep: 200ms
      - close
`)
	r, eng = runPlan(t, p, nil)
	noErrors(t, r, eng)
	if c := r.Connections; c.Established != 4 || r.CloseCodes[1000] != 4 {
		t.Fatalf("connections %+v codes %v", c, r.CloseCodes)
	}
	if r.Messages.Sent != 20 || stepCount(r, "replay") != 20 || r.Messages.TimedOut != 0 {
		t.Fatalf("sent %d, replies measured %d, timed out %d", r.Messages.Sent, stepCount(r, "replay"), r.Messages.TimedOut)
	}
	// Sends follow the capture's spacing: none is late by more than a few ms.
	if lag := r.Latency.SendLag; lag.MaxUS > 50_000 {
		t.Fatalf("send lag %+v", lag)
	}
}
