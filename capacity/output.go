package capacity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wsload/wsload/internal/atomicfile"
	"github.com/wsload/wsload/internal/termsafe"
	"github.com/wsload/wsload/stats"
)

// WriteText writes the search as a table, one row per step in the order run,
// then the knee.
func (r *Result) WriteText(w io.Writer) error {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("wsload capacity -> %s\n", r.Target)
	p("Search       %s: connections %s, rate %s; hold %gs per step, refine %d\n", r.Dimension, r.Connections, r.Rate, r.HoldS, r.Refine)
	p("SLO          %s\n\n", r.SLO)
	p("%4s  %-6s %11s %9s %11s %7s %8s %8s %9s %9s %9s  %s\n", "step", "phase", "connections", "msg/s",
		"established", "failed", "errors", "timeouts", "recv/s", "rtt p99", "hs p99", "SLO")
	for _, st := range r.Steps {
		p("%4d  %-6s %11d %9s", st.N, st.Phase, st.Level.Connections, fmtNum(st.Level.Rate))
		if st.Error != "" {
			p("  could not run: %s\n", st.Error)
			continue
		}
		f := st.Figures
		p(" %11d %7d %8s %8s %9s %9s %9s  ", f.Established, f.Failed,
			stats.FormatValue(f.ErrorsPct, "%"), stats.FormatValue(f.TimeoutsPct, "%"),
			fmt.Sprintf("%.0f", f.ReceivedPerS), latency(st, f.RTTP99US, "rtt"), latency(st, f.HandshakeP99US, "hs"))
		if st.OK {
			p("ok\n")
			continue
		}
		var broken []string
		for _, v := range st.Verdicts {
			if v.OK {
				continue
			}
			s := v.Metric + " " + stats.FormatValue(v.Actual, v.Unit) + " (want " + v.Op + stats.FormatValue(v.Threshold, v.Unit) + ")"
			if v.Note != "" {
				s = v.Metric + ": " + v.Note
			}
			broken = append(broken, s)
		}
		p("BROKEN %s\n", strings.Join(broken, ", "))
	}
	p("\n")
	switch {
	case r.Knee != nil:
		p("Knee         %s: the highest level that met the SLO\n", r.Knee)
	case r.FirstBad != nil:
		p("Knee         none: even the first step broke the SLO\n")
	default:
		p("Knee         none: no step completed\n")
	}
	switch {
	case r.FirstBad != nil:
		p("Broken at    %s: %s\n", r.FirstBad, brokenText(r, *r.FirstBad))
	case r.Knee != nil:
		p("Broken at    never: every step up to the maximum met the SLO; the knee is at least the maximum\n")
	}
	if _, err := termsafe.NewWriter(w).Write(b.Bytes()); err != nil { // target, error reasons: escaped
		return fmt.Errorf("capacity: writing table: %w", err)
	}
	return nil
}

func latency(st Step, us int64, which string) string {
	if st.Result == nil {
		return "-"
	}
	n := st.Result.Latency.RTT.Count
	if which == "hs" {
		n = st.Result.Latency.Handshake.Count
	}
	if n == 0 {
		return "-"
	}
	return stats.FormatValue(float64(us), "us")
}

func fmtNum(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// Encode writes r as indented JSON.
func (r *Result) Encode(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("capacity: encoding result: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("capacity: writing result: %w", err)
	}
	return nil
}

// maxResultBytes bounds Decode: a search is tens of steps of a few hundred
// KB each at most.
const maxResultBytes = 512 << 20

// Decode reads a capacity Result, refusing other schemas and step results
// that do not decode as stats Results.
func Decode(rd io.Reader) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(rd, maxResultBytes+1))
	if err != nil {
		return nil, fmt.Errorf("capacity: reading result: %w", err)
	}
	if len(data) > maxResultBytes {
		return nil, fmt.Errorf("capacity: result larger than %d bytes", maxResultBytes)
	}
	var probe struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("capacity: decoding result: %w", err)
	}
	if probe.Schema != Schema {
		return nil, fmt.Errorf("capacity: unsupported schema %q (this wsload reads %q)", probe.Schema, Schema)
	}
	var raw struct {
		Steps []struct {
			Result json.RawMessage `json:"result"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("capacity: decoding result: %w", err)
	}
	r := new(Result)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("capacity: decoding result: %w", err)
	}
	// Each step's result goes through stats' own checks (schema, hdr counts).
	for i, s := range raw.Steps {
		if len(s.Result) == 0 || string(s.Result) == "null" {
			continue
		}
		sr, err := stats.DecodeResult(bytes.NewReader(s.Result))
		if err != nil {
			return nil, fmt.Errorf("capacity: step %d: %w", i+1, err)
		}
		r.Steps[i].Result = sr
	}
	return r, nil
}

// WriteJSONFile writes r to path through atomicfile: a regular file is replaced atomically, a
// symlink is followed, a device or FIFO is written through, never replaced.
func WriteJSONFile(path string, r *Result) error {
	var buf bytes.Buffer
	if err := r.Encode(&buf); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("capacity: %w", err)
	}
	return nil
}

// ReadFile reads the capacity Result at path.
func ReadFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	defer f.Close()
	r, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return r, nil
}
