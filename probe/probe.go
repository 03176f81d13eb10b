package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/stats"
)

// Defaults of Options, reused by the command's flags so the two cannot drift.
const (
	// DefaultTimeout bounds each phase (resolve, connect, TLS, upgrade, reply, close).
	DefaultTimeout = 5 * time.Second
	// DefaultMessage is what the browser test pages send.
	DefaultMessage = "hello server"
)

// BodyLimit is how many bytes of a response body or message a report keeps: enough to read
// an error page's message, short enough for a terminal.
const BodyLimit = 200

// closeReason is sent in the probe's close frame, so server logs say who closed.
const closeReason = "wsload probe done"

// pingPayload is carried by the idle hold's pings.
const pingPayload = "wsload probe"

// Options describe one probe. URL is required; the zero value of every other field is usable.
type Options struct {
	// URL is the ws:// or wss:// endpoint.
	URL string
	// Header holds extra upgrade request headers (cookies, tokens); secret values are
	// redacted in the report.
	Header http.Header
	// Origin, when set, is sent as the Origin header, as a browser would.
	Origin string
	// Subprotocols are offered in Sec-WebSocket-Protocol.
	Subprotocols []string
	// Insecure goes on when the certificate does not verify; the report still says why
	// it did not.
	Insecure bool
	// RootCAs are the trusted roots; nil means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds each phase; 0 means DefaultTimeout.
	Timeout time.Duration
	// Message is sent as a text message after the upgrade (and greeting); "" sends none.
	Message string
	// ExpectGreeting waits (Timeout) for a message from the server before sending, for
	// servers that speak first.
	ExpectGreeting bool
	// Idle holds the connection open this long after the exchange and reports whether
	// and how it was cut. 0 skips the hold.
	Idle time.Duration
	// PingEvery sends a ping this often during the idle hold, to show whether keepalive
	// pings prevent the cut. 0 sends none.
	PingEvery time.Duration
	// Resolver resolves the URL's host; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Run probes o.URL and returns what it saw. Faults of the target or the network are in the
// Report's Diagnoses, not in the error: the error is for invalid Options (the Report is then
// nil) and for ctx ending during the probe (the Report then holds the phases done so far).
func Run(ctx context.Context, o Options) (*Report, error) {
	p, err := newProber(ctx, o)
	if err != nil {
		return nil, err
	}
	p.run()
	p.rep.Total = since(p.rep.Start)
	p.rep.OK = len(p.rep.Diagnoses) == 0
	if ctx.Err() != nil {
		p.rep.Interrupted = true
		return p.rep, fmt.Errorf("probe: interrupted: %w", ctx.Err())
	}
	return p.rep, nil
}

// prober holds one probe's state; its methods are the phases, each returning whether the
// next phase can run.
type prober struct {
	ctx context.Context
	o   Options
	t   target
	req *wsproto.Request
	rep *Report
	// last is when the last frame was exchanged: idle time counts from there.
	last time.Time
}

func newProber(ctx context.Context, o Options) (*prober, error) {
	if o.URL == "" {
		return nil, errors.New("probe: no URL")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		// url.Error repeats the raw URL, secrets included: keep only its reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("probe: URL %q: %w", stats.RedactURL(o.URL), err)
	}
	switch u.Scheme {
	case "http":
		return nil, fmt.Errorf("probe: URL %q: WebSocket URLs start with ws:// (http:// is for pages)", stats.RedactURL(o.URL))
	case "https":
		return nil, fmt.Errorf("probe: URL %q: WebSocket URLs start with wss:// (https:// is for pages)", stats.RedactURL(o.URL))
	}
	req := &wsproto.Request{URL: u, Header: o.Header, Origin: o.Origin, Subprotocols: o.Subprotocols}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	switch {
	case o.Timeout < 0:
		return nil, fmt.Errorf("probe: negative timeout %v", o.Timeout)
	case o.Idle < 0:
		return nil, fmt.Errorf("probe: negative idle hold %v", o.Idle)
	case o.PingEvery < 0:
		return nil, fmt.Errorf("probe: negative ping interval %v", o.PingEvery)
	case o.PingEvery > 0 && o.Idle == 0:
		return nil, errors.New("probe: pings are sent during the idle hold only: set Idle too")
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return &prober{
		ctx: ctx,
		o:   o,
		t: target{
			scheme: u.Scheme, host: u.Hostname(), port: port, path: path,
			timeout: o.Timeout, insecure: o.Insecure,
		},
		req: req,
		rep: &Report{Schema: Schema, URL: stats.RedactURL(o.URL), Start: time.Now(), Diagnoses: []Diagnosis{}},
	}, nil
}

func (p *prober) diagnose(d Diagnosis) { p.rep.Diagnoses = append(p.rep.Diagnoses, d) }

// interrupted reports whether ctx ended; a phase that failed because of it is not a fault
// of the target and must not be diagnosed as one.
func (p *prober) interrupted() bool { return p.ctx.Err() != nil }

func (p *prober) run() {
	addrs := p.resolve()
	if addrs == nil {
		return
	}
	conn := p.connect(addrs)
	if conn == nil {
		return
	}
	defer func() { _ = conn.Close() }()
	if p.t.scheme == "wss" {
		tc := p.handshakeTLS(conn)
		if tc == nil {
			return
		}
		conn = tc
	}
	rest, ok := p.upgrade(conn)
	if !ok {
		return
	}
	ws := newWSConn(conn, rest, p.o.Timeout)
	defer ws.shutdown()
	p.last = time.Now()
	if p.o.ExpectGreeting && !p.greeting(ws) {
		return
	}
	if p.o.Message != "" && !p.exchange(ws) {
		return
	}
	if p.o.Idle > 0 && !p.idle(ws) {
		return
	}
	p.closeHandshake(ws)
}

// resolve looks the host up; an IP address in the URL is used as it is.
func (p *prober) resolve() []netip.Addr {
	ph := &DNS{Host: p.t.host}
	p.rep.DNS = ph
	if ip, err := netip.ParseAddr(p.t.host); err == nil {
		ph.Addrs = []string{ip.String()}
		ph.Literal = true
		return []netip.Addr{ip}
	}
	res := p.o.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.o.Timeout)
	defer cancel()
	start := time.Now()
	ips, err := res.LookupNetIP(ctx, "ip", p.t.host)
	ph.Duration = since(start)
	if err == nil && len(ips) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: p.t.host, IsNotFound: true}
	}
	if err != nil {
		ph.Error = err.Error()
		if !p.interrupted() {
			p.diagnose(p.t.dnsDiagnosis(err))
		}
		return nil
	}
	for i, ip := range ips {
		ips[i] = ip.Unmap()
		ph.Addrs = append(ph.Addrs, ips[i].String())
	}
	return ips
}

// connect tries each address in turn, each attempt bounded by the timeout.
func (p *prober) connect(addrs []netip.Addr) net.Conn {
	ph := &Connect{}
	p.rep.Connect = ph
	d := net.Dialer{Timeout: p.o.Timeout}
	var errs []error
	for _, ip := range addrs {
		addr := net.JoinHostPort(ip.String(), p.t.port)
		start := time.Now()
		conn, err := d.DialContext(p.ctx, "tcp", addr)
		at := Attempt{Addr: addr, Duration: since(start)}
		if err != nil {
			at.Error = unwrapOp(err).Error()
			ph.Attempts = append(ph.Attempts, at)
			errs = append(errs, err)
			if p.interrupted() {
				return nil
			}
			continue
		}
		ph.Attempts = append(ph.Attempts, at)
		ph.Duration = at.Duration
		ph.Local = conn.LocalAddr().String()
		ph.Remote = conn.RemoteAddr().String()
		return conn
	}
	// Name the most telling failure: a refusal proves the host is there with nothing
	// listening, which beats an unreachable IPv6 address tried first.
	fault, why := connectFault(errs[len(errs)-1]), errs[len(errs)-1]
	for _, err := range errs {
		if connectFault(err) == FaultRefused {
			fault, why = FaultRefused, err
			break
		}
	}
	p.diagnose(p.t.connectDiagnosis(fault, why))
	return nil
}

// handshakeTLS runs the TLS handshake and checks the certificate itself, so that the report
// names every problem even with Insecure.
func (p *prober) handshakeTLS(conn net.Conn) *tls.Conn {
	ph := &TLS{ServerName: p.t.host, Insecure: p.o.Insecure}
	p.rep.TLS = ph
	var problems []problem
	cfg := &tls.Config{
		ServerName: p.t.host,
		// Verification happens in VerifyConnection, which sees the whole chain and can
		// name each problem; it fails the handshake unless Insecure.
		InsecureSkipVerify: true,
		RootCAs:            p.o.RootCAs,
		NextProtos:         []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			for _, c := range cs.PeerCertificates {
				ph.Certificates = append(ph.Certificates, describeCert(c, time.Now()))
			}
			problems = verifyChain(cs.PeerCertificates, p.t.host, p.o.RootCAs, time.Now())
			if len(problems) > 0 && !p.o.Insecure {
				return &verifyError{problems}
			}
			return nil
		},
	}
	tc := tls.Client(conn, cfg)
	ctx, cancel := context.WithTimeout(p.ctx, p.o.Timeout)
	defer cancel()
	start := time.Now()
	err := tc.HandshakeContext(ctx)
	ph.Duration = since(start)
	for _, pr := range problems {
		ph.Problems = append(ph.Problems, pr.text)
	}
	ph.Verified = len(problems) == 0 && len(ph.Certificates) > 0
	if err != nil {
		ph.Error = unwrapOp(err).Error()
		var ve *verifyError
		switch {
		case p.interrupted():
		case errors.As(err, &ve):
			p.diagnose(p.t.tlsProblemDiagnosis(ve.problems[0]))
		default:
			p.diagnose(p.t.tlsHandshakeDiagnosis(err))
		}
		return nil
	}
	cs := tc.ConnectionState()
	ph.Version = tls.VersionName(cs.Version)
	ph.CipherSuite = tls.CipherSuiteName(cs.CipherSuite)
	ph.ALPN = cs.NegotiatedProtocol
	return tc
}

func describeCert(c *x509.Certificate, now time.Time) Certificate {
	return Certificate{
		Subject:    c.Subject.String(),
		Issuer:     c.Issuer.String(),
		Names:      certNames(c),
		NotBefore:  c.NotBefore.UTC(),
		NotAfter:   c.NotAfter.UTC(),
		DaysLeft:   int(c.NotAfter.Sub(now).Hours() / 24),
		SelfSigned: isSelfSigned(c),
	}
}

// upgrade sends the upgrade request and reads the response head. It returns the bytes
// that followed the head (frames the server sent at once) when the upgrade succeeded.
func (p *prober) upgrade(conn net.Conn) ([]byte, bool) {
	p.req.Key = wsproto.NewKey()
	wire := wsproto.AppendRequest(nil, p.req)
	ph := &Upgrade{}
	p.rep.Upgrade = ph
	ph.RequestLine, ph.RequestHeaders = describeRequest(wire)

	stop := context.AfterFunc(p.ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(p.o.Timeout))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	start := time.Now()
	if _, err := conn.Write(wire); err != nil {
		ph.Error = unwrapOp(err).Error()
		if !p.interrupted() {
			p.diagnose(p.t.noAnswerDiagnosis(0, err))
		}
		return nil, false
	}
	buf := make([]byte, 0, 4096)
	var resp *wsproto.Response
	var used int
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, rerr := conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if n > 0 {
			var perr error
			resp, used, perr = wsproto.ParseResponse(buf)
			if perr != nil {
				ph.Duration = since(start)
				ph.Error = perr.Error()
				p.diagnose(p.t.notHTTPDiagnosis(buf, perr))
				return nil, false
			}
			if used > 0 {
				break
			}
		}
		if rerr != nil {
			ph.Duration = since(start)
			ph.Error = unwrapOp(rerr).Error()
			switch {
			case p.interrupted():
			case len(buf) == 0 && p.t.scheme == "ws" && p.speaksTLS(conn.RemoteAddr().String()):
				p.diagnose(p.t.tlsExpectedDiagnosis("it did not answer the plain HTTP request, and a TLS handshake on a second connection succeeded"))
			default:
				p.diagnose(p.t.noAnswerDiagnosis(len(buf), rerr))
			}
			return nil, false
		}
	}
	ph.Duration = since(start)
	ph.Status = resp.Status
	ph.StatusLine = strings.TrimRight(string(buf[:bytes.IndexByte(buf, '\n')]), "\r")
	ph.ResponseHeaders = stats.RedactHeaders(resp.Header)

	if resp.Status != http.StatusSwitchingProtocols {
		ph.Body = p.readBody(conn, buf)
		p.diagnose(p.t.statusDiagnosis(resp.Status, resp.Reason, resp.Header.Get("Location"), ph.Body))
		return nil, false
	}
	proto, _, err := wsproto.CheckUpgrade(p.req, resp)
	ph.Subprotocol = proto
	ph.Extensions = strings.Join(resp.Header.Values("Sec-Websocket-Extensions"), ", ")
	if err != nil {
		ph.Error = err.Error()
		p.diagnose(badUpgradeDiagnosis(err))
		return nil, false
	}
	return buf[used:], true
}

// speaksTLS reports whether addr completes a TLS handshake. Many TLS servers close a
// connection that starts with plain HTTP without a word, which looks like any other
// refusal; a second connection that tries TLS tells "use wss://" apart from the rest.
func (p *prober) speaksTLS(addr string) bool {
	ctx, cancel := context.WithTimeout(p.ctx, min(p.o.Timeout, 2*time.Second))
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{
		ServerName: p.t.host,
		// Only "does it speak TLS" matters here, not whether we would trust it.
		InsecureSkipVerify: true,
		NextProtos:         []string{"http/1.1"},
	}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// readBody returns the start of a non-101 response's body. net/http parses it again from
// the bytes read so far plus the connection, so chunked bodies come out decoded; the wait is
// short because error pages are small and the status already says the most.
func (p *prober) readBody(conn net.Conn, head []byte) string {
	_ = conn.SetReadDeadline(time.Now().Add(min(p.o.Timeout, time.Second)))
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(head), conn))
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, BodyLimit))
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// describeRequest splits the request the probe wrote into its request line and headers,
// with secrets redacted: the query of the request target and secret header values.
func describeRequest(wire []byte) (string, map[string]string) {
	lines := strings.Split(strings.TrimSuffix(string(wire), "\r\n\r\n"), "\r\n")
	reqLine := lines[0]
	if method, rest, ok := strings.Cut(reqLine, " "); ok {
		if target, proto, ok := strings.Cut(rest, " "); ok {
			if u, err := url.ParseRequestURI(target); err == nil && u.RawQuery != "" {
				red, _ := url.Parse(stats.RedactURL("ws://h" + target))
				if red != nil {
					target = red.RequestURI()
				}
			}
			reqLine = method + " " + target + " " + proto
		}
	}
	// Names are kept as written on the wire (Sec-WebSocket-Key, not Go's canonical
	// Sec-Websocket-Key), so the report shows what was sent.
	h := http.Header{}
	for _, l := range lines[1:] {
		if name, value, ok := strings.Cut(l, ": "); ok {
			h[name] = append(h[name], value)
		}
	}
	m := stats.RedactHeaders(h)
	// The key is a fresh random nonce, not a credential; "key" in its name only looks
	// like one to the redactor.
	if k, ok := h["Sec-WebSocket-Key"]; ok {
		m["Sec-WebSocket-Key"] = k[0]
	}
	return reqLine, m
}

// describeMessage renders a message for the report.
func describeMessage(op wsproto.Opcode, data []byte) *Message {
	m := &Message{Type: op.String(), Size: len(data)}
	show := data
	if len(show) > BodyLimit {
		show = show[:BodyLimit]
		m.Truncated = true
	}
	if op == wsproto.OpText && utf8.Valid(data) {
		for len(show) > 0 && !utf8.Valid(show) { // do not cut a rune in two
			show = show[:len(show)-1]
		}
		m.Data = string(show)
	} else {
		m.Data = hex.EncodeToString(show)
	}
	return m
}

// after returns a channel that fires after d; its timer is stopped by the returned func.
func after(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// greeting waits for the server to speak first.
func (p *prober) greeting(ws *wsConn) bool {
	ph := &Exchange{}
	p.rep.Greeting = ph
	start := p.last
	deadline, stop := after(p.o.Timeout)
	defer stop()
	for {
		ev, ok := ws.next(deadline, p.ctx.Done())
		if !ok {
			if p.interrupted() {
				return false
			}
			ph.Waited = since(start)
			ph.Error = fmt.Sprintf("no message within %v", p.o.Timeout)
			p.diagnose(Diagnosis{
				Fault: FaultNoGreeting, Phase: "greeting",
				Summary: fmt.Sprintf("the server sent no greeting within %v of the upgrade", p.o.Timeout),
				Hint:    "many servers speak only after the client (then drop --expect-greeting); otherwise check the server's on-connect handler, or whether it waits for an auth message",
			})
			return true
		}
		switch ev.kind {
		case evMessage:
			ph.Received = describeMessage(ev.op, ev.data)
			ph.RTT = Duration(ev.at.Sub(start))
			p.last = ev.at
			return true
		case evPing, evPong:
			continue
		}
		return p.endedEarly(ws, ev, "greeting", ph)
	}
}

// exchange sends the message and waits for the first message back.
func (p *prober) exchange(ws *wsConn) bool {
	ph := &Exchange{Sent: describeMessage(wsproto.OpText, []byte(p.o.Message))}
	p.rep.Exchange = ph
	start := time.Now()
	if err := ws.write(wsproto.OpText, []byte(p.o.Message)); err != nil {
		ph.Error = "send: " + unwrapOp(err).Error()
		if !p.interrupted() {
			p.diagnose(Diagnosis{
				Fault: FaultClosed, Phase: "exchange",
				Summary: fmt.Sprintf("the connection broke when the message was sent: %v", unwrapOp(err)),
				Hint:    "the server or a balancer dropped the connection right after the upgrade: check its logs",
			})
		}
		return false
	}
	p.last = time.Now()
	deadline, stop := after(p.o.Timeout)
	defer stop()
	for {
		ev, ok := ws.next(deadline, p.ctx.Done())
		if !ok {
			if p.interrupted() {
				return false
			}
			ph.Waited = since(start)
			ph.Error = fmt.Sprintf("no reply within %v", p.o.Timeout)
			p.diagnose(Diagnosis{
				Fault: FaultNoReply, Phase: "exchange",
				Summary: fmt.Sprintf("no reply to %q within %v", p.o.Message, p.o.Timeout),
				Hint:    "this may be normal: many servers do not echo and answer only messages of their own protocol (try --message with one, or --message '' to skip the exchange); a server that speaks first needs --expect-greeting",
			})
			return true
		}
		switch ev.kind {
		case evMessage:
			ph.Received = describeMessage(ev.op, ev.data)
			ph.RTT = Duration(ev.at.Sub(start))
			ph.Echo = ev.op == wsproto.OpText && string(ev.data) == p.o.Message
			p.last = ev.at
			return true
		case evPing, evPong:
			continue
		}
		return p.endedEarly(ws, ev, "exchange", ph)
	}
}

// endedEarly handles a close frame, a dropped connection or a protocol error during the
// greeting or the exchange. It always returns false: the connection is done.
func (p *prober) endedEarly(ws *wsConn, ev event, phase string, ph *Exchange) bool {
	switch ev.kind {
	case evClose:
		ph.Error = fmt.Sprintf("the server closed the connection: %s %q", codeWithText(ev.code), ev.reason)
		p.serverClosed(ws, ev)
		p.diagnose(Diagnosis{
			Fault: FaultClosed, Phase: phase,
			Summary: fmt.Sprintf("the server closed the connection during the %s with code %s, reason %q", phase, codeWithText(ev.code), ev.reason),
			Hint:    "read the reason; 1008 usually means an auth or origin policy, 1003/1007 a message format the server does not accept (try another --message or --message '')",
		})
	case evProtocol:
		ph.Error = ev.err.Error()
		p.protocolError(ws, ev, phase)
	default:
		ph.Error = "the connection ended: " + dropText(ev)
		p.rep.Close = &Close{Initiator: "server", Code: wsproto.CloseAbnormal, Error: dropText(ev)}
		p.diagnose(Diagnosis{
			Fault: FaultClosed, Phase: phase,
			Summary: fmt.Sprintf("the connection ended during the %s without a close frame (%s, code 1006)", phase, dropText(ev)),
			Hint:    "the server or a balancer dropped the connection: check the server's logs for a crash or a rejected message, and the balancer's for the backend's state",
		})
	}
	return false
}

// dropText says how a connection ended without a close frame.
func dropText(ev event) string {
	switch ev.kind {
	case evEOF:
		return "TCP FIN without a close frame"
	case evReset:
		return "TCP RST (connection reset) without a close frame"
	}
	return "read error: " + unwrapOp(ev.err).Error()
}

// protocolError records a protocol violation by the server and fails the connection with the
// code RFC 6455 asks for.
func (p *prober) protocolError(ws *wsConn, ev event, phase string) {
	code := wsproto.CloseProtocolError
	var pe *wsproto.ProtocolError
	if errors.As(ev.err, &pe) {
		code = pe.Code
	}
	_ = ws.writeClose(code, "")
	p.rep.Close = &Close{Initiator: "client", SentCode: code, Code: wsproto.CloseAbnormal, Error: "connection failed after a protocol error"}
	p.diagnose(Diagnosis{
		Fault: FaultProtocol, Phase: phase,
		Summary: fmt.Sprintf("the server broke the WebSocket protocol: %s", strings.TrimPrefix(ev.err.Error(), "wsproto: ")),
		Hint:    "a server bug, or a proxy that mangles frames (compression or buffering proxies, a non-WebSocket-aware middlebox); probe the backend directly to tell them apart",
	})
}

// serverClosed answers a close frame the server sent first and records the close.
func (p *prober) serverClosed(ws *wsConn, ev event) {
	reply := ev.code
	if reply == wsproto.CloseNoStatus || reply == 0 || reply == wsproto.CloseAbnormal {
		reply = wsproto.CloseNormal
	}
	c := &Close{Initiator: "server", SentCode: reply, Code: ev.code, Reason: ev.reason}
	if err := ws.writeClose(reply, ""); err != nil {
		c.Error = "answering the close: " + unwrapOp(err).Error()
	}
	p.rep.Close = c
}

// testHookIdle, when set (by tests only), is called as the idle hold begins: a test that
// interrupts a hold knows the hold has started without guessing how long the phases before it
// take.
var testHookIdle func()

// idle holds the connection, optionally pinging, until the hold ends or the connection is
// cut.
func (p *prober) idle(ws *wsConn) bool {
	ph := &Idle{Requested: Duration(p.o.Idle), PingEvery: Duration(p.o.PingEvery)}
	p.rep.Idle = ph
	if testHookIdle != nil {
		testHookIdle()
	}
	deadline, stop := after(p.o.Idle)
	defer stop()
	var tick <-chan time.Time
	if p.o.PingEvery > 0 {
		t := time.NewTicker(p.o.PingEvery)
		defer t.Stop()
		tick = t.C
	}
	begin := p.last
	cut := func(at time.Time, how string, code int, reason string) {
		ph.Cut = true
		ph.After = Duration(at.Sub(begin))
		ph.How, ph.Code, ph.Reason = how, code, reason
		summary := fmt.Sprintf("the connection was cut after %v idle: %s, code %s", time.Duration(ph.After).Round(10*time.Millisecond), how, codeWithText(code))
		if reason != "" {
			summary += fmt.Sprintf(", reason %q", reason)
		}
		hint := idleHint
		if ph.PingsSent > 0 {
			hint = fmt.Sprintf("pings every %v did not prevent it: the timeout may be shorter than that, or count only data messages; ", p.o.PingEvery) + idleHint
		}
		p.diagnose(Diagnosis{Fault: FaultIdleCut, Phase: "idle", Summary: summary, Hint: hint})
	}
	for {
		var ev event
		select {
		case <-tick:
			if err := ws.write(wsproto.OpPing, []byte(pingPayload)); err != nil {
				cut(time.Now(), "the connection was gone when a ping was sent ("+unwrapOp(err).Error()+")", wsproto.CloseAbnormal, "")
				p.rep.Close = &Close{Initiator: "server", Code: wsproto.CloseAbnormal, Error: unwrapOp(err).Error()}
				return false
			}
			ph.PingsSent++
			continue
		case ev = <-ws.events:
			ws.saw(ev)
		case <-deadline:
			ph.Held = ph.Requested
			return true // the hold ended with the connection open
		case <-p.ctx.Done():
			// Cut short by the user: say how long it held, and still close politely.
			ph.Held = since(begin)
			return true
		}
		switch ev.kind {
		case evMessage:
			ph.Messages++
		case evPing:
			ph.ServerPings++
		case evPong:
			ph.Pongs++
		case evClose:
			cut(ev.at, "close frame from the server", ev.code, ev.reason)
			p.serverClosed(ws, ev)
			return false
		case evProtocol:
			p.protocolError(ws, ev, "idle")
			return false
		default:
			cut(ev.at, dropText(ev), wsproto.CloseAbnormal, "")
			p.rep.Close = &Close{Initiator: "server", Code: wsproto.CloseAbnormal, Error: dropText(ev)}
			return false
		}
	}
}

// closeHandshake sends a close frame and waits for the server's.
func (p *prober) closeHandshake(ws *wsConn) {
	c := &Close{Initiator: "client", SentCode: wsproto.CloseNormal, Code: wsproto.CloseAbnormal}
	p.rep.Close = c
	start := time.Now()
	if err := ws.writeClose(wsproto.CloseNormal, closeReason); err != nil {
		c.Error = "sending the close frame: " + unwrapOp(err).Error()
		return
	}
	// After an interruption the close is still sent, but its wait is short: the user
	// asked to stop.
	wait := p.o.Timeout
	if p.interrupted() {
		wait = min(wait, time.Second)
	}
	deadline, stop := after(wait)
	defer stop()
	for {
		ev, ok := ws.next(deadline, nil)
		if !ok {
			c.Error = fmt.Sprintf("the server did not answer the close frame within %v", wait)
			return
		}
		switch ev.kind {
		case evMessage, evPing, evPong:
			continue // sent before the server saw our close
		case evClose:
			c.Code, c.Reason, c.RTT = ev.code, ev.reason, Duration(ev.at.Sub(start))
			// The server should now end the TCP connection (RFC 6455 section 7.1.1); a
			// short wait lets it, so the close shows as clean on its side too.
			grace, stopGrace := after(min(wait, time.Second))
			defer stopGrace()
			for !ws.ended {
				if _, ok := ws.next(grace, nil); !ok {
					break
				}
			}
			return
		default:
			c.Error = "the server ended the connection without answering the close frame: " + dropText(ev)
			return
		}
	}
}
