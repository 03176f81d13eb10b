package scenario

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Describe writes the resolved plan for people: phases with their times,
// flows with weights and one line per step (with its file position and
// histogram name), and the expected peak connections and message rate.
// Header values are shown as written, so secrets from ${env.…} stay hidden.
func (p *Plan) Describe(w io.Writer) error {
	bw := bufio.NewWriter(w)
	base := filepath.Base(p.File)
	fmt.Fprintf(bw, "scenario      %s\n", p.File)
	target := p.Target
	if target == "" {
		target = "(none: give --target)"
	}
	fmt.Fprintf(bw, "target        %s\n", target)
	for _, h := range p.Headers {
		fmt.Fprintf(bw, "header        %s: %s\n", h.Name, h.Value)
	}
	if len(p.Subprotocols) > 0 {
		fmt.Fprintf(bw, "subprotocols  %s\n", strings.Join(p.Subprotocols, ", "))
	}
	if p.Compression {
		fmt.Fprintf(bw, "compression   permessage-deflate\n")
	}
	var tls []string
	if p.TLS.Insecure {
		tls = append(tls, "insecure (no certificate verification)")
	}
	if p.TLS.ServerName != "" {
		tls = append(tls, "server name "+p.TLS.ServerName)
	}
	if p.TLS.CAFile != "" {
		tls = append(tls, "CA file "+p.TLS.CAFile)
	}
	if len(tls) > 0 {
		fmt.Fprintf(bw, "tls           %s\n", strings.Join(tls, ", "))
	}
	if p.Data != nil {
		fmt.Fprintf(bw, "data          %s: %d rows, columns %s (connection n takes row n mod %d)\n", p.Data.File, len(p.Data.Rows), strings.Join(p.Data.Columns, ", "), len(p.Data.Rows))
	}
	if len(p.Files) > 0 {
		outside := 0
		for _, f := range p.Files {
			where := ""
			if f.Outside {
				outside++
				where = "  OUTSIDE the scenario's directory"
			}
			fmt.Fprintf(bw, "reads         %s (%s, %d bytes)  %s:%s%s\n", f.Path, f.Kind, f.Size, base, f.Pos, where)
		}
		dir, err := filepath.Abs(filepath.Dir(p.File))
		if err != nil {
			dir = filepath.Dir(p.File)
		}
		if outside == 0 {
			fmt.Fprintf(bw, "              every file inside %s\n", dir)
		} else {
			fmt.Fprintf(bw, "              %d of %d files outside %s\n", outside, len(p.Files), dir)
		}
	}

	fmt.Fprintf(bw, "\nphases (%v in all):\n", p.Duration())
	for i, ph := range p.Phases {
		var load string
		switch ph.Kind {
		case PhaseConnections:
			switch {
			case ph.From == ph.To:
				load = fmt.Sprintf("hold %d connections", ph.To)
			case ph.From < ph.To:
				load = fmt.Sprintf("ramp up %d → %d connections (%.4g/s)", ph.From, ph.To, float64(ph.To-ph.From)/ph.Duration.Seconds())
			default:
				load = fmt.Sprintf("ramp down %d → %d connections", ph.From, ph.To)
			}
		case PhaseArrivals:
			load = fmt.Sprintf("%.4g new connections/s (each runs its flow to the end)", ph.Rate)
		}
		at := ""
		if ph.Pos.Line > 0 {
			at = fmt.Sprintf("  %s:%s", base, ph.Pos)
		}
		fmt.Fprintf(bw, "  %d  %-10s %-10s %-12s %s%s\n", i+1, fmtDur(ph.Start), fmtDur(ph.End()), ph.Name, load, at)
	}
	if len(p.Phases) == 0 {
		fmt.Fprintf(bw, "  (none: give -c and -d)\n")
	}

	fmt.Fprintf(bw, "\nflows:\n")
	for i := range p.Flows {
		f := &p.Flows[i]
		strict := ""
		if f.Strict {
			strict = ", strict (unexpected messages are errors)"
		}
		fmt.Fprintf(bw, "  %s: %.4g%% of connections, %s per connection%s  %s:%s\n", f.Name, 100*f.Weight, f.SendRate(), strict, base, f.Pos)
		describeSteps(bw, base, f.Steps, 2)
	}

	e := p.Estimate()
	peak := strconv.Itoa(e.PeakConnections)
	switch e.PeakAccuracy {
	case Approximate:
		peak = "~" + peak
	case Unknown:
		peak = "at least " + peak + " (flow lengths depend on the server)"
	}
	fmt.Fprintf(bw, "\nexpected peak connections  %s\n", peak)
	fmt.Fprintf(bw, "expected message rate      %s sent, at the busiest phase\n", e.MessageRate)
	return bw.Flush()
}

func fmtDur(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

func describeSteps(w io.Writer, base string, steps []Step, indent int) {
	for i := range steps {
		s := &steps[i]
		loc := fmt.Sprintf("%s:%s", base, s.Pos)
		mark := ""
		if s.Mark != "" {
			mark = " mark=" + s.Mark
		}
		fmt.Fprintf(w, "%s%-9s %s  [%s]%s  %s\n", strings.Repeat("  ", indent), s.Kind, stepDetail(s), s.Name, mark, loc)
		if s.Kind == StepRepeat {
			describeSteps(w, base, s.Repeat.Steps, indent+1)
		}
	}
}

func stepDetail(s *Step) string {
	switch s.Kind {
	case StepSend:
		src := truncate(s.Send.Payload.String(), 60)
		if s.Send.Source != "json" {
			src = strconv.Quote(src)
		}
		d := s.Send.Source + " " + src
		if s.Send.Binary {
			d += ", binary"
		}
		if s.Send.Stamp {
			d += ", stamped for fan-out"
		}
		return d
	case StepExpect:
		e := s.Expect
		var parts []string
		if e.Match.Contains != nil {
			parts = append(parts, "contains "+strconv.Quote(truncate(string(e.Match.Contains), 40)))
		}
		if e.Match.Regex != nil {
			parts = append(parts, "regex /"+e.Match.Regex.String()+"/")
		}
		for i := range e.Match.JSON {
			parts = append(parts, e.Match.JSON[i].String())
		}
		if e.Match.Stamped {
			parts = append(parts, "stamped")
		}
		if len(parts) == 0 {
			parts = append(parts, "any message")
		}
		switch e.From {
		case FromLastSend:
			parts = append(parts, "latency from the last send")
		case FromMark:
			parts = append(parts, "latency since mark "+e.Since)
		case FromStamp:
			parts = append(parts, "latency from the stamp")
		}
		parts = append(parts, "timeout "+e.Timeout.String())
		if e.Continue {
			parts = append(parts, "continue on timeout")
		}
		for _, c := range e.Captures {
			parts = append(parts, captureDetail(&c))
		}
		return strings.Join(parts, ", ")
	case StepCapture:
		return captureDetail(s.Capture) + " from the last matched message"
	case StepSleep:
		return s.Sleep.String()
	case StepRepeat:
		r := s.Repeat
		var parts []string
		if r.Count > 0 {
			parts = append(parts, fmt.Sprintf("%d times", r.Count))
		}
		if r.For > 0 {
			parts = append(parts, "for "+r.For.String())
		}
		if !r.Bounded() {
			parts = append(parts, "until the run ends")
		}
		if r.Rate > 0 {
			parts = append(parts, fmt.Sprintf("at %.4g/s", r.Rate))
		}
		return strings.Join(parts, ", ")
	case StepPing:
		return "timeout " + s.Ping.Timeout.String()
	case StepClose:
		if s.Close.Reason != "" {
			return fmt.Sprintf("code %d, reason %q", s.Close.Code, s.Close.Reason)
		}
		return fmt.Sprintf("code %d", s.Close.Code)
	case StepReconnect:
		r := s.Reconnect
		att := "no attempt limit"
		if r.Attempts > 0 {
			att = fmt.Sprintf("%d attempts", r.Attempts)
		}
		return fmt.Sprintf("backoff %v doubling to %v, jitter %.2g, %s", r.Min, r.Max, r.Jitter, att)
	case StepReplay:
		r := s.Replay
		return fmt.Sprintf("%s: %d messages (%d sent) over %v at speed %.3g", filepath.Base(r.File), len(r.Messages), r.Sends(), r.Duration().Round(time.Millisecond), r.Speed)
	}
	return ""
}

func captureDetail(c *Capture) string {
	if c.Regex != nil {
		return fmt.Sprintf("capture %s ← regex /%s/ group %d", c.Var, c.Regex, c.Group)
	}
	return fmt.Sprintf("capture %s ← json %s", c.Var, c.JSONPath)
}
