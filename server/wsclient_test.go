package server

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// A deliberately small WebSocket client on net.Conn (RFC 6455 client side), independent of
// nbio so that the tests do not check nbio against itself.

const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

type wsClient struct {
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response // the 101, for its headers
}

// handshakeError is returned when the server answers the upgrade without 101.
type handshakeError struct {
	status int
	header http.Header
	body   string
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("handshake: status %d: %q", e.status, e.body)
}

type dialOpts struct {
	tls    *tls.Config   // for wss; nil means InsecureSkipVerify
	header http.Header   // extra request headers
	path   string        // overrides the URL's path
	tmo    time.Duration // dial + handshake timeout, default patience
}

func dialWS(rawURL string, o dialOpts) (*wsClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if o.tmo == 0 {
		o.tmo = patience
	}
	conn, err := net.DialTimeout("tcp", u.Host, o.tmo)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(o.tmo)
	_ = conn.SetDeadline(deadline)
	if u.Scheme == "wss" {
		cfg := o.tls
		if cfg == nil {
			cfg = &tls.Config{InsecureSkipVerify: true}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	path := u.RequestURI()
	if o.path != "" {
		path = o.path
	}
	var keyRaw [16]byte
	_, _ = rand.Read(keyRaw[:])
	key := base64.StdEncoding.EncodeToString(keyRaw[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, u.Host)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	for k, vs := range o.header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		conn.Close()
		return nil, &handshakeError{status: resp.StatusCode, header: resp.Header, body: string(body)}
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(h[:]); got != want {
		conn.Close()
		return nil, fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	_ = conn.SetDeadline(time.Time{})
	return &wsClient{conn: conn, br: br, resp: resp}, nil
}

func (c *wsClient) Close() error { return c.conn.Close() }

// writeFrame writes one masked frame.
func (c *wsClient) writeFrame(fin bool, op byte, payload []byte) error {
	hdr := make([]byte, 0, 14)
	b0 := op
	if fin {
		b0 |= 0x80
	}
	hdr = append(hdr, b0)
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xFFFF:
		hdr = append(hdr, 0x80|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	buf := make([]byte, len(hdr)+len(payload))
	copy(buf, hdr)
	for i, p := range payload {
		buf[len(hdr)+i] = p ^ mask[i&3]
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(patience))
	_, err := c.conn.Write(buf)
	return err
}

func (c *wsClient) send(op byte, payload []byte) error { return c.writeFrame(true, op, payload) }

// sendFragmented splits payload into n frames (n ≥ 2).
func (c *wsClient) sendFragmented(op byte, payload []byte, n int) error {
	step := (len(payload) + n - 1) / n
	for i := 0; i < n; i++ {
		lo, hi := min(i*step, len(payload)), min((i+1)*step, len(payload))
		fop := byte(opCont)
		if i == 0 {
			fop = op
		}
		if err := c.writeFrame(i == n-1, fop, payload[lo:hi]); err != nil {
			return err
		}
	}
	return nil
}

func (c *wsClient) readFrame() (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(c.br, h[:]); err != nil {
		return
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	if h[1]&0x80 != 0 {
		return false, 0, nil, errors.New("server sent a masked frame")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(c.br, b[:]); err != nil {
			return
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(c.br, b[:]); err != nil {
			return
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return false, 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(c.br, payload)
	return
}

// read returns the next message (data messages reassembled) or control frame, waiting at
// most tmo.
func (c *wsClient) read(tmo time.Duration) (op byte, payload []byte, err error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(tmo))
	var msgOp byte
	var msg []byte
	for {
		fin, fop, p, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		if fop >= opClose {
			return fop, p, nil
		}
		if fop != opCont {
			msgOp = fop
		}
		msg = append(msg, p...)
		if fin {
			if msg == nil {
				msg = []byte{}
			}
			return msgOp, msg, nil
		}
	}
}

// closeCode extracts the status code of a close frame's payload (1005 when absent).
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(payload))
}

func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}
