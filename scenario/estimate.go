package scenario

import (
	"fmt"
	"math"
	"time"
)

// Accuracy says how far an estimate can be trusted.
type Accuracy uint8

// The accuracies, from best to worst.
const (
	Exact       Accuracy = iota // follows from fixed rates and durations
	Approximate                 // uses the mean of random think times, or ignores waits on the server
	Unknown                     // paced by the server's replies or by handshakes: cannot be computed from the file
	Unbounded                   // nothing paces it: as fast as the generator can go
)

func (a Accuracy) String() string {
	switch a {
	case Exact:
		return "exact"
	case Approximate:
		return "approximate"
	case Unknown:
		return "unknown"
	case Unbounded:
		return "unbounded"
	}
	return fmt.Sprintf("Accuracy(%d)", uint8(a))
}

// Rate is an estimated rate with its accuracy; PerSecond is meaningful for
// Exact and Approximate only.
type Rate struct {
	PerSecond float64
	Accuracy  Accuracy
}

func (r Rate) String() string {
	switch r.Accuracy {
	case Exact:
		return formatRate(r.PerSecond)
	case Approximate:
		return "~" + formatRate(r.PerSecond)
	case Unknown:
		return "unknown (paced by the server's replies)"
	}
	return "unbounded (no rate or sleep paces it)"
}

func formatRate(v float64) string {
	switch {
	case v == 0:
		return "0 msg/s"
	case v >= 100:
		return fmt.Sprintf("%.0f msg/s", v)
	case v >= 1:
		return fmt.Sprintf("%.1f msg/s", v)
	}
	return fmt.Sprintf("%.3g msg/s", v)
}

// shape is what one run of some steps does: how many messages it sends, how
// long it takes, and, for a run that never ends, the rate it settles at.
type shape struct {
	sends   float64 // per run; +Inf when endless
	seconds float64 // per run; +Inf when endless
	waits   bool    // waits on the server (expect, ping, reconnect) for an unknown time
	acc     Accuracy
	endless bool
	steady  Rate // endless only: the send rate of the repeat that never ends
}

func analyze(steps []Step) shape {
	var s shape
	for i := range steps {
		st := &steps[i]
		if s.endless {
			break // the validator refuses steps after an endless repeat
		}
		switch st.Kind {
		case StepSend:
			s.sends++
		case StepReplay:
			s.sends += float64(st.Replay.Sends())
			s.seconds += st.Replay.Duration().Seconds()
		case StepSleep:
			s.seconds += st.Sleep.Average().Seconds()
			if st.Sleep.Kind != DistFixed {
				s.acc = max(s.acc, Approximate)
			}
		case StepExpect, StepPing, StepReconnect:
			s.waits = true
		case StepRepeat:
			s = s.then(repeatShape(st.Repeat))
		}
	}
	return s
}

func (s shape) then(r shape) shape {
	out := shape{sends: s.sends + r.sends, seconds: s.seconds + r.seconds, waits: s.waits || r.waits, acc: max(s.acc, r.acc), endless: r.endless, steady: r.steady}
	return out
}

func repeatShape(r *Repeat) shape {
	body := analyze(r.Steps)
	if body.endless {
		// The first iteration never ends: the repeat is its body.
		return body
	}
	var period float64 // seconds per iteration
	acc := body.acc
	switch {
	case r.Rate > 0:
		period = 1 / r.Rate
	case body.seconds > 0:
		period = body.seconds
		if body.waits {
			acc = max(acc, Approximate)
		}
	case body.waits:
		acc = Unknown
	default:
		acc = Unbounded
	}
	if body.sends == 0 {
		// Nothing sent: the count of iterations does not matter for the
		// rate, only for the length of the run.
		out := shape{waits: body.waits, acc: body.acc}
		switch {
		case !r.Bounded():
			out.endless, out.sends, out.seconds = true, math.Inf(1), math.Inf(1)
			out.steady = Rate{Accuracy: Exact}
		case r.For > 0:
			out.seconds = r.For.Seconds()
			if r.Count > 0 && period > 0 {
				out.seconds = math.Min(out.seconds, float64(r.Count)*period)
			}
			if body.waits {
				out.acc = max(out.acc, Approximate)
			}
		default:
			out.seconds = float64(r.Count) * period
			out.acc = max(acc, out.acc)
		}
		return out
	}
	out := shape{waits: body.waits, acc: acc}
	if !r.Bounded() {
		out.endless, out.sends, out.seconds = true, math.Inf(1), math.Inf(1)
		out.steady = Rate{Accuracy: acc}
		if period > 0 {
			out.steady.PerSecond = body.sends / period
		}
		return out
	}
	n := float64(r.Count)
	if r.For > 0 {
		if period > 0 {
			byTime := math.Floor(r.For.Seconds()/period) + 1
			if n == 0 || byTime < n {
				n = byTime
			}
		} else if n == 0 {
			n = math.Inf(1) // a count-less loop with no pacing
		}
	}
	out.sends = n * body.sends
	switch {
	case period > 0:
		out.seconds = n * period
		if r.For > 0 {
			out.seconds = math.Min(out.seconds, r.For.Seconds())
		}
	case r.For > 0:
		out.seconds = r.For.Seconds()
	}
	if math.IsInf(out.sends, 0) || math.IsNaN(out.sends) {
		out.sends = 0
		out.acc = max(out.acc, acc)
	}
	return out
}

// SendRate estimates the messages per second one connection of the flow
// sends: for a flow that never ends, the rate of its endless repeat; for one
// that ends (and is replaced, or was an arrival), its sends per run divided
// by the run's length.
func (f *Flow) SendRate() Rate {
	s := analyze(f.Steps)
	if s.endless {
		return s.steady
	}
	if s.sends == 0 {
		return Rate{Accuracy: Exact}
	}
	if s.seconds == 0 {
		if s.waits {
			return Rate{Accuracy: Unknown}
		}
		return Rate{Accuracy: Unbounded}
	}
	acc := s.acc
	if s.waits {
		acc = max(acc, Approximate)
	}
	return Rate{PerSecond: s.sends / s.seconds, Accuracy: acc}
}

// RunLength estimates how long one connection runs the flow; ok is false for
// a flow that never ends by itself.
func (f *Flow) RunLength() (d time.Duration, ok bool) {
	s := analyze(f.Steps)
	if s.endless || math.IsInf(s.seconds, 0) {
		return 0, false
	}
	return time.Duration(s.seconds * float64(time.Second)), true
}

// Estimate is what a plan is expected to do at its busiest.
type Estimate struct {
	PeakConnections int
	PeakAccuracy    Accuracy
	MessageRate     Rate // messages per second sent by all connections, at the busiest phase
}

// Estimate computes the expected peak connections and message rate. For an
// arrivals phase the open connections follow Little's law: arrival rate ×
// the flow's run length (or the phase's length, for flows that never end).
func (p *Plan) Estimate() Estimate {
	var e Estimate
	rates := make([]Rate, len(p.Flows))
	for i := range p.Flows {
		rates[i] = p.Flows[i].SendRate()
	}
	for _, ph := range p.Phases {
		var conns float64
		acc := Exact
		var msg Rate
		switch ph.Kind {
		case PhaseConnections:
			conns = float64(max(ph.From, ph.To))
			for i := range p.Flows {
				msg = addRate(msg, rates[i], conns*p.Flows[i].Weight)
			}
		case PhaseArrivals:
			for i := range p.Flows {
				d, ok := p.Flows[i].RunLength()
				length := ph.Duration.Seconds()
				if ok {
					length = math.Min(length, d.Seconds())
					if analyze(p.Flows[i].Steps).waits {
						acc = max(acc, Approximate)
					}
				}
				c := ph.Rate * p.Flows[i].Weight * length
				conns += c
				if c == 0 && ph.Rate*p.Flows[i].Weight > 0 {
					// Runs with no measurable length: count the arrivals' sends.
					acc = max(acc, Unknown)
				}
				msg = addRate(msg, rates[i], c)
			}
			conns = math.Ceil(conns)
		}
		if int(conns) > e.PeakConnections || int(conns) == e.PeakConnections && acc < e.PeakAccuracy {
			e.PeakConnections, e.PeakAccuracy = int(conns), acc
		}
		if msg.Accuracy > e.MessageRate.Accuracy || msg.Accuracy == e.MessageRate.Accuracy && msg.PerSecond > e.MessageRate.PerSecond {
			e.MessageRate = msg
		}
	}
	return e
}

// addRate adds n connections at rate r to the running total.
func addRate(total, r Rate, n float64) Rate {
	if n == 0 {
		return total
	}
	total.Accuracy = max(total.Accuracy, r.Accuracy)
	if r.Accuracy <= Approximate {
		total.PerSecond += n * r.PerSecond
	}
	return total
}
