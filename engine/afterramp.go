package engine

import (
	"sync"
	"sync/atomic"
)

// rampGate holds back the sends of an echo run until its ramp is over
// (Config.SendAfterRamp): connections established during the ramp wait
// here instead of joining their sender, and all of them join at once when
// every requested connection has been established or has failed, or the
// ramp stopped (fd_limit). From then on the schedule is the open model's
// grid, as without the gate: each connection sends at its next slot.
//
// Why: connections that are already open load the target with messages
// while the rest are still upgrading, and a target that serves messages
// first starves the handshakes (timeouts in the ramp). The price: no
// message flows, and no latency is measured, until the last connection is
// up or has failed.
type rampGate struct {
	left     atomic.Int64 // requested connections neither established nor failed yet
	mu       sync.Mutex
	released bool
	held     []*conn
}

// hold keeps c's first send back; false when the gate is off or open (the
// caller schedules c itself). Called with c.mu held.
func (e *Engine) holdSends(c *conn) bool {
	if !e.cfg.SendAfterRamp || e.plan != nil {
		return false
	}
	g := &e.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.released {
		return false
	}
	g.held = append(g.held, c)
	return true
}

// rampSettled counts n requested connections of an echo run that have
// reached their end in the ramp (established, failed, or never to be
// dialed); the last one opens the gate.
func (e *Engine) rampSettled(n int) {
	if e.plan != nil || !e.cfg.SendAfterRamp {
		return
	}
	if e.gate.left.Add(-int64(n)) == 0 {
		// Not inline: the caller may hold a connection's mutex, and the
		// senders' add takes only theirs.
		go e.releaseSends()
	}
}

// releaseSends opens the gate: every held connection joins its sender at its
// next slot on the send grid.
func (e *Engine) releaseSends() {
	g := &e.gate
	g.mu.Lock()
	g.released = true
	held := g.held
	g.held = nil
	g.mu.Unlock()
	for _, c := range held {
		e.senders[int(c.id)%len(e.senders)].add(c, e.firstSlot(c.id))
	}
}
