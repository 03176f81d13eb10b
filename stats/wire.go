package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// WireVersion is the version of the Interval line encoding. A decoder refuses
// other versions: a parent and its workers are the same binary, so a mismatch
// means something other than a worker is writing.
const WireVersion = 1

// MaxWireLine bounds one encoded Interval. A real one is a few KB (a
// compressed histogram holds only its populated buckets); the bound keeps a
// corrupt stream from growing a reader's buffer without limit.
const MaxWireLine = 16 << 20

// maxWireSteps bounds the named steps of one decoded Interval: each costs two
// dense histograms (~370 KB), so a hostile line must not be able to ask for
// thousands.
const maxWireSteps = 64

// wireInterval is the JSON form of an Interval on one line: times as Unix
// nanoseconds (exact, and aligned across processes by wall clock), counters,
// maps, and histograms in HdrHistogram's V2 compressed base64 encoding, the
// same as a Result's "hdr", so a merge of decoded Intervals is exact. Empty
// histograms and zero counters are left out.
type wireInterval struct {
	V       int   `json:"wsload_interval"`
	StartNS int64 `json:"start_ns"`
	EndNS   int64 `json:"end_ns"`

	Requested     int64 `json:"requested,omitempty"`
	Attempted     int64 `json:"attempted,omitempty"`
	Established   int64 `json:"established,omitempty"`
	Failed        int64 `json:"failed,omitempty"`
	NotStarted    int64 `json:"not_started,omitempty"`
	Closed        int64 `json:"closed,omitempty"`
	Sent          int64 `json:"sent,omitempty"`
	Received      int64 `json:"received,omitempty"`
	BytesSent     int64 `json:"bytes_sent,omitempty"`
	BytesReceived int64 `json:"bytes_received,omitempty"`
	TimedOut      int64 `json:"timed_out,omitempty"`
	InFlight      int64 `json:"in_flight,omitempty"`
	Unmatched     int64 `json:"unmatched,omitempty"`
	Duplicate     int64 `json:"duplicate,omitempty"`
	Late          int64 `json:"late,omitempty"`
	Corrupt       int64 `json:"corrupt,omitempty"`
	Clamped       int64 `json:"clamped,omitempty"`
	Open          int64 `json:"open,omitempty"`
	PeakOpen      int64 `json:"peak_open,omitempty"`

	Errors       map[string]int64 `json:"errors,omitempty"`
	ConnFailures map[string]int64 `json:"conn_failures,omitempty"`
	CloseCodes   map[int]int64    `json:"close_codes,omitempty"`

	Handshake      string              `json:"handshake,omitempty"`
	RTT            string              `json:"rtt,omitempty"`
	RTTUncorrected string              `json:"rtt_uncorrected,omitempty"`
	SendLag        string              `json:"send_lag,omitempty"`
	HandshakeWait  string              `json:"handshake_wait,omitempty"`
	Steps          map[string]wireStep `json:"steps,omitempty"`

	Backends map[string]wireBackend `json:"backends,omitempty"` // backend.go
}

type wireStep struct {
	Corrected   string `json:"corrected,omitempty"`
	Uncorrected string `json:"uncorrected,omitempty"`
	SendLag     string `json:"send_lag,omitempty"`
	Sent        int64  `json:"sent,omitempty"`
	Late        int64  `json:"late,omitempty"`
	TimedOut    int64  `json:"timed_out,omitempty"`
	Errors      int64  `json:"errors,omitempty"`
}

// EncodeInterval writes iv to w as one line of JSON (no newline inside, one
// at the end): the stream a worker process sends its parent, one line per
// second. DecodeInterval reads it back; counters, maps and histograms survive
// exactly, times to the nanosecond (without monotonic clock readings).
func EncodeInterval(w io.Writer, iv *Interval) error {
	if iv == nil {
		return errors.New("stats: encoding interval: nil interval")
	}
	wi := wireInterval{
		V:             WireVersion,
		StartNS:       unixNano(iv.Start),
		EndNS:         unixNano(iv.End),
		Requested:     iv.Requested,
		Attempted:     iv.Attempted,
		Established:   iv.Established,
		Failed:        iv.Failed,
		NotStarted:    iv.NotStarted,
		Closed:        iv.Closed,
		Sent:          iv.Sent,
		Received:      iv.Received,
		BytesSent:     iv.BytesSent,
		BytesReceived: iv.BytesReceived,
		TimedOut:      iv.TimedOut,
		InFlight:      iv.InFlight,
		Unmatched:     iv.Unmatched,
		Duplicate:     iv.Duplicate,
		Late:          iv.Late,
		Corrupt:       iv.Corrupt,
		Clamped:       iv.Clamped,
		Open:          iv.Open,
		PeakOpen:      iv.PeakOpen,
		Errors:        nonZero(iv.Errors),
		ConnFailures:  nonZero(iv.ConnFailures),
		CloseCodes:    nonZero(iv.CloseCodes),
	}
	var err error
	for _, h := range []struct {
		dst *string
		h   *hdrhistogram.Histogram
	}{
		{&wi.Handshake, iv.Handshake},
		{&wi.RTT, iv.RTT},
		{&wi.RTTUncorrected, iv.RTTUncorrected},
		{&wi.SendLag, iv.SendLag},
		{&wi.HandshakeWait, iv.HandshakeWait},
	} {
		if *h.dst, err = encodeHist(h.h); err != nil {
			return err
		}
	}
	for name, s := range iv.Steps {
		if s.idle() {
			continue
		}
		ws := wireStep{Sent: s.Sent, Late: s.Late, TimedOut: s.TimedOut, Errors: s.Errors}
		if ws.Corrected, err = encodeHist(s.Corrected); err != nil {
			return err
		}
		if ws.Uncorrected, err = encodeHist(s.Uncorrected); err != nil {
			return err
		}
		if count(s.SendLag) > 0 {
			if ws.SendLag, err = encodeHist(s.SendLag); err != nil {
				return err
			}
		}
		if wi.Steps == nil {
			wi.Steps = map[string]wireStep{}
		}
		wi.Steps[name] = ws
	}
	if wi.Backends, err = encodeBackends(iv.Backends); err != nil {
		return err
	}
	b, err := json.Marshal(&wi)
	if err != nil {
		return fmt.Errorf("stats: encoding interval: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("stats: writing interval: %w", err)
	}
	return nil
}

// DecodeInterval parses one line written by EncodeInterval (a trailing
// newline is allowed). The result is a complete Interval as NewInterval makes
// it: every map and histogram allocated, ready to Merge. It refuses negative
// counters, an end before the start, histograms that are not in wsload's
// geometry (they could not merge exactly) and lines over MaxWireLine, and
// never panics on bad input.
func DecodeInterval(line []byte) (*Interval, error) {
	if len(line) > MaxWireLine {
		return nil, fmt.Errorf("stats: interval line of %d bytes is over the %d-byte limit", len(line), MaxWireLine)
	}
	var wi wireInterval
	if err := json.Unmarshal(line, &wi); err != nil {
		return nil, fmt.Errorf("stats: decoding interval: %w", err)
	}
	if wi.V != WireVersion {
		return nil, fmt.Errorf("stats: decoding interval: wire version %d, want %d (is the line from this wsload?)", wi.V, WireVersion)
	}
	if wi.EndNS < wi.StartNS {
		return nil, fmt.Errorf("stats: decoding interval: ends (%d ns) before it starts (%d ns)", wi.EndNS, wi.StartNS)
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"requested", wi.Requested}, {"attempted", wi.Attempted}, {"established", wi.Established},
		{"failed", wi.Failed}, {"not_started", wi.NotStarted},
		{"closed", wi.Closed}, {"sent", wi.Sent}, {"received", wi.Received},
		{"bytes_sent", wi.BytesSent}, {"bytes_received", wi.BytesReceived},
		{"timed_out", wi.TimedOut}, {"unmatched", wi.Unmatched}, {"clamped", wi.Clamped},
		{"in_flight", wi.InFlight}, {"duplicate", wi.Duplicate}, {"late", wi.Late}, {"corrupt", wi.Corrupt},
		{"open", wi.Open}, {"peak_open", wi.PeakOpen},
	} {
		if c.v < 0 {
			return nil, fmt.Errorf("stats: decoding interval: %s is negative (%d)", c.name, c.v)
		}
	}
	if err := checkCounts("errors", wi.Errors); err != nil {
		return nil, err
	}
	if err := checkCounts("conn_failures", wi.ConnFailures); err != nil {
		return nil, err
	}
	if err := checkCounts("close_codes", wi.CloseCodes); err != nil {
		return nil, err
	}
	if len(wi.Steps) > maxWireSteps {
		return nil, fmt.Errorf("stats: decoding interval: %d steps, at most %d", len(wi.Steps), maxWireSteps)
	}

	iv := NewInterval(fromUnixNano(wi.StartNS), fromUnixNano(wi.EndNS))
	iv.Attempted, iv.Established, iv.Failed, iv.Closed = wi.Attempted, wi.Established, wi.Failed, wi.Closed
	iv.Requested, iv.NotStarted = wi.Requested, wi.NotStarted
	iv.Sent, iv.Received, iv.BytesSent, iv.BytesReceived = wi.Sent, wi.Received, wi.BytesSent, wi.BytesReceived
	iv.TimedOut, iv.Unmatched, iv.Clamped = wi.TimedOut, wi.Unmatched, wi.Clamped
	iv.InFlight, iv.Duplicate, iv.Late, iv.Corrupt = wi.InFlight, wi.Duplicate, wi.Late, wi.Corrupt
	iv.Open, iv.PeakOpen = wi.Open, wi.PeakOpen
	iv.Errors = addCounts(iv.Errors, wi.Errors)
	iv.ConnFailures = addCounts(iv.ConnFailures, wi.ConnFailures)
	iv.CloseCodes = addCounts(iv.CloseCodes, wi.CloseCodes)
	for _, h := range []struct {
		name string
		src  string
		dst  *hdrhistogram.Histogram
	}{
		{"handshake", wi.Handshake, iv.Handshake},
		{"rtt", wi.RTT, iv.RTT},
		{"rtt_uncorrected", wi.RTTUncorrected, iv.RTTUncorrected},
		{"send_lag", wi.SendLag, iv.SendLag},
	} {
		if err := decodeHistInto(h.dst, h.src); err != nil {
			return nil, fmt.Errorf("stats: decoding interval: %s: %w", h.name, err)
		}
	}
	if wi.HandshakeWait != "" {
		iv.HandshakeWait = NewHistogram()
		if err := decodeHistInto(iv.HandshakeWait, wi.HandshakeWait); err != nil {
			return nil, fmt.Errorf("stats: decoding interval: handshake_wait: %w", err)
		}
	}
	for name, ws := range wi.Steps {
		s := newStepHists()
		if err := decodeHistInto(s.Corrected, ws.Corrected); err != nil {
			return nil, fmt.Errorf("stats: decoding interval: step %q corrected: %w", name, err)
		}
		if err := decodeHistInto(s.Uncorrected, ws.Uncorrected); err != nil {
			return nil, fmt.Errorf("stats: decoding interval: step %q uncorrected: %w", name, err)
		}
		if ws.SendLag != "" {
			s.SendLag = NewHistogram()
			if err := decodeHistInto(s.SendLag, ws.SendLag); err != nil {
				return nil, fmt.Errorf("stats: decoding interval: step %q send_lag: %w", name, err)
			}
		}
		if ws.Sent < 0 || ws.Late < 0 || ws.Late > ws.Sent || ws.TimedOut < 0 || ws.Errors < 0 {
			return nil, fmt.Errorf("stats: decoding interval: step %q: bad counters (sent %d, late %d, timed out %d, errors %d)", name, ws.Sent, ws.Late, ws.TimedOut, ws.Errors)
		}
		s.Sent, s.Late, s.TimedOut, s.Errors = ws.Sent, ws.Late, ws.TimedOut, ws.Errors
		iv.Steps[name] = s
	}
	if err := decodeBackends(iv, wi.Backends); err != nil {
		return nil, err
	}
	return iv, nil
}

// unixNano and fromUnixNano map the zero Time to 0 and back, so an Interval
// without times round-trips as one.
func fromUnixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nonZero[K comparable](m map[K]int64) map[K]int64 {
	var out map[K]int64
	for k, c := range m {
		if c != 0 {
			if out == nil {
				out = make(map[K]int64, len(m))
			}
			out[k] = c
		}
	}
	return out
}

func checkCounts[K comparable](name string, m map[K]int64) error {
	for k, c := range m {
		if c < 0 {
			return fmt.Errorf("stats: decoding interval: %s[%v] is negative (%d)", name, k, c)
		}
	}
	return nil
}

func encodeHist(h *hdrhistogram.Histogram) (string, error) {
	if count(h) == 0 {
		return "", nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("stats: encoding interval histogram: %w", err)
	}
	return string(b), nil
}

// decodeHistInto adds the encoded histogram s (empty = no samples) into dst.
// It decodes into the sparse packed form first, whose memory grows with the
// populated buckets only, and checks the geometry before touching a dense
// histogram, so a hostile header cannot make it allocate gigabytes.
func decodeHistInto(dst *hdrhistogram.Histogram, s string) error {
	if s == "" {
		return nil
	}
	p, err := hdrhistogram.DecodePacked([]byte(s))
	if err != nil {
		return err
	}
	if p.LowestTrackableValue() != dst.LowestTrackableValue() ||
		p.HighestTrackableValue() != dst.HighestTrackableValue() ||
		p.SignificantFigures() != dst.SignificantFigures() {
		return fmt.Errorf("histogram geometry %d..%d/%d is not wsload's %d..%d/%d",
			p.LowestTrackableValue(), p.HighestTrackableValue(), p.SignificantFigures(),
			dst.LowestTrackableValue(), dst.HighestTrackableValue(), dst.SignificantFigures())
	}
	if p.TotalCount() < 0 {
		return fmt.Errorf("histogram count %d is negative", p.TotalCount())
	}
	if dropped := p.MergeInto(dst); dropped != 0 {
		return fmt.Errorf("%d samples do not fit the histogram", dropped)
	}
	return nil
}
