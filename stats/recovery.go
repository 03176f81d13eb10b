package stats

// Long-lived connections: what happened when the target dropped them, and
// where they were at the end.
//
// A run that holds connections open (a scenario with a reconnect step, or a
// plain run against a balancer whose backend restarts) answers three
// questions the totals cannot: how many connections came back (reconnects,
// by the close code that dropped them), how long the open count took to be
// back at its level (Recovery, from the timeline), and where the open
// connections sat at the end (each backend's OpenAtEnd and the spread of
// it). After a backend restart, roundrobin and leastconn differ in that
// last figure, not in the number established.
//
//	rec := stats.ComputeRecovery(res)   // nil when nothing was dropped
//	if rec != nil && rec.RecoverS != nil {
//		fmt.Printf("back at %d open after %.0fs\n", rec.Target, *rec.RecoverS)
//	}
//
// Results built by Aggregate.Result and Merge carry both already.

import (
	"bytes"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// RecoveredFraction is how close to its target the open count must be to
// count as recovered (and how far below it to count as dropped): 99%.
const RecoveredFraction = 0.99

// Recovery is how a run's open connections fell and came back. Times are in
// seconds since the run's start at the timeline's one-second resolution:
// DroppedAtS is the start of the first second that ended below the level,
// RecoveredAtS the end of the first later second that ended at or above it,
// so RecoverS is an upper bound by at most a second.
type Recovery struct {
	// Target is the open count the run was holding: the configured
	// connections (a scenario's peak level), else the peak open.
	Target int64 `json:"target"`
	// Level is RecoveredFraction of Target, rounded up: "back" means open ≥ Level.
	Level int64 `json:"level"`
	// DroppedAtS is null when the open count never fell below Level after
	// reaching it (a few connections dropped and came back within a second).
	DroppedAtS *float64 `json:"dropped_at_s"`
	// RecoveredAtS and RecoverS are null when the open count did not get
	// back to Level before the run ended.
	RecoveredAtS *float64 `json:"recovered_at_s"`
	RecoverS     *float64 `json:"recover_s"`
	// MinOpen is the lowest open count from the drop to the recovery (or to
	// the end of the run).
	MinOpen int64 `json:"min_open"`
	// Reconnects is the number of reconnects made: the count of the run's
	// reconnect steps (ReconnectStep names them).
	Reconnects int64 `json:"reconnects"`
	// DropsByCode counts the connections that ended with a close code other
	// than 1000 (normal closure), by code: 1001 for a server going away,
	// 1006 for a connection cut without a close frame. These are what
	// dropped the clients that then reconnected.
	DropsByCode map[int]int64 `json:"drops_by_code"`
}

// ReconnectStep reports whether the step named name is a reconnect step:
// the scenario's default name for one ("flow.reconnect@LINE") or any name
// with "reconnect" in it, so name a reconnect step that way to have its
// count in Recovery.Reconnects.
func ReconnectStep(name string) bool {
	return strings.Contains(strings.ToLower(name), "reconnect")
}

// ComputeRecovery returns how r's open connections fell and came back, from
// its timeline, close codes and reconnect steps; nil when the run made no
// reconnect and its open count never fell below the level it had reached (a
// few connections closed abnormally in a plain run are in Result.CloseCodes
// already).
//
// The timeline's last seconds are left out when the run ends with nothing
// open and the open count falls into that end: that is wsload closing its
// own connections, not a drop.
func ComputeRecovery(r *Result) *Recovery {
	rec := &Recovery{DropsByCode: map[int]int64{}}
	for code, n := range r.CloseCodes {
		if code != 1000 && n > 0 {
			rec.DropsByCode[code] = n
		}
	}
	for name, s := range r.Latency.Steps {
		if ReconnectStep(name) {
			rec.Reconnects += s.Corrected.Count
		}
	}
	if len(rec.DropsByCode) == 0 && rec.Reconnects == 0 {
		return nil
	}
	rec.Target = int64(r.Config.Connections)
	if rec.Target <= 0 {
		rec.Target = r.Connections.PeakOpen
	}
	rec.Level = int64(math.Ceil(RecoveredFraction * float64(rec.Target)))
	tl := runningTimeline(r.Timeline)

	drop := -1
	if reached := slices.IndexFunc(tl, func(p Point) bool { return p.Open >= rec.Level }); reached >= 0 && rec.Target > 0 {
		for i := reached + 1; i < len(tl); i++ {
			if tl[i].Open < rec.Level {
				drop = i
				break
			}
		}
	}
	if drop < 0 {
		if rec.Reconnects == 0 {
			return nil
		}
		return rec // reconnects, but the level held (or was never reached)
	}
	at := max(tl[drop].T-tl[drop].LenS, 0)
	rec.DroppedAtS = &at
	rec.MinOpen = tl[drop].Open
	for _, p := range tl[drop+1:] {
		if p.Open >= rec.Level {
			back, took := p.T, p.T-at
			rec.RecoveredAtS, rec.RecoverS = &back, &took
			break
		}
		rec.MinOpen = min(rec.MinOpen, p.Open)
	}
	return rec
}

// runningTimeline is tl without wsload's own closing at the end (see
// ComputeRecovery): when the last second ends with nothing open, the
// trailing seconds in which the open count was zero or falling, at most
// endTail of them (closing can straddle a tick).
func runningTimeline(tl []Point) []Point {
	n := len(tl)
	if n < 2 || tl[n-1].Open != 0 {
		return tl
	}
	for cut := 0; cut < endTail && n > 1; cut++ {
		if cur, prev := tl[n-1], tl[n-2]; cur.Open != 0 && cur.Open >= prev.Open {
			break
		}
		n--
	}
	return tl[:n]
}

// endLevels follows each backend's open gauge over the latest intervals, so
// a Result can say where connections were open at the end of the run
// before wsload closed them itself. Closing can straddle a tick: the
// interval the run ends in and the final one both show the open count
// falling, so levels skips up to endTail such trailing intervals. It judges
// by the sum of the per-backend gauges, not the run-wide one: a tick during
// the closing reads the gauges one after the other, so the run-wide gauge
// can still show everything open when the per-backend ones no longer do.
type endLevels struct {
	ring [endTail + 1]endLevel // the latest intervals, ring[n % len] the next slot
	n    int                   // latest intervals seen
}

// endTail is how many trailing intervals levels may skip as wsload's own closing.
const endTail = 3

type endLevel struct {
	open     int64            // sum of backends
	backends map[string]int64 // per-backend open gauges, backends with any open
}

// add records the per-backend open gauges of iv, the latest interval so far.
func (e *endLevels) add(iv *Interval) {
	l := endLevel{backends: make(map[string]int64, len(iv.Backends))}
	for name, b := range iv.Backends {
		if b != nil && b.Open > 0 {
			l.backends[name] = b.Open
			l.open += b.Open
		}
	}
	e.ring[e.n%len(e.ring)] = l
	e.n++
}

// levels returns each backend's open connections at the end of the run:
// those of the latest interval, unless the run ended with nothing open;
// then of the interval before the trailing ones in which the open count
// was zero or falling (at most endTail of them).
func (e *endLevels) levels() map[string]int64 {
	if e.n == 0 {
		return nil
	}
	at := func(back int) endLevel { return e.ring[(e.n-1-back)%len(e.ring)] }
	if at(0).open != 0 {
		return at(0).backends
	}
	back := 0
	for back < endTail && back+1 < e.n {
		cur, prev := at(back), at(back+1)
		if cur.open != 0 && cur.open >= prev.open {
			break
		}
		back++
	}
	return at(back).backends
}

// setOpenAtEnd fills each backend's Connections.OpenAtEnd from open (by
// name; a backend not in it had none open) and the spread of it over the
// named backends into spread.OpenAtEnd.
func setOpenAtEnd(backends map[string]BackendResult, spread *Spread, open map[string]int64) {
	if len(backends) == 0 {
		return
	}
	var vals []int64
	for _, name := range slices.Sorted(maps.Keys(backends)) {
		b := backends[name]
		b.Connections.OpenAtEnd = open[name]
		backends[name] = b
		if name != UnknownBackend && name != OtherBackends {
			vals = append(vals, b.Connections.OpenAtEnd)
		}
	}
	if spread != nil {
		spread.OpenAtEnd = ComputeSpread("open_at_end", vals)
	}
}

// openAtEndOf sums each backend's OpenAtEnd over results (Merge: processes
// that ran at the same time hold their connections side by side).
func openAtEndOf(results []*Result) map[string]int64 {
	m := map[string]int64{}
	for _, r := range results {
		for name, b := range r.Backends {
			m[name] += b.Connections.OpenAtEnd
		}
	}
	return m
}

// writeRecovery writes the "Reconnects" section of the text summary when
// the run dropped connections.
func writeRecovery(b *bytes.Buffer, r *Result) {
	rec := r.Recovery
	if rec == nil {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("Reconnects   %d", rec.Reconnects)
	if len(rec.DropsByCode) > 0 {
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(rec.DropsByCode)) {
			parts = append(parts, fmt.Sprintf("%d %s: %d", code, closeCodeLabel(code), rec.DropsByCode[code]))
		}
		p(" after drops (%s)", strings.Join(parts, ", "))
	}
	p("\n")
	switch {
	case rec.DroppedAtS == nil:
		p("Recovery     open never fell below %d (%.0f%% of %d)\n", rec.Level, 100*RecoveredFraction, rec.Target)
	case rec.RecoverS == nil:
		p("Recovery     open fell below %d at %.0fs (lowest %d) and was not back by the end\n",
			rec.Level, *rec.DroppedAtS, rec.MinOpen)
	default:
		p("Recovery     open fell below %d at %.0fs (lowest %d), back at %.0fs: recovered in %.0fs\n",
			rec.Level, *rec.DroppedAtS, rec.MinOpen, *rec.RecoveredAtS, *rec.RecoverS)
	}
	p("\n")
}
