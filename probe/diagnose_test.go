package probe

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestVerifyChain(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	ca := newCert(t, "Test CA", nil, now.Add(-10*day), now.Add(300*day), nil)
	good := newCert(t, "good", ca, now.Add(-day), now.Add(90*day), []string{"ws.example.test", "127.0.0.1"})
	expired := newCert(t, "old", ca, now.Add(-9*day), now.Add(-2*day), []string{"ws.example.test"})
	future := newCert(t, "new", ca, now.Add(2*day), now.Add(90*day), []string{"ws.example.test"})
	cnOnly := newCert(t, "cn-only.example.test", ca, now.Add(-day), now.Add(90*day), nil)
	self := newCert(t, "self", nil, now.Add(-day), now.Add(90*day), []string{"ws.example.test"})
	trusted := x509.NewCertPool()
	trusted.AddCert(ca.cert)
	empty := x509.NewCertPool()

	tests := []struct {
		name  string
		certs []*x509.Certificate
		host  string
		roots *x509.CertPool
		want  []Fault
		texts []string // fragments the problems' texts must contain
	}{
		{"valid", []*x509.Certificate{good.cert, ca.cert}, "ws.example.test", trusted, nil, nil},
		{"valid for an IP", []*x509.Certificate{good.cert}, "127.0.0.1", trusted, nil, nil},
		{"expired", []*x509.Certificate{expired.cert}, "ws.example.test", trusted,
			[]Fault{FaultTLSExpired}, []string{"expired on " + expired.cert.NotAfter.UTC().Format(time.DateOnly) + " (2 days ago)"}},
		{"not yet valid", []*x509.Certificate{future.cert}, "ws.example.test", trusted,
			[]Fault{FaultTLSNotYetValid}, []string{"not valid before", "clock"}},
		{"name mismatch", []*x509.Certificate{good.cert}, "api.example.test", trusted,
			[]Fault{FaultTLSNameMismatch}, []string{`not valid for "api.example.test": it covers ws.example.test, 127.0.0.1`}},
		{"common name only", []*x509.Certificate{cnOnly.cert}, "cn-only.example.test", trusted,
			[]Fault{FaultTLSNameMismatch}, []string{`only the common name "cn-only.example.test"`}},
		{"unknown CA", []*x509.Certificate{good.cert}, "ws.example.test", empty,
			[]Fault{FaultTLSUnknownAuthority}, []string{"does not trust (issuer CN=Test CA)"}},
		{"self-signed", []*x509.Certificate{self.cert}, "ws.example.test", empty,
			[]Fault{FaultTLSUnknownAuthority}, []string{"self-signed"}},
		{"expired, wrong name and untrusted: all named, expiry first", []*x509.Certificate{expired.cert}, "other.test", empty,
			[]Fault{FaultTLSExpired, FaultTLSNameMismatch, FaultTLSUnknownAuthority}, nil},
		{"no certificate", nil, "ws.example.test", trusted, []Fault{FaultTLS}, []string{"no certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := verifyChain(tt.certs, tt.host, tt.roots, now)
			var got []Fault
			var texts []string
			for _, p := range ps {
				got = append(got, p.fault)
				texts = append(texts, p.text)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("faults %v, want %v (%q)", got, tt.want, texts)
			}
			for _, want := range tt.texts {
				if !strings.Contains(strings.Join(texts, "\n"), want) {
					t.Fatalf("problems %q lack %q", texts, want)
				}
			}
		})
	}
}

func TestConnectFault(t *testing.T) {
	op := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		err  error
		want Fault
	}{
		{op(os.NewSyscallError("connect", syscall.ECONNREFUSED)), FaultRefused},
		{op(os.ErrDeadlineExceeded), FaultConnectTimeout},
		{op(context.DeadlineExceeded), FaultConnectTimeout},
		{op(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), FaultUnreachable},
		{op(os.NewSyscallError("connect", syscall.ENETUNREACH)), FaultUnreachable},
	}
	for _, tt := range tests {
		if got := connectFault(tt.err); got != tt.want {
			t.Fatalf("connectFault(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestConnectDiagnosis(t *testing.T) {
	refused := &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		scheme, port string
		fault        Fault
		want, not    string
	}{
		{"ws", "8443", FaultRefused, "port 8443 usually serves wss://, not ws://", ""},
		{"ws", "443", FaultRefused, "look swapped", ""},
		{"wss", "8080", FaultRefused, "port 8080 usually serves ws://, not wss://", ""},
		{"wss", "80", FaultConnectTimeout, "look swapped", ""},
		{"ws", "8080", FaultRefused, "nothing listens on db.example.test:8080", "swapped"},
		{"wss", "8443", FaultConnectTimeout, "filtered port", "swapped"},
		{"ws", "9000", FaultUnreachable, "cannot connect to db.example.test:9000", "swapped"},
	}
	for _, tt := range tests {
		t.Run(tt.scheme+":"+tt.port, func(t *testing.T) {
			tg := target{scheme: tt.scheme, host: "db.example.test", port: tt.port, timeout: time.Second}
			d := tg.connectDiagnosis(tt.fault, refused)
			all := d.Summary + " | " + d.Hint
			if d.Fault != tt.fault || d.Phase != "connect" || !strings.Contains(all, tt.want) {
				t.Fatalf("%+v, want fault %s mentioning %q", d, tt.fault, tt.want)
			}
			if tt.not != "" && strings.Contains(all, tt.not) {
				t.Fatalf("%q mentions %q", all, tt.not)
			}
		})
	}
}

func TestStatusDiagnosis(t *testing.T) {
	tg := target{scheme: "ws", host: "h", port: "80", path: "/ws"}
	tests := []struct {
		status         int
		location, body string
		fault          Fault
		want           string
	}{
		{200, "", "<html>", FaultHTTPStatus, "served a normal page"},
		{301, "https://h/ws", "", FaultHTTPStatus, `to "https://h/ws"`},
		{404, "", "", FaultHTTPStatus, `path "/ws"`},
		{429, "", "", FaultHTTPStatus, "rate-limiting"},
		{400, "", "Client sent an HTTP request to an HTTPS server.\n", FaultTLSExpected, "use wss://"},
		{400, "", "<center>The plain HTTP request was sent to HTTPS port</center>", FaultTLSExpected, "expects TLS"},
		{418, "", "", FaultHTTPStatus, "HTTP 418 I'm a teapot instead of 101"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			reason := map[int]string{418: "I'm a teapot"}[tt.status]
			d := tg.statusDiagnosis(tt.status, reason, tt.location, tt.body)
			if d.Fault != tt.fault || !strings.Contains(d.Summary+" | "+d.Hint, tt.want) {
				t.Fatalf("%+v, want %s mentioning %q", d, tt.fault, tt.want)
			}
		})
	}
}

func TestTLSHandshakeDiagnosis(t *testing.T) {
	tg := target{scheme: "wss", host: "h", port: "8080", timeout: time.Second}
	tests := []struct {
		name  string
		err   error
		fault Fault
		want  string
	}{
		{"EOF", fmt.Errorf("read: %w", io.EOF), FaultTLS, "closed the connection during the TLS handshake"},
		{"other", errors.New("tls: no cipher"), FaultTLS, "the TLS handshake failed: tls: no cipher"},
		{"timeout", context.DeadlineExceeded, FaultTLS, "no TLS answer from h:8080 within 1s"},
		{"swap hint", context.DeadlineExceeded, FaultTLS, "look swapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tg.tlsHandshakeDiagnosis(tt.err)
			if d.Fault != tt.fault || !strings.Contains(d.Summary+" | "+d.Hint, tt.want) {
				t.Fatalf("%+v, want %s mentioning %q", d, tt.fault, tt.want)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		d    time.Duration
		json string
		text string
	}{
		{1234567 * time.Nanosecond, "1.235", "1.23 ms"},
		{250 * time.Millisecond, "250.000", "250 ms"},
		{65 * time.Second, "65000.000", "65.0 s"},
		{0, "0.000", "0.00 ms"},
	}
	for _, tt := range tests {
		b, err := json.Marshal(Duration(tt.d))
		if err != nil || string(b) != tt.json {
			t.Fatalf("Marshal(%v) = %s, %v; want %s", tt.d, b, err, tt.json)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if diff := time.Duration(back) - tt.d; diff < -time.Microsecond || diff > time.Microsecond {
			t.Fatalf("round trip of %v gave %v", tt.d, time.Duration(back))
		}
		if s := Duration(tt.d).String(); s != tt.text {
			t.Fatalf("String(%v) = %q, want %q", tt.d, s, tt.text)
		}
	}
}

func TestFaultsAreDistinct(t *testing.T) {
	seen := map[Fault]bool{}
	for _, f := range Faults() {
		if f == "" || seen[f] || strings.ToLower(string(f)) != string(f) || strings.ContainsAny(string(f), " -") {
			t.Fatalf("fault %q is empty, repeated or not snake_case", f)
		}
		seen[f] = true
	}
	if len(seen) != 20 {
		t.Fatalf("%d faults, want 20: a new fault needs an exit code in cmd/wsload and a test", len(seen))
	}
}

func TestDescribeRequestRedacts(t *testing.T) {
	wire := "GET /ws?room=1&access_token=abc HTTP/1.1\r\nHost: h\r\nCookie: sid=1\r\nX-Api-Key: k\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	line, h := describeRequest([]byte(wire))
	if strings.Contains(line, "abc") || !strings.Contains(line, "room=1") || !strings.HasPrefix(line, "GET /ws?") || !strings.HasSuffix(line, " HTTP/1.1") {
		t.Fatalf("request line %q", line)
	}
	if h["Cookie"] != "[redacted]" || h["X-Api-Key"] != "[redacted]" || h["Upgrade"] != "websocket" || h["Host"] != "h" ||
		h["Sec-WebSocket-Key"] != "dGhlIHNhbXBsZSBub25jZQ==" {
		t.Fatalf("headers %v", h)
	}
}
