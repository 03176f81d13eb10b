package engine

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// Reply accounting of the echo flow. Every message sent ends in exactly one
// of received (a correct echo within the reply timeout), timed out (no
// correct echo within the reply timeout, or its connection closed first, so
// it can never be answered) and in flight (still within its timeout when the
// run was interrupted): sent = received + timed_out + in_flight. Every
// message received that is not counted received is exactly one of:
//
//   - corrupt: the id is ours but the frame type, length or bytes after the
//     id are not what was sent. It does not answer its message, which stays
//     outstanding and times out unless a correct echo follows in time.
//   - late: the echo of a message that had already timed out (the reply
//     timeout is checked when the echo arrives, not only by the sweeps).
//   - duplicate: the echo of a message already answered.
//   - unmatched: anything else (another connection's id, a message never
//     sent, a server push, or an echo too old to tell late from duplicate).

// maxExpired bounds the timed-out sequence numbers a connection remembers
// to tell a late echo from a duplicate; beyond it the oldest half is
// forgotten and their echoes count as unmatched.
const maxExpired = 1024

// sweepEvery is how often a sender expires its connections' unanswered
// messages, so that a timeout is counted about when it happens, not at the
// connection's next send (which may be seconds later).
const sweepEvery = 200 * time.Millisecond

// echoTemplate is the message of connection 0, sequence 0: the bytes after
// the id are the same in every message of the run.
func (e *Engine) echoTemplate() []byte {
	e.tmplOnce.Do(func() { e.tmpl = e.echo.AppendMessage(nil, 0, 0) })
	return e.tmpl
}

// echoOK reports whether payload, received in a frame of type op, is a
// correct echo of a message this run sent (its id already parsed).
// It does not allocate.
func (e *Engine) echoOK(op wsproto.Opcode, payload []byte) bool {
	t := e.echoTemplate()
	h := e.echo.HeaderSize()
	return op == e.op && len(payload) == len(t) && bytes.Equal(payload[h:], t[h:])
}

// echoProblem says what is wrong with an echo echoOK refused.
func (e *Engine) echoProblem(op wsproto.Opcode, payload []byte) error {
	t := e.echoTemplate()
	switch {
	case op != e.op:
		return fmt.Errorf("%s frame answering a %s message", opName(op), opName(e.op))
	case len(payload) != len(t):
		return fmt.Errorf("length %d, want %d", len(payload), len(t))
	}
	for i := e.echo.HeaderSize(); i < len(t); i++ {
		if payload[i] != t[i] {
			return fmt.Errorf("byte %d of %d differs from what was sent", i, len(t))
		}
	}
	return errors.New("differs from what was sent")
}

func opName(op wsproto.Opcode) string {
	if op == wsproto.OpBinary {
		return "binary"
	}
	return "text"
}

// reply matches an echo to its message by the id it carries. mu held.
func (c *conn) reply(op wsproto.Opcode, payload []byte, now int64) {
	id, seq, ok := scenario.ParseID(payload)
	if !ok || id != c.id || seq >= c.seq {
		c.sh.Other(stats.OtherUnmatched, len(payload))
		return
	}
	if !c.e.echoOK(op, payload) {
		c.sh.Other(stats.OtherCorrupt, len(payload))
		if _, seen := c.e.samples.Load("corrupt"); !seen {
			c.e.sample("corrupt", c.e.echoProblem(op, payload))
		}
		return
	}
	// Entries are in seq order: binary search the live part.
	out := c.out[c.head:]
	lo, hi := 0, len(out)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if out[m].seq < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(out) && out[lo].seq == seq && out[lo].sent != 0 {
		p := &out[lo]
		if now-p.sent >= int64(c.e.cfg.ReplyTimeout) {
			// Past its timeout, not swept yet: a timeout, and a late echo.
			c.sh.TimedOutFor(c.bk)
			c.sh.Other(stats.OtherLate, len(payload))
		} else {
			c.sh.ReplyFor(c.bk, len(payload), time.Duration(now-p.sched), time.Duration(now-p.sent))
		}
		p.sent = 0
		c.trim()
		return
	}
	if lo < len(out) && out[lo].seq == seq { // answered, not trimmed yet
		c.sh.Other(stats.OtherDuplicate, len(payload))
		return
	}
	switch {
	case c.forgetExpired(seq):
		c.sh.Other(stats.OtherLate, len(payload))
	case seq < c.expFloor:
		c.sh.Other(stats.OtherUnmatched, len(payload)) // too old to tell
	default:
		c.sh.Other(stats.OtherDuplicate, len(payload))
	}
}

// rememberExpired notes that seq timed out (seqs arrive in increasing order).
func (c *conn) rememberExpired(seq uint64) {
	if len(c.expired) == maxExpired {
		n := copy(c.expired, c.expired[maxExpired/2:])
		c.expired = c.expired[:n]
		c.expFloor = c.expired[0]
	}
	c.expired = append(c.expired, seq)
}

// forgetExpired removes seq from the timed-out seqs and reports whether it
// was there: its echo is late, and a second one a duplicate.
func (c *conn) forgetExpired(seq uint64) bool {
	x := c.expired
	lo, hi := 0, len(x)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x[m] < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(x) || x[lo] != seq {
		return false
	}
	c.expired = append(x[:lo], x[lo+1:]...)
	return true
}

// expire counts messages unanswered for longer than the reply timeout,
// into sh. mu must be held.
func (c *conn) expire(now int64, sh *stats.Shard) {
	limit := int64(c.e.cfg.ReplyTimeout)
	for c.head < len(c.out) {
		p := &c.out[c.head]
		if p.sent != 0 {
			if now-p.sent < limit {
				break
			}
			sh.TimedOutFor(c.bk)
			c.rememberExpired(p.seq)
			p.sent = 0
		}
		c.head++
	}
	c.trim()
}

// dropOutstanding counts the messages still waiting for a reply on a
// connection that has ended as timed out: they can never be answered. mu held.
func (c *conn) dropOutstanding() {
	for i := c.head; i < len(c.out); i++ {
		if c.out[i].sent != 0 {
			c.sh.TimedOutFor(c.bk)
		}
	}
	c.out, c.head = c.out[:0], 0
}

// expireAll settles every unanswered message at the end of the run (after
// the drain, or at once when interrupted): timed out when its reply timeout
// has passed, else in flight. A scenario flow waiting for a reply counts in
// flight when the run was interrupted, else timed out.
func (c *conn) expireAll(interrupted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fl != nil {
		if c.fl.awaitingReply() && c.state == stOpen {
			if interrupted {
				c.sh.InFlight(1)
			} else {
				c.sh.TimedOutFor(c.bk)
			}
		}
		c.fl.done = true // a reply arriving now is unmatched, not measured as well
		return
	}
	now := c.e.now()
	limit := int64(c.e.cfg.ReplyTimeout)
	var inFlight int64
	for i := c.head; i < len(c.out); i++ {
		p := &c.out[i]
		switch {
		case p.sent == 0:
		case now-p.sent >= limit:
			c.sh.TimedOutFor(c.bk)
			c.rememberExpired(p.seq)
		default:
			inFlight++
		}
	}
	if inFlight > 0 {
		c.sh.InFlight(inFlight)
	}
	c.out, c.head = nil, 0
	c.expFloor = c.seq // an echo of an in-flight message arriving now is unmatched
}

// closeTimedOut ends a connection whose server did not answer the close
// handshake within the close timeout: counted as close_timeout and closed
// abnormally (1006).
func (c *conn) closeTimedOut(wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stClosing {
		return
	}
	c.recError("close_timeout")
	c.e.sample("close_timeout", fmt.Errorf("no close frame from the server within the close timeout of %v", wait))
	c.endLocked(wsproto.CloseAbnormal)
}
