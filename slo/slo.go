// Package slo parses service-level objectives and judges results against
// them, for `wsload run --slo` (a CI gate) and `wsload capacity` (the knee is
// the highest load that still meets them).
//
//	spec, err := slo.Parse("rtt.p99<50ms,handshake.p99<1s,errors<0.1%,received_per_s>=900")
//	if err != nil { ... }                 // *slo.SyntaxError: says where in the string
//	verdicts := slo.Evaluate(spec, res)   // one stats.Verdict per objective, in order
//	if stats.Broken(verdicts) { os.Exit(4) }
//
// An objective is METRIC OP VALUE with OP one of < <= > >=. Metrics:
//
//	rtt.P, rtt_uncorrected.P, handshake.P, send_lag.P   latency; P is a stats.Percentiles
//	                                                    name (p50 p90 p99 p999 p9999) or max;
//	                                                    VALUE is a duration: 800us, 50ms, 1.5s
//	step.NAME.P                                         a scenario step's corrected latency
//	errors       percent of attempts that erred: 100 × (sum of the result's errors, by every
//	             reason: connection failures and errors after the handshake, not timeouts)
//	             / (connections attempted + messages sent). VALUE ends in %: errors<0.1%
//	timeouts     percent of sent messages whose reply did not come within the reply timeout
//	established  percent of the requested connections that were established; requested is
//	             the larger of config.connections and connections.attempted
//	received_per_s, sent_per_s   messages per second over the run; VALUE may end in /s
//
// A latency objective with no samples to judge (no replies at all) is broken,
// never vacuously met: a target that answers nothing has no p99 under 50ms.
package slo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsload/wsload/stats"
)

// Objective is one parsed objective.
type Objective struct {
	Text      string  // as written, trimmed: "rtt.p99<50ms"
	Metric    string  // "rtt.p99"
	Op        string  // <, <=, >, >=
	Threshold float64 // in Unit
	Unit      string  // "us", "%" or "/s"
}

// Spec is a list of objectives, all of which must hold.
type Spec []Objective

// String is the spec as Parse reads it back.
func (s Spec) String() string {
	parts := make([]string, len(s))
	for i, o := range s {
		parts[i] = o.Text
	}
	return strings.Join(parts, ",")
}

// SyntaxError says what is wrong with a spec and where: Pos is the byte
// offset in Spec of the offending part.
type SyntaxError struct {
	Spec string
	Pos  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	col := utf8.RuneCountInString(e.Spec[:min(e.Pos, len(e.Spec))]) + 1
	return fmt.Sprintf("slo: column %d of %q: %s", col, e.Spec, e.Msg)
}

// Pointer shows the spec with a caret under the offending part, for a
// terminal:
//
//	rtt.p99<50ms,rt.p99<1s
//	             ^
func (e *SyntaxError) Pointer() string {
	col := utf8.RuneCountInString(e.Spec[:min(e.Pos, len(e.Spec))])
	return e.Spec + "\n" + strings.Repeat(" ", col) + "^"
}

// metricKind is what a metric measures, which decides its unit.
type metricKind int

const (
	kindLatency metricKind = iota
	kindPercent
	kindRate
)

var latencyFamilies = []string{"rtt", "rtt_uncorrected", "handshake", "send_lag"}

var scalarMetrics = map[string]metricKind{
	"errors":         kindPercent,
	"timeouts":       kindPercent,
	"established":    kindPercent,
	"received_per_s": kindRate,
	"sent_per_s":     kindRate,
}

const metricHelp = "rtt.p99, rtt_uncorrected.p99, handshake.p99, send_lag.p99 (p50 p90 p99 p999 p9999 max), step.NAME.p99, errors, timeouts, established, received_per_s, sent_per_s"

// Parse parses a comma-separated list of objectives, e.g.
// "rtt.p99<50ms,handshake.p99<1s,errors<0.1%". Errors are *SyntaxError.
func Parse(spec string) (Spec, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, &SyntaxError{Spec: spec, Msg: "no objectives; e.g. rtt.p99<50ms,errors<0.1%"}
	}
	var out Spec
	start := 0
	for start <= len(spec) {
		end := strings.IndexByte(spec[start:], ',')
		if end < 0 {
			end = len(spec)
		} else {
			end += start
		}
		o, err := parseObjective(spec, start, end)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
		start = end + 1
	}
	return out, nil
}

// parseObjective parses spec[start:end].
func parseObjective(spec string, start, end int) (Objective, error) {
	fail := func(pos int, format string, a ...any) (Objective, error) {
		return Objective{}, &SyntaxError{Spec: spec, Pos: pos, Msg: fmt.Sprintf(format, a...)}
	}
	// Trim spaces, keeping positions.
	for start < end && spec[start] == ' ' {
		start++
	}
	for end > start && spec[end-1] == ' ' {
		end--
	}
	if start == end {
		return fail(start, "empty objective; want METRIC<VALUE, e.g. rtt.p99<50ms")
	}
	text := spec[start:end]
	opAt := strings.IndexAny(text, "<>=!")
	if opAt < 0 {
		return fail(start, "%q has no comparison; want METRIC<VALUE, METRIC<=VALUE, METRIC>VALUE or METRIC>=VALUE", text)
	}
	op := text[opAt : opAt+1]
	if opAt+1 < len(text) && text[opAt+1] == '=' {
		op += "="
	}
	switch op {
	case "<", "<=", ">", ">=":
	default:
		return fail(start+opAt, "comparison %q: want <, <=, > or >=", op)
	}
	metric := strings.TrimSpace(text[:opAt])
	kind, err := metricKindOf(metric)
	if err != nil {
		return fail(start, "%v", err)
	}
	valAt := opAt + len(op)
	for valAt < len(text) && text[valAt] == ' ' {
		valAt++
	}
	val := text[valAt:]
	pos := start + valAt
	if val == "" {
		return fail(pos, "%s %s: missing value", metric, op)
	}
	o := Objective{Metric: metric, Op: op}
	switch kind {
	case kindLatency:
		d, err := time.ParseDuration(val)
		if err != nil {
			if _, ferr := strconv.ParseFloat(val, 64); ferr == nil {
				return fail(pos, "%s needs a unit: %sms, %ss or %sus", metric, val, val, val)
			}
			return fail(pos, "%s: %q is not a duration like 50ms or 1.5s", metric, val)
		}
		if d < 0 {
			return fail(pos, "%s: negative duration %s", metric, val)
		}
		o.Threshold, o.Unit = float64(d)/float64(time.Microsecond), "us"
	case kindPercent:
		num, ok := strings.CutSuffix(val, "%")
		if !ok {
			return fail(pos, "%s is a percentage: write %s%%", metric, val)
		}
		v, err := parseNumber(num)
		if err != nil || v > 100 {
			return fail(pos, "%s: %q is not a percentage between 0%% and 100%%", metric, val)
		}
		o.Threshold, o.Unit = v, "%"
	case kindRate:
		num, _ := strings.CutSuffix(val, "/s")
		v, err := parseNumber(num)
		if err != nil {
			return fail(pos, "%s: %q is not a rate like 1000 or 1000/s", metric, val)
		}
		o.Threshold, o.Unit = v, "/s"
	}
	o.Text = metric + op + val
	return o, nil
}

// parseNumber accepts plain non-negative decimal numbers only: no NaN, Inf,
// hex or exponent surprises from strconv.
func parseNumber(s string) (float64, error) {
	if s == "" || strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 || s == "." {
		return 0, errors.New("not a number")
	}
	return strconv.ParseFloat(s, 64)
}

func metricKindOf(metric string) (metricKind, error) {
	if k, ok := scalarMetrics[metric]; ok {
		return k, nil
	}
	if metric == "" {
		return 0, fmt.Errorf("missing metric before the comparison; metrics: %s", metricHelp)
	}
	if rest, ok := strings.CutPrefix(metric, "step."); ok {
		dot := strings.LastIndexByte(rest, '.')
		if dot <= 0 {
			return 0, fmt.Errorf("%q: want step.NAME.p99", metric)
		}
		if !validStat(rest[dot+1:]) {
			return 0, fmt.Errorf("%q: unknown statistic %q; want p50 p90 p99 p999 p9999 or max", metric, rest[dot+1:])
		}
		return kindLatency, nil
	}
	family, stat, ok := strings.Cut(metric, ".")
	for _, f := range latencyFamilies {
		if family != f {
			continue
		}
		if !ok {
			return 0, fmt.Errorf("%q needs a percentile: %s.p99", metric, metric)
		}
		if !validStat(stat) {
			return 0, fmt.Errorf("%q: unknown statistic %q; want p50 p90 p99 p999 p9999 or max", metric, stat)
		}
		return kindLatency, nil
	}
	return 0, fmt.Errorf("unknown metric %q; metrics: %s", metric, metricHelp)
}

func validStat(s string) bool {
	if s == "max" {
		return true
	}
	for _, p := range stats.Percentiles {
		if p.Name == s {
			return true
		}
	}
	return false
}

// Evaluate judges r against every objective of spec, in order.
func Evaluate(spec Spec, r *stats.Result) []stats.Verdict {
	out := make([]stats.Verdict, 0, len(spec))
	for _, o := range spec {
		v := stats.Verdict{Objective: o.Text, Metric: o.Metric, Op: o.Op, Threshold: o.Threshold, Unit: o.Unit}
		actual, note, judgeable := measure(o.Metric, r)
		v.Actual, v.Note = actual, note
		v.OK = judgeable && compare(actual, o.Op, o.Threshold)
		out = append(out, v)
	}
	return out
}

func compare(a float64, op string, t float64) bool {
	switch op {
	case "<":
		return a < t
	case "<=":
		return a <= t
	case ">":
		return a > t
	case ">=":
		return a >= t
	}
	return false
}

// measure returns the metric's value in r. judgeable is false when there is
// nothing to judge (a latency without samples), which breaks the objective.
func measure(metric string, r *stats.Result) (v float64, note string, judgeable bool) {
	pct := func(n, of int64, none string) (float64, string, bool) {
		if of <= 0 {
			return 0, none, true
		}
		return 100 * float64(n) / float64(of), "", true
	}
	switch metric {
	case "errors":
		var n int64
		for _, c := range r.Errors {
			n += c
		}
		return pct(n, r.Connections.Attempted+r.Messages.Sent, "nothing attempted")
	case "timeouts":
		return pct(r.Messages.TimedOut, r.Messages.Sent, "no messages sent")
	case "established":
		want := max(int64(r.Config.Connections), r.Connections.Attempted)
		if want <= 0 {
			return 0, "no connections requested", false
		}
		return 100 * float64(r.Connections.Established) / float64(want), "", true
	case "received_per_s":
		return r.Messages.ReceivedPerS, "", true
	case "sent_per_s":
		return r.Messages.SentPerS, "", true
	}
	var l stats.Latency
	var stat string
	if rest, ok := strings.CutPrefix(metric, "step."); ok {
		dot := strings.LastIndexByte(rest, '.')
		name := rest[:dot]
		stat = rest[dot+1:]
		s, ok := r.Latency.Steps[name]
		if !ok {
			return 0, "no step " + strconv.Quote(name) + " in this result", false
		}
		l = s.Corrected
	} else {
		family, st, _ := strings.Cut(metric, ".")
		stat = st
		switch family {
		case "rtt":
			l = r.Latency.RTT
		case "rtt_uncorrected":
			l = r.Latency.RTTUncorrected
		case "handshake":
			l = r.Latency.Handshake
		case "send_lag":
			l = r.Latency.SendLag
		}
	}
	if l.Count == 0 {
		return 0, "no samples", false
	}
	if stat == "max" {
		return float64(l.MaxUS), "", true
	}
	us, _ := l.Percentile(stat)
	return float64(us), "", true
}
