package stats

import (
	"maps"
	"slices"
	"time"
)

// Header is what the caller knows about a run that the Intervals do not:
// identity, configuration and the generator's resource use.
type Header struct {
	Version  string        // wsload version
	Target   string        // target URL; credentials and secret query values are redacted in the Result
	Start    time.Time     // when the run started; zero = the Aggregate's start
	Duration time.Duration // measured duration; zero = up to the last Interval's end
	// Load is the load window: from the start until the run stopped sending on
	// schedule (its duration was over, it was interrupted, or every connection
	// was gone). Rates are over it, not over the drain and the close that
	// follow. Zero = the whole duration.
	Load time.Duration
	// Drain and Close are how long the run then waited for outstanding replies
	// and for the close handshakes; zero when not measured.
	Drain, Close time.Duration
	Config       Config
	Generator    Generator // CPU, RSS and GOMAXPROCS; the rest is computed
}

// Point is one timeline entry: the counts of one Interval. T is the
// interval's end in seconds since the run's start and LenS its length, so
// rates are Count/LenS even for the last, usually shorter, interval.
type Point struct {
	T           float64 `json:"t"`
	LenS        float64 `json:"len_s"`
	Open        int64   `json:"open"` // gauge at the interval's end
	Established int64   `json:"established"`
	Failed      int64   `json:"failed"`
	Closed      int64   `json:"closed"`
	Sent        int64   `json:"sent"`
	Received    int64   `json:"received"`
	RTTP50US    int64   `json:"rtt_p50_us"` // corrected RTT
	RTTP99US    int64   `json:"rtt_p99_us"`
	Errors      int64   `json:"errors"` // connection failures and runtime errors
	TimedOut    int64   `json:"timed_out"`
}

// Aggregate folds Intervals, in time order, into run totals and a timeline.
// It keeps one merged Interval and a small Point per Interval, never the
// Intervals themselves. It is not safe for concurrent use.
type Aggregate struct {
	start    time.Time
	total    *Interval
	peak     int64     // highest open gauge
	open     int64     // open gauge at last
	last     time.Time // latest interval end
	timeline []Point
	ends     endLevels // per-backend open gauges at the end (OpenAtEnd)
}

// NewAggregate returns an empty Aggregate for a run that started at start.
func NewAggregate(start time.Time) *Aggregate {
	return &Aggregate{start: start, total: NewInterval(start, start), last: start}
}

// Add folds iv into the totals and appends its timeline point. To combine
// processes, Merge their Intervals for the same second first, then Add.
func (a *Aggregate) Add(iv *Interval) {
	peaks := a.backendPeaks()
	a.total.Merge(iv)
	a.aggregateBackends(peaks, iv, !iv.End.Before(a.last))
	// Merge adds gauges, which is right for one second from many processes
	// but not across time: over a run, open is the latest level and the
	// peak the highest.
	a.peak = max(a.peak, iv.PeakOpen, iv.Open)
	a.total.PeakOpen = a.peak
	if !iv.End.Before(a.last) {
		a.last = iv.End
		a.open = iv.Open
		a.ends.add(iv)
	}
	a.total.Open = a.open
	a.timeline = append(a.timeline, Point{
		T:           iv.End.Sub(a.start).Seconds(),
		LenS:        iv.Len().Seconds(),
		Open:        iv.Open,
		Established: iv.Established,
		Failed:      iv.Failed,
		Closed:      iv.Closed,
		Sent:        iv.Sent,
		Received:    iv.Received,
		RTTP50US:    Quantile(iv.RTT, 50),
		RTTP99US:    Quantile(iv.RTT, 99),
		Errors:      iv.ErrorCount(),
		TimedOut:    iv.TimedOut,
	})
}

// Total returns the merged Interval of everything added so far. It is owned
// by the Aggregate: read it, do not keep it across Add.
func (a *Aggregate) Total() *Interval { return a.total }

// Result builds the run's Result: totals, latencies, timeline, the
// generator's CPU per message and Diagnose's warnings. Header values and the
// target are redacted again here, so a caller's slip cannot leak a secret
// into a report. It can be called more than once.
func (a *Aggregate) Result(h Header) *Result {
	t := a.total
	start := h.Start
	if start.IsZero() {
		start = a.start
	}
	dur := h.Duration.Seconds()
	if h.Duration <= 0 {
		dur = a.last.Sub(a.start).Seconds()
	}
	r := &Result{
		Schema:     Schema,
		Tool:       Tool,
		Version:    h.Version,
		Target:     RedactURL(h.Target),
		Start:      start.UTC(),
		DurationS:  dur,
		Config:     h.Config,
		CloseCodes: nonNilMap(t.CloseCodes),
		Errors:     nonNilMap(t.Errors),
		Generator:  h.Generator,
		Timeline:   slices.Clone(a.timeline),
	}
	load := dur
	if h.Load > 0 {
		load = min(h.Load.Seconds(), dur)
		r.LoadS, r.DrainS, r.CloseS = load, h.Drain.Seconds(), h.Close.Seconds()
	}
	r.Connections, r.Messages = t.counts(a.peak, load)
	if r.Timeline == nil {
		r.Timeline = []Point{}
	}
	r.Config.Headers = redactMap(h.Config.Headers)
	r.Config.SourceIPs = nonNilSlice(h.Config.SourceIPs)
	r.Config.Subprotocols = nonNilSlice(h.Config.Subprotocols)

	// Encoding into memory cannot fail in practice; should it, the summary
	// numbers are still right and the warning says why hdr is missing.
	var warnings []string
	set := func(dst *Latency, name string, l Latency, err error) {
		*dst = l
		if err != nil {
			warnings = append(warnings, name+": "+err.Error())
		}
	}
	l, err := NewLatency(t.Handshake)
	set(&r.Latency.Handshake, "handshake", l, err)
	l, err = NewLatency(t.RTT)
	set(&r.Latency.RTT, "rtt", l, err)
	l, err = NewLatency(t.RTTUncorrected)
	set(&r.Latency.RTTUncorrected, "rtt_uncorrected", l, err)
	l, err = NewLatency(t.SendLag)
	set(&r.Latency.SendLag, "send_lag", l, err)
	if count(t.HandshakeWait) > 0 {
		r.Latency.HandshakeWait = new(Latency)
		l, err = NewLatency(t.HandshakeWait)
		set(r.Latency.HandshakeWait, "handshake_wait", l, err)
	}
	r.Latency.Steps = make(map[string]StepLatency, len(t.Steps))
	for _, name := range slices.Sorted(maps.Keys(t.Steps)) {
		sl, errs := newStepLatency(t.Steps[name])
		for _, err := range errs {
			warnings = append(warnings, "step "+name+": "+err.Error())
		}
		r.Latency.Steps[name] = sl
	}

	r.Backends, r.BackendSpread = backendResults(t, func(name string, err error) {
		warnings = append(warnings, name+": "+err.Error())
	})
	setOpenAtEnd(r.Backends, r.BackendSpread, a.ends.levels())
	r.Recovery = ComputeRecovery(r)

	g := &r.Generator
	g.Clamped = t.Clamped
	cpuUS := (g.CPUUserS + g.CPUSysS) * 1e6
	switch {
	case t.Received > 0:
		g.CPUPerMsgUS = cpuUS / float64(t.Received)
	case t.Sent > 0:
		g.CPUPerMsgUS = cpuUS / float64(t.Sent)
	default:
		g.CPUPerMsgUS = 0
	}
	g.Warnings = append(r.Diagnose(), warnings...)
	if g.Warnings == nil {
		g.Warnings = []string{} // [] in the JSON, as documented, never null
	}
	return r
}

func nonNilMap[K comparable](m map[K]int64) map[K]int64 {
	if m == nil {
		return map[K]int64{}
	}
	return maps.Clone(m)
}

func nonNilSlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// counts is what a Result says of the totals t: connection and message
// counts, with rates over dur seconds and the given peak of open
// connections.
func (t *Interval) counts(peak int64, dur float64) (Connections, Messages) {
	c := Connections{
		Requested:      t.Requested,
		Attempted:      t.Attempted,
		Established:    t.Established,
		Failed:         t.Failed,
		NotStarted:     t.NotStarted,
		Closed:         t.Closed,
		PeakOpen:       peak,
		FailedByReason: nonNilMap(t.ConnFailures),
	}
	m := Messages{
		Sent:          t.Sent,
		Received:      t.Received,
		TimedOut:      t.TimedOut,
		InFlight:      t.InFlight,
		Unmatched:     t.Unmatched,
		Duplicate:     t.Duplicate,
		Late:          t.Late,
		Corrupt:       t.Corrupt,
		BytesSent:     t.BytesSent,
		BytesReceived: t.BytesReceived,
	}
	if dur > 0 {
		m.SentPerS = float64(t.Sent) / dur
		m.ReceivedPerS = float64(t.Received) / dur
	}
	return c, m
}
