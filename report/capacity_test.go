package report

import (
	"regexp"
	"strings"
	"testing"
)

func TestKnee(t *testing.T) {
	p := func(level float64, ok bool) CapacityPoint { return CapacityPoint{Level: level, OK: ok} }
	for _, tc := range []struct {
		name   string
		points []CapacityPoint
		want   float64
		ok     bool
	}{
		{"none", nil, 0, false},
		{"all met", []CapacityPoint{p(1, true), p(2, true), p(3, true)}, 3, true},
		{"lowest missed", []CapacityPoint{p(1, false), p(2, true)}, 0, false},
		{"knee in the middle", []CapacityPoint{p(1, true), p(2, true), p(3, false), p(4, false)}, 2, true},
		{"unsorted input", []CapacityPoint{p(4, false), p(2, true), p(3, false), p(1, true)}, 2, true},
		{"a pass above a failure is not capacity", []CapacityPoint{p(1, true), p(2, false), p(3, true)}, 1, true},
		{"the synthetic search", sampleCapacity.Points, 20000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, ok := Knee(tc.points)
			if ok != tc.ok || (ok && k.Level != tc.want) {
				t.Fatalf("Knee = %v, %v; want level %v, %v", k.Level, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestCapacityCurve(t *testing.T) {
	got, err := CapacityCurve(sampleCapacity)
	if err != nil {
		t.Fatalf("CapacityCurve: %v", err)
	}
	out := string(got)
	ids := regexp.MustCompile(`<figure class="chart" id="([^"]+)"`).FindAllStringSubmatch(out, -1)
	if len(ids) != 2 || ids[0][1] != "capacity-p99" || ids[1][1] != "capacity-errors" {
		t.Fatalf("capacity charts = %v, want capacity-p99 and capacity-errors", ids)
	}
	for _, want := range []string{
		"Capacity (knee): <strong>20,000</strong> connections",
		"p99 ≤ 50ms, errors ≤ 0.1%",
		">knee 20,000<", // the mark on the chart
		"missed the SLO",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("capacity section lacks %q:\n%s", want, out)
		}
	}
	// The table lists levels in order, marks the misses and the knee row.
	rows := regexp.MustCompile(`(?s)<tr( class="knee-row")?><td class="num">([0-9,]+)</td>.*?</tr>`).FindAllStringSubmatch(out, -1)
	var levels, knees []string
	for _, r := range rows {
		levels = append(levels, r[2])
		if r[1] != "" {
			knees = append(knees, r[2])
		}
	}
	if strings.Join(levels, " ") != "5,000 10,000 15,000 20,000 25,000 30,000" || strings.Join(knees, " ") != "20,000" {
		t.Fatalf("capacity table levels %v, knee rows %v", levels, knees)
	}
	if n := strings.Count(out, `<span class="tag bad">missed</span>`); n != 2 {
		t.Fatalf("capacity table marks %d levels missed, want 2", n)
	}

	none, err := CapacityCurve(Capacity{})
	if err != nil || none != "" {
		t.Fatalf("CapacityCurve of no points = %q, %v; want nothing", none, err)
	}
	failed, err := CapacityCurve(Capacity{LevelName: "messages/s", Points: []CapacityPoint{{Level: 1000, P99US: 90_000, ErrorsPct: 5}}})
	if err != nil || !strings.Contains(string(failed), "No capacity found") || strings.Contains(string(failed), ">knee ") {
		t.Fatalf("CapacityCurve with no passing level: %v\n%s", err, failed)
	}
}
