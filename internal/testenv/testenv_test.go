package testenv

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The tests speak WebSocket by hand, byte for byte, so that they check the Node server and the
// harness without trusting any client that wsload is building.

const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
)

// ioTimeout bounds every read and write of a test connection: a wait for something that must
// come, generous so a loaded machine under -race is slow rather than failing.
const ioTimeout = time.Minute

type wsConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	// headers is the server's 101 response, lower-cased, for tests that check negotiation.
	headers string
}

// dialWS opens a TCP connection to url, sends an upgrade request with the extra header lines
// given, and checks for "HTTP/1.1 101" and a correct Sec-WebSocket-Accept.
func dialWS(t *testing.T, url string, extraHeaders ...string) *wsConn {
	t.Helper()
	hostport := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	conn, err := net.DialTimeout("tcp", hostport, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	key := base64.StdEncoding.EncodeToString([]byte("wsload-testenv-k"))
	req := "GET / HTTP/1.1\r\nHost: " + hostport + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	for _, h := range extraHeaders {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatalf("write upgrade request: %v", err)
	}
	r := bufio.NewReader(conn)
	var head strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read upgrade response (so far %q): %v", head.String(), err)
		}
		if line == "\r\n" {
			break
		}
		head.WriteString(line)
	}
	resp := head.String()
	if !strings.HasPrefix(resp, "HTTP/1.1 101") {
		t.Fatalf("upgrade response is %q, want HTTP/1.1 101", resp)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	accept := base64.StdEncoding.EncodeToString(sum[:])
	if !strings.Contains(resp, "Sec-WebSocket-Accept: "+accept+"\r\n") {
		t.Fatalf("upgrade response lacks Sec-WebSocket-Accept: %s:\n%s", accept, resp)
	}
	return &wsConn{t: t, conn: conn, r: r, headers: strings.ToLower(resp)}
}

// send writes one final, masked frame (clients must mask, RFC 6455 5.3).
func (c *wsConn) send(opcode byte, payload []byte) {
	c.t.Helper()
	if len(payload) > 125 {
		c.t.Fatalf("send: test frames stay under 126 bytes, got %d", len(payload))
	}
	if _, err := c.conn.Write(maskedFrame(opcode, payload)); err != nil {
		c.t.Fatalf("send frame: %v", err)
	}
}

// maskedFrame encodes a final client frame of under 126 bytes.
func maskedFrame(opcode byte, payload []byte) []byte {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	frame := []byte{0x80 | opcode, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	return frame
}

// readFrame reads one unfragmented frame from the server and returns its opcode and payload.
func (c *wsConn) readFrame() (byte, []byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0]&0x80 == 0 {
		return 0, nil, fmt.Errorf("fragmented frame, first byte %#x", hdr[0])
	}
	if hdr[1]&0x80 != 0 {
		return 0, nil, errors.New("server frame is masked")
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(c.r, ext[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		return 0, nil, errors.New("test frames never need a 64-bit length")
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0] & 0x0f, payload, nil
}

// expect reads one frame and fails unless it has the opcode and payload given.
func (c *wsConn) expect(opcode byte, payload string) {
	c.t.Helper()
	op, got, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	if op != opcode || string(got) != payload {
		c.t.Fatalf("got frame opcode %#x payload %q, want opcode %#x payload %q", op, got, opcode, payload)
	}
}

func TestNodeWSModesUpgrade(t *testing.T) {
	tests := []struct {
		mode string
		args []string
	}{
		{"echo", nil},
		{"echo", []string{"--deflate"}},
		{"broadcast", nil},
		{"close-after", []string{"--after-ms", "5000"}},
		{"invalid-frame", nil},
		{"stall", []string{"--every-ms", "1000", "--for-ms", "100"}},
		{"hello", nil},
	}
	for _, tt := range tests {
		t.Run(tt.mode+strings.Join(tt.args, ""), func(t *testing.T) {
			url := NodeWS(t, tt.mode, tt.args...)
			if !strings.HasPrefix(url, "ws://127.0.0.1:") || !strings.HasSuffix(url, "/") {
				t.Fatalf("NodeWS returned %q, want ws://127.0.0.1:<port>/", url)
			}
			dialWS(t, url)
		})
	}
}

func TestNodeWSEcho(t *testing.T) {
	c := dialWS(t, NodeWS(t, "echo"))
	c.send(opText, []byte("ping 1"))
	c.expect(opText, "ping 1")
	c.send(opBinary, []byte{0, 1, 2, 0xff})
	c.expect(opBinary, "\x00\x01\x02\xff")
	if strings.Contains(c.headers, "permessage-deflate") {
		t.Fatalf("deflate negotiated without --deflate:\n%s", c.headers)
	}
}

func TestNodeWSDeflate(t *testing.T) {
	offer := "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
	if c := dialWS(t, NodeWS(t, "echo", "--deflate"), offer); !strings.Contains(c.headers, "sec-websocket-extensions: permessage-deflate") {
		t.Fatalf("--deflate: permessage-deflate not accepted:\n%s", c.headers)
	}
	if c := dialWS(t, NodeWS(t, "echo"), offer); strings.Contains(c.headers, "permessage-deflate") {
		t.Fatalf("no --deflate: permessage-deflate accepted:\n%s", c.headers)
	}
}

func TestNodeWSHello(t *testing.T) {
	c := dialWS(t, NodeWS(t, "hello"))
	c.expect(opText, "hello from node")
	c.send(opText, []byte("after hello"))
	c.expect(opText, "after hello")
}

func TestNodeWSBroadcast(t *testing.T) {
	url := NodeWS(t, "broadcast")
	a, b := dialWS(t, url), dialWS(t, url)
	// b's upgrade has completed, but the server registers it a moment later: a round trip
	// through b proves the server knows b before a's message goes out.
	b.send(opText, []byte("b here"))
	b.expect(opText, "b here")
	a.expect(opText, "b here")
	a.send(opText, []byte("to all"))
	a.expect(opText, "to all")
	b.expect(opText, "to all")
}

func TestNodeWSCloseAfter(t *testing.T) {
	const afterMs = 300
	start := time.Now()
	c := dialWS(t, NodeWS(t, "close-after", "--after-ms", fmt.Sprint(afterMs)))
	c.send(opText, []byte("still open"))
	c.expect(opText, "still open")
	op, payload, err := c.readFrame()
	if err == nil {
		t.Fatalf("got frame opcode %#x payload %q, want the connection cut without a close frame", op, payload)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v: %v", ioTimeout, err)
	}
	if elapsed := time.Since(start); elapsed < afterMs*time.Millisecond {
		t.Fatalf("connection cut after %v, before --after-ms %d", elapsed, afterMs)
	}
}

func TestNodeWSInvalidFrame(t *testing.T) {
	c := dialWS(t, NodeWS(t, "invalid-frame"))
	c.send(opText, []byte("first"))
	var got [2]byte
	if _, err := io.ReadFull(c.r, got[:]); err != nil {
		t.Fatalf("read the invalid frame: %v", err)
	}
	if got != [2]byte{0x83, 0x00} {
		t.Fatalf("got bytes % x, want 83 00 (FIN, reserved opcode 3, empty)", got)
	}
}

func TestNodeWSStall(t *testing.T) {
	// Replies are held in the last 300 ms of every 600 ms window. One message every 25 ms (or
	// more, on a loaded machine) for 1.5 s or more crosses at least two stalls and two open
	// periods, wherever the windows fall. The windows' start is Node's secret, so the check is
	// relative: some reply waited a good part of a stall (a lower bound), and the quickest
	// reply took less than half as long as the slowest (two figures of the same run; an
	// echo that is never held gives replies of one speed, however loaded the machine).
	const (
		everyMs = 600
		forMs   = 300
		n       = 60
		gap     = 25 * time.Millisecond
	)
	c := dialWS(t, NodeWS(t, "stall", "--every-ms", fmt.Sprint(everyMs), "--for-ms", fmt.Sprint(forMs)))
	if err := c.conn.SetDeadline(time.Now().Add(ioTimeout + n*gap)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	sent := make(chan time.Time, n)
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			sent <- time.Now()
			if _, err := c.conn.Write(maskedFrame(opText, fmt.Appendf(nil, "m%02d", i))); err != nil {
				sendErr <- err
				return
			}
			time.Sleep(gap)
		}
	}()
	var held int
	shortest, longest := time.Duration(math.MaxInt64), time.Duration(0)
	for i := range n {
		op, payload, err := c.readFrame()
		if err != nil {
			select {
			case serr := <-sendErr:
				t.Fatalf("send: %v", serr)
			default:
			}
			t.Fatalf("reply %d: %v", i, err)
		}
		lat := time.Since(<-sent)
		if want := fmt.Sprintf("m%02d", i); op != opText || string(payload) != want {
			t.Fatalf("reply %d: opcode %#x payload %q, want text %q (in order)", i, op, payload, want)
		}
		shortest, longest = min(shortest, lat), max(longest, lat)
		if lat > forMs/3*2*time.Millisecond {
			held++
		}
	}
	if held == 0 || longest < forMs/3*2*time.Millisecond || shortest*2 >= longest {
		t.Fatalf("%d replies held over %d ms, quickest %v, slowest %v: want some held and the quickest under half the slowest",
			held, forMs/3*2, shortest, longest)
	}
}

func TestNodeWSCleanupKills(t *testing.T) {
	var url string
	t.Run("server", func(t *testing.T) {
		url = NodeWS(t, "echo")
		dialWS(t, url)
	})
	// The subtest's cleanup has killed the server and waited for it: nothing listens any more.
	hostport := strings.TrimSuffix(strings.TrimPrefix(url, "ws://"), "/")
	if conn, err := net.DialTimeout("tcp", hostport, ioTimeout); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts connections after the test that started it ended", url)
	}
}

func TestNodeWSBadMode(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	node, err := nodeSetup(root)
	if err != nil {
		t.Fatalf("%v", err)
	}
	_, _, err = startNodeWS(node, root, "no-such-mode", nil)
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "--mode must be one of") {
		t.Fatalf("start with a bad mode: got error %v, want it to say the server exited and quote its usage", err)
	}
}

func TestNodeSetupHint(t *testing.T) {
	// A checkout where npm ci has not run: the error must tell the user how to fix it.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "testdata", "node"), 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	_, err := nodeSetup(root)
	if err == nil || !strings.Contains(err.Error(), installHint) {
		t.Fatalf("nodeSetup without node_modules: got %v, want the hint %q", err, installHint)
	}
}

func TestParseListening(t *testing.T) {
	tests := []struct {
		line    string
		port    int
		wantErr bool
	}{
		{"listening 8080", 8080, false},
		{"listening 65535", 65535, false},
		{"listening 0", 0, true},
		{"listening 65536", 0, true},
		{"listening", 0, true},
		{"listening x", 0, true},
		{"Error: listen EADDRINUSE", 0, true},
	}
	for _, tt := range tests {
		port, err := parseListening(tt.line)
		if (err != nil) != tt.wantErr || port != tt.port {
			t.Fatalf("parseListening(%q) = %d, %v; want %d, error %v", tt.line, port, err, tt.port, tt.wantErr)
		}
	}
}

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	if port <= 0 || port > 65535 {
		t.Fatalf("FreePort = %d, want a TCP port", port)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("listen on the port FreePort returned: %v", err)
	}
	ln.Close()
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("%v", err)
	}
	if !bytes.HasPrefix(mod, []byte("module github.com/wsload/wsload\n")) {
		t.Fatalf("RepoRoot = %s, whose go.mod is not wsload's", root)
	}
}
