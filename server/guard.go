package server

import (
	"net"
	"sync"
	"time"
)

// handshakeGuard closes an accepted connection that sends no HTTP request for its idle time,
// and a plain HTTP keep-alive connection idle that long between requests, so a client that
// connects and says nothing cannot hold a descriptor forever. It lets go of a connection the
// moment it upgrades: from then on only IdleTimeout (when set) may close it. It replaces nbio's
// accept-time read deadline, which can land after the upgrade (see Start).
//
// It works per connection, never per message: one timer from accept to upgrade. A nil guard
// does nothing.
type handshakeGuard struct {
	idle    time.Duration
	mu      sync.Mutex
	pending map[string]*guarded // by remote address: unique per open TCP connection here
}

type guarded struct {
	c net.Conn
	t *time.Timer
}

func newHandshakeGuard(idle time.Duration) *handshakeGuard {
	if idle <= 0 {
		idle = defaultHandshakeIdle
	}
	return &handshakeGuard{idle: idle, pending: make(map[string]*guarded)}
}

// accepted starts the wait for c's first request (nbio's OnOpen, before c reaches a poller).
func (g *handshakeGuard) accepted(c net.Conn) {
	if g == nil {
		return
	}
	key := c.RemoteAddr().String()
	e := &guarded{c: c}
	g.mu.Lock()
	if old := g.pending[key]; old != nil { // a closed connection's address reused before its close ran
		old.t.Stop()
	}
	g.pending[key] = e
	e.t = time.AfterFunc(g.idle, func() { g.expire(key, e) })
	g.mu.Unlock()
}

// expire closes e's connection when it is still waiting.
func (g *handshakeGuard) expire(key string, e *guarded) {
	g.mu.Lock()
	waiting := g.pending[key] == e
	if waiting {
		delete(g.pending, key)
	}
	g.mu.Unlock()
	if waiting {
		_ = e.c.Close() // outside mu: Close calls back into closed
	}
}

// request restarts the wait: a plain HTTP request arrived on the connection at addr.
func (g *handshakeGuard) request(addr string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if e := g.pending[addr]; e != nil {
		e.t.Reset(g.idle)
	}
	g.mu.Unlock()
}

// upgraded lets go of the connection at addr: it is a WebSocket now.
func (g *handshakeGuard) upgraded(addr string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if e := g.pending[addr]; e != nil {
		e.t.Stop()
		delete(g.pending, addr)
	}
	g.mu.Unlock()
}

// closed forgets a connection that closed before upgrading (nbio's OnClose, for every
// connection).
func (g *handshakeGuard) closed(c net.Conn, _ error) {
	if g == nil {
		return
	}
	key := c.RemoteAddr().String()
	g.mu.Lock()
	if e := g.pending[key]; e != nil {
		e.t.Stop()
		delete(g.pending, key)
	}
	g.mu.Unlock()
}

// waiting is how many connections have not sent a request or upgraded yet (tests).
func (g *handshakeGuard) waiting() int {
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}
