package engine

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// A misbehaving WebSocket server for the reply and close accounting tests:
// it upgrades every connection by hand, reads the client's masked frames
// and lets the test decide what to answer, with frames built byte by byte.

type hostileServer struct {
	ln net.Listener
	// message is called for each data message (one goroutine per
	// connection); it answers with hc.send, or not at all.
	message func(hc *hostileConn, op wsproto.Opcode, payload []byte)
	// opened is called once the upgrade response is written.
	opened func(hc *hostileConn)
	// ignoreClose: a client close frame is never answered (the socket
	// stays open until the client drops it).
	ignoreClose bool

	mu    sync.Mutex
	conns []net.Conn
}

type hostileConn struct {
	mu sync.Mutex
	c  net.Conn
}

// send writes one unmasked server frame (fin set).
func (hc *hostileConn) send(op wsproto.Opcode, payload []byte) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	_, _ = hc.c.Write(serverFrame(op, payload))
}

// sendClose writes a close frame with code and reason, raw bytes.
func (hc *hostileConn) sendClose(code int, reason []byte) {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	hc.send(wsproto.OpClose, append(p, reason...))
}

func serverFrame(op wsproto.Opcode, payload []byte) []byte {
	b := []byte{0x80 | byte(op)}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func startHostile(t *testing.T, h *hostileServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.ln = ln
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		for _, c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			go h.serve(c)
		}
	}()
	return "ws://" + ln.Addr().String() + "/"
}

func (h *hostileServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	hc := &hostileConn{c: c}
	hc.mu.Lock()
	_, err = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+wsproto.AcceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
	hc.mu.Unlock()
	if err != nil {
		return
	}
	if h.opened != nil {
		h.opened(hc)
	}
	for {
		op, payload, err := readClientFrame(br)
		if err != nil {
			return
		}
		switch op {
		case wsproto.OpClose:
			if h.ignoreClose {
				continue
			}
			hc.send(wsproto.OpClose, payload)
			return
		case wsproto.OpText, wsproto.OpBinary:
			if h.message != nil {
				h.message(hc, op, payload)
			}
		}
	}
}

// readClientFrame reads one masked, unfragmented client frame.
func readClientFrame(br *bufio.Reader) (wsproto.Opcode, []byte, error) {
	var hd [2]byte
	if _, err := io.ReadFull(br, hd[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(hd[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	if _, err := io.ReadFull(br, mask[:]); err != nil {
		return 0, nil, err
	}
	if n > 1<<20 {
		return 0, nil, io.ErrUnexpectedEOF
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return 0, nil, err
	}
	for i := range p {
		p[i] ^= mask[i%4]
	}
	return wsproto.Opcode(hd[0] & 0x0f), p, nil
}

// checkMessageBuckets fails unless every sent message is in exactly one bucket.
func checkMessageBuckets(t *testing.T, name string, sent, received, timedOut, inFlight int64) {
	t.Helper()
	if sent != received+timedOut+inFlight {
		t.Fatalf("%s: sent %d != received %d + timed out %d + in flight %d", name, sent, received, timedOut, inFlight)
	}
}

// TestLateReplies: a reply that arrives after the reply timeout is a
// timeout (counted when the timeout passes, not at the connection's next
// send, which is 10 s away here) and, once it arrives, a late reply; never
// a round trip. The server holds its echo until the run has counted the
// timeout, so the order does not depend on the machine's speed; before the
// fix the timeout was counted only at the next send, the server let go after
// its 5 s fallback and the echo was measured as a 5 s round trip.
func TestLateReplies(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	byTimeout := make(chan bool, 1)
	url := startHostile(t, &hostileServer{message: func(hc *hostileConn, op wsproto.Opcode, p []byte) {
		select {
		case <-release:
			byTimeout <- true
		case <-time.After(5 * time.Second):
			byTimeout <- false
		}
		hc.send(op, p)
	}})
	var timedOutFirst, lateFirst int = -1, -1
	n := 0
	r, _ := runEcho(t, Config{URL: url, Connections: 1, Rate: 0.1, ReplyTimeout: 200 * time.Millisecond}, echoWait{
		observe: func(iv *stats.Interval) {
			if iv.TimedOut > 0 && timedOutFirst < 0 {
				timedOutFirst = n
				once.Do(func() { close(release) })
			}
			if iv.Late > 0 && lateFirst < 0 {
				lateFirst = n
			}
			n++
		},
		until: func(tot *stats.Interval) bool { return tot.Late >= 1 || tot.Received >= 1 },
	})
	m := r.Messages
	if !<-byTimeout {
		t.Fatalf("the timeout was not counted within 5 s of the send (messages %+v)", m)
	}
	if m.Received != 0 || r.Latency.RTT.Count != 0 || m.Late != 1 || m.TimedOut < 1 || m.Duplicate != 0 || m.Unmatched != 0 {
		t.Fatalf("late reply: messages %+v, rtt count %d", m, r.Latency.RTT.Count)
	}
	if timedOutFirst < 0 || lateFirst <= timedOutFirst {
		t.Fatalf("timed out first counted in interval %d, late in %d: the timeout must be counted before the late reply", timedOutFirst, lateFirst)
	}
	checkMessageBuckets(t, "late", m.Sent, m.Received, m.TimedOut, m.InFlight)
}

// TestDuplicateReplies: a server that echoes every message twice. received
// counts the matched replies only; the second copies are duplicates, not
// unmatched and not received.
func TestDuplicateReplies(t *testing.T) {
	url := startHostile(t, &hostileServer{message: func(hc *hostileConn, op wsproto.Opcode, p []byte) {
		f := serverFrame(op, p)
		hc.mu.Lock()
		_, _ = hc.c.Write(append(f, f...)) // both copies in one write: they arrive together
		hc.mu.Unlock()
	}})
	r, _ := runEcho(t, Config{URL: url, Connections: 2, Rate: 20}, echoWait{
		until: func(tot *stats.Interval) bool { return tot.Received >= 20 && tot.Duplicate >= 20 },
	})
	m := r.Messages
	if m.Duplicate != m.Received || m.Unmatched != 0 || m.Received > m.Sent || r.Latency.RTT.Count != m.Received {
		t.Fatalf("duplicates: messages %+v, rtt count %d", m, r.Latency.RTT.Count)
	}
	if m.ReceivedPerS > m.SentPerS {
		t.Fatalf("received/s %.1f above sent/s %.1f", m.ReceivedPerS, m.SentPerS)
	}
	checkMessageBuckets(t, "duplicate", m.Sent, m.Received, m.TimedOut, m.InFlight)
}

// TestCorruptEchoes: echoes whose id survived but whose length, frame type
// or content did not are counted corrupt, with an example saying what was
// wrong; they are no round trip and do not answer their message, which
// times out.
func TestCorruptEchoes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		binary bool
		mangle func(op wsproto.Opcode, p []byte) (wsproto.Opcode, []byte)
		want   string
	}{
		{"cut", false, func(op wsproto.Opcode, p []byte) (wsproto.Opcode, []byte) { return op, p[:28] }, "length 28, want 1000"},
		{"type", true, func(op wsproto.Opcode, p []byte) (wsproto.Opcode, []byte) { return wsproto.OpText, p }, "text frame answering a binary message"},
		{"content", false, func(op wsproto.Opcode, p []byte) (wsproto.Opcode, []byte) {
			q := append([]byte(nil), p...)
			q[500] = '!'
			return op, q
		}, "byte 500 of 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startHostile(t, &hostileServer{message: func(hc *hostileConn, op wsproto.Opcode, p []byte) {
				hc.send(tc.mangle(op, p))
			}})
			r, eng := runEcho(t, Config{URL: url, Connections: 1, Rate: 20, Size: 1000, Binary: tc.binary, ReplyTimeout: 500 * time.Millisecond},
				echoWait{until: func(tot *stats.Interval) bool { return tot.Corrupt >= 5 }})
			m := r.Messages
			if m.Received != 0 || r.Latency.RTT.Count != 0 || m.Corrupt < 5 || m.Corrupt > m.Sent || m.Unmatched != 0 || m.InFlight != 0 {
				t.Fatalf("corrupt echoes: messages %+v, rtt count %d", m, r.Latency.RTT.Count)
			}
			checkMessageBuckets(t, "corrupt", m.Sent, m.Received, m.TimedOut, m.InFlight)
			if s := eng.SampleErrors()["corrupt"]; !strings.Contains(s, tc.want) {
				t.Fatalf("corrupt example %q, want it to say %q", s, tc.want)
			}
		})
	}
}

// TestInterruptedInFlight: messages waiting for their reply when the run is
// interrupted are in flight, not timed out (their timeout, 60 s, has not
// passed).
func TestInterruptedInFlight(t *testing.T) {
	url := startHostile(t, &hostileServer{}) // never answers
	r, eng := runEcho(t, Config{URL: url, Connections: 2, Rate: 20, ReplyTimeout: 60 * time.Second}, echoWait{
		interrupt: true,
		until:     func(tot *stats.Interval) bool { return tot.Sent >= 10 },
	})
	m := r.Messages
	if m.TimedOut != 0 || m.InFlight != m.Sent || m.Sent < 10 || m.Received != 0 {
		t.Fatalf("interrupted: messages %+v", m)
	}
	if got := eng.EndReason(); got != stats.EndInterrupted {
		t.Fatalf("end reason %q, want %q", got, stats.EndInterrupted)
	}
}

// TestAllClosedEndsRun: a server that answers two messages and then closes
// every connection with 1009 without answering the third. The unanswered
// messages can never be answered: they are timed out when their connection
// closes (not at the end of the run), and once every connection is gone the
// run ends on its own, says why, and does not wait out the reply timeout.
// Before the fix the run lasted its whole duration (20 s) and then the
// reply timeout again.
func TestAllClosedEndsRun(t *testing.T) {
	url := startHostile(t, &hostileServer{message: func(hc *hostileConn, op wsproto.Opcode, p []byte) {
		_, seq, _ := scenario.ParseID(p)
		if seq < 2 {
			hc.send(op, p)
			return
		}
		// Close, and go on reading until the client's answering close (the
		// read loop then ends the socket): dropping it with the client's
		// messages unread would reset it, and a reset may beat the close frame.
		hc.sendClose(1009, []byte("too big"))
	}})
	start := time.Now()
	// The reply timeout is an hour: a run that waited it out could not pass for one that did
	// not on any machine, however slow.
	r, eng := runEcho(t, Config{URL: url, Connections: 3, Rate: 20, Duration: 20 * time.Second, ReplyTimeout: time.Hour}, echoWait{})
	took := time.Since(start)
	m := r.Messages
	if got := eng.EndReason(); got != stats.EndAllClosed {
		t.Fatalf("end reason %q after %v, want %q (messages %+v)", got, took, stats.EndAllClosed, m)
	}
	if r.CloseCodes[1009] != 3 || m.Received != 6 || m.TimedOut != m.Sent-6 || m.TimedOut < 3 || m.InFlight != 0 {
		t.Fatalf("closed by the server: close codes %v messages %+v", r.CloseCodes, m)
	}
	if took >= 10*time.Minute {
		t.Fatalf("the run took %v: it waited the hour-long reply timeout for connections that were gone", took)
	}
}

// TestCloseTimeout: a server that never answers the close handshake. The
// wait is bounded by the close timeout, and those connections are counted
// close_timeout and closed abnormally (1006), not normally (1000).
func TestCloseTimeout(t *testing.T) {
	url := startHostile(t, &hostileServer{ignoreClose: true})
	r, eng := runEcho(t, Config{URL: url, Connections: 2, CloseTimeout: 300 * time.Millisecond},
		echoWait{until: allUp(2, 0)})
	if r.Errors["close_timeout"] != 2 || r.CloseCodes[1006] != 2 || r.CloseCodes[1000] != 0 || r.Connections.Closed != 2 {
		t.Fatalf("close timeout: errors %v close codes %v connections %+v", r.Errors, r.CloseCodes, r.Connections)
	}
	if !strings.Contains(eng.SampleErrors()["close_timeout"], "close timeout") {
		t.Fatalf("close_timeout example %q", eng.SampleErrors()["close_timeout"])
	}
}

// TestInvalidUTF8: a text message or a close reason that is not UTF-8
// fails the connection with 1007, counted invalid_utf8 (RFC 6455 8.1).
func TestInvalidUTF8(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(hc *hostileConn)
	}{
		{"text", func(hc *hostileConn) { hc.send(wsproto.OpText, []byte("ok \xff\xfe")) }},
		{"close_reason", func(hc *hostileConn) { hc.sendClose(1000, []byte("bye \xc3")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startHostile(t, &hostileServer{opened: tc.send})
			r, _ := runEcho(t, Config{URL: url, Connections: 2, Duration: 20 * time.Second}, echoWait{until: allClosed(2)})
			if r.Errors["invalid_utf8"] != 2 || r.CloseCodes[1007] != 2 || r.Messages.Unmatched != 0 {
				t.Fatalf("invalid UTF-8: errors %v close codes %v messages %+v", r.Errors, r.CloseCodes, r.Messages)
			}
		})
	}
}

// TestReplyPathAllocs: matching an echo, verifying its bytes and counting a
// duplicate allocate nothing.
func TestReplyPathAllocs(t *testing.T) {
	e := &Engine{cfg: Config{ReplyTimeout: time.Hour}, echo: scenario.Echo{Size: 200}, op: wsproto.OpText, base: time.Now()}
	rec := stats.NewRecorder(1)
	c := &conn{e: e, id: 3, sh: rec.Shard(0), out: make([]pending, 0, 4)}
	msg := make([]byte, 0, 200)
	c.reply(wsproto.OpText, e.echo.AppendMessage(msg[:0], 3, 0), 1) // warm up: the template, the shard's maps
	allocs := testing.AllocsPerRun(1000, func() {
		seq := c.seq
		c.seq++
		c.out = append(c.out, pending{seq: seq, sched: 1, sent: 1})
		msg = e.echo.AppendMessage(msg[:0], 3, seq)
		c.reply(wsproto.OpText, msg, 2)
		c.reply(wsproto.OpText, msg, 3) // the duplicate
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per reply", allocs)
	}
	// AllocsPerRun runs f once more than asked; the warm-up reply is unmatched (never sent).
	if iv := rec.Rotate(time.Now()); iv.Received != 1001 || iv.Duplicate != 1001 || iv.Corrupt != 0 || iv.Unmatched != 1 {
		t.Fatalf("received %d, duplicate %d, corrupt %d, unmatched %d", iv.Received, iv.Duplicate, iv.Corrupt, iv.Unmatched)
	}
}

// TestSweepCoversEveryConnection: a sweep looks at sweepChunk connections a
// call and, over the calls of one pass, expires every connection's overdue
// messages, however many connections the sender has.
func TestSweepCoversEveryConnection(t *testing.T) {
	const n = 2*sweepChunk + 100
	e := &Engine{cfg: Config{ReplyTimeout: time.Second}, base: time.Now()}
	rec := stats.NewRecorder(1)
	s := newSender(e, rec.Shard(0))
	for i := range n {
		c := &conn{e: e, id: uint32(i), state: stOpen, seq: 2}
		c.out = []pending{{seq: 0, sched: 1, sent: 1}, {seq: 1, sched: 1, sent: int64(5 * time.Second)}}
		s.q = append(s.q, due{at: int64(time.Hour), c: c})
	}
	now := int64(2 * time.Second) // the first message of each is overdue, the second not
	calls := 1
	for !s.sweep(now) {
		calls++
	}
	if calls != 3 {
		t.Fatalf("a pass over %d connections took %d calls, want 3", n, calls)
	}
	if iv := rec.Rotate(time.Now()); iv.TimedOut != n {
		t.Fatalf("timed out %d, want %d", iv.TimedOut, n)
	}
	for _, d := range s.q {
		if len(d.c.out)-d.c.head != 1 || d.c.out[d.c.head].seq != 1 || len(d.c.expired) != 1 {
			t.Fatalf("connection %d: outstanding %v, expired %v", d.c.id, d.c.out[d.c.head:], d.c.expired)
		}
	}
}
