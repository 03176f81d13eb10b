package server

import (
	"sync"
	"time"

	"github.com/lesismal/nbio/nbhttp/websocket"
)

// pending is one held reply: an echo to c, or a broadcast when c is nil.
type pending struct {
	c   *websocket.Conn
	buf *[]byte       // nbio pool buffer; freed after sending
	at  time.Duration // since Server.epoch: not sent before this
	mt  websocket.MessageType
}

// replyQueue holds replies for Delay, Stall and Broadcast and sends them from one goroutine
// driven by one timer, so a held reply costs a slot in a slice rather than a timer, a
// goroutine or a sleeping poller.
//
// Invariant: items[head:] is sorted by at. Delay is constant and Stall.release is monotonic,
// and at is computed under mu from a monotonic clock, so appending keeps the order and a FIFO
// is enough. It also keeps each connection's replies in the order its messages arrived.
type replyQueue struct {
	s *Server

	mu      sync.Mutex
	items   []pending
	head    int
	stopped bool

	wake     chan struct{} // buffered(1): the queue went from empty to non-empty
	done     chan struct{}
	exited   chan struct{}
	stopOnce sync.Once
}

// batchSize bounds how many due replies are taken per lock acquisition, so pushes from the
// pollers never wait behind a long fan-out.
const batchSize = 256

func newReplyQueue(s *Server) *replyQueue {
	q := &replyQueue{
		s:      s,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go q.run()
	return q
}

// push takes ownership of pbuf. It runs on pollers and must not block.
func (q *replyQueue) push(c *websocket.Conn, mt websocket.MessageType, pbuf *[]byte) {
	if q.s.cfg.Broadcast {
		c = nil
	}
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		q.s.engine.BodyAllocator.Free(pbuf)
		return
	}
	at := q.s.cfg.Stall.release(time.Since(q.s.epoch) + q.s.cfg.Delay)
	wasEmpty := q.head == len(q.items)
	q.items = append(q.items, pending{c: c, buf: pbuf, at: at, mt: mt})
	q.mu.Unlock()
	if wasEmpty {
		// A non-empty queue already has the runner waiting for its head, which is due no
		// later than this reply; only the empty→non-empty transition needs a wake-up.
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

func (q *replyQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

func (q *replyQueue) run() {
	defer close(q.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	batch := make([]pending, 0, batchSize)
	for {
		wait := time.Duration(-1) // -1: queue empty
		q.mu.Lock()
		now := time.Since(q.s.epoch)
		for q.head < len(q.items) && len(batch) < batchSize {
			it := q.items[q.head]
			if it.at > now {
				wait = it.at - now
				break
			}
			batch = append(batch, it)
			q.items[q.head] = pending{}
			q.head++
		}
		q.compactLocked()
		q.mu.Unlock()

		if len(batch) > 0 {
			for i := range batch {
				q.send(batch[i])
				batch[i] = pending{}
			}
			batch = batch[:0]
			continue
		}
		if wait < 0 {
			select {
			case <-q.wake:
			case <-q.done:
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-q.done:
			return
		}
	}
}

func (q *replyQueue) send(it pending) {
	if it.c == nil {
		q.s.broadcast(it.mt, *it.buf)
	} else {
		q.s.write(it.c, it.mt, *it.buf)
	}
	q.s.engine.BodyAllocator.Free(it.buf)
}

// compactLocked keeps the backing array from growing without bound under steady load, when
// the queue never drains completely: it moves the live tail to the front once the consumed
// prefix is the larger part.
func (q *replyQueue) compactLocked() {
	switch {
	case q.head == len(q.items):
		q.items = q.items[:0]
		q.head = 0
	case q.head >= 1024 && q.head*2 >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
}

// stop ends the runner and drops (frees) every reply still held.
func (q *replyQueue) stop() {
	q.stopOnce.Do(func() {
		close(q.done)
		<-q.exited
		q.mu.Lock()
		q.stopped = true
		rest := q.items[q.head:]
		q.items, q.head = nil, 0
		q.mu.Unlock()
		for _, it := range rest {
			q.s.engine.BodyAllocator.Free(it.buf)
		}
	})
}
