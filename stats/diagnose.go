package stats

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Thresholds of Diagnose.
const (
	// A send lag p99 above max(MinLagWarnUS, LagWarnFraction of the
	// per-connection send interval) means messages left late: the generator,
	// not the target, set the pace.
	MinLagWarnUS    = 1000
	LagWarnFraction = 0.10
	// CPU use at or above CPUWarnFraction of GOMAXPROCS cores over the run
	// means the generator was CPU-bound.
	CPUWarnFraction = 0.90
	// topReasons is how many failure reasons a warning names.
	topReasons = 3
)

// Diagnose returns warnings about how far r can be trusted and what went
// wrong, most fundamental first: nothing established, connections failed
// (top reasons), replies timed out, the generator was the bottleneck (send
// lag or CPU), latencies clamped. It reads only r and is deterministic.
func (r *Result) Diagnose() []string {
	var w []string
	c, m := r.Connections, r.Messages
	reasons := c.FailedByReason
	if len(reasons) == 0 {
		reasons = r.Errors
	}
	switch {
	case c.Attempted == 0:
		w = append(w, "no connection was attempted")
	case c.Established == 0 && c.Failed > 0:
		w = append(w, fmt.Sprintf("no connection was established: %d of %d attempts failed (%s)",
			c.Failed, c.Attempted, topCounts(reasons, topReasons)))
	case c.Established == 0:
		w = append(w, fmt.Sprintf("no connection was established (%d attempted)", c.Attempted))
	case c.Failed > 0:
		w = append(w, fmt.Sprintf("%d of %d connection attempts failed (%s): %s",
			c.Failed, c.Attempted, pct(c.Failed, c.Attempted), topCounts(reasons, topReasons)))
	}
	if c.NotStarted > 0 {
		w = append(w, fmt.Sprintf("%d of %d requested connections were never dialed: the run ended (or the ramp stopped) before their turn (%d attempted: %s)",
			c.NotStarted, c.Requested, c.Attempted, attemptsFate(c)))
	}
	// Asked for vs got: an echo run asks for Config.Connections open at
	// once. (A scenario's Config.Connections is its plan's peak, which
	// arrivals phases only estimate.)
	if want := int64(r.Config.Connections); r.Config.Scenario == nil && want > 0 && c.Established > 0 && c.PeakOpen < want {
		w = append(w, fmt.Sprintf("only %d of %d connections were open at once (peak open): the target load was never reached", c.PeakOpen, want))
	}
	if s := r.rampWarning(); s != "" {
		w = append(w, s)
	}
	if s := r.starvedWarning(); s != "" {
		w = append(w, s)
	}
	if m.TimedOut > 0 {
		s := fmt.Sprintf("%d replies timed out (%s of %d sent)", m.TimedOut, pct(m.TimedOut, m.Sent), m.Sent)
		if t := r.Config.ReplyTimeoutS; t > 0 {
			s += fmt.Sprintf(" after the reply timeout of %gs", t)
		}
		s += " or with their connection closed"
		w = append(w, s)
	}
	if m.InFlight > 0 {
		w = append(w, fmt.Sprintf("%d messages were still waiting for their reply when the run was interrupted (in flight, not timed out)", m.InFlight))
	}
	if m.Corrupt > 0 {
		w = append(w, fmt.Sprintf("%d echoes were corrupt (length, frame type or content differ from what was sent): not counted as received", m.Corrupt))
	}
	if m.Late > 0 {
		w = append(w, fmt.Sprintf("%d replies arrived after their message had timed out (late): not counted as received", m.Late))
	}
	if m.Duplicate > 0 {
		w = append(w, fmt.Sprintf("%d replies answered a message already answered (duplicate): not counted as received", m.Duplicate))
	}
	g := r.Generator
	cores, cpuBound := 0.0, false
	if g.GOMAXPROCS > 0 && r.DurationS > 0 {
		cores = (g.CPUUserS + g.CPUSysS) / r.DurationS
		cpuBound = cores >= CPUWarnFraction*float64(g.GOMAXPROCS)
	}
	lagged := false
	if lag := r.Latency.SendLag; lag.Count > 0 {
		limit, why := r.lagLimit()
		if float64(lag.P99US) > limit {
			lagged = true
			w = append(w, r.lagWarning(lag.P99US, why, cores, cpuBound))
		}
	}
	if cpuBound && !lagged {
		w = append(w, fmt.Sprintf("the generator was CPU-bound: it used %.2f of %d cores (GOMAXPROCS) over the run, so the numbers may show wsload's limit, not the target's",
			cores, g.GOMAXPROCS))
	}
	if g.Clamped > 0 {
		w = append(w, fmt.Sprintf("%d latency samples exceeded %s and were recorded as %s", g.Clamped, FormatUS(HighestUS), FormatUS(HighestUS)))
	}
	return w
}

// lagLimit is the send lag p99 above which sends are said to have left late: the larger of
// MinLagWarnUS and LagWarnFraction of one connection's send interval. The interval is the
// configured one (an echo run's --rate) or, for a scenario, the measured mean: the load window
// times the connections open at the peak, over the messages sent. One rule for both kinds of
// run: a scenario sending 23 messages a second per connection is judged like an echo run at 23/s.
func (r *Result) lagLimit() (limitUS float64, why string) {
	limitUS, why = MinLagWarnUS, FormatUS(MinLagWarnUS)
	intervalUS := 0.0
	switch window := r.LoadS; {
	case r.Config.Rate > 0:
		intervalUS = 1e6 / r.Config.Rate
	case r.Messages.Sent > 0 && r.Connections.PeakOpen > 0:
		if window <= 0 {
			window = r.DurationS
		}
		intervalUS = 1e6 * window * float64(r.Connections.PeakOpen) / float64(r.Messages.Sent)
	}
	if f := LagWarnFraction * intervalUS; f > limitUS {
		limitUS, why = f, fmt.Sprintf("10%% of the %s send interval", FormatUS(int64(intervalUS)))
	}
	return limitUS, why
}

// lagWarning says that sends left late, and what the run measured about why: wsload's own CPU
// (GOMAXPROCS cores busy: then the generator was the bottleneck) or a target that answered
// slowly (then the writes backed up behind it, or other work on the machine held the sender
// back; not wsload's CPU). It never blames wsload without having measured it busy.
func (r *Result) lagWarning(p99US int64, why string, cores float64, cpuBound bool) string {
	late := fmt.Sprintf("send lag p99 %s exceeds %s", FormatUS(p99US), why)
	g, m := r.Generator, r.Messages
	if cpuBound {
		return fmt.Sprintf("the generator was the bottleneck: %s while wsload used %.2f of %d cores (GOMAXPROCS), so messages left late and the numbers show wsload's limit, not the target's; use more cores, processes or machines",
			late, cores, g.GOMAXPROCS)
	}
	busy := "wsload's CPU was not the limit"
	if g.GOMAXPROCS > 0 {
		busy = fmt.Sprintf("wsload used only %.2f of %d cores", cores, g.GOMAXPROCS)
	}
	slowP50 := r.Latency.RTTUncorrected.Count > 0 && float64(r.Latency.RTTUncorrected.P50US) > 10*float64(p99US)
	timedOut := m.Sent > 0 && m.TimedOut*100 >= m.Sent // at least 1%
	if slowP50 || timedOut {
		target := []string{}
		if slowP50 {
			target = append(target, "uncorrected rtt p50 "+FormatUS(r.Latency.RTTUncorrected.P50US))
		}
		if timedOut {
			target = append(target, pct(m.TimedOut, m.Sent)+" of replies timed out")
		}
		return fmt.Sprintf("sends left late (%s), but %s while the target fell behind (%s): the writes waited behind a target that stopped keeping up, or other work on this machine held the sender back, not wsload's CPU; the corrected latency includes the wait",
			late, busy, strings.Join(target, ", "))
	}
	return fmt.Sprintf("sends left late (%s) although %s: the sender did not get a core when it needed one (other work on this machine?) or its writes blocked; the corrected latency includes the lag, so check the machine's load or spread the run over more processes or machines",
		late, busy)
}

// Thresholds of rampWarning: dials that started more than
// max(RampSlackMinUS, RampSlackFraction of the asked ramp's length) behind
// their schedule mean the asked connect rate (or the scenario's ramp) was
// not met.
const (
	RampSlackMinUS    = 100_000
	RampSlackFraction = 0.10
)

// rampWarning says when connections were dialed later than the run asked
// for: the asked --connect-rate (or the scenario's phases) against when the
// dials actually started (Latency.HandshakeWait: the wait for a handshake
// slot, or for the generator).
func (r *Result) rampWarning() string {
	wait := r.Latency.HandshakeWait
	if wait == nil || wait.Count == 0 {
		return ""
	}
	cfg := r.Config
	slots := "a handshake slot"
	if cfg.HandshakeConcurrency > 0 {
		slots = fmt.Sprintf("one of the %d handshake slots (--handshake-concurrency)", cfg.HandshakeConcurrency)
	}
	why := fmt.Sprintf("they queued for %s while earlier handshakes were in flight (handshake p99 %s, wait p50 %s, max %s)",
		slots, FormatUS(r.Latency.Handshake.P99US), FormatUS(wait.P50US), FormatUS(wait.MaxUS))
	switch {
	case cfg.Scenario == nil && cfg.ConnectRate > 0 && cfg.Connections > 0:
		n := cfg.Connections
		rampS := float64(n-1) / cfg.ConnectRate
		slack := max(RampSlackMinUS, RampSlackFraction*rampS*1e6)
		if float64(wait.MaxUS) <= slack {
			return ""
		}
		achieved := float64(n) / (rampS + float64(wait.MaxUS)/1e6)
		return fmt.Sprintf("the connect rate was not met: asked %g/s (%d connections in %.2fs), but dials started up to %s behind that schedule, about %.1f/s achieved: %s",
			cfg.ConnectRate, n, rampS, FormatUS(wait.MaxUS), achieved, why)
	case cfg.Scenario != nil:
		if wait.MaxUS <= RampSlackMinUS {
			return ""
		}
		return fmt.Sprintf("the scenario's connections were dialed up to %s after its phases asked for them: %s", FormatUS(wait.MaxUS), why)
	}
	return ""
}

// starvedWarning says when handshakes timed out while the run's own
// messages were flowing (a timeline second with both failures and sends):
// the open connections may have starved the ramp. Echo runs without
// --send-after-ramp only, the ones the flag can help.
func (r *Result) starvedWarning() string {
	n := r.Connections.FailedByReason["timeout"]
	if n == 0 || r.Config.Scenario != nil || r.Config.SendAfterRamp {
		return ""
	}
	for _, p := range r.Timeline {
		if p.Failed > 0 && p.Sent > 0 {
			plural := "s"
			if n == 1 {
				plural = ""
			}
			return fmt.Sprintf("%d handshake%s timed out while messages were flowing: the connections already open may have starved the rest of the ramp (the target served their messages before the upgrades); --send-after-ramp starts messages once every connection is up or has failed", n, plural)
		}
	}
	return ""
}

// attemptsFate says how the attempted connections of c ended.
func attemptsFate(c Connections) string {
	switch {
	case c.Attempted == 0:
		return "none"
	case c.Failed == 0:
		return "all established"
	case c.Established == 0:
		return "all failed"
	}
	return fmt.Sprintf("%d established, %d failed", c.Established, c.Failed)
}

// topCounts formats the n largest counts as "a 7, b 3, c 1 and 2 more",
// ties broken by name so the text is deterministic.
func topCounts(m map[string]int64, n int) string {
	keys := sortedByCount(m)
	if len(keys) == 0 {
		return "no reason recorded"
	}
	var b strings.Builder
	for i, k := range keys {
		if i == n {
			fmt.Fprintf(&b, " and %d more", len(keys)-n)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, m[k])
	}
	return b.String()
}

// sortedByCount returns m's keys by descending count, then by name.
func sortedByCount(m map[string]int64) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
}

func pct(part, whole int64) string {
	if whole <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(whole))
}
