package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/internal/nbiolog"
	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/server"
)

func TestMain(m *testing.M) {
	nbiolog.Quiet() // nbio's errors only, on stderr: a failure is the first thing a reader sees
	os.Exit(m.Run())
}

// startServer runs the reference server on a free loopback port for the test.
func startServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Pollers == 0 {
		cfg.Pollers = 1
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

// probeTimeout is the per-phase timeout of probes that expect an answer: generous, so a
// handshake on a loaded machine under -race is not mistaken for a silent server. The tests
// of the timeout itself set a shorter one.
const probeTimeout = 30 * time.Second

// probe runs Run with a bounded context and fails the test on an error.
func probe(t *testing.T, o Options) *Report {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = probeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run(%s): %v", o.URL, err)
	}
	return rep
}

// text renders the report, for failure messages and content checks.
func text(t *testing.T, rep *Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	return b.String()
}

// wantOK fails unless the probe found nothing wrong.
func wantOK(t *testing.T, rep *Report) {
	t.Helper()
	if !rep.OK || len(rep.Diagnoses) != 0 {
		t.Fatalf("probe found faults:\n%s", text(t, rep))
	}
}

// wantFault fails unless the first diagnosis is fault and its summary and hint contain
// the given fragments.
func wantFault(t *testing.T, rep *Report, fault Fault, fragments ...string) {
	t.Helper()
	d := rep.Diagnosis()
	if d == nil {
		t.Fatalf("no diagnosis, want %s:\n%s", fault, text(t, rep))
	}
	if d.Fault != fault {
		t.Fatalf("fault %s, want %s:\n%s", d.Fault, fault, text(t, rep))
	}
	if rep.OK {
		t.Fatalf("OK is true with a diagnosis")
	}
	for _, f := range fragments {
		if !strings.Contains(d.Summary+"\n"+d.Hint, f) {
			t.Fatalf("diagnosis lacks %q:\ndiagnosis: %s\nhint: %s", f, d.Summary, d.Hint)
		}
	}
	if out := text(t, rep); !strings.Contains(out, "diagnosis: "+d.Summary) || !strings.Contains(out, "hint: "+d.Hint) {
		t.Fatalf("text report does not show the diagnosis and hint:\n%s", out)
	}
}

func TestEchoHappyPath(t *testing.T) {
	srv := startServer(t, server.Config{BackendID: "backend-7"})
	rep := probe(t, Options{
		URL:     srv.URL() + "chat?token=s3cret&room=1",
		Message: DefaultMessage,
		Header:  http.Header{"Authorization": {"Bearer s3cret"}, "X-Trace": {"abc"}},
		Origin:  "https://app.example",
	})
	wantOK(t, rep)
	if rep.Schema != Schema {
		t.Fatalf("schema %q", rep.Schema)
	}
	if !rep.DNS.Literal || rep.DNS.Addrs[0] != "127.0.0.1" {
		t.Fatalf("DNS %+v, want the literal 127.0.0.1", rep.DNS)
	}
	if rep.Connect.Remote != srv.Addr() || rep.Connect.Local == "" {
		t.Fatalf("connect %+v, want remote %s", rep.Connect, srv.Addr())
	}
	if rep.TLS != nil {
		t.Fatalf("TLS phase on ws://: %+v", rep.TLS)
	}
	u := rep.Upgrade
	if u.Status != 101 || !strings.HasPrefix(u.StatusLine, "HTTP/1.1 101") {
		t.Fatalf("upgrade %+v", u)
	}
	if got := u.ResponseHeaders["X-Backend"]; got != "backend-7" {
		t.Fatalf("X-Backend %q, want backend-7 (headers %v)", got, u.ResponseHeaders)
	}
	if got := u.RequestHeaders["Authorization"]; got != "[redacted]" {
		t.Fatalf("Authorization shown as %q, want it redacted", got)
	}
	if u.RequestHeaders["X-Trace"] != "abc" || u.RequestHeaders["Origin"] != "https://app.example" {
		t.Fatalf("request headers %v lack X-Trace or Origin", u.RequestHeaders)
	}
	if strings.Contains(u.RequestLine, "s3cret") || !strings.Contains(u.RequestLine, "room=1") {
		t.Fatalf("request line %q: want the token redacted and room kept", u.RequestLine)
	}
	e := rep.Exchange
	if e == nil || e.Received == nil || !e.Echo || e.Received.Data != DefaultMessage || e.RTT <= 0 {
		t.Fatalf("exchange %+v", e)
	}
	c := rep.Close
	if c == nil || c.Initiator != "client" || c.Code != 1000 || c.RTT <= 0 || c.Error != "" {
		t.Fatalf("close %+v", c)
	}
	out := text(t, rep)
	for _, want := range []string{"< X-Backend: backend-7", "> Authorization: [redacted]", `received text "hello server" (12 bytes), an echo`, "the server answered 1000", "OK: the endpoint speaks WebSocket"} {
		if !strings.Contains(out, want) {
			t.Fatalf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret") {
		t.Fatalf("text shows the secret:\n%s", out)
	}
}

func TestJSONReport(t *testing.T) {
	srv := startServer(t, server.Config{})
	rep := probe(t, Options{URL: srv.URL(), Message: "hi"})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	for _, k := range []string{"schema", "dns", "connect", "upgrade", "exchange", "close", "diagnoses", "ok", "total_ms"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("JSON lacks %q: %s", k, b)
		}
	}
	if _, ok := m["tls"]; ok {
		t.Fatalf("JSON has a tls phase for ws://: %s", b)
	}
	// rtt_ms is the same RTT in milliseconds (not µs or ns), with microsecond precision.
	rtt, ok := m["exchange"].(map[string]any)["rtt_ms"].(float64)
	if want := float64(rep.Exchange.RTT) / float64(time.Millisecond); !ok || rtt <= 0 || math.Abs(rtt-want) > 0.001 {
		t.Fatalf("exchange.rtt_ms = %v, want %.3f (the RTT %v in milliseconds)", m["exchange"], want, time.Duration(rep.Exchange.RTT))
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal into Report: %v", err)
	}
	// Milliseconds with three decimals keep microseconds.
	if d := time.Duration(back.Exchange.RTT - rep.Exchange.RTT); d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("RTT %v came back as %v", time.Duration(rep.Exchange.RTT), time.Duration(back.Exchange.RTT))
	}
}

func TestWSS(t *testing.T) {
	srv := startServer(t, server.Config{TLSSelfSigned: true, BackendID: "tls-1"})
	pinned := x509.NewCertPool()
	if !pinned.AppendCertsFromPEM(srv.CertificatePEM()) {
		t.Fatalf("server certificate does not parse")
	}
	t.Run("insecure shows what failed", func(t *testing.T) {
		rep := probe(t, Options{URL: srv.URL(), Message: DefaultMessage, Insecure: true})
		wantOK(t, rep)
		tl := rep.TLS
		if tl == nil || tl.Version == "" || tl.CipherSuite == "" || tl.ALPN != "http/1.1" {
			t.Fatalf("TLS %+v", tl)
		}
		if tl.Verified || len(tl.Problems) != 1 || !strings.Contains(tl.Problems[0], "self-signed") {
			t.Fatalf("verification: verified=%v problems=%q, want one self-signed problem", tl.Verified, tl.Problems)
		}
		leaf := tl.Certificates[0]
		if !strings.Contains(strings.Join(leaf.Names, ","), "127.0.0.1") || !leaf.SelfSigned || leaf.DaysLeft < 360 {
			t.Fatalf("leaf %+v", leaf)
		}
		if rep.Upgrade.ResponseHeaders["X-Backend"] != "tls-1" || !rep.Exchange.Echo {
			t.Fatalf("upgrade/exchange over TLS: %+v %+v", rep.Upgrade, rep.Exchange)
		}
		if out := text(t, rep); !strings.Contains(out, "verification FAILED, ignored (--insecure)") {
			t.Fatalf("text does not say verification was skipped:\n%s", out)
		}
	})
	t.Run("unknown authority", func(t *testing.T) {
		rep := probe(t, Options{URL: srv.URL(), Message: DefaultMessage})
		wantFault(t, rep, FaultTLSUnknownAuthority, "self-signed", "--insecure")
		if rep.Upgrade != nil {
			t.Fatalf("upgrade attempted after a failed verification")
		}
	})
	t.Run("pinned root verifies", func(t *testing.T) {
		rep := probe(t, Options{URL: srv.URL(), Message: DefaultMessage, RootCAs: pinned})
		wantOK(t, rep)
		if !rep.TLS.Verified || len(rep.TLS.Problems) != 0 {
			t.Fatalf("TLS %+v, want verified", rep.TLS)
		}
	})
	t.Run("name mismatch names the covered names", func(t *testing.T) {
		// The certificate covers localhost and loopback addresses; 127.0.0.2 reaches the
		// same listener only if it listens there, so resolve a name the cert lacks to
		// 127.0.0.1 instead.
		_, port, _ := net.SplitHostPort(srv.Addr())
		res := fakeResolver(t, map[string]string{"ws.example.test.": "127.0.0.1"})
		rep := probe(t, Options{URL: "wss://ws.example.test:" + port + "/", RootCAs: pinned, Resolver: res})
		wantFault(t, rep, FaultTLSNameMismatch, `"ws.example.test"`, "localhost, 127.0.0.1, ::1")
	})
}

func TestNodeWS(t *testing.T) {
	t.Run("echo", func(t *testing.T) {
		url := testenv.NodeWS(t, "echo")
		rep := probe(t, Options{URL: url, Message: DefaultMessage, Subprotocols: []string{"chat"}})
		wantOK(t, rep)
		if !rep.Exchange.Echo || rep.Close.Code != 1000 {
			t.Fatalf("exchange %+v close %+v", rep.Exchange, rep.Close)
		}
	})
	t.Run("greeting", func(t *testing.T) {
		url := testenv.NodeWS(t, "hello")
		rep := probe(t, Options{URL: url, Message: DefaultMessage, ExpectGreeting: true})
		wantOK(t, rep)
		if g := rep.Greeting; g == nil || g.Received == nil || g.Received.Data != "hello from node" {
			t.Fatalf("greeting %+v", rep.Greeting)
		}
		if !rep.Exchange.Echo {
			t.Fatalf("after the greeting the exchange is %+v, want the echo", rep.Exchange)
		}
	})
	t.Run("invalid frame", func(t *testing.T) {
		url := testenv.NodeWS(t, "invalid-frame")
		rep := probe(t, Options{URL: url, Message: DefaultMessage})
		wantFault(t, rep, FaultProtocol, "broke the WebSocket protocol")
		if rep.Close == nil || rep.Close.SentCode != 1002 {
			t.Fatalf("close %+v, want 1002 sent", rep.Close)
		}
	})
}

func TestPlainHTTPPage(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "test-page")
		fmt.Fprint(w, "<html><body>Welcome to the shop</body></html>")
	}))
	defer hs.Close()
	rep := probe(t, Options{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", Message: DefaultMessage})
	wantFault(t, rep, FaultHTTPStatus, "does not pass WebSocket: it served a normal page", "proxy_set_header Upgrade $http_upgrade")
	if rep.Upgrade.Status != 200 || !strings.Contains(rep.Upgrade.Body, "Welcome to the shop") || rep.Upgrade.ResponseHeaders["Server"] != "test-page" {
		t.Fatalf("upgrade %+v", rep.Upgrade)
	}
	if rep.Exchange != nil {
		t.Fatalf("exchange attempted after a failed upgrade")
	}
}

func TestStatusAnswers(t *testing.T) {
	srv := startServer(t, server.Config{BackendID: "b2"})
	tests := []struct {
		status    int
		fragments []string
	}{
		{400, []string{"malformed", "Upgrade/Connection"}},
		{401, []string{"authentication or Origin", "--origin"}},
		{403, []string{"authentication or Origin", "Authorization"}},
		{404, []string{`path "/status/404"`}},
		{426, []string{"426 Upgrade Required", "proxy_set_header Upgrade"}},
		{502, []string{"could not reach a backend that speaks WebSocket", "timeout tunnel"}},
		{503, []string{"could not reach a backend", "connection limit"}},
		{504, []string{"could not reach a backend", "timeout server"}},
		{500, []string{"HTTP 500", "instead of 101"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			rep := probe(t, Options{URL: fmt.Sprintf("%sstatus/%d", srv.URL(), tt.status), Message: DefaultMessage})
			wantFault(t, rep, FaultHTTPStatus, tt.fragments...)
			if rep.Upgrade.Status != tt.status {
				t.Fatalf("status %d, want %d", rep.Upgrade.Status, tt.status)
			}
			if rep.Upgrade.ResponseHeaders["X-Backend"] != "b2" {
				t.Fatalf("X-Backend missing from a %d: %v", tt.status, rep.Upgrade.ResponseHeaders)
			}
			if want := fmt.Sprintf("status %d as requested", tt.status); !strings.Contains(rep.Upgrade.Body, want) {
				t.Fatalf("body %q lacks %q", rep.Upgrade.Body, want)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	port := testenv.FreePort(t)
	rep := probe(t, Options{URL: fmt.Sprintf("ws://127.0.0.1:%d/", port), Message: DefaultMessage})
	wantFault(t, rep, FaultRefused, fmt.Sprintf("nothing listens on 127.0.0.1:%d", port), "8080 (ws) or 8443 (wss)")
	if len(rep.Connect.Attempts) != 1 || rep.Connect.Attempts[0].Error == "" || rep.Upgrade != nil {
		t.Fatalf("connect %+v", rep.Connect)
	}
}

func TestWSSAtPlainHTTP(t *testing.T) {
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	rep := probe(t, Options{URL: "wss" + strings.TrimPrefix(hs.URL, "http") + "/", Message: DefaultMessage})
	wantFault(t, rep, FaultTLSPlainHTTP, "the server answered in plain HTTP", "use ws://")
}

func TestWSAtTLS(t *testing.T) {
	t.Run("reference server", func(t *testing.T) {
		srv := startServer(t, server.Config{TLSSelfSigned: true})
		rep := probe(t, Options{URL: "ws" + strings.TrimPrefix(srv.URL(), "wss"), Message: DefaultMessage})
		wantFault(t, rep, FaultTLSExpected, "expects TLS", "use wss://")
	})
	t.Run("net/http", func(t *testing.T) {
		hs := httptest.NewTLSServer(http.NotFoundHandler())
		defer hs.Close()
		rep := probe(t, Options{URL: "ws" + strings.TrimPrefix(hs.URL, "https") + "/", Message: DefaultMessage})
		wantFault(t, rep, FaultTLSExpected, "expects TLS", "use wss://")
	})
	t.Run("alert bytes", func(t *testing.T) {
		addr := rawServer(t, func(c net.Conn) {
			_, _ = c.Read(make([]byte, 1024))
			_, _ = c.Write([]byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46})
		})
		rep := probe(t, Options{URL: "ws://" + addr + "/", Message: DefaultMessage})
		wantFault(t, rep, FaultTLSExpected, "TLS alert, byte 0x15")
	})
}

// TestIdleCut holds for far longer than the server waits, so the cut always comes first
// however slow the machine: the hold's length never decides the outcome. After is checked
// against what the same run measured, not against the wall clock: it cannot be longer than
// the whole probe, and for the reference server, whose idle timer starts when it reads the
// message (after the probe sent it), After plus the exchange's RTT is at least IdleTimeout.
func TestIdleCut(t *testing.T) {
	const idle = time.Second
	tests := []struct {
		name string
		url  func(t *testing.T) string
		// min is a lower bound on After + the exchange's RTT; 0 checks none (Node's timer
		// starts when the connection opens, a moment the report does not pin down).
		min time.Duration
	}{
		{"reference server IdleTimeout 1s", func(t *testing.T) string {
			return startServer(t, server.Config{IdleTimeout: idle}).URL()
		}, idle - 20*time.Millisecond}, // 20 ms for the poller's deadline granularity, never for slowness
		{"node close-after 1500ms", func(t *testing.T) string {
			return testenv.NodeWS(t, "close-after", "--after-ms", "1500")
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := probe(t, Options{URL: tt.url(t), Message: DefaultMessage, Idle: time.Minute})
			wantFault(t, rep, FaultIdleCut, "cut after", "proxy_read_timeout", "timeout tunnel")
			i := rep.Idle
			if !i.Cut || i.How == "" || i.Code == 0 || i.Held != 0 {
				t.Fatalf("idle %+v", i)
			}
			after := time.Duration(i.After)
			if after <= 0 || after > time.Duration(rep.Total)-time.Duration(rep.Exchange.RTT) {
				t.Fatalf("cut after %v, want in (0, %v]: the probe's total %v less the exchange's RTT %v", after,
					time.Duration(rep.Total)-time.Duration(rep.Exchange.RTT), time.Duration(rep.Total), time.Duration(rep.Exchange.RTT))
			}
			if got := after + time.Duration(rep.Exchange.RTT); got < tt.min {
				t.Fatalf("cut after %v + RTT %v = %v, want at least %v: the server cannot cut before its timeout", after, time.Duration(rep.Exchange.RTT), got, tt.min)
			}
			if d := rep.Diagnosis(); !strings.Contains(d.Summary, fmt.Sprintf("code %d", i.Code)) {
				t.Fatalf("diagnosis %q does not name code %d", d.Summary, i.Code)
			}
			if !rep.Exchange.Echo {
				t.Fatalf("the exchange before the hold failed: %+v", rep.Exchange)
			}
			t.Logf("%s: cut after %v by %s, code %d", tt.name, time.Duration(i.After), i.How, i.Code)
		})
	}
}

func TestIdleNodeCloseAfterIs1006(t *testing.T) {
	rep := probe(t, Options{URL: testenv.NodeWS(t, "close-after", "--after-ms", "300"), Message: DefaultMessage, Idle: time.Minute})
	wantFault(t, rep, FaultIdleCut, "code 1006")
	if i := rep.Idle; i.Code != 1006 || !strings.Contains(i.How, "without a close frame") {
		t.Fatalf("idle %+v, want 1006 without a close frame", i)
	}
}

// TestIdlePingsKeepAlive holds twice as long as the server's idle timeout: without pings the
// connection is cut half way. Pings go out every 100 ms, 20 to a timeout, so only a stall of
// the whole process for 2 s could starve the server of them.
func TestIdlePingsKeepAlive(t *testing.T) {
	const timeout, hold, every = 2 * time.Second, 4 * time.Second, 100 * time.Millisecond
	srv := startServer(t, server.Config{IdleTimeout: timeout})
	rep := probe(t, Options{URL: srv.URL(), Message: DefaultMessage, Idle: hold, PingEvery: every})
	wantOK(t, rep)
	i := rep.Idle
	// At least one ping per timeout reached the server, or it would have cut; a ticker sends
	// at most one per period; a pong answers a ping (the last ones may still be on the way).
	if i.Cut || time.Duration(i.Held) != hold || i.PingsSent < int(hold/timeout) || i.PingsSent > int(hold/every)+1 || i.Pongs < 1 || i.Pongs > i.PingsSent {
		t.Fatalf("idle %+v, want no cut, held %v, %d..%d pings and 1..pings pongs", i, hold, int(hold/timeout), int(hold/every)+1)
	}
	if out := text(t, rep); !strings.Contains(out, "still open after 4s (ping every 100ms") {
		t.Fatalf("text:\n%s", out)
	}
}

func TestIdleStillOpen(t *testing.T) {
	srv := startServer(t, server.Config{})
	rep := probe(t, Options{URL: srv.URL(), Idle: 300 * time.Millisecond})
	wantOK(t, rep)
	if rep.Exchange != nil || rep.Idle.Cut || rep.Close.Code != 1000 {
		t.Fatalf("exchange %+v idle %+v close %+v", rep.Exchange, rep.Idle, rep.Close)
	}
}

func TestDNSFailure(t *testing.T) {
	res := fakeResolver(t, nil)
	rep := probe(t, Options{URL: "ws://nowhere.example.test:8080/", Message: DefaultMessage, Resolver: res})
	wantFault(t, rep, FaultDNS, `"nowhere.example.test" does not resolve`)
	if rep.Connect != nil {
		t.Fatalf("connect attempted after a DNS failure")
	}
}

func TestDNSResolves(t *testing.T) {
	srv := startServer(t, server.Config{})
	_, port, _ := net.SplitHostPort(srv.Addr())
	res := fakeResolver(t, map[string]string{"ws.example.test.": "127.0.0.1"})
	rep := probe(t, Options{URL: "ws://ws.example.test:" + port + "/", Message: DefaultMessage, Resolver: res})
	wantOK(t, rep)
	if rep.DNS.Literal || len(rep.DNS.Addrs) != 1 || rep.DNS.Addrs[0] != "127.0.0.1" {
		t.Fatalf("DNS %+v", rep.DNS)
	}
	if !strings.Contains(text(t, rep), "ws.example.test -> 127.0.0.1") {
		t.Fatalf("text:\n%s", text(t, rep))
	}
}

func TestBadUpgrade(t *testing.T) {
	tests := []struct {
		name     string
		response func(key string) string
		want     string
	}{
		{"wrong accept", func(string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsproto.AcceptKey(wsproto.NewKey()) + "\r\n\r\n"
		}, "does not match the key"},
		{"no upgrade header", func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + wsproto.AcceptKey(key) + "\r\n\r\n"
		}, "Upgrade header"},
		{"no connection header", func(key string) string {
			return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + wsproto.AcceptKey(key) + "\r\n\r\n"
		}, "Connection header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawServer(t, func(c net.Conn) {
				key := readUpgrade(c)
				_, _ = io.WriteString(c, tt.response(key))
				_, _ = c.Read(make([]byte, 1)) // hold until the client gives up
			})
			rep := probe(t, Options{URL: "ws://" + addr + "/", Message: DefaultMessage})
			wantFault(t, rep, FaultBadUpgrade, tt.want, "Sec-WebSocket-Accept")
		})
	}
}

// silentTimeout is the probe's per-phase timeout in the tests of a server that goes silent. It
// bounds every phase, so the phases before the silence (connect, upgrade) must fit in it too:
// 2 s leaves a loaded machine ample time for a loopback handshake, yet keeps the waits short.
const silentTimeout = 2 * time.Second

func TestNoReply(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		key := readUpgrade(c)
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+wsproto.AcceptKey(key)+"\r\n\r\n")
		_, _ = io.Copy(io.Discard, c) // read everything, answer nothing
	})
	rep := probe(t, Options{URL: "ws://" + addr + "/", Message: DefaultMessage, Timeout: silentTimeout})
	wantFault(t, rep, FaultNoReply, "no reply to \"hello server\" within 2s", "may be normal")
	if w := time.Duration(rep.Exchange.Waited); w < silentTimeout {
		t.Fatalf("gave up on the reply after %v, before its %v timeout", w, silentTimeout)
	}
	if rep.Close == nil || !strings.Contains(rep.Close.Error, "did not answer the close frame") {
		t.Fatalf("close %+v, want the unanswered close reported", rep.Close)
	}
}

func TestNoUpgradeAnswer(t *testing.T) {
	tests := []struct {
		name  string
		serve func(net.Conn)
		want  string
	}{
		{"silent", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }, "no answer to the upgrade request within"},
		{"closes", func(c net.Conn) { readUpgrade(c) }, "closed the connection without answering"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawServer(t, tt.serve)
			rep := probe(t, Options{URL: "ws://" + addr + "/", Message: DefaultMessage, Timeout: silentTimeout})
			wantFault(t, rep, FaultNoUpgradeAnswer, tt.want, "wss://")
		})
	}
}

func TestExpiredCertificate(t *testing.T) {
	now := time.Now()
	ca := newCert(t, "Test CA", nil, now.Add(-48*time.Hour), now.Add(48*time.Hour), nil)
	leaf := newCert(t, "expired", ca, now.Add(-30*24*time.Hour), now.Add(-24*time.Hour), []string{"127.0.0.1"})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.pair}})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	rep := probe(t, Options{URL: "wss://" + ln.Addr().String() + "/", RootCAs: roots, Message: DefaultMessage})
	wantFault(t, rep, FaultTLSExpired, "expired on "+leaf.cert.NotAfter.UTC().Format(time.DateOnly), "renew")
	if c := rep.TLS.Certificates[0]; c.DaysLeft >= 0 {
		t.Fatalf("leaf %+v, want negative days left", c)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no URL", Options{}, "no URL"},
		{"http scheme", Options{URL: "http://127.0.0.1/"}, "ws://"},
		{"https scheme", Options{URL: "https://127.0.0.1/"}, "wss://"},
		{"other scheme", Options{URL: "ftp://127.0.0.1/"}, "not ws or wss"},
		{"managed header", Options{URL: "ws://127.0.0.1/", Header: http.Header{"Sec-Websocket-Key": {"x"}}}, "cannot be overridden"},
		{"ping without idle", Options{URL: "ws://127.0.0.1/", PingEvery: time.Second}, "idle hold"},
		{"negative timeout", Options{URL: "ws://127.0.0.1/", Timeout: -time.Second}, "negative timeout"},
		{"secret in bad URL", Options{URL: "ws://u:p@127.0.0.1:bad/"}, "redacted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Run(context.Background(), tt.o)
			if err == nil || rep != nil {
				t.Fatalf("Run = %v, %v; want an error", rep, err)
			}
			if !strings.HasPrefix(err.Error(), "probe: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want the probe: prefix and %q", err, tt.want)
			}
			if strings.Contains(err.Error(), ":p@") {
				t.Fatalf("error %q shows the password", err)
			}
		})
	}
}

// TestInterrupted gives the silent upgrade a timeout far beyond the test's wait: only the
// context ending can make Run return in time.
func TestInterrupted(t *testing.T) {
	const interruptAfter = 200 * time.Millisecond
	addr := rawServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	start := time.Now() // before the context's clock starts: the lower bound below holds
	ctx, cancel := context.WithTimeout(context.Background(), interruptAfter)
	defer cancel()
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, Options{URL: "ws://" + addr + "/", Timeout: time.Hour})
		done <- result{rep, err}
	}()
	var rep *Report
	var err error
	select {
	case r := <-done:
		rep, err = r.rep, r.err
	case <-time.After(2 * time.Minute):
		t.Fatalf("Run still going 2 minutes after its context ended (its phase timeout is an hour)")
	}
	if err == nil || rep == nil || !rep.Interrupted || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, %v; want the partial interrupted report and the context's error", rep, err)
	}
	if d := time.Since(start); d < interruptAfter {
		t.Fatalf("Run returned after %v, before its context ended at %v", d, interruptAfter)
	}
	if len(rep.Diagnoses) != 0 || rep.Upgrade == nil {
		t.Fatalf("interrupted probe diagnosed %v (upgrade %+v): an interruption is not the target's fault", rep.Diagnoses, rep.Upgrade)
	}
}

// rawServer accepts loopback connections and runs serve on each until the test ends.
func rawServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	connCh := make(chan net.Conn)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			connCh <- c
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	collect := make(chan struct{})
	go func() {
		for c := range connCh {
			conns = append(conns, c)
		}
		close(collect)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(connCh)
		<-collect
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// readUpgrade reads an upgrade request head and returns its Sec-WebSocket-Key.
func readUpgrade(c net.Conn) string {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return ""
	}
	return req.Header.Get("Sec-Websocket-Key")
}

// TestInterruptedIdleClosesPolitely interrupts the hold 500 ms after it began (testHookIdle
// says when), however long the phases before it took.
func TestInterruptedIdleClosesPolitely(t *testing.T) {
	const interruptAfter, hold = 500 * time.Millisecond, time.Hour
	srv := startServer(t, server.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testHookIdle = func() { time.AfterFunc(interruptAfter, cancel) }
	defer func() { testHookIdle = nil }()
	rep, err := Run(ctx, Options{URL: srv.URL(), Message: DefaultMessage, Idle: hold, Timeout: probeTimeout})
	if err == nil || rep == nil || !rep.Interrupted || rep.Idle == nil {
		t.Fatalf("Run = %+v, %v; want an interrupted report with an idle phase and an error", rep, err)
	}
	// Held is at least the time from the hold's start to the interruption, and no longer than
	// the whole probe.
	if held := time.Duration(rep.Idle.Held); rep.Idle.Cut || held < interruptAfter || held > time.Duration(rep.Total) {
		t.Fatalf("idle %+v, want not cut and held in [%v, total %v]", rep.Idle, interruptAfter, time.Duration(rep.Total))
	}
	if rep.Close == nil || rep.Close.Code != 1000 || len(rep.Diagnoses) != 0 {
		t.Fatalf("close %+v diagnoses %v, want a clean close and no fault", rep.Close, rep.Diagnoses)
	}
	if out := text(t, rep); !strings.Contains(out, "(interrupted: ") || !strings.Contains(out, "Interrupted after") || strings.Contains(out, "OK:") {
		t.Fatalf("text:\n%s", out)
	}
}
