package probe

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Schema names the JSON layout of a Report; it changes only with incompatible changes.
const Schema = "wsload.probe/v1"

// Report is everything a probe saw, phase by phase. A phase that was not reached is nil, so
// the last non-nil phase is where the probe stopped. It is also the JSON document of
// `wsload probe --format json`.
type Report struct {
	Schema string    `json:"schema"`
	URL    string    `json:"url"` // secrets in user info and query redacted
	Start  time.Time `json:"start"`

	DNS      *DNS      `json:"dns,omitempty"`
	Connect  *Connect  `json:"connect,omitempty"`
	TLS      *TLS      `json:"tls,omitempty"` // wss only
	Upgrade  *Upgrade  `json:"upgrade,omitempty"`
	Greeting *Exchange `json:"greeting,omitempty"` // Options.ExpectGreeting only
	Exchange *Exchange `json:"exchange,omitempty"` // a non-empty Options.Message only
	Idle     *Idle     `json:"idle,omitempty"`     // Options.Idle > 0 only
	Close    *Close    `json:"close,omitempty"`

	// Diagnoses are the faults found, in the order they happened; empty means the endpoint
	// behaved. The first is the one that matters most (see Diagnosis).
	Diagnoses []Diagnosis `json:"diagnoses"`
	OK        bool        `json:"ok"` // no diagnosis
	// Interrupted is set when the probe's context ended before it finished: the phases
	// present are what was done.
	Interrupted bool     `json:"interrupted,omitempty"`
	Total       Duration `json:"total_ms"`
}

// Diagnosis returns the first fault found, or nil when the probe found none.
func (r *Report) Diagnosis() *Diagnosis {
	if len(r.Diagnoses) == 0 {
		return nil
	}
	return &r.Diagnoses[0]
}

// DNS is the name resolution phase.
type DNS struct {
	Host     string   `json:"host"`
	Addrs    []string `json:"addrs,omitempty"`
	Literal  bool     `json:"literal,omitempty"` // the URL held an IP address: nothing was resolved
	Duration Duration `json:"duration_ms"`
	Error    string   `json:"error,omitempty"`
}

// Connect is the TCP connect phase: one attempt per resolved address, in order, until one
// succeeds (as net.Dialer does, but with each attempt shown).
type Connect struct {
	Attempts []Attempt `json:"attempts"`
	Local    string    `json:"local,omitempty"`
	Remote   string    `json:"remote,omitempty"`
	Duration Duration  `json:"duration_ms,omitempty"` // of the successful attempt
}

// Attempt is one TCP connect.
type Attempt struct {
	Addr     string   `json:"addr"`
	Duration Duration `json:"duration_ms"`
	Error    string   `json:"error,omitempty"`
}

// TLS is the TLS handshake of a wss:// URL.
type TLS struct {
	ServerName  string `json:"server_name"`
	Version     string `json:"version,omitempty"`
	CipherSuite string `json:"cipher_suite,omitempty"`
	ALPN        string `json:"alpn,omitempty"`
	// Certificates is the chain the server sent, leaf first.
	Certificates []Certificate `json:"certificates,omitempty"`
	// Verified is true when the chain verified against the trust store for ServerName.
	// Problems lists every verification failure (expiry, name, authority), also when
	// Insecure let the probe go on.
	Verified bool     `json:"verified"`
	Problems []string `json:"problems,omitempty"`
	Insecure bool     `json:"insecure,omitempty"`
	Duration Duration `json:"duration_ms"`
	Error    string   `json:"error,omitempty"`
}

// Certificate is what a person checks in a certificate.
type Certificate struct {
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	Names      []string  `json:"names,omitempty"` // DNS and IP subject alternative names
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	DaysLeft   int       `json:"days_left"` // negative once expired
	SelfSigned bool      `json:"self_signed,omitempty"`
}

// Upgrade is the HTTP upgrade request and its response.
type Upgrade struct {
	RequestLine string `json:"request_line"`
	// RequestHeaders are the headers sent, secret values redacted (stats.RedactHeaders).
	RequestHeaders map[string]string `json:"request_headers"`
	Status         int               `json:"status,omitempty"`
	StatusLine     string            `json:"status_line,omitempty"`
	// ResponseHeaders are the response's headers, secret values (Set-Cookie …) redacted.
	// Balancers' headers (X-Backend, Via, Server, X-Served-By …) show who answered.
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	Subprotocol     string            `json:"subprotocol,omitempty"`
	Extensions      string            `json:"extensions,omitempty"`
	// Body is the start (BodyLimit bytes) of a non-101 response's body.
	Body     string   `json:"body,omitempty"`
	Duration Duration `json:"duration_ms"` // request written to response head read
	Error    string   `json:"error,omitempty"`
}

// Message is a WebSocket message as shown in a report.
type Message struct {
	Type string `json:"type"` // text or binary
	Size int    `json:"size"`
	// Data is the text, or for binary messages the hex bytes, cut at BodyLimit bytes.
	Data      string `json:"data"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Exchange is a greeting awaited from the server or the message sent and its reply.
type Exchange struct {
	Sent     *Message `json:"sent,omitempty"` // nil for a greeting
	Received *Message `json:"received,omitempty"`
	// RTT is from the send (for a greeting, from the upgrade) to the first message back.
	RTT  Duration `json:"rtt_ms,omitempty"`
	Echo bool     `json:"echo,omitempty"` // the reply equals what was sent
	// Waited is how long the probe waited when nothing came back.
	Waited Duration `json:"waited_ms,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// Idle is the idle hold after the exchange: how and when the connection was cut, if it was.
type Idle struct {
	Requested Duration `json:"requested_ms"`
	// Held is how long the connection stayed open in the hold: Requested, or less when
	// the probe was interrupted; 0 when it was cut (see After).
	Held      Duration `json:"held_ms,omitempty"`
	PingEvery Duration `json:"ping_every_ms,omitempty"`
	PingsSent int      `json:"pings_sent,omitempty"`
	Pongs     int      `json:"pongs,omitempty"`
	// ServerPings and Messages arrived unasked during the hold.
	ServerPings int `json:"server_pings,omitempty"`
	Messages    int `json:"messages,omitempty"`
	// Cut is true when the connection ended during the hold; After is then when, counted
	// from the last frame of the exchange (balancers count idle time from the last traffic).
	Cut   bool     `json:"cut"`
	After Duration `json:"after_ms,omitempty"`
	// How says how it ended: "close frame", "TCP FIN without a close frame", "TCP RST …".
	How string `json:"how,omitempty"`
	// Code is the close code: the server's, or 1006 when no close frame came.
	Code   int    `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Close is the close handshake.
type Close struct {
	// Initiator is "client" when the probe closed, "server" when the server closed first.
	Initiator string `json:"initiator"`
	SentCode  int    `json:"sent_code,omitempty"`
	// Code and Reason are the server's close frame (1005 for an empty one, 1006 when none
	// came).
	Code   int      `json:"code"`
	Reason string   `json:"reason,omitempty"`
	RTT    Duration `json:"rtt_ms,omitempty"` // close sent to close received
	Error  string   `json:"error,omitempty"`
}

// Duration is a time.Duration that JSON encodes as a number of milliseconds (microsecond
// precision): the unit network timings are read in, and plain numbers for scripts.
type Duration time.Duration

// MarshalJSON writes milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', 3, 64), nil
}

// UnmarshalJSON reads milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return fmt.Errorf("probe: duration: %w", err)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// String shows milliseconds below ten seconds and seconds above.
func (d Duration) String() string {
	td := time.Duration(d)
	switch {
	case td < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(td)/float64(time.Millisecond))
	case td < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(td)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f s", td.Seconds())
	}
}

func since(t time.Time) Duration { return Duration(time.Since(t)) }
