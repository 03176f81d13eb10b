package engine

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/stats"
)

// deafServer answers the upgrade and then never reads again: its receive window fills, the
// client's kernel send buffer fills, and whatever the client still writes waits in its own
// memory. It returns the ws:// URL.
func deafServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4 << 10) // a small window: the client backs up sooner
			}
			go func() {
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
					wsproto.AcceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n"))
				// From here on: silence, and no reads.
			}()
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

// Against a server that stops reading, a connection's unsent bytes are bounded by
// MaxWriteBuffer: past it the connection is closed and counted as backpressure (one bucket,
// with an example that says what happened), instead of wsload's memory growing without bound
// and the run saying "Errors none".
func TestBackpressureClosesAConnectionTheServerStoppedReading(t *testing.T) {
	const conns = 3
	// A short reply timeout: the drain after the run has nothing to wait for.
	cfg := Config{URL: deafServer(t), Connections: conns, Rate: 2000, Size: 16 << 10, MaxWriteBuffer: 256 << 10, Pollers: 1, ReplyTimeout: 2 * time.Second}
	r, eng := runEcho(t, cfg, echoWait{until: func(tot *stats.Interval) bool { return tot.Errors["backpressure"] == conns }})
	if r.Errors["backpressure"] != conns || r.Connections.Established != conns {
		t.Fatalf("errors %v, connections %+v: want every connection closed for backpressure", r.Errors, r.Connections)
	}
	if r.Messages.Received != 0 {
		t.Fatalf("received %d replies from a server that never writes", r.Messages.Received)
	}
	if s := eng.SampleErrors()["backpressure"]; !strings.Contains(s, "stopped reading") || !strings.Contains(s, "--max-write-buffer") {
		t.Fatalf("backpressure example %q does not say what happened", s)
	}
	if r.Config.MaxWriteBuffer != 256<<10 {
		t.Fatalf("config block records max_write_buffer %d", r.Config.MaxWriteBuffer)
	}
}
