package report

import (
	"fmt"

	"github.com/wsload/wsload/capacity"
)

// CapacityOf turns a capacity search (wsload capacity -o cap.json, read by
// capacity.ReadFile) into the curve CapacityCurve draws: one point per step,
// at the level the search raised (connections for the connections and both
// dimensions, total messages per second for rate), with its corrected p99
// RTT and error rate. A step that could not run counts as missing the SLO.
func CapacityOf(c *capacity.Result) Capacity {
	out := Capacity{LevelName: "connections", SLO: c.SLO}
	switch c.Dimension {
	case capacity.Rate:
		out.LevelName = "messages/s"
	case capacity.Both:
		out.LevelName = "connections (and their rate)"
	}
	for _, s := range c.Steps {
		level := float64(s.Level.Connections)
		if c.Dimension == capacity.Rate {
			level = s.Level.Rate
		}
		out.Points = append(out.Points, CapacityPoint{
			Level:     level,
			P99US:     s.Figures.RTTP99US,
			ErrorsPct: s.Figures.ErrorsPct,
			OK:        s.OK && s.Error == "",
		})
	}
	return out
}

// CapacityRun is the run a capacity page reports in detail below the curve:
// the step at the knee (the highest level that met the SLO), else the first
// step that has a result. ok is false when no step has one.
func CapacityRun(c *capacity.Result) (run Run, ok bool) {
	pick := -1
	for i, s := range c.Steps {
		if s.Result == nil {
			continue
		}
		if pick < 0 {
			pick = i
		}
		if c.Knee != nil && s.Level == *c.Knee && s.OK {
			pick = i
			break
		}
	}
	if pick < 0 {
		return Run{}, false
	}
	s := c.Steps[pick]
	label := fmt.Sprintf("step %d: %s", s.N, s.Level)
	if c.Knee != nil && s.Level == *c.Knee {
		label = fmt.Sprintf("knee (step %d): %s", s.N, s.Level)
	}
	return Run{Label: label, Result: s.Result}, true
}
