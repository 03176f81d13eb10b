package stats

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/wsload/wsload/internal/termsafe"
)

// FormatUS formats microseconds in a human unit with about three significant
// digits, the histograms' precision: 850µs, 1.23ms, 12.3ms, 123ms, 1.23s.
// Every report (text, HTML) spells durations this way.
func FormatUS(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return sig3(float64(us)/1e3) + "ms"
	default:
		return sig3(float64(us)/1e6) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f", v)
	case v < 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// FormatBytes formats a byte count in binary units: 512 B, 3.05 MiB.
func FormatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || unit == "TiB" {
			return sig3(v) + " " + unit
		}
	}
	panic("unreachable")
}

// fmtRate formats a per-second rate.
func fmtRate(v float64) string {
	return fmt.Sprintf("%.1f/s", v)
}

// WriteText writes a wrk/hey-style summary of r: target and configuration,
// connections, messages and rates, bytes, a latency table with one column
// per Percentiles name, close codes, errors by count, the generator's health
// and the warnings.
func WriteText(w io.Writer, r *Result) error {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("wsload %s -> %s\n", r.Version, r.Target)
	p("Start        %s, duration %.2fs", r.Start.UTC().Format(time.RFC3339), r.DurationS)
	if r.LoadS > 0 {
		// Rates are over the load window; what follows it is said apart.
		p(" (load %.2fs, then waiting for replies %.2fs, closing %.2fs)", r.LoadS, r.DrainS, r.CloseS)
	}
	if r.EndReason != "" {
		p(", ended: %s", termsafe.Escape(strings.ReplaceAll(r.EndReason, "_", " ")))
	}
	p("\n")
	p("Config       %s\n", describeConfig(r.Config))
	p("\n")

	c, m := r.Connections, r.Messages
	p("Connections  requested %d, attempted %d, established %d, failed %d, not started %d, closed %d, peak open %d\n",
		c.Requested, c.Attempted, c.Established, c.Failed, c.NotStarted, c.Closed, c.PeakOpen)
	p("Messages     sent %d (%s), received %d (%s), timed out %d, in flight %d\n",
		m.Sent, fmtRate(m.SentPerS), m.Received, fmtRate(m.ReceivedPerS), m.TimedOut, m.InFlight)
	p("Other msgs   unmatched %d, duplicate %d, late %d, corrupt %d\n", m.Unmatched, m.Duplicate, m.Late, m.Corrupt)
	p("Bytes        sent %s, received %s\n", FormatBytes(m.BytesSent), FormatBytes(m.BytesReceived))
	p("\n")

	type row struct {
		label string
		l     Latency
	}
	rows := []row{
		{"handshake", r.Latency.Handshake},
		{"rtt (corrected)", r.Latency.RTT},
		{"rtt uncorrected", r.Latency.RTTUncorrected},
		{"send lag", r.Latency.SendLag},
	}
	if w := r.Latency.HandshakeWait; w != nil {
		rows = append(rows[:1], append([]row{{"handshake wait", *w}}, rows[1:]...)...)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Latency.Steps)) {
		s := r.Latency.Steps[name]
		if s.Corrected.Count == 0 && (s.Sent > 0 || s.Errors > 0 || s.Timeouts > 0) {
			continue // a send step, or one that never completed: the Steps table has its counters
		}
		rows = append(rows,
			row{"step " + name + " (corrected)", s.Corrected},
			row{"step " + name + " uncorrected", s.Uncorrected})
	}
	width := len("Latency")
	for _, rw := range rows {
		width = max(width, len(rw.label))
	}
	const col = 9
	p("%-*s%*s%*s", width, "Latency", col+2, "count", col, "min")
	for _, pc := range Percentiles {
		p("%*s", col, pc.Name)
	}
	p("%*s\n", col, "max")
	for _, rw := range rows {
		p("%-*s%*d", width, rw.label, col+2, rw.l.Count)
		if rw.l.Count == 0 {
			p("%s\n", strings.Repeat(fmt.Sprintf("%*s", col, "-"), len(Percentiles)+2))
			continue
		}
		p("%*s", col, FormatUS(rw.l.MinUS))
		for _, pc := range Percentiles {
			v, _ := rw.l.Percentile(pc.Name)
			p("%*s", col, FormatUS(v))
		}
		p("%*s\n", col, FormatUS(rw.l.MaxUS))
	}
	p("rtt (corrected) is measured from each message's scheduled send time, so it includes any\n")
	p("wait to be sent (coordinated omission corrected); rtt uncorrected is measured from the\n")
	p("actual send time and hides such waits. send lag = actual - scheduled send time.\n")
	p("\n")
	writeSteps(&b, r)

	writeBackends(&b, r)
	writeRecovery(&b, r)
	p("Close codes  ")
	if len(r.CloseCodes) == 0 {
		p("none")
	}
	for i, code := range slices.Sorted(maps.Keys(r.CloseCodes)) {
		if i > 0 {
			p(", ")
		}
		p("%d %s: %d", code, closeCodeLabel(code), r.CloseCodes[code])
	}
	p("\n")
	p("Errors       ")
	if len(r.Errors) == 0 {
		p("none")
	}
	for i, reason := range sortedByCount(r.Errors) {
		if i > 0 {
			p(", ")
		}
		n := r.Errors[reason]
		p("%s %d", reason, n)
		switch conn := r.Connections.FailedByReason[reason]; {
		case conn == n:
			p(" (connect)")
		case conn > 0:
			p(" (%d connect)", conn)
		}
	}
	p("\n")

	g := r.Generator
	p("Generator    CPU %.2fs user + %.2fs sys", g.CPUUserS, g.CPUSysS)
	if g.GOMAXPROCS > 0 {
		p(" (GOMAXPROCS %d)", g.GOMAXPROCS)
	}
	perMsg := FormatUS(int64(math.Round(g.CPUPerMsgUS)))
	switch {
	case m.Sent == 0 && m.Received == 0:
		perMsg = "-" // no message: no cost per message
	case g.CPUPerMsgUS < 100:
		perMsg = fmt.Sprintf("%.1fµs", g.CPUPerMsgUS) // sub-µs precision matters here
	}
	lagP99 := "-"
	if r.Latency.SendLag.Count > 0 {
		lagP99 = FormatUS(r.Latency.SendLag.P99US)
	}
	p(", %s CPU per message, max RSS %s, send lag p99 %s\n", perMsg, FormatBytes(g.MaxRSSBytes), lagP99)
	if len(g.Warnings) > 0 {
		p("\nWarnings\n")
		for _, warn := range g.Warnings {
			p("  ! %s\n", warn)
		}
	}
	writeVerdicts(&b, r.SLO)
	// Server-controlled text (close reasons, backend names, error samples) is escaped.
	if _, err := termsafe.NewWriter(w).Write(b.Bytes()); err != nil {
		return fmt.Errorf("stats: writing summary: %w", err)
	}
	return nil
}

func describeConfig(c Config) string {
	var parts []string
	if c.Scenario != nil {
		// The flows decide rates and sizes; the connections are the peak.
		parts = append(parts, "scenario "+c.Scenario.String(), fmt.Sprintf("peak %d connections", c.Connections))
		if c.Pollers > 0 {
			parts = append(parts, fmt.Sprintf("%d pollers", c.Pollers))
		}
		if len(c.SourceIPs) > 0 {
			parts = append(parts, "from "+strings.Join(c.SourceIPs, " "))
		}
		return strings.Join(parts, ", ")
	}
	parts = append(parts, fmt.Sprintf("%d connections", c.Connections))
	if c.ConnectRate > 0 {
		parts = append(parts, fmt.Sprintf("opened at %g/s", c.ConnectRate))
	} else {
		parts = append(parts, "opened as fast as possible")
	}
	kind := "text"
	if c.Binary {
		kind = "binary"
	}
	if c.Rate > 0 {
		parts = append(parts, fmt.Sprintf("%g msg/s per connection of %d B %s", c.Rate, c.Size, kind))
		if c.SendAfterRamp {
			parts = append(parts, "starting once the ramp was over")
		}
	} else {
		parts = append(parts, "no scheduled messages")
	}
	if c.Pollers > 0 {
		parts = append(parts, fmt.Sprintf("%d pollers", c.Pollers))
	}
	if len(c.SourceIPs) > 0 {
		parts = append(parts, "from "+strings.Join(c.SourceIPs, " "))
	}
	return strings.Join(parts, ", ")
}

// CloseCodeName names the WebSocket close codes a load test commonly sees
// (RFC 6455 section 7.4.1): "normal", "going away", …; "" for others.
func CloseCodeName(code int) string {
	switch code {
	case 1000:
		return "normal"
	case 1001:
		return "going away"
	case 1002:
		return "protocol error"
	case 1003:
		return "unsupported data"
	case 1005:
		return "no status"
	case 1006:
		return "abnormal, no close frame"
	case 1007:
		return "invalid payload"
	case 1008:
		return "policy violation"
	case 1009:
		return "message too big"
	case 1011:
		return "server error"
	case 1012:
		return "service restart"
	case 1013:
		return "try again later"
	}
	return ""
}

// closeCodeLabel is CloseCodeName in parentheses, for the summary.
func closeCodeLabel(code int) string {
	if n := CloseCodeName(code); n != "" {
		return "(" + n + ")"
	}
	return ""
}

// FormatProgress returns the live progress line for one Interval:
//
//	[3s/10s] open 5000, conn/s 120, sent/s 4990, recv/s 4989, rtt p50 1.20ms p99 4.50ms, errors 0
//
// Rates are per second of the interval's own length. total 0 means an
// unbounded run. Whether to redraw it in place is the caller's business.
func FormatProgress(iv *Interval, elapsed, total time.Duration) string {
	var b strings.Builder
	b.WriteString("[")
	b.WriteString(elapsed.Round(time.Second).String())
	if total > 0 {
		b.WriteString("/")
		b.WriteString(total.Round(time.Second).String())
	}
	b.WriteString("]")
	secs := iv.Len().Seconds()
	rate := func(n int64) string {
		if secs <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(n)/secs)
	}
	fmt.Fprintf(&b, " open %d, conn/s %s, sent/s %s, recv/s %s", iv.Open, rate(iv.Established), rate(iv.Sent), rate(iv.Received))
	if count(iv.RTT) > 0 {
		fmt.Fprintf(&b, ", rtt p50 %s p99 %s", FormatUS(Quantile(iv.RTT, 50)), FormatUS(Quantile(iv.RTT, 99)))
	} else {
		b.WriteString(", rtt -")
	}
	fmt.Fprintf(&b, ", errors %d", iv.ErrorCount())
	if iv.TimedOut > 0 {
		fmt.Fprintf(&b, ", timeouts %d", iv.TimedOut)
	}
	return b.String()
}
