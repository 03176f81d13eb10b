package stats

import (
	"bytes"
	"fmt"
)

// Verdict is the judgement of one service-level objective on a Result
// (package slo parses objectives and makes verdicts; the type lives here so a
// Result can carry them). Threshold and Actual are in Unit: "us" for
// latencies, "%" for ratios, "/s" for rates.
type Verdict struct {
	Objective string  `json:"objective"` // as written, e.g. "rtt.p99<50ms"
	Metric    string  `json:"metric"`    // e.g. "rtt.p99"
	Op        string  `json:"op"`        // <, <=, >, >=
	Threshold float64 `json:"threshold"`
	Actual    float64 `json:"actual"`
	Unit      string  `json:"unit"`
	OK        bool    `json:"ok"`
	// Note says why a verdict is not a plain comparison, e.g. that there
	// were no samples to judge (which breaks the objective).
	Note string `json:"note,omitempty"`
}

// Broken reports whether any verdict failed.
func Broken(vs []Verdict) bool {
	for _, v := range vs {
		if !v.OK {
			return true
		}
	}
	return false
}

// FormatValue formats v in unit the way the text summary does: latencies in
// a human unit (1.23ms), ratios in percent, rates per second.
func FormatValue(v float64, unit string) string {
	switch unit {
	case "us":
		return FormatUS(int64(v + 0.5))
	case "%":
		return fmt.Sprintf("%.3g%%", v)
	case "/s":
		return fmt.Sprintf("%.1f/s", v)
	}
	return fmt.Sprintf("%g%s", v, unit)
}

// writeVerdicts writes the "SLO" section at the end of the text summary.
func writeVerdicts(b *bytes.Buffer, vs []Verdict) {
	if len(vs) == 0 {
		return
	}
	width := 0
	for _, v := range vs {
		width = max(width, len(v.Objective))
	}
	status := "met"
	if Broken(vs) {
		status = "BROKEN"
	}
	fmt.Fprintf(b, "\nSLO          %s\n", status)
	for _, v := range vs {
		mark := "ok"
		if !v.OK {
			mark = "BROKEN"
		}
		fmt.Fprintf(b, "  %-6s %-*s  actual %s", mark, width, v.Objective, FormatValue(v.Actual, v.Unit))
		if v.Note != "" {
			fmt.Fprintf(b, " (%s)", v.Note)
		}
		b.WriteString("\n")
	}
}
