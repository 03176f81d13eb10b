package bench

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wsload/wsload/stats"
)

// BenchmarkMergeManySteps is what `wsload merge` does with two segments of
// a scenario run with 6,000 step names (each step a few samples, every
// third one a send with its send lag) once it has read them: merge, and
// encode the merged result. It reports time and allocated bytes per merge
// (B/op), and the size of the two inputs:
//
//	go test ./bench -run '^$' -bench 'MergeManySteps' -benchmem -benchtime 3x
func BenchmarkMergeManySteps(b *testing.B) {
	const steps = 6000
	dir := b.TempDir()
	var files []string
	var size int64
	for seg := 1; seg <= 2; seg++ {
		path := filepath.Join(dir, fmt.Sprintf("seg%d.json", seg))
		if err := stats.WriteJSONFile(path, manyStepResult(steps, seg)); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size += fi.Size()
		files = append(files, path)
	}
	results := make([]*stats.Result, len(files))
	for i, f := range files {
		r, err := stats.ReadResultFile(f)
		if err != nil {
			b.Fatal(err)
		}
		results[i] = r
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := stats.Merge(results...)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Latency.Steps) != steps {
			b.Fatalf("merged %d steps, want %d", len(m.Latency.Steps), steps)
		}
		if err := stats.EncodeResult(io.Discard, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "input_bytes")
}

// manyStepResult is segment seg/2 of a run with the given number of steps.
func manyStepResult(steps, seg int) *stats.Result {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	lat := func(us ...int64) stats.Latency {
		h := stats.NewHistogram()
		for _, v := range us {
			_ = h.RecordValue(v)
		}
		l, err := stats.NewLatency(h)
		if err != nil {
			panic(err)
		}
		return l
	}
	empty := lat()
	r := &stats.Result{
		Schema:    stats.Schema,
		Tool:      stats.Tool,
		Target:    "ws://127.0.0.1:8080/",
		Start:     start,
		DurationS: 10,
		Config:    stats.Config{Connections: 10, Segment: stats.Segment{Index: seg, Count: 2}},
		Latency: stats.Latencies{
			Handshake: lat(900, 1100), RTT: empty, RTTUncorrected: empty, SendLag: empty,
			Steps: make(map[string]stats.StepLatency, steps),
		},
		Generator: stats.Generator{Host: "bench", PID: 1000 + seg},
		Timeline:  []stats.Point{{T: 1, LenS: 1}},
	}
	for i := range steps {
		name := fmt.Sprintf("step-%05d", i)
		s := stats.StepLatency{Corrected: empty, Uncorrected: empty}
		if i%3 == 0 {
			sl := lat(int64(10+i%50), int64(20+seg))
			s.Sent, s.SendLag = 2, &sl
		} else {
			base := int64(1000 + 37*i)
			s.Corrected = lat(base, base*2, base+int64(seg))
			s.Uncorrected = lat(base/2, base, base/2+int64(seg))
			s.Count = s.Corrected.Count
		}
		r.Latency.Steps[name] = s
	}
	return r
}
