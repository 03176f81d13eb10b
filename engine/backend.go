package engine

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/stats"
)

// BackendFrom says where a connection learns which backend behind a balancer
// serves it, so results can split connections, errors and latency by
// backend. The zero value tells backends apart not at all.
//
//   - Header: a response header of the upgrade, e.g. "X-Backend" (HAProxy:
//     http-response set-header X-Backend %s; nginx: add_header X-Backend
//     $upstream_addr always). It is read from any response, so a refused
//     upgrade (503 from one backend) counts against that backend.
//   - Message: a regular expression matched against the first message after
//     the upgrade (a "hello from b1" the server sends on connect). Capture
//     group 1 is the backend when the expression has one, else the whole
//     match. A matching first message is the announcement: it is consumed,
//     counted neither as received nor as unmatched. A first message that
//     does not match leaves the backend unknown and is handled as any other
//     message.
//
// Attribution, so per-backend figures add up to the run's:
//   - A connection that failed before any response, whose response lacked the
//     header, or that closed before its announcement is counted under
//     stats.UnknownBackend.
//   - In message mode a connection is counted as established for its backend
//     (and enters the backend's open gauge) when the announcement arrives,
//     not at the 101; messages it sent in between are added to the backend
//     then. Errors and reply timeouts are counted under the backend known at
//     the time: before the announcement, the unknown one.
type BackendFrom struct {
	Header  string         // canonical header name; "" unless header mode
	Message *regexp.Regexp // nil unless message mode
}

// ParseBackendFrom parses "header:NAME" or "message:REGEX". An empty spec is
// the zero BackendFrom.
func ParseBackendFrom(spec string) (BackendFrom, error) {
	if spec == "" {
		return BackendFrom{}, nil
	}
	kind, arg, ok := strings.Cut(spec, ":")
	switch {
	case !ok:
		return BackendFrom{}, fmt.Errorf("engine: backend-from %q: want header:NAME or message:REGEX, e.g. header:X-Backend", spec)
	case kind == "header":
		b := BackendFrom{Header: http.CanonicalHeaderKey(strings.TrimSpace(arg))}
		if err := b.validate(); err != nil {
			return BackendFrom{}, err
		}
		return b, nil
	case kind == "message":
		if arg == "" {
			return BackendFrom{}, fmt.Errorf("engine: backend-from %q: empty regular expression, e.g. 'message:^hello from (.+)$'", spec)
		}
		re, err := regexp.Compile(arg)
		if err != nil {
			return BackendFrom{}, fmt.Errorf("engine: backend-from %q: %w", spec, err)
		}
		return BackendFrom{Message: re}, nil
	}
	return BackendFrom{}, fmt.Errorf("engine: backend-from %q: unknown source %q, want header:NAME or message:REGEX", spec, kind)
}

// Enabled reports whether b tells backends apart.
func (b BackendFrom) Enabled() bool { return b.Header != "" || b.Message != nil }

// String is the spec ParseBackendFrom reads back: "header:X-Backend",
// "message:REGEX", or "".
func (b BackendFrom) String() string {
	switch {
	case b.Header != "":
		return "header:" + b.Header
	case b.Message != nil:
		return "message:" + b.Message.String()
	}
	return ""
}

func (b BackendFrom) validate() error {
	if b.Header != "" && b.Message != nil {
		return errors.New("engine: backend-from: set a header or a message expression, not both")
	}
	if b.Header == "" && b.Message == nil {
		return nil
	}
	if b.Header != "" {
		for _, r := range b.Header {
			if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
				return fmt.Errorf("engine: backend-from header %q is not a valid header name", b.Header)
			}
		}
	}
	return nil
}

// The conn methods below keep the per-backend bookkeeping out of the state
// machine in conn.go. All are called with c.mu held. c.bk is nil when the run
// does not tell backends apart, and the stats methods then record only the
// run-wide figures.

// backendFromResponse reads the backend from the upgrade response (header
// mode), whatever its status.
func (c *conn) backendFromResponse(resp *wsproto.Response) {
	if h := c.e.cfg.BackendFrom.Header; h != "" {
		if v := resp.Header.Get(h); v != "" {
			c.bk = c.e.rec.Backend(v)
		}
	}
}

// backendEstablished counts the new connection for its backend, or, in
// message mode, starts waiting for the announcement.
func (c *conn) backendEstablished() {
	if c.bk == nil {
		return
	}
	if c.e.cfg.BackendFrom.Message != nil {
		c.bkWait = true
		return
	}
	c.sh.BackendEstablished(c.bk)
}

// announce handles the first message after the upgrade in message mode and
// reports whether it was the announcement (and so consumed).
func (c *conn) announce(payload []byte) bool {
	m := c.e.cfg.BackendFrom.Message.FindSubmatch(payload)
	if m != nil {
		name := m[0]
		if len(m) > 1 {
			name = m[1]
		}
		c.bk = c.e.rec.Backend(string(name))
	}
	c.settleBackend()
	return m != nil
}

// settleBackend ends the wait for the announcement: the connection is
// counted as established for c.bk (the unknown backend if nothing was
// announced) with the messages it sent meanwhile.
func (c *conn) settleBackend() {
	if !c.bkWait {
		return
	}
	c.bkWait = false
	c.sh.BackendEstablished(c.bk)
	c.sh.BackendSent(c.bk, c.preSent)
	c.preSent = 0
}

// sendBackend is the backend a message sent now counts for: nil while
// waiting for the announcement (the send is added to the backend later).
func (c *conn) sendBackend() *stats.Backend {
	if c.bkWait {
		c.preSent++
		return nil
	}
	return c.bk
}

// recError counts a runtime error after the handshake.
func (c *conn) recError(reason string) {
	c.sh.Error(reason)
	c.sh.BackendError(c.bk, reason)
}

// recClosed counts the close of an established connection.
func (c *conn) recClosed(code int) {
	c.settleBackend()
	c.sh.ConnClosed(code)
	c.sh.BackendClosed(c.bk, code)
}

// recFailed counts a failed connection attempt into sh.
func (c *conn) recFailed(sh *stats.Shard, reason string) {
	sh.ConnFailed(reason)
	sh.BackendFailed(c.bk, reason)
	c.e.rampSettled(1)
}
