package engine

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

func TestParseBackendFrom(t *testing.T) {
	for _, c := range []struct {
		spec, want, err string
	}{
		{"", "", ""},
		{"header:X-Backend", "header:X-Backend", ""},
		{"header: x-backend ", "header:X-Backend", ""},
		{"message:^hello from (.+)$", "message:^hello from (.+)$", ""},
		{"message:b[0-9]+", "message:b[0-9]+", ""},
		{"X-Backend", "", "want header:NAME or message:REGEX"},
		{"cookie:SERVERID", "", `unknown source "cookie"`},
		{"header:", "", ""}, // an empty header name is no header: nothing to split by
		{"header:X Backend", "", "not a valid header name"},
		{"message:", "", "empty regular expression"},
		{"message:hello (", "", "missing closing )"},
	} {
		b, err := ParseBackendFrom(c.spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "engine: ") {
				t.Fatalf("ParseBackendFrom(%q) error %v, want one containing %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseBackendFrom(%q): %v", c.spec, err)
		}
		if b.String() != c.want || b.Enabled() != (c.want != "") {
			t.Fatalf("ParseBackendFrom(%q) = %q enabled %v, want %q", c.spec, b.String(), b.Enabled(), c.want)
		}
	}
	// Both at once cannot come from a spec but can from a Config literal.
	re, _ := ParseBackendFrom("message:x")
	cfg := Config{URL: "ws://127.0.0.1:1/", Connections: 1, Duration: time.Second, BackendFrom: BackendFrom{Header: "X-Backend", Message: re.Message}}
	if _, err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("validate with header and message: %v", err)
	}
}

// roundRobin is a TCP proxy that sends each accepted connection to the next
// of addrs: the smallest balancer that makes a spread to measure.
func roundRobin(t *testing.T, addrs ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn, addr string) {
				defer c.Close()
				u, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = copyConn(u, c); done <- struct{}{} }()
				go func() { _, _ = copyConn(c, u); done <- struct{}{} }()
				<-done
			}(c, addrs[i%len(addrs)])
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

func copyConn(dst, src net.Conn) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return n, err
		}
	}
}

func hostPort(t *testing.T, s *server.Server) string {
	t.Helper()
	return strings.TrimSuffix(strings.TrimPrefix(s.URL(), "ws://"), "/")
}

// checkBackends asserts an even spread of conns connections over the named
// backends, each of which answered its share of the messages (received
// counts the replies only, not a hello that is not consumed as the
// announcement).
func checkBackends(t *testing.T, r *stats.Result, names []string, conns int) {
	t.Helper()
	per := int64(conns / len(names))
	for _, n := range names {
		b, ok := r.Backends[n]
		if !ok {
			t.Fatalf("no backend %q in %v", n, r.Backends)
		}
		if b.Connections.Established != per || b.Connections.Closed != per || b.Connections.PeakOpen != per {
			t.Fatalf("backend %s connections %+v, want %d each", n, b.Connections, per)
		}
		if b.Messages.Sent == 0 || b.Messages.Received != b.Messages.Sent || b.RTT.Count != b.Messages.Sent {
			t.Fatalf("backend %s messages %+v rtt count %d", n, b.Messages, b.RTT.Count)
		}
	}
	if _, ok := r.Backends[stats.UnknownBackend]; ok || len(r.Backends) != len(names) {
		t.Fatalf("backends %v, want exactly %v", r.Backends, names)
	}
	s := r.BackendSpread
	if s == nil || s.Backends != len(names) || s.MaxMinRatio == nil || *s.MaxMinRatio != 1 || s.CV != 0 {
		t.Fatalf("spread %+v, want an even one over %d backends", s, len(names))
	}
	if s.PeakOpen == nil || s.PeakOpen.CV != 0 {
		t.Fatalf("peak open spread %+v", s.PeakOpen)
	}
}

// backendsUp waits until each of the named backends has per connections
// established (in message mode: announced) and two replies received per
// connection, and the run has seen
// unmatched messages (the hellos in header mode).
func backendsUp(names []string, per, unmatched int64) func(tot *stats.Interval) bool {
	return func(tot *stats.Interval) bool {
		for _, n := range names {
			b := tot.Backends[n]
			if b == nil || b.Established != per || b.Received < 2*per {
				return false
			}
		}
		return tot.Unmatched == unmatched
	}
}

// TestBackendFromHeaderAndMessage runs through a round-robin proxy to three
// backends and reads the backend from the X-Backend header, then from the
// hello message.
func TestBackendFromHeaderAndMessage(t *testing.T) {
	var addrs, names []string
	for i := range 3 {
		name := fmt.Sprintf("b%d", i+1)
		s := startServer(t, server.Config{BackendID: name, Hello: true})
		addrs, names = append(addrs, hostPort(t, s)), append(names, name)
	}
	url := roundRobin(t, addrs...)
	for _, spec := range []string{"header:X-Backend", "message:^" + server.HelloPrefix + "(.+)$"} {
		bf, err := ParseBackendFrom(spec)
		if err != nil {
			t.Fatalf("ParseBackendFrom: %v", err)
		}
		// The hello is consumed in message mode; in header mode it is an
		// unmatched message per connection.
		wantUnmatched := int64(60)
		if strings.HasPrefix(spec, "message:") {
			wantUnmatched = 0
		}
		r, _ := runEcho(t, Config{URL: url, Connections: 60, Rate: 10, BackendFrom: bf},
			echoWait{until: backendsUp(names, 20, wantUnmatched)})
		c := r.Connections
		if c.Established != 60 || c.Failed != 0 {
			t.Fatalf("%s: connections %+v errors %v", spec, c, r.Errors)
		}
		if m := r.Messages; m.Unmatched != wantUnmatched || m.Received != m.Sent {
			t.Fatalf("%s: messages %+v, want %d unmatched", spec, m, wantUnmatched)
		}
		checkBackends(t, r, names, 60)
	}
}

// TestBackendFromUnknown checks the attribution of connections whose backend
// cannot be told, and of refused upgrades that name their backend.
func TestBackendFromUnknown(t *testing.T) {
	// No header, no hello: every connection is unknown.
	plain := startServer(t, server.Config{})
	for _, spec := range []string{"header:X-Backend", "message:^hello from (.+)$"} {
		bf, _ := ParseBackendFrom(spec)
		r, _ := runEcho(t, Config{URL: plain.URL(), Connections: 10, Rate: 10, BackendFrom: bf}, echoWait{until: allUp(10, 20)})
		u, ok := r.Backends[stats.UnknownBackend]
		if !ok || len(r.Backends) != 1 || u.Connections.Established != 10 || u.Connections.Closed != 10 {
			t.Fatalf("%s: backends %+v, want all 10 unknown", spec, r.Backends)
		}
		// The first echo did not match the expression: it is an ordinary reply.
		if u.Messages.Received != r.Messages.Received || r.Messages.Unmatched != 0 || u.Messages.Sent != r.Messages.Sent {
			t.Fatalf("%s: unknown messages %+v, run %+v", spec, u.Messages, r.Messages)
		}
		if r.BackendSpread != nil {
			t.Fatalf("%s: spread %+v over no named backend", spec, r.BackendSpread)
		}
	}

	// A capped backend refuses with 503 and says who it is; a closed port
	// says nothing.
	capped := startServer(t, server.Config{BackendID: "b1", MaxConns: 4})
	bf, _ := ParseBackendFrom("header:X-Backend")
	r, _ := runEcho(t, Config{URL: capped.URL(), Connections: 7, Rate: 0, BackendFrom: bf}, echoWait{until: func(tot *stats.Interval) bool {
		return tot.Established+tot.Failed == 7
	}})
	b1 := r.Backends["b1"]
	if b1.Connections.Established != 4 || b1.Connections.Failed != 3 || b1.Errors["http_503"] != 3 {
		t.Fatalf("capped backend: %+v errors %v", b1.Connections, b1.Errors)
	}
	port := testenv.FreePort(t)
	r, _ = runEcho(t, Config{URL: fmt.Sprintf("ws://127.0.0.1:%d/", port), Connections: 3, BackendFrom: bf}, echoWait{until: allFailed(3)})
	if u := r.Backends[stats.UnknownBackend]; u.Connections.Failed != 3 || u.Errors["refused"] != 3 {
		t.Fatalf("refused: backends %+v", r.Backends)
	}
}

// TestBackendFromNodeHello reads the backend from the hello message of a
// server no one here wrote (npm ws).
func TestBackendFromNodeHello(t *testing.T) {
	url := testenv.NodeWS(t, "hello")
	bf, _ := ParseBackendFrom("message:^hello from (\\w+)$")
	r, _ := runEcho(t, Config{URL: url, Connections: 20, Rate: 10, BackendFrom: bf},
		echoWait{until: backendsUp([]string{"node"}, 20, 0)})
	n := r.Backends["node"]
	if n.Connections.Established != 20 || n.Connections.Closed != 20 || r.Messages.Received != r.Messages.Sent || r.Messages.Unmatched != 0 || n.Messages.Received != r.Messages.Received || n.Messages.Received == 0 {
		t.Fatalf("node hello: backends %+v messages %+v", r.Backends, r.Messages)
	}
}

// TestBackendSpreadThroughHAProxy measures the spread of a real HAProxy's
// roundrobin over three backends, header and message mode.
func TestBackendSpreadThroughHAProxy(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		// Debian installs it under /usr/sbin, which an unprivileged PATH may lack. A missing
		// haproxy fails the test: a skip would let CI pass without ever running it.
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			t.Fatalf("haproxy is not installed: run ./scripts/test.sh (it installs haproxy), or sudo apt-get install -y haproxy")
		}
		bin = "/usr/sbin/haproxy"
	}
	var servers strings.Builder
	var names []string
	for i := range 3 {
		name := fmt.Sprintf("b%d", i+1)
		s := startServer(t, server.Config{BackendID: name, Hello: true})
		fmt.Fprintf(&servers, "  server %s %s\n", name, hostPort(t, s))
		names = append(names, name)
	}
	port := testenv.FreePort(t)
	cfg := fmt.Sprintf(`global
  maxconn 4096
defaults
  mode http
  timeout connect 60s
  timeout client 120s
  timeout server 120s
  timeout tunnel 120s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  balance roundrobin
%s`, port, servers.String())
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write haproxy config: %v", err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(echoDeadline); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy does not listen on %s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, spec := range []string{"header:X-Backend", "message:^hello from (.+)$"} {
		bf, _ := ParseBackendFrom(spec)
		// HAProxy's roundrobin is exact per connection: 100 each.
		var extra int64
		if strings.HasPrefix(spec, "header:") {
			extra = 1 // the hello, unmatched (received counts replies only)
		}
		r, _ := runEcho(t, Config{URL: "ws://" + addr + "/", Connections: 300, Rate: 5, BackendFrom: bf},
			echoWait{until: backendsUp(names, 100, 300*extra)})
		if r.Connections.Established != 300 {
			t.Fatalf("%s: through haproxy %+v errors %v\n%s", spec, r.Connections, r.Errors, out.String())
		}
		checkBackends(t, r, names, 300)
		if cv := r.BackendSpread.CV; math.IsNaN(cv) {
			t.Fatalf("cv is NaN")
		}
	}
}
