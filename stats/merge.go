package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// ErrMixedTargets is wrapped by the error Merge returns for results of
// different targets, so a caller can suggest MergeOptions.AllowMixedTargets.
var ErrMixedTargets = errors.New("results measured different targets")

// ErrDuplicate is wrapped by the error Merge returns when two inputs are the
// same run (MergeOptions.AllowDuplicates).
var ErrDuplicate = errors.New("the same run is given twice")

// ErrDisjoint is wrapped by the error Merge returns when the inputs never all
// ran at the same time (MergeOptions.AllowDisjoint).
var ErrDisjoint = errors.New("the runs never ran at the same time")

// MergeOptions tunes Merge.
type MergeOptions struct {
	// AllowMixedTargets merges results of different targets (one load
	// spread over several balancers, say); the merged Target lists them all.
	AllowMixedTargets bool
	// AllowDuplicates merges inputs that are the same run (the same start
	// to the nanosecond, generator host and PID, segment, target and
	// measured duration), which
	// counts that run again: every count of it doubles.
	AllowDuplicates bool
	// AllowDisjoint merges runs that were never all running at the same
	// time. The merged result then adds up connections and rates as if they
	// had been, a load that nobody generated at once.
	AllowDisjoint bool
	// Names names the inputs, in order, in errors, warnings and Sources
	// (`wsload merge` passes the file names). Missing names default to the
	// input's segment ("segment 2/4"), else "input N".
	Names []string
}

// Merge combines results of runs that made one load together (segments of
// it, or whole runs from several processes or machines) into one Result, as
// if one generator had produced the whole load:
//
//   - latencies are exact: every hdr is decoded and the histograms added, so
//     the merged percentiles are those of one histogram over all samples;
//   - counters and per-reason maps add up;
//   - the duration spans the earliest start to the latest end, and rates are
//     per second of that span;
//   - the timeline is aligned on wall-clock seconds: a point belongs to the
//     whole second (since the Unix epoch) its interval ended in; counts add
//     up, the open gauge adds up per second, and peak_open is the highest
//     such sum (or an input's own peak, if higher). A merged point's
//     rtt_p50_us and rtt_p99_us are the highest of the inputs' points in that
//     second: a result carries no per-second histograms, and any percentile of
//     a union lies between the lowest and the highest of the parts'
//     percentiles, so the maximum is a safe upper bound. Exact per-second
//     percentiles come from merging .hlog files (MergeHlogs);
//   - the per-backend breakdown adds up per backend name, and its spread is
//     recomputed; a backend's peak_open is the sum of the inputs' peaks (an
//     upper bound: results carry no per-second, per-backend gauges). SLO
//     verdicts are dropped: they judged the parts;
//   - config: connections, connect_rate and pollers are totals and add up;
//     the per-connection rate, size and binary are kept (a warning says when
//     they differ); generator CPU and GOMAXPROCS add up, max_rss_bytes is the
//     largest process's;
//   - warnings: the merge's own Diagnose, then what the merge noticed, then
//     every input's warnings prefixed with its name.
//
// Merge refuses (errors prefixed "stats: merge:") results of another schema,
// of different targets (unless AllowMixedTargets), two results of the same
// segment, segment counts that differ (including segmented with
// unsegmented), the same run given twice (ErrDuplicate, unless
// AllowDuplicates) and runs that were not all running at one moment
// (ErrDisjoint, unless AllowDisjoint): each would make up counts or a
// concurrency that no run had. An input that is itself a merge counts
// with its Sources. One input is returned as a deep copy. The inputs are not
// modified.
func Merge(results ...*Result) (*Result, error) {
	return MergeOptions{}.Merge(results...)
}

// Merge is the package Merge with options.
func (o MergeOptions) Merge(results ...*Result) (*Result, error) {
	if len(results) == 0 {
		return nil, errors.New("stats: merge: no results to merge")
	}
	names := make([]string, len(results))
	for i, r := range results {
		if r == nil {
			return nil, fmt.Errorf("stats: merge: input %d is nil", i+1)
		}
		switch {
		case i < len(o.Names) && o.Names[i] != "":
			names[i] = o.Names[i]
		case !r.Config.Segment.IsZero():
			names[i] = "segment " + r.Config.Segment.String()
		default:
			names[i] = "input " + strconv.Itoa(i+1)
		}
		if r.Schema != Schema {
			return nil, fmt.Errorf("stats: merge: %s has schema %q; this wsload merges %q", names[i], r.Schema, Schema)
		}
		validate := r.validateSparse
		if len(results) == 1 {
			validate = r.validate
		}
		if err := validate(); err != nil {
			return nil, fmt.Errorf("stats: merge: %s: %w", names[i], err)
		}
	}
	if len(results) == 1 {
		return cloneResult(results[0])
	}
	segWarn, err := checkSegments(results, names)
	if err != nil {
		return nil, err
	}
	if !o.AllowDuplicates {
		if err := checkDuplicates(results, names); err != nil {
			return nil, err
		}
	}
	if !o.AllowDisjoint {
		if err := checkOverlap(results, names); err != nil {
			return nil, err
		}
	}
	targets := distinct(results, func(r *Result) string { return r.Target })
	if len(targets) > 1 && !o.AllowMixedTargets {
		var parts []string
		for i, r := range results {
			parts = append(parts, names[i]+" -> "+r.Target)
		}
		return nil, fmt.Errorf("stats: merge: %w: %s", ErrMixedTargets, strings.Join(parts, ", "))
	}

	for i, r := range results[1:] {
		if !sameScenario(results[0].Config.Scenario, r.Config.Scenario) && !o.AllowMixedTargets {
			return nil, fmt.Errorf("stats: merge: %w: %s ran %s, %s ran %s; merge them anyway with --allow-mixed-targets (MergeOptions.AllowMixedTargets)",
				ErrMixedScenarios, names[0], scenarioLabel(results[0].Config.Scenario), names[i+1], scenarioLabel(r.Config.Scenario))
		}
	}
	m := &merger{total: NewInterval(time.Time{}, time.Time{})}
	for i, r := range results {
		if err := m.add(r); err != nil {
			return nil, fmt.Errorf("stats: merge: %s: %w", names[i], err)
		}
	}
	out := m.result(results, targets)

	var warnings []string
	if len(targets) > 1 {
		warnings = append(warnings, "merged results of different targets: "+strings.Join(targets, ", "))
	}
	if v := distinct(results, func(r *Result) string { return r.Version }); len(v) > 1 {
		warnings = append(warnings, "merged results of different wsload versions: "+strings.Join(v, ", "))
	}
	for _, f := range []struct {
		name string
		get  func(*Result) string
	}{
		{"rate per connection", func(r *Result) string { return strconv.FormatFloat(r.Config.Rate, 'g', -1, 64) }},
		{"message size", func(r *Result) string { return strconv.Itoa(r.Config.Size) }},
		{"frame type", func(r *Result) string { return map[bool]string{false: "text", true: "binary"}[r.Config.Binary] }},
	} {
		if v := distinct(results, f.get); len(v) > 1 {
			warnings = append(warnings, fmt.Sprintf("merged results differ in %s (%s); the merged config shows the first's", f.name, strings.Join(v, ", ")))
		}
	}
	if v := distinct(results, func(r *Result) string { return scenarioLabel(r.Config.Scenario) }); len(v) > 1 {
		warnings = append(warnings, "merged results of different scenarios: "+strings.Join(v, ", ")+"; the merged config shows the first's")
	}
	if v := distinct(results, func(r *Result) string { return r.Config.BackendFrom }); len(v) > 1 {
		warnings = append(warnings, fmt.Sprintf("merged results told backends apart differently (%q); the per-backend breakdown mixes them", v))
	}
	if slices.ContainsFunc(results, func(r *Result) bool { return len(r.SLO) > 0 }) {
		warnings = append(warnings, "the inputs' SLO verdicts are not carried over: they judged each part, not the merged load")
	}
	warnings = append(warnings, segWarn...)
	if m.clamped > 0 {
		warnings = append(warnings, fmt.Sprintf("%d latency samples of the inputs lay outside wsload's histogram range and were recorded at its bounds", m.clamped))
	}
	for i, r := range results {
		for _, w := range r.Generator.Warnings {
			warnings = append(warnings, names[i]+": "+w)
		}
	}
	out.Generator.Warnings = append(out.Diagnose(), warnings...)
	if out.Generator.Warnings == nil {
		out.Generator.Warnings = []string{}
	}
	out.ErrorSamples = mergeSamples(results)

	for i, r := range results {
		if len(r.Sources) > 0 { // an already merged input: list what it was made of
			out.Sources = append(out.Sources, r.Sources...)
			continue
		}
		out.Sources = append(out.Sources, Source{
			Name:      names[i],
			Host:      r.Generator.Host,
			PID:       r.Generator.PID,
			Segment:   r.Config.Segment.String(),
			Target:    r.Target,
			Start:     r.Start.UTC(),
			DurationS: r.DurationS,
		})
	}
	return out, nil
}

// mergeSamples keeps one error text per reason: the first input's that has one.
func mergeSamples(results []*Result) map[string]string {
	var out map[string]string
	for _, r := range results {
		for reason, text := range r.ErrorSamples {
			if _, ok := out[reason]; !ok {
				if out == nil {
					out = map[string]string{}
				}
				out[reason] = text
			}
		}
	}
	return out
}

// runKey identifies one run: two results with the same start (to the
// nanosecond: JSON keeps it), generator host and PID, segment, target and
// measured duration are the same run read twice. Segments of one
// distributed run differ in their segment, and --procs workers in their
// PID. The measured duration tells apart runs that share all the rest
// (containers with the host's name, each its own PID 1, started together
// with --start-at, whose start is the scheduled instant).
func runKey(s Source) string {
	return strings.Join([]string{s.Start.UTC().Format(time.RFC3339Nano), s.Host, strconv.Itoa(s.PID), s.Segment, s.Target,
		strconv.FormatFloat(s.DurationS, 'g', -1, 64)}, "\x00")
}

// checkDuplicates refuses two inputs (or two sources of merged inputs) that
// are the same run.
func checkDuplicates(results []*Result, names []string) error {
	seen := map[string]string{}
	for i, r := range results {
		runs := r.Sources
		if len(runs) == 0 {
			runs = []Source{{Host: r.Generator.Host, PID: r.Generator.PID, Segment: r.Config.Segment.String(), Target: r.Target, Start: r.Start, DurationS: r.DurationS}}
		}
		for _, s := range runs {
			name := names[i]
			if len(r.Sources) > 0 && s.Name != "" {
				name += " (" + s.Name + ")"
			}
			key := runKey(s)
			if other, dup := seen[key]; dup {
				return fmt.Errorf("stats: merge: %w: %s and %s are the same run (start %s, host %q, pid %d): merging it again would double every count",
					ErrDuplicate, other, name, s.Start.UTC().Format(time.RFC3339Nano), s.Host, s.PID)
			}
			seen[key] = name
		}
	}
	return nil
}

// checkOverlap refuses inputs whose time ranges [start, start+duration] do
// not all overlap: ranges that overlap pairwise share an instant, so the
// merged load existed at least at that instant.
func checkOverlap(results []*Result, names []string) error {
	first, last := 0, 0 // the latest start, the earliest end
	end := func(r *Result) time.Time { return r.Start.Add(secondsToDuration(r.DurationS)) }
	for i, r := range results {
		if r.Start.After(results[first].Start) {
			first = i
		}
		if end(r).Before(end(results[last])) {
			last = i
		}
	}
	if s, e := results[first], results[last]; s.Start.After(end(e)) {
		return fmt.Errorf("stats: merge: %w: %s ended at %s, before %s started at %s; merged, they would describe a load nobody generated at once",
			ErrDisjoint, names[last], end(e).UTC().Format(time.RFC3339Nano), names[first], s.Start.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// checkSegments refuses overlapping and inconsistent segments, and warns
// about missing ones. A merged input counts with the segments of its
// Sources.
func checkSegments(results []*Result, names []string) (warnings []string, err error) {
	type part struct {
		seg  Segment
		name string
	}
	var parts []part
	for i, r := range results {
		if len(r.Sources) == 0 {
			parts = append(parts, part{r.Config.Segment, names[i]})
			continue
		}
		for _, s := range r.Sources {
			seg, err := ParseSegment(s.Segment)
			if err != nil {
				return nil, fmt.Errorf("stats: merge: %s: source %q: %w", names[i], s.Name, err)
			}
			name := names[i]
			if s.Name != "" {
				name += " (" + s.Name + ")"
			}
			parts = append(parts, part{seg, name})
		}
	}
	first := parts[0]
	byIndex := map[int]string{}
	for _, p := range parts {
		if err := p.seg.Validate(); err != nil {
			return nil, fmt.Errorf("stats: merge: %s: %w", p.name, err)
		}
		if p.seg.Count != first.seg.Count {
			describe := func(p part) string {
				if p.seg.IsZero() {
					return p.name + " is not segmented"
				}
				return p.name + " is segment " + p.seg.String()
			}
			return nil, fmt.Errorf("stats: merge: segment counts differ: %s but %s; merge the segments of one split only", describe(first), describe(p))
		}
		if p.seg.IsZero() {
			continue
		}
		if other, dup := byIndex[p.seg.Index]; dup {
			return nil, fmt.Errorf("stats: merge: %s and %s are both segment %s: overlapping segments would count the same share of the load twice", other, p.name, p.seg)
		}
		byIndex[p.seg.Index] = p.name
	}
	if n := first.seg.Count; n > 0 && len(byIndex) < n {
		var missing []string
		for i := 1; i <= n; i++ {
			if _, ok := byIndex[i]; !ok {
				missing = append(missing, strconv.Itoa(i)+"/"+strconv.Itoa(n))
			}
		}
		warnings = append(warnings, fmt.Sprintf("only %d of %d segments merged (missing %s): the result shows part of the load", len(byIndex), n, strings.Join(missing, ", ")))
	}
	return warnings, nil
}

// sparseStep is a StepHists with sparse histograms, allocated when the
// first input that has samples for them is added: a result can name
// thousands of steps of a few samples each (see sparse.go).
type sparseStep struct {
	corrected, uncorrected, sendLag *hdrhistogram.PackedHistogram
	sent, late, timedOut, errors    int64
}

// validateSparse is validate with the steps' histograms decoded by the
// pooled sparse decoder (sparse.go): the same checks, without a dense
// histogram and a new zlib stream for each of thousands of steps.
func (r *Result) validateSparse() error {
	v := *r
	v.Latency.Steps = make(map[string]StepLatency, len(r.Latency.Steps))
	for name, s := range r.Latency.Steps {
		for _, l := range []struct {
			name string
			l    *Latency
		}{{"corrected", &s.Corrected}, {"uncorrected", &s.Uncorrected}, {"send_lag", s.SendLag}} {
			if l.l == nil {
				continue
			}
			if _, err := sparseOf(l.l); err != nil {
				return fmt.Errorf("latency.steps[%q].%s: %w", name, l.name, err)
			}
		}
		s.Corrected, s.Uncorrected, s.SendLag = Latency{}, Latency{}, nil
		v.Latency.Steps[name] = s
	}
	return v.validate()
}

// latency is the step's StepLatency.
func (s *sparseStep) latency() (StepLatency, error) {
	sl := StepLatency{Sent: s.sent, Late: s.late, Timeouts: s.timedOut, Errors: s.errors}
	var err error
	if sl.Corrected, err = newSparseLatency(s.corrected); err != nil {
		return sl, err
	}
	if sl.Uncorrected, err = newSparseLatency(s.uncorrected); err != nil {
		return sl, err
	}
	sl.Count = sl.Corrected.Count
	if s.sendLag != nil && s.sendLag.TotalCount() > 0 {
		l, err := newSparseLatency(s.sendLag)
		if err != nil {
			return sl, err
		}
		sl.SendLag = &l
	}
	return sl, nil
}

// merger accumulates the inputs of Merge.
type merger struct {
	total   *Interval // counters, maps and histograms, steps aside
	steps   map[string]*sparseStep
	clamped int64 // samples clamped while adding histograms
	start   time.Time
	end     time.Time
	loadEnd time.Time // the latest end of an input's load window
	peak    int64
}

func (m *merger) add(r *Result) error {
	if m.start.IsZero() || r.Start.Before(m.start) {
		m.start = r.Start
	}
	load := r.LoadS
	if load <= 0 {
		load = r.DurationS
	}
	if end := r.Start.Add(secondsToDuration(load)); end.After(m.loadEnd) {
		m.loadEnd = end
	}
	if end := r.Start.Add(secondsToDuration(r.DurationS)); end.After(m.end) {
		m.end = end
	}
	m.peak = max(m.peak, r.Connections.PeakOpen)
	t := m.total
	t.Requested += r.Connections.Requested
	t.Attempted += r.Connections.Attempted
	t.Established += r.Connections.Established
	t.Failed += r.Connections.Failed
	t.NotStarted += r.Connections.NotStarted
	t.Closed += r.Connections.Closed
	t.Sent += r.Messages.Sent
	t.Received += r.Messages.Received
	t.BytesSent += r.Messages.BytesSent
	t.BytesReceived += r.Messages.BytesReceived
	t.TimedOut += r.Messages.TimedOut
	t.InFlight += r.Messages.InFlight
	t.Unmatched += r.Messages.Unmatched
	t.Duplicate += r.Messages.Duplicate
	t.Late += r.Messages.Late
	t.Corrupt += r.Messages.Corrupt
	t.Clamped += r.Generator.Clamped
	t.Errors = addCounts(t.Errors, r.Errors)
	t.ConnFailures = addCounts(t.ConnFailures, r.Connections.FailedByReason)
	t.CloseCodes = addCounts(t.CloseCodes, r.CloseCodes)

	for _, l := range []struct {
		name string
		dst  *hdrhistogram.Histogram
		src  *Latency
	}{
		{"handshake", t.Handshake, &r.Latency.Handshake},
		{"rtt", t.RTT, &r.Latency.RTT},
		{"rtt_uncorrected", t.RTTUncorrected, &r.Latency.RTTUncorrected},
		{"send_lag", t.SendLag, &r.Latency.SendLag},
	} {
		if err := m.addLatency(l.dst, l.src); err != nil {
			return fmt.Errorf("latency.%s: %w", l.name, err)
		}
	}
	if w := r.Latency.HandshakeWait; w != nil && w.Count > 0 {
		if t.HandshakeWait == nil {
			t.HandshakeWait = NewHistogram()
		}
		if err := m.addLatency(t.HandshakeWait, w); err != nil {
			return fmt.Errorf("latency.handshake_wait: %w", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Backends)) {
		b := r.Backends[name]
		d := t.backend(name)
		d.Established += b.Connections.Established
		d.Failed += b.Connections.Failed
		d.Closed += b.Connections.Closed
		d.PeakOpen += b.Connections.PeakOpen // no per-second data: the sum bounds the peak
		d.Sent += b.Messages.Sent
		d.Received += b.Messages.Received
		d.TimedOut += b.Messages.TimedOut
		d.Errors = addCounts(d.Errors, b.Errors)
		d.CloseCodes = addCounts(d.CloseCodes, b.CloseCodes)
		if b.RTT.Count > 0 {
			h, err := b.RTT.Histogram()
			if err != nil {
				return fmt.Errorf("backends[%q].rtt: %w", name, err)
			}
			m.clamped += mergeInto(&d.RTT, h)
		}
	}
	if m.steps == nil {
		m.steps = make(map[string]*sparseStep, len(r.Latency.Steps))
	}
	for name, s := range r.Latency.Steps {
		d := m.steps[name]
		if d == nil {
			d = new(sparseStep)
			m.steps[name] = d
		}
		for _, h := range []struct {
			name string
			dst  **hdrhistogram.PackedHistogram
			src  *Latency
		}{
			{"corrected", &d.corrected, &s.Corrected},
			{"uncorrected", &d.uncorrected, &s.Uncorrected},
			{"send_lag", &d.sendLag, s.SendLag},
		} {
			if h.src == nil || h.src.Count == 0 && h.src.HDR == "" {
				continue
			}
			p, err := sparseOf(h.src)
			if err != nil {
				return fmt.Errorf("latency.steps[%q].%s: %w", name, h.name, err)
			}
			m.clamped += mergeSparse(h.dst, p)
		}
		d.sent += s.Sent
		d.late += s.Late
		d.timedOut += s.Timeouts
		d.errors += s.Errors
	}
	return nil
}

func (m *merger) addLatency(dst *hdrhistogram.Histogram, l *Latency) error {
	if l.Count == 0 {
		return nil
	}
	h, err := l.Histogram()
	if err != nil {
		return err
	}
	m.clamped += mergeHist(dst, h)
	return nil
}

func (m *merger) result(results []*Result, targets []string) *Result {
	t := m.total
	first := results[0]
	dur := m.end.Sub(m.start).Seconds()
	// The merged load window runs from the first input's start to the last
	// input's end of load: rates are over it, as in each input.
	load := min(m.loadEnd.Sub(m.start).Seconds(), dur)
	timeline, peak := mergeTimelines(results, m.start)
	r := &Result{
		Schema:     Schema,
		Tool:       Tool,
		Version:    first.Version,
		Target:     strings.Join(targets, ", "),
		Start:      m.start.UTC(),
		DurationS:  dur,
		Config:     first.Config,
		CloseCodes: nonNilMap(t.CloseCodes),
		Errors:     nonNilMap(t.Errors),
		Timeline:   timeline,
	}
	r.Connections, r.Messages = t.counts(max(m.peak, peak), load)
	if slices.ContainsFunc(results, func(r *Result) bool { return r.LoadS > 0 }) {
		r.LoadS = load
	}

	c := &r.Config
	c.Headers = redactMap(first.Config.Headers)
	c.Subprotocols = nonNilSlice(first.Config.Subprotocols)
	c.Scenario = first.Config.Scenario.clone()
	c.Segment = Segment{}
	c.Connections, c.ConnectRate, c.Pollers, c.DurationS, c.HandshakeConcurrency = 0, 0, 0, 0, 0
	var ips []string
	for _, in := range results {
		c.Connections += in.Config.Connections
		c.ConnectRate += in.Config.ConnectRate
		c.Pollers += in.Config.Pollers
		c.HandshakeConcurrency += in.Config.HandshakeConcurrency
		c.DurationS = max(c.DurationS, in.Config.DurationS)
		for _, ip := range in.Config.SourceIPs {
			if !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
	}
	c.SourceIPs = nonNilSlice(ips)

	g := &r.Generator
	for _, in := range results {
		g.CPUUserS += in.Generator.CPUUserS
		g.CPUSysS += in.Generator.CPUSysS
		g.GOMAXPROCS += in.Generator.GOMAXPROCS
		g.MaxRSSBytes = max(g.MaxRSSBytes, in.Generator.MaxRSSBytes)
	}
	if h := distinct(results, func(r *Result) string { return r.Generator.Host }); len(h) == 1 {
		g.Host = h[0]
	}
	g.Clamped = t.Clamped + m.clamped
	g.CPUPerMsgUS = cpuPerMsgUS(*g, t.Received, t.Sent)

	// Encoding into memory cannot fail in practice: the histograms were
	// just decoded from the same encoding.
	r.Latency.Handshake, _ = NewLatency(t.Handshake)
	r.Latency.RTT, _ = NewLatency(t.RTT)
	r.Latency.RTTUncorrected, _ = NewLatency(t.RTTUncorrected)
	r.Latency.SendLag, _ = NewLatency(t.SendLag)
	if count(t.HandshakeWait) > 0 {
		w, _ := NewLatency(t.HandshakeWait)
		r.Latency.HandshakeWait = &w
	}
	r.Latency.Steps = make(map[string]StepLatency, len(m.steps))
	for name, s := range m.steps {
		r.Latency.Steps[name], _ = s.latency()
	}
	r.Backends, r.BackendSpread = backendResults(t, func(string, error) {})
	setOpenAtEnd(r.Backends, r.BackendSpread, openAtEndOf(results))
	r.Recovery = ComputeRecovery(r)
	return r
}

// mergeTimelines aligns the inputs' timelines on wall-clock seconds (see
// Merge) and returns the merged timeline and its highest summed open gauge.
func mergeTimelines(results []*Result, start time.Time) ([]Point, int64) {
	type bucket struct {
		p    Point
		end  time.Time
		lens []float64 // per input: seconds of its points in this bucket
		open []int64   // per input: its open gauge at its latest point here
		has  []bool
		last []time.Time
	}
	buckets := map[int64]*bucket{}
	firstKey := make([]int64, len(results))
	lastKey := make([]int64, len(results))
	for i, r := range results {
		firstKey[i], lastKey[i] = math.MaxInt64, math.MinInt64
		for _, p := range r.Timeline {
			// Round to the ms so that float noise in T cannot move a point
			// ending on a whole second into the previous one.
			end := r.Start.Add(time.Duration(math.Round(p.T*1e3)) * time.Millisecond)
			key := end.Unix() // floors: the whole second the point ended in
			firstKey[i], lastKey[i] = min(firstKey[i], key), max(lastKey[i], key)
			b := buckets[key]
			if b == nil {
				n := len(results)
				b = &bucket{lens: make([]float64, n), open: make([]int64, n), has: make([]bool, n), last: make([]time.Time, n)}
				buckets[key] = b
			}
			if end.After(b.end) {
				b.end = end
			}
			b.lens[i] += p.LenS
			if !b.has[i] || !end.Before(b.last[i]) {
				b.open[i], b.last[i] = p.Open, end
			}
			b.has[i] = true
			q := &b.p
			q.Established += p.Established
			q.Failed += p.Failed
			q.Closed += p.Closed
			q.Sent += p.Sent
			q.Received += p.Received
			q.Errors += p.Errors
			q.TimedOut += p.TimedOut
			q.RTTP50US = max(q.RTTP50US, p.RTTP50US)
			q.RTTP99US = max(q.RTTP99US, p.RTTP99US)
		}
	}
	keys := slices.Sorted(maps.Keys(buckets))
	out := make([]Point, 0, len(keys))
	cur := make([]int64, len(results)) // each input's open gauge carried forward
	var peak int64
	for _, k := range keys {
		b := buckets[k]
		p := b.p
		p.T = b.end.Sub(start).Seconds()
		for i := range results {
			switch {
			case b.has[i]:
				cur[i] = b.open[i]
			case k < firstKey[i] || k > lastKey[i]:
				cur[i] = 0 // not started yet, or finished
			}
			p.Open += cur[i]
			p.LenS = max(p.LenS, b.lens[i])
		}
		peak = max(peak, p.Open)
		out = append(out, p)
	}
	return out, peak
}

func secondsToDuration(s float64) time.Duration {
	return time.Duration(math.Round(s * 1e9))
}

// cpuPerMsgUS is Generator.CPUPerMsgUS for g and the given message counts.
func cpuPerMsgUS(g Generator, received, sent int64) float64 {
	cpuUS := (g.CPUUserS + g.CPUSysS) * 1e6
	switch {
	case received > 0:
		return cpuUS / float64(received)
	case sent > 0:
		return cpuUS / float64(sent)
	}
	return 0
}

// distinct returns the distinct values of f over results, in first-seen
// order.
func distinct(results []*Result, f func(*Result) string) []string {
	var out []string
	for _, r := range results {
		if v := f(r); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// cloneResult deep-copies r through its JSON encoding, the one definition of
// what a Result holds.
func cloneResult(r *Result) (*Result, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("stats: merge: copying result: %w", err)
	}
	out := new(Result)
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("stats: merge: copying result: %w", err)
	}
	return out, nil
}
