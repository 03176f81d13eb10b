package stats

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleResult builds a deterministic Result with every section filled.
func sampleResult(t testing.TB) *Result {
	t.Helper()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 600_000_000, time.UTC)
	rec := NewRecorder(2)
	rec.SetStart(t0)
	agg := NewAggregate(t0)
	rec.Shard(0).ConnRequested(20)
	for sec := 1; sec <= 3; sec++ {
		for c := range 20 {
			s := rec.Shard(c)
			if sec == 1 {
				s.HandshakeWaited(time.Duration(c) * time.Millisecond)
				s.ConnAttempted()
				if c%10 == 9 {
					s.ConnFailed([]string{"refused", "timeout"}[c/10])
					continue
				}
				s.ConnEstablished(time.Duration(800+37*c) * time.Microsecond)
			}
			if c%10 == 9 {
				continue
			}
			for i := range 50 {
				lag := time.Duration(i*3) * time.Microsecond
				svc := time.Duration(300+13*i+7*c) * time.Microsecond
				s.Sent(64, lag)
				if i == 49 && c == 3 {
					s.TimedOut()
					continue
				}
				s.Received(64)
				s.RTT(svc+lag, svc)
				s.Step("login", 2*(svc+lag), 2*svc)
			}
		}
		if sec == 3 {
			rec.Shard(0).Error("read")
			rec.Shard(0).Unmatched()
			for c := range 18 {
				rec.Shard(c).ConnClosed([]int{1000, 1006}[c%9/8])
			}
		}
		agg.Add(rec.Rotate(t0.Add(time.Duration(sec) * time.Second)))
	}
	return agg.Result(Header{
		Version:  "0.1.0-test",
		Target:   "ws://127.0.0.1:8080/echo",
		Start:    t0,
		Duration: 3 * time.Second,
		Config: Config{
			Connections: 20, ConnectRate: 0, Rate: 50, Size: 64, DurationS: 3,
			SourceIPs: []string{"127.0.0.2", "127.0.0.3"}, Headers: map[string]string{"Authorization": "Bearer x", "Origin": "http://127.0.0.1"},
			Subprotocols: []string{"echo"}, HandshakeTimeoutS: 10, ReplyTimeoutS: 5, Pollers: 2,
		},
		Generator: Generator{CPUUserS: 0.12, CPUSysS: 0.05, MaxRSSBytes: 48 << 20, GOMAXPROCS: 2},
	})
}

func encode(t testing.TB, r *Result) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeResult(&b, r); err != nil {
		t.Fatalf("EncodeResult: %v", err)
	}
	return b.Bytes()
}

func TestResultJSONRoundTrip(t *testing.T) {
	want := sampleResult(t)
	data := encode(t, want)
	got, err := DecodeResult(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("DecodeResult: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the result:\n got %+v\nwant %+v", got, want)
	}
	for name, pair := range map[string][2]*Latency{
		"handshake":       {&got.Latency.Handshake, &want.Latency.Handshake},
		"rtt":             {&got.Latency.RTT, &want.Latency.RTT},
		"rtt_uncorrected": {&got.Latency.RTTUncorrected, &want.Latency.RTTUncorrected},
		"send_lag":        {&got.Latency.SendLag, &want.Latency.SendLag},
	} {
		hg, err := pair[0].Histogram()
		if err != nil {
			t.Fatalf("%s: Histogram: %v", name, err)
		}
		if hg.TotalCount() == 0 {
			t.Fatalf("%s: sample has an empty histogram; the test would prove nothing", name)
		}
		again, err := NewLatency(hg)
		if err != nil {
			t.Fatalf("%s: NewLatency: %v", name, err)
		}
		if again != *pair[1] {
			t.Fatalf("%s: decoded histogram summarizes to %+v, want %+v", name, again, *pair[1])
		}
	}
	// The decoded histograms equal the ones recorded.
	rec := NewRecorder(1)
	rec.Shard(0).RTT(1500*time.Microsecond, time.Millisecond)
	iv := rec.Rotate(time.Now())
	l, err := NewLatency(iv.RTT)
	if err != nil {
		t.Fatalf("NewLatency: %v", err)
	}
	h, err := l.Histogram()
	if err != nil {
		t.Fatalf("Histogram: %v", err)
	}
	if !h.Equals(iv.RTT) {
		t.Fatalf("decoded histogram differs from the recorded one")
	}
	// JSON field names are part of the format.
	for _, key := range []string{`"schema": "wsload.result/v1"`, `"duration_s"`, `"peak_open"`, `"sent_per_s"`, `"close_codes"`,
		`"rtt_uncorrected"`, `"send_lag"`, `"p9999_us"`, `"hdr": "HISTF`, `"cpu_per_msg_us"`, `"len_s"`, `"rtt_p99_us"`,
		`"handshake_timeout_s"`, `"1006": `, `"Authorization": "[redacted]"`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Fatalf("encoded result lacks %s", key)
		}
	}
}

func TestDecodeResultErrors(t *testing.T) {
	good := encode(t, sampleResult(t))
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	mutate := func(f func(m map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	latency := func(m map[string]any, name string) map[string]any {
		return m["latency"].(map[string]any)[name].(map[string]any)
	}
	hdr := latency(doc, "rtt")["hdr"].(string)
	raw, _ := base64.StdEncoding.DecodeString(hdr)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-3] ^= 0xff

	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "decoding result"},
		{"garbage", "\x00not json", "decoding result"},
		{"no schema", `{"tool":"wsload"}`, `no "schema" field`},
		{"unknown schema", mutate(func(m map[string]any) { m["schema"] = "wsload.result/v2" }), `unsupported result schema "wsload.result/v2"`},
		{"schema not a string", `{"schema":1}`, "decoding result"},
		{"hdr not base64", mutate(func(m map[string]any) { latency(m, "rtt")["hdr"] = "!!!" }), "latency.rtt: decoding hdr"},
		{"hdr truncated", mutate(func(m map[string]any) { latency(m, "rtt")["hdr"] = hdr[:len(hdr)/2] }), "latency.rtt"},
		{"hdr bit flip", mutate(func(m map[string]any) { latency(m, "rtt")["hdr"] = base64.StdEncoding.EncodeToString(flipped) }), "latency.rtt: decoding hdr"},
		{"hdr of another histogram", mutate(func(m map[string]any) { latency(m, "rtt")["hdr"] = latency(m, "handshake")["hdr"] }), "latency.rtt: hdr holds 18 samples"},
		{"count without hdr", mutate(func(m map[string]any) { latency(m, "send_lag")["hdr"] = "" }), "latency.send_lag: count"},
		{"step hdr", mutate(func(m map[string]any) {
			steps := m["latency"].(map[string]any)["steps"].(map[string]any)
			steps["login"].(map[string]any)["uncorrected"].(map[string]any)["hdr"] = "AAAA"
		}), `latency.steps["login"].uncorrected`},
		{"negative count", mutate(func(m map[string]any) { m["messages"].(map[string]any)["sent"] = -1 }), "messages.sent is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeResult(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("DecodeResult accepted %.80q", tc.in)
			}
			if !strings.HasPrefix(err.Error(), "stats: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to start with \"stats: \" and mention %q", err, tc.want)
			}
		})
	}
	// The Latency accessor refuses tampered data too.
	l := Latency{Count: 5, HDR: "AAAA"}
	if _, err := l.Histogram(); err == nil {
		t.Fatalf("Histogram accepted garbage hdr")
	}
	l = Latency{Count: 1, HDR: hdr}
	if _, err := l.Histogram(); err == nil {
		t.Fatalf("Histogram accepted an hdr whose count differs")
	}
}

func TestWriteReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	want := sampleResult(t)
	if err := os.WriteFile(path, []byte("old contents"), 0o600); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if err := WriteJSONFile(path, want); err != nil {
		t.Fatalf("WriteJSONFile: %v", err)
	}
	got, err := ReadResultFile(path)
	if err != nil {
		t.Fatalf("ReadResultFile: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("file round trip changed the result")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := WriteJSONFile(filepath.Join(dir, "missing", "run.json"), want); err == nil || !strings.HasPrefix(err.Error(), "stats: ") {
		t.Fatalf("WriteJSONFile into a missing directory: %v", err)
	}
	if _, err := ReadResultFile(filepath.Join(dir, "nope.json")); err == nil {
		t.Fatalf("ReadResultFile of a missing file succeeded")
	}
}

func FuzzDecodeResult(f *testing.F) {
	good := encode(f, sampleResult(f))
	f.Add(good)
	f.Add([]byte(`{"schema":"wsload.result/v1"}`))
	f.Add([]byte(`{"schema":"wsload.result/v1","latency":{"rtt":{"count":1,"hdr":"HISTFAAAAB14nJNpmSzMwMDAxQABzFCaEUzOmNZg/wEidQA/"}}}`))
	f.Add([]byte(`{"schema":"wsload.result/v0"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeResult(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever decodes must encode, decode again to the same value, and
		// its histograms must be usable.
		again, err := DecodeResult(bytes.NewReader(encode(t, r)))
		if err != nil {
			t.Fatalf("re-decoding a decoded result: %v", err)
		}
		if _, err := again.Latency.RTT.Histogram(); err != nil {
			t.Fatalf("validated rtt hdr does not decode: %v", err)
		}
		var b bytes.Buffer
		if err := WriteText(&b, again); err != nil {
			t.Fatalf("WriteText: %v", err)
		}
		_ = again.Diagnose()
	})
}

// TestEmptyLatencyIsNull: a latency without samples (an idle run's rtt) has
// no min, percentiles or max: JSON says null, not 0, and reads back.
func TestEmptyLatencyIsNull(t *testing.T) {
	agg := NewAggregate(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	iv := NewInterval(agg.start, agg.start.Add(time.Second))
	iv.Attempted, iv.Established = 1, 1
	Record(iv.Handshake, 3*time.Millisecond)
	agg.Add(iv)
	r := agg.Result(Header{Target: "ws://127.0.0.1:1/"})
	var b bytes.Buffer
	if err := EncodeResult(&b, r); err != nil {
		t.Fatalf("EncodeResult: %v", err)
	}
	var doc struct {
		Latency map[string]json.RawMessage `json:"latency"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var rtt, hs map[string]any
	if err := json.Unmarshal(doc.Latency["rtt"], &rtt); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc.Latency["handshake"], &hs); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"min_us", "mean_us", "stddev_us", "p50_us", "p99_us", "p9999_us", "max_us"} {
		if v, ok := rtt[k]; !ok || v != nil {
			t.Fatalf("rtt %s = %v (present %v), want null", k, v, ok)
		}
		if hs[k] == nil {
			t.Fatalf("handshake %s is null with a sample", k)
		}
	}
	if rtt["count"] != float64(0) {
		t.Fatalf("rtt count %v", rtt["count"])
	}
	got, err := DecodeResult(&b)
	if err != nil {
		t.Fatalf("DecodeResult: %v", err)
	}
	if got.Latency.RTT.Count != 0 || got.Latency.RTT.P99US != 0 || got.Latency.Handshake.Count != 1 {
		t.Fatalf("read back rtt %+v handshake count %d", got.Latency.RTT, got.Latency.Handshake.Count)
	}
}

// A run without warnings writes "warnings": [] (as the README shows), never null.
func TestNoWarningsIsAnEmptyList(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	agg := NewAggregate(t0)
	iv := NewInterval(t0, t0.Add(time.Second))
	iv.Requested, iv.Attempted, iv.Established, iv.Open, iv.PeakOpen = 1, 1, 1, 1, 1
	agg.Add(iv)
	r := agg.Result(Header{Target: "ws://127.0.0.1:1/", Config: Config{Connections: 1}})
	if len(r.Generator.Warnings) != 0 {
		t.Fatalf("a clean run has warnings %q", r.Generator.Warnings)
	}
	b, err := json.Marshal(r.Generator)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"warnings":[]`) {
		t.Fatalf("generator JSON %s: want \"warnings\":[]", b)
	}
}
