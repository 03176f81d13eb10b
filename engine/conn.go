package engine

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lesismal/nbio"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/stats"
)

type connState uint8

const (
	stDialing     connState = iota // in a dialer goroutine
	stHandshaking                  // upgrade request sent, waiting for the 101
	stOpen                         // WebSocket open
	stClosing                      // close frame sent or received, waiting for the end
	stClosed                       // recorded as failed or closed; nothing more happens
)

// pending is a message waiting for its reply.
type pending struct {
	seq   uint64
	sched int64 // scheduled send time (ns since Engine.base)
	sent  int64 // actual send time; 0 once answered
}

// conn is one load-generating connection. Its mutex orders the poller
// (reads), its sender (timed writes) and the timers; each of them records
// into its own stats shard, so the only lock shared between goroutines is
// this per-connection one.
type conn struct {
	e  *Engine
	id uint32

	mu    sync.Mutex
	state connState
	nbc   *nbio.Conn
	tc    *tls.Conn     // nil for ws://
	tt    *tlsTransport // tc's transport
	sh    *stats.Shard  // the poller's shard (fd % pollers)
	slot  bool          // holds a handshake slot of Engine.sem
	hs    *handshake    // only while handshaking
	rd    wsproto.Reader
	deflt bool // permessage-deflate negotiated

	hsStart int64
	seq     uint64
	out     []pending // in seq order; out[head:] may hold answered entries
	head    int
	// expired holds the seqs of messages that timed out, ascending, to tell
	// a late echo from a duplicate (reply.go); seqs below expFloor are
	// forgotten.
	expired  []uint64
	expFloor uint64
	rnd      uint64 // masking keys
	code     int    // close code to record when the connection ends

	// Per-backend bookkeeping (backend.go): the backend, nil when the run
	// does not tell backends apart; waiting for the announcing message; and
	// messages sent while waiting.
	bk      *stats.Backend
	bkWait  bool
	preSent int64

	// fl runs the scenario flow (flow.go); nil for the echo flow. Set
	// before the connection is shared and never changed.
	fl *flowState
}

type handshake struct {
	req   wsproto.Request
	buf   []byte // response head bytes that arrived in pieces
	timer *time.Timer
}

// newConn makes connection i of this process; its id is its number in the
// whole run (Config.Partition.ID(i)).
func newConn(e *Engine, i int) *conn {
	id := uint64(e.cfg.Partition.ID(i))
	c := &conn{e: e, id: uint32(id), slot: true, rnd: id*0x9E3779B97F4A7C15 | 1, bk: e.unknown}
	c.rd.ValidateUTF8 = true // RFC 6455: fail text messages and close reasons that are not UTF-8 with 1007
	c.rd.MaxMessageSize = e.cfg.MaxMessageSize
	return c
}

// mask returns a fresh masking key (xorshift64*): unpredictable enough for
// proxies, which is all RFC 6455 masking is for.
func (c *conn) mask() [4]byte {
	c.rnd ^= c.rnd >> 12
	c.rnd ^= c.rnd << 25
	c.rnd ^= c.rnd >> 27
	v := c.rnd * 2685821657736338717
	return [4]byte{byte(v >> 32), byte(v >> 40), byte(v >> 48), byte(v >> 56)}
}

// releaseSlot gives the handshake slot back exactly once. Called with mu held.
func (c *conn) releaseSlot() {
	if c.slot {
		c.slot = false
		<-c.e.sem
	}
}

// failDial records a failure before or while handing the socket to nbio.
func (c *conn) failDial(reason string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stClosed {
		return
	}
	c.state = stClosed
	c.stopTimer()
	c.releaseSlot()
	c.recFailed(c.e.dialSh, reason)
	c.e.sample(reason, err)
	if reason == "fd_limit" {
		c.e.fdLimit.Store(true)
	}
	if c.nbc != nil {
		_ = c.nbc.Close()
	}
	c.ended()
}

// ended tells the flow that the socket has ended (state stClosed). mu held.
func (c *conn) ended() {
	if c.fl != nil {
		c.fl.closed(c.e.now())
		return
	}
	c.dropOutstanding()
}

// resetForDial makes a closed connection ready to be dialed again (a
// scenario's reconnect): the same logical connection on a new socket.
// Callbacks of the old socket are ignored (they carry the old nbio.Conn).
func (c *conn) resetForDial() {
	c.state = stDialing
	c.nbc, c.tc, c.tt, c.hs = nil, nil, nil, nil
	c.rd.Reset()
	c.rd.Compression = false
	c.deflt = false
	c.code = 0
	c.bk, c.bkWait, c.preSent = c.e.unknown, false, 0
}

// attach binds the non-blocking socket to the connection before nbio sees it.
func (c *conn) attach(nbc *nbio.Conn, tc *tls.Conn, tt *tlsTransport) {
	c.mu.Lock()
	c.nbc, c.tc, c.tt = nbc, tc, tt
	c.sh = c.e.rec.Shard(nbc.Hash() % c.e.cfg.Pollers)
	c.state = stHandshaking
	nbc.SetSession(c)
	c.mu.Unlock()
}

// sendUpgrade writes the upgrade request and arms the handshake timer.
func (c *conn) sendUpgrade() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stHandshaking {
		return
	}
	e := c.e
	hdr := e.cfg.Header
	if c.fl != nil && len(e.plan.Headers) > 0 {
		hdr = c.fl.header(hdr, e.plan.Headers)
	}
	hs := &handshake{req: wsproto.Request{
		URL: e.target, Header: hdr, Origin: e.cfg.Origin,
		Subprotocols: e.cfg.Subprotocols, Compression: e.cfg.Compression, Key: wsproto.NewKey(),
	}}
	c.hs = hs
	left := e.cfg.HandshakeTimeout - time.Duration(e.now()-c.hsStart)
	hs.timer = time.AfterFunc(max(left, 0), c.handshakeTimeout)
	if err := c.write(wsproto.AppendRequest(nil, &hs.req)); err != nil {
		c.failLocked(classifyDialError(err), err)
	}
}

func (c *conn) stopTimer() {
	if c.hs != nil && c.hs.timer != nil {
		c.hs.timer.Stop()
	}
}

func (c *conn) handshakeTimeout() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stHandshaking {
		c.failLocked("timeout", errors.New("no upgrade response within the handshake timeout"))
	}
}

// failLocked ends a handshake that did not succeed.
func (c *conn) failLocked(reason string, err error) {
	if c.state == stClosed {
		return
	}
	c.state = stClosed
	c.stopTimer()
	c.hs = nil
	c.releaseSlot()
	c.recFailed(c.sh, reason)
	c.e.sample(reason, err)
	if c.nbc != nil {
		_ = c.nbc.Close()
	}
	c.ended()
}

// write sends bytes as they are; mu must be held so frames never interleave
// with a close.
func (c *conn) write(b []byte) error {
	var err error
	if c.tc != nil {
		_, err = c.tc.Write(b)
	} else {
		_, err = c.nbc.Write(b)
	}
	return err
}

// onData handles bytes read by the poller from nbc.
func (c *conn) onData(nbc *nbio.Conn, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stClosed || nbc != c.nbc { // nbc: a socket this connection had before a reconnect
		return
	}
	if c.tc == nil {
		c.onPlain(data)
		return
	}
	// TLS: hand the ciphertext to crypto/tls and read plaintext until it
	// has no more. The plaintext buffer belongs to this connection's poller
	// (fd % pollers), the only goroutine that calls onData for it.
	p := c.nbc.Hash() % len(c.e.plain)
	if c.e.plain[p] == nil {
		c.e.plain[p] = make([]byte, 64<<10)
	}
	buf := c.e.plain[p]
	c.tt.in = data
	defer func() { c.tt.in = nil }()
	for c.state != stClosed {
		n, err := c.tc.Read(buf)
		if n > 0 {
			c.onPlain(buf[:n])
		}
		if err != nil {
			if !isWouldBlock(err) {
				c.abort("tls", err)
			}
			return
		}
	}
}

// onPlain handles plaintext bytes: the upgrade response, then frames.
func (c *conn) onPlain(data []byte) {
	switch c.state {
	case stHandshaking:
		buf := data
		if len(c.hs.buf) > 0 {
			c.hs.buf = append(c.hs.buf, data...)
			buf = c.hs.buf
		}
		resp, n, err := wsproto.ParseResponse(buf)
		if err != nil {
			c.failLocked("bad_handshake", err)
			return
		}
		if n == 0 {
			if len(c.hs.buf) == 0 {
				c.hs.buf = append([]byte(nil), data...)
			}
			return
		}
		c.backendFromResponse(resp)
		sp, deflt, err := wsproto.CheckUpgrade(&c.hs.req, resp)
		if err != nil {
			c.failLocked(classifyHandshakeError(err), err)
			return
		}
		c.deflt = deflt
		offered := c.hs.req.Subprotocols
		c.established()
		if sp == "" && len(offered) > 0 {
			// Legal (the server chose none), but the run asked for one: a server or balancer
			// that drops Sec-WebSocket-Protocol speaks something else than was meant to be
			// tested. Counted, not failed.
			c.recError("subprotocol_ignored")
			c.e.sample("subprotocol_ignored", fmt.Errorf("the server chose none of the offered subprotocols %q; the connection went on without one", offered))
		}
		if rest := buf[n:]; len(rest) > 0 && c.state == stOpen {
			c.feed(rest)
		}
	case stOpen, stClosing:
		c.feed(data)
	}
}

// established moves a connection to open and starts its flow.
func (c *conn) established() {
	e := c.e
	c.stopTimer()
	c.hs = nil
	c.releaseSlot()
	c.state = stOpen
	c.rd.Compression = c.deflt
	now := e.now()
	c.sh.ConnEstablished(time.Duration(now - c.hsStart))
	c.backendEstablished()
	if e.estab.Add(1) == int64(e.cfg.Connections) && e.plan == nil {
		e.rampNS.Store(now)
	}
	if e.stopping.Load() {
		c.startCloseLocked(int(e.closing.Load()))
		return
	}
	if c.fl != nil {
		c.fl.opened(now)
		return
	}
	if e.period > 0 && !e.holdSends(c) {
		e.senders[e.local(c.id)%len(e.senders)].add(c, e.firstSlot(c.id))
	}
	e.rampSettled(1)
}

// firstSlot is connection id's first send time at or after now on the send
// grid. Connection i of N (in the whole run, across processes) sends at
// base + (i/N + k) * period, so sends are spread evenly over each period
// across connections, never in lock-step, however the ramp went.
func (e *Engine) firstSlot(id uint32) int64 {
	off := int64(float64(id) / float64(e.cfg.TotalConnections) * float64(e.period))
	now := e.now()
	if now <= off {
		return off
	}
	k := (now - off + e.period - 1) / e.period
	return off + k*e.period
}

func (c *conn) feed(data []byte) {
	if err := c.rd.Feed(data, c); err != nil {
		var pe *wsproto.ProtocolError
		code := wsproto.CloseAbnormal
		if errors.As(err, &pe) {
			code = pe.Code
			_ = c.write(wsproto.AppendClose(nil, pe.Code, "", c.mask()))
		}
		reason := "invalid_frame"
		if code == wsproto.CloseInvalidPayload {
			reason = "invalid_utf8"
		}
		c.recError(reason)
		c.e.sample(reason, err)
		c.endLocked(code)
	}
}

// OnMessage matches a reply to its request by the id it carries.
func (c *conn) OnMessage(op wsproto.Opcode, payload []byte) {
	if c.bkWait && c.announce(payload) {
		return
	}
	now := c.e.now()
	if c.fl != nil {
		c.sh.ReceivedFor(c.bk, len(payload))
		c.fl.message(payload, now)
		return
	}
	c.reply(op, payload, now) // reply.go
}

// trim drops answered entries from the front and compacts now and then.
func (c *conn) trim() {
	for c.head < len(c.out) && c.out[c.head].sent == 0 {
		c.head++
	}
	if c.head == len(c.out) {
		c.out, c.head = c.out[:0], 0
	} else if c.head > 64 && c.head > len(c.out)/2 {
		n := copy(c.out, c.out[c.head:])
		c.out, c.head = c.out[:n], 0
	}
}

func (c *conn) OnPing(payload []byte) {
	if c.state == stOpen {
		_ = c.write(wsproto.AppendFrame(nil, wsproto.OpPong, true, payload, c.mask()))
	}
}

func (c *conn) OnPong([]byte) {
	if c.fl != nil {
		c.fl.pong(c.e.now())
	}
}

// OnClose handles the server's close frame: the answer to ours, or the
// server ending the connection (answered, and counted as an error unless the
// run is ending).
func (c *conn) OnClose(code int, reason string) {
	if c.state == stOpen {
		_ = c.write(wsproto.AppendClose(nil, closeEcho(code), "", c.mask()))
		if !c.e.stopping.Load() {
			c.recError("server_close_" + strconv.Itoa(code))
			if reason != "" {
				c.e.sample("server_close_"+strconv.Itoa(code), errors.New(reason))
			}
		}
		c.endLocked(code)
		return
	}
	if c.state == stClosing {
		c.endLocked(c.code)
	}
}

// closeEcho is the code to answer a server's close with.
func closeEcho(code int) int {
	if code == wsproto.CloseNoStatus {
		return 1000
	}
	return code
}

// endLocked records the close once and drops the socket.
func (c *conn) endLocked(code int) {
	if c.state == stClosed {
		return
	}
	c.state = stClosed
	c.recClosed(code)
	_ = c.nbc.Close()
	c.ended()
}

// abort drops an open connection after a local failure (e.g. TLS).
func (c *conn) abort(reason string, err error) {
	switch c.state {
	case stHandshaking:
		c.failLocked(reason, err)
	case stOpen, stClosing:
		c.recError(reason)
		c.e.sample(reason, err)
		c.endLocked(wsproto.CloseAbnormal)
	}
}

// onClosed runs after nbio closed the socket nbc, for any reason.
func (c *conn) onClosed(nbc *nbio.Conn, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nbc != c.nbc {
		return // a socket this connection had before a reconnect
	}
	switch c.state {
	case stHandshaking:
		reason := "closed_during_handshake"
		if r := classifyDialError(err); r == "reset" || r == "timeout" {
			reason = r
		}
		if err == nil {
			err = io.EOF
		}
		c.failLocked(reason, err)
	case stOpen:
		// No close frame: abnormal closure (1006), unless we are tearing down.
		if !c.e.stopping.Load() {
			reason := "closed_abnormally"
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				reason = "reset"
			case errors.Is(err, nbio.ErrOverflow):
				reason = "backpressure"
				err = fmt.Errorf("the server stopped reading, or read slower than the run sent: more than %d bytes waited to be written on one connection (--max-write-buffer), so it was closed", c.e.cfg.MaxWriteBuffer)
			}
			c.recError(reason)
			if err != nil && !errors.Is(err, net.ErrClosed) {
				c.e.sample(reason, err)
			}
		}
		c.state = stClosed
		c.recClosed(wsproto.CloseAbnormal)
		c.ended()
	case stClosing:
		c.state = stClosed
		c.recClosed(c.code)
		c.ended()
	}
}

// startClose begins the close handshake at the end of the run.
func (c *conn) startClose(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startCloseLocked(code)
}

func (c *conn) startCloseLocked(code int) {
	switch c.state {
	case stHandshaking:
		c.failLocked("unfinished", errors.New("the run ended before the upgrade response arrived"))
	case stOpen:
		c.state = stClosing
		c.code = code
		if err := c.write(wsproto.AppendClose(nil, code, "", c.mask())); err != nil {
			c.endLocked(code)
		}
	}
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stClosed || c.state == stDialing
}

func (c *conn) outstanding() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fl != nil {
		if c.fl.awaitingReply() && c.state == stOpen {
			return 1
		}
		return 0
	}
	if c.state != stOpen && c.state != stClosing {
		return 0 // can never be answered (ended counted them)
	}
	n := 0
	for _, p := range c.out[c.head:] {
		if p.sent != 0 {
			n++
		}
	}
	return n
}
