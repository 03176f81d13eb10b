package stats

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// hlogIntervals returns 3 one-second intervals from start; the second has no
// handshakes, the third nothing at all.
func hlogIntervals(start time.Time) []*Interval {
	var out []*Interval
	for sec := range 3 {
		iv := NewInterval(start.Add(time.Duration(sec)*time.Second), start.Add(time.Duration(sec+1)*time.Second))
		if sec < 2 {
			for i := range 500 {
				Record(iv.RTT, time.Duration(100+i*(sec+1)*7)*time.Microsecond)
				Record(iv.RTTUncorrected, time.Duration(90+i*(sec+1)*5)*time.Microsecond)
			}
		}
		if sec == 0 {
			for i := range 20 {
				Record(iv.Handshake, time.Duration(1000+i*50)*time.Microsecond)
			}
		}
		out = append(out, iv)
	}
	return out
}

func writeHlog(t *testing.T, start time.Time, ivs []*Interval) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewHlogWriter(&b, start)
	if err != nil {
		t.Fatalf("NewHlogWriter: %v", err)
	}
	for _, iv := range ivs {
		if err := w.WriteInterval(iv); err != nil {
			t.Fatalf("WriteInterval: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return b.Bytes()
}

func TestHlogRoundTrip(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	ivs := hlogIntervals(start)
	data := writeHlog(t, start, ivs)
	text := string(data)
	for _, want := range []string{
		"#[Histogram log format version 1.3]\n",
		"#[StartTime: 1735787045.600 (seconds since epoch), 2025-01-02T03:04:05.6Z]\n",
		"\n" + hlogLegend + "\n",
		"\nTag=rtt,0.000,1.000,",
		"\nTag=rtt,1.000,1.000,",
		"\nTag=handshake,0.000,1.000,1.950,HISTF", // max 1950 µs -> 1.950 ms
	} {
		if !strings.Contains(text, want) {
			t.Fatalf("log lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "\nTag="); n != 5 { // rtt+uncorrected+handshake, rtt+uncorrected, nothing
		t.Fatalf("log has %d interval lines, want 5:\n%s", n, text)
	}

	l, err := ReadHlog(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ReadHlog: %v", err)
	}
	if !l.Start.Equal(start) || len(l.Intervals) != 5 {
		t.Fatalf("read start %v, %d intervals; want %v, 5", l.Start, len(l.Intervals), start)
	}
	i := 0
	for _, iv := range ivs {
		for _, want := range []struct {
			tag string
			h   *hdrhistogram.Histogram
		}{{HlogTagRTT, iv.RTT}, {HlogTagRTTUncorrected, iv.RTTUncorrected}, {HlogTagHandshake, iv.Handshake}} {
			if want.h.TotalCount() == 0 {
				continue
			}
			got := l.Intervals[i]
			i++
			h, clamped := got.Histogram()
			if got.Tag != want.tag || !got.Start.Equal(iv.Start) || got.LengthS != 1 || clamped != 0 ||
				!h.Equals(want.h) || got.MaxMS != float64(want.h.Max())/1000 {
				t.Fatalf("interval %d: tag %q start %v len %g max %g ms clamped %d equal %v; want %q %v 1 %g",
					i-1, got.Tag, got.Start, got.LengthS, got.MaxMS, clamped, h.Equals(want.h), want.tag, iv.Start, float64(want.h.Max())/1000)
			}
		}
	}
}

// TestHlogReadByHdrHistogramGo checks other HdrHistogram tools read our log:
// hdrhistogram-go's own reader gets every tag, time and histogram back.
func TestHlogReadByHdrHistogramGo(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ivs := hlogIntervals(start)
	r := hdrhistogram.NewHistogramLogReader(bytes.NewReader(writeHlog(t, start, ivs)))
	type line struct {
		tag   string
		start int64 // ms
		n     int64
		p99   int64
	}
	var got, want []line
	for _, iv := range ivs {
		for _, w := range []struct {
			tag string
			h   *hdrhistogram.Histogram
		}{{HlogTagRTT, iv.RTT}, {HlogTagRTTUncorrected, iv.RTTUncorrected}, {HlogTagHandshake, iv.Handshake}} {
			if w.h.TotalCount() > 0 {
				want = append(want, line{w.tag, iv.Start.UnixMilli(), w.h.TotalCount(), Quantile(w.h, 99)})
			}
		}
	}
	for {
		h, err := r.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("hdrhistogram-go reader: %v", err)
		}
		if h == nil {
			break
		}
		got = append(got, line{h.Tag(), h.StartTimeMs(), h.TotalCount(), Quantile(h, 99)})
	}
	if len(got) != len(want) {
		t.Fatalf("hdrhistogram-go read %d intervals, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("interval %d: hdrhistogram-go read %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReadHlogForeign(t *testing.T) {
	h := hdrhistogram.New(1, 3_600_000_000_000, 3) // a nanosecond histogram of another tool
	for v := int64(1); v <= 1000; v++ {
		_ = h.RecordValue(v * 1_000_000)
	}
	_ = h.RecordValue(3_600_000_000_000)
	enc, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	p := string(enc)
	for _, tc := range []struct {
		name    string
		log     string
		start   time.Time
		ivStart time.Time
		tag     string
		err     string
	}{
		{name: "absolute, no headers", log: "1700000000.5,1.0,1.0," + p + "\n",
			start: time.Unix(1700000000, 5e8), ivStart: time.Unix(1700000000, 5e8)},
		{name: "relative to StartTime, CRLF", log: "#[StartTime: 1700000000.250 (seconds since epoch), x]\r\nTag=A,2.000,1.0,1.0," + p + "\r\n",
			start: time.Unix(1700000000, 25e7), ivStart: time.Unix(1700000002, 25e7), tag: "A"},
		{name: "BaseTime", log: "#[StartTime: 1700000000 (seconds since epoch), x]\n#[BaseTime: 1600000000.000 (seconds since epoch)]\n3.0,1.0,1.0," + p + "\n",
			start: time.Unix(1700000000, 0), ivStart: time.Unix(1600000003, 0)},
		{name: "three fields", log: "1,2,3\n", err: "line 1: want StartTimestamp"},
		{name: "negative", log: "# c\n-1,1,1," + p + "\n", err: "line 2: StartTimestamp \"-1\""},
		{name: "tag without interval", log: "Tag=x\n", err: "line 1: Tag="},
		{name: "bad histogram", log: "1,1,1,HISTnope\n", err: "line 1: histogram"},
		{name: "bad StartTime", log: "#[StartTime: x]\n", err: "line 1: StartTime"},
		{name: "NaN", log: "NaN,1,1," + p + "\n", err: "not a non-negative number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ReadHlog(strings.NewReader(tc.log))
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "stats: hlog ") || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ReadHlog error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadHlog: %v", err)
			}
			if len(l.Intervals) != 1 || !l.Start.Equal(tc.start) || !l.Intervals[0].Start.Equal(tc.ivStart) || l.Intervals[0].Tag != tc.tag {
				t.Fatalf("got start %v, %+v; want start %v, interval at %v tag %q", l.Start, l.Intervals, tc.start, tc.ivStart, tc.tag)
			}
			// Read as µs, the 1 hour in ns lies far above wsload's 1 hour:
			// it is clamped, not lost.
			got, clamped := l.Intervals[0].Histogram()
			if got.TotalCount() != 1001 || clamped != 1 || got.Max() < HighestUS {
				t.Fatalf("Histogram: %d samples, %d clamped, max %d; want 1001, 1, at the top", got.TotalCount(), clamped, got.Max())
			}
		})
	}
}

func TestMergeHlogs(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	// Two processes, 300 ms apart, each with half of the samples.
	a := hlogIntervals(start)
	b := hlogIntervals(start.Add(300 * time.Millisecond))
	la, err := ReadHlog(bytes.NewReader(writeHlog(t, start, a)))
	if err != nil {
		t.Fatalf("ReadHlog a: %v", err)
	}
	lb, err := ReadHlog(bytes.NewReader(writeHlog(t, start.Add(300*time.Millisecond), b)))
	if err != nil {
		t.Fatalf("ReadHlog b: %v", err)
	}
	m, clamped := MergeHlogs(lb, la)
	if clamped != 0 || !m.Start.Equal(start) || len(m.Intervals) != 5 {
		t.Fatalf("merged: %d clamped, start %v, %d intervals; want 0, %v, 5", clamped, m.Start, len(m.Intervals), start)
	}
	for i, want := range []struct {
		tag string
		a   *hdrhistogram.Histogram
		b   *hdrhistogram.Histogram
	}{
		{HlogTagHandshake, a[0].Handshake, b[0].Handshake},
		{HlogTagRTT, a[0].RTT, b[0].RTT},
		{HlogTagRTTUncorrected, a[0].RTTUncorrected, b[0].RTTUncorrected},
		{HlogTagRTT, a[1].RTT, b[1].RTT},
		{HlogTagRTTUncorrected, a[1].RTTUncorrected, b[1].RTTUncorrected},
	} {
		sum := NewHistogram()
		sum.Merge(want.a)
		sum.Merge(want.b)
		iv := m.Intervals[i]
		h, _ := iv.Histogram()
		if iv.Tag != want.tag || !h.Equals(sum) || iv.LengthS != 1 || iv.MaxMS != float64(sum.Max())/1000 {
			t.Fatalf("merged interval %d: tag %q, equal %v, len %g, max %g; want %q, the exact sum", i, iv.Tag, h.Equals(sum), iv.LengthS, iv.MaxMS, want.tag)
		}
	}
	// The merged log writes and reads back the same.
	var out bytes.Buffer
	if err := WriteHlog(&out, m); err != nil {
		t.Fatalf("WriteHlog: %v", err)
	}
	back, err := ReadHlog(&out)
	if err != nil || len(back.Intervals) != 5 || !back.Intervals[4].Start.Equal(m.Intervals[4].Start) {
		t.Fatalf("read back merged log: %v, %+v", err, back)
	}
}

type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestHlogWriterErrors(t *testing.T) {
	start := time.Now()
	if _, err := NewHlogWriter(&failAfter{0}, start); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("NewHlogWriter on a failing writer: %v", err)
	}
	w, err := NewHlogWriter(&failAfter{1}, start)
	if err != nil {
		t.Fatalf("NewHlogWriter: %v", err)
	}
	iv := hlogIntervals(start)[0]
	if err := w.WriteInterval(iv); err == nil {
		t.Fatalf("WriteInterval on a full disk succeeded")
	}
	if err := w.WriteInterval(iv); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("the error did not stick: %v", err)
	}
	if err := w.Close(); err == nil || !strings.HasPrefix(err.Error(), "stats: hlog: ") {
		t.Fatalf("Close = %v, want the write error", err)
	}
	var nilW *HlogWriter
	if nilW.WriteInterval(iv) != nil || nilW.Close() != nil {
		t.Fatalf("a nil writer must do nothing")
	}
	if err := (&HlogWriter{w: io.Discard}).WriteHlogInterval(&HlogInterval{Tag: "a,b"}); err == nil {
		t.Fatalf("a tag with a comma was accepted")
	}

	path := filepath.Join(t.TempDir(), "run.hlog")
	fw, err := CreateHlog(path, start)
	if err != nil {
		t.Fatalf("CreateHlog: %v", err)
	}
	if err := fw.WriteInterval(iv); err != nil {
		t.Fatalf("WriteInterval: %v", err)
	}
	if err := fw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := fw.WriteInterval(iv); err == nil {
		t.Fatalf("WriteInterval after Close succeeded")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer f.Close()
	if l, err := ReadHlog(f); err != nil || len(l.Intervals) != 3 {
		t.Fatalf("ReadHlog of the file: %v, %+v", err, l)
	}
	if _, err := CreateHlog(filepath.Join(path, "x"), start); err == nil || !strings.HasPrefix(err.Error(), "stats: hlog: ") {
		t.Fatalf("CreateHlog under a file: %v", err)
	}
}

func FuzzReadHlog(f *testing.F) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	w, _ := NewHlogWriter(&b, start)
	for _, iv := range hlogIntervals(start)[:2] {
		_ = w.WriteInterval(iv)
	}
	f.Add(b.Bytes())
	f.Add([]byte("#[StartTime: 1 (seconds since epoch)]\nTag=x,1,1,1,HISTFAAAAB94nJNpmSzMwMDAxAABzFCaEUpLQ2kAHqQCAQ==\n"))
	f.Add([]byte("Tag=,0,0,0,\n"))
	f.Add([]byte("1e400,1,1,x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ReadHlog(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever it accepted writes and reads back to as many intervals.
		var out bytes.Buffer
		if err := WriteHlog(&out, l); err != nil {
			if strings.Contains(err.Error(), "tag") {
				return // a tag other tools accept but we refuse to write
			}
			t.Fatalf("WriteHlog of an accepted log: %v", err)
		}
		back, err := ReadHlog(&out)
		if err != nil {
			t.Fatalf("re-read: %v\n%s", err, out.Bytes())
		}
		if len(back.Intervals) != len(l.Intervals) {
			t.Fatalf("re-read %d intervals, want %d\n%s", len(back.Intervals), len(l.Intervals), out.Bytes())
		}
	})
}
