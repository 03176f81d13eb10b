package server

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestPlainHTTPRequestsDoNotStallPoller: plain HTTP requests that close the
// connection (HTTP/1.0, Connection: close, balancer health checks, curl)
// once froze a poller of an nbio server that runs handlers inline. Every
// request must be answered and the connection closed, many times over on
// one poller.
func TestPlainHTTPRequestsDoNotStallPoller(t *testing.T) {
	s, err := Start(Config{Addr: "127.0.0.1:0", Pollers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	reqs := []struct{ req, status string }{
		{"GET / HTTP/1.0\r\n\r\n", " 200 "},
		{"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", " 200 "},
		{"GET /status/503 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", " 503 "},
		{"GET /nothing HTTP/1.0\r\nConnection: close\r\n\r\n", " 404 "},
	}
	for i := 0; i < 60; i++ {
		r := reqs[i%len(reqs)]
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(patience))
		if _, err := c.Write([]byte(r.req)); err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(c) // returns once the server closes
		c.Close()
		if err != nil {
			t.Fatalf("request %d %q: %v (poller stalled?)", i, r.req, err)
		}
		if first, _, _ := strings.Cut(string(body), "\r\n"); !strings.Contains(first, r.status) {
			t.Fatalf("request %d %q: status line %q, want%s", i, r.req, first, r.status)
		}
	}
}
