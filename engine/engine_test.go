package engine

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

// run executes cfg against its URL and returns the aggregated result.
func run(t *testing.T, ctx context.Context, cfg Config) (*stats.Result, *Engine) {
	t.Helper()
	var mu sync.Mutex
	start := time.Now()
	agg := stats.NewAggregate(start)
	cfg.OnInterval = func(iv *stats.Interval) {
		mu.Lock()
		agg.Add(iv)
		mu.Unlock()
	}
	rec := stats.NewRecorder(Shards(cfg))
	eng, err := New(cfg, rec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := eng.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return agg.Result(stats.Header{Target: cfg.URL, Start: start}), eng
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

func TestEchoAgainstServe(t *testing.T) {
	s := startServer(t, server.Config{})
	for _, binary := range []bool{false, true} {
		r, _ := run(t, context.Background(), Config{
			URL: s.URL(), Connections: 50, Rate: 20, Duration: 2 * time.Second, Binary: binary, Size: 100,
		})
		// 50 connections × 20/s × ~2 s, less the ramp.
		checkClean(t, r, 50, 1500)
		if want := r.Messages.Sent * 100; r.Messages.BytesSent != want || r.Messages.BytesReceived != want {
			t.Fatalf("bytes sent %d received %d, want %d", r.Messages.BytesSent, r.Messages.BytesReceived, want)
		}
	}
}

// TestEchoAgainstNodeWS runs against a server no one here wrote: npm's ws.
func TestEchoAgainstNodeWS(t *testing.T) {
	url := testenv.NodeWS(t, "echo")
	r, _ := run(t, context.Background(), Config{URL: url, Connections: 200, Rate: 10, Duration: 2 * time.Second})
	checkClean(t, r, 200, 3000)
}

func TestWSS(t *testing.T) {
	s := startServer(t, server.Config{TLSSelfSigned: true})
	r, _ := run(t, context.Background(), Config{URL: s.URL(), Connections: 20, Rate: 20, Duration: 2 * time.Second, InsecureTLS: true})
	checkClean(t, r, 20, 500)

	// Without --insecure the self-signed certificate is refused: reason "tls".
	r, eng := run(t, context.Background(), Config{URL: s.URL(), Connections: 3, Rate: 1, Duration: time.Second})
	if r.Connections.Established != 0 || r.Errors["tls"] != 3 {
		t.Fatalf("want 3 tls failures, got %+v %v", r.Connections, r.Errors)
	}
	if eng.SampleErrors()["tls"] == "" {
		t.Fatalf("no sample text for the tls failure")
	}
}

func TestIdleHold(t *testing.T) {
	s := startServer(t, server.Config{})
	r, _ := run(t, context.Background(), Config{URL: s.URL(), Connections: 300, Rate: 0, Duration: 1500 * time.Millisecond})
	if r.Connections.Established != 300 || r.Messages.Sent != 0 || r.Connections.PeakOpen != 300 {
		t.Fatalf("idle hold: %+v sent=%d", r.Connections, r.Messages.Sent)
	}
}

func TestPortClosed(t *testing.T) {
	port := testenv.FreePort(t)
	r, _ := run(t, context.Background(), Config{URL: "ws://127.0.0.1:" + itoa(port) + "/", Connections: 5, Duration: time.Second})
	if r.Connections.Established != 0 || r.Errors["refused"] != 5 || r.Connections.Failed != 5 {
		t.Fatalf("closed port: %+v %v", r.Connections, r.Errors)
	}
}

func TestUpgradeRefused(t *testing.T) {
	s := startServer(t, server.Config{})
	r, _ := run(t, context.Background(), Config{URL: s.URL() + "status/404", Connections: 4, Duration: time.Second})
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
	r, _ = run(t, context.Background(), Config{URL: "ws://" + ln.Addr().String() + "/", Connections: 3, Duration: time.Second})
	if r.Errors["http_426"] != 3 {
		t.Fatalf("426 upgrade: %v", r.Errors)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	// Accepts TCP but never answers the upgrade.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	start := time.Now()
	r, _ := run(t, context.Background(), Config{URL: "ws://" + ln.Addr().String() + "/", Connections: 5, Duration: 3 * time.Second, HandshakeTimeout: 300 * time.Millisecond})
	if r.Errors["timeout"] != 5 {
		t.Fatalf("handshake timeout: %+v %v", r.Connections, r.Errors)
	}
	if el := time.Since(start); el > 6*time.Second {
		t.Fatalf("run took %v", el)
	}
}

func TestServerClosesMidRun(t *testing.T) {
	url := testenv.NodeWS(t, "close-after", "--after-ms", "500")
	r, _ := run(t, context.Background(), Config{URL: url, Connections: 10, Rate: 10, Duration: 1500 * time.Millisecond})
	if r.Connections.Established != 10 || r.CloseCodes[1006] != 10 {
		t.Fatalf("abrupt close: %+v codes %v errors %v", r.Connections, r.CloseCodes, r.Errors)
	}
	if r.Errors["closed_abnormally"]+r.Errors["reset"] != 10 {
		t.Fatalf("abrupt close reasons: %v", r.Errors)
	}
}

func TestInvalidFrame(t *testing.T) {
	url := testenv.NodeWS(t, "invalid-frame")
	r, _ := run(t, context.Background(), Config{URL: url, Connections: 5, Rate: 5, Duration: 1500 * time.Millisecond})
	if r.Errors["invalid_frame"] != 5 || r.CloseCodes[1002] != 5 {
		t.Fatalf("invalid frame: %v codes %v", r.Errors, r.CloseCodes)
	}
}

func TestInterruptClosesWith1001(t *testing.T) {
	s := startServer(t, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	start := time.Now()
	r, _ := run(t, ctx, Config{URL: s.URL(), Connections: 20, Rate: 10, Duration: time.Minute})
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("interrupted run took %v", el)
	}
	if r.CloseCodes[1001] != 20 || r.Messages.Received == 0 {
		t.Fatalf("interrupt: codes %v messages %+v", r.CloseCodes, r.Messages)
	}
}

func TestConnectRate(t *testing.T) {
	s := startServer(t, server.Config{})
	r, _ := run(t, context.Background(), Config{URL: s.URL(), Connections: 200, ConnectRate: 100, Duration: 3500 * time.Millisecond, Rate: 0})
	tl := r.Timeline
	// 200 connections at 100/s: about 100 open after the first second (not
	// all 200 at once), all of them by the end.
	if len(tl) < 3 || tl[0].Open < 80 || tl[0].Open > 120 || r.Connections.Established != 200 || r.Connections.PeakOpen != 200 {
		t.Fatalf("ramp: %+v timeline %+v", r.Connections, tl)
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

// TestStallingTargetShowsInP99: a target that holds every reply for the last
// 500 ms of each 2 s must show a p99 near 500 ms. An open-model generator
// keeps sending through the stall, so a quarter of the messages wait up to
// 500 ms; a closed-loop tool would send one message per connection per stall
// and hide it.
func TestStallingTargetShowsInP99(t *testing.T) {
	s := startServer(t, server.Config{Stall: server.Stall{Every: 2 * time.Second, For: 500 * time.Millisecond}})
	r, _ := run(t, context.Background(), Config{URL: s.URL(), Connections: 20, Rate: 50, Duration: 4200 * time.Millisecond})
	// Bounds leave room for a loaded machine (go test runs packages in
	// parallel on 2 cores), never for hiding the stall.
	rtt := r.Latency.RTT
	if rtt.P99US < 400_000 || rtt.P99US > 1_500_000 {
		t.Fatalf("p99 %d µs, want near 500 ms (p50 %d µs)", rtt.P99US, rtt.P50US)
	}
	if rtt.P50US > 200_000 {
		t.Fatalf("p50 %d µs: most replies should be fast", rtt.P50US)
	}
	if r.Messages.TimedOut != 0 || r.Messages.Received != r.Messages.Sent {
		t.Fatalf("messages %+v", r.Messages)
	}
}

// TestStallingNodeTarget does the same against npm ws.
func TestStallingNodeTarget(t *testing.T) {
	url := testenv.NodeWS(t, "stall", "--every-ms", "2000", "--for-ms", "500")
	r, _ := run(t, context.Background(), Config{URL: url, Connections: 20, Rate: 50, Duration: 4200 * time.Millisecond})
	if p99 := r.Latency.RTT.P99US; p99 < 400_000 || p99 > 1_500_000 {
		t.Fatalf("p99 %d µs, want near 500 ms", p99)
	}
}

// TestLateSendsCountInCorrectedLatency holds the sender back (as a GC pause
// or a saturated generator would): messages go out late against their
// schedule. For every message corrected = uncorrected + send lag, so the
// means must add up; the corrected figure must show the 300 ms holds and the
// uncorrected one must not.
func TestLateSendsCountInCorrectedLatency(t *testing.T) {
	s := startServer(t, server.Config{})
	cfg := Config{URL: s.URL(), Connections: 10, Rate: 50, Duration: 3 * time.Second, Pollers: 1}
	var mu sync.Mutex
	agg := stats.NewAggregate(time.Now())
	cfg.OnInterval = func(iv *stats.Interval) { mu.Lock(); agg.Add(iv); mu.Unlock() }
	eng, err := New(cfg, stats.NewRecorder(Shards(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	eng.holdSend = func() {
		n++ // one sender goroutine (Pollers: 1): no race
		if n%300 == 0 {
			time.Sleep(300 * time.Millisecond)
		}
	}
	if err := eng.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	r := agg.Result(stats.Header{})
	mu.Unlock()
	corr, unc, lag := r.Latency.RTT, r.Latency.RTTUncorrected, r.Latency.SendLag
	if r.Messages.Received != r.Messages.Sent || corr.Count != r.Messages.Received || lag.Count != r.Messages.Sent {
		t.Fatalf("messages %+v counts %d %d", r.Messages, corr.Count, lag.Count)
	}
	if got, want := corr.MeanUS, unc.MeanUS+lag.MeanUS; got < want*0.99-5 || got > want*1.01+5 {
		t.Fatalf("corrected mean %.0f µs ≠ uncorrected %.0f + lag %.0f", corr.MeanUS, unc.MeanUS, lag.MeanUS)
	}
	if lag.MaxUS < 290_000 || corr.MaxUS < 290_000 {
		t.Fatalf("the 300 ms holds are missing: lag max %d µs, corrected max %d µs", lag.MaxUS, corr.MaxUS)
	}
	if corr.P99US <= unc.P99US {
		t.Fatalf("corrected p99 %d µs not above uncorrected %d µs", corr.P99US, unc.P99US)
	}
}

// TestThousandsOfConnections holds 5,000 connections against npm ws with a
// message per second each.
func TestThousandsOfConnections(t *testing.T) {
	url := testenv.NodeWS(t, "echo")
	r, _ := run(t, context.Background(), Config{URL: url, Connections: 5000, Rate: 1, Duration: 6 * time.Second})
	checkClean(t, r, 5000, 15000)
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
	r, _ := run(t, context.Background(), Config{URL: "ws://" + ln.Addr().String() + "/", Connections: 40, Duration: time.Second, SourceIPs: ips})
	if r.Connections.Attempted != 40 {
		t.Fatalf("attempted %d", r.Connections.Attempted)
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
		if _, err := New(c, stats.NewRecorder(1)); err == nil {
			t.Fatalf("config %d accepted: %+v", i, c)
		}
	}
}
