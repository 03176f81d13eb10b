package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/nbiolog"
)

func TestMain(m *testing.M) {
	nbiolog.Quiet() // nbio's errors only, on stderr: a failure is the first thing a reader sees
	os.Exit(m.Run())
}

// start runs a server on a free loopback port and shuts it down with the test.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	cfg.Logf = t.Logf
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return s
}

func mustDial(t *testing.T, url string, o dialOpts) *wsClient {
	t.Helper()
	c, err := dialWS(url, o)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	return b
}

func TestEchoIsExact(t *testing.T) {
	srv := start(t, Config{})
	c := mustDial(t, srv.URL(), dialOpts{})
	tests := []struct {
		name      string
		op        byte
		payload   []byte
		fragments int // 0 or 1: one frame
	}{
		{"utf8 text", opText, []byte("héllo, wörld ✓"), 1},
		{"binary with zeros", opBinary, []byte{0, 1, 0, 255, 0}, 1},
		{"125 bytes (7-bit length)", opBinary, randBytes(125), 1},
		{"126 bytes (16-bit length)", opBinary, randBytes(126), 1},
		{"65535 bytes", opBinary, randBytes(65535), 1},
		{"65536 bytes (64-bit length)", opBinary, randBytes(65536), 1},
		{"300 KiB, larger than nbio's default frame", opBinary, randBytes(300 << 10), 1},
		{"text in 3 fragments", opText, []byte(strings.Repeat("abc", 1000)), 3},
		{"binary in 5 fragments", opBinary, randBytes(10000), 5},
	}
	var wantBytes uint64
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.fragments > 1 {
				err = c.sendFragmented(tt.op, tt.payload, tt.fragments)
			} else {
				err = c.send(tt.op, tt.payload)
			}
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			op, got, err := c.read(5 * time.Second)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if op != tt.op {
				t.Fatalf("opcode %d, want %d", op, tt.op)
			}
			if !bytes.Equal(got, tt.payload) {
				t.Fatalf("payload differs: got %d bytes, want %d", len(got), len(tt.payload))
			}
		})
		wantBytes += uint64(len(tt.payload))
	}
	st := srv.Stats()
	if st.MessagesIn != uint64(len(tests)) || st.MessagesOut != uint64(len(tests)) {
		t.Fatalf("stats in/out = %d/%d, want %d each", st.MessagesIn, st.MessagesOut, len(tests))
	}
	if st.BytesIn != wantBytes || st.BytesOut != wantBytes {
		t.Fatalf("stats bytes in/out = %d/%d, want %d each", st.BytesIn, st.BytesOut, wantBytes)
	}
}

// nbio v1.6.12 drops empty text and binary messages in its parser (a message is delivered
// only if it has a payload), so the server cannot echo them. This pins that behaviour: if it
// fails after an nbio upgrade, empty messages now work, and the doc comment on Config should
// lose its caveat.
func TestEmptyMessagesAreNotDelivered(t *testing.T) {
	srv := start(t, Config{})
	c := mustDial(t, srv.URL(), dialOpts{})
	for _, op := range []byte{opText, opBinary} {
		if err := c.send(op, nil); err != nil {
			t.Fatalf("send empty: %v", err)
		}
	}
	if err := c.send(opText, []byte("x")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if op, p, err := c.read(5 * time.Second); err != nil || op != opText || string(p) != "x" {
		t.Fatalf("first reply op %d %q (err %v), want text \"x\" (empty messages skipped)", op, p, err)
	}
	if st := srv.Stats(); st.MessagesIn != 1 {
		t.Fatalf("MessagesIn %d, want 1", st.MessagesIn)
	}
}

func TestPingIsAnsweredWithPong(t *testing.T) {
	srv := start(t, Config{})
	c := mustDial(t, srv.URL(), dialOpts{})
	if err := c.send(opPing, []byte("p1")); err != nil {
		t.Fatalf("send ping: %v", err)
	}
	op, p, err := c.read(5 * time.Second)
	if err != nil || op != opPong || string(p) != "p1" {
		t.Fatalf("got op %d %q err %v, want pong \"p1\"", op, p, err)
	}
}

func TestBackendHeaderAndHello(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantHeader string
		wantHello  func(*Server) string // "" = no hello expected
	}{
		{"id and hello", Config{BackendID: "b7", Hello: true}, "b7",
			func(*Server) string { return "hello from b7" }},
		{"id without hello", Config{BackendID: "b8"}, "b8", nil},
		{"hello without id names the address", Config{Hello: true}, "",
			func(s *Server) string { return "hello from " + s.Addr() }},
		{"neither", Config{}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := start(t, tt.cfg)
			c := mustDial(t, srv.URL(), dialOpts{})
			if got := c.resp.Header.Get("X-Backend"); got != tt.wantHeader {
				t.Fatalf("X-Backend %q, want %q", got, tt.wantHeader)
			}
			if tt.wantHello != nil {
				op, p, err := c.read(5 * time.Second)
				if err != nil || op != opText || string(p) != tt.wantHello(srv) {
					t.Fatalf("first message op %d %q (err %v), want text %q", op, p, err, tt.wantHello(srv))
				}
			}
			// The next message must be the echo, proving nothing else was sent first.
			if err := c.send(opText, []byte("after")); err != nil {
				t.Fatalf("send: %v", err)
			}
			if op, p, err := c.read(5 * time.Second); err != nil || op != opText || string(p) != "after" {
				t.Fatalf("echo op %d %q (err %v), want text \"after\"", op, p, err)
			}
		})
	}
}

func TestSubprotocolIsAccepted(t *testing.T) {
	srv := start(t, Config{BackendID: "b1"})
	c := mustDial(t, srv.URL(), dialOpts{header: http.Header{"Sec-WebSocket-Protocol": {"chat.v2, chat.v1"}}})
	if got := c.resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat.v2" {
		t.Fatalf("Sec-WebSocket-Protocol %q, want chat.v2", got)
	}
	if got := c.resp.Header.Get("X-Backend"); got != "b1" {
		t.Fatalf("X-Backend %q, want b1", got)
	}
}

func TestHTTPAndUpgradePaths(t *testing.T) {
	srv := start(t, Config{BackendID: "bx"})
	base := "http://" + srv.Addr()
	plainTests := []struct {
		path     string
		wantCode int
		wantBody string // substring
	}{
		{"/", 200, IndexText},
		{"/ws", 404, "not found"},
		{"/favicon.ico", 404, "not found"},
		{"/status/502", 502, "status 502"},
		{"/status/404", 404, "status 404"},
		{"/status/200", 200, "status 200"},
		{"/status/99", 404, "not found"},
		{"/status/abc", 404, "not found"},
		{"/status/1000", 404, "not found"},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tt := range plainTests {
		t.Run("GET "+tt.path, func(t *testing.T) {
			resp, err := client.Get(base + tt.path)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Fatalf("status %d body %q, want %d containing %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
			if got := resp.Header.Get("X-Backend"); got != "bx" {
				t.Fatalf("X-Backend %q, want bx", got)
			}
		})
	}
	upgradeTests := []struct {
		path     string
		wantCode int // 101 or the refusal
	}{
		{"/", 101},
		{"/ws", 101},
		{"/any/deep/path?x=1", 101},
		{"/status/404", 404},
		{"/status/502", 502},
		{"/status/503", 503},
	}
	refusedBefore := srv.Stats().Refused
	refused := 0
	for _, tt := range upgradeTests {
		t.Run("upgrade "+tt.path, func(t *testing.T) {
			c, err := dialWS(srv.URL(), dialOpts{path: tt.path})
			if tt.wantCode == 101 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				if err := c.send(opBinary, []byte{1, 2, 3}); err != nil {
					t.Fatalf("send: %v", err)
				}
				if _, p, err := c.read(5 * time.Second); err != nil || !bytes.Equal(p, []byte{1, 2, 3}) {
					t.Fatalf("echo %v (err %v)", p, err)
				}
				return
			}
			refused++
			var he *handshakeError
			if !errors.As(err, &he) || he.status != tt.wantCode {
				t.Fatalf("dial error %v, want refusal with status %d", err, tt.wantCode)
			}
		})
	}
	if got := srv.Stats().Refused - refusedBefore; got != uint64(refused) {
		t.Fatalf("Stats.Refused grew by %d, want %d", got, refused)
	}
}

func TestMaxConnsAnswers503AndReleasesSlots(t *testing.T) {
	srv := start(t, Config{MaxConns: 2})
	a := mustDial(t, srv.URL(), dialOpts{})
	mustDial(t, srv.URL(), dialOpts{})
	_, err := dialWS(srv.URL(), dialOpts{})
	var he *handshakeError
	if !errors.As(err, &he) || he.status != http.StatusServiceUnavailable {
		t.Fatalf("third dial: %v, want a 503 refusal", err)
	}
	if st := srv.Stats(); st.Refused != 1 || st.Conns != 2 || st.PeakConns != 2 {
		t.Fatalf("stats %+v, want Refused 1, Conns 2, PeakConns 2", st)
	}
	a.Close()
	waitFor(t, "the closed connection to free its slot", 5*time.Second, func() bool { return srv.Conns() == 1 })
	c := mustDial(t, srv.URL(), dialOpts{})
	if err := c.send(opText, []byte("in")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "in" {
		t.Fatalf("echo %q (err %v)", p, err)
	}
}

// stamped is a message carrying its id, so replies are matched by id and not by order.
func stamped(id int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(id)) }

func TestDelayHoldsRepliesWithoutBlocking(t *testing.T) {
	const delay = 200 * time.Millisecond
	const burst = 20
	srv := start(t, Config{Delay: delay})
	a := mustDial(t, srv.URL(), dialOpts{})
	b := mustDial(t, srv.URL(), dialOpts{})

	sentA := make([]time.Time, burst)
	for i := range burst {
		sentA[i] = time.Now()
		if err := a.send(opBinary, stamped(i)); err != nil {
			t.Fatalf("send a: %v", err)
		}
	}
	sentB := time.Now()
	if err := b.send(opBinary, stamped(999)); err != nil {
		t.Fatalf("send b: %v", err)
	}
	// A server that slept per message would need burst×delay = 4 s; allow 2×delay.
	limit := 2 * delay
	for i := range burst {
		_, p, err := a.read(5 * time.Second)
		if err != nil {
			t.Fatalf("read a: %v", err)
		}
		id := int(binary.BigEndian.Uint32(p))
		if id != i {
			t.Fatalf("reply %d carries id %d: a connection's replies must keep their order", i, id)
		}
		if rtt := time.Since(sentA[id]); rtt < delay || rtt > limit {
			t.Fatalf("reply %d after %v, want within [%v, %v]", id, rtt, delay, limit)
		}
	}
	if _, _, err := b.read(5 * time.Second); err != nil {
		t.Fatalf("read b: %v", err)
	}
	if rtt := time.Since(sentB); rtt < delay || rtt > limit {
		t.Fatalf("other connection's reply after %v, want within [%v, %v]", rtt, delay, limit)
	}
}

func TestStallHoldsRepliesUntilItEnds(t *testing.T) {
	const every, stallFor = 400 * time.Millisecond, 200 * time.Millisecond
	const margin = 40 * time.Millisecond
	t0 := time.Now()
	srv := start(t, Config{Stall: Stall{Every: every, For: stallFor}})
	t1 := time.Now()
	// The server's stall clock starts somewhere in [t0, t1]: the first stall runs from
	// epoch+every to epoch+every+stallFor.
	c := mustDial(t, srv.URL(), dialOpts{})

	const n = 35 // one message every 20 ms for 700 ms covers the first stall
	sent := make([]time.Time, n)
	recv := make([]time.Time, n)
	done := make(chan error, 1)
	go func() {
		for range n {
			_, p, err := c.read(5 * time.Second)
			if err != nil {
				done <- err
				return
			}
			recv[binary.BigEndian.Uint32(p)] = time.Now()
		}
		done <- nil
	}()
	for i := range n {
		sent[i] = time.Now()
		if err := c.send(opBinary, stamped(i)); err != nil {
			t.Fatalf("send: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("read: %v", err)
	}
	skew := t1.Sub(t0) // uncertainty of the server's epoch
	held := 0
	for i := range n {
		rtt := recv[i].Sub(sent[i])
		since := sent[i].Sub(t0)
		k, phase := since/every, since%every // period k; stalls are [k·every, k·every+stallFor) for k ≥ 1
		switch {
		case k >= 1 && phase >= skew+margin && phase < stallFor-margin:
			// Sent inside a stall: answered only when it ends, and promptly then.
			held++
			end := k*every + stallFor
			if got := recv[i].Sub(t0); got < end || got > end+skew+4*margin {
				t.Fatalf("message %d sent %v after start, inside a stall, answered %v after start; want at the stall's end (%v)",
					i, since, got, end)
			}
		case (k == 0 || phase >= stallFor+skew+margin) && phase < every-margin:
			if rtt > 4*margin {
				t.Fatalf("message %d sent %v after start, outside any stall, took %v", i, since, rtt)
			}
		}
	}
	if held < 4 {
		t.Fatalf("only %d messages fell inside the stall; the test did not exercise it", held)
	}
}

func TestStallRelease(t *testing.T) {
	st := Stall{Every: 10 * time.Second, For: 2 * time.Second}
	tests := []struct {
		due, want time.Duration
	}{
		{0, 0},
		{5 * time.Second, 5 * time.Second},
		{9999 * time.Millisecond, 9999 * time.Millisecond},
		{10 * time.Second, 12 * time.Second}, // the first stall starts at Every, not at 0
		{11 * time.Second, 12 * time.Second},
		{11999 * time.Millisecond, 12 * time.Second},
		{12 * time.Second, 12 * time.Second},
		{15 * time.Second, 15 * time.Second},
		{31 * time.Second, 32 * time.Second},
	}
	for _, tt := range tests {
		if got := st.release(tt.due); got != tt.want {
			t.Fatalf("release(%v) = %v, want %v", tt.due, got, tt.want)
		}
	}
	if got := (Stall{}).release(11 * time.Second); got != 11*time.Second {
		t.Fatalf("zero Stall moved a reply to %v", got)
	}
}

func TestBroadcastReachesEveryClient(t *testing.T) {
	const n = 5
	srv := start(t, Config{Broadcast: true})
	clients := make([]*wsClient, n)
	for i := range clients {
		clients[i] = mustDial(t, srv.URL(), dialOpts{})
	}
	waitFor(t, "all clients registered", 5*time.Second, func() bool { return srv.Conns() == n })
	msgs := []struct {
		from    int
		op      byte
		payload []byte
	}{
		{0, opText, []byte("from zero")},
		{3, opBinary, randBytes(1000)},
	}
	for _, m := range msgs {
		if err := clients[m.from].send(m.op, m.payload); err != nil {
			t.Fatalf("send: %v", err)
		}
		for i, c := range clients {
			op, p, err := c.read(5 * time.Second)
			if err != nil || op != m.op || !bytes.Equal(p, m.payload) {
				t.Fatalf("client %d got op %d, %d bytes (err %v); want op %d, %d bytes", i, op, len(p), err, m.op, len(m.payload))
			}
		}
	}
	if st := srv.Stats(); st.MessagesIn != 2 || st.MessagesOut != 2*n {
		t.Fatalf("stats in/out %d/%d, want 2/%d", st.MessagesIn, st.MessagesOut, 2*n)
	}
}

func TestTLSSelfSigned(t *testing.T) {
	srv := start(t, Config{TLSSelfSigned: true, BackendID: "tls1"})
	if !strings.HasPrefix(srv.URL(), "wss://127.0.0.1:") {
		t.Fatalf("URL %q, want wss://127.0.0.1:…", srv.URL())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CertificatePEM()) {
		t.Fatalf("CertificatePEM is not a PEM certificate: %q", srv.CertificatePEM())
	}
	tests := []struct {
		name string
		cfg  *tls.Config
	}{
		{"insecure skip verify", &tls.Config{InsecureSkipVerify: true}},
		{"verified against CertificatePEM", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}},
		{"verified as localhost", &tls.Config{RootCAs: pool, ServerName: "localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDial(t, srv.URL(), dialOpts{tls: tt.cfg})
			if got := c.resp.Header.Get("X-Backend"); got != "tls1" {
				t.Fatalf("X-Backend %q, want tls1", got)
			}
			payload := randBytes(70000)
			if err := c.send(opBinary, payload); err != nil {
				t.Fatalf("send: %v", err)
			}
			if _, p, err := c.read(5 * time.Second); err != nil || !bytes.Equal(p, payload) {
				t.Fatalf("echo over TLS: %d bytes (err %v)", len(p), err)
			}
		})
	}
	// Verification against the system roots must fail: the certificate is self-signed.
	if _, err := dialWS(srv.URL(), dialOpts{tls: &tls.Config{ServerName: "127.0.0.1"}}); err == nil {
		t.Fatalf("dial verifying against system roots succeeded")
	}
}

func TestTLSFromFiles(t *testing.T) {
	certPEM, keyPEM, err := SelfSigned()
	if err != nil {
		t.Fatalf("SelfSigned: %v", err)
	}
	dir := t.TempDir()
	certFile, keyFile := dir+"/cert.pem", dir+"/key.pem"
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatalf("write: %v", err)
	}
	srv := start(t, Config{TLSCert: certFile, TLSKey: keyFile})
	if !bytes.Equal(srv.CertificatePEM(), certPEM) {
		t.Fatalf("CertificatePEM differs from the file served")
	}
	c := mustDial(t, srv.URL(), dialOpts{})
	if err := c.send(opText, []byte("over wss")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "over wss" {
		t.Fatalf("echo %q (err %v)", p, err)
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	srv, err := Start(Config{Addr: "127.0.0.1:0", Logf: t.Logf})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	const polite = 3
	var wg sync.WaitGroup
	codes := make([]int, polite)
	errs := make([]error, polite)
	for i := range polite {
		c := mustDial(t, srv.URL(), dialOpts{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			op, p, err := c.read(10 * time.Second)
			if err != nil {
				errs[i] = err
				return
			}
			if op != opClose {
				errs[i] = fmt.Errorf("got op %d, want close", op)
				return
			}
			codes[i] = closeCode(p)
			_ = c.send(opClose, closePayload(closeCode(p), "")) // complete the closing handshake
			_, _, err = c.read(5 * time.Second)                 // then the server closes TCP
			if err == nil {
				errs[i] = errors.New("server sent more after the close")
			}
		}()
	}
	silent := mustDial(t, srv.URL(), dialOpts{}) // never answers the close
	waitFor(t, "all clients registered", 5*time.Second, func() bool { return srv.Conns() == polite+1 })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("Shutdown took %v with one silent client; the grace period should bound it", took)
	}
	wg.Wait()
	for i := range polite {
		if errs[i] != nil || codes[i] != 1001 {
			t.Fatalf("client %d: close code %d, err %v; want 1001", i, codes[i], errs[i])
		}
	}
	if op, p, err := silent.read(5 * time.Second); err != nil || op != opClose || closeCode(p) != 1001 {
		t.Fatalf("silent client: op %d code %d err %v; want close 1001", op, closeCode(p), err)
	}
	if n := srv.Conns(); n != 0 {
		t.Fatalf("%d connections left after Shutdown", n)
	}
	if _, err := dialWS(srv.URL(), dialOpts{tmo: time.Second}); err == nil {
		t.Fatalf("dial after Shutdown succeeded")
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv := start(t, Config{IdleTimeout: idle})
	quiet := mustDial(t, srv.URL(), dialOpts{})
	chatty := mustDial(t, srv.URL(), dialOpts{})

	began := time.Now()
	quietErr := make(chan error, 1)
	go func() {
		_, _, err := quiet.read(10 * time.Second)
		quietErr <- err
	}()
	for i := range 12 { // 12 × 60 ms = 720 ms, well past the idle timeout
		if err := chatty.send(opText, []byte("tick")); err != nil {
			t.Fatalf("chatty send %d: %v", i, err)
		}
		if _, _, err := chatty.read(2 * time.Second); err != nil {
			t.Fatalf("chatty connection cut after %v: %v", time.Since(began), err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	select {
	case err := <-quietErr:
		if err == nil || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("quiet connection: %v, want it closed by the server", err)
		}
		// It must have lived at least the idle timeout (it was dialed before began).
	case <-time.After(5 * time.Second):
		t.Fatalf("quiet connection still open %v after dial with IdleTimeout %v", time.Since(began), idle)
	}
	waitFor(t, "the idle connection to be unregistered", 5*time.Second, func() bool { return srv.Conns() == 1 })
}

func TestIdleTimeoutNotBeforeItsTime(t *testing.T) {
	const idle = 400 * time.Millisecond
	srv := start(t, Config{IdleTimeout: idle})
	c := mustDial(t, srv.URL(), dialOpts{})
	began := time.Now()
	_, _, err := c.read(10 * time.Second)
	if err == nil {
		t.Fatalf("read a message on an idle connection")
	}
	if took := time.Since(began); took < idle-50*time.Millisecond || took > idle+2*time.Second {
		t.Fatalf("closed after %v, want about %v", took, idle)
	}
}

func TestManyConcurrentClients(t *testing.T) {
	const n = 2000
	const rounds = 3
	srv := start(t, Config{})
	clients := make([]*wsClient, n)
	var dialWG sync.WaitGroup
	dialErrs := make(chan error, n)
	sem := make(chan struct{}, 200) // the listen backlog is finite; dial in waves
	for i := range n {
		dialWG.Add(1)
		go func() {
			defer dialWG.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := dialWS(srv.URL(), dialOpts{tmo: 20 * time.Second})
			if err != nil {
				dialErrs <- err
				return
			}
			clients[i] = c
		}()
	}
	dialWG.Wait()
	close(dialErrs)
	for err := range dialErrs {
		t.Fatalf("dial: %v", err)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	waitFor(t, "all clients registered", 10*time.Second, func() bool { return srv.Conns() == n })

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				msg := fmt.Appendf(nil, "client %d round %d", i, r)
				if err := c.send(opText, msg); err != nil {
					errs <- err
					return
				}
				_, p, err := c.read(30 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				if !bytes.Equal(p, msg) {
					errs <- fmt.Errorf("client %d got %q, want %q", i, p, msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v", err)
	}
	st := srv.Stats()
	if st.PeakConns != n || st.MessagesIn != n*rounds || st.MessagesOut != n*rounds {
		t.Fatalf("stats %+v, want PeakConns %d and %d messages each way", st, n, n*rounds)
	}
	for _, c := range clients {
		c.Close()
	}
	waitFor(t, "every closed connection to be unregistered", 10*time.Second, func() bool { return srv.Conns() == 0 })
	if st := srv.Stats(); st.Closed != n {
		t.Fatalf("Stats.Closed %d, want %d", st.Closed, n)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // error substring
	}{
		{"negative delay", Config{Delay: -time.Second}, "negative delay"},
		{"stall without For", Config{Stall: Stall{Every: time.Second}}, "both Every and For"},
		{"stall without Every", Config{Stall: Stall{For: time.Second}}, "both Every and For"},
		{"stall as long as its period", Config{Stall: Stall{Every: time.Second, For: time.Second}}, "shorter than Every"},
		{"negative pollers", Config{Pollers: -1}, "negative pollers"},
		{"negative max conns", Config{MaxConns: -1}, "negative max conns"},
		{"negative idle", Config{IdleTimeout: -1}, "negative idle"},
		{"cert without key", Config{TLSCert: "c.pem"}, "both a certificate and a key"},
		{"cert and self-signed", Config{TLSCert: "c.pem", TLSKey: "k.pem", TLSSelfSigned: true}, "not both"},
		{"missing cert file", Config{TLSCert: "/nonexistent/c.pem", TLSKey: "/nonexistent/k.pem"}, "TLS certificate"},
		{"header injection", Config{BackendID: "a\r\nSet-Cookie: x"}, "line breaks"},
		{"bad address", Config{Addr: "127.0.0.1:notaport"}, "server: listen on 127.0.0.1:notaport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(tt.cfg)
			if err == nil {
				_ = s.Shutdown(context.Background())
				t.Fatalf("Start succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "server: ") {
				t.Fatalf("error %q, want it prefixed \"server: \" and containing %q", err, tt.want)
			}
		})
	}
}

func TestAddressInUseIsReported(t *testing.T) {
	first := start(t, Config{})
	_, err := Start(Config{Addr: first.Addr()})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Start on %s: %v, want EADDRINUSE", first.Addr(), err)
	}
}

func TestURL(t *testing.T) {
	srv := start(t, Config{Addr: ":0"})
	if !strings.HasPrefix(srv.URL(), "ws://127.0.0.1:") || !strings.HasSuffix(srv.URL(), "/") {
		t.Fatalf("URL %q for an all-interfaces listener, want ws://127.0.0.1:PORT/", srv.URL())
	}
	c := mustDial(t, srv.URL(), dialOpts{})
	if err := c.send(opText, []byte("x")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if _, p, err := c.read(5 * time.Second); err != nil || string(p) != "x" {
		t.Fatalf("echo %q (err %v)", p, err)
	}
}
