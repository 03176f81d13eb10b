package stats

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// Scenario says which scenario file produced a run, so that a result read
// on another machine (or a year later) still says what load it measured:
// the file's name and SHA-256, its flows with their weights and a summary of
// its phases after the run's overrides (-c, -d). Config.Scenario is nil for
// echo runs.
type Scenario struct {
	File   string          `json:"file"`   // as given to wsload run
	SHA256 string          `json:"sha256"` // of the file's bytes, hex
	Flows  []ScenarioFlow  `json:"flows"`
	Phases []ScenarioPhase `json:"phases"`
}

// ScenarioFlow is one flow and its share of the connections (0–1).
type ScenarioFlow struct {
	Name   string  `json:"name"`
	Weight float64 `json:"weight"`
}

// ScenarioPhase summarizes one phase. Kind "connections" moves the open
// connections from From to To over the phase (From == To holds them);
// "arrivals" opens Rate new connections per second, each running its flow
// to the end.
type ScenarioPhase struct {
	Name      string  `json:"name,omitempty"`
	Kind      string  `json:"kind"`
	DurationS float64 `json:"duration_s"`
	From      int     `json:"from,omitempty"`
	To        int     `json:"to,omitempty"`
	Rate      float64 `json:"rate,omitempty"`
}

// ErrMixedScenarios is wrapped by the error Merge returns for results of
// different scenario files (or a scenario run with an echo run).
var ErrMixedScenarios = errors.New("results ran different scenarios")

// String is the summary's wording: "chat.yaml: 2 flows (listener 95%,
// publisher 5%), phases ramp 0→500 30s, hold 500 3m".
func (s *Scenario) String() string {
	var b strings.Builder
	b.WriteString(baseName(s.File))
	fmt.Fprintf(&b, ": %d flow%s (", len(s.Flows), plural(len(s.Flows)))
	for i, f := range s.Flows {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s%%", f.Name, trimFloat(f.Weight*100))
	}
	b.WriteString("), phases ")
	if len(s.Phases) == 0 {
		b.WriteString("none")
	}
	for i, p := range s.Phases {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// String describes the phase in a few words: "ramp 0→500 30s", "hold 500
// 3m", "arrivals 20/s 1m".
func (p ScenarioPhase) String() string {
	d := fmtDurationS(p.DurationS)
	switch {
	case p.Kind == "arrivals":
		return fmt.Sprintf("arrivals %s/s %s", trimFloat(p.Rate), d)
	case p.From == p.To:
		return fmt.Sprintf("hold %d %s", p.To, d)
	default:
		return fmt.Sprintf("ramp %d→%d %s", p.From, p.To, d)
	}
}

// sameScenario reports whether a and b describe the same scenario: both
// nil, or the same file contents (the name may differ between machines).
func sameScenario(a, b *Scenario) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.SHA256 == b.SHA256
}

// scenarioLabel names r's scenario in a merge error.
func scenarioLabel(s *Scenario) string {
	if s == nil {
		return "no scenario (echo run)"
	}
	h := s.SHA256
	if len(h) > 12 {
		h = h[:12]
	}
	return fmt.Sprintf("%s (sha256 %s…)", baseName(s.File), h)
}

func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// trimFloat formats v with up to 4 significant digits and no trailing zeros.
func trimFloat(v float64) string {
	return fmt.Sprintf("%.4g", v)
}

// fmtDurationS formats seconds as Go does, minus its zero units: 30s, 3m,
// 1h30m, 1.5s.
func fmtDurationS(s float64) string {
	if math.IsNaN(s) || s < 0 {
		return "?"
	}
	d := time.Duration(math.Round(s * 1e9)).Round(time.Millisecond)
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}

// clone returns a deep copy of s (nil for nil).
func (s *Scenario) clone() *Scenario {
	if s == nil {
		return nil
	}
	c := *s
	c.Flows = slices.Clone(s.Flows)
	c.Phases = slices.Clone(s.Phases)
	return &c
}

// writeSteps writes one row per scenario step with its counters: how often
// it completed (count), what a send step sent, how many of those sends left
// more than LateSend behind schedule and the p99 and max of its send lag,
// timeouts and write errors. Nothing when the run had no steps.
func writeSteps(b *bytes.Buffer, r *Result) {
	if len(r.Latency.Steps) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(r.Latency.Steps))
	width := len("Steps")
	for _, n := range names {
		width = max(width, len(n))
	}
	const col = 10
	fmt.Fprintf(b, "%-*s%*s%*s%*s%*s%*s%*s%*s\n", width, "Steps", col+1, "count", col, "sent",
		col, "late", col, "lag p99", col, "lag max", col, "timeouts", col, "errors")
	for _, n := range names {
		s := r.Latency.Steps[n]
		p99, lmax := "-", "-"
		if s.SendLag != nil && s.SendLag.Count > 0 {
			p99, lmax = FormatUS(s.SendLag.P99US), FormatUS(s.SendLag.MaxUS)
		}
		fmt.Fprintf(b, "%-*s%*d%*d%*d%*s%*s%*d%*d\n", width, n, col+1, s.Count, col, s.Sent,
			col, s.Late, col, p99, col, lmax, col, s.Timeouts, col, s.Errors)
	}
	fmt.Fprintf(b, "count = completed expects, pings, reconnects and replayed replies; late = sends more\n")
	fmt.Fprintf(b, "than %v behind their schedule; lag = actual - scheduled send time of the step's sends.\n", LateSend)
	b.WriteString("\n")
}
