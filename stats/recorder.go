package stats

import (
	"sync"
	"sync/atomic"
	"time"
)

// Recorder collects a run's events. It is sharded so the hot path takes no
// global lock: the engine gives each connection a shard (Shard(key)), each
// shard has its own mutex, and only the open-connections gauge is shared (an
// atomic). Once per second Rotate swaps every shard's data out and merges it
// into one Interval.
//
// Memory: each shard keeps two sets of dense histograms (the one being
// recorded into and a spare for the swap), about 1.5 MB per shard plus
// 0.4 MB per named step, so use about one shard per event loop, not one per
// connection.
type Recorder struct {
	shards []*Shard

	open atomic.Int64 // established - closed, now
	peak atomic.Int64 // highest open since the last Rotate

	rotateMu sync.Mutex // serializes Rotate; guards last and prevOpen
	last     time.Time
	prevOpen int64

	backends backendTable // per-backend gauges and names (backend.go)
}

// NewRecorder returns a Recorder with the given number of shards (at least 1).
// The first Interval starts now.
func NewRecorder(shards int) *Recorder {
	if shards < 1 {
		shards = 1
	}
	now := time.Now()
	r := &Recorder{shards: make([]*Shard, shards), last: now}
	for i := range r.shards {
		r.shards[i] = &Shard{r: r, cur: NewInterval(now, time.Time{}), spare: NewInterval(now, time.Time{})}
	}
	return r
}

// SetStart sets the start of the current Interval to t, for a run whose
// clock starts after NewRecorder. Call it before recording.
func (r *Recorder) SetStart(t time.Time) {
	r.rotateMu.Lock()
	r.last = t
	r.rotateMu.Unlock()
}

// Shard returns the shard for key (key % number of shards; negative keys are
// folded to positive).
func (r *Recorder) Shard(key int) *Shard {
	i := key % len(r.shards)
	if i < 0 {
		i = -i
	}
	return r.shards[i]
}

// Open returns the number of connections open now: established minus closed.
func (r *Recorder) Open() int64 { return r.open.Load() }

// Rotate collects everything recorded since the previous Rotate (or
// NewRecorder) into one Interval ending at now and resets the shards. Each
// shard is locked only for a pointer swap; merging happens outside the lock,
// so Rotate never stalls an event loop for the merge's duration. The returned
// Interval belongs to the caller.
func (r *Recorder) Rotate(now time.Time) *Interval {
	r.rotateMu.Lock()
	defer r.rotateMu.Unlock()

	iv := NewInterval(r.last, now)
	// Swap the peak before reading the gauge: an establishment racing with
	// this lands in the next interval's peak rather than in neither.
	peak := r.peak.Swap(0)
	open := r.open.Load()
	for _, s := range r.shards {
		s.mu.Lock()
		full := s.cur
		s.cur, s.spare = s.spare, full
		s.mu.Unlock()
		// Only Rotate touches the spare, and Rotate is serialized.
		iv.Merge(full)
		full.reset()
	}
	iv.Start, iv.End = r.last, now // Merge widened them from the shards' zero times
	iv.Open = open
	// The peak over the interval is the highest of its starting level, every
	// level reached by an establishment, and its ending level.
	iv.PeakOpen = max(peak, r.prevOpen, open)
	r.prevOpen = open
	r.rotateBackends(iv)
	r.last = now
	return iv
}

// Shard records the events of a group of connections. Its methods are safe
// for concurrent use: a per-shard mutex, with low contention by construction
// (one shard per event loop). They do not allocate once each error reason,
// close code and step name has been seen.
type Shard struct {
	r     *Recorder
	mu    sync.Mutex
	cur   *Interval // guarded by mu
	spare *Interval // owned by Rotate
}

// ConnRequested counts n connections the run asks for (see
// Interval.Requested).
func (s *Shard) ConnRequested(n int) {
	s.mu.Lock()
	s.cur.Requested += int64(n)
	s.mu.Unlock()
}

// ConnNotStarted counts n requested connections that will never be dialed:
// the run ended, or the ramp stopped, before their turn.
func (s *Shard) ConnNotStarted(n int) {
	s.mu.Lock()
	s.cur.NotStarted += int64(n)
	s.mu.Unlock()
}

// HandshakeWaited records how long a connection waited from being due to
// its dial starting (Interval.HandshakeWait). The first call allocates the
// shard's histogram.
func (s *Shard) HandshakeWaited(d time.Duration) {
	s.mu.Lock()
	if s.cur.HandshakeWait == nil {
		s.cur.HandshakeWait = NewHistogram()
	}
	if record(s.cur.HandshakeWait, max(d, 0)) {
		s.cur.Clamped++
	}
	s.mu.Unlock()
}

// ConnAttempted counts a connection attempt (a dial started).
func (s *Shard) ConnAttempted() {
	s.mu.Lock()
	s.cur.Attempted++
	s.mu.Unlock()
}

// ConnEstablished counts a completed WebSocket handshake that took handshake
// (from dial start to the 101 response) and raises the open gauge.
func (s *Shard) ConnEstablished(handshake time.Duration) {
	open := s.r.open.Add(1)
	for p := s.r.peak.Load(); open > p && !s.r.peak.CompareAndSwap(p, open); p = s.r.peak.Load() {
	}
	s.mu.Lock()
	s.cur.Established++
	if record(s.cur.Handshake, handshake) {
		s.cur.Clamped++
	}
	s.mu.Unlock()
}

// ConnFailed counts a connection attempt that failed before it was
// established. reason is a stable snake_case name: "refused", "timeout",
// "dns", "tls", "http_404", "bad_handshake", "reset", "fd_limit", ...
func (s *Shard) ConnFailed(reason string) {
	s.mu.Lock()
	s.cur.Failed++
	s.cur.ConnFailures[reason]++
	s.cur.Errors[reason]++
	s.mu.Unlock()
}

// ConnClosed counts the close of an established connection with its
// WebSocket close code (1006 = abnormal, no close frame) and lowers the open
// gauge. Call it only for connections that were established.
func (s *Shard) ConnClosed(code int) {
	s.r.open.Add(-1)
	s.mu.Lock()
	s.cur.Closed++
	s.cur.CloseCodes[code]++
	s.mu.Unlock()
}

// Sent counts a message of bytes sent lag after its scheduled send time
// (lag >= 0): the generator's send-schedule lag.
func (s *Shard) Sent(bytes int, lag time.Duration) {
	s.mu.Lock()
	s.cur.Sent++
	s.cur.BytesSent += int64(bytes)
	if record(s.cur.SendLag, lag) {
		s.cur.Clamped++
	}
	s.mu.Unlock()
}

// Received counts a message of bytes received.
func (s *Shard) Received(bytes int) {
	s.mu.Lock()
	s.cur.Received++
	s.cur.BytesReceived += int64(bytes)
	s.mu.Unlock()
}

// RTT records a matched reply's round trip: corrected from the request's
// scheduled send time, uncorrected from its actual send time.
func (s *Shard) RTT(corrected, uncorrected time.Duration) {
	s.mu.Lock()
	var n int64
	if record(s.cur.RTT, corrected) {
		n++
	}
	if record(s.cur.RTTUncorrected, uncorrected) {
		n++
	}
	s.cur.Clamped += n
	s.mu.Unlock()
}

// Step records the latency of the named scenario step, corrected (from its
// scheduled start) and uncorrected (from its actual start). The first sample
// of a new name allocates that step's histograms.
func (s *Shard) Step(name string, corrected, uncorrected time.Duration) {
	s.mu.Lock()
	st := s.step(name)
	var n int64
	if record(st.Corrected, corrected) {
		n++
	}
	if record(st.Uncorrected, uncorrected) {
		n++
	}
	s.cur.Clamped += n
	s.mu.Unlock()
}

// step returns the named step's record, allocating it for a new name.
// Called with mu held.
func (s *Shard) step(name string) *StepHists {
	st := s.cur.Steps[name]
	if st == nil {
		st = newStepHists()
		s.cur.Steps[name] = st
	}
	return st
}

// StepSent counts a message the named send step wrote lag after its
// scheduled send time (lag >= 0); a lag over LateSend counts as late. The
// whole run's counters are Sent's: call both.
func (s *Shard) StepSent(name string, lag time.Duration) {
	s.mu.Lock()
	st := s.step(name)
	st.Sent++
	if lag > LateSend {
		st.Late++
	}
	if st.SendLag == nil {
		st.SendLag = NewHistogram()
	}
	if record(st.SendLag, lag) {
		s.cur.Clamped++
	}
	s.mu.Unlock()
}

// StepTimedOut counts an expect or ping step of that name that timed out.
func (s *Shard) StepTimedOut(name string) {
	s.mu.Lock()
	s.step(name).TimedOut++
	s.mu.Unlock()
}

// StepError counts a failed write of the named step.
func (s *Shard) StepError(name string) {
	s.mu.Lock()
	s.step(name).Errors++
	s.mu.Unlock()
}

// TimedOut counts a message whose reply did not arrive within the reply
// timeout.
func (s *Shard) TimedOut() {
	s.mu.Lock()
	s.cur.TimedOut++
	s.mu.Unlock()
}

// Unmatched counts a received message that matched no message sent (a
// server push, another connection's id).
func (s *Shard) Unmatched() {
	s.mu.Lock()
	s.cur.Unmatched++
	s.mu.Unlock()
}

// Other is a kind of received message that is not a reply counted as
// received (Shard.Other).
type Other uint8

const (
	OtherUnmatched Other = iota // matches no message sent
	OtherDuplicate              // answers a message already answered
	OtherLate                   // answers a message that had already timed out
	OtherCorrupt                // an echo whose id matched but whose length, type or content did not
)

// Other counts a received message of bytes that answers no outstanding
// message, by kind; its bytes count in BytesReceived.
func (s *Shard) Other(kind Other, bytes int) {
	s.mu.Lock()
	s.cur.BytesReceived += int64(bytes)
	switch kind {
	case OtherDuplicate:
		s.cur.Duplicate++
	case OtherLate:
		s.cur.Late++
	case OtherCorrupt:
		s.cur.Corrupt++
	default:
		s.cur.Unmatched++
	}
	s.mu.Unlock()
}

// InFlight counts n messages still waiting for their reply, within the reply
// timeout, when the run was interrupted.
func (s *Shard) InFlight(n int64) {
	s.mu.Lock()
	s.cur.InFlight += n
	s.mu.Unlock()
}

// Error counts a runtime error after the handshake by reason, e.g.
// "invalid_frame", "write", "read".
func (s *Shard) Error(reason string) {
	s.mu.Lock()
	s.cur.Errors[reason]++
	s.mu.Unlock()
}
