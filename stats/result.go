package stats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/wsload/wsload/internal/atomicfile"
)

// Schema identifies the Result JSON format. A reader refuses other schemas; a
// change that breaks readers gets a new version.
const Schema = "wsload.result/v1"

// Tool is the "tool" field of every Result.
const Tool = "wsload"

// Result is the outcome of a run, as written to JSON and read back by
// reports, compare and merge. All durations are in microseconds (the "_us"
// fields) or seconds (the "_s" fields).
type Result struct {
	Schema    string    `json:"schema"`
	Tool      string    `json:"tool"`
	Version   string    `json:"version"`
	Target    string    `json:"target"`
	Start     time.Time `json:"start"`
	DurationS float64   `json:"duration_s"`
	// LoadS is the load window: from the start until the run stopped sending
	// on schedule. Messages' rates (sent_per_s, received_per_s) are over it,
	// so the wait for the last replies (DrainS) and the close handshakes
	// (CloseS) after it do not dilute them. Omitted (then rates are over
	// DurationS) in results that did not record it.
	LoadS  float64 `json:"load_s,omitempty"`
	DrainS float64 `json:"drain_s,omitempty"`
	CloseS float64 `json:"close_s,omitempty"`
	// EndReason says why the run ended: EndDuration, EndInterrupted or
	// EndAllClosed; empty in results written before it existed.
	EndReason   string           `json:"end_reason,omitempty"`
	Config      Config           `json:"config"`
	Connections Connections      `json:"connections"`
	Messages    Messages         `json:"messages"`
	CloseCodes  map[int]int64    `json:"close_codes"`
	Errors      map[string]int64 `json:"errors"` // connection failures and runtime errors, by reason
	Latency     Latencies        `json:"latency"`
	Generator   Generator        `json:"generator"`
	Timeline    []Point          `json:"timeline"`
	// Sources lists the results a merged Result was made of (Merge), in
	// input order; it is empty for a single run.
	Sources []Source `json:"sources,omitempty"`
	// Backends splits connections, errors and latency by the backend that
	// served them (--backend-from), keyed by backend name; BackendSpread says
	// how evenly connections went to them. Both are omitted when the run did
	// not tell backends apart.
	Backends      map[string]BackendResult `json:"backends,omitempty"`
	BackendSpread *Spread                  `json:"backend_spread,omitempty"`
	// SLO holds the verdicts of the run's service-level objectives (--slo),
	// in the order they were given; omitted when there were none.
	SLO []Verdict `json:"slo,omitempty"`
	// Recovery says how the open connections fell and came back when the
	// run saw connections dropped or reconnects (ComputeRecovery); omitted
	// otherwise.
	Recovery *Recovery `json:"recovery,omitempty"`
	// ErrorSamples holds one example error text per reason in Errors (the
	// first seen), so that "tls" or "bad_handshake" can be understood where
	// the result is read. The texts quote what servers sent: escape them
	// before they reach a terminal or a page. Omitted when there were none.
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
}

// Result.EndReason values.
const (
	EndDuration    = "duration"               // the configured duration passed
	EndInterrupted = "interrupted"            // the run was cancelled (Ctrl-C)
	EndAllClosed   = "all_connections_closed" // every connection was gone and none was left to dial
)

// Config is the run's configuration as the CLI resolved it, mirrored into the
// Result. The engine or cmd fills it; header values must already be redacted
// (RedactHeaders), and building a Result redacts them again.
type Config struct {
	Connections       int               `json:"connections"`
	ConnectRate       float64           `json:"connect_rate"` // new connections per second in total; 0 = as fast as possible
	Rate              float64           `json:"rate"`         // messages per second per connection; 0 = none scheduled
	Size              int               `json:"size"`         // message payload bytes
	Binary            bool              `json:"binary"`
	DurationS         float64           `json:"duration_s"` // configured duration
	SourceIPs         []string          `json:"source_ips"`
	Headers           map[string]string `json:"headers"`
	Subprotocols      []string          `json:"subprotocols"`
	HandshakeTimeoutS float64           `json:"handshake_timeout_s"`
	// HandshakeConcurrency is the most handshakes that were allowed in
	// flight at once (--handshake-concurrency); 0 in older results.
	HandshakeConcurrency int `json:"handshake_concurrency,omitempty"`
	// SendAfterRamp is true when messages started only once the ramp was
	// over (--send-after-ramp).
	SendAfterRamp bool    `json:"send_after_ramp,omitempty"`
	ReplyTimeoutS float64 `json:"reply_timeout_s"`
	Pollers       int     `json:"pollers"`
	// Segment says which equal share of a larger load this run generated
	// (--segment 2/4); zero, and omitted from JSON, when the run was not
	// segmented.
	Segment Segment `json:"segment,omitzero"`
	// BackendFrom is where backend ids were read from ("header:X-Backend",
	// "message:REGEX"); "" when the run did not tell backends apart.
	BackendFrom string `json:"backend_from,omitempty"`
	// Scenario is the scenario file the run played (wsload run FILE.yaml);
	// nil, and omitted, for echo runs.
	Scenario *Scenario `json:"scenario,omitempty"`

	// Compression says permessage-deflate was offered; Origin is the Origin
	// header sent. Omitted when zero.
	Compression bool   `json:"compression,omitempty"`
	Origin      string `json:"origin,omitempty"`
	// MaxWriteBuffer is the bound on one connection's unsent bytes
	// (--max-write-buffer); omitted when zero.
	MaxWriteBuffer int `json:"max_write_buffer,omitempty"`
	// MaxMessageSize is the limit on one received message (--max-message-size);
	// omitted when zero.
	MaxMessageSize int `json:"max_message_size,omitempty"`
	// Addresses lists the target's addresses when its name resolved to
	// several: connections went to them in turn (DNS round robin). Omitted
	// for one.
	Addresses []string `json:"addresses,omitempty"`
}

// Connections sums the run's connection events.
//
// Every requested connection ends in exactly one bucket: Requested =
// Established + Failed + NotStarted (= Attempted + NotStarted). An echo run
// requests its -c connections; a scenario run every dial its phases and
// reconnects ask for, so there Requested can exceed Config.Connections.
type Connections struct {
	Requested   int64 `json:"requested"`
	Attempted   int64 `json:"attempted"`
	Established int64 `json:"established"`
	Failed      int64 `json:"failed"`
	// NotStarted counts requested connections never dialed: the run ended
	// before their turn (a slow ramp, handshake slots all taken), or the
	// ramp stopped at fd_limit.
	NotStarted int64 `json:"not_started"`
	Closed     int64 `json:"closed"`
	PeakOpen   int64 `json:"peak_open"`
	// RampS is the time from the start until every requested connection was
	// established (the connect rate's proof); 0 when not all were.
	RampS float64 `json:"ramp_s,omitempty"`
	// FailedByReason is the part of Result.Errors that were connection
	// failures; it sums to Failed.
	FailedByReason map[string]int64 `json:"failed_by_reason"`
}

// Messages sums the run's message events. Rates are per second of the run's
// load window (Result.LoadS; its duration when that is not recorded).
//
// For echo runs every sent message ends in exactly one of Received (answered
// by a correct echo), TimedOut (no correct echo within the reply timeout, or
// its connection closed first: it can never be answered) and InFlight (still
// within its reply timeout when the run was interrupted):
// Sent = Received + TimedOut + InFlight. Every received message that is not
// in Received is in exactly one of Unmatched, Duplicate, Late and Corrupt. A
// corrupt echo does not answer its message, which ends timed out unless a
// correct echo follows in time.
type Messages struct {
	Sent          int64   `json:"sent"`
	Received      int64   `json:"received"`
	TimedOut      int64   `json:"timed_out"`
	InFlight      int64   `json:"in_flight"`
	Unmatched     int64   `json:"unmatched"`
	Duplicate     int64   `json:"duplicate"`
	Late          int64   `json:"late"`
	Corrupt       int64   `json:"corrupt"`
	BytesSent     int64   `json:"bytes_sent"`
	BytesReceived int64   `json:"bytes_received"`
	SentPerS      float64 `json:"sent_per_s"`
	ReceivedPerS  float64 `json:"received_per_s"`
}

// Latencies holds the run's latency distributions.
type Latencies struct {
	Handshake      Latency `json:"handshake"`
	RTT            Latency `json:"rtt"`             // from the scheduled send time: coordinated omission corrected
	RTTUncorrected Latency `json:"rtt_uncorrected"` // from the actual send time
	SendLag        Latency `json:"send_lag"`        // actual - scheduled send time
	// HandshakeWait is the wait of each dialed connection from being due
	// (its place in the connect-rate ramp, or the scenario asking for it)
	// to its dial starting: the time it queued for one of the
	// --handshake-concurrency slots. Handshake counts from where it ends.
	// Omitted when nothing was dialed (and in results of older versions).
	HandshakeWait *Latency               `json:"handshake_wait,omitempty"`
	Steps         map[string]StepLatency `json:"steps"`
}

// StepLatency is one named step's latencies and counters. Count is how
// often the step completed with a measurement (a matched expect, a pong, a
// reconnect, a replayed reply), the same as Corrected.Count. A send step has
// no latency of its own: it carries Sent, Late (more than LateSend behind
// its schedule) and SendLag (actual - scheduled send time). The counters
// and SendLag are omitted when zero.
type StepLatency struct {
	Count       int64    `json:"count"`
	Corrected   Latency  `json:"corrected"`
	Uncorrected Latency  `json:"uncorrected"`
	Sent        int64    `json:"sent,omitempty"`
	Late        int64    `json:"late,omitempty"`
	Timeouts    int64    `json:"timeouts,omitempty"`
	Errors      int64    `json:"errors,omitempty"`
	SendLag     *Latency `json:"send_lag,omitempty"`
}

// newStepLatency summarizes s; errors name the histogram that failed to
// encode, and the rest is still filled.
func newStepLatency(s *StepHists) (StepLatency, []error) {
	var errs []error
	sl := StepLatency{Sent: s.Sent, Late: s.Late, Timeouts: s.TimedOut, Errors: s.Errors}
	var err error
	if sl.Corrected, err = NewLatency(s.Corrected); err != nil {
		errs = append(errs, err)
	}
	if sl.Uncorrected, err = NewLatency(s.Uncorrected); err != nil {
		errs = append(errs, err)
	}
	sl.Count = sl.Corrected.Count
	if count(s.SendLag) > 0 {
		l, err := NewLatency(s.SendLag)
		if err != nil {
			errs = append(errs, err)
		}
		sl.SendLag = &l
	}
	return sl, errs
}

// Latency summarizes one histogram (values in µs) and carries the histogram
// itself in HDR, HdrHistogram's standard V2 compressed base64 encoding, so
// other HdrHistogram tools read it and results merge exactly. The p*_us
// fields are named after Percentiles.
type Latency struct {
	Count    int64   `json:"count"`
	MinUS    int64   `json:"min_us"`
	MeanUS   float64 `json:"mean_us"`
	StddevUS float64 `json:"stddev_us"`
	P50US    int64   `json:"p50_us"`
	P90US    int64   `json:"p90_us"`
	P99US    int64   `json:"p99_us"`
	P999US   int64   `json:"p999_us"`
	P9999US  int64   `json:"p9999_us"`
	MaxUS    int64   `json:"max_us"`
	HDR      string  `json:"hdr"`
}

// Generator describes the load generator's own health. The caller fills
// CPU, RSS and GOMAXPROCS; building a Result computes CPUPerMsgUS, Clamped
// and Warnings.
type Generator struct {
	CPUUserS float64 `json:"cpu_user_s"` // getrusage user time of the whole run
	CPUSysS  float64 `json:"cpu_sys_s"`  // getrusage system time
	// CPUPerMsgUS is the generator's CPU time (user+sys) in µs per received
	// (echoed) message when any was received, else per sent message, else 0:
	// the cost of one round trip when there are replies, of one send when the
	// target does not answer.
	CPUPerMsgUS float64 `json:"cpu_per_msg_us"`
	MaxRSSBytes int64   `json:"max_rss_bytes"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	// Host and PID identify the generator process, so the Sources of a
	// merged Result say where each part ran. Empty when unknown.
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
	// Clamped counts latency samples above the histogram range (1 hour),
	// recorded at its top.
	Clamped  int64    `json:"clamped_samples"`
	Warnings []string `json:"warnings"`
}

// MarshalJSON writes a latency without samples with null for its min, mean,
// stddev, percentiles and max: there is no value, and 0 would read as a
// perfect one. Reading null back leaves those fields 0, with Count 0.
func (l Latency) MarshalJSON() ([]byte, error) {
	type plain Latency // no MarshalJSON: no recursion
	if l.Count != 0 {
		return json.Marshal(plain(l))
	}
	return json.Marshal(struct {
		Count    int64    `json:"count"`
		MinUS    *int64   `json:"min_us"`
		MeanUS   *float64 `json:"mean_us"`
		StddevUS *float64 `json:"stddev_us"`
		P50US    *int64   `json:"p50_us"`
		P90US    *int64   `json:"p90_us"`
		P99US    *int64   `json:"p99_us"`
		P999US   *int64   `json:"p999_us"`
		P9999US  *int64   `json:"p9999_us"`
		MaxUS    *int64   `json:"max_us"`
		HDR      string   `json:"hdr"`
	}{HDR: l.HDR})
}

// Percentile returns the value of the named percentile (a Percentiles name)
// and whether the name is known.
func (l *Latency) Percentile(name string) (int64, bool) {
	switch name {
	case "p50":
		return l.P50US, true
	case "p90":
		return l.P90US, true
	case "p99":
		return l.P99US, true
	case "p999":
		return l.P999US, true
	case "p9999":
		return l.P9999US, true
	}
	return 0, false
}

// NewLatency summarizes h and encodes it.
func NewLatency(h *hdrhistogram.Histogram) (Latency, error) {
	if h == nil {
		h = NewHistogram()
	}
	l := Latency{
		Count:    h.TotalCount(),
		MinUS:    h.Min(),
		MeanUS:   h.Mean(),
		StddevUS: h.StdDev(),
		MaxUS:    h.Max(),
		P50US:    Quantile(h, 50),
		P90US:    Quantile(h, 90),
		P99US:    Quantile(h, 99),
		P999US:   Quantile(h, 99.9),
		P9999US:  Quantile(h, 99.99),
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return l, fmt.Errorf("stats: encoding histogram: %w", err)
	}
	l.HDR = string(b)
	return l, nil
}

// Histogram decodes HDR. An empty HDR with Count 0 is an empty histogram.
func (l *Latency) Histogram() (*hdrhistogram.Histogram, error) {
	if l.HDR == "" {
		if l.Count != 0 {
			return nil, fmt.Errorf("stats: latency has count %d but no hdr", l.Count)
		}
		return NewHistogram(), nil
	}
	h, err := hdrhistogram.Decode([]byte(l.HDR))
	if err != nil {
		return nil, fmt.Errorf("stats: decoding hdr: %w", err)
	}
	if h.TotalCount() != l.Count {
		return nil, fmt.Errorf("stats: hdr holds %d samples but count is %d", h.TotalCount(), l.Count)
	}
	return h, nil
}

// validate checks HDR without allocating a dense histogram: a packed decode
// grows with the populated buckets only, so a hostile file cannot make
// DecodeResult allocate tens of MB per latency.
func (l *Latency) validate() error {
	if l.HDR == "" {
		if l.Count != 0 {
			return fmt.Errorf("count %d but no hdr", l.Count)
		}
		return nil
	}
	p, err := hdrhistogram.DecodePacked([]byte(l.HDR))
	if err != nil {
		return fmt.Errorf("decoding hdr: %w", err)
	}
	if p.TotalCount() != l.Count {
		return fmt.Errorf("hdr holds %d samples but count is %d", p.TotalCount(), l.Count)
	}
	return nil
}

// maxResultBytes bounds what DecodeResult reads: a real result is a few MB
// at most (a timeline point is ~200 bytes, a histogram a few KB).
const maxResultBytes = 256 << 20

// DecodeResult reads one Result from r. It refuses a document whose schema is
// not Schema, and checks every latency's hdr decodes and matches its count,
// so a Result it returns can be reported and merged. It never panics on bad
// input.
func DecodeResult(r io.Reader) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResultBytes+1))
	if err != nil {
		return nil, fmt.Errorf("stats: reading result: %w", err)
	}
	if len(data) > maxResultBytes {
		return nil, fmt.Errorf("stats: result larger than %d bytes", maxResultBytes)
	}
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("stats: decoding result: %w", err)
	}
	switch {
	case probe.Schema == nil:
		return nil, errors.New("stats: not a wsload result: no \"schema\" field")
	case *probe.Schema != Schema:
		return nil, fmt.Errorf("stats: unsupported result schema %q (this wsload reads %q)", *probe.Schema, Schema)
	}
	res := new(Result)
	if err := json.Unmarshal(data, res); err != nil {
		return nil, fmt.Errorf("stats: decoding result: %w", err)
	}
	if err := res.validate(); err != nil {
		return nil, fmt.Errorf("stats: invalid result: %w", err)
	}
	return res, nil
}

func (r *Result) validate() error {
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"connections.requested", r.Connections.Requested},
		{"connections.attempted", r.Connections.Attempted},
		{"connections.not_started", r.Connections.NotStarted},
		{"connections.established", r.Connections.Established},
		{"connections.failed", r.Connections.Failed},
		{"connections.closed", r.Connections.Closed},
		{"connections.peak_open", r.Connections.PeakOpen},
		{"messages.sent", r.Messages.Sent},
		{"messages.received", r.Messages.Received},
		{"messages.timed_out", r.Messages.TimedOut},
		{"messages.in_flight", r.Messages.InFlight},
		{"messages.unmatched", r.Messages.Unmatched},
		{"messages.duplicate", r.Messages.Duplicate},
		{"messages.late", r.Messages.Late},
		{"messages.corrupt", r.Messages.Corrupt},
		{"messages.bytes_sent", r.Messages.BytesSent},
		{"messages.bytes_received", r.Messages.BytesReceived},
	} {
		if c.v < 0 {
			return fmt.Errorf("%s is negative (%d)", c.name, c.v)
		}
	}
	if r.DurationS < 0 {
		return fmt.Errorf("duration_s is negative (%g)", r.DurationS)
	}
	for _, l := range []struct {
		name string
		l    *Latency
	}{
		{"handshake", &r.Latency.Handshake},
		{"rtt", &r.Latency.RTT},
		{"rtt_uncorrected", &r.Latency.RTTUncorrected},
		{"send_lag", &r.Latency.SendLag},
	} {
		if err := l.l.validate(); err != nil {
			return fmt.Errorf("latency.%s: %w", l.name, err)
		}
	}
	if w := r.Latency.HandshakeWait; w != nil {
		if err := w.validate(); err != nil {
			return fmt.Errorf("latency.handshake_wait: %w", err)
		}
	}
	for name, s := range r.Latency.Steps {
		if err := s.Corrected.validate(); err != nil {
			return fmt.Errorf("latency.steps[%q].corrected: %w", name, err)
		}
		if err := s.Uncorrected.validate(); err != nil {
			return fmt.Errorf("latency.steps[%q].uncorrected: %w", name, err)
		}
		if s.SendLag != nil {
			if err := s.SendLag.validate(); err != nil {
				return fmt.Errorf("latency.steps[%q].send_lag: %w", name, err)
			}
		}
		if s.Count < 0 || s.Sent < 0 || s.Late < 0 || s.Late > s.Sent || s.Timeouts < 0 || s.Errors < 0 {
			return fmt.Errorf("latency.steps[%q]: bad counters (count %d, sent %d, late %d, timeouts %d, errors %d)", name, s.Count, s.Sent, s.Late, s.Timeouts, s.Errors)
		}
	}
	return r.validateBackends()
}

// EncodeResult writes r as indented JSON followed by a newline.
func EncodeResult(w io.Writer, r *Result) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("stats: encoding result: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("stats: writing result: %w", err)
	}
	return nil
}

// WriteJSONFile writes r to path through atomicfile: a regular file is replaced atomically
// (temporary file, sync, rename), so a reader or a crash never sees half a result; a symlink is
// followed; a device or FIFO is written through, never replaced.
func WriteJSONFile(path string, r *Result) error {
	var buf bytes.Buffer
	if err := EncodeResult(&buf, r); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("stats: result: %w", err)
	}
	return nil
}

// ReadResultFile reads and decodes the Result at path.
func ReadResultFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer f.Close()
	r, err := DecodeResult(f)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return r, nil
}
