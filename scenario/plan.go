package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"time"
)

// Plan is a validated, compiled scenario: everything the engine needs to run
// it, with no file access or parsing left to do. A Plan is read-only after
// Parse (and Override), so event loops may share it without locks; per-run
// state lives in the engine (a Vars per connection, a slot per mark and
// captured variable).
type Plan struct {
	File         string   // the scenario file as named to Load or Parse
	Target       string   // ws:// or wss:// URL; "" when the file leaves it to --target
	Headers      []Header // extra upgrade request headers
	Subprotocols []string
	TLS          TLS
	Compression  bool  // offer permessage-deflate
	Data         *Data // CSV rows for ${row.COLUMN}; nil without a data file
	Phases       []Phase
	Flows        []Flow // at least one; weights sum to 1
	// Files lists every file the scenario read (payloads, data, captures,
	// ca_file), in the order read, and says which lie outside its
	// directory (only with Options.AllowOutsideFiles).
	Files []FileRef
}

// Header is one upgrade request header; its value is a template expanded
// once per connection (per handshake, with Vars.Seq = 0).
type Header struct {
	Name  string
	Value *Template
	Pos   Pos
}

// TLS holds the wss:// options.
type TLS struct {
	Insecure   bool   // skip certificate verification
	ServerName string // SNI and verification name; "" means the target's host
	CAFile     string // PEM roots to trust, resolved relative to the scenario file; "" means the system roots
}

// Data is a CSV file with a header row. Connection n takes row n mod
// len(Rows), so with as many rows as connections each connection has its own
// user or token.
type Data struct {
	File    string // resolved path
	Columns []string
	Rows    [][]string // every row has len(Columns) fields
}

// Row returns connection conn's row.
func (d *Data) Row(conn uint64) []string {
	if d == nil || len(d.Rows) == 0 {
		return nil
	}
	return d.Rows[conn%uint64(len(d.Rows))]
}

// PhaseKind is the shape of a phase.
type PhaseKind uint8

const (
	// PhaseConnections holds a number of open connections, moving linearly
	// from From to To over the phase (From == To is a hold). A connection
	// whose flow ends is replaced by a new one, so the level holds; a ramp
	// down closes the most recently opened connections first.
	PhaseConnections PhaseKind = iota + 1
	// PhaseArrivals opens Rate new connections per second, whatever is
	// already open (an open model for connection churn); each runs its flow
	// to the end and closes.
	PhaseArrivals
)

func (k PhaseKind) String() string {
	switch k {
	case PhaseConnections:
		return "connections"
	case PhaseArrivals:
		return "arrivals"
	}
	return fmt.Sprintf("PhaseKind(%d)", uint8(k))
}

// Phase is one stretch of the load profile. Phases run one after another.
type Phase struct {
	Name     string
	Kind     PhaseKind
	Start    time.Duration // offset from the start of the run
	Duration time.Duration // > 0
	From, To int           // PhaseConnections
	Rate     float64       // PhaseArrivals: new connections per second
	Pos      Pos
}

// End is the phase's end as an offset from the start of the run.
func (p *Phase) End() time.Duration { return p.Start + p.Duration }

// ConnectionsAt is the number of connections a PhaseConnections phase wants
// open at elapsed (measured from the phase's start, clamped to the phase).
func (p *Phase) ConnectionsAt(elapsed time.Duration) int {
	if elapsed <= 0 {
		return p.From
	}
	if elapsed >= p.Duration {
		return p.To
	}
	return p.From + int(math.Round(float64(p.To-p.From)*float64(elapsed)/float64(p.Duration)))
}

// ArrivalsBy is the number of connections a PhaseArrivals phase has opened by
// elapsed (from the phase's start): the k-th (from 0) opens at k/Rate, for
// every k/Rate before the phase's end.
func (p *Phase) ArrivalsBy(elapsed time.Duration) int64 {
	if elapsed < 0 || p.Rate <= 0 {
		return 0
	}
	total := int64(math.Ceil(p.Rate * p.Duration.Seconds()))
	return min(int64(math.Floor(p.Rate*elapsed.Seconds()))+1, total)
}

// Duration is the length of the whole run: the end of the last phase.
func (p *Plan) Duration() time.Duration {
	if len(p.Phases) == 0 {
		return 0
	}
	return p.Phases[len(p.Phases)-1].End()
}

// PhaseAt returns the phase running at elapsed since the start of the run.
func (p *Plan) PhaseAt(elapsed time.Duration) (*Phase, bool) {
	for i := range p.Phases {
		if elapsed < p.Phases[i].End() {
			if elapsed < p.Phases[i].Start {
				return nil, false
			}
			return &p.Phases[i], true
		}
	}
	return nil, false
}

// FlowIndex picks connection conn's flow. The pick is deterministic and
// spreads evenly: over any n consecutive connections each flow's share is
// within 1/n-ish of its weight (a golden-ratio sequence), so 5% publishers
// among 100 connections is 5 publishers, not "about 5".
func (p *Plan) FlowIndex(conn uint64) int {
	if len(p.Flows) <= 1 {
		return 0
	}
	const phi = 0.6180339887498949
	x := math.Mod(float64(conn%(1<<52))*phi+0.5*phi, 1)
	acc := 0.0
	for i := range p.Flows {
		acc += p.Flows[i].Weight
		if x < acc {
			return i
		}
	}
	return len(p.Flows) - 1
}

// Overrides are command-line values that take precedence over the file.
type Overrides struct {
	Target      string        // replaces Plan.Target
	Connections int           // > 0: scale connections phases so their peak is this; no phases: one hold phase
	Duration    time.Duration // > 0: scale every phase so the run lasts this long
}

// Override applies o and checks that the plan can run: a ws:// or wss://
// target and at least one phase. With no phases in the file, Connections and
// Duration together make a single hold phase.
func (p *Plan) Override(o Overrides) error {
	if o.Target != "" {
		p.Target = o.Target
	}
	if o.Connections < 0 || o.Duration < 0 {
		return fmt.Errorf("scenario: connections and duration must not be negative")
	}
	if len(p.Phases) == 0 && o.Connections > 0 && o.Duration > 0 {
		p.Phases = []Phase{{Name: "hold", Kind: PhaseConnections, From: o.Connections, To: o.Connections, Duration: o.Duration}}
	} else {
		if o.Connections > 0 {
			peak := 0
			for _, ph := range p.Phases {
				if ph.Kind == PhaseConnections {
					peak = max(peak, ph.From, ph.To)
				}
			}
			if peak == 0 {
				return fmt.Errorf("scenario: %s has no connections phase whose peak -c could set to %d", p.File, o.Connections)
			}
			scale := float64(o.Connections) / float64(peak)
			for i := range p.Phases {
				ph := &p.Phases[i]
				if ph.Kind == PhaseConnections {
					ph.From = int(math.Round(float64(ph.From) * scale))
					ph.To = int(math.Round(float64(ph.To) * scale))
				}
			}
		}
		if o.Duration > 0 && len(p.Phases) > 0 {
			scale := float64(o.Duration) / float64(p.Duration())
			start := time.Duration(0)
			for i := range p.Phases {
				ph := &p.Phases[i]
				ph.Duration = max(time.Duration(math.Round(float64(ph.Duration)*scale)), time.Millisecond)
				ph.Start = start
				start += ph.Duration
			}
		}
	}
	if len(p.Phases) == 0 {
		return fmt.Errorf("scenario: %s has no phases (add `phases:` to the file, or give both -c and -d)", p.File)
	}
	if p.Target == "" {
		return fmt.Errorf("scenario: %s has no target (add `target: ws://host:port/path` to the file, or give --target)", p.File)
	}
	if msg := checkTarget(p.Target); msg != "" {
		return fmt.Errorf("scenario: target %q: %s", p.Target, msg)
	}
	return nil
}

func checkTarget(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "not a URL: " + err.Error()
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return "the scheme must be ws:// or wss://"
	}
	if u.Hostname() == "" {
		return "no host"
	}
	return ""
}

// Flow is the ordered steps one connection performs.
type Flow struct {
	Name   string
	Weight float64 // share of connections, normalized: the weights of a plan sum to 1
	Strict bool    // an incoming message that no expect step is waiting for is an error, not just counted
	Steps  []Step
	Vars   []string // captured variable names; Vars.Captured[i] holds Vars[i]
	Marks  []string // mark names; the engine keeps one time per mark, Step.MarkSlot indexes it
	Pos    Pos
}

// StepKind says which of a Step's fields is set.
type StepKind uint8

// The step kinds.
const (
	StepSend StepKind = iota + 1
	StepExpect
	StepCapture
	StepSleep
	StepRepeat
	StepPing
	StepClose
	StepReconnect
	StepReplay
)

var stepKindNames = [...]string{StepSend: "send", StepExpect: "expect", StepCapture: "capture", StepSleep: "sleep", StepRepeat: "repeat", StepPing: "ping", StepClose: "close", StepReconnect: "reconnect", StepReplay: "replay"}

func (k StepKind) String() string {
	if int(k) < len(stepKindNames) && stepKindNames[k] != "" {
		return stepKindNames[k]
	}
	return fmt.Sprintf("StepKind(%d)", uint8(k))
}

// Step is one thing a connection does. Exactly the field named by Kind is
// set (Sleep for StepSleep, and so on).
type Step struct {
	Kind StepKind
	Pos  Pos    // of the step's kind key in the file, for runtime messages
	Name string // histogram and error counter name: the step's `name:` or "<flow>.<kind>@<line>"
	// Mark, when set, names the time this step starts (a send: its scheduled
	// send time) so a later expect can measure from it (`since: MARK`).
	Mark     string
	MarkSlot int // index into Flow.Marks; -1 without a mark

	Send      *Send
	Expect    *Expect
	Capture   *Capture // reads the message the latest expect step matched
	Sleep     *Distribution
	Repeat    *Repeat
	Ping      *Ping
	Close     *Close
	Reconnect *Reconnect
	Replay    *Replay
}

// Send sends one message built from a template.
type Send struct {
	Payload *Template
	Binary  bool   // binary frame (hex, base64 and file payloads by default)
	Source  string // where the payload came from: text, json, hex, base64 or file
	// Stamp puts a fan-out stamp in the message (see ParseStamp): as the
	// first field of a JSON object payload, else as a prefix.
	Stamp bool
	// JSON is set when the payload is a JSON object, whose stamp is a field.
	JSON bool

	stampRest *Template // the JSON object after its '{', with a leading ',' unless empty
}

// Append appends the message for v to dst; with Stamp it embeds v.Conn,
// v.Seq and v.Now. It does not allocate when dst has room.
func (s *Send) Append(dst []byte, v *Vars) []byte {
	if !s.Stamp {
		return s.Payload.Append(dst, v)
	}
	if s.JSON && s.stampRest != nil {
		dst = append(dst, `{"`+StampKey+`":"`...)
		dst = AppendStamp(dst, v.Conn, v.Seq, v.Now.UnixNano())
		dst = append(dst, '"')
		return s.stampRest.Append(dst, v)
	}
	dst = append(dst, StampKey+":"...)
	dst = AppendStamp(dst, v.Conn, v.Seq, v.Now.UnixNano())
	dst = append(dst, ' ')
	return s.Payload.Append(dst, v)
}

// LatencyFrom is where an expect step's latency starts.
type LatencyFrom uint8

const (
	// FromLastSend: the (scheduled) time of the latest send on this
	// connection; when nothing was sent yet, the time the expect step began.
	FromLastSend LatencyFrom = iota
	// FromMark: the time the step marked Expect.Since began.
	FromMark
	// FromStamp: the send time in the message's fan-out stamp.
	FromStamp
)

// Expect waits for a message that Match accepts. The wait's latency goes
// into the histogram named by the step's Name. Messages that arrive while
// waiting and do not match are counted as unmatched (errors in a strict flow).
type Expect struct {
	Match     Matcher
	Timeout   time.Duration // > 0
	From      LatencyFrom
	Since     string // FromMark: the mark's name
	SinceSlot int    // FromMark: index into Flow.Marks
	Captures  []Capture
	// Continue: on timeout, record it and go on with the next step. Without
	// it a timeout is an error that ends the connection's flow.
	Continue bool
}

// Repeat runs Steps again and again until Count iterations are done or For
// has passed, whichever comes first. With neither, it repeats until the
// connection is closed by the end of its phase.
type Repeat struct {
	Count int           // 0: no count limit
	For   time.Duration // 0: no time limit
	// Rate is iterations per second of this connection (usually one send
	// each: messages per second). Open model: iteration k starts at
	// start + k/Rate whether or not the previous one finished; a late
	// iteration starts at once. 0: back to back.
	Rate  float64
	Steps []Step
}

// Bounded reports whether the repeat ends by itself.
func (r *Repeat) Bounded() bool { return r.Count > 0 || r.For > 0 }

// Ping sends a ping frame and waits for the pong; the round trip goes into
// the step's histogram.
type Ping struct {
	Timeout time.Duration
	Payload *Template // ping data (at most 125 bytes when expanded); nil: empty
}

// Close starts the closing handshake. Later steps need a reconnect first.
type Close struct {
	Code   int // 1000-4999
	Reason string
}

// Reconnect closes the connection if it is open and opens it again after a
// backoff (Backoff), retrying failed attempts up to Attempts times (0: no
// limit). The flow then goes on with the next step on the new connection.
type Reconnect struct {
	Min, Max time.Duration // first backoff, and the cap as it doubles
	Jitter   float64       // 0..1: each backoff is scaled by a random factor in [1-Jitter, 1]
	Attempts int
}

// Backoff is the wait before attempt (0 for the first).
func (r *Reconnect) Backoff(attempt int, rng *rand.Rand) time.Duration {
	d := r.Min
	for i := 0; i < attempt && d < r.Max; i++ {
		if d > r.Max/2 {
			d = r.Max // doubling would pass the cap (or overflow)
			break
		}
		d *= 2
	}
	d = min(d, r.Max)
	if r.Jitter > 0 {
		f := 0.0
		if rng != nil {
			f = rng.Float64()
		} else {
			f = rand.Float64()
		}
		d = time.Duration(float64(d) * (1 - r.Jitter*f))
	}
	return d
}

// DistKind is the shape of a think time.
type DistKind uint8

// The think-time distributions.
const (
	DistFixed       DistKind = iota + 1 // always Fixed
	DistUniform                         // uniform in [Min, Max]
	DistExponential                     // exponential with mean Mean, capped at Max when Max > 0
)

// Distribution is a sleep step's think time.
type Distribution struct {
	Kind           DistKind
	Fixed          time.Duration
	Min, Max, Mean time.Duration
}

// Sample draws one think time. rng nil uses the global source.
func (d *Distribution) Sample(rng *rand.Rand) time.Duration {
	f := rand.Float64
	if rng != nil {
		f = rng.Float64
	}
	switch d.Kind {
	case DistUniform:
		return d.Min + time.Duration(f()*float64(d.Max-d.Min+1))
	case DistExponential:
		v := time.Duration(-math.Log(1-f()) * float64(d.Mean))
		if d.Max > 0 && v > d.Max {
			v = d.Max
		}
		return v
	}
	return d.Fixed
}

// Average is the distribution's mean (ignoring an exponential's cap).
func (d *Distribution) Average() time.Duration {
	switch d.Kind {
	case DistUniform:
		return (d.Min + d.Max) / 2
	case DistExponential:
		return d.Mean
	}
	return d.Fixed
}

func (d *Distribution) String() string {
	switch d.Kind {
	case DistUniform:
		return fmt.Sprintf("uniform %v..%v", d.Min, d.Max)
	case DistExponential:
		if d.Max > 0 {
			return fmt.Sprintf("exponential mean %v, max %v", d.Mean, d.Max)
		}
		return fmt.Sprintf("exponential mean %v", d.Mean)
	}
	return d.Fixed.String()
}

// Replay sends the client messages of a captured session with their original
// spacing divided by Speed; received messages are kept (Dir Receive) so the
// engine can count or compare them, but are not waited for.
type Replay struct {
	File        string // resolved path
	URLContains string // which HAR WebSocket entry was taken
	Speed       float64
	Messages    []ReplayMessage // sorted by Offset
}

// Duration is how long the replay takes at its speed.
func (r *Replay) Duration() time.Duration {
	if len(r.Messages) == 0 {
		return 0
	}
	return time.Duration(float64(r.Messages[len(r.Messages)-1].Offset) / r.Speed)
}

// Sends is the number of messages the replay sends.
func (r *Replay) Sends() int {
	n := 0
	for _, m := range r.Messages {
		if m.Dir == DirSend {
			n++
		}
	}
	return n
}
