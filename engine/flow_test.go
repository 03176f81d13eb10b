package engine

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

// plan parses a scenario for target and applies it as wsload run would.
func plan(t *testing.T, target, src string) *scenario.Plan {
	t.Helper()
	return planAt(t, "test.yaml", target, src)
}

// planAt is plan for a scenario that lives at file: the files it reads are in file's directory.
func planAt(t *testing.T, file, target, src string) *scenario.Plan {
	t.Helper()
	p, err := scenario.Parse(file, []byte(src))
	if err != nil {
		t.Fatalf("scenario:\n%v", err)
	}
	if err := p.Override(scenario.Overrides{Target: target}); err != nil {
		t.Fatalf("override: %v", err)
	}
	return p
}

func stepCount(r *stats.Result, name string) int64 { return r.Latency.Steps[name].Corrected.Count }

// TestFlowSendExpect: a paced send→expect loop on 10 connections; every
// message is answered and measured once.
func TestFlowSendExpect(t *testing.T) {
	s := startServer(t, server.Config{})
	p := plan(t, s.URL(), `
phases: [{connections: 10, duration: 2m}]
flows:
  - name: echo
    steps:
      - repeat:
          rate: 20
          count: 20
          steps:
            - send: {json: {id: "${conn}-${seq}"}}
            - expect: {regex: '"id":"\d+-\d+"', timeout: 2m}
              name: rtt
      - sleep: 1h                 # stay: a flow that ends is replaced
`)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.steps("rtt") == 200 }})
	t.Logf("sent %d received %d steps %v errors %v", r.Messages.Sent, r.Messages.Received, stepCount(r, "rtt"), r.Errors)
	noErrors(t, r, eng)
	if c := r.Connections; c.Attempted != 10 || c.Established != 10 || c.Closed != 10 || r.CloseCodes[1000] != 10 {
		t.Fatalf("connections %+v close codes %v", c, r.CloseCodes)
	}
	if n := stepCount(r, "rtt"); n != 200 || r.Messages.Sent != 200 || r.Messages.Received != 200 || r.Messages.TimedOut != 0 {
		t.Fatalf("rtt count %d, received %d, sent %d, timed out %d", n, r.Messages.Received, r.Messages.Sent, r.Messages.TimedOut)
	}
	// 20 iterations at 20/s: the last is due 19/20 s after the first, and
	// no send goes out before it is due.
	if end := lastPoint(r, func(pt stats.Point) bool { return pt.Sent > 0 }); end < 950*time.Millisecond {
		t.Fatalf("the last send went out by %v: the loop did not keep its pace", end)
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
			// 20 connections: a 0.45 s ramp, then the hold (stretched to the
			// deadline) until every connection is up and 400 round trips
			// are measured; 10 msg/s each.
			p := loadScript(t, "echo.yaml", url, 20, 3*time.Second)
			stretch(p, 1, flowDeadline)
			relaxTimeouts(p)
			r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool {
				return w.tot.Established == 20 && w.steps("echo.rtt") >= 400
			}})
			noErrors(t, r, eng)
			c := r.Connections
			if c.Attempted != 20 || c.Established != 20 || c.Closed != 20 || r.CloseCodes[1000] != 20 || c.PeakOpen != 20 {
				t.Fatalf("connections %+v close codes %v", c, r.CloseCodes)
			}
			// Every message sent was answered (the end of the run waits for
			// replies due) and measured once.
			n := stepCount(r, "echo.rtt")
			if n < 400 || n != r.Messages.Received || n != r.Messages.Sent || r.Messages.Unmatched != 0 || r.Messages.TimedOut != 0 {
				t.Fatalf("echo.rtt %d of %d sent, %d received, %d unmatched, %d timed out",
					n, r.Messages.Sent, r.Messages.Received, r.Messages.Unmatched, r.Messages.TimedOut)
			}
		})
	}
}

// gateStep is an expect for the test's start signal, to put in a flow.
func gateStep(t *testing.T, name string) scenario.Step {
	t.Helper()
	g := plan(t, "ws://127.0.0.1:1/", `
phases: [{connections: 1, duration: 1s}]
flows:
  - name: g
    steps:
      - expect: {contains: wsload-test-go, timeout: 2m}
        name: `+name+`
`)
	return g.Flows[0].Steps[0]
}

// TestScriptChat runs the chat room against two broadcast servers: ours and
// npm's ws. Every stamped message a publisher sends reaches every listener.
//
// The publishers wait for a start signal from the test, sent once the
// test's own client has seen every connection's join (so the server has
// registered all of them), and then publish 3 messages each: every
// listener measures each of them exactly once.
func TestScriptChat(t *testing.T) {
	for _, target := range []string{"serve", "node"} {
		t.Run(target, func(t *testing.T) {
			var url string
			if target == "serve" {
				url = startServer(t, server.Config{Broadcast: true}).URL()
			} else {
				url = testenv.NodeWS(t, "broadcast")
			}
			const conns, each = 40, 3
			p := loadScript(t, "chat.yaml", url, conns, 3*time.Second)
			stretch(p, 1, flowDeadline)
			relaxTimeouts(p)
			pubs := 0
			for id := range conns {
				if p.Flows[p.FlowIndex(uint64(id))].Name == "publisher" {
					pubs++
				}
			}
			for i := range p.Flows {
				if f := &p.Flows[i]; f.Name == "publisher" {
					// join, [wait for the signal], sleep, publish each, stay.
					f.Steps = slices.Insert(f.Steps, 1, gateStep(t, "chat.go"))
					f.Steps[len(f.Steps)-1].Repeat.Count = each
					f.Steps = append(f.Steps, scenario.Step{Kind: scenario.StepSleep, Name: "stay", MarkSlot: -1,
						Sleep: &scenario.Distribution{Kind: scenario.DistFixed, Fixed: time.Hour}})
				}
			}
			var mu sync.Mutex
			joins, probed := 0, false
			cl := dialClient(t, url, func(msg string) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case msg == "wsload-test-probe":
					probed = true
				case strings.Contains(msg, `"type":"join"`):
					joins++
				}
			})
			// Our own message back: the server has registered the client,
			// so it sees every join from now on.
			cl.send(t, "wsload-test-probe")
			if !waitFor(func() bool { mu.Lock(); defer mu.Unlock(); return probed }) {
				t.Fatal("the test client's probe never came back")
			}
			listeners := conns - pubs
			want := int64(pubs * each * listeners)
			r, eng := runUntil(t, p, runOpts{
				onStart: func(*Engine) {
					if waitFor(func() bool { mu.Lock(); defer mu.Unlock(); return joins == conns }) {
						cl.send(t, "wsload-test-go")
					}
				},
				done: func(w waitRun) bool { return w.steps("chat.delivery") == want },
			})
			noErrors(t, r, eng)
			if r.Connections.Established != conns || r.Connections.Attempted != conns {
				t.Fatalf("connections %+v", r.Connections)
			}
			got := stepCount(r, "chat.delivery")
			if pubs == 0 || got != want || stepCount(r, "chat.go") != int64(pubs) || r.Messages.Sent != int64(conns+pubs*each) {
				t.Fatalf("%d publishers (%d started), %d deliveries measured (want %d × %d to each of %d listeners); sent %d received %d",
					pubs, stepCount(r, "chat.go"), got, pubs, each, listeners, r.Messages.Sent, r.Messages.Received)
			}
			d := r.Latency.Steps["chat.delivery"].Corrected
			if d.P50US <= 0 || d.P99US < d.P50US || d.MaxUS < d.P99US {
				t.Fatalf("delivery latency %+v", d)
			}
		})
	}
}

func TestScriptLogin(t *testing.T) {
	t.Setenv("API_KEY", "k-123")
	ps := startProtoServer(t, "k-123")
	// 20 arrivals per second for 2 s: 40 in all; each logs in, subscribes
	// and takes updates (every 100 ms) until the run ends.
	p := loadScript(t, "login.yaml", ps.URL, 0, 2*time.Second)
	hold(p, 0)
	relaxTimeouts(p)
	const n = 40
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool {
		return w.steps("login.welcome") == n && w.steps("login.to_subscribed") == n && w.steps("login.update") >= 100
	}})
	noErrors(t, r, eng)
	if c := r.Connections; c.Attempted != n || c.Established != n || c.Closed != n || r.CloseCodes[1000] != n {
		t.Fatalf("connections %+v codes %v", c, r.CloseCodes)
	}
	if ps.logins.Load() != n || ps.badUsers.Load() != 0 || ps.subBad.Load() != 0 || ps.subOK.Load() != n {
		t.Fatalf("server saw %d logins (%d bad users), %d good and %d bad subscriptions", ps.logins.Load(), ps.badUsers.Load(), ps.subOK.Load(), ps.subBad.Load())
	}
	if w, s := stepCount(r, "login.welcome"), stepCount(r, "login.to_subscribed"); w != n || s != n {
		t.Fatalf("%d logins: %d welcomes, %d subscriptions measured", n, w, s)
	}
	if u := stepCount(r, "login.update"); u < 100 {
		t.Fatalf("only %d updates measured", u)
	}
	// login.to_subscribed measures from the login mark: at least the welcome's round trip.
	st := r.Latency.Steps
	if st["login.to_subscribed"].Corrected.MinUS < st["login.welcome"].Corrected.MinUS {
		t.Fatalf("to_subscribed min %dµs < welcome min %dµs", st["login.to_subscribed"].Corrected.MinUS, st["login.welcome"].Corrected.MinUS)
	}
	for i := range n {
		if id := fmt.Sprintf("wsload-%d", i); !func() bool { _, ok := ps.clients.Load(id); return ok }() {
			t.Fatalf("no X-Client: %s header seen", id)
		}
	}
}

func TestScriptSubscribe(t *testing.T) {
	ps := startProtoServer(t, "")
	p := loadScript(t, "subscribe.yaml", ps.URL, 20, 2*time.Second)
	// Think times of 25 s do not fit a test: ping every 100 ms instead.
	p.Flows[0].Steps[2].Repeat.Steps[0].Sleep = &scenario.Distribution{Kind: scenario.DistFixed, Fixed: 100 * time.Millisecond}
	stretch(p, 1, flowDeadline)
	relaxTimeouts(p)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool {
		return w.tot.Established == 20 && w.steps("subscribe.ack") == 20 && w.steps("subscribe.ping") >= 100
	}})
	noErrors(t, r, eng)
	if n := stepCount(r, "subscribe.ack"); n != 20 || r.Connections.Established != 20 || r.Connections.Attempted != 20 || ps.subOK.Load() != 20 {
		t.Fatalf("%d acks for %d connections (%+v), server %d", n, r.Connections.Established, r.Connections, ps.subOK.Load())
	}
	// The end of the run waits for the pong of every ping sent.
	if n := stepCount(r, "subscribe.ping"); n < 100 || n != ps.pings.Load() {
		t.Fatalf("%d pongs measured, server answered %d pings", n, ps.pings.Load())
	}
}

// replaySpan is the offset of the last client message of the replay step
// st at its speed: no connection's replay sends it earlier than that.
func replaySpan(st *scenario.Step) time.Duration {
	var last time.Duration
	for _, m := range st.Replay.Messages {
		if m.Dir == scenario.DirSend {
			last = max(last, m.Offset)
		}
	}
	return time.Duration(float64(last) / st.Replay.Speed)
}

func TestScriptReplay(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	// The HAR holds 5 client messages over 3 s (1.5 s at speed 2) and 5
	// server messages; the echo returns each client message. 5 arrivals a
	// second for 2 s: 10 replays, 50 replies. The script sleeps 1 s for the
	// last replies: here the run waits for them instead.
	p := loadScript(t, "replay.yaml", url, 0, 2*time.Second)
	p.Flows[0].Steps[1].Sleep = &scenario.Distribution{Kind: scenario.DistFixed, Fixed: time.Hour}
	hold(p, 0)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.steps("browser.replay@19") == 50 }})
	noErrors(t, r, eng)
	if n := stepCount(r, "browser.replay@19"); n != 50 || n != r.Messages.Received || r.Messages.Sent != 50 || r.Messages.TimedOut != 0 {
		t.Fatalf("%d replies measured, %d received, %d sent, %d timed out", n, r.Messages.Received, r.Messages.Sent, r.Messages.TimedOut)
	}
	if c := r.Connections; c.Established != 10 || c.Closed != 10 || r.CloseCodes[1000] != 10 {
		t.Fatalf("connections %+v codes %v", c, r.CloseCodes)
	}
	// The 10th arrival is due at 1.8 s; its replay's last message no
	// earlier than the capture's span after that.
	if end, min := lastPoint(r, func(pt stats.Point) bool { return pt.Sent > 0 }), 1800*time.Millisecond+replaySpan(&p.Flows[0].Steps[0]); end < min {
		t.Fatalf("the last replayed message went out by %v, before %v", end, min)
	}

	// Arrivals, each replaying once; the run waits for every reply. The scenario lives beside
	// the capture it replays (a scenario reads files in its own directory only).
	p = planAt(t, "../scripts/scenarios/replay-arrivals.yaml", url, `
phases: [{arrivals: 4, duration: 1s}]
flows:
  - name: r
    steps:
      - replay: {file: sample.har, url_contains: /socket, speed: 2}
        name: replay
      - sleep: 1h
`)
	hold(p, 0)
	r, eng = runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.steps("replay") == 20 }})
	noErrors(t, r, eng)
	if c := r.Connections; c.Established != 4 || r.CloseCodes[1000] != 4 {
		t.Fatalf("connections %+v codes %v", c, r.CloseCodes)
	}
	if r.Messages.Sent != 20 || stepCount(r, "replay") != 20 || r.Messages.Received != 20 || r.Messages.TimedOut != 0 {
		t.Fatalf("sent %d, replies measured %d, timed out %d", r.Messages.Sent, stepCount(r, "replay"), r.Messages.TimedOut)
	}
	// Sends follow the capture's spacing, never ahead of it: the 4th
	// arrival is due at 0.75 s, its last message a span later. Each
	// replayed send records its lag.
	if end, min := lastPoint(r, func(pt stats.Point) bool { return pt.Sent > 0 }), 750*time.Millisecond+replaySpan(&p.Flows[0].Steps[0]); end < min {
		t.Fatalf("the last replayed message went out by %v, before %v", end, min)
	}
	if lag := r.Latency.SendLag; lag.Count != 20 {
		t.Fatalf("send lag %+v", lag)
	}
}

// TestFanOut2000 measures one-to-many delivery: one publisher, 2,000
// subscribers of a broadcast server; each stamped message is measured at
// every subscriber from the publisher's stamp. The publisher starts when
// the test has seen the server register all 2,001 connections.
func TestFanOut2000(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	s := startServer(t, server.Config{Broadcast: true})
	url := s.URL()
	const conns = 2001
	p := plan(t, url, `
phases: [{connections: 2001, duration: 2m}]
flows:
  - name: subscriber
    weight: 2000
    steps:
      - repeat:
          steps:
            - expect: {stamped: true, timeout: 2m}
              name: fanout
  - name: publisher
    weight: 1
    steps:
      - expect: {contains: wsload-test-go, timeout: 2m}   # everyone is subscribed
        name: go
      - repeat:
          count: 3
          rate: 4
          steps:
            - send: {json: {type: news}, stamp: true}
      - sleep: 1h                 # stay: a flow that ends is replaced
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
	cl := dialClient(t, url, nil)
	r, eng := runUntil(t, p, runOpts{
		tweak: func(c *Config) { c.ExtraFDs = conns + 1 },
		onStart: func(*Engine) {
			if waitFor(func() bool { return s.Conns() == conns+1 }) {
				cl.send(t, "wsload-test-go")
			}
		},
		done: func(w waitRun) bool { return w.steps("fanout") == 3*(conns-1) },
	})
	noErrors(t, r, eng)
	if r.Connections.Established != conns || r.Connections.Attempted != conns {
		t.Fatalf("connections %+v", r.Connections)
	}
	f := r.Latency.Steps["fanout"].Corrected
	if r.Messages.Sent != 3 || stepCount(r, "go") != 1 || f.Count != 3*(conns-1) {
		t.Fatalf("%d messages published, %d deliveries measured, want %d", r.Messages.Sent, f.Count, 3*(conns-1))
	}
	if f.P50US <= 0 || f.P99US < f.P50US || f.MaxUS < f.P99US {
		t.Fatalf("fan-out latency %+v", f)
	}
	t.Logf("fan-out to %d subscribers: p50 %dµs p90 %dµs p99 %dµs max %dµs", conns-1, f.P50US, f.P90US, f.P99US, f.MaxUS)
}

// TestCoordinatedOmission: a send→expect loop at 20/s per connection against
// a server that stalls 400 ms every second. During a stall the loop cannot
// send (it waits for the reply), so the iterations due meanwhile go out late.
// Corrected latency (from the intended time) shows the stall in every one of
// them; uncorrected latency (from the actual send) in only the first.
//
// Machine speed changes every figure here, but not how they relate: for
// each round trip, corrected - uncorrected is exactly that send's lag, so
// the means differ by the mean send lag, which the stalls make large.
func TestCoordinatedOmission(t *testing.T) {
	url := startServer(t, server.Config{Stall: server.Stall{Every: time.Second, For: 400 * time.Millisecond}}).URL()
	p := plan(t, url, `
phases: [{connections: 5, duration: 2m}]
flows:
  - name: loop
    steps:
      - repeat:
          rate: 20
          steps:
            - send: "ping ${seq}"
            - expect: {contains: ping, timeout: 2m}
              name: rtt
`)
	// Loop for 3 s once all five are up: that spans at least two stalls.
	var up time.Duration
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool {
		if up == 0 && w.tot.Established == 5 {
			up = w.elapsed
		}
		return up > 0 && w.elapsed >= up+3*time.Second && w.steps("rtt") >= 150
	}})
	noErrors(t, r, eng)
	s := r.Latency.Steps["rtt"]
	c, u, lag := s.Corrected, s.Uncorrected, r.Latency.SendLag
	t.Logf("corrected mean %.0f p50 %d p90 %d p99 %d µs; uncorrected mean %.0f p50 %d p90 %d p99 %d µs; send lag mean %.0f p90 %d µs",
		c.MeanUS, c.P50US, c.P90US, c.P99US, u.MeanUS, u.P50US, u.P90US, u.P99US, lag.MeanUS, lag.P90US)
	if c.Count < 150 || c.Count != u.Count || c.Count != r.Messages.Sent || lag.Count != r.Messages.Sent {
		t.Fatalf("counts %d and %d, %d sent, %d send lags", c.Count, u.Count, r.Messages.Sent, lag.Count)
	}
	// Each connection has an iteration due in the first 50 ms of a stall;
	// its reply is held to the stall's end: 350 ms or more from its
	// intended time, however late it went out.
	if c.MaxUS < 350_000 {
		t.Fatalf("corrected max %dµs: the stall is missing", c.MaxUS)
	}
	// About a third of the iterations are due during a stall, most of them
	// 100 ms or more before it ends: they go out that late.
	if lag.P90US < 100_000 {
		t.Fatalf("send lag %+v: the late sends are missing", lag)
	}
	// Corrected = uncorrected + send lag, sample by sample (to the
	// histograms' resolution); without the correction the two would be
	// the same.
	diff := c.MeanUS - u.MeanUS
	if tol := 0.01*(c.MeanUS+u.MeanUS) + 100; diff < lag.MeanUS-tol || diff > lag.MeanUS+tol {
		t.Fatalf("corrected mean %.0fµs - uncorrected mean %.0fµs = %.0fµs, want the mean send lag %.0fµs", c.MeanUS, u.MeanUS, diff, lag.MeanUS)
	}
	if c.P50US < u.P50US || c.P90US < u.P90US || c.P99US < u.P99US {
		t.Fatalf("corrected %+v below uncorrected %+v", c, u)
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
phases: [{arrivals: 3, duration: 1s}]
flows:
  - name: f
    steps:
      - send: one
      - expect: {contains: never, timeout: 300ms, on_timeout: `+tc.onTimeout+`}
        name: missed
      - send: two
      - expect: {contains: two, timeout: 2m}
        name: next
`)
			hold(p, 0)
			r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.tot.Closed == 3 }})
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
			if r.Connections.Established != 3 || r.CloseCodes[1000] != 3 {
				t.Fatalf("connections %+v close codes %v", r.Connections, r.CloseCodes)
			}
			// The third arrival is due at 2/3 s and waits 300 ms before
			// its flow can end.
			if end := lastPoint(r, func(pt stats.Point) bool { return pt.Closed > 0 }); end < 966*time.Millisecond {
				t.Fatalf("the last flow ended by %v: the timeout fired early", end)
			}
		})
	}
}

func TestStrictFlow(t *testing.T) {
	url := startServer(t, server.Config{})
	for _, strict := range []bool{false, true} {
		p := plan(t, url.URL(), fmt.Sprintf(`
phases: [{arrivals: 2, duration: 1s}]
flows:
  - name: f
    strict: %v
    steps:
      - send: hello
      - send: world
      - expect: {contains: world, timeout: 2m}
        name: world
`, strict))
		hold(p, 0)
		r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.tot.Closed == 2 }})
		if r.Connections.Established != 2 || r.CloseCodes[1000] != 2 || stepCount(r, "world") != 2 {
			t.Fatalf("strict %v: connections %+v codes %v steps %v", strict, r.Connections, r.CloseCodes, stepCounts(r))
		}
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
phases: [{arrivals: 5, duration: 1s}]
flows:
  - name: f
    steps:
      - send: {json: {op: login, session: {token: "tok-${conn}-${rand.str 8}"}}}
      - expect: {json: {op: login}, timeout: 2m, capture: {token: {json: session.token}}}
      - capture: {var: who, regex: 'tok-(\d+)-'}
      - send: {json: {op: subscribe, token: "${var.token}", conn: "${var.who}"}}
      - expect: {regex: '"token":"tok-(\d+)-[a-zA-Z0-9]{8}","conn":"\d+"', timeout: 2m}
        name: subscribed
      - send: "${var.who}=${conn}"
      - expect: {regex: '^(\d+)=(\d+)$', timeout: 2m}
        name: same
`)
	hold(p, 0)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.tot.Closed == 5 }})
	noErrors(t, r, eng)
	if stepCount(r, "subscribed") != 5 || stepCount(r, "same") != 5 || r.Connections.Established != 5 || r.CloseCodes[1000] != 5 {
		t.Fatalf("steps %v connections %+v codes %v", stepCounts(r), r.Connections, r.CloseCodes)
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
phases: [{arrivals: 5, duration: 1s}]
flows:
  - name: f
    steps:
      - send: "id:${conn}"
      - expect: {regex: '^id:\d+$', capture: {me: {regex: 'id:(\d+)'}}, timeout: 2m}
      - send: "${var.me}=${conn}"
      - expect: {regex: '^(`+strings.Join(ids, "|")+`)$', timeout: 2m}
        name: own
`)
	hold(p, 0)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.tot.Closed == 5 }})
	noErrors(t, r, eng)
	if stepCount(r, "own") != 5 || r.Connections.Established != 5 || r.CloseCodes[1000] != 5 {
		t.Fatalf("own token matched %d times of 5; steps %v connections %+v", stepCount(r, "own"), stepCounts(r), r.Connections)
	}
}

// TestSleepDistributions measures sleeps through a mark on the sleep: the
// expect after it measures from the sleep's start, so its latency is the
// think time plus one echo. With a fixed seed the test draws the same
// think times as the connections: the measured latencies are at least
// those, quantile by quantile, however busy the machine.
func TestSleepDistributions(t *testing.T) {
	url := startServer(t, server.Config{})
	const conns, each, seed = 10, 30, 42
	for _, sleep := range []string{"50ms", "{uniform: [20ms, 80ms]}", "{exponential: 40ms, max: 120ms}"} {
		t.Run(sleep, func(t *testing.T) {
			p := plan(t, url.URL(), `
phases: [{connections: 10, duration: 2m}]
flows:
  - name: f
    steps:
      - repeat:
          count: 30
          steps:
            - sleep: `+sleep+`
              mark: think
            - send: x
            - expect: {contains: x, since: think, timeout: 2m}
              name: slept
      - sleep: 1h                 # stay: a flow that ends is replaced
`)
			r, eng := runUntil(t, p, runOpts{
				engine: func(e *Engine) { e.seed = seed },
				done:   func(w waitRun) bool { return w.steps("slept") == conns*each },
			})
			noErrors(t, r, eng)
			if r.Connections.Established != conns {
				t.Fatalf("connections %+v", r.Connections)
			}
			d := p.Flows[0].Steps[0].Repeat.Steps[0].Sleep
			var drawn []time.Duration
			for id := range conns {
				rng := rand.New(rand.NewPCG(uint64(id), seed))
				for range each {
					drawn = append(drawn, d.Sample(rng))
				}
			}
			slices.Sort(drawn)
			var sum time.Duration
			for _, v := range drawn {
				sum += v
			}
			at := func(q float64) int64 { return drawn[int(math.Ceil(q*float64(len(drawn))))-1].Microseconds() }
			l := r.Latency.Steps["slept"].Corrected
			t.Logf("sleep %s: drawn min %dµs p50 %dµs p90 %dµs mean %dµs; measured min %dµs p50 %dµs p90 %dµs mean %.0fµs",
				sleep, drawn[0].Microseconds(), at(0.5), at(0.9), (sum / time.Duration(len(drawn))).Microseconds(), l.MinUS, l.P50US, l.P90US, l.MeanUS)
			// 1 % for the histogram's resolution.
			low := func(got, want int64) bool { return float64(got) < 0.99*float64(want) }
			if l.Count != conns*each || low(l.MinUS, drawn[0].Microseconds()) || low(l.P50US, at(0.5)) || low(l.P90US, at(0.9)) ||
				low(l.P99US, at(0.99)) || low(l.MaxUS, drawn[len(drawn)-1].Microseconds()) || low(int64(l.MeanUS), (sum/time.Duration(len(drawn))).Microseconds()) {
				t.Fatalf("sleep %s: %d samples %+v, shorter than the think times drawn", sleep, l.Count, l)
			}
		})
	}
}

// TestPhasesFollowTargets ramps up, holds and ramps down. The test moves
// the plan's clock itself, 50 ms at a time, and at every step waits until
// the open connections reach the plan's level; meanwhile their number
// stays between the previous level and the new one: never more opened
// than asked for, never more closed.
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
	var clock atomic.Int64
	var walked atomic.Bool
	target := func(at time.Duration) int {
		ph, _ := p.PhaseAt(at) // at is before the plan's end
		return ph.ConnectionsAt(at - ph.Start)
	}
	var failure atomic.Value
	count := func(e *Engine) (open, other int) {
		e.forEachConn(func(c *conn) {
			c.mu.Lock()
			switch c.state {
			case stOpen:
				open++
			case stClosed:
			default:
				other++
			}
			c.mu.Unlock()
		})
		return open, other
	}
	walk := func(e *Engine) {
		defer walked.Store(true)
		prev := 0
		for at := time.Duration(0); at < p.Duration(); at += 50 * time.Millisecond {
			clock.Store(int64(at))
			want := target(at)
			lo, hi := min(prev, want), max(prev, want)
			ok := waitFor(func() bool {
				open, other := count(e)
				if open < lo || open > hi {
					failure.Store(fmt.Sprintf("at %v: %d open, want between %d and %d", at, open, lo, hi))
					return true
				}
				return open == want && other == 0 && e.active.Load() == int64(want)
			})
			if f := failure.Load(); f != nil || !ok {
				if !ok {
					failure.Store(fmt.Sprintf("at %v: the open connections never reached %d", at, want))
				}
				return
			}
			prev = want
		}
	}
	r, eng := runUntil(t, p, runOpts{
		tweak:   func(c *Config) { c.Duration = flowDeadline },
		engine:  func(e *Engine) { e.planClock = func() time.Duration { return time.Duration(clock.Load()) } },
		onStart: walk,
		done:    func(waitRun) bool { return walked.Load() },
	})
	if f := failure.Load(); f != nil {
		t.Fatal(f)
	}
	// The ramp down closed 40 connections normally; the rest closed at the end.
	if c := r.Connections; c.Attempted != 60 || c.Established != 60 || c.PeakOpen != 60 || c.Closed != 60 || r.CloseCodes[1000] != 60 || len(r.Errors) != 0 {
		t.Fatalf("connections %+v codes %v errors %v", c, r.CloseCodes, r.Errors)
	}
	noErrors(t, r, eng)
}

// TestArrivalsChurn: each arrival runs its flow and leaves: every
// connection closes normally once its flow is over, none is replaced.
func TestArrivalsChurn(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	p := plan(t, url, `
phases: [{arrivals: 50, duration: 1s}]
flows:
  - name: visit
    steps:
      - send: hi
      - expect: {contains: hi, timeout: 2m}
        name: hi
      - sleep: 200ms
`)
	hold(p, 0)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.tot.Closed == 50 }})
	noErrors(t, r, eng)
	c := r.Connections
	if c.Attempted != 50 || c.Established != 50 || c.Closed != 50 || r.CloseCodes[1000] != 50 || stepCount(r, "hi") != 50 {
		t.Fatalf("connections %+v codes %v hi %d", c, r.CloseCodes, stepCount(r, "hi"))
	}
	if c.PeakOpen < 1 || c.PeakOpen > 50 {
		t.Fatalf("peak open %d", c.PeakOpen)
	}
	if last := r.Timeline[len(r.Timeline)-1]; last.Open != 0 {
		t.Fatalf("%d still open at the end", last.Open)
	}
	// The last arrival is due at 0.98 s and stays 200 ms.
	if end := lastPoint(r, func(pt stats.Point) bool { return pt.Closed > 0 }); end < 1180*time.Millisecond {
		t.Fatalf("the last visit ended by %v", end)
	}
}

// TestReconnectAfterServerClose: npm ws drops every connection 300 ms after
// it opened (no close frame). The flow goes on at its reconnect step.
func TestReconnectAfterServerClose(t *testing.T) {
	url := testenv.NodeWS(t, "close-after", "--after-ms", "300")
	p := plan(t, url, `
phases: [{connections: 2, duration: 2m}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - send: "hi ${conn}"
            - expect: {contains: hi, timeout: 2m}
              name: hi
            - expect: {contains: never, timeout: 2m}   # the server drops us first
            - reconnect: {min: 50ms, max: 200ms, jitter: 0.5}
              name: back
`)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.steps("back") >= 8 && w.tot.PeakOpen == 2 }})
	// The server drops a socket abruptly: closed_abnormally, or reset when
	// that races a write; a reconnect may be dialing as the run ends.
	noErrors(t, r, eng, "closed_abnormally", "reset", "unfinished")
	back := r.Latency.Steps["back"]
	n := back.Corrected.Count
	// Each socket the flows opened is one of the two first or a reconnect.
	if n < 8 || r.Connections.Established != n+2 {
		t.Fatalf("%d reconnects, %d established", n, r.Connections.Established)
	}
	// Every socket but the last of each flow was dropped by the server;
	// each sent its hi as it opened (one opening as the run ended may not
	// have), and every echo that came back was measured.
	if a := r.Errors["closed_abnormally"] + r.Errors["reset"]; a < n || a > n+2 {
		t.Fatalf("errors %v for %d reconnects", r.Errors, n)
	}
	if m := r.Messages; m.Sent < r.Connections.Established-2 || m.Sent > r.Connections.Established ||
		stepCount(r, "hi") != m.Received || m.Unmatched != 0 || m.Received > m.Sent || m.Received == 0 {
		t.Fatalf("messages %+v, hi %d", m, stepCount(r, "hi"))
	}
	// The reconnect's corrected figure includes the backoff, the
	// uncorrected one only the successful handshake.
	if back.Corrected.MinUS < 25_000 || back.Uncorrected.MaxUS > back.Corrected.MaxUS {
		t.Fatalf("reconnect latency %+v / %+v", back.Corrected, back.Uncorrected)
	}
	// Only two logical connections: a reconnect is not a new one.
	if c := r.Connections; c.PeakOpen != 2 || c.Attempted != c.Established+c.Failed {
		t.Fatalf("connections %+v", r.Connections)
	}
}

// TestReconnectStep: a flow closes with its own code and reconnects.
func TestReconnectStep(t *testing.T) {
	url := startServer(t, server.Config{}).URL()
	p := plan(t, url, `
phases: [{arrivals: 2, duration: 1s}]
flows:
  - name: f
    steps:
      - send: a
      - expect: {contains: a, timeout: 2m}
      - close: {code: 4000, reason: later}
      - reconnect: {min: 20ms, max: 40ms}
        name: again
      - send: b
      - expect: {contains: b, timeout: 2m}
        name: b
`)
	hold(p, 0)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.tot.Closed == 4 }})
	noErrors(t, r, eng)
	if r.CloseCodes[4000] != 2 || r.CloseCodes[1000] != 2 || stepCount(r, "again") != 2 || stepCount(r, "b") != 2 || r.Connections.Established != 4 {
		t.Fatalf("codes %v steps %v connections %+v", r.CloseCodes, stepCounts(r), r.Connections)
	}
	// From the reconnect step's start: a backoff of at least 20 ms less
	// the default jitter (half), and the handshake.
	if l := r.Latency.Steps["again"].Corrected; l.MinUS < 10_000 {
		t.Fatalf("reconnect latency %+v", l)
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
          count: 10
          steps:
            - send: "x ${seq}"
            - expect: {contains: x, timeout: 2m}
              name: rtt
      - sleep: 1h                 # stay: a flow that ends is replaced
`
	all := func(w waitRun) bool { return w.steps("rtt") == 30 }
	for _, tlsOpts := range []string{"{insecure: true}", "{ca_file: " + ca + "}", "{ca_file: " + ca + ", server_name: localhost}"} {
		r, eng := runUntil(t, plan(t, s.URL(), "phases: [{connections: 3, duration: 2m}]\ntls: "+tlsOpts+flow), runOpts{done: all})
		noErrors(t, r, eng)
		if r.Connections.Established != 3 || r.Connections.Attempted != 3 || stepCount(r, "rtt") != 30 || r.Messages.Sent != 30 || r.Messages.Received != 30 {
			t.Fatalf("tls %s: %+v rtt %d messages %+v", tlsOpts, r.Connections, stepCount(r, "rtt"), r.Messages)
		}
	}
	// The certificate does not name example.com: every attempt fails.
	r, eng := runUntil(t, plan(t, s.URL(), "phases: [{connections: 2, duration: 2m}]\ntls: {ca_file: "+ca+", server_name: example.com}"+flow),
		runOpts{done: func(w waitRun) bool { return w.tot.Errors["tls"] >= 2 }})
	// (The run may end during an attempt: "unfinished".)
	noErrors(t, r, eng, "tls", "unfinished")
	if r.Connections.Established != 0 || r.Errors["tls"] < 2 || r.Connections.Failed != r.Errors["tls"]+r.Errors["unfinished"] {
		t.Fatalf("wrong server name accepted: %+v %v", r.Connections, r.Errors)
	}

	// permessage-deflate against npm ws.
	url := testenv.NodeWS(t, "echo", "--deflate")
	r, eng = runUntil(t, plan(t, url, "phases: [{connections: 3, duration: 2m}]\ncompression: true"+flow), runOpts{done: all})
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
	if stepCount(r, "rtt") != 30 || r.Messages.Received != 30 || r.Messages.Sent != 30 {
		t.Fatalf("compressed: rtt %d received %d", stepCount(r, "rtt"), r.Messages.Received)
	}
}

// TestReconnectGivesUp: the target goes away; each flow's reconnect tries
// its attempts and gives up; refilling the level backs off meanwhile.
func TestReconnectGivesUp(t *testing.T) {
	s := startServer(t, server.Config{})
	p := plan(t, s.URL(), `
phases: [{connections: 2, duration: 2m}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - expect: {contains: never, timeout: 2m}
            - reconnect: {min: 20ms, max: 40ms, attempts: 3}
`)
	// The server goes away once it holds both connections; the run goes
	// on 1.5 s after both reconnects gave up.
	var shutAt atomic.Int64
	var gaveUp time.Duration
	r, eng := runUntil(t, p, runOpts{
		// While the server shuts down, an attempt may also be reset or
		// hang: a short handshake timeout turns a hang into a failed attempt.
		tweak: func(c *Config) { c.HandshakeTimeout = time.Second },
		onStart: func(*Engine) {
			if waitFor(func() bool { return s.Conns() == 2 }) {
				shutAt.Store(time.Now().UnixNano())
				_ = s.Shutdown(context.Background())
			}
		},
		done: func(w waitRun) bool {
			if gaveUp == 0 && w.tot.Errors["reconnect_gave_up"] == 2 {
				gaveUp = w.elapsed
			}
			return gaveUp > 0 && w.elapsed >= gaveUp+1500*time.Millisecond
		},
	})
	window := time.Since(time.Unix(0, shutAt.Load()))
	transient := []string{"reset", "timeout", "closed_during_handshake", "http_503"}
	noErrors(t, r, eng, append(transient, "server_close_1001", "refused", "reconnect_gave_up", "unfinished")...)
	if r.Errors["reconnect_gave_up"] != 2 || r.Errors["server_close_1001"] != 2 || r.Connections.Established != 2 {
		t.Fatalf("errors %v connections %+v", r.Errors, r.Connections)
	}
	// 2 × 3 attempts, then new connections to refill the level, backing
	// off: two attempts per doubling of the wait (10 ms up to 1.28 s),
	// then two per 1.28 s, for as long as the server has been gone; a 10 ms
	// loop would make two every 20 ms.
	limit := 6 + 2*(10+int64(window/(1280*time.Millisecond)))
	if n := r.Connections.Failed; n < 6 || n > limit {
		t.Fatalf("%d failed attempts in %v (at most %d with the backoff); errors %v", n, window.Round(time.Millisecond), limit, r.Errors)
	}
}

func TestPing(t *testing.T) {
	url := testenv.NodeWS(t, "echo")
	p := plan(t, url, `
phases: [{connections: 4, duration: 2m}]
flows:
  - name: f
    steps:
      - repeat:
          rate: 20
          count: 20
          steps:
            - ping: {data: "p${seq}", timeout: 2m}
              name: pong
      - sleep: 1h                 # stay: a flow that ends is replaced
`)
	start := time.Now()
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.steps("pong") == 80 }})
	noErrors(t, r, eng)
	if n := stepCount(r, "pong"); n != 80 || r.Messages.Sent != 0 || r.Connections.Established != 4 {
		t.Fatalf("%d pongs, %d messages, connections %+v", n, r.Messages.Sent, r.Connections)
	}
	// 20 pings at 20/s: the last is due 19/20 s after the first.
	if d := time.Since(start); d < 950*time.Millisecond {
		t.Fatalf("80 pings in %v: not paced", d)
	}
}

// TestReconnectFromNestedRepeat: the connection drops inside an inner
// repeat; the flow leaves it and goes on at the outer repeat's reconnect
// (the shape docs/scenarios.md recommends).
func TestReconnectFromNestedRepeat(t *testing.T) {
	url := testenv.NodeWS(t, "close-after", "--after-ms", "200")
	p := plan(t, url, `
phases: [{connections: 1, duration: 2m}]
flows:
  - name: f
    steps:
      - repeat:
          steps:
            - send: sub
            - repeat:
                for: 1h
                steps:
                  - expect: {contains: tick, timeout: 2m}
            - reconnect: {min: 10ms, max: 20ms}
              name: resubscribe
`)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.steps("resubscribe") >= 5 }})
	// The server drops a socket abruptly: closed_abnormally, or reset when
	// that races a write; a reconnect may be dialing as the run ends.
	noErrors(t, r, eng, "closed_abnormally", "reset", "unfinished")
	// Each socket subscribes as it opens (one opening as the run ends may
	// not have).
	n := stepCount(r, "resubscribe")
	if m := r.Messages; n < 5 || r.Connections.Established != n+1 || (m.Sent != n+1 && m.Sent != n) || m.Unmatched != m.Received {
		t.Fatalf("%d reconnects, %d established, %d subscriptions sent, %d unmatched of %d", n, r.Connections.Established, m.Sent, m.Unmatched, m.Received)
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
phases: [{connections: 2, duration: 2m}]
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
                  - expect: {contains: hi, timeout: 2m}
            - reconnect: {min: 50ms, max: 200ms, jitter: 0.5}
              name: back
`)
	r, eng := runUntil(t, p, runOpts{done: func(w waitRun) bool { return w.steps("back") >= 4 }})
	// The server drops a socket abruptly: closed_abnormally, or reset when
	// that races a write; a reconnect may be dialing as the run ends.
	noErrors(t, r, eng, "closed_abnormally", "reset", "unfinished")
	back := r.Latency.Steps["back"]
	if back.Corrected.Count < 4 {
		t.Fatalf("%d reconnects", back.Corrected.Count)
	}
	if back.Corrected.MinUS < 25_000 || back.Corrected.P50US < back.Uncorrected.P50US || back.Corrected.MinUS < back.Uncorrected.MinUS {
		t.Fatalf("reconnect corrected %+v below uncorrected %+v", back.Corrected, back.Uncorrected)
	}
}

// TestFlowSendClockBeforeWrite: a scenario send reads its actual send time
// before the write, like the echo flow, so the uncorrected latency of the
// expect that follows includes a slow write (here 150 ms, injected).
// Before, the clock was read after the write and the write's time vanished
// from both latencies' difference.
func TestFlowSendClockBeforeWrite(t *testing.T) {
	const slow = 150 * time.Millisecond
	s := startServer(t, server.Config{})
	p := plan(t, s.URL(), `
phases: [{connections: 1, duration: 2m}]
flows:
  - name: echo
    steps:
      - repeat:
          rate: 2
          count: 3
          steps:
            - send: {json: {id: "${conn}-${seq}"}}
            - expect: {regex: '"id":"\d+-\d+"', timeout: 2m}
              name: rtt
      - sleep: 1h
`)
	r, _ := runUntil(t, p, runOpts{
		engine: func(e *Engine) { e.slowWrite = func() { time.Sleep(slow) } },
		done:   func(w waitRun) bool { return w.steps("rtt") == 3 },
	})
	st := r.Latency.Steps["rtt"]
	if st.Uncorrected.Count != 3 || time.Duration(st.Uncorrected.MinUS)*time.Microsecond < slow {
		t.Fatalf("uncorrected rtt %+v: want 3 samples, each at least the %v write", st.Uncorrected, slow)
	}
}

// A run that ends between a send and its expect still waits for that reply and measures it:
// the message is out, so it must end received (or timed out), never as an unmatched reply with
// no outcome for its send. The test ends the run inside the first send's write (and lets the
// write finish only once the engine is stopping), the moment a busy machine hit at random
// (TestScriptEcho: "408 of 409 sent, 409 received, 1 unmatched").
func TestRunEndingBetweenSendAndExpect(t *testing.T) {
	s := startServer(t, server.Config{})
	p := plan(t, s.URL(), `
phases: [{connections: 1, duration: 2m}]
flows:
  - name: echo
    steps:
      - send: {json: {id: "${conn}-${seq}"}}
      - expect: {regex: '"id":"\d+-\d+"', timeout: 2m}
        name: rtt
      - sleep: 1h
`)
	var once sync.Once
	r, eng := runUntil(t, p, runOpts{engine: func(e *Engine) {
		stop := e.stop
		e.slowWrite = func() {
			once.Do(func() {
				close(stop) // end the run now, as its duration would
				deadline := time.Now().Add(flowDeadline)
				for !e.stopping.Load() && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
			})
		}
	}})
	if !eng.stopping.Load() {
		t.Fatal("the run never stopped")
	}
	m, st := r.Messages, r.Latency.Steps["rtt"]
	if m.Sent != 1 || st.Count != 1 || m.Unmatched != 0 || m.TimedOut != 0 {
		t.Fatalf("sent %d, rtt measured %d, unmatched %d, timed out %d: want the one message sent as the run ended measured", m.Sent, st.Count, m.Unmatched, m.TimedOut)
	}
}
