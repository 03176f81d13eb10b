package engine

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// protoServer is a small WebSocket server (one goroutine per connection,
// written here from RFC 6455) speaking the protocol of
// scripts/scenarios/login.yaml and subscribe.yaml:
//
//	{"op":"login","user":U,"password":P}  → {"op":"welcome","session":{"token":"tok-U"},"rooms":[{"id":"room-U"}]}
//	{"op":"subscribe","token":T,"room":R} → {"op":"subscribed","room":R} when T and R are U's, then
//	                                         {"op":"update","n":N} every 100 ms; else {"op":"error"}
//	{"op":"subscribe","topics":[…]}       → {"op":"subscribed"}
//
// It answers pings and close frames, requires the X-Api-Key header and
// counts what it saw, so tests check what the scenario sent.
type protoServer struct {
	URL string

	apiKey   string
	logins   atomic.Int64
	subOK    atomic.Int64
	subBad   atomic.Int64
	pings    atomic.Int64
	clients  sync.Map // X-Client header values seen
	badUsers atomic.Int64
}

func startProtoServer(t *testing.T, apiKey string) *protoServer {
	t.Helper()
	ps := &protoServer{apiKey: apiKey}
	srv := httptest.NewServer(http.HandlerFunc(ps.serve))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	ps.URL = "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	return ps
}

var users = map[string]string{"alice": "wonderland", "bob": "builder", "carol": "singer", "dave": "diver",
	"erin": "engineer", "frank": "furrier", "grace": "hopper", "heidi": "hiker"}

func (ps *protoServer) serve(w http.ResponseWriter, r *http.Request) {
	if ps.apiKey != "" && r.Header.Get("X-Api-Key") != ps.apiKey {
		http.Error(w, "bad api key", http.StatusUnauthorized)
		return
	}
	if v := r.Header.Get("X-Client"); v != "" {
		ps.clients.Store(v, true)
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(h[:]))
	if rw.Flush() != nil {
		return
	}
	ps.session(conn, rw.Reader)
}

func (ps *protoServer) session(conn net.Conn, rd *bufio.Reader) {
	var wmu sync.Mutex
	write := func(op byte, p []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		hdr := []byte{0x80 | op, 0}
		switch {
		case len(p) < 126:
			hdr[1] = byte(len(p))
		case len(p) < 1<<16:
			hdr[1] = 126
			hdr = binary.BigEndian.AppendUint16(hdr, uint16(len(p)))
		default:
			hdr[1] = 127
			hdr = binary.BigEndian.AppendUint64(hdr, uint64(len(p)))
		}
		_, _ = conn.Write(append(hdr, p...))
	}
	sendJSON := func(v any) {
		b, _ := json.Marshal(v)
		write(1, b)
	}
	done := make(chan struct{})
	defer close(done)
	user := ""
	for {
		op, payload, err := readFrame(rd)
		if err != nil {
			return
		}
		switch op {
		case 8: // close: answer with the same code
			write(8, payload[:min(len(payload), 2)])
			return
		case 9:
			ps.pings.Add(1)
			write(10, payload)
			continue
		case 1, 2:
		default:
			continue
		}
		var m map[string]any
		if json.Unmarshal(payload, &m) != nil {
			sendJSON(map[string]any{"op": "error", "why": "not json"})
			continue
		}
		switch m["op"] {
		case "login":
			u, _ := m["user"].(string)
			if pw, ok := users[u]; !ok || pw != m["password"] {
				ps.badUsers.Add(1)
			}
			user = u
			ps.logins.Add(1)
			sendJSON(map[string]any{"op": "welcome", "session": map[string]any{"token": "tok-" + u}, "rooms": []any{map[string]any{"id": "room-" + u}}})
		case "subscribe":
			if _, ok := m["topics"]; ok {
				ps.subOK.Add(1)
				sendJSON(map[string]any{"op": "subscribed"})
				continue
			}
			if user == "" || m["token"] != "tok-"+user || m["room"] != "room-"+user {
				ps.subBad.Add(1)
				sendJSON(map[string]any{"op": "error", "why": "bad token or room"})
				continue
			}
			ps.subOK.Add(1)
			sendJSON(map[string]any{"op": "subscribed", "room": m["room"]})
			go func() {
				tk := time.NewTicker(100 * time.Millisecond)
				defer tk.Stop()
				for n := 0; ; n++ {
					select {
					case <-done:
						return
					case <-tk.C:
						sendJSON(map[string]any{"op": "update", "n": n})
					}
				}
			}()
		default:
			sendJSON(map[string]any{"op": "error", "why": "unknown op"})
		}
	}
}

// readFrame reads one client frame (masked, unfragmented, uncompressed).
func readFrame(rd *bufio.Reader) (op byte, payload []byte, err error) {
	var h [2]byte
	if _, err = io.ReadFull(rd, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(rd, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(rd, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 || h[1]&0x80 == 0 {
		return 0, nil, fmt.Errorf("frame of %d bytes, mask bit %v", n, h[1]&0x80 != 0)
	}
	var mask [4]byte
	if _, err = io.ReadFull(rd, mask[:]); err != nil {
		return 0, nil, err
	}
	payload = make([]byte, n)
	if _, err = io.ReadFull(rd, payload); err != nil {
		return 0, nil, err
	}
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	return h[0] & 0x0f, payload, nil
}
