package hostile

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ioWait bounds every read and write of the test client: generous, for a busy machine.
const ioWait = 30 * time.Second

// client is a raw WebSocket client: it writes the upgrade request and frames byte by byte.
type client struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	head string // the response head, up to and without the blank line
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

// dial connects and sends an upgrade request offering the subprotocol chat and
// permessage-deflate; it reads the response head unless the mode answers none.
func dial(t *testing.T, url string, readHead bool) *client {
	t.Helper()
	cl := dialRaw(t, url, readHead)
	t.Cleanup(func() { cl.c.Close() })
	return cl
}

// dialRaw is dial leaving the connection to the caller to close.
func dialRaw(t *testing.T, url string, readHead bool) *client {
	t.Helper()
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	c, err := net.DialTimeout("tcp", addr, ioWait)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	cl := &client{t: t, c: c, br: bufio.NewReader(c)}
	cl.write([]byte("GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, other\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"))
	if readHead {
		var head []string
		for {
			line := strings.TrimRight(cl.line(), "\r\n")
			if line == "" {
				break
			}
			head = append(head, line)
		}
		cl.head = strings.Join(head, "\n")
	}
	return cl
}

func (cl *client) write(b []byte) {
	cl.t.Helper()
	_ = cl.c.SetWriteDeadline(time.Now().Add(ioWait))
	if _, err := cl.c.Write(b); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

func (cl *client) line() string {
	cl.t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(ioWait))
	l, err := cl.br.ReadString('\n')
	if err != nil {
		cl.t.Fatalf("read line: %v (got %q)", err, l)
	}
	return l
}

// send writes one masked client frame.
func (cl *client) send(b0 byte, payload []byte) {
	cl.t.Helper()
	cl.write(frame(b0, payload, true))
}

// read reads n bytes.
func (cl *client) read(n int) []byte {
	cl.t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(ioWait))
	b := make([]byte, n)
	if _, err := io.ReadFull(cl.br, b); err != nil {
		cl.t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return b
}

// readErr waits (up to ioWait) for the read to fail and returns its error.
func (cl *client) readErr() error {
	cl.t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(ioWait))
	b, err := io.ReadAll(cl.br)
	if err == nil {
		err = io.EOF
	}
	if len(b) > 0 {
		cl.t.Fatalf("read %q before the end, want nothing", b)
	}
	return err
}

// quiet checks that nothing arrives within d (an absence: it can only pass wrongly, never fail
// wrongly on a slow machine).
func (cl *client) quiet(d time.Duration) {
	cl.t.Helper()
	_ = cl.c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 1)
	n, err := cl.br.Read(b)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		cl.t.Fatalf("read %q, %v; want nothing within %v", b[:n], err, d)
	}
}

func TestModes(t *testing.T) {
	accept := "Sec-WebSocket-Accept: " + acceptKey(testKey)
	upgraded := func(t *testing.T, cl *client) {
		t.Helper()
		if !strings.HasPrefix(cl.head, "HTTP/1.1 101 ") || !strings.Contains(cl.head, accept) ||
			!strings.Contains(cl.head+"\n", "Sec-WebSocket-Protocol: chat\n") || strings.Contains(cl.head, "Extensions") {
			t.Fatalf("head %q, want a plain 101 choosing chat", cl.head)
		}
	}
	// answers sends one text message "hello" and wants exactly want back.
	answers := func(want string) func(t *testing.T, cl *client) {
		return func(t *testing.T, cl *client) {
			upgraded(t, cl)
			cl.send(finBit|opText, []byte("hello"))
			if got := cl.read(len(want)); string(got) != want {
				t.Fatalf("got % x, want % x", got, want)
			}
			cl.quiet(100 * time.Millisecond)
		}
	}
	tests := []struct {
		mode  Mode
		head  bool // read the response head before check
		check func(t *testing.T, cl *client)
	}{
		{Mode{Kind: Echo}, true, func(t *testing.T, cl *client) {
			upgraded(t, cl)
			cl.send(opText, []byte("hel")) // fragmented: echoed whole
			cl.send(finBit|opPing, []byte("p"))
			if got := cl.read(3); string(got) != "\x8a\x01p" {
				t.Fatalf("got % x, want a pong", got)
			}
			cl.send(finBit|opCont, []byte("lo"))
			if got := cl.read(7); string(got) != "\x81\x05hello" {
				t.Fatalf("got % x, want the echo", got)
			}
			cl.send(finBit|opClose, []byte{0x03, 0xe8, 'o', 'k'})
			if got := cl.read(6); string(got) != "\x88\x04\x03\xe8ok" {
				t.Fatalf("got % x, want the close echoed", got)
			}
			if err := cl.readErr(); err != io.EOF {
				t.Fatalf("after the close: %v, want EOF", err)
			}
		}},
		{Mode{Kind: DuplicateEcho}, true, answers("\x81\x05hello\x81\x05hello")},
		{Mode{Kind: DropEcho, N: 1}, true, func(t *testing.T, cl *client) {
			upgraded(t, cl)
			cl.send(finBit|opText, []byte("one")) // the first: never answered
			cl.send(finBit|opText, []byte("two"))
			if got := cl.read(5); string(got) != "\x81\x03two" {
				t.Fatalf("got % x, want only the second message echoed", got)
			}
		}},
		{Mode{Kind: GarbleEcho, N: 2}, true, answers("\x81\x05hemmn")},
		{Mode{Kind: TruncateEcho, N: 2}, true, answers("\x81\x02he")},
		{Mode{Kind: InvalidUTF8Text}, true, answers("\x81\x05hell\xff")},
		{Mode{Kind: InvalidUTF8Reason}, true, answers("\x88\x08\x03\xe8bye \xff\xfe")},
		{Mode{Kind: CloseWith, Code: 1009, Reason: "big"}, true, answers("\x88\x05\x03\xf1big")},
		{Mode{Kind: CloseWith, Code: 1005}, true, answers("\x88\x02\x03\xed")},
		{Mode{Kind: EscapeReason}, true, answers("\x88" + string(rune(2+len(EscapeSequences))) + "\x03\xe8" + EscapeSequences)},
		{Mode{Kind: RSVBits}, true, answers("\xa1\x05hello")},
		{Mode{Kind: ReservedOpcode}, true, answers("\x83\x05hello")},
		{Mode{Kind: OversizedPing}, true, answers("\x89\x7e\x00\x7e" + strings.Repeat("p", 126))},
		{Mode{Kind: FragmentedPing}, true, answers("\x09\x04ping")},
		{Mode{Kind: HugeLength}, true, answers("\x82\x7f\x40\x00\x00\x00\x00\x00\x00\x00" + strings.Repeat("\x00", 16))},
		{Mode{Kind: StrayContinuation}, true, answers("\x80\x05hello")},
		{Mode{Kind: InterleavedData}, true, answers("\x01\x0afirst half\x81\x0ainterloper")},
		{Mode{Kind: NonMinimalLength}, true, answers("\x81\x7f\x00\x00\x00\x00\x00\x00\x00\x05hello")},
		{Mode{Kind: FragmentEcho, N: 2}, true, answers("\x01\x02he\x89\x03mid\x00\x02ll\x80\x01o")},
		{Mode{Kind: FragmentEcho}, true, func(t *testing.T, cl *client) {
			cl.send(finBit|opBinary, nil) // an empty message is one frame
			if got := cl.read(7); string(got) != "\x82\x00\x89\x03mid" {
				t.Fatalf("got % x", got)
			}
		}},
		{Mode{Kind: Push, Delay: 50 * time.Millisecond}, true, func(t *testing.T, cl *client) {
			if got := cl.read(16); string(got) != "\x81\x06push 1\x81\x06push 2" {
				t.Fatalf("got %q, want two pushes", got)
			}
		}},
		{Mode{Kind: MaskedFrames}, true, func(t *testing.T, cl *client) {
			upgraded(t, cl)
			cl.send(finBit|opText, []byte("hello"))
			got := cl.read(11)
			if got[0] != 0x81 || got[1] != maskBit|5 {
				t.Fatalf("header % x, want a masked text frame of 5 bytes", got[:2])
			}
			for i := range 5 {
				got[6+i] ^= got[2+i%4]
			}
			if string(got[6:]) != "hello" {
				t.Fatalf("unmasked %q", got[6:])
			}
		}},
		{Mode{Kind: TextForBinary}, true, func(t *testing.T, cl *client) {
			cl.send(finBit|opBinary, []byte{1, 2})
			if got := cl.read(4); string(got) != "\x81\x02\x01\x02" {
				t.Fatalf("got % x, want a text frame", got)
			}
		}},
		{Mode{Kind: LateEcho, Delay: 300 * time.Millisecond}, true, func(t *testing.T, cl *client) {
			start := time.Now()
			cl.send(finBit|opText, []byte("a"))
			cl.send(finBit|opPing, nil) // queued behind the late echo
			if got := cl.read(5); string(got) != "\x81\x01a\x8a\x00" {
				t.Fatalf("got % x, want the echo, then the pong", got)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("the echo came after %v, before the 300ms delay", d)
			}
		}},
		{Mode{Kind: Slow101, Delay: 300 * time.Millisecond}, false, func(t *testing.T, cl *client) {
			start := time.Now()
			if l := cl.line(); !strings.HasPrefix(l, "HTTP/1.1 101 ") {
				t.Fatalf("status line %q", l)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("101 after %v, before the 300ms delay", d)
			}
		}},
		{Mode{Kind: IgnoreSubprotocol}, true, func(t *testing.T, cl *client) {
			if !strings.Contains(cl.head, accept) || strings.Contains(cl.head, "Sec-WebSocket-Protocol") {
				t.Fatalf("head %q, want a 101 naming no subprotocol", cl.head)
			}
		}},
		{Mode{Kind: HTTP10}, true, func(t *testing.T, cl *client) {
			if !strings.HasPrefix(cl.head, "HTTP/1.0 101 ") || !strings.Contains(cl.head, accept) {
				t.Fatalf("head %q", cl.head)
			}
		}},
		{Mode{Kind: BadAccept}, true, func(t *testing.T, cl *client) {
			if !strings.HasPrefix(cl.head, "HTTP/1.1 101 ") || strings.Contains(cl.head, accept) || !strings.Contains(cl.head, "Sec-WebSocket-Accept: ") {
				t.Fatalf("head %q, want a 101 with another accept key", cl.head)
			}
		}},
		{Mode{Kind: Status, Code: 403}, true, func(t *testing.T, cl *client) {
			if !strings.HasPrefix(cl.head, "HTTP/1.1 403 Forbidden\n") {
				t.Fatalf("head %q", cl.head)
			}
		}},
		{Mode{Kind: Garbage}, false, func(t *testing.T, cl *client) {
			if l := cl.line(); l != "SSH-2.0-OpenSSH_9.6\r\n" {
				t.Fatalf("got %q", l)
			}
		}},
		{Mode{Kind: DeflateBomb}, true, func(t *testing.T, cl *client) {
			if !strings.Contains(cl.head, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover") {
				t.Fatalf("head %q, want permessage-deflate accepted", cl.head)
			}
			cl.send(finBit|opBinary, []byte("x"))
			if h := cl.read(2); h[0] != finBit|rsv1Bit|opBinary {
				t.Fatalf("header % x, want a compressed binary frame", h)
			}
		}},
		{Mode{Kind: ResetAfter, N: 1}, true, func(t *testing.T, cl *client) {
			cl.send(finBit|opText, []byte("a"))
			if got := cl.read(3); string(got) != "\x81\x01a" {
				t.Fatalf("got % x", got)
			}
			cl.send(finBit|opText, []byte("b"))
			if err := cl.readErr(); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("after the second message: %v, want a reset", err)
			}
		}},
		{Mode{Kind: CutAfter, Delay: 300 * time.Millisecond}, true, func(t *testing.T, cl *client) {
			start := time.Now()
			cl.send(finBit|opText, []byte("a"))
			if got := cl.read(3); string(got) != "\x81\x01a" {
				t.Fatalf("got % x", got)
			}
			if err := cl.readErr(); err != io.EOF {
				t.Fatalf("%v, want EOF", err)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("cut after %v, before the 300ms delay", d)
			}
		}},
		{Mode{Kind: CutAfter, Delay: 300 * time.Millisecond, Code: 1001}, true, func(t *testing.T, cl *client) {
			start := time.Now()
			if got := cl.read(4); string(got) != "\x88\x02\x03\xe9" {
				t.Fatalf("got % x, want close 1001", got)
			}
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("closed after %v, before the 300ms delay", d)
			}
			cl.send(finBit|opClose, []byte{0x03, 0xe9})
			if err := cl.readErr(); err != io.EOF {
				t.Fatalf("after the client's close: %v, want EOF", err)
			}
		}},
		{Mode{Kind: HalfClose}, true, func(t *testing.T, cl *client) {
			if err := cl.readErr(); err != io.EOF {
				t.Fatalf("after the 101: %v, want EOF", err)
			}
			cl.send(finBit|opText, []byte("still read")) // the server still reads
		}},
		{Mode{Kind: CloseUnanswered}, true, func(t *testing.T, cl *client) {
			cl.send(finBit|opClose, []byte{0x03, 0xe8})
			cl.quiet(200 * time.Millisecond)
		}},
		{Mode{Kind: SilentAccept}, false, func(t *testing.T, cl *client) { cl.quiet(200 * time.Millisecond) }},
		{Mode{Kind: StopReading}, true, func(t *testing.T, cl *client) {
			// Writes back up: within 64 MiB a write times out.
			_ = cl.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			chunk := frame(finBit|opBinary, make([]byte, 60<<10), true)
			for range 64 << 20 / len(chunk) {
				if _, err := cl.c.Write(chunk); err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("write: %v, want a timeout", err)
					}
					return
				}
			}
			t.Fatalf("wrote 64 MiB to a server that does not read")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			cl := dial(t, Start(t, tt.mode), tt.head)
			tt.check(t, cl)
		})
	}
}

func TestNoAccept(t *testing.T) {
	s := StartServer(t, Mode{Kind: NoAccept})
	if c, err := net.DialTimeout("tcp", s.Addr(), 500*time.Millisecond); err == nil {
		c.Close()
		t.Fatalf("connected to a server whose accept queue is full")
	}
}

func TestMessageTooBig(t *testing.T) {
	cl := dial(t, Start(t, Mode{Kind: Echo}), true)
	h := []byte{finBit | opBinary, maskBit | 127, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4}
	cl.write(h)
	if got := cl.read(4); string(got[:2]) != "\x88\x11" || string(got[2:]) != "\x03\xf1" {
		t.Fatalf("got % x, want close 1009", got)
	}
}

// TestBomb inflates the bomb: BombSize zero bytes, from a frame of a few tens of KiB.
func TestBomb(t *testing.T) {
	z := bomb()
	if len(z) > 128<<10 {
		t.Fatalf("bomb of %d bytes, want a small frame", len(z))
	}
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff})))
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				t.Fatalf("non-zero byte at %d", total)
			}
		}
		total += n
		if err != nil {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("inflate: %v after %d bytes", err, total)
			}
			break
		}
	}
	if total != BombSize {
		t.Fatalf("inflated to %d bytes, want %d", total, BombSize)
	}
}

// TestCleanup checks that a test's cleanup closes every connection the server holds, in every
// kind of wait, and that every goroutine ends.
func TestCleanup(t *testing.T) {
	before := runtime.NumGoroutine()
	var clients []*client
	t.Run("hold", func(t *testing.T) {
		for _, m := range []Mode{{Kind: StopReading}, {Kind: SilentAccept}, {Kind: Slow101, Delay: time.Hour},
			{Kind: LateEcho, Delay: time.Hour}, {Kind: CloseUnanswered}, {Kind: HalfClose},
			{Kind: CutAfter, Delay: time.Hour, Code: 1001}} {
			cl := dialRaw(t, Start(t, m), false)
			if m.Kind == LateEcho {
				cl.send(finBit|opText, []byte("a"))
			}
			clients = append(clients, cl)
		}
		time.Sleep(100 * time.Millisecond) // let every server reach its wait
	})
	for i, cl := range clients {
		_ = cl.c.SetReadDeadline(time.Now().Add(ioWait))
		_, err := io.Copy(io.Discard, cl.c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("client %d: still open after the server's cleanup", i)
		}
		cl.c.Close()
	}
	deadline := time.Now().Add(ioWait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
