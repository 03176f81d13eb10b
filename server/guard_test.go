package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestUpgradedConnectionsOutliveHandshakeDeadline: with the wait-for-request deadline made
// short, upgraded connections, busy and idle, are held for five times its length and none is
// cut (nbio's own accept-time deadline could land after the upgrade and cut a busy connection
// at 120 s; the reference target must never cut a live connection unless --idle-timeout says).
// The deadline is a second so that a dial and upgrade stalled by a busy machine's scheduler
// still upgrades in time.
func TestUpgradedConnectionsOutliveHandshakeDeadline(t *testing.T) {
	const idle = time.Second
	s := start(t, Config{Pollers: 2, handshakeIdle: idle})
	const busy, quiet = 40, 10
	var clients []*wsClient
	for i := 0; i < busy+quiet; i++ {
		clients = append(clients, mustDial(t, s.URL(), dialOpts{}))
	}
	waitFor(t, "every connection to leave the handshake guard", patience, func() bool { return s.guard.waiting() == 0 })

	hold := 5 * idle
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, busy)
	for i, c := range clients[:busy] {
		wg.Add(1)
		go func(i int, c *wsClient) {
			defer wg.Done()
			for n := 0; n == 0 || time.Since(t0) < hold; n++ {
				msg := []byte(fmt.Sprintf("conn %d message %d", i, n))
				if err := c.send(opText, msg); err != nil {
					errs <- fmt.Errorf("conn %d send %d: %v", i, n, err)
					return
				}
				op, got, err := c.read(patience)
				if err != nil || op != opText || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("conn %d message %d after %v: op %d %q, %v", i, n, time.Since(t0), op, got, err)
					return
				}
				time.Sleep(idle / 10)
			}
		}(i, c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < hold {
		t.Fatalf("held %v, want at least %v", el, hold)
	}
	// The idle ones were left alone as long: each still echoes.
	for i, c := range clients[busy:] {
		if err := c.send(opText, []byte("still here")); err != nil {
			t.Fatalf("idle conn %d: %v", i, err)
		}
		if op, got, err := c.read(patience); err != nil || op != opText || string(got) != "still here" {
			t.Fatalf("idle conn %d after %v: op %d %q, %v", i, time.Since(t0), op, got, err)
		}
	}
}

// TestHandshakeGuardClosesSilentConnections: a TCP connection that never sends a request is
// closed, no sooner than the deadline; one that keeps sending plain HTTP requests is not. The
// chatty one sends its next request 10 ms after the last answer arrives, so the gap the guard
// sees is one loopback round trip and 10 ms, far below the deadline even on a machine whose scheduler
// stalls a goroutine for hundreds of milliseconds (seen at load 18 on 2 cores with a 300 ms
// deadline and a 100 ms pause between requests).
func TestHandshakeGuardClosesSilentConnections(t *testing.T) {
	const idle = time.Second
	s := start(t, Config{Pollers: 1, handshakeIdle: idle})
	addr := s.Addr()

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	t0 := time.Now()

	chatty, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer chatty.Close()
	br := bufio.NewReader(chatty)
	for i := 0; time.Since(t0) < 4*idle; i++ {
		if _, err := fmt.Fprintf(chatty, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_ = chatty.SetReadDeadline(time.Now().Add(patience))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("keep-alive request %d after %v: %v", i, time.Since(t0), err)
		}
		resp.Body.Close()
		time.Sleep(idle / 100)
	}

	_ = silent.SetReadDeadline(time.Now().Add(patience))
	n, err := silent.Read(make([]byte, 1))
	el := time.Since(t0)
	if err == nil || n != 0 {
		t.Fatalf("the silent connection read %d bytes, %v; want it closed", n, err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the silent connection was not closed within %v", patience)
	}
	if el < idle {
		t.Fatalf("the silent connection was closed after %v, before the %v deadline", el, idle)
	}
	waitFor(t, "the guard to forget the silent connection", patience, func() bool {
		return s.guard.waiting() == 1 // the chatty one is still open and still guarded
	})
}
