package stats

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// StepHists holds one named scenario step's latencies and counters:
// Corrected from the step's scheduled start, Uncorrected from its actual
// start (expects, pings, reconnects, replays), and for send steps what went
// out and how far behind its schedule.
type StepHists struct {
	Corrected   *hdrhistogram.Histogram
	Uncorrected *hdrhistogram.Histogram

	Sent     int64 // messages the step wrote
	Late     int64 // of those, sent more than LateSend after their scheduled time
	TimedOut int64 // expects or pings that ended without their message or pong
	Errors   int64 // writes that failed
	// SendLag holds the step's send lags (actual - scheduled send time); nil
	// until the step sends, so steps that never send carry no third histogram.
	SendLag *hdrhistogram.Histogram
}

// LateSend is the lag after which a scenario send counts as late (StepHists.Late):
// the sender's wake-up precision, so a late send is the generator falling behind,
// not timer noise.
const LateSend = time.Millisecond

func newStepHists() *StepHists {
	return &StepHists{Corrected: NewHistogram(), Uncorrected: NewHistogram()}
}

// idle reports whether s recorded nothing (a step seen earlier by a shard
// but not in this interval).
func (s *StepHists) idle() bool {
	return s == nil || (count(s.Corrected) == 0 && count(s.Uncorrected) == 0 && count(s.SendLag) == 0 &&
		s.Sent == 0 && s.TimedOut == 0 && s.Errors == 0)
}

// add adds o into s and returns the samples clamped on the way.
func (s *StepHists) add(o *StepHists) (clamped int64) {
	clamped += mergeInto(&s.Corrected, o.Corrected)
	clamped += mergeInto(&s.Uncorrected, o.Uncorrected)
	if count(o.SendLag) > 0 {
		clamped += mergeInto(&s.SendLag, o.SendLag)
	}
	s.Sent += o.Sent
	s.Late += o.Late
	s.TimedOut += o.TimedOut
	s.Errors += o.Errors
	return clamped
}

func (s *StepHists) reset() {
	s.Corrected.Reset()
	s.Uncorrected.Reset()
	if s.SendLag != nil {
		s.SendLag.Reset()
	}
	s.Sent, s.Late, s.TimedOut, s.Errors = 0, 0, 0, 0
}

// Interval is one interval (normally one second) of counters and histograms:
// the unit the Recorder produces, that is streamed, and that is merged across
// processes and machines with Merge.
//
// Counters count events that happened in [Start, End). Open and PeakOpen are
// gauges: connections open at End, and the most open at any moment of the
// interval.
type Interval struct {
	Start, End time.Time

	// Requested counts the connections the run asked for (an echo run
	// records its whole -c at the start; a scenario run every dial its
	// controller or a reconnect asks for). Each ends in exactly one of
	// Attempted (then Established or Failed) and NotStarted: over a run,
	// Requested = Attempted + NotStarted.
	Requested   int64
	Attempted   int64 // connection attempts started
	Established int64 // handshakes completed
	Failed      int64 // connection attempts that failed (ConnFailed)
	NotStarted  int64 // requested connections never dialed: the run ended (or the ramp stopped) first
	Closed      int64 // established connections that closed

	Sent          int64 // messages sent
	Received      int64 // messages received
	BytesSent     int64
	BytesReceived int64
	TimedOut      int64 // messages whose reply did not arrive within the reply timeout
	InFlight      int64 // messages still waiting for their reply, within the timeout, when the run was interrupted
	Unmatched     int64 // received messages that matched no message sent (pushes, other ids)

	// Replies beside Received, never inside it: a reply to a message already
	// answered (Duplicate), one arriving after its message timed out (Late),
	// and an echo whose id matched but whose length, frame type or content
	// did not (Corrupt; its message stays outstanding).
	Duplicate int64
	Late      int64
	Corrupt   int64

	// Clamped counts latency samples above HighestUS, recorded at HighestUS.
	Clamped int64

	Open     int64
	PeakOpen int64

	// Errors counts connection failures and runtime errors by reason, both
	// together. ConnFailures is the subset that were connection failures
	// (ConnFailed): it sums to Failed.
	Errors       map[string]int64
	ConnFailures map[string]int64
	CloseCodes   map[int]int64 // WebSocket close code -> count; 1006 = abnormal

	Handshake      *hdrhistogram.Histogram
	RTT            *hdrhistogram.Histogram // from the scheduled send time (corrected)
	RTTUncorrected *hdrhistogram.Histogram // from the actual send time
	SendLag        *hdrhistogram.Histogram // actual - scheduled send time
	// HandshakeWait is the time from a connection being due (its place in
	// the ramp, or the scenario asking for it) to its dial starting: the wait
	// for a handshake slot (Config.HandshakeConcurrency). Handshake starts
	// where it ends. Nil until a connection is dialed, so shards that never
	// dial carry no fifth histogram.
	HandshakeWait *hdrhistogram.Histogram
	Steps         map[string]*StepHists

	// Backends is the per-backend breakdown by backend name (backend.go);
	// nil when the run does not tell backends apart.
	Backends map[string]*BackendInterval
	bk       []*shardBackend // a shard's per-backend slots, by Backend index
}

// NewInterval returns an empty Interval covering [start, end) with all its
// maps and histograms allocated.
func NewInterval(start, end time.Time) *Interval {
	return &Interval{
		Start:          start,
		End:            end,
		Errors:         map[string]int64{},
		ConnFailures:   map[string]int64{},
		CloseCodes:     map[int]int64{},
		Handshake:      NewHistogram(),
		RTT:            NewHistogram(),
		RTTUncorrected: NewHistogram(),
		SendLag:        NewHistogram(),
		Steps:          map[string]*StepHists{},
	}
}

// Len is the interval's length, End - Start.
func (iv *Interval) Len() time.Duration { return iv.End.Sub(iv.Start) }

// ErrorCount is the number of errors of every reason in the interval.
func (iv *Interval) ErrorCount() int64 {
	var n int64
	for _, c := range iv.Errors {
		n += c
	}
	return n
}

// Merge adds o into iv. Counters, maps and histograms add up exactly; the
// time span becomes the union of both; the gauges Open and PeakOpen add up,
// which is exact for Open when both describe the same moment (intervals of
// different processes for the same second) and an upper bound for PeakOpen.
// iv must have been made by NewInterval (or Rotate); o is not modified.
func (iv *Interval) Merge(o *Interval) {
	if o == nil {
		return
	}
	if iv.Start.IsZero() || (!o.Start.IsZero() && o.Start.Before(iv.Start)) {
		iv.Start = o.Start
	}
	if o.End.After(iv.End) {
		iv.End = o.End
	}
	iv.Requested += o.Requested
	iv.Attempted += o.Attempted
	iv.Established += o.Established
	iv.Failed += o.Failed
	iv.NotStarted += o.NotStarted
	iv.Closed += o.Closed
	iv.Sent += o.Sent
	iv.Received += o.Received
	iv.BytesSent += o.BytesSent
	iv.BytesReceived += o.BytesReceived
	iv.TimedOut += o.TimedOut
	iv.InFlight += o.InFlight
	iv.Unmatched += o.Unmatched
	iv.Duplicate += o.Duplicate
	iv.Late += o.Late
	iv.Corrupt += o.Corrupt
	iv.Clamped += o.Clamped
	iv.Open += o.Open
	iv.PeakOpen += o.PeakOpen

	iv.Errors = addCounts(iv.Errors, o.Errors)
	iv.ConnFailures = addCounts(iv.ConnFailures, o.ConnFailures)
	iv.CloseCodes = addCounts(iv.CloseCodes, o.CloseCodes)

	iv.Clamped += mergeInto(&iv.Handshake, o.Handshake)
	iv.Clamped += mergeInto(&iv.RTT, o.RTT)
	iv.Clamped += mergeInto(&iv.RTTUncorrected, o.RTTUncorrected)
	iv.Clamped += mergeInto(&iv.SendLag, o.SendLag)
	if count(o.HandshakeWait) > 0 {
		iv.Clamped += mergeInto(&iv.HandshakeWait, o.HandshakeWait)
	}
	for name, s := range o.Steps {
		if s.idle() {
			continue // a step seen earlier by a shard but idle this interval
		}
		if iv.Steps == nil {
			iv.Steps = map[string]*StepHists{}
		}
		d := iv.Steps[name]
		if d == nil {
			d = newStepHists()
			iv.Steps[name] = d
		}
		iv.Clamped += d.add(s)
	}
	iv.mergeBackends(o)
}

// reset empties iv for reuse by a shard, keeping its maps' storage and its
// step histograms so that recording stays allocation-free.
func (iv *Interval) reset() {
	maps, hists := iv.Errors, [4]*hdrhistogram.Histogram{iv.Handshake, iv.RTT, iv.RTTUncorrected, iv.SendLag}
	conn, codes, steps := iv.ConnFailures, iv.CloseCodes, iv.Steps
	backends, bk, wait := iv.Backends, iv.bk, iv.HandshakeWait
	*iv = Interval{Errors: maps, ConnFailures: conn, CloseCodes: codes, Steps: steps,
		Handshake: hists[0], RTT: hists[1], RTTUncorrected: hists[2], SendLag: hists[3],
		HandshakeWait: wait, Backends: backends, bk: bk}
	if wait != nil {
		wait.Reset()
	}
	iv.resetBackends()
	clear(iv.Errors)
	clear(iv.ConnFailures)
	clear(iv.CloseCodes)
	for _, h := range hists {
		h.Reset()
	}
	for _, s := range iv.Steps {
		s.reset()
	}
}

func count(h *hdrhistogram.Histogram) int64 {
	if h == nil {
		return 0
	}
	return h.TotalCount()
}

func mergeInto(dst **hdrhistogram.Histogram, src *hdrhistogram.Histogram) (clamped int64) {
	if *dst == nil {
		*dst = NewHistogram()
	}
	return mergeHist(*dst, src)
}

func addCounts[K comparable](dst, src map[K]int64) map[K]int64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[K]int64, len(src))
	}
	for k, c := range src {
		if c != 0 {
			dst[k] += c
		}
	}
	return dst
}
