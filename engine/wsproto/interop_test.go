package wsproto

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/wsload/wsload/internal/nbiorace"
)

// startEchoServer runs an in-process nbio WebSocket echo server on
// 127.0.0.1:0 and returns its ws:// URL. Messages bigger than 32 KiB come
// back fragmented (nbio's default frame size), exercising reassembly.
func startEchoServer(t *testing.T, compression bool) *url.URL {
	t.Helper()
	u := websocket.NewUpgrader()
	u.Subprotocols = []string{"echo"}
	u.EnableCompression(compression)
	u.OnOpen(func(c *websocket.Conn) { c.EnableWriteCompression(compression) })
	u.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		_ = c.WriteMessage(mt, data)
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if _, err := u.Upgrade(w, r, nil); err != nil {
			t.Logf("upgrade: %v", err)
		}
	})
	addr := make(chan string, 1)
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{"127.0.0.1:0"},
		Handler: mux,
		NPoller: 1,
		Listen: func(network, a string) (net.Listener, error) {
			ln, err := net.Listen(network, a)
			if err == nil {
				addr <- ln.Addr().String()
			}
			return ln, err
		},
	})
	nbiorace.Install(engine, nil) // nbio's accept hand-off, made visible to -race
	if err := engine.Start(); err != nil {
		t.Fatalf("nbio engine: %v", err)
	}
	t.Cleanup(engine.Stop)
	return &url.URL{Scheme: "ws", Host: <-addr, Path: "/ws"}
}

// wsClient is the test's stand-in for the engine: a blocking net.Conn
// driven only through this package's codecs.
type wsClient struct {
	t       *testing.T
	conn    net.Conn
	rd      Reader
	comp    Compressor
	rec     recorder
	pending []byte // bytes read past the response head
	wire    int    // bytes read from the socket after the handshake
	mask    [4]byte
}

func dialWS(t *testing.T, u *url.URL, compression bool) *wsClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", u.Host, time.Minute)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	// Every read and write below is bounded by this deadline.
	_ = conn.SetDeadline(time.Now().Add(time.Minute)) // generous: a loaded machine under -race
	req := &Request{URL: u, Subprotocols: []string{"other", "echo"}, Compression: compression, Key: NewKey()}
	if err := req.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := conn.Write(AppendRequest(nil, req)); err != nil {
		t.Fatalf("write request: %v", err)
	}
	var buf []byte
	chunk := make([]byte, 7) // small reads: the head arrives in pieces
	for {
		n, err := conn.Read(chunk)
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		buf = append(buf, chunk[:n]...)
		resp, used, err := ParseResponse(buf)
		if err != nil {
			t.Fatalf("ParseResponse: %v", err)
		}
		if used == 0 {
			continue
		}
		proto, deflate, err := CheckUpgrade(req, resp)
		if err != nil {
			t.Fatalf("CheckUpgrade: %v", err)
		}
		if proto != "echo" || deflate != compression {
			t.Fatalf("negotiated (%q, %v), want (echo, %v)", proto, deflate, compression)
		}
		c := &wsClient{t: t, conn: conn, pending: buf[used:], mask: [4]byte{0x12, 0x34, 0x56, 0x78}}
		c.rd = Reader{Compression: deflate, ValidateUTF8: true}
		return c
	}
}

func (c *wsClient) send(frame []byte) {
	c.t.Helper()
	c.mask[0]++ // a different mask per frame, as the RFC asks
	if _, err := c.conn.Write(frame); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// await reads until the recorder holds n events and returns them.
func (c *wsClient) await(n int) []string {
	c.t.Helper()
	if len(c.pending) > 0 {
		if err := c.rd.Feed(c.pending, &c.rec); err != nil {
			c.t.Fatalf("Feed: %v", err)
		}
		c.pending = nil
	}
	buf := make([]byte, 4096)
	for len(c.rec.events) < n {
		m, err := c.conn.Read(buf)
		if err != nil {
			c.t.Fatalf("read after %q: %v", c.rec.events, err)
		}
		c.wire += m
		if err := c.rd.Feed(buf[:m], &c.rec); err != nil {
			c.t.Fatalf("Feed: %v", err)
		}
	}
	ev := c.rec.events
	c.rec.events = nil
	return ev
}

func TestInteropNbioEcho(t *testing.T) {
	u := startEchoServer(t, false)
	big := bytes.Repeat([]byte("seventy kilobytes "), 70_000/18+1)[:70_000]
	tests := []struct {
		name string
		op   Opcode
		msg  []byte
	}{
		{"text", OpText, []byte("hello nbio")},
		{"binary", OpBinary, []byte{0, 1, 2, 0xff, 0xfe}},
		{"70 KB", OpBinary, big},
		// No empty message: nbio v1.6.12 does not call OnMessage for
		// one, so there is no echo to wait for.
	}
	c := dialWS(t, u, false)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			c.send(AppendFrame(nil, tt.op, true, tt.msg, c.mask))
			want := []string{tt.op.String() + ":" + describe(tt.msg)}
			if got := c.await(1); !slices.Equal(got, want) {
				t.Fatalf("echo %q, want %q", got, want)
			}
		})
	}
	t.Run("fragmented send", func(t *testing.T) {
		c.t = t
		c.send(AppendFrame(nil, OpText, false, []byte("frag"), c.mask))
		c.send(AppendFrame(nil, OpPing, true, []byte("mid"), c.mask))
		c.send(AppendFrame(nil, OpContinuation, true, []byte("mented"), c.mask))
		if got, want := c.await(2), []string{`pong:"mid"`, `text:"fragmented"`}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("ping", func(t *testing.T) {
		c.t = t
		c.send(AppendFrame(nil, OpPing, true, []byte("are you there"), c.mask))
		if got, want := c.await(1), []string{`pong:"are you there"`}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("close handshake", func(t *testing.T) {
		c.t = t
		c.send(AppendClose(nil, CloseNormal, "done", c.mask))
		if got, want := c.await(1), []string{`close:1000:"done"`}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		// The server closes the TCP connection after the close handshake.
		_ = c.conn.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := c.conn.Read(make([]byte, 1)); err == nil {
			t.Fatalf("connection still open after the close handshake")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("server did not close the connection: %v", err)
		}
	})
}

func TestInteropNbioCompressedEcho(t *testing.T) {
	u := startEchoServer(t, true)
	c := dialWS(t, u, true)
	text := []byte(strings.Repeat("a compressible line of text\n", 2000)) // 56 KB
	tests := []struct {
		name string
		op   Opcode
		msg  []byte
	}{
		{"short", OpText, []byte("hello deflate")},
		{"56 KB text", OpText, text},
		{"binary", OpBinary, bytes.Repeat([]byte{1, 2, 3, 4}, 5000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = t
			frame, err := c.comp.AppendMessage(nil, tt.op, tt.msg, c.mask)
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			c.send(frame)
			before := c.wire
			want := []string{tt.op.String() + ":" + describe(tt.msg)}
			if got := c.await(1); !slices.Equal(got, want) {
				t.Fatalf("echo %q, want %q", got, want)
			}
			// The reply must really have been compressed on the wire.
			if got := c.wire - before; len(tt.msg) > 1000 && got > len(tt.msg)/4 {
				t.Fatalf("reply used %d wire bytes for a %d-byte message: not compressed", got, len(tt.msg))
			}
		})
	}
	t.Run("uncompressed frame on a compressed connection", func(t *testing.T) {
		c.t = t
		c.send(AppendFrame(nil, OpText, true, []byte("plain"), c.mask))
		if got, want := c.await(1), []string{`text:"plain"`}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}

// A server that does not speak WebSocket at that path answers with a
// status the engine reports as http_<status>.
func TestInteropNbioRejectsUpgrade(t *testing.T) {
	u := startEchoServer(t, false)
	u.Path = "/missing"
	conn, err := net.DialTimeout("tcp", u.Host, time.Minute)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Minute)) // generous: a loaded machine under -race
	req := &Request{URL: u, Key: NewKey()}
	if _, err := conn.Write(AppendRequest(nil, req)); err != nil {
		t.Fatalf("write: %v", err)
	}
	var buf []byte
	chunk := make([]byte, 512)
	for {
		n, err := conn.Read(chunk)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		buf = append(buf, chunk[:n]...)
		resp, used, err := ParseResponse(buf)
		if err != nil {
			t.Fatalf("ParseResponse: %v", err)
		}
		if used == 0 {
			continue
		}
		_, _, err = CheckUpgrade(req, resp)
		var ue *UpgradeError
		if !errors.As(err, &ue) || ue.Status != http.StatusNotFound {
			t.Fatalf("CheckUpgrade = %v, want *UpgradeError 404", err)
		}
		return
	}
}
