package stats

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("writing golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestWriteTextGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  func() *Result
	}{
		{"summary.golden", func() *Result { return sampleResult(t) }},
		{"summary_failed.golden", func() *Result {
			agg := NewAggregate(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			iv := NewInterval(agg.start, agg.start.Add(time.Second))
			iv.Requested, iv.Attempted, iv.Failed, iv.NotStarted = 8, 5, 5, 3
			iv.ConnFailures = map[string]int64{"refused": 4, "dns": 1}
			iv.Errors = map[string]int64{"refused": 4, "dns": 1}
			agg.Add(iv)
			r := agg.Result(Header{Version: "0.1.0-test", Target: "ws://127.0.0.1:1/", Config: Config{Connections: 8, ConnectRate: 100, Binary: true}})
			r.EndReason = EndAllClosed
			return r
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteText(&b, tc.res()); err != nil {
				t.Fatalf("WriteText: %v", err)
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}

// TestWriteTextContent checks what the summary must say, independent of the
// golden file's layout.
func TestWriteTextContent(t *testing.T) {
	r := sampleResult(t)
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	out := b.String()
	for _, want := range []string{
		"ws://127.0.0.1:8080/echo",
		"coordinated omission corrected",
		"rtt (corrected)", "rtt uncorrected", "send lag", "step login (corrected)", "step login uncorrected",
		"p50", "p999", "p9999",
		"refused 1 (connect)", "read 1",
		"1006 (abnormal, no close frame): 2",
		"send lag p99 " + FormatUS(r.Latency.SendLag.P99US),
		"max RSS 48.0 MiB",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("summary lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Bearer") {
		t.Fatalf("summary leaks a secret:\n%s", out)
	}
	if err := WriteText(failWriter{}, r); err == nil || !strings.HasPrefix(err.Error(), "stats: ") {
		t.Fatalf("WriteText to a failing writer: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFmtUnits(t *testing.T) {
	for _, tc := range []struct {
		us   int64
		want string
	}{
		{0, "0µs"}, {999, "999µs"}, {1000, "1.00ms"}, {1234, "1.23ms"}, {12_345, "12.3ms"},
		{123_456, "123ms"}, {1_234_567, "1.23s"}, {HighestUS, "3600s"},
	} {
		if got := FormatUS(tc.us); got != tc.want {
			t.Fatalf("FormatUS(%d) = %q, want %q", tc.us, got, tc.want)
		}
	}
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.00 KiB"}, {3 << 20, "3.00 MiB"}, {5 << 40, "5.00 TiB"}, {5000 << 40, "5000 TiB"},
	} {
		if got := FormatBytes(tc.n); got != tc.want {
			t.Fatalf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestFormatProgress(t *testing.T) {
	t0 := time.Unix(0, 0)
	busy := NewInterval(t0, t0.Add(500*time.Millisecond))
	busy.Open, busy.Established, busy.Sent, busy.Received, busy.TimedOut = 5000, 60, 2500, 2400, 3
	busy.Errors = map[string]int64{"refused": 2, "read": 1}
	for v := int64(1); v <= 1000; v++ {
		_ = busy.RTT.RecordValue(v * 10)
	}
	for _, tc := range []struct {
		name           string
		iv             *Interval
		elapsed, total time.Duration
		want           string
	}{
		{"busy half second", busy, 3400 * time.Millisecond, 10 * time.Second,
			"[3s/10s] open 5000, conn/s 120, sent/s 5000, recv/s 4800, rtt p50 5.00ms p99 9.90ms, errors 3, timeouts 3"},
		{"idle unbounded", NewInterval(t0, t0.Add(time.Second)), 90 * time.Second, 0,
			"[1m30s] open 0, conn/s 0, sent/s 0, recv/s 0, rtt -, errors 0"},
		{"empty span", NewInterval(t0, t0), 0, time.Second,
			"[0s/1s] open 0, conn/s -, sent/s -, recv/s -, rtt -, errors 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := FormatProgress(tc.iv, tc.elapsed, tc.total); got != tc.want {
				t.Fatalf("FormatProgress =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
