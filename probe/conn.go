package probe

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
)

// evKind is what the reader goroutine saw.
type evKind int

const (
	evMessage evKind = iota
	evPing
	evPong
	evClose // a close frame; the TCP connection may still be open
	// The terminal events: the reader has stopped, no more events follow.
	evEOF      // TCP FIN
	evReset    // TCP RST
	evError    // another read error
	evProtocol // the server broke the protocol; the connection is unusable
)

func (k evKind) terminal() bool { return k >= evEOF }

type event struct {
	kind   evKind
	at     time.Time
	op     wsproto.Opcode
	data   []byte // a copy: wsproto's payloads are valid only during the handler call
	code   int
	reason string
	err    error
}

// wsConn is one upgraded connection. A goroutine reads frames and sends events; the probe's
// goroutine waits for them with its own timers, so every wait is bounded without read
// deadlines that would tear the connection. Writes come from both (the reader answers pings),
// hence wmu.
type wsConn struct {
	conn    net.Conn
	timeout time.Duration
	events  chan event
	quit    chan struct{} // closed by shutdown: the reader stops sending
	done    chan struct{} // closed when the reader has returned
	ended   bool          // the probe has received the terminal event

	wmu sync.Mutex
	out []byte
}

// newWSConn starts the reader on conn; initial holds bytes that followed the 101 response
// head in the same read.
func newWSConn(conn net.Conn, initial []byte, timeout time.Duration) *wsConn {
	c := &wsConn{
		conn:    conn,
		timeout: timeout,
		events:  make(chan event, 64),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.read(initial)
	return c
}

func (c *wsConn) emit(ev event) {
	ev.at = time.Now()
	select {
	case c.events <- ev:
	case <-c.quit:
	}
}

// read feeds the socket into a wsproto.Reader until the connection ends. It keeps reading
// after a close frame so that the probe sees how the TCP connection ends.
func (c *wsConn) read(initial []byte) {
	defer close(c.done)
	rd := &wsproto.Reader{ValidateUTF8: true}
	h := handler{c}
	if len(initial) > 0 {
		if err := rd.Feed(initial, h); err != nil {
			c.emit(event{kind: evProtocol, err: err})
			return
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := c.conn.Read(buf)
		if n > 0 {
			if ferr := rd.Feed(buf[:n], h); ferr != nil {
				c.emit(event{kind: evProtocol, err: ferr})
				return
			}
		}
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				c.emit(event{kind: evEOF, err: err})
			case errors.Is(err, syscall.ECONNRESET):
				c.emit(event{kind: evReset, err: err})
			default:
				c.emit(event{kind: evError, err: err})
			}
			return
		}
	}
}

type handler struct{ c *wsConn }

func (h handler) OnMessage(op wsproto.Opcode, payload []byte) {
	h.c.emit(event{kind: evMessage, op: op, data: append([]byte(nil), payload...)})
}

// OnPing answers at once, as every client must (RFC 6455 section 5.5.2); a failed write
// shows up as a read error soon after.
func (h handler) OnPing(payload []byte) {
	_ = h.c.write(wsproto.OpPong, payload)
	h.c.emit(event{kind: evPing})
}

func (h handler) OnPong([]byte) { h.c.emit(event{kind: evPong}) }

func (h handler) OnClose(code int, reason string) {
	h.c.emit(event{kind: evClose, code: code, reason: reason})
}

// write sends one masked frame, bounded by the phase timeout.
func (c *wsConn) write(op wsproto.Opcode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out = wsproto.AppendFrame(c.out[:0], op, true, payload, newMask())
	return c.send()
}

// writeClose sends a close frame with code and reason.
func (c *wsConn) writeClose(code int, reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.out = wsproto.AppendClose(c.out[:0], code, reason, newMask())
	return c.send()
}

func (c *wsConn) send() error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.conn.Write(c.out)
	return err
}

// next waits for the next event until deadline or stop; ok is false when either came
// first. Once the terminal event has been received, next returns an EOF event at once: the
// phases that follow a dropped connection must not wait for events that cannot come.
func (c *wsConn) next(deadline <-chan time.Time, stop <-chan struct{}) (ev event, ok bool) {
	if c.ended {
		return event{kind: evEOF, at: time.Now(), err: io.EOF}, true
	}
	select {
	case ev = <-c.events:
		c.saw(ev)
		return ev, true
	case <-deadline:
		return event{}, false
	case <-stop:
		return event{}, false
	}
}

// saw records that ev was taken from events.
func (c *wsConn) saw(ev event) {
	if ev.kind.terminal() {
		c.ended = true
	}
}

// shutdown closes the socket and waits for the reader.
func (c *wsConn) shutdown() {
	close(c.quit)
	_ = c.conn.Close()
	<-c.done
}

// newMask returns a fresh masking key. One connection sends a handful of frames, so
// crypto/rand's cost does not matter and the keys are as unpredictable as RFC 6455 asks.
func newMask() [4]byte {
	var m [4]byte
	_, _ = rand.Read(m[:])
	return m
}
