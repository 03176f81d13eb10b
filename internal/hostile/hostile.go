// Package hostile is a WebSocket server that misbehaves on purpose, for tests: one named Kind
// per misbehaviour, each with a fixed, documented behaviour, built on raw sockets with every
// frame written byte by byte so that no client library's leniency hides a fault.
//
//	func TestAgainstLateReplies(t *testing.T) {
//		url := hostile.Start(t, hostile.Mode{Kind: hostile.LateEcho, Delay: 1500 * time.Millisecond})
//		// url is ws://127.0.0.1:<port>/; run the client against it and check what it counted.
//	}
//
// Unless its fault is in the upgrade itself, a mode answers a well-formed upgrade request
// correctly (the right Sec-WebSocket-Accept, the first offered subprotocol, no extensions), and
// then, unless its fault is in the echo, echoes every data message (its frame type kept, one
// frame, whatever fragments it came in). The modes of a faulty frame answer every data message
// with that frame instead of its echo. Pings are answered with pongs, and a client's close frame
// with a close frame carrying the same code and reason, after which the server closes TCP;
// except where a mode says otherwise.
//
// The server is for tests on loopback (127.0.0.1) only, and for clients that send at most
// MaxMessage bytes per message.
//
// Invariants, whatever the client does: every read and write has a deadline (IOLimit, IdleLimit,
// HandshakeLimit); memory is bounded (a request head of at most MaxHead bytes, messages of at
// most MaxMessage bytes, at most MaxPending replies queued per connection: reading pauses while
// the queue is full); at test cleanup the listener and every connection are closed and every
// goroutine has returned.
package hostile

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Kind names one misbehaviour.
type Kind string

// The modes. Mode's fields that a Kind reads are named in its comment; the others are ignored.
const (
	// Echo is a well-behaved echo server: the baseline every other mode departs from.
	Echo Kind = "echo"

	// LateEcho holds every reply Delay after its message arrived. Replies keep their order, so
	// a pong waits behind the late echoes before it.
	LateEcho Kind = "late_echo"
	// DuplicateEcho echoes every message twice.
	DuplicateEcho Kind = "duplicate_echo"
	// DropEcho echoes every message but the N-th (counting from 1; the first when N is 0) of
	// each connection, which it never answers: one lost reply.
	DropEcho Kind = "drop_echo"
	// GarbleEcho echoes every message with the same length and frame type, the lowest bit of
	// every byte from offset N on flipped (ASCII stays ASCII: a text reply stays valid UTF-8).
	// Text ids of wsload's echo messages fill the first 28 bytes, binary ones the first 16.
	GarbleEcho Kind = "garble_echo"
	// TruncateEcho echoes the first N bytes of every message only.
	TruncateEcho Kind = "truncate_echo"
	// TextForBinary echoes every message in a text frame, whatever its type.
	TextForBinary Kind = "text_for_binary"
	// InvalidUTF8Text echoes every message as a text frame with its last byte replaced by 0xFF
	// (which is never valid UTF-8); an empty message gets the single byte 0xFF.
	InvalidUTF8Text Kind = "invalid_utf8_text"
	// InvalidUTF8Reason answers the first data message with a close frame of code 1000 and a
	// reason that is not UTF-8 ("bye \xff\xfe").
	InvalidUTF8Reason Kind = "invalid_utf8_reason"
	// CloseWith answers the first data message with a close frame of code Code (sent as given,
	// so 999, 1005 and 1006, which must never be on the wire, can be) and reason Reason. It then
	// waits up to IOLimit for the client's close frame and closes TCP.
	CloseWith Kind = "close_with"
	// EscapeReason is CloseWith (Code 1000 when 0) with the reason EscapeSequences: a clear
	// screen and a forged summary line.
	EscapeReason Kind = "escape_reason"
	// CloseUnanswered echoes but never answers the client's close frame: it keeps reading
	// (and discarding) until the client drops TCP or IdleLimit passes.
	CloseUnanswered Kind = "close_unanswered"
	// StopReading answers the upgrade, then never reads again, with a small receive buffer, so
	// the client's writes back up. Not reading, it cannot see the client leave: it holds the
	// connection until the test's cleanup.
	StopReading Kind = "stop_reading"
	// IgnoreSubprotocol echoes but never names a subprotocol in its 101, whatever was offered.
	IgnoreSubprotocol Kind = "ignore_subprotocol"
	// Slow101 waits Delay before it answers the upgrade, then echoes.
	Slow101 Kind = "slow_101"
	// ResetAfter echoes N messages, then resets the connection (TCP RST, SO_LINGER 0) when the
	// next one arrives.
	ResetAfter Kind = "reset_after"
	// CutAfter echoes, and Delay after the upgrade ends the connection as an idle timeout of a
	// balancer would: with a close frame of code Code when Code is set (then it closes TCP when
	// the client's close frame comes, or IOLimit later), else with a TCP FIN and no close frame
	// (it reads on, answering nothing, until the client drops TCP).
	CutAfter Kind = "cut_after"
	// HalfClose answers the upgrade, then shuts down its sending side (TCP FIN, no close
	// frame) and keeps reading (and discarding) until the client drops TCP.
	HalfClose Kind = "half_close"

	// SilentAccept accepts TCP connections, reads and discards what comes, never answers.
	SilentAccept Kind = "silent_accept"
	// NoAccept listens with a backlog of 0 and never accepts: the kernel completes the TCP
	// handshake of the first connection or two (Linux's accept queue holds backlog+1) and then
	// drops the SYNs of every other, whose connects time out.
	NoAccept Kind = "no_accept"
	// Status answers the upgrade request with the plain HTTP status Code (400 when 0) and a
	// short body, then closes.
	Status Kind = "status"
	// HTTP10 answers "HTTP/1.0 101 Switching Protocols" (headers otherwise right), then echoes.
	HTTP10 Kind = "http10"
	// Garbage answers the upgrade request with a line that is not HTTP (an SSH banner), then
	// reads and discards until the client drops TCP.
	Garbage Kind = "garbage"
	// BadAccept answers 101 with a Sec-WebSocket-Accept computed from another key.
	BadAccept Kind = "bad_accept"

	// MaskedFrames echoes in masked frames (servers must not mask).
	MaskedFrames Kind = "masked_frames"
	// RSVBits echoes with RSV2 set (no extension defines it).
	RSVBits Kind = "rsv_bits"
	// ReservedOpcode answers every data message with a frame of the reserved opcode 0x3.
	ReservedOpcode Kind = "reserved_opcode"
	// OversizedPing answers every data message with a ping of 126 bytes (control frames carry
	// at most 125).
	OversizedPing Kind = "oversized_ping"
	// FragmentedPing answers every data message with a ping whose FIN bit is clear.
	FragmentedPing Kind = "fragmented_ping"
	// HugeLength answers every data message with a binary frame header announcing 2^62 bytes,
	// followed by 16 bytes of payload, then goes quiet.
	HugeLength Kind = "huge_length"
	// DeflateBomb accepts permessage-deflate (no context takeover) when offered and answers every
	// data message with one compressed binary frame (RSV1) that inflates to BombSize zero
	// bytes; without the offer it sends the same frame anyway (RSV1 not negotiated).
	DeflateBomb Kind = "deflate_bomb"
	// StrayContinuation answers every data message with a continuation frame that continues
	// nothing.
	StrayContinuation Kind = "stray_continuation"
	// InterleavedData answers every data message with the first fragment of a text message
	// (FIN clear), then a whole text frame before that message is finished.
	InterleavedData Kind = "interleaved_data"
	// NonMinimalLength echoes every message with its length in the 8-byte form whatever the
	// size (RFC 6455 asks for the minimal form).
	NonMinimalLength Kind = "non_minimal_length"

	// FragmentEcho is well-behaved but unusual: it echoes every message in fragments of N bytes
	// (1 when N is 0), with a ping between the first fragment and the second. The client must
	// reassemble the message and answer the ping.
	FragmentEcho Kind = "fragment_echo"
	// Push echoes and also sends an unsolicited text message ("push N", N counting from 1 on
	// each connection) every Delay from the upgrade on: replies to no message.
	Push Kind = "push"
)

// EscapeSequences is EscapeReason's close reason: it clears the screen, homes the cursor and
// forges a clean summary line, as a hostile server would to fool a person reading a terminal.
const EscapeSequences = "\x1b[2J\x1b[H\rErrors       none\x07"

// Limits that keep the server bounded whatever its client does.
const (
	MaxHead        = 8 << 10          // bytes of an upgrade request head
	MaxMessage     = 1 << 20          // bytes of one client message; beyond it the server closes with 1009
	MaxPending     = 1024             // replies queued per connection
	BombSize       = 64 << 20         // bytes a DeflateBomb frame inflates to
	HandshakeLimit = 10 * time.Second // to read the upgrade request
	IOLimit        = 10 * time.Second // for every write, and for the wait for a client's close
	IdleLimit      = 2 * time.Minute  // between two reads of an open connection
)

// Mode says how the server misbehaves: Kind and the parameters that Kind reads.
type Mode struct {
	Kind   Kind
	Delay  time.Duration // LateEcho, Slow101, CutAfter, Push
	N      int           // GarbleEcho: bytes kept intact; TruncateEcho: bytes kept; ResetAfter: messages echoed first; DropEcho: the message not answered; FragmentEcho: bytes per fragment
	Code   int           // CloseWith, EscapeReason, CutAfter: close code; Status: HTTP status
	Reason string        // CloseWith: close reason, sent raw (at most 123 bytes)
}

// String names the mode and its parameters, for test names.
func (m Mode) String() string {
	s := string(m.Kind)
	if m.Delay > 0 {
		s += fmt.Sprintf("_%v", m.Delay)
	}
	if m.N > 0 {
		s += fmt.Sprintf("_n%d", m.N)
	}
	if m.Code != 0 {
		s += fmt.Sprintf("_%d", m.Code)
	}
	return s
}

// Server is a running hostile server; Start returns its URL, StartServer the server itself.
type Server struct {
	mode Mode
	ln   net.Listener
	addr string
	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Start starts a server in mode m on 127.0.0.1 and returns its ws:// URL (path "/"). The server
// stops at the test's cleanup.
func Start(t testing.TB, m Mode) string {
	t.Helper()
	return StartServer(t, m).URL()
}

// StartServer is Start returning the server, for tests that need its address.
func StartServer(t testing.TB, m Mode) *Server {
	t.Helper()
	if !m.Kind.valid() {
		t.Fatalf("hostile: unknown mode %q", m.Kind)
	}
	if m.Kind == Push && m.Delay <= 0 {
		t.Fatalf("hostile: push needs a positive Delay between pushes")
	}
	s := &Server{mode: m, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	if m.Kind == NoAccept {
		addr, closeFn, err := listenNoAccept()
		if err != nil {
			t.Fatalf("hostile: %v", err)
		}
		s.addr = addr
		t.Cleanup(func() { closeFn() })
		return s
	}
	if m.Kind == DeflateBomb {
		bomb() // before the first client waits for it
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hostile: listen: %v", err)
	}
	s.ln, s.addr = ln, ln.Addr().String()
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

// URL is the server's ws:// URL.
func (s *Server) URL() string { return "ws://" + s.addr + "/" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

func (k Kind) valid() bool {
	switch k {
	case Echo, LateEcho, DuplicateEcho, DropEcho, GarbleEcho, TruncateEcho, TextForBinary, InvalidUTF8Text,
		InvalidUTF8Reason, CloseWith, EscapeReason, CloseUnanswered, StopReading, IgnoreSubprotocol,
		Slow101, ResetAfter, CutAfter, HalfClose, SilentAccept, NoAccept, Status, HTTP10, Garbage, BadAccept,
		MaskedFrames, RSVBits, ReservedOpcode, OversizedPing, FragmentedPing, HugeLength, DeflateBomb,
		StrayContinuation, InterleavedData, NonMinimalLength, FragmentEcho, Push:
		return true
	}
	return false
}

// close stops accepting, closes every connection and waits for every goroutine.
func (s *Server) close() {
	close(s.done)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		select {
		case <-s.done:
			s.mu.Unlock()
			c.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	}
}

// sleep waits d or until the server stops; it reports whether the server is still running.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

// sleepUntil waits until t, or until the server or stop ends; it reports whether t came.
func (s *Server) sleepUntil(t time.Time, stop <-chan struct{}) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-s.done:
	case <-stop:
	}
	return false
}

// request is what the server reads from an upgrade request.
type request struct {
	key, protocol string
	deflate       bool // permessage-deflate offered
}

// serve runs one connection in the server's mode.
func (s *Server) serve(c net.Conn) {
	br := bufio.NewReaderSize(c, 4096)
	if s.mode.Kind == SilentAccept {
		discard(c, br)
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(HandshakeLimit))
	req, err := readRequest(br)
	if err != nil {
		return
	}
	m := s.mode
	switch m.Kind {
	case Status:
		code := m.Code
		if code == 0 {
			code = 400
		}
		body := "hostile: refused\n"
		write(c, fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", code, statusText(code), len(body), body))
		return
	case Garbage:
		if write(c, []byte("SSH-2.0-OpenSSH_9.6\r\n")) {
			discard(c, br)
		}
		return
	case Slow101:
		if !s.sleep(m.Delay) {
			return
		}
	}
	if !write(c, response(m, req)) {
		return
	}
	switch m.Kind {
	case StopReading:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		<-s.done
		return
	case HalfClose:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		discard(c, br)
		return
	}
	s.frames(c, br, req)
}

// response is the answer to a well-formed upgrade request, as the mode twists it.
func response(m Mode, req request) []byte {
	var b bytes.Buffer
	if m.Kind == HTTP10 {
		b.WriteString("HTTP/1.0 101 Switching Protocols\r\n")
	} else {
		b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	}
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\n")
	accept := acceptKey(req.key)
	if m.Kind == BadAccept {
		accept = acceptKey("dGhlIHNhbXBsZSBub25jZQ==" + req.key)
	}
	b.WriteString("Sec-WebSocket-Accept: " + accept + "\r\n")
	if req.protocol != "" && m.Kind != IgnoreSubprotocol {
		b.WriteString("Sec-WebSocket-Protocol: " + req.protocol + "\r\n")
	}
	if m.Kind == DeflateBomb && req.deflate {
		b.WriteString("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// reply is one write the connection's writer makes at due; last closes the connection after it
// (reset: with a TCP RST; wait: once the client's close frame came, or IOLimit passed); fin
// shuts down the sending side instead, and the writer stops.
type reply struct {
	due   time.Time
	data  []byte
	last  bool
	wait  bool
	reset bool
	fin   bool
}

// frames reads the client's frames and answers them in the server's mode. A writer goroutine
// makes the writes, each at its due time, so that late replies do not stop the reading.
func (s *Server) frames(c net.Conn, br *bufio.Reader, req request) {
	out := make(chan reply, MaxPending)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writer(c, br, out)
	}()
	stop := make(chan struct{}) // the reader has returned
	// timedDone: the goroutine of the modes that act on a timer (CutAfter, Push) has ended.
	timedDone := make(chan struct{})
	defer func() {
		close(stop)
		<-timedDone
		close(out)
		<-writerDone
	}()
	// push queues r; it reports false when the writer, the reader or the server has stopped.
	push := func(r reply) bool {
		select {
		case out <- r:
			return true
		case <-writerDone:
		case <-s.done:
		case <-stop:
		}
		return false
	}
	m := s.mode
	var cutting atomic.Bool  // CutAfter has sent its close frame
	var finished atomic.Bool // CutAfter has shut down the sending side: read on, answer nothing
	go func() {
		defer close(timedDone)
		if m.Kind == Push {
			for i := 1; s.sleepUntil(time.Now().Add(m.Delay), stop); i++ {
				if !push(reply{data: frame(finBit|opText, fmt.Appendf(nil, "push %d", i), false)}) {
					return
				}
			}
			return
		}
		if m.Kind != CutAfter {
			return
		}
		if !s.sleepUntil(time.Now().Add(m.Delay), stop) {
			return
		}
		if m.Code == 0 {
			// A FIN while the reader still reads, so that no unread byte turns the close
			// into a reset: the client sees a clean end of stream.
			finished.Store(true)
			push(reply{fin: true})
			return
		}
		cutting.Store(true)
		if push(reply{data: closeFrame(m.Code, "")}) && s.sleepUntil(time.Now().Add(IOLimit), stop) {
			push(reply{last: true})
		}
	}()
	echoed := 0
	var msg []byte
	var msgOp byte
	for {
		_ = c.SetReadDeadline(time.Now().Add(IdleLimit))
		f, err := readFrame(br, MaxMessage-len(msg))
		if errors.Is(err, errTooBig) {
			push(reply{data: closeFrame(1009, "message too big"), last: true, wait: true})
			return
		}
		if err != nil {
			return
		}
		if finished.Load() {
			continue
		}
		now := time.Now()
		switch f.op {
		case opPing:
			if !push(reply{due: now, data: frame(finBit|opPong, f.payload, false)}) {
				return
			}
			continue
		case opPong:
			continue
		case opClose:
			if m.Kind == CloseUnanswered {
				continue
			}
			if cutting.Load() { // the client's answer to the server's close
				push(reply{due: now, last: true})
				return
			}
			push(reply{due: now, data: frame(finBit|opClose, f.payload, false), last: true})
			return
		case opCont:
			msg = append(msg, f.payload...)
		default:
			msgOp, msg = f.op, append(msg[:0], f.payload...)
		}
		if !f.fin {
			continue
		}
		payload := msg
		msg = msg[:0]
		rs := s.answer(msgOp, payload, req, &echoed)
		for _, r := range rs {
			if r.due.IsZero() {
				r.due = now
			}
			if !push(r) || r.last {
				return
			}
		}
	}
}

// answer is the mode's answer to one whole data message.
func (s *Server) answer(op byte, p []byte, req request, echoed *int) []reply {
	m := s.mode
	echo := func(b0 byte, payload []byte) reply {
		return reply{data: frame(b0, payload, false)}
	}
	switch m.Kind {
	case LateEcho:
		r := echo(finBit|op, p)
		r.due = time.Now().Add(m.Delay)
		return []reply{r}
	case DuplicateEcho:
		return []reply{echo(finBit|op, p), echo(finBit|op, p)}
	case DropEcho:
		*echoed++
		if *echoed == max(m.N, 1) {
			return nil
		}
		return []reply{echo(finBit|op, p)}
	case GarbleEcho:
		g := bytes.Clone(p)
		for i := m.N; i < len(g); i++ {
			g[i] ^= 0x01
		}
		return []reply{echo(finBit|op, g)}
	case TruncateEcho:
		return []reply{echo(finBit|op, p[:min(m.N, len(p))])}
	case TextForBinary:
		return []reply{echo(finBit|opText, p)}
	case InvalidUTF8Text:
		b := bytes.Clone(p)
		if len(b) == 0 {
			b = []byte{0xff}
		}
		b[len(b)-1] = 0xff
		return []reply{echo(finBit|opText, b)}
	case InvalidUTF8Reason:
		return s.closeWith(1000, "bye \xff\xfe")
	case CloseWith:
		return s.closeWith(m.Code, m.Reason)
	case EscapeReason:
		code := m.Code
		if code == 0 {
			code = 1000
		}
		return s.closeWith(code, EscapeSequences)
	case ResetAfter:
		if *echoed >= m.N {
			return []reply{{last: true, reset: true}}
		}
		*echoed++
		return []reply{echo(finBit|op, p)}
	case MaskedFrames:
		return []reply{{data: frame(finBit|op, p, true)}}
	case RSVBits:
		return []reply{echo(finBit|rsv2Bit|op, p)}
	case ReservedOpcode:
		return []reply{echo(finBit|0x3, p)}
	case OversizedPing:
		return []reply{echo(finBit|opPing, bytes.Repeat([]byte{'p'}, 126))}
	case FragmentedPing:
		return []reply{echo(opPing, []byte("ping"))}
	case HugeLength:
		h := []byte{finBit | opBinary, 127}
		h = binary.BigEndian.AppendUint64(h, 1<<62)
		return []reply{{data: append(h, make([]byte, 16)...)}}
	case DeflateBomb:
		return []reply{{data: frame(finBit|rsv1Bit|opBinary, bomb(), false)}}
	case StrayContinuation:
		return []reply{echo(finBit|opCont, p)}
	case InterleavedData:
		return []reply{echo(opText, []byte("first half")), echo(finBit|opText, []byte("interloper"))}
	case NonMinimalLength:
		h := []byte{finBit | op, 127}
		h = binary.BigEndian.AppendUint64(h, uint64(len(p)))
		return []reply{{data: append(h, p...)}}
	case FragmentEcho:
		n := max(m.N, 1)
		var b []byte
		b0 := op
		for i := 0; i < len(p) || i == 0; i += n {
			end := min(i+n, len(p))
			if end == len(p) {
				b0 |= finBit
			}
			b = append(b, frame(b0, p[i:end], false)...)
			if i == 0 {
				b = append(b, frame(finBit|opPing, []byte("mid"), false)...)
			}
			b0 = opCont
		}
		return []reply{{data: b}}
	}
	return []reply{echo(finBit|op, p)}
}

// closeWith sends a close frame with code (raw) and reason, then waits for the client's close
// frame up to IOLimit.
func (s *Server) closeWith(code int, reason string) []reply {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return []reply{{data: closeFrame(code, reason), last: true, wait: true}}
}

// writer writes the replies in order, each at its due time, and closes the connection after
// the last one. The reader has stopped by then, so the writer reads the client's close frame
// itself when the server closed first.
func (s *Server) writer(c net.Conn, br *bufio.Reader, out <-chan reply) {
	for r := range out {
		if d := time.Until(r.due); d > 0 && !s.sleep(d) {
			return
		}
		if r.reset {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			return
		}
		if r.fin {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return
		}
		if !write(c, r.data) {
			c.Close()
			return
		}
		if r.last {
			_ = c.SetReadDeadline(time.Now().Add(IOLimit))
			for r.wait {
				f, err := readFrame(br, MaxMessage)
				if err != nil || f.op == opClose {
					break
				}
			}
			c.Close()
			return
		}
	}
}

// write writes b with a deadline; it reports whether all of it went out.
func write(c net.Conn, b []byte) bool {
	_ = c.SetWriteDeadline(time.Now().Add(IOLimit))
	_, err := c.Write(b)
	return err == nil
}

// discard reads and throws away what the client sends until it drops TCP or IdleLimit passes
// without a byte.
func discard(c net.Conn, br *bufio.Reader) {
	buf := make([]byte, 4096)
	for {
		_ = c.SetReadDeadline(time.Now().Add(IdleLimit))
		if _, err := br.Read(buf); err != nil {
			return
		}
	}
}

// readRequest reads an upgrade request head of at most MaxHead bytes and 100 lines.
func readRequest(br *bufio.Reader) (request, error) {
	var req request
	total := 0
	for i := 0; ; i++ {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil || total > MaxHead || i > 100 {
			return req, errors.New("hostile: bad request head")
		}
		l := strings.TrimRight(string(line), "\r\n")
		if i == 0 {
			if !strings.HasPrefix(l, "GET ") {
				return req, errors.New("hostile: not a GET")
			}
			continue
		}
		if l == "" {
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "sec-websocket-key":
			req.key = value
		case "sec-websocket-protocol":
			if req.protocol == "" {
				req.protocol, _, _ = strings.Cut(value, ",")
				req.protocol = strings.TrimSpace(req.protocol)
			}
		case "sec-websocket-extensions":
			if strings.Contains(value, "permessage-deflate") {
				req.deflate = true
			}
		}
	}
	if req.key == "" {
		return req, errors.New("hostile: no Sec-WebSocket-Key")
	}
	return req, nil
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 426:
		return "Upgrade Required"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	}
	return "Status"
}

// Frame bits and opcodes (RFC 6455 section 5.2).
const (
	finBit  = 0x80
	rsv1Bit = 0x40
	rsv2Bit = 0x20
	maskBit = 0x80

	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xa
)

// frame builds one frame: first byte b0 (FIN, RSV, opcode), then the length, then (masked) the
// mask key and the masked payload.
func frame(b0 byte, payload []byte, masked bool) []byte {
	b := []byte{b0, 0}
	var mb byte
	if masked {
		mb = maskBit
	}
	switch n := len(payload); {
	case n <= 125:
		b[1] = mb | byte(n)
	case n <= 0xffff:
		b[1] = mb | 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] = mb | 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	b = append(b, key[:]...)
	for i, p := range payload {
		b = append(b, p^key[i%4])
	}
	return b
}

// closeFrame builds an unmasked close frame with code and reason as given (code 0: no body).
func closeFrame(code int, reason string) []byte {
	if code == 0 {
		return frame(finBit|opClose, nil, false)
	}
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return frame(finBit|opClose, append(p, reason...), false)
}

// clientFrame is one frame read from the client, unmasked.
type clientFrame struct {
	fin     bool
	op      byte
	payload []byte
}

var errTooBig = errors.New("hostile: message too big")

// readFrame reads one client frame whose payload is at most limit bytes.
func readFrame(br *bufio.Reader, limit int) (clientFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return clientFrame{}, err
	}
	f := clientFrame{fin: h[0]&finBit != 0, op: h[0] & 0x0f}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > uint64(limit) {
		return f, errTooBig
	}
	var key [4]byte
	masked := h[1]&maskBit != 0
	if masked {
		if _, err := io.ReadFull(br, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(br, f.payload); err != nil {
		return f, err
	}
	if masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

var (
	bombOnce sync.Once
	bombData []byte
)

// bomb is a raw DEFLATE stream (permessage-deflate framing: the final 00 00 ff ff removed) of
// BombSize zero bytes, made once. Compressing 64 MiB takes seconds under the race detector, so
// it compresses two 1 MiB segments of zeros, each ended by a sync flush, and repeats the second:
// that segment refers back only to zeros, so it stays valid after any run of zeros.
func bomb() []byte {
	bombOnce.Do(func() {
		const seg = 1 << 20
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.BestCompression)
		zero := make([]byte, seg)
		_, _ = w.Write(zero)
		_ = w.Flush()
		first := b.Len()
		_, _ = w.Write(zero)
		_ = w.Flush()
		out := bytes.Clone(b.Bytes()[:first])
		for range BombSize/seg - 1 {
			out = append(out, b.Bytes()[first:]...)
		}
		bombData = bytes.TrimSuffix(out, []byte{0, 0, 0xff, 0xff})
	})
	return bombData
}
