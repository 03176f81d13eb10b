package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fault names a class of failure. The names are stable: scripts match them in the JSON
// report and `wsload probe` maps each to an exit code.
type Fault string

// The faults a probe diagnoses, in the order of the phases that find them.
const (
	FaultDNS            Fault = "dns"             // the host name does not resolve
	FaultRefused        Fault = "refused"         // nothing listens on host:port
	FaultConnectTimeout Fault = "connect_timeout" // no answer to the TCP connect: filtered port or wrong address
	FaultUnreachable    Fault = "unreachable"     // network or host unreachable, or another connect error

	FaultTLSExpired          Fault = "tls_expired"
	FaultTLSNotYetValid      Fault = "tls_not_yet_valid"
	FaultTLSUnknownAuthority Fault = "tls_unknown_authority"
	FaultTLSNameMismatch     Fault = "tls_name_mismatch"
	FaultTLSPlainHTTP        Fault = "tls_plain_http" // wss:// at a server that answers in plain HTTP
	FaultTLSExpected         Fault = "tls_expected"   // ws:// at a server that speaks TLS
	FaultTLS                 Fault = "tls"            // another TLS handshake failure

	FaultHTTPStatus      Fault = "http_status"       // the upgrade was answered with a plain HTTP status
	FaultBadUpgrade      Fault = "bad_upgrade"       // 101 with a wrong accept key or missing headers
	FaultNotHTTP         Fault = "not_http"          // the answer to the upgrade request is not HTTP
	FaultNoUpgradeAnswer Fault = "no_upgrade_answer" // the server closed or stayed silent after the request

	FaultNoGreeting Fault = "no_greeting" // --expect-greeting, and the server sent nothing
	FaultNoReply    Fault = "no_reply"    // no message came back within the timeout
	FaultClosed     Fault = "closed"      // the server ended the connection before the exchange finished
	FaultProtocol   Fault = "protocol"    // the server broke RFC 6455 (invalid frame)
	FaultIdleCut    Fault = "idle_cut"    // the connection was cut during the idle hold
)

// Faults lists every Fault, for tables that must cover them all (exit codes, docs).
func Faults() []Fault {
	return []Fault{
		FaultDNS, FaultRefused, FaultConnectTimeout, FaultUnreachable,
		FaultTLSExpired, FaultTLSNotYetValid, FaultTLSUnknownAuthority, FaultTLSNameMismatch,
		FaultTLSPlainHTTP, FaultTLSExpected, FaultTLS,
		FaultHTTPStatus, FaultBadUpgrade, FaultNotHTTP, FaultNoUpgradeAnswer,
		FaultNoGreeting, FaultNoReply, FaultClosed, FaultProtocol, FaultIdleCut,
	}
}

// Diagnosis is one fault explained: what happened in plain words and what to try.
type Diagnosis struct {
	Fault   Fault  `json:"fault"`
	Phase   string `json:"phase"` // dns, connect, tls, upgrade, greeting, exchange, idle
	Summary string `json:"diagnosis"`
	Hint    string `json:"hint"`
}

// nginxUpgrade is the nginx configuration a WebSocket location needs; without it nginx
// speaks HTTP/1.0 to the backend and drops the hop-by-hop Upgrade and Connection headers.
const nginxUpgrade = `nginx needs proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";`

// wellKnownPorts is the remark added to connect failures.
const wellKnownPorts = "WebSocket services behind balancers usually listen on 8080 (ws) or 8443 (wss), or 80/443"

// swappedSchemeHint says when the scheme and port look swapped, "" otherwise.
func swappedSchemeHint(scheme, port string) string {
	switch {
	case scheme == "ws" && (port == "8443" || port == "443"):
		return fmt.Sprintf("the scheme and port look swapped: port %s usually serves wss://, not ws://", port)
	case scheme == "wss" && (port == "8080" || port == "80"):
		return fmt.Sprintf("the scheme and port look swapped: port %s usually serves ws://, not wss://", port)
	}
	return ""
}

// joinHints joins the non-empty hints with "; ".
func joinHints(hints ...string) string {
	var out []string
	for _, h := range hints {
		if h != "" {
			out = append(out, h)
		}
	}
	return strings.Join(out, "; ")
}

// target is what the diagnoses name: the URL's parts as the user typed them.
type target struct {
	scheme   string // ws or wss
	host     string // without brackets
	port     string // explicit or the scheme's default
	path     string // request path, for 404s
	timeout  time.Duration
	insecure bool
}

func (t target) hostPort() string { return net.JoinHostPort(t.host, t.port) }

// dnsDiagnosis explains a failed lookup.
func (t target) dnsDiagnosis(err error) Diagnosis {
	d := Diagnosis{Fault: FaultDNS, Phase: "dns"}
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		d.Summary = fmt.Sprintf("the host name %q does not resolve (no such host)", t.host)
		d.Hint = "check the spelling; names of cluster services (*.svc.cluster.local) resolve only inside the cluster"
	case errors.As(err, &de) && de.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		d.Summary = fmt.Sprintf("resolving %q timed out after %v", t.host, t.timeout)
		d.Hint = "the DNS server did not answer: check /etc/resolv.conf and that the resolver is reachable, or try an IP address in the URL"
	default:
		d.Summary = fmt.Sprintf("resolving %q failed: %v", t.host, err)
		d.Hint = "check the DNS setup (/etc/resolv.conf, /etc/hosts), or try an IP address in the URL"
	}
	return d
}

// connectFault classifies one failed TCP connect.
func connectFault(err error) Fault {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return FaultRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return FaultConnectTimeout
	}
	return FaultUnreachable
}

// connectDiagnosis explains a failed connect phase; fault comes from connectFault.
func (t target) connectDiagnosis(fault Fault, err error) Diagnosis {
	d := Diagnosis{Fault: fault, Phase: "connect"}
	swap := swappedSchemeHint(t.scheme, t.port)
	switch fault {
	case FaultRefused:
		d.Summary = fmt.Sprintf("nothing listens on %s (connection refused)", t.hostPort())
		d.Hint = joinHints(swap, "check the host and port: "+wellKnownPorts, "is the server or balancer running and bound to this address (not only to 127.0.0.1 inside a container)?")
	case FaultConnectTimeout:
		d.Summary = fmt.Sprintf("no answer from %s within %v: a firewall drops the packets (filtered port) or the address is wrong", t.hostPort(), t.timeout)
		d.Hint = joinHints(swap, "check the address, security groups/firewall rules for port "+t.port, wellKnownPorts)
	default:
		d.Summary = fmt.Sprintf("cannot connect to %s: %v", t.hostPort(), unwrapOp(err))
		d.Hint = "check routing to the address (VPN, network, IPv6 reachability) and that it is the right one"
	}
	return d
}

// unwrapOp strips net.OpError's "dial tcp a->b:" prefix, which repeats what the report
// already shows.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// problem is one certificate verification failure.
type problem struct {
	fault Fault
	text  string
}

// verifyChain checks the chain the server sent for host at now, each aspect on its own so
// that all problems are named (x509.Verify stops at the first): validity period of the leaf,
// host name, then trust (chain to a root, intermediates' validity). roots nil means the
// system pool.
func verifyChain(certs []*x509.Certificate, host string, roots *x509.CertPool, now time.Time) []problem {
	if len(certs) == 0 {
		return []problem{{FaultTLS, "the server sent no certificate"}}
	}
	leaf := certs[0]
	var ps []problem
	switch {
	case now.After(leaf.NotAfter):
		ps = append(ps, problem{FaultTLSExpired, fmt.Sprintf("the certificate expired on %s (%d days ago)",
			leaf.NotAfter.UTC().Format(time.DateOnly), int(now.Sub(leaf.NotAfter).Hours()/24))})
	case now.Before(leaf.NotBefore):
		ps = append(ps, problem{FaultTLSNotYetValid, fmt.Sprintf("the certificate is not valid before %s (is this machine's clock right? it says %s)",
			leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))})
	}
	if err := leaf.VerifyHostname(host); err != nil {
		ps = append(ps, problem{FaultTLSNameMismatch, fmt.Sprintf("the certificate is not valid for %q: it covers %s", host, coveredNames(leaf))})
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	// Verify at a time inside the leaf's validity so that an expired leaf (reported above)
	// does not hide a trust problem; an intermediate's own expiry still shows.
	at := now
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at})
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case err == nil:
	case errors.As(err, &ua):
		what := "the certificate is signed by an authority this machine does not trust"
		if isSelfSigned(leaf) {
			what = "the certificate is self-signed: no authority vouches for it"
		}
		ps = append(ps, problem{FaultTLSUnknownAuthority, fmt.Sprintf("%s (issuer %s)", what, leaf.Issuer)})
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		ps = append(ps, problem{FaultTLSExpired, fmt.Sprintf("a certificate in the chain is expired or not yet valid: %s (%v)", ci.Cert.Subject, ci.Detail)})
	default:
		ps = append(ps, problem{FaultTLS, fmt.Sprintf("the certificate chain does not verify: %v", err)})
	}
	return ps
}

// isSelfSigned reports whether c is signed by its own key (not merely Subject == Issuer).
func isSelfSigned(c *x509.Certificate) bool {
	return c.Subject.String() == c.Issuer.String() && c.CheckSignatureFrom(c) == nil
}

// certNames lists a certificate's DNS and IP subject alternative names.
func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// coveredNames says which names a certificate is valid for, in words.
func coveredNames(c *x509.Certificate) string {
	names := certNames(c)
	if len(names) == 0 {
		if c.Subject.CommonName != "" {
			return fmt.Sprintf("no alternative names, only the common name %q, which TLS clients no longer accept", c.Subject.CommonName)
		}
		return "no names at all"
	}
	return strings.Join(names, ", ")
}

// verifyError carries the verification problems out of tls.Config.VerifyConnection, so
// that the handshake aborts (with a TLS alert, as a browser would) and the probe still knows
// exactly what failed.
type verifyError struct{ problems []problem }

func (e *verifyError) Error() string {
	return "probe: certificate verification failed: " + e.problems[0].text
}

// tlsProblemDiagnosis explains the first certificate problem.
func (t target) tlsProblemDiagnosis(p problem) Diagnosis {
	d := Diagnosis{Fault: p.fault, Phase: "tls", Summary: p.text}
	insecure := "or, for a test endpoint only, use --insecure to probe anyway"
	switch p.fault {
	case FaultTLSExpired:
		d.Hint = "renew the certificate (and reload the balancer that serves it; check that cert-manager/ACME renewals reach it)"
	case FaultTLSNotYetValid:
		d.Hint = "check this machine's clock (NTP); a certificate issued minutes ago can also trip clocks that lag"
	case FaultTLSNameMismatch:
		d.Hint = "connect with a name the certificate covers, or fix the certificate; a balancer serving its default certificate usually means no SNI match (server_name/crt-list)"
	case FaultTLSUnknownAuthority:
		d.Hint = "trust the issuing CA on this machine (or serve the missing intermediate certificates in the chain), " + insecure
	default:
		d.Hint = insecure
	}
	return d
}

// tlsHandshakeDiagnosis explains a handshake that failed for a reason other than
// certificate verification.
func (t target) tlsHandshakeDiagnosis(err error) Diagnosis {
	d := Diagnosis{Fault: FaultTLS, Phase: "tls"}
	swap := swappedSchemeHint(t.scheme, t.port)
	var rh tls.RecordHeaderError
	var alert tls.AlertError
	var ne net.Error
	switch {
	case errors.As(err, &rh) && strings.HasPrefix(string(rh.RecordHeader[:]), "HTTP/"):
		d.Fault = FaultTLSPlainHTTP
		d.Summary = fmt.Sprintf("the server answered in plain HTTP: %s does not speak TLS, use ws://", t.hostPort())
		d.Hint = joinHints(swap, "use ws:// for this port, or the port where the balancer terminates TLS (often 443 or 8443)")
	case errors.As(err, &rh):
		d.Fault = FaultTLSPlainHTTP
		d.Summary = fmt.Sprintf("the server's answer is not TLS (it starts with %q): %s does not speak TLS here", rh.RecordHeader[:], t.hostPort())
		d.Hint = joinHints(swap, "use ws:// or the port that serves TLS")
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		d.Summary = fmt.Sprintf("the server closed the connection during the TLS handshake (%v)", unwrapOp(err))
		d.Hint = joinHints(swap, "the port may not speak TLS (try ws://), or the server rejected our TLS versions, ciphers or SNI name; a balancer with no certificate for this name may also drop the handshake")
	case errors.As(err, &alert):
		d.Summary = fmt.Sprintf("the server refused the TLS handshake: %v", err)
		d.Hint = "the server and this client share no TLS version or cipher suite, or the server requires a client certificate or another SNI name"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		d.Summary = fmt.Sprintf("no TLS answer from %s within %v", t.hostPort(), t.timeout)
		d.Hint = joinHints(swap, "a plain-HTTP server waits silently for a request it never gets: if this port serves ws://, use ws://")
	default:
		d.Summary = fmt.Sprintf("the TLS handshake failed: %v", unwrapOp(err))
		d.Hint = joinHints(swap, "check that the port serves TLS and accepts TLS 1.2 or 1.3")
	}
	return d
}

// tlsExpectedDiagnosis explains a ws:// URL at a server that speaks TLS.
func (t target) tlsExpectedDiagnosis(what string) Diagnosis {
	return Diagnosis{
		Fault: FaultTLSExpected, Phase: "upgrade",
		Summary: fmt.Sprintf("%s expects TLS (%s): use wss://", t.hostPort(), what),
		Hint:    joinHints(swappedSchemeHint(t.scheme, t.port), "write wss://"+t.hostPort()+t.path),
	}
}

// httpsOnlyBodies are what servers answer a plain HTTP request on a TLS port with.
var httpsOnlyBodies = []string{
	"client sent an http request to an https server", // Go net/http
	"the plain http request was sent to https port",  // nginx
	"speaking plain http to an ssl-enabled server",   // Apache
}

// statusDiagnosis explains an upgrade answered with a plain HTTP status.
func (t target) statusDiagnosis(status int, reason string, location, body string) Diagnosis {
	lower := strings.ToLower(body)
	for _, s := range httpsOnlyBodies {
		if strings.Contains(lower, s) {
			return t.tlsExpectedDiagnosis(fmt.Sprintf("it answered HTTP %d %q", status, s))
		}
	}
	d := Diagnosis{Fault: FaultHTTPStatus, Phase: "upgrade"}
	line := strconv.Itoa(status)
	if reason != "" {
		line += " " + reason
	}
	switch {
	case status == 200:
		d.Summary = "the balancer/server does not pass WebSocket: it served a normal page (HTTP 200) instead of switching protocols"
		d.Hint = "the request reached a plain web server or a proxy that dropped the upgrade: " + nginxUpgrade + " HAProxy passes upgrades by default in HTTP mode; also check that the path routes to the WebSocket backend"
	case status >= 300 && status < 400:
		d.Summary = fmt.Sprintf("the server redirects (HTTP %s) to %q: WebSocket clients do not follow redirects", line, location)
		d.Hint = "probe the redirect target directly (an http→https redirect means: use wss://)"
	case status == 400:
		d.Summary = "the server rejected the upgrade request as malformed (HTTP 400)"
		d.Hint = "a proxy in between probably dropped the Upgrade/Connection headers (" + nginxUpgrade + "); or the server wants another path, Origin (--origin) or subprotocol (--subprotocol)"
	case status == 401 || status == 403:
		d.Summary = fmt.Sprintf("the server refused the upgrade (HTTP %s): authentication or Origin check", line)
		d.Hint = "pass credentials with -H 'Authorization: Bearer …' or -H 'Cookie: …', or set --origin to an origin the server allows (browsers always send one)"
	case status == 404:
		d.Summary = fmt.Sprintf("no WebSocket endpoint at path %q (HTTP 404)", t.path)
		d.Hint = "check the path (/ws, /socket, /socket.io/?EIO=4&transport=websocket …); at a balancer, check that the location/ACL for this path routes to the WebSocket backend"
	case status == 426:
		d.Summary = "the server wants a WebSocket upgrade but did not see one (HTTP 426 Upgrade Required)"
		d.Hint = "a proxy in between dropped the Upgrade and Connection headers (they are hop-by-hop): " + nginxUpgrade + " if the response names another Sec-WebSocket-Version, the server speaks an older protocol"
	case status == 429:
		d.Summary = "the server is rate-limiting this client (HTTP 429)"
		d.Hint = "wait (see Retry-After) or raise the limit for this client"
	case status == 502 || status == 503 || status == 504:
		d.Summary = fmt.Sprintf("the balancer could not reach a backend that speaks WebSocket (HTTP %s)", line)
		d.Hint = "check that the backends are up and healthy and listen where the balancer sends them; HAProxy: health checks, maxconn and `timeout connect`/`timeout server`, and `timeout tunnel` for long-lived WebSocket connections; check the upstream address; " + nginxUpgrade
		if status == 503 {
			d.Hint += "; 503 also means a connection limit was reached (HAProxy maxconn, a server's max connections)"
		}
	default:
		d.Summary = fmt.Sprintf("the upgrade was answered with HTTP %s instead of 101 Switching Protocols", line)
		d.Hint = "read the body below for the server's reason; check the path, headers and that every proxy passes the upgrade (" + nginxUpgrade + ")"
	}
	return d
}

// notHTTPDiagnosis explains an answer to the upgrade request that is not HTTP at all.
func (t target) notHTTPDiagnosis(head []byte, err error) Diagnosis {
	if len(head) > 0 && (head[0] == 0x15 || head[0] == 0x16) {
		kind := "a TLS alert"
		if head[0] == 0x16 {
			kind = "a TLS handshake record"
		}
		return t.tlsExpectedDiagnosis(fmt.Sprintf("it answered with %s, byte 0x%02x", kind, head[0]))
	}
	return Diagnosis{
		Fault: FaultNotHTTP, Phase: "upgrade",
		Summary: fmt.Sprintf("the answer to the upgrade request is not HTTP: %v", err),
		Hint:    joinHints(swappedSchemeHint(t.scheme, t.port), "this port serves another protocol (a database, SSH, a raw TCP service?): check the port"),
	}
}

// noAnswerDiagnosis explains an upgrade request that got no (complete) response.
func (t target) noAnswerDiagnosis(got int, err error) Diagnosis {
	d := Diagnosis{Fault: FaultNoUpgradeAnswer, Phase: "upgrade"}
	var ne net.Error
	swap := swappedSchemeHint(t.scheme, t.port)
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		d.Summary = fmt.Sprintf("no answer to the upgrade request within %v", t.timeout)
		if got > 0 {
			d.Summary = fmt.Sprintf("the answer to the upgrade request stopped after %d bytes (no complete response head within %v)", got, t.timeout)
		}
		hint := "the server accepted the connection but does not answer HTTP here: a backend that is stuck, or a non-HTTP service"
		if t.scheme == "ws" {
			hint += "; a TLS server waits silently for a handshake: if this port serves TLS, use wss://"
		}
		d.Hint = joinHints(swap, hint)
	default:
		d.Summary = fmt.Sprintf("the server closed the connection without answering the upgrade request (%v)", unwrapOp(err))
		if got > 0 {
			d.Summary = fmt.Sprintf("the server closed the connection in the middle of its answer (%d bytes, %v)", got, unwrapOp(err))
		}
		hint := "a balancer with no healthy backend, or one that refuses this client (ACL, connection limit), closes like this"
		if t.scheme == "ws" {
			hint += "; so does a TLS server that got plain HTTP: if this port serves TLS, use wss://"
		}
		d.Hint = joinHints(swap, hint)
	}
	return d
}

// badUpgradeDiagnosis explains a 101 that is not a valid WebSocket accept.
func badUpgradeDiagnosis(err error) Diagnosis {
	return Diagnosis{
		Fault: FaultBadUpgrade, Phase: "upgrade",
		Summary: fmt.Sprintf("the server switched protocols but the handshake is not valid WebSocket: %s",
			strings.TrimPrefix(err.Error(), "wsproto: bad handshake: ")),
		Hint: "a proxy rewrote or dropped the handshake headers (Upgrade, Connection, Sec-WebSocket-Accept), or the server implements an old draft; " + nginxUpgrade,
	}
}

// closeCodeText names the close codes people meet.
func closeCodeText(code int) string {
	switch code {
	case 1000:
		return "normal closure"
	case 1001:
		return "going away: server restart or deploy, or a balancer draining"
	case 1002:
		return "protocol error"
	case 1003:
		return "unsupported data"
	case 1005:
		return "no status code in the close frame"
	case 1006:
		return "abnormal closure: no close frame, the TCP connection just ended"
	case 1007:
		return "invalid payload data"
	case 1008:
		return "policy violation"
	case 1009:
		return "message too big"
	case 1011:
		return "internal server error"
	case 1012:
		return "service restart"
	case 1013:
		return "try again later"
	case 1014:
		return "bad gateway"
	}
	if code >= 4000 && code <= 4999 {
		return "application-defined"
	}
	return ""
}

// codeWithText is "1006 (abnormal closure: …)".
func codeWithText(code int) string {
	if s := closeCodeText(code); s != "" {
		return fmt.Sprintf("%d (%s)", code, s)
	}
	return strconv.Itoa(code)
}

// idleHint is the remedy for an idle cut.
const idleHint = "balancers cut connections idle longer than their timeout (nginx proxy_read_timeout, default 60 s; HAProxy timeout tunnel, or timeout client/server without it; AWS ALB 60 s, many clouds 60–100 s): raise the timeout, or have client or server send pings more often than it (try --ping-every)"
