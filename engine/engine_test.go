package engine

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

// run executes cfg against its URL and returns the run's result.
func run(t *testing.T, ctx context.Context, cfg Config) (*stats.Result, *Engine) {
	t.Helper()
	eng, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	res, err := eng.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res, eng
}

func startServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// checkClean asserts a run where everything should have worked.
func checkClean(t *testing.T, r *stats.Result, conns int, minMsgs int64) {
	t.Helper()
	c := r.Connections
	if c.Attempted != int64(conns) || c.Established != int64(conns) || c.Failed != 0 {
		t.Fatalf("connections: %+v, want %d established, errors %v", c, conns, r.Errors)
	}
	if c.Closed != int64(conns) {
		t.Fatalf("closed %d of %d connections", c.Closed, conns)
	}
	if r.CloseCodes[1000] != int64(conns) {
		t.Fatalf("close codes %v, want %d × 1000", r.CloseCodes, conns)
	}
	m := r.Messages
	if m.Sent < minMsgs || m.Received != m.Sent || m.TimedOut != 0 || m.Unmatched != 0 {
		t.Fatalf("messages: %+v, want ≥ %d sent, all received", m, minMsgs)
	}
	if len(r.Errors) != 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	if r.Latency.RTT.Count != m.Received || r.Latency.Handshake.Count != int64(conns) {
		t.Fatalf("latency counts rtt=%d handshake=%d", r.Latency.RTT.Count, r.Latency.Handshake.Count)
	}
	if r.Latency.RTT.P50US <= 0 || r.Latency.RTT.P99US < r.Latency.RTT.P50US {
		t.Fatalf("rtt percentiles %+v", r.Latency.RTT)
	}
}

// TestEchoAgainstServe runs 50 connections against wsload's own server, text
// and binary, until all are up and 1,500 replies came back, then checks that
// every message sent was answered, byte for byte.
func TestEchoAgainstServe(t *testing.T) {
	s := startServer(t, server.Config{})
	for _, binary := range []bool{false, true} {
		r, _ := runEcho(t, Config{URL: s.URL(), Connections: 50, Rate: 20, Binary: binary, Size: 100},
			echoWait{until: allUp(50, 1500)})
		checkClean(t, r, 50, 1500)
		if want := r.Messages.Sent * 100; r.Messages.BytesSent != want || r.Messages.BytesReceived != want {
			t.Fatalf("bytes sent %d received %d, want %d", r.Messages.BytesSent, r.Messages.BytesReceived, want)
		}
	}
}

// TestEchoAgainstNodeWS runs against a server no one here wrote: npm's ws.
func TestEchoAgainstNodeWS(t *testing.T) {
	url := testenv.NodeWS(t, "echo")
	r, _ := runEcho(t, Config{URL: url, Connections: 200, Rate: 10}, echoWait{until: allUp(200, 3000)})
	checkClean(t, r, 200, 3000)
}

func TestWSS(t *testing.T) {
	s := startServer(t, server.Config{TLSSelfSigned: true})
	r, _ := runEcho(t, Config{URL: s.URL(), Connections: 20, Rate: 20, InsecureTLS: true}, echoWait{until: allUp(20, 500)})
	checkClean(t, r, 20, 500)

	// Without --insecure the self-signed certificate is refused: reason "tls".
	r, eng := runEcho(t, Config{URL: s.URL(), Connections: 3, Rate: 1}, echoWait{until: allFailed(3)})
	if r.Connections.Established != 0 || r.Errors["tls"] != 3 {
		t.Fatalf("want 3 tls failures, got %+v %v", r.Connections, r.Errors)
	}
	if eng.SampleErrors()["tls"] == "" {
		t.Fatalf("no sample text for the tls failure")
	}
}

// TestIdleHold opens 300 connections that send nothing and holds them: all
// of them stay open for three intervals after the last is up, and close
// cleanly at the end.
func TestIdleHold(t *testing.T) {
	s := startServer(t, server.Config{})
	held := 0
	r, _ := runEcho(t, Config{URL: s.URL(), Connections: 300, Rate: 0}, echoWait{until: func(tot *stats.Interval) bool {
		if tot.Established == 300 && tot.Open == 300 {
			held++
		}
		return held == 3
	}})
	c := r.Connections
	if c.Attempted != 300 || c.Established != 300 || c.Failed != 0 || c.PeakOpen != 300 || c.Closed != 300 || r.CloseCodes[1000] != 300 {
		t.Fatalf("idle hold: %+v codes %v errors %v", c, r.CloseCodes, r.Errors)
	}
	if r.Messages.Sent != 0 || r.Messages.Received != 0 || len(r.Errors) != 0 {
		t.Fatalf("idle hold: messages %+v errors %v", r.Messages, r.Errors)
	}
}

func TestPortClosed(t *testing.T) {
	port := testenv.FreePort(t)
	r, _ := runEcho(t, Config{URL: "ws://127.0.0.1:" + itoa(port) + "/", Connections: 5}, echoWait{until: allFailed(5)})
	if r.Connections.Established != 0 || r.Errors["refused"] != 5 || r.Connections.Failed != 5 {
		t.Fatalf("closed port: %+v %v", r.Connections, r.Errors)
	}
}

func TestUpgradeRefused(t *testing.T) {
	s := startServer(t, server.Config{})
	r, _ := runEcho(t, Config{URL: s.URL() + "status/404", Connections: 4}, echoWait{until: allFailed(4)})
	if r.Connections.Established != 0 || r.Errors["http_404"] != 4 {
		t.Fatalf("404 upgrade: %+v %v", r.Connections, r.Errors)
	}
	// A plain HTTP server that never upgrades (like a balancer without WebSocket support).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
	})}
	go hs.Serve(ln)
	defer hs.Close()
	r, _ = runEcho(t, Config{URL: "ws://" + ln.Addr().String() + "/", Connections: 3}, echoWait{until: allFailed(3)})
	if r.Connections.Established != 0 || r.Errors["http_426"] != 3 {
		t.Fatalf("426 upgrade: %+v %v", r.Connections, r.Errors)
	}
}

// TestHandshakeTimeout dials a target that accepts TCP but never answers the
// upgrade: every connection must fail with "timeout" after the configured
// handshake timeout. Two runs share the target: "slow" (5 s) dials first,
// "fast" (300 ms) once slow's connections are accepted, so fast's timeouts
// must all come before slow's first. That order holds however busy the
// machine is, and would not if the configured timeout were ignored: under
// the 10 s default both would time out 10 s after their own start, slow
// first.
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			accepted <- struct{}{}
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	url := "ws://" + ln.Addr().String() + "/"

	// The intervals of each run, to place its failures in time: a failure
	// counted in an interval happened after the interval's start and
	// before the end of the next interval (Rotate swaps a shard after
	// taking the time).
	type span struct {
		start, end time.Time
		failed     int64
	}
	var slowIvs, fastIvs []span
	record := func(to *[]span) func(iv *stats.Interval) {
		return func(iv *stats.Interval) { *to = append(*to, span{iv.Start, iv.End, iv.Failed}) }
	}
	slow := startEcho(t, Config{URL: url, Connections: 5, HandshakeTimeout: 5 * time.Second},
		echoWait{until: allFailed(5), observe: record(&slowIvs)})
	for range 5 {
		select {
		case <-accepted:
		case <-time.After(echoDeadline):
			t.Fatalf("the slow run's 5 connections were not accepted within %v", echoDeadline)
		}
	}
	fastStart := time.Now()
	fast, _ := runEcho(t, Config{URL: url, Connections: 5, HandshakeTimeout: 300 * time.Millisecond},
		echoWait{until: allFailed(5), observe: record(&fastIvs)})
	fastEnd := time.Now()
	slowRes := slow.wait(t)
	for name, r := range map[string]*stats.Result{"fast": fast, "slow": slowRes} {
		if r.Errors["timeout"] != 5 || r.Connections.Failed != 5 || r.Connections.Attempted != 5 {
			t.Fatalf("%s handshake timeout: %+v %v", name, r.Connections, r.Errors)
		}
	}
	// Lower bound: no handshake can time out before its timeout.
	if el := fastEnd.Sub(fastStart); el < 300*time.Millisecond {
		t.Fatalf("the fast run took %v, less than its 300 ms handshake timeout", el)
	}
	// Order: the last of fast's failures before the first of slow's.
	var fastLast, slowFirst time.Time
	var n int64
	for i, iv := range fastIvs {
		if n += iv.failed; n == 5 {
			fastLast = fastEnd // its last interval: the run had ended
			if i+1 < len(fastIvs) {
				fastLast = fastIvs[i+1].end
			}
			break
		}
	}
	for _, iv := range slowIvs {
		if iv.failed > 0 {
			slowFirst = iv.start
			break
		}
	}
	if fastLast.IsZero() || slowFirst.IsZero() || !fastLast.Before(slowFirst) {
		t.Fatalf("the 300 ms timeouts (all by %v) did not all come before the first 5 s one (not before %v)",
			fastLast.Sub(fastStart), slowFirst.Sub(fastStart))
	}
}

// TestServerClosesMidRun: npm ws drops every connection 500 ms after it
// opened, without a close frame; each must count as an abnormal close (1006).
func TestServerClosesMidRun(t *testing.T) {
	url := testenv.NodeWS(t, "close-after", "--after-ms", "500")
	// ReplyTimeout: the end-of-run drain also waits for replies to messages
	// that were in flight on a dropped connection; they never come.
	r, _ := runEcho(t, Config{URL: url, Connections: 10, Rate: 10, ReplyTimeout: time.Second}, echoWait{until: allClosed(10)})
	if r.Connections.Established != 10 || r.Connections.Closed != 10 || r.CloseCodes[1006] != 10 {
		t.Fatalf("abrupt close: %+v codes %v errors %v", r.Connections, r.CloseCodes, r.Errors)
	}
	if r.Errors["closed_abnormally"]+r.Errors["reset"] != 10 {
		t.Fatalf("abrupt close reasons: %v", r.Errors)
	}
}

// TestInvalidFrame: the reply to each connection's first message is a frame
// with a reserved opcode; each connection must fail with 1002.
func TestInvalidFrame(t *testing.T) {
	url := testenv.NodeWS(t, "invalid-frame")
	// ReplyTimeout: the end-of-run drain also waits for the first
	// messages' replies, which the invalid frames replaced.
	r, _ := runEcho(t, Config{URL: url, Connections: 5, Rate: 5, ReplyTimeout: time.Second}, echoWait{until: allClosed(5)})
	if r.Errors["invalid_frame"] != 5 || r.CloseCodes[1002] != 5 {
		t.Fatalf("invalid frame: %v codes %v", r.Errors, r.CloseCodes)
	}
}

// TestInterruptClosesWith1001 interrupts a run (its context cancelled, as
// Ctrl-C does) once all 20 connections are up and replies flow: Run must
// return without waiting for its hour-long duration, every connection closes
// with 1001, and every message sent is answered, timed out or in flight (no
// drain on an interrupt: a message within its reply timeout is in flight).
func TestInterruptClosesWith1001(t *testing.T) {
	s := startServer(t, server.Config{})
	r, _ := runEcho(t, Config{URL: s.URL(), Connections: 20, Rate: 10, Duration: time.Hour},
		echoWait{until: allUp(20, 40), interrupt: true})
	m := r.Messages
	if r.Connections.Established != 20 || r.Connections.Closed != 20 || r.CloseCodes[1001] != 20 || m.Received == 0 {
		t.Fatalf("interrupt: %+v codes %v messages %+v errors %v", r.Connections, r.CloseCodes, m, r.Errors)
	}
	if r.Latency.RTT.Count != m.Received || m.Received+m.TimedOut+m.InFlight != m.Sent || m.TimedOut != 0 {
		t.Fatalf("interrupt: %d answered (rtt count %d) + %d timed out + %d in flight of %d sent",
			m.Received, r.Latency.RTT.Count, m.TimedOut, m.InFlight, m.Sent)
	}
}

// TestConnectRate opens 200 connections at 100/s. Pacing is checked by what
// holds on any machine: connection i is dialed no earlier than i/100 s after
// the start, so the ramp lasts at least 1.99 s, and no interval's count of
// established connections runs ahead of the schedule.
func TestConnectRate(t *testing.T) {
	const n, rate = 200, 100.0
	s := startServer(t, server.Config{})
	r, eng := runEcho(t, Config{URL: s.URL(), Connections: n, ConnectRate: rate, Rate: 0}, echoWait{until: allUp(n, 0)})
	c := r.Connections
	if c.Established != n || c.Failed != 0 || c.PeakOpen != n || c.Closed != n || r.CloseCodes[1000] != n {
		t.Fatalf("ramp: %+v codes %v errors %v", c, r.CloseCodes, r.Errors)
	}
	ramp, ok := eng.Ramp()
	if least := time.Duration(float64(n-1) / rate * float64(time.Second)); !ok || ramp < least {
		t.Fatalf("ramp %v (complete %v), want at least %v at %v/s", ramp, ok, least, rate)
	}
	// The connections counted up to interval k were established before the
	// end of interval k+1 (T, measured from before the engine's start), and
	// by time T at most rate·T+1 were due.
	tl := r.Timeline
	var est int64
	for k := 0; k+1 < len(tl); k++ {
		est += tl[k].Established
		if due := int64(rate*tl[k+1].T) + 1; est > due {
			t.Fatalf("%d connections established by %.3f s, only %d due at %v/s: timeline %+v", est, tl[k+1].T, due, rate, tl)
		}
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

// stallWait waits until the run's conns connections are all up and have
// then sent for at least 6 s of their schedule (conns·rate·6 messages; no
// message goes out before its scheduled time, so that many sends span at
// least 6 s however slow the machine is). Any 6 s holds two full stall
// windows of a target that stalls 500 ms of every 2 s.
func stallWait(conns int, rate float64) func(tot *stats.Interval) bool {
	sentAtUp := int64(-1)
	return func(tot *stats.Interval) bool {
		if sentAtUp < 0 && tot.Established == int64(conns) {
			sentAtUp = tot.Sent
		}
		return sentAtUp >= 0 && tot.Sent-sentAtUp >= int64(float64(conns)*rate*6)
	}
}

// checkStallInP99 asserts that a stall of 500 ms every 2 s shows in the
// corrected p99. A message scheduled in the first 100 ms of a stall cannot be
// answered before the stall ends, 400 ms or more after its scheduled time:
// it reaches the target at its scheduled time or later, and it is either
// held to the stall's end or arrives after it. Such messages are 5% of an
// open-model schedule (100 ms of every 2 s; at least 3% over 6 s), so the
// corrected p99 is at least 400 ms on any machine. A closed-loop generator,
// which sends one message per connection per stall, would hide it.
func checkStallInP99(t *testing.T, r *stats.Result) {
	t.Helper()
	rtt := r.Latency.RTT
	if rtt.P99US < 400_000 {
		t.Fatalf("corrected p99 %d µs, want at least 400 ms (p50 %d µs)", rtt.P99US, rtt.P50US)
	}
	// Three quarters of the schedule is outside any stall: the median is
	// not the tail.
	if rtt.P50US >= rtt.P99US {
		t.Fatalf("p50 %d µs not below p99 %d µs", rtt.P50US, rtt.P99US)
	}
	if m := r.Messages; m.TimedOut != 0 || m.Received != m.Sent || rtt.Count != m.Sent {
		t.Fatalf("messages %+v, rtt count %d", m, rtt.Count)
	}
}

// TestStallingTargetShowsInP99: a target that holds every reply for 500 ms of
// every 2 s must show the stall in the p99: an open-model generator keeps
// sending through the stall, so a quarter of the messages wait, up to
// 500 ms.
func TestStallingTargetShowsInP99(t *testing.T) {
	s := startServer(t, server.Config{Stall: server.Stall{Every: 2 * time.Second, For: 500 * time.Millisecond}})
	r, _ := runEcho(t, Config{URL: s.URL(), Connections: 20, Rate: 50}, echoWait{until: stallWait(20, 50)})
	checkStallInP99(t, r)
}

// TestStallingNodeTarget does the same against npm ws.
func TestStallingNodeTarget(t *testing.T) {
	url := testenv.NodeWS(t, "stall", "--every-ms", "2000", "--for-ms", "500")
	r, _ := runEcho(t, Config{URL: url, Connections: 20, Rate: 50}, echoWait{until: stallWait(20, 50)})
	checkStallInP99(t, r)
}

// TestLateSendsCountInCorrectedLatency holds the sender back (as a GC pause
// or a saturated generator would): messages go out late against their
// schedule. For every message corrected = uncorrected + send lag, so the
// means must add up (they would not if the correction were dropped: the
// lag's mean is tens of milliseconds); the corrected figure must show the
// 300 ms holds and the uncorrected one must not.
func TestLateSendsCountInCorrectedLatency(t *testing.T) {
	s := startServer(t, server.Config{})
	var n int
	r, _ := runEcho(t, Config{URL: s.URL(), Connections: 10, Rate: 50, Pollers: 1}, echoWait{
		setup: func(eng *Engine) {
			eng.holdSend = func() {
				n++ // one sender goroutine (Pollers: 1): no race
				if n%300 == 0 {
					time.Sleep(300 * time.Millisecond)
				}
			}
		},
		// At least five holds, every connection sending.
		until: allUp(10, 1500),
	})
	if n < 1500 {
		t.Fatalf("%d sends attempted, want at least 1500 (five holds)", n)
	}
	corr, unc, lag := r.Latency.RTT, r.Latency.RTTUncorrected, r.Latency.SendLag
	if m := r.Messages; m.Received != m.Sent || m.TimedOut != 0 || corr.Count != m.Received || unc.Count != m.Received || lag.Count != m.Sent {
		t.Fatalf("messages %+v counts %d %d %d", r.Messages, corr.Count, unc.Count, lag.Count)
	}
	if got, want := corr.MeanUS, unc.MeanUS+lag.MeanUS; got < want*0.99-5 || got > want*1.01+5 {
		t.Fatalf("corrected mean %.0f µs ≠ uncorrected %.0f + lag %.0f", corr.MeanUS, unc.MeanUS, lag.MeanUS)
	}
	// Each hold sleeps 300 ms before a send that was already due.
	if lag.MaxUS < 290_000 || corr.MaxUS < 290_000 {
		t.Fatalf("the 300 ms holds are missing: lag max %d µs, corrected max %d µs", lag.MaxUS, corr.MaxUS)
	}
	if corr.P99US <= unc.P99US {
		t.Fatalf("corrected p99 %d µs not above uncorrected %d µs", corr.P99US, unc.P99US)
	}
}

// TestThousandsOfConnections holds 5,000 connections against npm ws, each
// sending a message every 5 s, until all are up at once and 10,000 replies
// came back. The rate is low so that the echo traffic (1,000 messages a
// second once all are up) leaves an oversubscribed machine the time to
// complete the upgrades: at a message per second each, npm ws on a starved
// core fell behind on both.
func TestThousandsOfConnections(t *testing.T) {
	url := testenv.NodeWS(t, "echo")
	r, _ := runEcho(t, Config{URL: url, Connections: 5000, Rate: 0.2}, echoWait{until: allUp(5000, 10000)})
	checkClean(t, r, 5000, 10000)
	if r.Connections.PeakOpen != 5000 {
		t.Fatalf("peak open %d", r.Connections.PeakOpen)
	}
}

// TestSourceIPs checks that connections leave from every given source
// address, round robin.
func TestSourceIPs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := map[string]int{}
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			mu.Lock()
			seen[host]++
			mu.Unlock()
			c.Close()
		}
	}()
	ips, err := ParseSourceIPs("127.0.0.2-127.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	// The listener counts a connection before closing it, and the close is
	// what fails the attempt: once all 40 failed, all 40 were counted.
	r, _ := runEcho(t, Config{URL: "ws://" + ln.Addr().String() + "/", Connections: 40, SourceIPs: ips}, echoWait{until: allFailed(40)})
	if r.Connections.Attempted != 40 || r.Connections.Failed != 40 {
		t.Fatalf("connections %+v", r.Connections)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		if seen[ip] != 10 {
			t.Fatalf("connections per source address: %v", seen)
		}
	}
}

func TestParseSourceIPs(t *testing.T) {
	good := map[string]int{"127.0.0.2": 1, "127.0.0.2-127.0.0.9": 8, "127.0.0.1,127.0.1.1-127.0.1.2": 3, "127.0.0.255-127.0.1.1": 3, "::1": 1}
	for spec, n := range good {
		ips, err := ParseSourceIPs(spec)
		if err != nil || len(ips) != n {
			t.Fatalf("ParseSourceIPs(%q) = %v, %v; want %d addresses", spec, ips, err, n)
		}
	}
	for _, spec := range []string{"", "x", "127.0.0.9-127.0.0.2", "127.0.0.1-::1", "10.0.0.0-10.255.255.255"} {
		if _, err := ParseSourceIPs(spec); err == nil {
			t.Fatalf("ParseSourceIPs(%q) accepted", spec)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{},
		{URL: "http://x/", Connections: 1, Duration: time.Second},
		{URL: "ws://127.0.0.1:1/", Connections: 0, Duration: time.Second},
		{URL: "ws://127.0.0.1:1/", Connections: 1},
		{URL: "ws://127.0.0.1:1/", Connections: 1, Duration: time.Second, Size: 10},
		{URL: "ws://127.0.0.1:1/", Connections: 1, Duration: time.Second, Rate: -1},
		{URL: "ws://127.0.0.1:1/", Connections: 1, Duration: time.Second, Header: http.Header{"Upgrade": {"x"}}},
	}
	for i, c := range bad {
		if _, err := New(c); err == nil {
			t.Fatalf("config %d accepted: %+v", i, c)
		}
	}
}

// --max-message-size lifts the read limit: 20 MiB echoes from Node's ws (whose own limit is
// 100 MiB) come back whole and matched, where the default 16 MiB limit refuses the size.
func TestLargeMessagesWithAHigherReadLimit(t *testing.T) {
	url := testenv.NodeWS(t, "echo")
	const size = 20 << 20
	// One message every 10 s (the first at once): each is out and back before the next, however
	// slowly a -race build checks 20 MiB of echo.
	cfg := Config{URL: url, Connections: 1, Rate: 0.1, Size: size, Binary: true, MaxMessageSize: 32 << 20, MaxWriteBuffer: 256 << 20}
	r, _ := runEcho(t, cfg, echoWait{until: allUp(1, 1)})
	if r.Messages.Received < 1 || r.Messages.Corrupt != 0 || len(r.Errors) != 0 || r.Messages.BytesReceived < size {
		t.Fatalf("messages %+v errors %v: want 20 MiB echoes received whole", r.Messages, r.Errors)
	}
	if r.Config.MaxMessageSize != 32<<20 {
		t.Fatalf("config block records max_message_size %d", r.Config.MaxMessageSize)
	}
}

// A target name that resolves to several addresses (DNS round robin in front of several
// balancers) gets the connections spread over all of them, in turn, as a population of clients
// would; before, the first address took the whole load.
func TestConnectionsSpreadOverResolvedAddresses(t *testing.T) {
	port := testenv.FreePort(t)
	var servers []*server.Server
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		servers = append(servers, startServer(t, server.Config{Addr: fmt.Sprintf("%s:%d", ip, port)}))
	}
	old := lookupNetIP
	t.Cleanup(func() { lookupNetIP = old })
	lookupNetIP = func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if host != "lb.wsload.test" {
			return nil, fmt.Errorf("unexpected lookup of %q", host)
		}
		// Duplicates and an IPv6 address of another family are dropped: IPv4 is preferred.
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.2"),
			netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.3")}, nil
	}
	const conns = 12
	r, _ := runEcho(t, Config{URL: fmt.Sprintf("ws://lb.wsload.test:%d/", port), Connections: conns, Rate: 2}, echoWait{until: allUp(conns, conns)})
	if r.Connections.Established != conns {
		t.Fatalf("connections %+v", r.Connections)
	}
	for i, s := range servers {
		if up := s.Stats().Upgrades; up != conns/3 {
			t.Fatalf("server %d upgraded %d connections, want %d of %d: spread over the resolved addresses", i, up, conns/3, conns)
		}
	}
	if want := []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("127.0.0.2:%d", port), fmt.Sprintf("127.0.0.3:%d", port)}; !slices.Equal(r.Config.Addresses, want) {
		t.Fatalf("config addresses %q, want %q", r.Config.Addresses, want)
	}
}
