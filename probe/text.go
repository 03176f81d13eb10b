package probe

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsload/wsload/internal/termsafe"
)

// WriteText writes the report for a person: one block per phase reached, with its timing,
// then every diagnosis with its hint. Nothing in it is secret: headers and URL were redacted
// when the report was made.
func (r *Report) WriteText(w io.Writer) error {
	var buf bytes.Buffer // written whole, escaped: the server's text must not act on the terminal
	b := &buf
	fmt.Fprintf(b, "Probe of %s\n\n", r.URL)
	r.writeDNS(b)
	r.writeConnect(b)
	r.writeTLS(b)
	r.writeUpgrade(b)
	writeExchange(b, "Greeting", r.Greeting)
	writeExchange(b, "Message", r.Exchange)
	r.writeIdle(b)
	r.writeClose(b)
	fmt.Fprintln(b)
	switch {
	case r.Interrupted:
		fmt.Fprintf(b, "Interrupted after %v: the phases above are what was done\n", r.Total)
	case len(r.Diagnoses) == 0:
		fmt.Fprintf(b, "OK: the endpoint speaks WebSocket (%v in total)\n", r.Total)
	}
	for i, d := range r.Diagnoses {
		if i > 0 {
			fmt.Fprintln(b)
		}
		fmt.Fprintf(b, "diagnosis: %s\nhint: %s\n", d.Summary, d.Hint)
	}
	_, err := termsafe.NewWriter(w).Write(buf.Bytes())
	return err
}

// phase writes a phase's first line: name, duration column, text.
func phase(w io.Writer, name string, d *Duration, format string, args ...any) {
	dur := ""
	if d != nil {
		dur = d.String()
	}
	fmt.Fprintf(w, "%-9s %9s  %s\n", name, dur, fmt.Sprintf(format, args...))
}

// detail writes an indented line under a phase.
func detail(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%21s%s\n", "", fmt.Sprintf(format, args...))
}

func (r *Report) writeDNS(w io.Writer) {
	d := r.DNS
	switch {
	case d == nil:
	case d.Literal:
		phase(w, "DNS", nil, "%s (an address: nothing to resolve)", strings.Join(d.Addrs, ", "))
	case d.Error != "":
		phase(w, "DNS", &d.Duration, "%s: FAILED: %s", d.Host, d.Error)
	default:
		phase(w, "DNS", &d.Duration, "%s -> %s", d.Host, strings.Join(d.Addrs, ", "))
	}
}

func (r *Report) writeConnect(w io.Writer) {
	c := r.Connect
	if c == nil {
		return
	}
	for _, a := range c.Attempts {
		if a.Error != "" {
			phase(w, "Connect", &a.Duration, "%s: FAILED: %s", a.Addr, a.Error)
		}
	}
	if c.Remote != "" {
		phase(w, "Connect", &c.Duration, "%s -> %s", c.Local, c.Remote)
	}
}

func (r *Report) writeTLS(w io.Writer) {
	t := r.TLS
	if t == nil {
		return
	}
	if t.Version != "" {
		alpn := t.ALPN
		if alpn == "" {
			alpn = "none"
		}
		sni := "server name " + t.ServerName
		if _, err := netip.ParseAddr(t.ServerName); err == nil {
			sni = "no server name (SNI): the URL holds an address"
		}
		phase(w, "TLS", &t.Duration, "%s, %s, ALPN %s, %s", t.Version, t.CipherSuite, alpn, sni)
	} else {
		phase(w, "TLS", &t.Duration, "FAILED: %s", t.Error)
	}
	for i, c := range t.Certificates {
		if i == 0 {
			detail(w, "certificate  %s", c.Subject)
		} else {
			detail(w, "chain[%d]     %s", i, c.Subject)
		}
		issuer := c.Issuer
		if c.SelfSigned {
			issuer += " (self-signed)"
		}
		detail(w, "  issuer     %s", issuer)
		if i == 0 {
			names := strings.Join(c.Names, ", ")
			if names == "" {
				names = "(none)"
			}
			detail(w, "  names      %s", names)
		}
		left := fmt.Sprintf("%d days left", c.DaysLeft)
		if c.DaysLeft < 0 {
			left = fmt.Sprintf("EXPIRED %d days ago", -c.DaysLeft)
		}
		detail(w, "  valid      %s to %s (%s)", c.NotBefore.Format(time.DateOnly), c.NotAfter.Format(time.DateOnly), left)
	}
	switch {
	case t.Verified:
		detail(w, "verification OK")
	case len(t.Problems) > 0 && t.Insecure:
		detail(w, "verification FAILED, ignored (--insecure):")
	case len(t.Problems) > 0:
		detail(w, "verification FAILED:")
	}
	for _, p := range t.Problems {
		detail(w, "  - %s", p)
	}
}

func (r *Report) writeUpgrade(w io.Writer) {
	u := r.Upgrade
	if u == nil {
		return
	}
	switch {
	case u.StatusLine != "":
		phase(w, "Upgrade", &u.Duration, "%s", u.StatusLine)
	default:
		phase(w, "Upgrade", &u.Duration, "FAILED: %s", u.Error)
	}
	detail(w, "> %s", u.RequestLine)
	writeHeaders(w, ">", u.RequestHeaders)
	if u.StatusLine != "" {
		detail(w, "< %s", u.StatusLine)
		writeHeaders(w, "<", u.ResponseHeaders)
	}
	if u.Status == 101 && u.Error == "" {
		detail(w, "subprotocol %s, extensions %s", orNone(u.Subprotocol), orNone(u.Extensions))
	}
	if u.StatusLine != "" && u.Error != "" {
		detail(w, "error: %s", u.Error)
	}
	if u.Body != "" {
		detail(w, "body (first %d bytes): %q", BodyLimit, u.Body)
	}
}

// writeHeaders writes headers sorted by name, Host first as on the wire.
func writeHeaders(w io.Writer, dir string, h map[string]string) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if (a == "Host") != (b == "Host") {
			if a == "Host" {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, k := range names {
		detail(w, "%s %s: %s", dir, k, h[k])
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func writeExchange(w io.Writer, name string, e *Exchange) {
	if e == nil {
		return
	}
	switch {
	case e.Received != nil && e.Sent != nil:
		echo := ""
		if e.Echo {
			echo = ", an echo"
		}
		phase(w, name, &e.RTT, "sent %s, received %s%s", showMessage(e.Sent), showMessage(e.Received), echo)
	case e.Received != nil:
		phase(w, name, &e.RTT, "received %s", showMessage(e.Received))
	case e.Sent != nil:
		phase(w, name, &e.Waited, "sent %s: %s", showMessage(e.Sent), e.Error)
	default:
		phase(w, name, &e.Waited, "%s", e.Error)
	}
}

// showMessage is `text "hello" (5 bytes)`.
func showMessage(m *Message) string {
	data := m.Data
	if m.Type == "text" {
		data = fmt.Sprintf("%q", data)
	}
	more := ""
	if m.Truncated {
		more = "…"
	}
	unit := "bytes"
	if m.Size == 1 {
		unit = "byte"
	}
	return fmt.Sprintf("%s %s%s (%d %s)", m.Type, data, more, m.Size, unit)
}

func (r *Report) writeIdle(w io.Writer) {
	i := r.Idle
	if i == nil {
		return
	}
	pings := ""
	if i.PingEvery > 0 {
		pings = fmt.Sprintf(" (ping every %v: %d sent, %d pongs)", time.Duration(i.PingEvery), i.PingsSent, i.Pongs)
	}
	if i.Cut {
		phase(w, "Idle", &i.After, "cut after %v idle: %s, code %s%s", time.Duration(i.After).Round(10*time.Millisecond), i.How, codeWithText(i.Code), pings)
		if i.Reason != "" {
			detail(w, "reason %q", i.Reason)
		}
	} else {
		cut := ""
		if i.Held < i.Requested {
			cut = fmt.Sprintf(" (interrupted: %v of the %v hold)", time.Duration(i.Held).Round(10*time.Millisecond), time.Duration(i.Requested))
		}
		phase(w, "Idle", &i.Held, "still open after %v%s%s", time.Duration(i.Held).Round(10*time.Millisecond), cut, pings)
	}
	if i.ServerPings > 0 || i.Messages > 0 {
		detail(w, "meanwhile the server sent %d pings and %d messages", i.ServerPings, i.Messages)
	}
}

func (r *Report) writeClose(w io.Writer) {
	c := r.Close
	if c == nil {
		return
	}
	reason := ""
	if c.Reason != "" {
		reason = fmt.Sprintf(" %q", truncateRunes(c.Reason, BodyLimit))
	}
	switch {
	case c.Initiator == "client" && c.RTT > 0:
		phase(w, "Close", &c.RTT, "sent %d, the server answered %s%s", c.SentCode, codeWithText(c.Code), reason)
	case c.Initiator == "client":
		phase(w, "Close", nil, "sent %d: %s", c.SentCode, c.Error)
	case c.SentCode != 0:
		phase(w, "Close", nil, "the server closed with %s%s; answered %d", codeWithText(c.Code), reason, c.SentCode)
	default:
		phase(w, "Close", nil, "the server ended the connection: %s", c.Error)
	}
	if c.Initiator == "client" && c.RTT > 0 && c.Error != "" {
		detail(w, "%s", c.Error)
	}
}

func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
