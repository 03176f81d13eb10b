package wsproto

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// keyGUID is the fixed GUID of RFC 6455 section 1.3.
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// MaxResponseHead bounds the HTTP response head ParseResponse accepts. Real
// upgrade responses are a few hundred bytes; the bound keeps a misbehaving
// server from making a connection buffer without limit.
const MaxResponseHead = 16 << 10

// ErrBadHandshake is wrapped by every CheckUpgrade failure other than a
// non-101 status.
var ErrBadHandshake = errors.New("wsproto: bad handshake")

// UpgradeError is a response to the upgrade request with a status other than
// 101 Switching Protocols (e.g. 400, 404, 426, 502 from a balancer).
type UpgradeError struct {
	Status int
	Reason string
}

func (e *UpgradeError) Error() string {
	return "wsproto: upgrade rejected: HTTP " + strconv.Itoa(e.Status) + " " + e.Reason
}

// NewKey returns a fresh Sec-WebSocket-Key: 16 random bytes, base64-encoded.
func NewKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.StdEncoding.EncodeToString(b[:])
}

// AcceptKey returns the Sec-WebSocket-Accept value a server must answer key
// with: base64(SHA-1(key + GUID)).
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(keyGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Request describes a client upgrade request.
type Request struct {
	// URL is the ws:// or wss:// target; its path and query form the request
	// target ("/" when empty) and its host the Host header. User info
	// (ws://user:pass@host) becomes Basic authorization unless Header sets
	// Authorization.
	URL *url.URL
	// Header holds extra headers (the user's -H). "Host" overrides the Host
	// header. The headers this package manages (Upgrade, Connection,
	// Sec-WebSocket-*) are rejected by Validate.
	Header http.Header
	// Origin, when not empty, is sent as the Origin header.
	Origin string
	// Subprotocols are offered in Sec-WebSocket-Protocol, in order.
	Subprotocols []string
	// Compression offers permessage-deflate with client_no_context_takeover
	// and server_no_context_takeover, the only variant Reader and
	// Compressor implement.
	Compression bool
	// Key is the connection's Sec-WebSocket-Key (see NewKey). It must be
	// set before AppendRequest; Validate accepts a template without it.
	Key string
}

// managedHeaders are set by AppendRequest from Request's fields; letting the
// user set them too would send duplicates or contradict what CheckUpgrade
// expects.
var managedHeaders = []string{
	"Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
	"Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
}

// Validate checks a request before it is used to dial: the URL, that user
// headers are well-formed and do not set the handshake's own headers, the
// subprotocol tokens and, if set, the key.
func (r *Request) Validate() error {
	if r.URL == nil {
		return errors.New("wsproto: request has no URL")
	}
	switch r.URL.Scheme {
	case "ws", "wss":
	default:
		return fmt.Errorf("wsproto: URL scheme %q is not ws or wss", r.URL.Scheme)
	}
	if r.URL.Host == "" {
		return fmt.Errorf("wsproto: URL %q has no host", r.URL.String())
	}
	if r.URL.Opaque != "" {
		return fmt.Errorf("wsproto: URL %q is opaque; write ws://host/path", r.URL.String())
	}
	for name, values := range r.Header {
		for _, m := range managedHeaders {
			if strings.EqualFold(name, m) {
				hint := ""
				switch m {
				case "Sec-WebSocket-Extensions":
					hint = " (use compression instead)"
				case "Sec-WebSocket-Protocol":
					hint = " (use subprotocols instead)"
				}
				return fmt.Errorf("wsproto: header %q is set by the WebSocket handshake and cannot be overridden%s", name, hint)
			}
		}
		if !isToken(name) {
			return fmt.Errorf("wsproto: invalid header name %q", name)
		}
		for _, v := range values {
			if !validHeaderValue(v) {
				return fmt.Errorf("wsproto: header %q has a value with control characters (CR, LF, NUL …)", name)
			}
		}
		if strings.EqualFold(name, "Host") && (len(values) != 1 || values[0] == "") {
			return errors.New("wsproto: header Host must have exactly one non-empty value")
		}
		if strings.EqualFold(name, "Origin") && r.Origin != "" {
			return errors.New("wsproto: Origin given both as a header and as the Origin field")
		}
	}
	if !validHeaderValue(r.Origin) {
		return errors.New("wsproto: Origin has control characters")
	}
	for i, p := range r.Subprotocols {
		if !isToken(p) {
			return fmt.Errorf("wsproto: subprotocol %q is not an HTTP token", p)
		}
		if slices.Contains(r.Subprotocols[:i], p) {
			return fmt.Errorf("wsproto: subprotocol %q offered twice", p)
		}
	}
	if r.Key != "" {
		if b, err := base64.StdEncoding.DecodeString(r.Key); err != nil || len(b) != 16 {
			return fmt.Errorf("wsproto: Sec-WebSocket-Key %q is not 16 base64-encoded bytes", r.Key)
		}
	}
	return nil
}

// AppendRequest appends the HTTP/1.1 GET upgrade request head for r, ending
// with the blank line. r should have passed Validate; user headers are
// written in sorted order so that the bytes are deterministic.
func AppendRequest(dst []byte, r *Request) []byte {
	target := r.URL.RequestURI()
	dst = append(dst, "GET "...)
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	host := r.URL.Host
	if h := headerGet(r.Header, "Host"); h != "" {
		host = h
	}
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, r.Key...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n"...)
	if r.Origin != "" {
		dst = appendHeaderLine(dst, "Origin", r.Origin)
	}
	if len(r.Subprotocols) > 0 {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		for i, p := range r.Subprotocols {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = append(dst, p...)
		}
		dst = append(dst, "\r\n"...)
	}
	if r.Compression {
		dst = append(dst, "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n"...)
	}
	if u := r.URL.User; u != nil && headerGet(r.Header, "Authorization") == "" {
		pass, _ := u.Password()
		dst = appendHeaderLine(dst, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		if !strings.EqualFold(name, "Host") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range r.Header[name] {
			dst = appendHeaderLine(dst, name, v)
		}
	}
	return append(dst, "\r\n"...)
}

func appendHeaderLine(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// headerGet is http.Header.Get that also finds keys the user did not
// canonicalize (a literal map such as http.Header{"host": …}).
func headerGet(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Response is a parsed HTTP response head.
type Response struct {
	Status int
	Reason string
	// Header has canonical keys; folded continuation lines are joined to
	// their header with a single space.
	Header http.Header
}

// ParseResponse parses the HTTP/1.1 response head at the start of buf. When
// the head is complete it returns the response and the number of bytes it
// used (n > 0; frames may follow in buf[n:]). When more bytes are needed it
// returns n == 0 and a nil error. A malformed head, or one longer than
// MaxResponseHead, is an error; so is a buffer that cannot start an HTTP
// response, which is reported without waiting for more bytes.
func ParseResponse(buf []byte) (resp *Response, n int, err error) {
	const proto = "HTTP/"
	if k := min(len(buf), len(proto)); !bytes.Equal(buf[:k], []byte(proto)[:k]) {
		return nil, 0, fmt.Errorf("wsproto: response does not start with %q: %q", proto, clip(buf))
	}
	head := buf[:min(len(buf), MaxResponseHead)]
	end := headEnd(head)
	if end < 0 {
		if len(buf) >= MaxResponseHead {
			return nil, 0, fmt.Errorf("wsproto: response head exceeds %d bytes", MaxResponseHead)
		}
		return nil, 0, nil
	}
	head = head[:end]
	// Split into lines, accepting bare LF as well as CRLF.
	line, rest := nextLine(head)
	resp = &Response{Header: make(http.Header)}
	if err := parseStatusLine(line, resp); err != nil {
		return nil, 0, err
	}
	var last string // canonical key of the previous header, for folding
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break // the blank line ending the head
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold (RFC 7230 section 3.2.4): a continuation of the
			// previous header's value.
			if last == "" {
				return nil, 0, fmt.Errorf("wsproto: response header continuation without a header: %q", clip(line))
			}
			vs := resp.Header[last]
			cont := strings.TrimSpace(string(line))
			if vs[len(vs)-1] == "" {
				vs[len(vs)-1] = cont
			} else if cont != "" {
				vs[len(vs)-1] += " " + cont
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(string(line[:colon])) {
			return nil, 0, fmt.Errorf("wsproto: malformed response header line %q", clip(line))
		}
		value := string(bytes.Trim(line[colon+1:], " \t"))
		if !validHeaderValue(value) {
			return nil, 0, fmt.Errorf("wsproto: response header %q has control characters", line[:colon])
		}
		last = http.CanonicalHeaderKey(string(line[:colon]))
		resp.Header[last] = append(resp.Header[last], value)
	}
	return resp, end, nil
}

// headEnd returns the length of the head including its terminating blank
// line, or -1 if the blank line has not arrived.
func headEnd(b []byte) int {
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1 // start of the next line
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.TrimSuffix(b, []byte("\r")), nil
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:]
}

// parseStatusLine parses "HTTP/1.x SP 3DIGIT [SP reason]".
func parseStatusLine(line []byte, resp *Response) error {
	bad := func() error { return fmt.Errorf("wsproto: malformed status line %q", clip(line)) }
	s := string(line)
	if len(s) < len("HTTP/1.1 200") || s[8] != ' ' {
		return bad()
	}
	switch s[:8] {
	case "HTTP/1.1", "HTTP/1.0":
	default:
		return fmt.Errorf("wsproto: unsupported response protocol %q", s[:8])
	}
	code := s[9:12]
	for i := range 3 {
		if code[i] < '0' || code[i] > '9' {
			return bad()
		}
	}
	resp.Status, _ = strconv.Atoi(code)
	if resp.Status < 100 {
		return bad()
	}
	switch {
	case len(s) == 12:
	case s[12] == ' ':
		resp.Reason = s[13:]
		if !validHeaderValue(resp.Reason) {
			return bad()
		}
	default:
		return bad()
	}
	return nil
}

// CheckUpgrade validates resp as the server's answer to req: status 101,
// "Upgrade: websocket", "Connection: upgrade", the Sec-WebSocket-Accept
// matching req.Key, a subprotocol among those offered and extensions among
// those offered. It returns the chosen subprotocol ("" if none) and whether
// permessage-deflate is in effect. A status other than 101 is an
// *UpgradeError; every other failure wraps ErrBadHandshake.
func CheckUpgrade(req *Request, resp *Response) (subprotocol string, compression bool, err error) {
	if resp.Status != http.StatusSwitchingProtocols {
		return "", false, &UpgradeError{Status: resp.Status, Reason: resp.Reason}
	}
	if !headerHasToken(resp.Header, "Upgrade", "websocket") {
		return "", false, fmt.Errorf("%w: Upgrade header is %q, want websocket", ErrBadHandshake, strings.Join(resp.Header.Values("Upgrade"), ", "))
	}
	if !headerHasToken(resp.Header, "Connection", "upgrade") {
		return "", false, fmt.Errorf("%w: Connection header is %q, want upgrade", ErrBadHandshake, strings.Join(resp.Header.Values("Connection"), ", "))
	}
	accept := resp.Header.Values("Sec-Websocket-Accept")
	switch {
	case len(accept) == 0:
		return "", false, fmt.Errorf("%w: missing Sec-WebSocket-Accept", ErrBadHandshake)
	case len(accept) > 1:
		return "", false, fmt.Errorf("%w: %d Sec-WebSocket-Accept headers", ErrBadHandshake, len(accept))
	case accept[0] != AcceptKey(req.Key):
		return "", false, fmt.Errorf("%w: Sec-WebSocket-Accept %q does not match the key", ErrBadHandshake, accept[0])
	}
	if ps := resp.Header.Values("Sec-Websocket-Protocol"); len(ps) > 0 {
		if len(ps) > 1 || !slices.Contains(req.Subprotocols, ps[0]) {
			return "", false, fmt.Errorf("%w: server chose subprotocol %q, offered %q", ErrBadHandshake, strings.Join(ps, ", "), req.Subprotocols)
		}
		subprotocol = ps[0]
	}
	compression, err = checkExtensions(req, resp.Header.Values("Sec-Websocket-Extensions"))
	if err != nil {
		return "", false, err
	}
	return subprotocol, compression, nil
}

// checkExtensions accepts at most one permessage-deflate, and only if it was
// offered, with parameters our no-context-takeover codec supports.
func checkExtensions(req *Request, values []string) (bool, error) {
	deflate := false
	for _, v := range values {
		for ext := range strings.SplitSeq(v, ",") {
			params := strings.Split(ext, ";")
			name := strings.TrimSpace(params[0])
			if name == "" && len(params) == 1 {
				continue // empty list element, allowed by RFC 7230's #rule
			}
			if !strings.EqualFold(name, "permessage-deflate") || !req.Compression {
				return false, fmt.Errorf("%w: server accepted extension %q that was not offered", ErrBadHandshake, name)
			}
			if deflate {
				return false, fmt.Errorf("%w: permessage-deflate accepted twice", ErrBadHandshake)
			}
			deflate = true
			var serverNoTakeover bool
			seen := map[string]bool{}
			for _, p := range params[1:] {
				key, val, hasVal := strings.Cut(strings.TrimSpace(p), "=")
				key = strings.ToLower(strings.TrimSpace(key))
				val = strings.Trim(strings.TrimSpace(val), `"`)
				if seen[key] {
					return false, fmt.Errorf("%w: permessage-deflate parameter %q repeated", ErrBadHandshake, key)
				}
				seen[key] = true
				switch key {
				case "server_no_context_takeover", "client_no_context_takeover":
					if hasVal {
						return false, fmt.Errorf("%w: permessage-deflate parameter %q takes no value", ErrBadHandshake, key)
					}
					if key == "server_no_context_takeover" {
						serverNoTakeover = true
					}
				case "server_max_window_bits":
					// Inflating with a 32 KiB window reads streams made
					// with any smaller window.
					if bitsN, err := strconv.Atoi(val); err != nil || bitsN < 8 || bitsN > 15 {
						return false, fmt.Errorf("%w: permessage-deflate server_max_window_bits %q", ErrBadHandshake, val)
					}
				default:
					// client_max_window_bits is only allowed when offered,
					// and we do not offer it.
					return false, fmt.Errorf("%w: unsupported permessage-deflate parameter %q", ErrBadHandshake, key)
				}
			}
			if !serverNoTakeover {
				// The Reader inflates every message from a fresh state;
				// a server keeping its context would send messages we
				// cannot decode.
				return false, fmt.Errorf("%w: permessage-deflate without server_no_context_takeover", ErrBadHandshake)
			}
		}
	}
	return deflate, nil
}

// headerHasToken reports whether any comma-separated element of header name
// equals token, ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// isToken reports whether s is an RFC 7230 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue rejects control characters other than horizontal tab,
// which would let a value end the header line early (header injection).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// clip shortens b for error messages.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
