package stats

// Per-backend breakdown: which backend behind a balancer served which
// connections, errors and latencies.
//
// The engine resolves a connection's backend once (from a response header of
// the upgrade or from the first message) to a *Backend of the Recorder and
// passes it to the shard methods below; the per-message methods then index a
// slice by the backend's small integer, never hash its name. A nil *Backend
// records only the run-wide figures, so a run without --backend-from pays
// one nil check.
//
//	b := rec.Backend(resp.Header.Get("X-Backend")) // once per connection
//	sh.BackendEstablished(b)
//	sh.ReceivedFor(b, len(payload))
//	sh.RTTFor(b, corrected, uncorrected)
//	sh.BackendClosed(b, 1000)
//
// Results carry the breakdown in "backends" and the spread of connections
// over backends in "backend_spread".

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// UnknownBackend is the name connections are reported under when their
// backend could not be told: failed before any response, no such header, or
// closed before the announcing message.
const UnknownBackend = "(unknown)"

// OtherBackends is the name every backend beyond the first MaxBackends is
// reported under, so a header that carries a per-connection value (a session
// id instead of a backend id) cannot allocate a histogram set per connection.
const OtherBackends = "(other)"

// MaxBackends is the number of distinct backend names a Recorder keeps apart.
const MaxBackends = 256

// Backend is one backend of a Recorder, from Recorder.Backend. Its open gauge
// is shared by all shards (atomics), like the Recorder's own.
type Backend struct {
	name string
	idx  int // index into the shards' per-backend slices

	open atomic.Int64 // established - closed, now
	peak atomic.Int64 // highest open since the last Rotate
	prev int64        // open at the last Rotate; guarded by Recorder.rotateMu
}

// Name is the backend's name as reported: the id the target gave, or
// UnknownBackend or OtherBackends.
func (b *Backend) Name() string { return b.name }

// backendTable maps names to Backends. Lookups take a read lock: the engine
// resolves a connection's backend once, not per message.
type backendTable struct {
	mu     sync.RWMutex
	byName map[string]*Backend
	list   []*Backend // by idx
}

// Backend returns the Backend named name, registering it on first use. An
// empty name is UnknownBackend; names beyond the first MaxBackends distinct
// ones are folded into OtherBackends. Safe for concurrent use.
func (r *Recorder) Backend(name string) *Backend {
	if name == "" {
		name = UnknownBackend
	}
	t := &r.backends
	t.mu.RLock()
	b := t.byName[name]
	t.mu.RUnlock()
	if b != nil {
		return b
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if b := t.byName[name]; b != nil {
		return b
	}
	if len(t.list) >= MaxBackends && name != UnknownBackend {
		if b := t.byName[OtherBackends]; b != nil {
			return b
		}
		name = OtherBackends
	}
	if t.byName == nil {
		t.byName = map[string]*Backend{}
	}
	b = &Backend{name: name, idx: len(t.list)}
	t.byName[name] = b
	t.list = append(t.list, b)
	return b
}

// rotateBackends sets the per-backend gauges of iv, the Interval Rotate is
// building: like the run-wide gauge, the peak is the highest of the starting
// level, every level reached by an establishment and the ending level.
// Called by Rotate with rotateMu held.
func (r *Recorder) rotateBackends(iv *Interval) {
	r.backends.mu.RLock()
	list := slices.Clone(r.backends.list)
	r.backends.mu.RUnlock()
	for _, b := range list {
		peak := b.peak.Swap(0)
		open := b.open.Load()
		peak = max(peak, b.prev, open)
		b.prev = open
		if peak == 0 && iv.Backends[b.name] == nil {
			continue // nothing open and nothing happened this interval
		}
		d := iv.backend(b.name)
		d.Open, d.PeakOpen = open, peak
	}
}

// BackendInterval is one backend's share of an Interval. Counters count
// events in the Interval; Open and PeakOpen are gauges like the Interval's.
type BackendInterval struct {
	Established int64
	Failed      int64
	Closed      int64
	Open        int64
	PeakOpen    int64

	Sent     int64
	Received int64
	TimedOut int64

	Errors     map[string]int64 // connection failures and runtime errors, by reason
	CloseCodes map[int]int64
	RTT        *hdrhistogram.Histogram // corrected RTT; nil until the first sample
}

func (b *BackendInterval) empty() bool {
	return b.Established == 0 && b.Failed == 0 && b.Closed == 0 && b.Open == 0 && b.PeakOpen == 0 &&
		b.Sent == 0 && b.Received == 0 && b.TimedOut == 0 && len(b.Errors) == 0 &&
		len(b.CloseCodes) == 0 && count(b.RTT) == 0
}

// merge adds o into b: counters, maps and histograms add up; so do the
// gauges, as Interval.Merge does. It returns the samples clamped.
func (b *BackendInterval) merge(o *BackendInterval) (clamped int64) {
	b.Established += o.Established
	b.Failed += o.Failed
	b.Closed += o.Closed
	b.Open += o.Open
	b.PeakOpen += o.PeakOpen
	b.Sent += o.Sent
	b.Received += o.Received
	b.TimedOut += o.TimedOut
	b.Errors = addCounts(b.Errors, o.Errors)
	b.CloseCodes = addCounts(b.CloseCodes, o.CloseCodes)
	if count(o.RTT) > 0 {
		clamped = mergeInto(&b.RTT, o.RTT)
	}
	return clamped
}

// reset empties b for reuse by a shard, keeping its storage.
func (b *BackendInterval) reset() {
	errs, codes, rtt := b.Errors, b.CloseCodes, b.RTT
	*b = BackendInterval{Errors: errs, CloseCodes: codes, RTT: rtt}
	clear(b.Errors)
	clear(b.CloseCodes)
	if rtt != nil {
		rtt.Reset()
	}
}

// backend returns iv's entry for name, creating it.
func (iv *Interval) backend(name string) *BackendInterval {
	if iv.Backends == nil {
		iv.Backends = map[string]*BackendInterval{}
	}
	d := iv.Backends[name]
	if d == nil {
		d = &BackendInterval{}
		iv.Backends[name] = d
	}
	return d
}

// mergeBackends adds o's per-backend data into iv.Backends: o's named map
// (an Interval from Rotate or another process) and o's shard slots (a
// shard's Interval, by backend index). Called by Merge.
func (iv *Interval) mergeBackends(o *Interval) {
	for name, b := range o.Backends {
		if b != nil && !b.empty() {
			iv.Clamped += iv.backend(name).merge(b)
		}
	}
	for _, s := range o.bk {
		if s != nil && !s.b.empty() {
			iv.Clamped += iv.backend(s.name).merge(&s.b)
		}
	}
}

// resetBackends empties a shard's per-backend slots, keeping their storage
// (histograms included) so recording stays allocation-free.
func (iv *Interval) resetBackends() {
	for _, s := range iv.bk {
		if s != nil {
			s.b.reset()
		}
	}
	clear(iv.Backends)
}

// shardBackend is a shard's per-backend slot.
type shardBackend struct {
	name string
	b    BackendInterval
}

// slot returns the shard Interval's slot for b, allocating it on first use.
// mu must be held.
func (s *Shard) slot(b *Backend) *BackendInterval {
	cur := s.cur
	if b.idx < len(cur.bk) {
		if sl := cur.bk[b.idx]; sl != nil {
			return &sl.b
		}
	} else {
		cur.bk = append(cur.bk, make([]*shardBackend, b.idx+1-len(cur.bk))...)
	}
	sl := &shardBackend{name: b.name, b: BackendInterval{Errors: map[string]int64{}, CloseCodes: map[int]int64{}}}
	cur.bk[b.idx] = sl
	return &sl.b
}

// BackendEstablished counts an established connection for b and raises b's
// open gauge. Call it once per connection beside ConnEstablished (later,
// when the backend is announced by a message). A nil b does nothing.
func (s *Shard) BackendEstablished(b *Backend) {
	if b == nil {
		return
	}
	open := b.open.Add(1)
	for p := b.peak.Load(); open > p && !b.peak.CompareAndSwap(p, open); p = b.peak.Load() {
	}
	s.mu.Lock()
	s.slot(b).Established++
	s.mu.Unlock()
}

// BackendFailed counts a failed connection attempt for b (beside ConnFailed).
func (s *Shard) BackendFailed(b *Backend, reason string) {
	if b == nil {
		return
	}
	s.mu.Lock()
	sl := s.slot(b)
	sl.Failed++
	sl.Errors[reason]++
	s.mu.Unlock()
}

// BackendClosed counts the close of a connection BackendEstablished counted
// for b, and lowers b's open gauge (beside ConnClosed).
func (s *Shard) BackendClosed(b *Backend, code int) {
	if b == nil {
		return
	}
	b.open.Add(-1)
	s.mu.Lock()
	sl := s.slot(b)
	sl.Closed++
	sl.CloseCodes[code]++
	s.mu.Unlock()
}

// BackendError counts a runtime error for b (beside Error).
func (s *Shard) BackendError(b *Backend, reason string) {
	if b == nil {
		return
	}
	s.mu.Lock()
	s.slot(b).Errors[reason]++
	s.mu.Unlock()
}

// BackendSent adds n messages sent to b, for sends made before b was known
// (they were recorded run-wide by SentFor(nil, ...) at the time).
func (s *Shard) BackendSent(b *Backend, n int64) {
	if b == nil || n == 0 {
		return
	}
	s.mu.Lock()
	s.slot(b).Sent += n
	s.mu.Unlock()
}

// SentFor is Sent, also counted for b, under one lock.
func (s *Shard) SentFor(b *Backend, bytes int, lag time.Duration) {
	s.mu.Lock()
	s.cur.Sent++
	s.cur.BytesSent += int64(bytes)
	if record(s.cur.SendLag, lag) {
		s.cur.Clamped++
	}
	if b != nil {
		s.slot(b).Sent++
	}
	s.mu.Unlock()
}

// ReceivedFor is Received, also counted for b, under one lock.
func (s *Shard) ReceivedFor(b *Backend, bytes int) {
	s.mu.Lock()
	s.cur.Received++
	s.cur.BytesReceived += int64(bytes)
	if b != nil {
		s.slot(b).Received++
	}
	s.mu.Unlock()
}

// ReplyFor counts a matched reply of bytes as received, with its round
// trip (RTTFor), under one lock: ReceivedFor and RTTFor together.
func (s *Shard) ReplyFor(b *Backend, bytes int, corrected, uncorrected time.Duration) {
	s.mu.Lock()
	s.cur.Received++
	s.cur.BytesReceived += int64(bytes)
	var n int64
	if record(s.cur.RTT, corrected) {
		n++
	}
	if record(s.cur.RTTUncorrected, uncorrected) {
		n++
	}
	if b != nil {
		sl := s.slot(b)
		sl.Received++
		if sl.RTT == nil {
			sl.RTT = NewHistogram()
		}
		record(sl.RTT, corrected) // not added to Clamped: the run-wide histogram counted it
	}
	s.cur.Clamped += n
	s.mu.Unlock()
}

// RTTFor is RTT, with the corrected round trip also recorded for b, under
// one lock. b's histogram is allocated with its first sample.
func (s *Shard) RTTFor(b *Backend, corrected, uncorrected time.Duration) {
	s.mu.Lock()
	var n int64
	if record(s.cur.RTT, corrected) {
		n++
	}
	if record(s.cur.RTTUncorrected, uncorrected) {
		n++
	}
	if b != nil {
		sl := s.slot(b)
		if sl.RTT == nil {
			sl.RTT = NewHistogram()
		}
		// Not added to Clamped: the run-wide histogram already counted it.
		record(sl.RTT, corrected)
	}
	s.cur.Clamped += n
	s.mu.Unlock()
}

// TimedOutFor is TimedOut, also counted for b, under one lock.
func (s *Shard) TimedOutFor(b *Backend) {
	s.mu.Lock()
	s.cur.TimedOut++
	if b != nil {
		s.slot(b).TimedOut++
	}
	s.mu.Unlock()
}

// aggregateBackends keeps the per-backend gauges right across time, the way
// Add does for the run-wide ones: Merge added them up, but over a run a
// backend's peak is the highest of its interval peaks and its open count the
// latest level. prev holds each backend's peak before the Merge; latest
// says whether iv is the latest interval so far.
func (a *Aggregate) aggregateBackends(prev map[string]int64, iv *Interval, latest bool) {
	for name, d := range a.total.Backends {
		var peak, open int64
		if b := iv.Backends[name]; b != nil {
			peak, open = max(b.PeakOpen, b.Open), b.Open
		}
		d.PeakOpen = max(prev[name], peak)
		if latest {
			d.Open = open
		} else {
			d.Open -= open // undo Merge's sum: an older interval does not set the level
		}
	}
}

// backendPeaks snapshots each backend's peak in the running total.
func (a *Aggregate) backendPeaks() map[string]int64 {
	if len(a.total.Backends) == 0 {
		return nil
	}
	m := make(map[string]int64, len(a.total.Backends))
	for name, d := range a.total.Backends {
		m[name] = d.PeakOpen
	}
	return m
}

// BackendResult is one backend's part of a Result.
type BackendResult struct {
	Connections BackendConnections `json:"connections"`
	Messages    BackendMessages    `json:"messages"`
	Errors      map[string]int64   `json:"errors"`
	CloseCodes  map[int]int64      `json:"close_codes"`
	RTT         Latency            `json:"rtt"` // corrected RTT of the replies from this backend
}

// BackendConnections are one backend's connection counts.
type BackendConnections struct {
	Established int64 `json:"established"`
	Failed      int64 `json:"failed"`
	Closed      int64 `json:"closed"`
	PeakOpen    int64 `json:"peak_open"`
	// OpenAtEnd is the backend's open connections at the end of the run,
	// before wsload closed its own (see ComputeRecovery).
	OpenAtEnd int64 `json:"open_at_end"`
}

// BackendMessages are one backend's message counts.
type BackendMessages struct {
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
	TimedOut int64 `json:"timed_out"`
}

// Spread says how evenly connections went to backends: over the named
// backends (UnknownBackend and OtherBackends are left out), Max/Min of the
// per-backend figure and its coefficient of variation (population standard
// deviation / mean). MaxMinRatio is null when some backend got none. The
// top-level Spread is By "established"; PeakOpen is the same computed on
// each backend's peak open connections, which shows an imbalance that
// builds up over time (long-lived connections after a backend restart)
// even when the totals look even.
type Spread struct {
	By          string   `json:"by"`
	Backends    int      `json:"backends"`
	Min         int64    `json:"min"`
	Max         int64    `json:"max"`
	MaxMinRatio *float64 `json:"max_min_ratio"`
	CV          float64  `json:"cv"`
	PeakOpen    *Spread  `json:"peak_open,omitempty"`
	// OpenAtEnd is the same on each backend's open connections at the end
	// of the run: where long-lived connections ended up after reconnects.
	OpenAtEnd *Spread `json:"open_at_end,omitempty"`
}

// ComputeSpread returns the Spread of values (one per backend) labelled by.
// It returns nil for no values.
func ComputeSpread(by string, values []int64) *Spread {
	if len(values) == 0 {
		return nil
	}
	s := &Spread{By: by, Backends: len(values), Min: slices.Min(values), Max: slices.Max(values)}
	if s.Min > 0 {
		r := float64(s.Max) / float64(s.Min)
		s.MaxMinRatio = &r
	}
	var sum float64
	for _, v := range values {
		sum += float64(v)
	}
	mean := sum / float64(len(values))
	if mean > 0 {
		var ss float64
		for _, v := range values {
			d := float64(v) - mean
			ss += d * d
		}
		s.CV = math.Sqrt(ss/float64(len(values))) / mean
	}
	return s
}

// backendResults builds Result.Backends and Result.BackendSpread from the
// run's total; nil, nil when the run had no per-backend data.
func backendResults(t *Interval, warn func(name string, err error)) (map[string]BackendResult, *Spread) {
	if len(t.Backends) == 0 {
		return nil, nil
	}
	out := make(map[string]BackendResult, len(t.Backends))
	var est, peak []int64
	for _, name := range slices.Sorted(maps.Keys(t.Backends)) {
		d := t.Backends[name]
		l, err := NewLatency(d.RTT)
		if err != nil {
			warn("backend "+name+" rtt", err)
		}
		out[name] = BackendResult{
			Connections: BackendConnections{Established: d.Established, Failed: d.Failed, Closed: d.Closed, PeakOpen: d.PeakOpen},
			Messages:    BackendMessages{Sent: d.Sent, Received: d.Received, TimedOut: d.TimedOut},
			Errors:      nonNilMap(d.Errors),
			CloseCodes:  nonNilMap(d.CloseCodes),
			RTT:         l,
		}
		if name != UnknownBackend && name != OtherBackends {
			est = append(est, d.Established)
			peak = append(peak, d.PeakOpen)
		}
	}
	s := ComputeSpread("established", est)
	if s != nil {
		s.PeakOpen = ComputeSpread("peak_open", peak)
	}
	return out, s
}

// validateBackends checks each backend's counts and histogram, like validate
// does for the run-wide ones.
func (r *Result) validateBackends() error {
	for name, b := range r.Backends {
		for _, v := range []int64{b.Connections.Established, b.Connections.Failed, b.Connections.Closed,
			b.Connections.PeakOpen, b.Messages.Sent, b.Messages.Received, b.Messages.TimedOut} {
			if v < 0 {
				return fmt.Errorf("backends[%q]: negative count", name)
			}
		}
		if err := b.RTT.validate(); err != nil {
			return fmt.Errorf("backends[%q].rtt: %w", name, err)
		}
	}
	return nil
}

// writeBackends writes the "Backends" section of the text summary: one row
// per backend and the spread.
func writeBackends(b *bytes.Buffer, r *Result) {
	if len(r.Backends) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	by := ""
	if r.Config.BackendFrom != "" {
		by = " (by " + r.Config.BackendFrom + ")"
	}
	p("Backends%s\n", by)
	names := slices.Sorted(maps.Keys(r.Backends))
	width := len("backend")
	for _, n := range names {
		width = max(width, len(n))
	}
	p("  %-*s %11s %7s %7s %9s %11s %9s %9s %9s %7s %9s %9s\n", width, "backend",
		"established", "share", "failed", "peak open", "open at end", "sent", "received", "timed out", "errors", "rtt p50", "rtt p99")
	var total int64
	for _, n := range names {
		total += r.Backends[n].Connections.Established
	}
	for _, n := range names {
		d := r.Backends[n]
		share := "-"
		if total > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(d.Connections.Established)/float64(total))
		}
		var errs int64
		for _, c := range d.Errors {
			errs += c
		}
		p50, p99 := "-", "-"
		if d.RTT.Count > 0 {
			p50, p99 = FormatUS(d.RTT.P50US), FormatUS(d.RTT.P99US)
		}
		p("  %-*s %11d %7s %7d %9d %11d %9d %9d %9d %7d %9s %9s\n", width, n,
			d.Connections.Established, share, d.Connections.Failed, d.Connections.PeakOpen, d.Connections.OpenAtEnd,
			d.Messages.Sent, d.Messages.Received, d.Messages.TimedOut, errs, p50, p99)
	}
	if s := r.BackendSpread; s != nil {
		p("  spread over %d backends: %s", s.Backends, describeSpread(s))
		if s.PeakOpen != nil {
			p("; peak open %s", describeSpread(s.PeakOpen))
		}
		if s.OpenAtEnd != nil {
			p("; open at end %s", describeSpread(s.OpenAtEnd))
		}
		p("\n")
	}
	p("\n")
}

func describeSpread(s *Spread) string {
	ratio := "∞ (a backend got none)"
	if s.MaxMinRatio != nil {
		ratio = fmt.Sprintf("%.2f", *s.MaxMinRatio)
	}
	return fmt.Sprintf("%s max/min %s (%d/%d), cv %.3f", s.By, ratio, s.Max, s.Min, s.CV)
}

// wireBackend is a BackendInterval on the wire (EncodeInterval): counters,
// maps, and the RTT histogram in the same encoding as the run-wide ones.
type wireBackend struct {
	Established int64            `json:"established,omitempty"`
	Failed      int64            `json:"failed,omitempty"`
	Closed      int64            `json:"closed,omitempty"`
	Open        int64            `json:"open,omitempty"`
	PeakOpen    int64            `json:"peak_open,omitempty"`
	Sent        int64            `json:"sent,omitempty"`
	Received    int64            `json:"received,omitempty"`
	TimedOut    int64            `json:"timed_out,omitempty"`
	Errors      map[string]int64 `json:"errors,omitempty"`
	CloseCodes  map[int]int64    `json:"close_codes,omitempty"`
	RTT         string           `json:"rtt,omitempty"`
}

func encodeBackends(m map[string]*BackendInterval) (map[string]wireBackend, error) {
	var out map[string]wireBackend
	for name, b := range m {
		if b == nil || b.empty() {
			continue
		}
		rtt, err := encodeHist(b.RTT)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make(map[string]wireBackend, len(m))
		}
		out[name] = wireBackend{
			Established: b.Established, Failed: b.Failed, Closed: b.Closed, Open: b.Open, PeakOpen: b.PeakOpen,
			Sent: b.Sent, Received: b.Received, TimedOut: b.TimedOut,
			Errors: nonZero(b.Errors), CloseCodes: nonZero(b.CloseCodes), RTT: rtt,
		}
	}
	return out, nil
}

// decodeBackends fills iv.Backends from the wire, with the same checks as
// the run-wide fields; at most MaxBackends+2 backends (the named ones,
// UnknownBackend and OtherBackends), each costing a dense histogram.
func decodeBackends(iv *Interval, m map[string]wireBackend) error {
	if len(m) > MaxBackends+2 {
		return fmt.Errorf("stats: decoding interval: %d backends, at most %d", len(m), MaxBackends+2)
	}
	for name, w := range m {
		for _, v := range []int64{w.Established, w.Failed, w.Closed, w.Open, w.PeakOpen, w.Sent, w.Received, w.TimedOut} {
			if v < 0 {
				return fmt.Errorf("stats: decoding interval: backend %q: negative count %d", name, v)
			}
		}
		if err := checkCounts("backend "+name+" errors", w.Errors); err != nil {
			return err
		}
		if err := checkCounts("backend "+name+" close_codes", w.CloseCodes); err != nil {
			return err
		}
		d := iv.backend(name)
		*d = BackendInterval{
			Established: w.Established, Failed: w.Failed, Closed: w.Closed, Open: w.Open, PeakOpen: w.PeakOpen,
			Sent: w.Sent, Received: w.Received, TimedOut: w.TimedOut,
			Errors: addCounts(map[string]int64{}, w.Errors), CloseCodes: addCounts(map[int]int64{}, w.CloseCodes),
		}
		if w.RTT != "" {
			d.RTT = NewHistogram()
			if err := decodeHistInto(d.RTT, w.RTT); err != nil {
				return fmt.Errorf("stats: decoding interval: backend %q rtt: %w", name, err)
			}
		}
	}
	return nil
}
