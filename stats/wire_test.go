package stats

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// sampleInterval fills every field of an Interval with distinct values.
func sampleInterval(t0 time.Time) *Interval {
	iv := NewInterval(t0, t0.Add(time.Second+123456789))
	iv.Attempted, iv.Established, iv.Failed, iv.Closed = 11, 9, 2, 3
	iv.Requested, iv.NotStarted = 14, 3
	iv.HandshakeWait = NewHistogram()
	Record(iv.HandshakeWait, 250*time.Millisecond)
	iv.Sent, iv.Received, iv.BytesSent, iv.BytesReceived = 1000, 990, 64000, 63360
	iv.TimedOut, iv.Unmatched, iv.Clamped = 4, 5, 1
	iv.InFlight, iv.Duplicate, iv.Late, iv.Corrupt = 7, 8, 12, 13
	iv.Open, iv.PeakOpen = 6, 9
	iv.Errors["refused"] = 2
	iv.Errors["read"] = 1
	iv.ConnFailures["refused"] = 2
	iv.CloseCodes[1000] = 2
	iv.CloseCodes[1006] = 1
	for i := range 1000 {
		Record(iv.RTT, time.Duration(i+1)*time.Millisecond)
		Record(iv.RTTUncorrected, time.Duration(i+1)*time.Microsecond*500)
	}
	for i := range 9 {
		Record(iv.Handshake, time.Duration(i+1)*3*time.Millisecond)
	}
	Record(iv.SendLag, 7*time.Microsecond)
	Record(iv.SendLag, 2*time.Hour) // clamped at the top
	s := newStepHists()
	Record(s.Corrected, 42*time.Millisecond)
	Record(s.Uncorrected, 41*time.Millisecond)
	iv.Steps["login"] = s
	iv.Steps["idle"] = newStepHists() // empty: dropped on the wire
	return iv
}

func equalHist(a, b *hdrhistogram.Histogram) bool {
	if count(a) == 0 && count(b) == 0 {
		return true
	}
	return a != nil && b != nil && a.Equals(b)
}

func TestIntervalWireRoundTrip(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 5, 6, 7, 891011121, time.UTC)
	for _, tc := range []struct {
		name string
		iv   *Interval
	}{
		{"full", sampleInterval(t0)},
		{"empty", NewInterval(t0, t0.Add(time.Second))},
		{"zero times", NewInterval(time.Time{}, time.Time{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := EncodeInterval(&buf, tc.iv); err != nil {
				t.Fatalf("EncodeInterval: %v", err)
			}
			line := buf.Bytes()
			if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
				t.Fatalf("encoding is not exactly one line: %q", line)
			}
			got, err := DecodeInterval(line)
			if err != nil {
				t.Fatalf("DecodeInterval: %v", err)
			}
			want := tc.iv
			if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
				t.Fatalf("times: got %v..%v, want %v..%v", got.Start, got.End, want.Start, want.End)
			}
			type counters struct{ rq, a, e, f, ns, c, s, r, bs, br, to, um, cl, o, po, inf, dup, late, cor int64 }
			cnt := func(iv *Interval) counters {
				return counters{iv.Requested, iv.Attempted, iv.Established, iv.Failed, iv.NotStarted, iv.Closed, iv.Sent, iv.Received,
					iv.BytesSent, iv.BytesReceived, iv.TimedOut, iv.Unmatched, iv.Clamped, iv.Open, iv.PeakOpen,
					iv.InFlight, iv.Duplicate, iv.Late, iv.Corrupt}
			}
			if cnt(got) != cnt(want) {
				t.Fatalf("counters: got %+v, want %+v", cnt(got), cnt(want))
			}
			if !mapsEqual(got.Errors, want.Errors) || !mapsEqual(got.ConnFailures, want.ConnFailures) || !mapsEqual(got.CloseCodes, want.CloseCodes) {
				t.Fatalf("maps: got %v %v %v, want %v %v %v", got.Errors, got.ConnFailures, got.CloseCodes, want.Errors, want.ConnFailures, want.CloseCodes)
			}
			for _, h := range []struct {
				name string
				a, b *hdrhistogram.Histogram
			}{
				{"handshake", got.Handshake, want.Handshake},
				{"rtt", got.RTT, want.RTT},
				{"rtt_uncorrected", got.RTTUncorrected, want.RTTUncorrected},
				{"send_lag", got.SendLag, want.SendLag},
				{"handshake_wait", got.HandshakeWait, want.HandshakeWait},
			} {
				if !equalHist(h.a, h.b) {
					t.Fatalf("%s: got %d samples p99 %d, want %d samples p99 %d", h.name, count(h.a), Quantile(h.a, 99), count(h.b), Quantile(h.b, 99))
				}
			}
			for name, s := range want.Steps {
				g := got.Steps[name]
				if count(s.Corrected)+count(s.Uncorrected) == 0 {
					if g != nil {
						t.Fatalf("empty step %q came back", name)
					}
					continue
				}
				if g == nil || !equalHist(g.Corrected, s.Corrected) || !equalHist(g.Uncorrected, s.Uncorrected) {
					t.Fatalf("step %q did not round-trip", name)
				}
			}
			// The decoded Interval is ready to merge: maps and histograms exist.
			m := NewInterval(time.Time{}, time.Time{})
			m.Merge(got)
			m.Merge(got)
			if m.Sent != 2*want.Sent || count(m.RTT) != 2*count(want.RTT) {
				t.Fatalf("merging the decoded interval twice: sent %d rtt %d, want %d %d", m.Sent, count(m.RTT), 2*want.Sent, 2*count(want.RTT))
			}
		})
	}
}

func mapsEqual[K comparable](a, b map[K]int64) bool {
	n := 0
	for k, v := range a {
		if v == 0 {
			continue
		}
		n++
		if b[k] != v {
			return false
		}
	}
	for _, v := range b {
		if v != 0 {
			n--
		}
	}
	return n == 0
}

func TestDecodeIntervalRejects(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	var good bytes.Buffer
	if err := EncodeInterval(&good, sampleInterval(t0)); err != nil {
		t.Fatalf("EncodeInterval: %v", err)
	}
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal(good.Bytes(), &m); err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return string(b)
	}
	otherFull := hdrhistogram.New(1, 1000, 2)
	_ = otherFull.RecordValue(5)
	otherEnc, err := otherFull.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	for _, tc := range []struct {
		name, line, want string
	}{
		{"not json", "hello", "decoding interval"},
		{"no version", `{"start_ns":1,"end_ns":2}`, "wire version 0"},
		{"future version", edit(func(m map[string]any) { m["wsload_interval"] = 2 }), "wire version 2"},
		{"end before start", edit(func(m map[string]any) { m["end_ns"] = 5; m["start_ns"] = 6 }), "before it starts"},
		{"negative counter", edit(func(m map[string]any) { m["sent"] = -1 }), "sent is negative"},
		{"negative map count", edit(func(m map[string]any) { m["errors"] = map[string]any{"x": -3} }), "errors[x] is negative"},
		{"bad base64", edit(func(m map[string]any) { m["rtt"] = "!!!" }), "rtt"},
		{"other geometry", edit(func(m map[string]any) { m["rtt"] = string(otherEnc) }), "geometry"},
		{"too many steps", edit(func(m map[string]any) {
			steps := map[string]any{}
			for i := range maxWireSteps + 1 {
				steps[strings.Repeat("s", i+1)] = map[string]any{}
			}
			m["steps"] = steps
		}), "steps"},
		{"too long", strings.Repeat(" ", MaxWireLine+1), "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iv, err := DecodeInterval([]byte(tc.line))
			if err == nil {
				t.Fatalf("DecodeInterval accepted it: %+v", iv)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "stats: ") {
				t.Fatalf("error %q: want a stats: error mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzDecodeInterval(f *testing.F) {
	var buf bytes.Buffer
	_ = EncodeInterval(&buf, sampleInterval(time.Unix(1700000000, 0)))
	f.Add(buf.Bytes())
	buf.Reset()
	_ = EncodeInterval(&buf, NewInterval(time.Unix(1, 0), time.Unix(2, 0)))
	f.Add(buf.Bytes())
	f.Add([]byte(`{"wsload_interval":1,"start_ns":0,"end_ns":0,"rtt":"HISTFAAAAB14nJNpmSzMwMDAxQABzFCaEUzOmNZg/wEANB4D4g=="}`))
	f.Add([]byte(`{"wsload_interval":1,"close_codes":{"1000":1},"steps":{"a":{}}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		iv, err := DecodeInterval(line)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same counts.
		var out bytes.Buffer
		if err := EncodeInterval(&out, iv); err != nil {
			t.Fatalf("re-encoding a decoded interval: %v", err)
		}
		again, err := DecodeInterval(out.Bytes())
		if err != nil {
			t.Fatalf("decoding a re-encoded interval: %v\n%s", err, out.Bytes())
		}
		if again.Sent != iv.Sent || again.Open != iv.Open || count(again.RTT) != count(iv.RTT) ||
			!again.Start.Equal(iv.Start) || !again.End.Equal(iv.End) || len(again.Steps) > len(iv.Steps) {
			t.Fatalf("re-encoding changed the interval")
		}
	})
}
