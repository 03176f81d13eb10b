package stats

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// timeline makes one-second points with the given open gauges.
func timeline(open ...int64) []Point {
	tl := make([]Point, len(open))
	for i, o := range open {
		tl[i] = Point{T: float64(i + 1), LenS: 1, Open: o}
	}
	return tl
}

func fp(v float64) *float64 { return &v }

func TestComputeRecovery(t *testing.T) {
	reconnects := map[string]StepLatency{
		"hold.reconnect@20": {Corrected: Latency{Count: 70}},
		"hold.expect@14":    {Corrected: Latency{Count: 9000}},
	}
	for _, tc := range []struct {
		name        string
		conns       int
		peak        int64
		open        []int64
		codes       map[int]int64
		steps       map[string]StepLatency
		want        *Recovery
		wantDropped *float64
		wantBack    *float64
		wantMin     int64
	}{
		{name: "nothing dropped", conns: 100, open: []int64{50, 100, 100, 0},
			codes: map[int]int64{1000: 100}},
		{name: "drop and recover", conns: 100, open: []int64{50, 100, 100, 70, 80, 99, 100, 0},
			codes: map[int]int64{1000: 100, 1001: 30}, steps: reconnects,
			want: &Recovery{Target: 100, Level: 99, Reconnects: 70, DropsByCode: map[int]int64{1001: 30}},
			// below 99 at the end of second 4 (T=4): dropped at 3; back at T=6.
			wantDropped: fp(3), wantBack: fp(6), wantMin: 70},
		{name: "never back", conns: 100, open: []int64{100, 100, 60, 65, 0},
			codes: map[int]int64{1006: 40},
			want:  &Recovery{Target: 100, Level: 99, DropsByCode: map[int]int64{1006: 40}},
			// the closing second (open 0) is not a further low.
			wantDropped: fp(2), wantMin: 60},
		{name: "closing straddles a tick", conns: 100, open: []int64{100, 100, 100, 40, 0},
			codes: map[int]int64{1001: 3}, steps: reconnects,
			want: &Recovery{Target: 100, Level: 99, Reconnects: 70, DropsByCode: map[int]int64{1001: 3}}},
		{name: "dip within a second", conns: 100, open: []int64{100, 100, 100, 0},
			codes: map[int]int64{1001: 3}, steps: reconnects,
			want: &Recovery{Target: 100, Level: 99, Reconnects: 70, DropsByCode: map[int]int64{1001: 3}}},
		{name: "target from peak open", peak: 10, open: []int64{10, 5, 10},
			codes: map[int]int64{1006: 5},
			want:  &Recovery{Target: 10, Level: 10, DropsByCode: map[int]int64{1006: 5}},
			// the last second is not wsload's close (open is not 0): kept.
			wantDropped: fp(1), wantBack: fp(3), wantMin: 5},
		{name: "level never reached", conns: 100, open: []int64{20, 10, 0},
			codes: map[int]int64{1001: 10}},
		{name: "level never reached, reconnects", conns: 100, open: []int64{20, 10, 0},
			codes: map[int]int64{1001: 10}, steps: reconnects,
			want: &Recovery{Target: 100, Level: 99, Reconnects: 70, DropsByCode: map[int]int64{1001: 10}}},
		{name: "a few abnormal closes", conns: 100, open: []int64{100, 100, 100, 0},
			codes: map[int]int64{1000: 98, 1006: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Result{Config: Config{Connections: tc.conns}, Connections: Connections{PeakOpen: tc.peak},
				CloseCodes: tc.codes, Timeline: timeline(tc.open...), Latency: Latencies{Steps: tc.steps}}
			got := ComputeRecovery(r)
			if tc.want == nil {
				if got != nil {
					t.Fatalf("got %+v, want nil", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("got nil, want %+v", tc.want)
			}
			if got.Target != tc.want.Target || got.Level != tc.want.Level || got.Reconnects != tc.want.Reconnects {
				t.Fatalf("target/level/reconnects = %d/%d/%d, want %d/%d/%d", got.Target, got.Level, got.Reconnects,
					tc.want.Target, tc.want.Level, tc.want.Reconnects)
			}
			if len(got.DropsByCode) != len(tc.want.DropsByCode) {
				t.Fatalf("drops by code %v, want %v", got.DropsByCode, tc.want.DropsByCode)
			}
			for code, n := range tc.want.DropsByCode {
				if got.DropsByCode[code] != n {
					t.Fatalf("drops by code %v, want %v", got.DropsByCode, tc.want.DropsByCode)
				}
			}
			if !sameF(got.DroppedAtS, tc.wantDropped) || !sameF(got.RecoveredAtS, tc.wantBack) {
				t.Fatalf("dropped %v recovered %v, want %v %v", str(got.DroppedAtS), str(got.RecoveredAtS), str(tc.wantDropped), str(tc.wantBack))
			}
			if tc.wantBack != nil && *got.RecoverS != *tc.wantBack-*tc.wantDropped {
				t.Fatalf("recover_s %v, want %v", *got.RecoverS, *tc.wantBack-*tc.wantDropped)
			}
			if got.MinOpen != tc.wantMin {
				t.Fatalf("min open %d, want %d", got.MinOpen, tc.wantMin)
			}
		})
	}
}

func sameF(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func str(v *float64) string {
	if v == nil {
		return "null"
	}
	b, _ := json.Marshal(*v)
	return string(b)
}

// TestOpenAtEnd checks that each backend's open_at_end is its level before
// wsload's own closing second, that the spread is computed on it, and that
// the text summary and JSON carry both; a run with no closing second takes
// the last level.
func TestOpenAtEnd(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	second := func(i int, open int64, perBackend map[string]int64) *Interval {
		iv := NewInterval(t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i+1)*time.Second))
		iv.Open = open
		for name, o := range perBackend {
			b := iv.backend(name)
			b.Open, b.PeakOpen = o, o
			if i == 0 {
				b.Established = o
			}
		}
		return iv
	}
	for _, tc := range []struct {
		name    string
		seconds []*Interval
		want    map[string]int64
	}{
		{"closing second left out", []*Interval{
			second(0, 90, map[string]int64{"b1": 30, "b2": 30, "b3": 30}),
			second(1, 90, map[string]int64{"b1": 45, "b2": 45, "b3": 0}),
			second(2, 90, map[string]int64{"b1": 40, "b2": 40, "b3": 10}),
			second(3, 0, nil),
		}, map[string]int64{"b1": 40, "b2": 40, "b3": 10}},
		{"closing over two seconds", []*Interval{
			second(0, 90, map[string]int64{"b1": 30, "b2": 30, "b3": 30}),
			second(1, 90, map[string]int64{"b1": 50, "b2": 20, "b3": 20}),
			second(2, 6, map[string]int64{"b1": 2, "b2": 1, "b3": 3}),
			second(3, 0, nil),
		}, map[string]int64{"b1": 50, "b2": 20, "b3": 20}},
		{"closed in the tick's second, final one empty", []*Interval{
			second(0, 90, map[string]int64{"b1": 30, "b2": 30, "b3": 30}),
			second(1, 90, map[string]int64{"b1": 40, "b2": 40, "b3": 10}),
			second(2, 0, nil),
			second(3, 0, nil),
		}, map[string]int64{"b1": 40, "b2": 40, "b3": 10}},
		{"still open at the end", []*Interval{
			second(0, 90, map[string]int64{"b1": 30, "b2": 30, "b3": 30}),
			second(1, 60, map[string]int64{"b1": 30, "b2": 30}),
		}, map[string]int64{"b1": 30, "b2": 30, "b3": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg := NewAggregate(t0)
			for _, iv := range tc.seconds {
				agg.Add(iv)
			}
			r := agg.Result(Header{Config: Config{Connections: 90}})
			for name, want := range tc.want {
				if got := r.Backends[name].Connections.OpenAtEnd; got != want {
					t.Fatalf("%s open_at_end %d, want %d (backends %+v)", name, got, want, r.Backends)
				}
			}
			var lo, hi int64 = 1 << 62, 0
			for _, v := range tc.want {
				lo, hi = min(lo, v), max(hi, v)
			}
			s := r.BackendSpread.OpenAtEnd
			if s == nil || s.By != "open_at_end" || s.Min != lo || s.Max != hi {
				t.Fatalf("open_at_end spread %+v, want min %d max %d", s, lo, hi)
			}
			var text bytes.Buffer
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "open at end open_at_end max/min") {
				t.Fatalf("summary lacks the open-at-end spread:\n%s", text.String())
			}
			var js bytes.Buffer
			if err := EncodeResult(&js, r); err != nil {
				t.Fatal(err)
			}
			back, err := DecodeResult(&js)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				if got := back.Backends[name].Connections.OpenAtEnd; got != want {
					t.Fatalf("after a JSON round trip %s open_at_end %d, want %d", name, got, want)
				}
			}
		})
	}
}

// TestRecoveryText checks the summary's Reconnects and Recovery lines, and
// that a Result from Aggregate carries the recovery.
func TestRecoveryText(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	agg := NewAggregate(t0)
	for i, open := range []int64{100, 100, 60, 100, 100, 0} {
		iv := NewInterval(t0.Add(time.Duration(i)*time.Second), t0.Add(time.Duration(i+1)*time.Second))
		iv.Open = open
		if i == 2 {
			iv.Closed = 40
			iv.CloseCodes[1001] = 40
		}
		agg.Add(iv)
	}
	r := agg.Result(Header{Config: Config{Connections: 100}})
	if r.Recovery == nil || r.Recovery.RecoverS == nil || *r.Recovery.RecoverS != 2 {
		t.Fatalf("recovery %+v, want recovered in 2s", r.Recovery)
	}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Reconnects   0 after drops (1001 (going away): 40)",
		"Recovery     open fell below 99 at 2s (lowest 60), back at 4s: recovered in 2s",
	} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
