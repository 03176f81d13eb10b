package wsproto

import (
	"bufio"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestAcceptKeyRFCExample(t *testing.T) {
	// RFC 6455 section 1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q, want s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", got)
	}
}

func TestNewKey(t *testing.T) {
	a, b := NewKey(), NewKey()
	for _, k := range []string{a, b} {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil || len(raw) != 16 {
			t.Fatalf("NewKey() = %q: not 16 base64 bytes (%v)", k, err)
		}
	}
	if a == b {
		t.Fatalf("NewKey returned %q twice", a)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url.Parse(%q): %v", s, err)
	}
	return u
}

const testKey = "dGhlIHNhbXBsZSBub25jZQ=="

func TestRequestValidate(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		header  http.Header
		origin  string
		protos  []string
		key     string
		wantErr string // substring; "" means valid
	}{
		{name: "minimal", url: "ws://127.0.0.1:8080"},
		{name: "wss with everything", url: "wss://example.test/chat?room=1", header: http.Header{"X-Token": {"abc"}, "Host": {"front.test"}},
			origin: "https://example.test", protos: []string{"chat", "superchat"}, key: testKey},
		{name: "no URL", wantErr: "no URL"},
		{name: "http scheme", url: "http://127.0.0.1/", wantErr: "scheme"},
		{name: "no host", url: "ws:///path", wantErr: "no host"},
		{name: "opaque", url: "ws:opaque", wantErr: "opaque"},
		{name: "Upgrade header", url: "ws://h/", header: http.Header{"Upgrade": {"h2c"}}, wantErr: "Upgrade"},
		{name: "Connection header any case", url: "ws://h/", header: http.Header{"connection": {"close"}}, wantErr: "connection"},
		{name: "key header", url: "ws://h/", header: http.Header{"Sec-Websocket-Key": {testKey}}, wantErr: "Sec-Websocket-Key"},
		{name: "version header", url: "ws://h/", header: http.Header{"Sec-Websocket-Version": {"8"}}, wantErr: "Version"},
		{name: "extensions header", url: "ws://h/", header: http.Header{"Sec-Websocket-Extensions": {"x"}}, wantErr: "compression"},
		{name: "protocol header", url: "ws://h/", header: http.Header{"Sec-Websocket-Protocol": {"x"}}, wantErr: "subprotocols"},
		{name: "header injection", url: "ws://h/", header: http.Header{"X-A": {"v\r\nX-Evil: 1"}}, wantErr: "control"},
		{name: "bad header name", url: "ws://h/", header: http.Header{"X A": {"v"}}, wantErr: "invalid header name"},
		{name: "two hosts", url: "ws://h/", header: http.Header{"Host": {"a", "b"}}, wantErr: "Host"},
		{name: "origin twice", url: "ws://h/", header: http.Header{"Origin": {"a"}}, origin: "b", wantErr: "Origin"},
		{name: "bad subprotocol", url: "ws://h/", protos: []string{"a b"}, wantErr: "token"},
		{name: "duplicate subprotocol", url: "ws://h/", protos: []string{"a", "a"}, wantErr: "twice"},
		{name: "bad key", url: "ws://h/", key: "c2hvcnQ=", wantErr: "16 base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Header: tt.header, Origin: tt.origin, Subprotocols: tt.protos, Key: tt.key}
			if tt.url != "" {
				r.URL = mustURL(t, tt.url)
			}
			err := r.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "wsproto: "):
				t.Fatalf("error %q lacks the wsproto: prefix", err)
			}
		})
	}
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		url  string
		want string
	}{
		{
			name: "minimal", url: "ws://127.0.0.1:8080",
			want: "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		},
		{
			name: "everything", url: "wss://user:pa%3Ass@example.test/chat%20room?x=1&y=2",
			req: Request{
				Header:       http.Header{"X-B": {"2"}, "X-A": {"1", "1b"}, "Host": {"front.test"}},
				Origin:       "https://example.test",
				Subprotocols: []string{"chat", "v2.chat"},
				Compression:  true,
			},
			want: "GET /chat%20room?x=1&y=2 HTTP/1.1\r\nHost: front.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\n" +
				"Origin: https://example.test\r\n" +
				"Sec-WebSocket-Protocol: chat, v2.chat\r\n" +
				"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n" +
				"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa:ss")) + "\r\n" +
				"X-A: 1\r\nX-A: 1b\r\nX-B: 2\r\n\r\n",
		},
		{
			name: "explicit Authorization wins over user info", url: "ws://u:p@h/",
			req: Request{Header: http.Header{"Authorization": {"Bearer t"}}},
			want: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: " + testKey + "\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer t\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.URL = mustURL(t, tt.url)
			req.Key = testKey
			if err := req.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := string(AppendRequest([]byte("prefix"), &req))
			if got != "prefix"+tt.want {
				t.Fatalf("AppendRequest =\n%q\nwant\n%q", got, "prefix"+tt.want)
			}
			// Go's own HTTP parser must accept it.
			if _, err := http.ReadRequest(bufioReader(got[len("prefix"):])); err != nil {
				t.Fatalf("net/http cannot parse the request: %v", err)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantStatus int
		wantReason string
		wantHeader http.Header
		wantN      int // 0: len of head computed from the "\r\n\r\n" (or "\n\n") terminator
		wantErr    string
	}{
		{
			name:       "101",
			in:         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n\r\n\x81\x02hi",
			wantStatus: 101, wantReason: "Switching Protocols",
			wantHeader: http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-Websocket-Accept": {"abc"}},
		},
		{
			name:       "odd casing and spacing",
			in:         "HTTP/1.1 101 OK\r\nuPGRADE:websocket  \r\nconnection:\t upgrade\r\nsec-websocket-accept: k\r\n\r\n",
			wantStatus: 101, wantReason: "OK",
			wantHeader: http.Header{"Upgrade": {"websocket"}, "Connection": {"upgrade"}, "Sec-Websocket-Accept": {"k"}},
		},
		{
			name:       "folded header and repeated header",
			in:         "HTTP/1.1 101 Switching\r\nX-Long: part one\r\n  part two\r\n\tpart three\r\nX-Rep: a\r\nX-Rep: b\r\n\r\n",
			wantStatus: 101, wantReason: "Switching",
			wantHeader: http.Header{"X-Long": {"part one part two part three"}, "X-Rep": {"a", "b"}},
		},
		{
			name:       "bare LF line endings",
			in:         "HTTP/1.1 404 Not Found\nContent-Length: 0\n\nbody",
			wantStatus: 404, wantReason: "Not Found",
			wantHeader: http.Header{"Content-Length": {"0"}},
		},
		{name: "no reason", in: "HTTP/1.0 502\r\n\r\n", wantStatus: 502, wantHeader: http.Header{}},
		{name: "empty header value", in: "HTTP/1.1 400 Bad Request\r\nX-E:\r\n\r\n", wantStatus: 400, wantReason: "Bad Request", wantHeader: http.Header{"X-E": {""}}},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH\r\n\r\n", wantErr: "does not start"},
		{name: "not HTTP detected early", in: "\x81\x05", wantErr: "does not start"},
		{name: "HTTP/2", in: "HTTP/2.0 101 x\r\n\r\n", wantErr: "protocol"},
		{name: "bad status", in: "HTTP/1.1 1x1 Switching\r\n\r\n", wantErr: "status line"},
		{name: "status without space", in: "HTTP/1.1 101Switching\r\n\r\n", wantErr: "status line"},
		{name: "short status line", in: "HTTP/1.1 10\r\n\r\n", wantErr: "status line"},
		{name: "header without colon", in: "HTTP/1.1 101 x\r\nUpgrade websocket\r\n\r\n", wantErr: "malformed"},
		{name: "space before colon", in: "HTTP/1.1 101 x\r\nUpgrade : websocket\r\n\r\n", wantErr: "malformed"},
		{name: "fold without header", in: "HTTP/1.1 101 x\r\n continued\r\n\r\n", wantErr: "continuation"},
		{name: "control character in value", in: "HTTP/1.1 101 x\r\nX: a\x00b\r\n\r\n", wantErr: "control"},
		{name: "head too long", in: "HTTP/1.1 101 x\r\nX: " + strings.Repeat("a", MaxResponseHead) + "\r\n\r\n", wantErr: "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, n, err := ParseResponse([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseResponse = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			wantN := strings.Index(tt.in, "\r\n\r\n") + 4
			if wantN < 4 {
				wantN = strings.Index(tt.in, "\n\n") + 2
			}
			if n != wantN {
				t.Fatalf("n = %d, want %d", n, wantN)
			}
			if resp.Status != tt.wantStatus || resp.Reason != tt.wantReason {
				t.Fatalf("status %d %q, want %d %q", resp.Status, resp.Reason, tt.wantStatus, tt.wantReason)
			}
			if !headersEqual(resp.Header, tt.wantHeader) {
				t.Fatalf("header %q, want %q", resp.Header, tt.wantHeader)
			}
			// Every proper prefix of the head is incomplete, not an error.
			for i := 0; i < n; i++ {
				r, m, err := ParseResponse([]byte(tt.in[:i]))
				if r != nil || m != 0 || err != nil {
					t.Fatalf("prefix of %d bytes: (%v, %d, %v), want incomplete", i, r, m, err)
				}
			}
		})
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || strings.Join(va, "\x00") != strings.Join(vb, "\x00") {
			return false
		}
	}
	return true
}

func TestParseResponseIncompleteAtLimit(t *testing.T) {
	head := []byte("HTTP/1.1 101 x\r\nX: " + strings.Repeat("a", MaxResponseHead))
	if _, n, err := ParseResponse(head[:MaxResponseHead-1]); n != 0 || err != nil {
		t.Fatalf("just under the limit: n=%d err=%v, want incomplete", n, err)
	}
	if _, _, err := ParseResponse(head[:MaxResponseHead]); err == nil {
		t.Fatalf("at the limit without a terminator: no error")
	}
}

func TestCheckUpgrade(t *testing.T) {
	accept := AcceptKey(testKey)
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n"
	deflate := "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
	tests := []struct {
		name        string
		resp        string // head without the final blank line
		protos      []string
		compression bool
		wantProto   string
		wantDeflate bool
		wantStatus  int    // >0: want *UpgradeError with this status
		wantErr     string // substring of an ErrBadHandshake error
	}{
		{name: "plain", resp: ok},
		{name: "odd casing", resp: "HTTP/1.1 101 x\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\nsec-websocket-accept: " + accept + "\r\n"},
		{name: "subprotocol chosen", resp: ok + "Sec-WebSocket-Protocol: v2\r\n", protos: []string{"v1", "v2"}, wantProto: "v2"},
		{name: "compression", resp: ok + deflate, compression: true, wantDeflate: true},
		{name: "compression offered, declined", resp: ok, compression: true},
		{name: "compression with window bits", compression: true, wantDeflate: true,
			resp: ok + "Sec-WebSocket-Extensions: permessage-deflate;server_no_context_takeover; server_max_window_bits=\"10\"\r\n"},
		{name: "400", resp: "HTTP/1.1 400 Bad Request\r\n", wantStatus: 400},
		{name: "404", resp: "HTTP/1.1 404 Not Found\r\n", wantStatus: 404},
		{name: "426", resp: "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n", wantStatus: 426},
		{name: "502", resp: "HTTP/1.0 502 Bad Gateway\r\n", wantStatus: 502},
		{name: "200", resp: "HTTP/1.1 200 OK\r\n", wantStatus: 200},
		{name: "missing accept", resp: "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", wantErr: "missing Sec-WebSocket-Accept"},
		{name: "wrong accept", resp: "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey("other") + "\r\n", wantErr: "does not match"},
		{name: "two accepts", resp: ok + "Sec-WebSocket-Accept: " + accept + "\r\n", wantErr: "2 Sec-WebSocket-Accept"},
		{name: "missing upgrade", resp: "HTTP/1.1 101 x\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n", wantErr: "Upgrade header"},
		{name: "wrong upgrade", resp: "HTTP/1.1 101 x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n", wantErr: "Upgrade header"},
		{name: "missing connection", resp: "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + accept + "\r\n", wantErr: "Connection header"},
		{name: "subprotocol not offered", resp: ok + "Sec-WebSocket-Protocol: v3\r\n", protos: []string{"v1"}, wantErr: "subprotocol"},
		{name: "subprotocol without offer", resp: ok + "Sec-WebSocket-Protocol: v1\r\n", wantErr: "subprotocol"},
		{name: "extension not offered", resp: ok + deflate, wantErr: "not offered"},
		{name: "unknown extension", resp: ok + "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", compression: true, wantErr: "not offered"},
		{name: "deflate twice", resp: ok + deflate + deflate, compression: true, wantErr: "twice"},
		{name: "deflate with context takeover", resp: ok + "Sec-WebSocket-Extensions: permessage-deflate\r\n", compression: true, wantErr: "server_no_context_takeover"},
		{name: "client_max_window_bits not offered", compression: true,
			resp: ok + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10\r\n", wantErr: "unsupported"},
		{name: "bad window bits", compression: true,
			resp: ok + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=16\r\n", wantErr: "window_bits"},
		{name: "repeated parameter", compression: true,
			resp: ok + "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover\r\n", wantErr: "repeated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.resp + "\r\n"
			resp, n, err := ParseResponse([]byte(raw))
			if err != nil || n != len(raw) {
				t.Fatalf("ParseResponse: n=%d err=%v", n, err)
			}
			req := &Request{URL: mustURL(t, "ws://h/"), Key: testKey, Subprotocols: tt.protos, Compression: tt.compression}
			proto, defl, err := CheckUpgrade(req, resp)
			var ue *UpgradeError
			switch {
			case tt.wantStatus > 0:
				if !errors.As(err, &ue) || ue.Status != tt.wantStatus || ue.Reason != resp.Reason {
					t.Fatalf("CheckUpgrade = %v, want *UpgradeError{%d, %q}", err, tt.wantStatus, resp.Reason)
				}
				if errors.Is(err, ErrBadHandshake) {
					t.Fatalf("status error %v also wraps ErrBadHandshake", err)
				}
			case tt.wantErr != "":
				if !errors.Is(err, ErrBadHandshake) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("CheckUpgrade = %v, want ErrBadHandshake containing %q", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("CheckUpgrade: %v", err)
			case proto != tt.wantProto || defl != tt.wantDeflate:
				t.Fatalf("CheckUpgrade = (%q, %v), want (%q, %v)", proto, defl, tt.wantProto, tt.wantDeflate)
			}
		})
	}
}

// The head arriving in pieces, as the engine sees it: feed a growing buffer
// until ParseResponse completes, then the frames after it start at n.
func TestParseResponseAcrossFeeds(t *testing.T) {
	raw := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + AcceptKey(testKey) + "\r\n\r\n" + string(sf(0x81, "first"))
	for _, size := range []int{1, 2, 3, 7, 13, 64} {
		var buf []byte
		var resp *Response
		n := 0
		for off := 0; off < len(raw) && n == 0; off += size {
			buf = append(buf, raw[off:min(off+size, len(raw))]...)
			var err error
			resp, n, err = ParseResponse(buf)
			if err != nil {
				t.Fatalf("chunk size %d: %v", size, err)
			}
		}
		if n == 0 {
			t.Fatalf("chunk size %d: head never completed", size)
		}
		if _, _, err := CheckUpgrade(&Request{URL: mustURL(t, "ws://h/"), Key: testKey}, resp); err != nil {
			t.Fatalf("chunk size %d: CheckUpgrade: %v", size, err)
		}
		rest := buf[n:]
		if !strings.HasPrefix(string(sf(0x81, "first")), string(rest)) {
			t.Fatalf("chunk size %d: bytes after head %q are not the frame's start", size, rest)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
