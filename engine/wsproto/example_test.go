package wsproto_test

import (
	"fmt"
	"net/url"

	"github.com/wsload/wsload/engine/wsproto"
)

type printer struct{}

func (printer) OnMessage(op wsproto.Opcode, p []byte) { fmt.Printf("%v %q\n", op, p) }
func (printer) OnPing(p []byte)                       { fmt.Printf("ping %q\n", p) }
func (printer) OnPong(p []byte)                       { fmt.Printf("pong %q\n", p) }
func (printer) OnClose(code int, reason string)       { fmt.Printf("close %d %q\n", code, reason) }

// The handshake and the first frames, with the server's bytes written out
// by hand where the engine would read them from the socket.
func Example() {
	u, _ := url.Parse("ws://127.0.0.1:8080/echo")
	req := &wsproto.Request{URL: u, Key: "dGhlIHNhbXBsZSBub25jZQ=="} // use wsproto.NewKey()
	if err := req.Validate(); err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", wsproto.AppendRequest(nil, req)[:27])

	fromServer := []byte("HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n" +
		"\x81\x05hello" + // a text frame arriving with the head
		"\x89\x00" + // a ping
		"\x82\x03ab") // the start of a binary frame
	resp, n, err := wsproto.ParseResponse(fromServer)
	if err != nil || n == 0 {
		panic(err)
	}
	if _, _, err := wsproto.CheckUpgrade(req, resp); err != nil {
		panic(err)
	}
	var rd wsproto.Reader
	_ = rd.Feed(fromServer[n:], printer{})
	_ = rd.Feed([]byte("c"), printer{}) // the rest of the binary frame

	frame := wsproto.AppendFrame(nil, wsproto.OpText, true, []byte("hi"), [4]byte{1, 2, 3, 4})
	fmt.Printf("% x\n", frame)
	// Output:
	// "GET /echo HTTP/1.1\r\nHost: 1"
	// text "hello"
	// ping ""
	// binary "abc"
	// 81 82 01 02 03 04 69 6b
}
