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
	"net"
	"net/http"
	"os"
	"slices"
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

// patience bounds every wait for something that must happen (a reply, a close, a count):
// generous, so a loaded machine running -race is slow, not failing. It is never a bound
// on how fast the server is.
const patience = time.Minute

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
			op, got, err := c.read(patience)
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
	if op, p, err := c.read(patience); err != nil || op != opText || string(p) != "x" {
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
	op, p, err := c.read(patience)
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
				op, p, err := c.read(patience)
				if err != nil || op != opText || string(p) != tt.wantHello(srv) {
					t.Fatalf("first message op %d %q (err %v), want text %q", op, p, err, tt.wantHello(srv))
				}
			}
			// The next message must be the echo, proving nothing else was sent first.
			if err := c.send(opText, []byte("after")); err != nil {
				t.Fatalf("send: %v", err)
			}
			if op, p, err := c.read(patience); err != nil || op != opText || string(p) != "after" {
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
	client := &http.Client{Timeout: patience}
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
				if _, p, err := c.read(patience); err != nil || !bytes.Equal(p, []byte{1, 2, 3}) {
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
	waitFor(t, "the closed connection to free its slot", patience, func() bool { return srv.Conns() == 1 })
	c := mustDial(t, srv.URL(), dialOpts{})
	if err := c.send(opText, []byte("in")); err != nil {
		t.Fatalf("send: %v", err)
	}
	if _, p, err := c.read(patience); err != nil || string(p) != "in" {
		t.Fatalf("echo %q (err %v)", p, err)
	}
}

// stamped is a message carrying its id, so replies are matched by id and not by order.
func stamped(id int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(id)) }

// TestDelayHoldsRepliesWithoutBlocking sends a burst of 300 messages to a server that holds
// each reply 500 ms. A server that slept per message would need 300 × 500 ms = 150 s for the
// last one; all replies must arrive within patience (1 min), a wait a loaded machine meets
// with ease when the delays run side by side. Each reply comes no sooner than the delay.
func TestDelayHoldsRepliesWithoutBlocking(t *testing.T) {
	const delay = 500 * time.Millisecond
	const burst = 300
	if burst*delay < 2*patience {
		t.Fatalf("a blocking server would answer the burst within the wait: make it longer")
	}
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
	deadline := time.Now().Add(patience)
	for i := range burst {
		_, p, err := a.read(time.Until(deadline))
		if err != nil {
			t.Fatalf("read a, reply %d of %d: %v (replies must not wait for each other)", i, burst, err)
		}
		id := int(binary.BigEndian.Uint32(p))
		if id != i {
			t.Fatalf("reply %d carries id %d: a connection's replies must keep their order", i, id)
		}
		if rtt := time.Since(sentA[id]); rtt < delay {
			t.Fatalf("reply %d after %v, before the %v delay", id, rtt, delay)
		}
	}
	if _, _, err := b.read(time.Until(deadline)); err != nil {
		t.Fatalf("read b: %v", err)
	}
	if rtt := time.Since(sentB); rtt < delay {
		t.Fatalf("other connection's reply after %v, before the %v delay", rtt, delay)
	}
}

// TestStallHoldsRepliesUntilItEnds checks the stall end to end against the server's own
// epoch: a message sent inside a stall cannot be answered before the stall ends (it reached
// the server no sooner than it was sent, and release times only grow with arrival), replies
// keep their order, and messages sent just after a stall are answered sooner than those
// sent inside one (two medians of the same run). It sends until enough messages fell on
// each side, however much a loaded machine stretches the 20 ms between them.
func TestStallHoldsRepliesUntilItEnds(t *testing.T) {
	const every, stallFor = 400 * time.Millisecond, 200 * time.Millisecond
	const enough = 5 // messages wanted inside stalls, and just after them
	srv := start(t, Config{Stall: Stall{Every: every, For: stallFor}})
	epoch := srv.epoch
	c := mustDial(t, srv.URL(), dialOpts{})

	type reply struct {
		id int
		at time.Time
	}
	var mu sync.Mutex
	var replies []reply
	readErr := make(chan error, 1)
	go func() {
		for {
			_, p, err := c.read(patience)
			if err != nil {
				readErr <- err
				return
			}
			mu.Lock()
			replies = append(replies, reply{int(binary.BigEndian.Uint32(p)), time.Now()})
			mu.Unlock()
		}
	}()
	// where says whether a message sent at d after the epoch was inside a stall (stalls are
	// [k·every, k·every+stallFor) for k ≥ 1, so the first starts at every), just after one
	// (the first half of a gap between stalls, or before the first), or neither.
	where := func(d time.Duration) (inside, after bool, end time.Duration) {
		k, phase := d/every, d%every
		if k >= 1 && phase < stallFor {
			return true, false, k*every + stallFor
		}
		return false, (k == 0 || phase >= stallFor) && phase < stallFor+(every-stallFor)/2, 0
	}
	var sent []time.Time
	inside, after := 0, 0
	for give := time.Now().Add(patience); inside < enough || after < enough; {
		if time.Now().After(give) {
			t.Fatalf("after %d messages only %d inside stalls and %d after them", len(sent), inside, after)
		}
		now := time.Now()
		if err := c.send(opBinary, stamped(len(sent))); err != nil {
			t.Fatalf("send: %v", err)
		}
		sent = append(sent, now)
		if in, af, _ := where(now.Sub(epoch)); in {
			inside++
		} else if af {
			after++
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := len(sent)
	waitFor(t, "every reply", patience, func() bool {
		select {
		case err := <-readErr:
			t.Fatalf("read: %v", err)
		default:
		}
		mu.Lock()
		defer mu.Unlock()
		return len(replies) == n
	})
	mu.Lock()
	defer mu.Unlock()
	var insideRTT, afterRTT []time.Duration
	for i, r := range replies {
		if r.id != i {
			t.Fatalf("reply %d carries id %d: replies held by a stall must be flushed in arrival order", i, r.id)
		}
		since := sent[i].Sub(epoch)
		in, af, end := where(since)
		rtt := r.at.Sub(sent[i])
		switch {
		case in:
			insideRTT = append(insideRTT, rtt)
			if got := r.at.Sub(epoch); got < end {
				t.Fatalf("message %d sent %v after the epoch, inside a stall, answered %v after it: before the stall's end (%v)",
					i, since, got, end)
			}
		case af:
			afterRTT = append(afterRTT, rtt)
		}
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	if mi, ma := median(insideRTT), median(afterRTT); ma >= mi {
		t.Fatalf("median RTT %v for %d messages sent just after a stall, %v for %d sent inside one: outside a stall replies must not be held",
			ma, len(afterRTT), mi, len(insideRTT))
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
	waitFor(t, "all clients registered", patience, func() bool { return srv.Conns() == n })
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
			op, p, err := c.read(patience)
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
			if _, p, err := c.read(patience); err != nil || !bytes.Equal(p, payload) {
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
	if _, p, err := c.read(patience); err != nil || string(p) != "over wss" {
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
			op, p, err := c.read(patience)
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
			_, _, err = c.read(patience)                        // then the server closes TCP
			if err == nil {
				errs[i] = errors.New("server sent more after the close")
			}
		}()
	}
	silent := mustDial(t, srv.URL(), dialOpts{}) // never answers the close
	waitFor(t, "all clients registered", patience, func() bool { return srv.Conns() == polite+1 })

	// The context outlasts the test's wait by far: Shutdown returns within the wait only if
	// its 1 s grace period, not the context, ends the wait for the silent client. It does
	// wait that grace period for it.
	const grace = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	began := time.Now()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("Shutdown still waiting 2 minutes in with one silent client; the grace period should bound it")
	}
	if took := time.Since(began); took < grace {
		t.Fatalf("Shutdown took %v: it did not give the silent client its %v grace", took, grace)
	}
	wg.Wait()
	for i := range polite {
		if errs[i] != nil || codes[i] != 1001 {
			t.Fatalf("client %d: close code %d, err %v; want 1001", i, codes[i], errs[i])
		}
	}
	if op, p, err := silent.read(patience); err != nil || op != opClose || closeCode(p) != 1001 {
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

// TestIdleTimeout: the quiet connection is cut, no sooner than the timeout; the chatty one,
// which sends every 50 ms (20 messages to a timeout), lives on for twice the timeout.
func TestIdleTimeout(t *testing.T) {
	const idle = time.Second
	srv := start(t, Config{IdleTimeout: idle})
	dialed := time.Now() // before the server armed either timer
	quiet := mustDial(t, srv.URL(), dialOpts{})
	chatty := mustDial(t, srv.URL(), dialOpts{})

	began := time.Now()
	quietErr := make(chan error, 1)
	var quietCut time.Time
	go func() {
		_, _, err := quiet.read(patience)
		quietCut = time.Now()
		quietErr <- err
	}()
	for i := 0; time.Since(began) < 2*idle; i++ {
		if err := chatty.send(opText, []byte("tick")); err != nil {
			t.Fatalf("chatty send %d: %v", i, err)
		}
		if _, _, err := chatty.read(patience); err != nil {
			t.Fatalf("chatty connection cut after %v: %v", time.Since(began), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case err := <-quietErr:
		if err == nil || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("quiet connection: %v, want it closed by the server", err)
		}
		// 20 ms for the poller's deadline granularity, never for slowness.
		if lived := quietCut.Sub(dialed); lived < idle-20*time.Millisecond {
			t.Fatalf("quiet connection cut %v after its dial, before the %v idle timeout", lived, idle)
		}
	case <-time.After(patience):
		t.Fatalf("quiet connection still open %v after dial with IdleTimeout %v", time.Since(began), idle)
	}
	waitFor(t, "the idle connection to be unregistered", patience, func() bool { return srv.Conns() == 1 })
}

func TestIdleTimeoutNotBeforeItsTime(t *testing.T) {
	const idle = 400 * time.Millisecond
	srv := start(t, Config{IdleTimeout: idle})
	began := time.Now() // before the dial: the server arms the timer after this
	c := mustDial(t, srv.URL(), dialOpts{})
	_, _, err := c.read(patience) // it does end: the read would wait a minute
	if err == nil {
		t.Fatalf("read a message on an idle connection")
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("idle connection still open after %v: %v", time.Since(began), err)
	}
	// 20 ms for the poller's deadline granularity, never for slowness.
	if took := time.Since(began); took < idle-20*time.Millisecond {
		t.Fatalf("closed %v after the dial began, before the %v idle timeout", took, idle)
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
			c, err := dialWS(srv.URL(), dialOpts{tmo: patience})
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
	waitFor(t, "all clients registered", patience, func() bool { return srv.Conns() == n })

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
				_, p, err := c.read(patience)
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
	waitFor(t, "every closed connection to be unregistered", patience, func() bool { return srv.Conns() == 0 })
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
	if _, p, err := c.read(patience); err != nil || string(p) != "x" {
		t.Fatalf("echo %q (err %v)", p, err)
	}
}
