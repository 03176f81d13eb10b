package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

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

// TestFanOut2000 measures one-to-many delivery: one publisher, 2,000
// subscribers of a broadcast server; each stamped message is measured at
// every subscriber from the publisher's stamp.
func TestFanOut2000(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	url := startServer(t, server.Config{Broadcast: true}).URL()
	const conns = 2001
	p := plan(t, url, `
phases: [{connections: 2001, duration: 4s}]
flows:
  - name: subscriber
    weight: 2000
    steps:
      - repeat:
          steps:
            - expect: {stamped: true, timeout: 10s}
              name: fanout
  - name: publisher
    weight: 1
    steps:
      - sleep: 2s                 # everyone is subscribed by then
      - repeat:
          count: 3
          rate: 4
          steps:
            - send: {json: {type: news}, stamp: true}
      - sleep: 10s                # stay: a flow that ends is replaced
`)
	pubs := 0
	for id := range conns {
		if p.Flows[p.FlowIndex(uint64(id))].Name == "publisher" {
			pubs++
		}
	}
	if pubs != 1 {
		t.Fatalf("%d publishers among %d connections, want 1", pubs, conns)
	}
	r, eng := runPlan(t, p, func(c *Config) { c.ExtraFDs = conns })
	noErrors(t, r, eng)
	if r.Connections.Established != conns {
		t.Fatalf("connections %+v", r.Connections)
	}
	f := r.Latency.Steps["fanout"].Corrected
	if r.Messages.Sent != 3 || f.Count != 3*(conns-1) {
		t.Fatalf("%d messages published, %d deliveries measured, want %d", r.Messages.Sent, f.Count, 3*(conns-1))
	}
	if f.P50US <= 0 || f.P99US < f.P50US || f.MaxUS > 2_000_000 {
		t.Fatalf("fan-out latency %+v", f)
	}
	t.Logf("fan-out to %d subscribers: p50 %dµs p90 %dµs p99 %dµs max %dµs", conns-1, f.P50US, f.P90US, f.P99US, f.MaxUS)
}

// TestCoordinatedOmission: a send→expect loop at 20/s per connection against
// a server that stalls 400 ms every second. During a stall the loop cannot
// send (it waits for the reply), so the iterations due meanwhile go out late.
// Corrected latency (from the intended time) shows the stall in every one of
// them; uncorrected latency (from the actual send) in only the first.
func TestCoordinatedOmission(t *testing.T) {
	url := startServer(t, server.Config{Stall: server.Stall{Every: time.Second, For: 400 * time.Millisecond}}).URL()
	p := plan(t, url, `
phases: [{connections: 5, duration: 3s}]
flows:
  - name: loop
    steps:
      - repeat:
          rate: 20
          steps:
            - send: "ping ${seq}"
            - expect: {contains: ping, timeout: 5s}
              name: rtt
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng)
	s := r.Latency.Steps["rtt"]
	c, u := s.Corrected, s.Uncorrected
	t.Logf("corrected p50 %d p90 %d p99 %d µs; uncorrected p50 %d p90 %d p99 %d µs; send lag p90 %d µs",
		c.P50US, c.P90US, c.P99US, u.P50US, u.P90US, u.P99US, r.Latency.SendLag.P90US)
	if c.Count < 150 || c.Count != u.Count {
		t.Fatalf("counts %d and %d", c.Count, u.Count)
	}
	// Two stalls of 400 ms in 3 s: about a quarter of the iterations were
	// due during one, so p90 corrected is well over 100 ms; uncorrected, only
	// one message per connection and stall waited (2 %), so its p90 is small.
	if c.P90US < 100_000 || u.P90US > 50_000 || c.MaxUS < 350_000 {
		t.Fatalf("corrected and uncorrected should be apart: %+v vs %+v", c, u)
	}
	// The late sends are reported as send lag.
	if lag := r.Latency.SendLag; lag.P90US < 100_000 || lag.Count != r.Messages.Sent {
		t.Fatalf("send lag %+v", lag)
	}
}

func TestExpectTimeout(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	for _, tc := range []struct {
		onTimeout string
		wantNext  bool
	}{{"continue", true}, {"fail", false}} {
		t.Run(tc.onTimeout, func(t *testing.T) {
			p := plan(t, url, `
phases: [{arrivals: 3, duration: 1s}, {connections: 0, duration: 1s}]
flows:
  - name: f
    steps:
      - send: one
      - expect: {contains: never, timeout: 300ms, on_timeout: `+tc.onTimeout+`}
        name: missed
      - send: two
      - expect: {contains: two, timeout: 1s}
        name: next
`)
			r, eng := runPlan(t, p, nil)
			noErrors(t, r, eng, "expect_timeout")
			if r.Errors["expect_timeout"] != 3 || r.Messages.TimedOut != 3 || stepCount(r, "missed") != 0 {
				t.Fatalf("errors %v, timed out %d", r.Errors, r.Messages.TimedOut)
			}
			if s := eng.SampleErrors()["expect_timeout"]; !strings.Contains(s, "missed") || !strings.Contains(s, "300ms") {
				t.Fatalf("sample %q should name the step and its timeout", s)
			}
			want := int64(0)
			if tc.wantNext {
				want = 3
			}
			if n := stepCount(r, "next"); n != want {
				t.Fatalf("next step measured %d times, want %d", n, want)
			}
			// Either way the flow ends normally: close 1000.
			if r.CloseCodes[1000] != 3 {
				t.Fatalf("close codes %v", r.CloseCodes)
			}
		})
	}
}

func TestStrictFlow(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	for _, strict := range []bool{false, true} {
		p := plan(t, url, fmt.Sprintf(`
phases: [{arrivals: 2, duration: 1s}, {connections: 0, duration: 500ms}]
flows:
  - name: f
    strict: %v
    steps:
      - send: hello
      - send: world
      - expect: {contains: world, timeout: 1s}
`, strict))
		r, eng := runPlan(t, p, nil)
		// The echo of "hello" is not what the expect waits for.
		if strict {
			noErrors(t, r, eng, "unexpected_message")
			if r.Errors["unexpected_message"] != 2 || r.Messages.Unmatched != 0 || !strings.Contains(eng.SampleErrors()["unexpected_message"], "hello") {
				t.Fatalf("strict: errors %v unmatched %d sample %q", r.Errors, r.Messages.Unmatched, eng.SampleErrors()["unexpected_message"])
			}
		} else {
			noErrors(t, r, eng)
			if r.Messages.Unmatched != 2 {
				t.Fatalf("not strict: unmatched %d", r.Messages.Unmatched)
			}
		}
	}
}

// TestCaptureIntoTemplate logs in, captures a token from the reply (the echo
// returns the request, which carries a token made from the connection
// number) and sends it back in the next message.
func TestCaptureIntoTemplate(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	p := plan(t, url, `
phases: [{arrivals: 5, duration: 1s}, {connections: 0, duration: 500ms}]
flows:
  - name: f
    steps:
      - send: {json: {op: login, session: {token: "tok-${conn}-${rand.str 8}"}}}
      - expect: {json: {op: login}, timeout: 1s, capture: {token: {json: session.token}}}
      - capture: {var: who, regex: 'tok-(\d+)-'}
      - send: {json: {op: subscribe, token: "${var.token}", conn: "${var.who}"}}
      - expect: {regex: '"token":"tok-(\d+)-[a-zA-Z0-9]{8}","conn":"\d+"', timeout: 1s}
        name: subscribed
      - send: "${var.who}=${conn}"
      - expect: {regex: '^(\d+)=(\d+)$', timeout: 1s}
        name: same
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng)
	if stepCount(r, "subscribed") != 5 || stepCount(r, "same") != 5 {
		t.Fatalf("steps %v", r.Latency.Steps)
	}
}

// TestCaptureTokenChecked: the captured value must be the connection's own
// (the last expect only matches "N=N").
func TestCaptureTokenChecked(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	var ids []string
	for i := range 5 {
		ids = append(ids, fmt.Sprintf("%d=%d", i, i))
	}
	p := plan(t, url, `
phases: [{arrivals: 5, duration: 1s}, {connections: 0, duration: 500ms}]
flows:
  - name: f
    steps:
      - send: "id:${conn}"
      - expect: {regex: '^id:\d+$', capture: {me: {regex: 'id:(\d+)'}}, timeout: 1s}
      - send: "${var.me}=${conn}"
      - expect: {regex: '^(`+strings.Join(ids, "|")+`)$', timeout: 1s}
        name: own
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng)
	if stepCount(r, "own") != 5 {
		t.Fatalf("own token matched %d times of 5; steps %v", stepCount(r, "own"), r.Latency.Steps)
	}
}

// TestSleepDistributions measures sleeps through a mark on the sleep: the
// expect after it measures from the sleep's start, so its latency is the
// think time plus one echo.
func TestSleepDistributions(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	for _, tc := range []struct {
		sleep              string
		minMS, meanMS, max int64 // ms; mean within ±35 %; max with 100 ms for a busy machine
	}{
		{"50ms", 50, 50, 150},
		{"{uniform: [20ms, 80ms]}", 20, 50, 180},
		{"{exponential: 40ms, max: 120ms}", 0, 40, 220},
	} {
		t.Run(tc.sleep, func(t *testing.T) {
			p := plan(t, url, `
phases: [{connections: 10, duration: 2s}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - sleep: `+tc.sleep+`
              mark: think
            - send: x
            - expect: {contains: x, since: think, timeout: 1s}
              name: slept
`)
			r, eng := runPlan(t, p, nil)
			noErrors(t, r, eng)
			l := r.Latency.Steps["slept"].Corrected
			mean := int64(l.MeanUS / 1000)
			if l.Count < 150 || l.MinUS < tc.minMS*1000 || l.MaxUS > tc.max*1000 || mean < tc.meanMS*65/100 || mean > tc.meanMS*135/100 {
				t.Fatalf("sleep %s: %d samples, min %dµs mean %dms max %dµs", tc.sleep, l.Count, l.MinUS, mean, l.MaxUS)
			}
		})
	}
}

// TestPhasesFollowTargets ramps up, holds and ramps down, and checks the
// open connections at the end of every 100 ms interval against the plan.
func TestPhasesFollowTargets(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	p := plan(t, url, `
phases:
  - {connections: {from: 0, to: 60}, duration: 1s}
  - {connections: 60, duration: 500ms}
  - {connections: {from: 60, to: 20}, duration: 1s}
  - {connections: 20, duration: 500ms}
flows:
  - name: idle
    steps:
      - repeat:
          steps:
            - sleep: 1s
`)
	var mu sync.Mutex
	var ivs []*stats.Interval
	agg := stats.NewAggregate(time.Now())
	cfg := Config{Plan: p, Interval: 100 * time.Millisecond, OnInterval: func(iv *stats.Interval) {
		mu.Lock()
		ivs = append(ivs, iv)
		agg.Add(iv)
		mu.Unlock()
	}}
	eng, err := New(cfg, stats.NewRecorder(Shards(cfg)))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := eng.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	start := ivs[0].Start
	for _, iv := range ivs[:len(ivs)-1] {
		elapsed := iv.End.Sub(start)
		ph, ok := p.PhaseAt(elapsed)
		if !ok {
			continue
		}
		want := int64(ph.ConnectionsAt(elapsed - ph.Start))
		// A connection takes a tick (10 ms) and a handshake to open, and a
		// close handshake to close: the gauge trails the target a little
		// (6 connections is 100 ms of these ramps), more on a busy machine.
		if got := iv.Open; got > want+3 || got < want-6 {
			t.Fatalf("at %v: %d open, want %d", elapsed.Round(time.Millisecond), got, want)
		}
	}
	r := agg.Result(stats.Header{})
	// The ramp down closed 40 connections normally; the rest closed at the end.
	if c := r.Connections; c.Established != 60 || c.PeakOpen != 60 || r.CloseCodes[1000] != 60 || len(r.Errors) != 0 {
		t.Fatalf("connections %+v codes %v errors %v", c, r.CloseCodes, r.Errors)
	}
}

// TestArrivalsChurn: each arrival runs its flow and leaves; the open count
// stays near rate × flow length, and every connection closes normally.
func TestArrivalsChurn(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	p := plan(t, url, `
phases: [{arrivals: 50, duration: 1s}, {connections: 0, duration: 700ms}]
flows:
  - name: visit
    steps:
      - send: hi
      - expect: {contains: hi, timeout: 1s}
        name: hi
      - sleep: 200ms
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng)
	c := r.Connections
	if c.Established != 50 || c.Closed != 50 || r.CloseCodes[1000] != 50 || stepCount(r, "hi") != 50 {
		t.Fatalf("connections %+v codes %v hi %d", c, r.CloseCodes, stepCount(r, "hi"))
	}
	// 50/s for 0.2 s each: about 10 open at once, never all 50.
	if c.PeakOpen < 5 || c.PeakOpen > 25 {
		t.Fatalf("peak open %d, want about 10", c.PeakOpen)
	}
	if last := r.Timeline[len(r.Timeline)-1]; last.Open != 0 {
		t.Fatalf("%d still open at the end", last.Open)
	}
}

// TestReconnectAfterServerClose: npm ws drops every connection 300 ms after
// it opened (no close frame). The flow goes on at its reconnect step.
func TestReconnectAfterServerClose(t *testing.T) {
	url := testenv.NodeWS(t, "close-after", "--after-ms", "300")
	p := plan(t, url, `
phases: [{connections: 2, duration: 2500ms}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - send: "hi ${conn}"
            - expect: {contains: hi, timeout: 1s}
              name: hi
            - expect: {contains: never, timeout: 5s}   # the server drops us first
            - reconnect: {min: 50ms, max: 200ms, jitter: 0.5}
              name: back
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng, "closed_abnormally")
	back := r.Latency.Steps["back"]
	// Each cycle: 300 ms open, then 25-50 ms of backoff and a handshake.
	if back.Corrected.Count < 8 || r.Connections.Established != back.Corrected.Count+2 {
		t.Fatalf("%d reconnects, %d established", back.Corrected.Count, r.Connections.Established)
	}
	if r.Errors["closed_abnormally"] < back.Corrected.Count || stepCount(r, "hi") < back.Corrected.Count {
		t.Fatalf("errors %v, hi %d", r.Errors, stepCount(r, "hi"))
	}
	// The reconnect's corrected figure includes the backoff, the
	// uncorrected one only the successful handshake.
	if back.Corrected.MinUS < 25_000 || back.Uncorrected.MaxUS > back.Corrected.MaxUS {
		t.Fatalf("reconnect latency %+v / %+v", back.Corrected, back.Uncorrected)
	}
	// Only two logical connections: a reconnect is not a new one.
	if r.Connections.PeakOpen != 2 {
		t.Fatalf("peak open %d", r.Connections.PeakOpen)
	}
}

// TestReconnectStep: a flow closes with its own code and reconnects.
func TestReconnectStep(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	p := plan(t, url, `
phases: [{arrivals: 2, duration: 1s}, {connections: 0, duration: 1s}]
flows:
  - name: f
    steps:
      - send: a
      - expect: {contains: a, timeout: 1s}
      - close: {code: 4000, reason: later}
      - reconnect: {min: 20ms, max: 40ms}
        name: again
      - send: b
      - expect: {contains: b, timeout: 1s}
        name: b
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng)
	if r.CloseCodes[4000] != 2 || r.CloseCodes[1000] != 2 || stepCount(r, "again") != 2 || stepCount(r, "b") != 2 {
		t.Fatalf("codes %v steps %v", r.CloseCodes, r.Latency.Steps)
	}
}

func TestFlowTLSAndCompression(t *testing.T) {
	s := startServer(t, server.Config{TLSSelfSigned: true})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, s.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	const flow = `
flows:
  - name: f
    steps:
      - repeat:
          rate: 10
          steps:
            - send: "x ${seq}"
            - expect: {contains: x, timeout: 1s}
              name: rtt
`
	for _, tlsOpts := range []string{"{insecure: true}", "{ca_file: " + ca + "}", "{ca_file: " + ca + ", server_name: localhost}"} {
		r, eng := runPlan(t, plan(t, s.URL(), "phases: [{connections: 3, duration: 1s}]\ntls: "+tlsOpts+flow), nil)
		noErrors(t, r, eng)
		if r.Connections.Established != 3 || stepCount(r, "rtt") < 20 {
			t.Fatalf("tls %s: %+v rtt %d", tlsOpts, r.Connections, stepCount(r, "rtt"))
		}
	}
	// The certificate does not name example.com.
	r, _ := runPlan(t, plan(t, s.URL(), "phases: [{connections: 2, duration: 500ms}]\ntls: {ca_file: "+ca+", server_name: example.com}"+flow), nil)
	if r.Connections.Established != 0 || r.Errors["tls"] == 0 {
		t.Fatalf("wrong server name accepted: %+v %v", r.Connections, r.Errors)
	}

	// permessage-deflate against npm ws.
	url := testenv.NodeWS(t, "echo", "--deflate")
	r, eng := runPlan(t, plan(t, url, "phases: [{connections: 3, duration: 1s}]\ncompression: true"+flow), nil)
	noErrors(t, r, eng)
	deflate := 0
	eng.forEachConn(func(c *conn) {
		if c.deflt {
			deflate++
		}
	})
	if deflate != 3 {
		t.Fatalf("permessage-deflate negotiated on %d of 3 connections", deflate)
	}
	if stepCount(r, "rtt") < 20 || stepCount(r, "rtt") != r.Messages.Received {
		t.Fatalf("compressed: rtt %d received %d", stepCount(r, "rtt"), r.Messages.Received)
	}
}

// TestReconnectGivesUp: the target goes away; each flow's reconnect tries
// its attempts and gives up; refilling the level backs off meanwhile.
func TestReconnectGivesUp(t *testing.T) {
	s := startServer(t, server.Config{})
	p := plan(t, s.URL(), `
phases: [{connections: 2, duration: 2s}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - expect: {contains: never, timeout: 10s}
            - reconnect: {min: 20ms, max: 40ms, attempts: 3}
`)
	go func() {
		time.Sleep(500 * time.Millisecond)
		_ = s.Shutdown(context.Background())
	}()
	// While the server shuts down, an attempt may also be reset or hang: a
	// short handshake timeout turns a hang into a failed attempt.
	r, eng := runPlan(t, p, func(c *Config) { c.HandshakeTimeout = 200 * time.Millisecond })
	transient := []string{"reset", "timeout", "closed_during_handshake", "http_503"}
	noErrors(t, r, eng, append(transient, "server_close_1001", "refused", "reconnect_gave_up")...)
	if r.Errors["reconnect_gave_up"] != 2 || r.Errors["server_close_1001"] != 2 {
		t.Fatalf("errors %v", r.Errors)
	}
	// 2 × 3 attempts, then new connections to refill the level, backing
	// off: tens of attempts in 1.5 s, not the hundreds of a 10 ms loop.
	if n := r.Connections.Failed; n < 6 || n > 40 {
		t.Fatalf("%d failed attempts; errors %v", n, r.Errors)
	}
}

func TestPing(t *testing.T) {
	url := testenv.NodeWS(t, "echo")
	p := plan(t, url, `
phases: [{connections: 4, duration: 1s}]
flows:
  - name: f
    steps:
      - repeat:
          rate: 20
          steps:
            - ping: {data: "p${seq}", timeout: 500ms}
              name: pong
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng)
	if n := stepCount(r, "pong"); n < 60 || r.Messages.Sent != 0 {
		t.Fatalf("%d pongs, %d messages", n, r.Messages.Sent)
	}
}

// TestReconnectFromNestedRepeat: the connection drops inside an inner
// repeat; the flow leaves it and goes on at the outer repeat's reconnect
// (the shape docs/scenarios.md recommends).
func TestReconnectFromNestedRepeat(t *testing.T) {
	url := testenv.NodeWS(t, "close-after", "--after-ms", "200")
	p := plan(t, url, `
phases: [{connections: 1, duration: 1500ms}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - send: sub
            - repeat:
                for: 1h
                steps:
                  - expect: {contains: tick, timeout: 90s}
            - reconnect: {min: 10ms, max: 20ms}
              name: resubscribe
`)
	r, eng := runPlan(t, p, nil)
	noErrors(t, r, eng, "closed_abnormally")
	// Cycles of 200 ms open and 5-20 ms away: five or more in 1.5 s.
	if n := stepCount(r, "resubscribe"); n < 5 || r.Messages.Sent != n+1 || r.Messages.Unmatched != r.Messages.Received {
		t.Fatalf("%d reconnects, %d subscriptions sent, %d unmatched of %d", n, r.Messages.Sent, r.Messages.Unmatched, r.Messages.Received)
	}
}

// TestReconnectWhileWaitingForPacedIteration: the server drops the
// connection while the flow waits for its next paced iteration (an intended
// time in the future). The reconnect then starts when the loss is seen, so
// its corrected latency (backoff included) is never below the uncorrected
// one (the successful handshake alone).
func TestReconnectWhileWaitingForPacedIteration(t *testing.T) {
	url := testenv.NodeWS(t, "close-after", "--after-ms", "300")
	p := plan(t, url, `
phases: [{connections: 2, duration: 2500ms}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - repeat:
                rate: 2
                for: 24h
                steps:
                  - send: "hi ${conn}"
                  - expect: {contains: hi, timeout: 1s}
            - reconnect: {min: 50ms, max: 200ms, jitter: 0.5}
              name: back
`)
	r, _ := runPlan(t, p, nil)
	back := r.Latency.Steps["back"]
	if back.Corrected.Count < 2 {
		t.Fatalf("%d reconnects", back.Corrected.Count)
	}
	if back.Corrected.MinUS < 25_000 || back.Corrected.P50US < back.Uncorrected.P50US {
		t.Fatalf("reconnect corrected %+v below uncorrected %+v", back.Corrected, back.Uncorrected)
	}
}
