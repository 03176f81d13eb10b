package engine

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/wsload/wsload/scenario"
)

// The load over time of a scenario run. A controller wakes every
// controlTick and compares what the plan's phase wants with what is running:
//
//   - A connections phase wants Phase.ConnectionsAt(elapsed) logical
//     connections (Engine.active: dialing, open, or between a reconnect's
//     attempts). Fewer: new connections are dialed, so a connection whose
//     flow ended is replaced and the level holds. More: the newest are
//     retired, closed with 1000, which counts as a normal close.
//   - An arrivals phase dials Phase.ArrivalsBy(elapsed) connections in all,
//     whatever is open; each runs its flow to the end and closes (churn).
//     Arrivals are not part of any level: a later connections phase neither
//     counts nor retires them (`connections: 0` after an arrivals phase lets
//     the last arrivals finish), and the level's connections stay open,
//     without being replaced, during an arrivals phase.
//
// Connections are numbered in dial order; the number picks the flow
// (Plan.FlowIndex) and the CSV row (Plan.Data.Row). A run spread over
// processes (Config.Partition) gives each its share of every level and
// arrival count (share) and interleaves their numbers, so that together
// they open the connections one process would, with the same numbers.
// When new connections fail and none succeed, refilling a level backs off
// (controlTick doubling up to about a second), so a refusing target sees a
// slowing trickle rather than a reconnect storm; arrivals keep their rate.
const controlTick = 10 * time.Millisecond

// maxRefillBackoff caps the backoff's doublings: controlTick << 7 ≈ 1.3 s.
const maxRefillBackoff = 7

// dialQueue hands connections to the dispatcher in order, without blocking
// whoever queues (the controller, or a flow's timer asking for a reconnect).
// Every push is a requested connection (stats Interval.Requested); once the
// run's dialing is over (close), a push is counted as not started at once.
type dialQueue struct {
	e      *Engine
	mu     sync.Mutex
	q      []queued
	closed bool
	ready  chan struct{} // capacity 1: "q may not be empty"
}

// queued is a connection waiting to be dialed since due (ns since
// Engine.base).
type queued struct {
	c   *conn
	due int64
}

func newDialQueue(e *Engine) *dialQueue { return &dialQueue{e: e, ready: make(chan struct{}, 1)} }

// push queues c; false when the run's dialing is over and c will never be
// dialed (it is counted as requested and not started).
func (d *dialQueue) push(c *conn) bool {
	d.e.dialSh.ConnRequested(1)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		d.e.dialSh.ConnNotStarted(1)
		return false
	}
	d.q = append(d.q, queued{c, d.e.now()})
	d.mu.Unlock()
	select {
	case d.ready <- struct{}{}:
	default:
	}
	return true
}

// pop waits for the next connection and when it was queued; false when ctx
// is done.
func (d *dialQueue) pop(ctx context.Context) (*conn, int64, bool) {
	for {
		d.mu.Lock()
		if len(d.q) > 0 {
			q := d.q[0]
			d.q[0] = queued{}
			d.q = d.q[1:]
			more := len(d.q) > 0
			d.mu.Unlock()
			if more {
				select {
				case d.ready <- struct{}{}:
				default:
				}
			}
			return q.c, q.due, true
		}
		d.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, 0, false
		case <-d.ready:
		}
	}
}

// close ends the queue: it returns how many connections were still queued,
// and later pushes are refused.
func (d *dialQueue) close() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	n := len(d.q)
	d.q = nil
	return n
}

// control runs the plan's phases until ctx is done, then waits for its
// dials. One dispatcher hands the queued connections, in order, to a
// goroutine each once a handshake slot is free, so the slots alone bound the
// handshakes in flight (see ramp). A connection still queued at the end is
// counted as not started.
func (e *Engine) control(ctx context.Context) {
	var dialing sync.WaitGroup
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		e.dispatch(ctx, &dialing)
	}()
	defer func() {
		<-dispatched
		dialing.Wait()
		if n := e.dq.close(); n > 0 {
			e.dialSh.ConnNotStarted(n)
		}
	}()

	t := time.NewTicker(controlTick)
	defer t.Stop()
	var (
		arrPhase          *scenario.Phase
		arrived           int64
		holdUntil         int64
		streak            int
		lastFail, lastEst int64
		lastCompact       int64
	)
	for {
		now := e.now()
		elapsed := time.Duration(now)
		if e.planClock != nil {
			elapsed = e.planClock()
		}
		if arrPhase != nil && elapsed >= arrPhase.End() && !e.fdLimit.Load() {
			// A tick that comes late across the phase's end still opens
			// the phase's last arrivals.
			for by := e.share(arrPhase.ArrivalsBy(arrPhase.Duration)); arrived < by; arrived++ {
				e.open(true)
			}
			arrPhase = nil
		}
		if ph, ok := e.plan.PhaseAt(elapsed); ok && !e.fdLimit.Load() {
			switch ph.Kind {
			case scenario.PhaseConnections:
				want := e.share(int64(ph.ConnectionsAt(elapsed - ph.Start)))
				live := e.active.Load()
				switch {
				case live > want:
					e.retire(live - want)
				case live < want && now >= holdUntil:
					for ; live < want; live++ {
						e.open(false)
					}
				}
			case scenario.PhaseArrivals:
				if ph != arrPhase {
					arrPhase, arrived = ph, 0
				}
				for by := e.share(ph.ArrivalsBy(elapsed - ph.Start)); arrived < by; arrived++ {
					e.open(true)
				}
			}
		}
		fails, est := e.newFails.Load(), e.estab.Load()
		switch {
		case est > lastEst:
			streak, holdUntil = 0, 0
		case fails > lastFail:
			streak = min(streak+1, maxRefillBackoff)
			holdUntil = now + int64(controlTick)<<streak
		}
		lastFail, lastEst = fails, est
		if now-lastCompact >= int64(time.Second) {
			e.compact()
			lastCompact = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// open starts a new logical connection: registered, counted in the level
// unless it is an arrival, queued to dial. Controller goroutine only.
func (e *Engine) open(arrival bool) {
	c := newConn(e, e.opened)
	e.opened++
	c.slot = false // a dialer takes the slot
	c.fl = newFlowState(c, e.plan)
	if !arrival {
		c.fl.live = true
		e.active.Add(1)
	}
	e.mu.Lock()
	e.conns = append(e.conns, c)
	e.mu.Unlock()
	e.dq.push(c)
}

// dispatch dials the queued connections until ctx is done.
func (e *Engine) dispatch(ctx context.Context, dialing *sync.WaitGroup) {
	dialers := e.netDialers()
	for {
		c, due, ok := e.dq.pop(ctx)
		if !ok {
			return
		}
		select {
		case <-ctx.Done():
			e.dialSh.ConnNotStarted(1)
			return
		case e.sem <- struct{}{}:
		}
		if e.fdLimit.Load() || ctx.Err() != nil {
			c.mu.Lock()
			if c.fl.wait == waitDial || c.fl.wait == waitStart {
				c.fl.done = true
				c.fl.leave()
			}
			c.mu.Unlock()
			<-e.sem
			e.dialSh.ConnNotStarted(1)
			continue
		}
		e.dialSh.HandshakeWaited(time.Duration(e.now() - due))
		dialing.Add(1)
		go func(d *net.Dialer) {
			defer dialing.Done()
			e.dial(ctx, c, d)
		}(dialers[e.local(c.id)%len(dialers)])
	}
}

// retire closes the n newest logical connections (a ramp down).
func (e *Engine) retire(n int64) {
	e.mu.Lock()
	conns := e.conns
	e.mu.Unlock()
	for i := len(conns) - 1; i >= 0 && n > 0; i-- {
		c := conns[i]
		c.mu.Lock()
		if c.fl.live {
			c.fl.retire()
			n--
		}
		c.mu.Unlock()
	}
}

// compact drops connections that are over for good from the registry, so
// that a long run with churn does not keep every connection it ever made.
func (e *Engine) compact() {
	e.mu.Lock()
	defer e.mu.Unlock()
	keep := make([]*conn, 0, len(e.conns))
	for _, c := range e.conns {
		c.mu.Lock()
		over := c.state == stClosed && c.fl.done && !c.fl.live
		c.mu.Unlock()
		if !over {
			keep = append(keep, c)
		}
	}
	e.conns = keep
}

// share is this process's part of n connections wanted in all: its
// partition's share (Config.Partition). The shares of all processes add up
// to n for every n, and this process's j-th connection (numbered
// Partition.ID(j)) exists exactly when one process would have opened its
// connection of that number.
func (e *Engine) share(n int64) int64 { return e.cfg.Partition.Share(n) }

// local is connection id's number within this process, which spreads
// connections over senders, dialers and source addresses: its index in the
// process's partition, so that a slot's connections do not all land on one
// sender.
func (e *Engine) local(id uint32) int { return e.cfg.Partition.Index(int64(id)) }
