// Package server is wsload's reference WebSocket target: an echo (or broadcast) server on nbio
// that holds tens of thousands of connections in a few KB each. It is what `wsload serve`
// runs, the embedded default target of `wsload run`, and the in-process server of tests and
// benchmarks.
//
// Typical use in a test:
//
//	srv, err := server.Start(server.Config{Addr: "127.0.0.1:0", BackendID: "b1"})
//	if err != nil {
//		t.Fatalf("start: %v", err)
//	}
//	defer srv.Shutdown(context.Background())
//	dial(srv.URL()) // ws://127.0.0.1:PORT/ — every path upgrades, "/status/502" answers 502
//
// Behaviour knobs exist for measuring the load generator rather than the server: Delay holds
// every reply, Stall stops replying periodically (a coordinated-omission check: replies to
// messages sent during a stall must show the stall in their latency), MaxConns refuses
// upgrades with 503, and "/status/NNN" answers a plain HTTP status instead of upgrading.
package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"github.com/wsload/wsload/internal/nbiorace"
)

// DefaultAddr is where `wsload serve` listens unless told otherwise. Loopback only: a load
// target should not be reachable from the network by accident.
const DefaultAddr = "127.0.0.1:8080"

// HelloPrefix starts the hello message sent with Config.Hello; the rest of the message is the
// backend id, so a client reads the backend from "hello from <id>".
const HelloPrefix = "hello from "

// IndexText is the body of a plain HTTP GET on "/".
const IndexText = "wsload serve: connect with a WebSocket client\n"

// maxMessage bounds one WebSocket message (nbio's default). Outgoing frames may be as large,
// so an echo goes back in one frame however the client fragmented it.
const maxMessage = 4 << 20

// defaultHandshakeIdle is how long an accepted TCP connection may wait for its HTTP request
// (and a plain HTTP keep-alive connection for the next one) when IdleTimeout is unset.
const defaultHandshakeIdle = 120 * time.Second

// noDeadline stands for "never" in nbio's KeepaliveTime, where 0 means its 120 s default.
const noDeadline = 100 * 365 * 24 * time.Hour

// Config describes one server. The zero value is a plain echo server on DefaultAddr.
//
// Echo preserves the opcode and the exact payload of every text and binary message, except
// that empty messages get no reply: nbio v1.6.12's parser does not deliver them.
type Config struct {
	// Addr is host:port to listen on; "" means DefaultAddr, port 0 picks a free port.
	Addr string
	// TLSCert and TLSKey are PEM files; set both to serve wss.
	TLSCert, TLSKey string
	// TLSSelfSigned serves wss with an in-memory self-signed ECDSA certificate for
	// 127.0.0.1, ::1 and localhost (clients must skip verification or pin CertificatePEM).
	TLSSelfSigned bool
	// BackendID names this server behind a balancer: it is sent as the "X-Backend" response
	// header on every answer (the 101 included) and is the id in the Hello message.
	BackendID string
	// Hello sends one text message HelloPrefix+BackendID (or +Addr when BackendID is empty)
	// right after the upgrade, so clients can read the backend from the first message.
	Hello bool
	// Delay holds each reply this long. Replies wait in a timer-driven queue, never in a
	// sleep on a poller, so other connections are not slowed.
	Delay time.Duration
	// Stall periodically stops replying; see Stall.
	Stall Stall
	// Broadcast sends each received message to every connected client (the sender
	// included) instead of echoing it.
	Broadcast bool
	// Pollers is the number of nbio poller goroutines; 0 means runtime.NumCPU().
	Pollers int
	// MaxConns caps open WebSocket connections; upgrades beyond it get 503. 0 = unlimited.
	MaxConns int
	// IdleTimeout closes a WebSocket connection that has received nothing (no message, no
	// ping) for this long. 0 = never. It also bounds the wait for the upgrade request.
	IdleTimeout time.Duration
	// Logf, when set, receives rare events (refused upgrades, shutdown); never per message.
	Logf func(format string, args ...any)

	// handshakeIdle replaces defaultHandshakeIdle (tests make it short).
	handshakeIdle time.Duration
}

// Stall makes the server stop replying for For at every multiple of Every after Start:
// replies due in [n·Every, n·Every+For) for n ≥ 1 are held and sent together when the stall
// ends. Messages are still read during a stall. The zero value disables stalls.
type Stall struct{ Every, For time.Duration }

// Enabled reports whether st describes a stall.
func (st Stall) Enabled() bool { return st.Every > 0 && st.For > 0 }

// release maps the time a reply is due (since Start) to the time it may be sent: unchanged
// outside a stall, the end of the stall inside one. It is monotonic, which lets one FIFO
// queue hold every delayed reply in send order.
func (st Stall) release(due time.Duration) time.Duration {
	if !st.Enabled() || due < st.Every {
		return due
	}
	if phase := due % st.Every; phase < st.For {
		return due - phase + st.For
	}
	return due
}

// Stats is a snapshot of the server's counters since Start. Payload bytes only: frame
// headers and the HTTP handshake are not counted.
type Stats struct {
	Conns        int    // WebSocket connections open now
	PeakConns    int    // most WebSocket connections open at once
	Upgrades     uint64 // successful upgrades (101 sent)
	Refused      uint64 // upgrade requests answered without 101: MaxConns, shutdown, /status/NNN, bad handshake
	Closed       uint64 // WebSocket connections closed, by either side
	HTTPRequests uint64 // plain HTTP requests (not upgrade attempts)
	MessagesIn   uint64 // text and binary messages received
	MessagesOut  uint64 // text and binary messages written: echoes, hellos, each broadcast copy
	BytesIn      uint64
	BytesOut     uint64
	WriteErrors  uint64 // writes that failed, usually because the peer had gone
	AcceptErrors uint64 // failed accepts, typically out of file descriptors (EMFILE)
	Queued       int    // replies held right now by Delay, Stall or Broadcast
}

// counters are updated from every poller; the hot ones sit on their own cache lines so two
// pollers echoing at full speed do not bounce one line between cores.
type counters struct {
	msgsIn   atomic.Uint64
	_        [56]byte
	bytesIn  atomic.Uint64
	_        [56]byte
	msgsOut  atomic.Uint64
	_        [56]byte
	bytesOut atomic.Uint64
	_        [56]byte

	upgrades, refused, closed, httpReqs, writeErrs, acceptErrs atomic.Uint64
	peak, acceptErrLoggedAt                                    atomic.Int64
}

// Server is a running server. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	engine  *nbhttp.Engine
	up      *websocket.Upgrader
	ln      net.Listener
	scheme  string
	certPEM []byte
	hello   []byte
	upHdr   http.Header // shared, read-only response header for the 101
	epoch   time.Time
	queue   *replyQueue     // nil when replies go out inline (plain echo)
	guard   *handshakeGuard // times the wait for a request when IdleTimeout is 0; else nil

	// slots counts reserved plus open WebSocket connections; it enforces MaxConns without
	// a lock, reserving before the upgrade and releasing when a registered connection closes.
	slots    atomic.Int64
	closing  atomic.Bool
	loggedAt atomic.Bool // "MaxConns reached" was logged once

	// mu guards conns and snap. Invariant: never held while calling into nbio (a write or a
	// close may call onClose, which takes mu).
	mu    sync.Mutex
	conns map[*websocket.Conn]struct{}
	snap  []*websocket.Conn // cached copy of conns' keys for broadcast; nil after any change

	stats counters

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start validates cfg, listens and starts serving. The listener is bound when it returns, so
// Addr and URL are usable at once.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	pollers := cfg.Pollers
	if pollers == 0 {
		pollers = runtime.NumCPU()
	}
	s := &Server{
		cfg:    cfg,
		scheme: "ws",
		conns:  make(map[*websocket.Conn]struct{}),
		epoch:  time.Now(),
	}
	if cfg.BackendID != "" {
		s.upHdr = http.Header{"X-Backend": {cfg.BackendID}}
	}

	ncfg := nbhttp.Config{
		Network: "tcp",
		NPoller: pollers,
		Handler: http.HandlerFunc(s.serveHTTP),
		// ServerExecutor stays nbio's default, a goroutine pool. Running callbacks inline on
		// the poller (func(f func()) { f() }) is cheaper but deadlocks nbio v1.6.12: a job that
		// closes its connection (a plain HTTP request with Connection: close, a WebSocket close
		// frame) lets nbio's close job join the same inline job loop while Parse still holds
		// the parser's lock, and CloseAndClean waits for that lock forever; the poller freezes.
		// TestPlainHTTPRequestsDoNotStallPoller pins it. Nothing here may block; delayed and
		// broadcast replies go to the reply queue's goroutine.
		SupportServerOnly: true,
		// nbio arms this read deadline on every accepted connection, and the upgrade clears
		// it, but the accept goroutine arms it after handing the connection to a poller: on a
		// busy host the upgrade can run first, and the connection, upgraded and busy, is cut
		// 120 s later (seen: 3 of 2,000 at t = 121 s). So nbio's deadline is off unless
		// IdleTimeout asks for one, and guardHandshake times the wait for a request instead.
		KeepaliveTime:                noDeadline,
		MaxWebsocketFramePayloadSize: maxMessage,
		// We own received buffers (OnMessagePtr) and free them once the reply is written,
		// which may be after the handler returns when the reply is queued.
		ReleaseWebsocketPayload: false,
		// The listener is bound before the engine starts (below): nbio v1.6.12 can hang in
		// Engine.Start when its own listen fails, because stopping races with the pollers
		// that are still starting up.
		Listen: func(string, string) (net.Listener, error) { return s.ln, nil },
	}
	if cfg.IdleTimeout > 0 {
		ncfg.KeepaliveTime = cfg.IdleTimeout
	}
	tlsCfg, certPEM, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		s.scheme = "wss"
		s.certPEM = certPEM
		ncfg.TLSConfig = tlsCfg
		ncfg.AddrsTLS = []string{cfg.Addr}
	} else {
		ncfg.Addrs = []string{cfg.Addr}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen on %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	// Set before the engine starts: an upgrade can arrive the moment it does.
	id := cfg.BackendID
	if id == "" {
		id = s.Addr()
	}
	s.hello = []byte(HelloPrefix + id)
	s.engine = nbhttp.NewEngine(ncfg)
	if cfg.IdleTimeout == 0 {
		s.guard = newHandshakeGuard(cfg.handshakeIdle)
		s.engine.OnClose(s.guard.closed)
		nbiorace.Install(s.engine, s.guard.accepted)
	} else {
		nbiorace.Install(s.engine, nil)
	}
	s.engine.OnAcceptError(s.onAcceptError)

	up := websocket.NewUpgrader()
	// Without this the upgrader would allocate from nbio's package-level DefaultEngine.
	up.Engine = s.engine
	// nbio re-arms the read deadline after every message when KeepaliveTime > 0 and clears
	// it when 0: the idle timeout is exactly this field, and "never" must be a deliberate 0
	// (nbio's default is 120 s, which would cut idle load-test connections).
	up.KeepaliveTime = cfg.IdleTimeout
	up.MessageLengthLimit = maxMessage
	up.ReleasePayload = false
	// A load target accepts browsers and tools from any origin.
	up.CheckOrigin = func(*http.Request) bool { return true }
	up.OnMessagePtr(s.onMessage)
	up.OnClose(s.onClose)
	up.SetCloseHandler(s.onCloseFrame)
	s.up = up

	if cfg.Delay > 0 || cfg.Stall.Enabled() || cfg.Broadcast {
		s.queue = newReplyQueue(s)
	}

	if err := s.engine.Start(); err != nil {
		_ = ln.Close()
		if s.queue != nil {
			s.queue.stop()
		}
		return nil, fmt.Errorf("server: start on %s: %w", cfg.Addr, err)
	}
	return s, nil
}

// Validate reports what is wrong with cfg without starting anything (Start calls it too),
// so a CLI can tell a usage error from a failure to listen.
func (cfg Config) Validate() error {
	switch {
	case cfg.Delay < 0:
		return fmt.Errorf("server: negative delay %v", cfg.Delay)
	case cfg.Stall.Every < 0 || cfg.Stall.For < 0:
		return fmt.Errorf("server: negative stall %v/%v", cfg.Stall.Every, cfg.Stall.For)
	case (cfg.Stall.Every > 0) != (cfg.Stall.For > 0):
		return fmt.Errorf("server: stall needs both Every and For (got %v/%v)", cfg.Stall.Every, cfg.Stall.For)
	case cfg.Stall.Enabled() && cfg.Stall.For >= cfg.Stall.Every:
		return fmt.Errorf("server: stall For (%v) must be shorter than Every (%v)", cfg.Stall.For, cfg.Stall.Every)
	case cfg.Pollers < 0:
		return fmt.Errorf("server: negative pollers %d", cfg.Pollers)
	case cfg.MaxConns < 0:
		return fmt.Errorf("server: negative max conns %d", cfg.MaxConns)
	case cfg.IdleTimeout < 0:
		return fmt.Errorf("server: negative idle timeout %v", cfg.IdleTimeout)
	case (cfg.TLSCert == "") != (cfg.TLSKey == ""):
		return errors.New("server: TLS needs both a certificate and a key file")
	case cfg.TLSSelfSigned && cfg.TLSCert != "":
		return errors.New("server: choose a certificate file or a self-signed certificate, not both")
	case strings.ContainsAny(cfg.BackendID, "\r\n"):
		return errors.New("server: backend id must not contain line breaks")
	}
	return nil
}

// Addr is the address actually listened on (with the chosen port when Config.Addr had 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is a dialable ws:// or wss:// URL of the server's "/"; an unspecified listen host
// (":8080", "0.0.0.0") is replaced by 127.0.0.1.
func (s *Server) URL() string {
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		return s.scheme + "://" + s.Addr() + "/"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return s.scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// CertificatePEM is the PEM certificate served for wss (nil for ws), so a client can trust
// exactly this server instead of skipping verification.
func (s *Server) CertificatePEM() []byte { return s.certPEM }

// Conns is the number of WebSocket connections open now.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Stats returns a snapshot of the counters. Counters are read one by one, not atomically as
// a set, so under load they may disagree by a few messages.
func (s *Server) Stats() Stats {
	st := Stats{
		Conns:        s.Conns(),
		PeakConns:    int(s.stats.peak.Load()),
		Upgrades:     s.stats.upgrades.Load(),
		Refused:      s.stats.refused.Load(),
		Closed:       s.stats.closed.Load(),
		HTTPRequests: s.stats.httpReqs.Load(),
		MessagesIn:   s.stats.msgsIn.Load(),
		MessagesOut:  s.stats.msgsOut.Load(),
		BytesIn:      s.stats.bytesIn.Load(),
		BytesOut:     s.stats.bytesOut.Load(),
		WriteErrors:  s.stats.writeErrs.Load(),
		AcceptErrors: s.stats.acceptErrs.Load(),
	}
	if s.queue != nil {
		st.Queued = s.queue.len()
	}
	return st
}

// Shutdown refuses new upgrades, drops replies still held by Delay/Stall, sends every client
// a 1001 Going Away close frame, waits (at most a second, and never past ctx) for clients to
// answer it, then closes what is left and stops the engine. Only the first call does work;
// later calls return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.closing.Store(true)
	if s.queue != nil {
		s.queue.stop()
	}
	conns := s.snapshot()
	for _, c := range conns {
		_ = c.WriteClose(1001, "wsload serve: shutting down")
	}
	if len(conns) > 0 {
		grace := time.NewTimer(time.Second)
		tick := time.NewTicker(10 * time.Millisecond)
	wait:
		for s.Conns() > 0 {
			select {
			case <-ctx.Done():
				break wait
			case <-grace.C:
				break wait
			case <-tick.C:
			}
		}
		grace.Stop()
		tick.Stop()
	}
	if n := s.Conns(); n > 0 {
		s.logf("server: %d connections did not answer the close in time; closing them", n)
	}
	if err := s.engine.Shutdown(ctx); err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// onAcceptError runs on nbio's accept goroutine, which retries at once after any error but
// a timeout: out of file descriptors it would spin a core and flood the log. Back off
// briefly, and report at most once a second.
func (s *Server) onAcceptError(err error) {
	if s.closing.Load() || errors.Is(err, net.ErrClosed) {
		return
	}
	s.stats.acceptErrs.Add(1)
	now := time.Now().UnixNano()
	if last := s.stats.acceptErrLoggedAt.Load(); now-last >= int64(time.Second) && s.stats.acceptErrLoggedAt.CompareAndSwap(last, now) {
		s.logf("server: accept: %v (out of file descriptors? raise ulimit -n)", err)
	}
	time.Sleep(10 * time.Millisecond)
}

// serveHTTP answers everything that reaches the engine before an upgrade.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.guard.request(r.RemoteAddr)
	if s.cfg.BackendID != "" {
		w.Header().Set("X-Backend", s.cfg.BackendID)
	}
	upgrade := isUpgrade(r)
	if code, ok := statusPath(r.URL.Path); ok {
		if upgrade {
			s.stats.refused.Add(1)
		} else {
			s.stats.httpReqs.Add(1)
		}
		plain(w, code, fmt.Sprintf("wsload serve: status %d as requested by %s\n", code, r.URL.Path))
		return
	}
	if !upgrade {
		s.stats.httpReqs.Add(1)
		if r.URL.Path != "/" {
			plain(w, http.StatusNotFound, "wsload serve: not found; connect with a WebSocket client (any path upgrades)\n")
			return
		}
		plain(w, http.StatusOK, IndexText)
		return
	}
	s.upgrade(w, r)
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		s.stats.refused.Add(1)
		w.Header().Set("Connection", "close")
		plain(w, http.StatusServiceUnavailable, "wsload serve: shutting down\n")
		return
	}
	if !s.reserve() {
		s.stats.refused.Add(1)
		if s.loggedAt.CompareAndSwap(false, true) {
			s.logf("server: %d connections open (max conns); answering 503 to further upgrades", s.cfg.MaxConns)
		}
		w.Header().Set("Retry-After", "1")
		plain(w, http.StatusServiceUnavailable, "wsload serve: connection limit reached (max conns "+strconv.Itoa(s.cfg.MaxConns)+")\n")
		return
	}
	hdr := s.upHdr
	if proto := firstToken(r.Header.Get("Sec-Websocket-Protocol")); proto != "" {
		// Browsers fail a handshake that offered subprotocols and got none back; a load
		// target accepts whatever the client speaks first.
		hdr = http.Header{"Sec-Websocket-Protocol": {proto}}
		if s.cfg.BackendID != "" {
			hdr.Set("X-Backend", s.cfg.BackendID)
		}
	}
	c, err := s.up.Upgrade(w, r, hdr)
	if err == nil {
		s.guard.upgraded(r.RemoteAddr)
	}
	if err != nil {
		// nbio has already answered the request with an HTTP error.
		s.slots.Add(-1)
		s.stats.refused.Add(1)
		s.logf("server: upgrade from %s failed: %v", r.RemoteAddr, err)
		return
	}
	s.register(c)
	if s.cfg.Hello {
		s.write(c, websocket.TextMessage, s.hello)
	}
}

// reserve takes a connection slot, or reports that MaxConns are taken.
func (s *Server) reserve() bool {
	max := int64(s.cfg.MaxConns)
	for {
		n := s.slots.Load()
		if max > 0 && n >= max {
			return false
		}
		if s.slots.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// register runs in the upgrade handler, on the connection's serial executor: nbio queues the
// connection's messages and its close behind it, so onMessage and onClose never see a
// connection that is not registered yet.
func (s *Server) register(c *websocket.Conn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.snap = nil
	n := int64(len(s.conns))
	s.mu.Unlock()
	s.stats.upgrades.Add(1)
	for {
		p := s.stats.peak.Load()
		if n <= p || s.stats.peak.CompareAndSwap(p, n) {
			break
		}
	}
}

func (s *Server) onClose(c *websocket.Conn, _ error) {
	s.mu.Lock()
	_, ok := s.conns[c]
	if ok {
		delete(s.conns, c)
		s.snap = nil
	}
	s.mu.Unlock()
	if ok {
		s.slots.Add(-1)
		s.stats.closed.Add(1)
	}
}

// onCloseFrame answers a client's close frame with the same code (as nbio's default does),
// except during Shutdown: the server has already sent its 1001 then, and a second close
// frame would break the closing handshake. nbio closes the connection after this returns.
func (s *Server) onCloseFrame(c *websocket.Conn, code int, reason string) {
	if s.closing.Load() {
		return
	}
	if code == 1005 { // the client sent no code; answer without one
		_ = c.WriteMessage(websocket.CloseMessage, nil)
		return
	}
	_ = c.WriteClose(code, reason)
}

// snapshot returns the open connections. The slice is shared by every caller until the set
// changes, so callers must not modify it.
func (s *Server) snapshot() []*websocket.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap == nil {
		s.snap = make([]*websocket.Conn, 0, len(s.conns))
		for c := range s.conns {
			s.snap = append(s.snap, c)
		}
	}
	return s.snap
}

// onMessage is the hot path: no allocation of its own, no lock on plain echo. pbuf belongs
// to us (ReleasePayload is off) and goes back to nbio's pool once the reply is written.
func (s *Server) onMessage(c *websocket.Conn, mt websocket.MessageType, pbuf *[]byte) {
	s.stats.msgsIn.Add(1)
	s.stats.bytesIn.Add(uint64(len(*pbuf)))
	if s.queue != nil {
		s.queue.push(c, mt, pbuf)
		return
	}
	s.write(c, mt, *pbuf)
	s.engine.BodyAllocator.Free(pbuf)
}

// write sends one message. nbio's WriteMessage never blocks: on a full socket it buffers.
func (s *Server) write(c *websocket.Conn, mt websocket.MessageType, data []byte) {
	// Count before writing, so a reply that a client has already read is always counted;
	// a failed write takes its count back.
	s.stats.msgsOut.Add(1)
	s.stats.bytesOut.Add(uint64(len(data)))
	if err := c.WriteMessage(mt, data); err != nil {
		s.stats.msgsOut.Add(^uint64(0))
		s.stats.bytesOut.Add(^uint64(len(data) - 1))
		s.stats.writeErrs.Add(1)
	}
}

// broadcast writes data to every open connection.
func (s *Server) broadcast(mt websocket.MessageType, data []byte) {
	for _, c := range s.snapshot() {
		s.write(c, mt, data)
	}
}

// isUpgrade reports whether r asks for a WebSocket upgrade ("Upgrade: websocket", tokens
// compared case-insensitively).
func isUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return true
			}
		}
	}
	return false
}

// statusPath parses "/status/NNN" with NNN in 200–599.
func statusPath(path string) (int, bool) {
	rest, ok := strings.CutPrefix(path, "/status/")
	if !ok || len(rest) != 3 {
		return 0, false
	}
	code, err := strconv.Atoi(rest)
	if err != nil || code < 200 || code > 599 {
		return 0, false
	}
	return code, true
}

func firstToken(list string) string {
	first, _, _ := strings.Cut(list, ",")
	return strings.TrimSpace(first)
}

func plain(w http.ResponseWriter, code int, body string) {
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code) // these statuses carry no body
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
