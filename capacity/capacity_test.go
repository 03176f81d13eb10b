package capacity

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/slo"
	"github.com/wsload/wsload/stats"
)

func TestParseRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		levels []float64
		err    string
	}{
		{"100:500:100", []float64{100, 200, 300, 400, 500}, ""},
		{"100:450:100", []float64{100, 200, 300, 400, 450}, ""},
		{"100:5000:x2", []float64{100, 200, 400, 800, 1600, 3200, 5000}, ""},
		{"10:10:5", []float64{10}, ""},
		{"0.5:2:x2", []float64{0.5, 1, 2}, ""},
		{"100:500", nil, "want START:MAX:STEP"},
		{"0:500:100", nil, "start must be positive"},
		{"500:100:100", nil, "below start"},
		{"100:500:x1", nil, "factor must be above 1"},
		{"100:500:0", nil, "give a step"},
		{"100:500:-5", nil, "give a step"},
		{"1:100000:1", nil, "more than 1000"},
		{"a:500:100", nil, `start "a" is not a number`},
		{"100:500:xNaN", nil, "not a number"},
	} {
		r, err := ParseRange(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "capacity: ") {
				t.Fatalf("ParseRange(%q) error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseRange(%q): %v", c.in, err)
		}
		if got := r.Levels(); !reflect.DeepEqual(got, c.levels) {
			t.Fatalf("ParseRange(%q) levels %v, want %v", c.in, got, c.levels)
		}
		if again, err := ParseRange(r.String()); err != nil || again != r {
			t.Fatalf("ParseRange(%q).String() = %q re-parses as %+v, %v", c.in, r.String(), again, err)
		}
	}
}

// fakeTarget is a target that holds up to limit connections and up to
// rateLimit total messages per second (0 = no limit): beyond them the extra
// connections fail with 503 and the extra messages time out.
func fakeTarget(limit int, rateLimit float64, ran *[]Level) StepFunc {
	return func(ctx context.Context, cfg engine.Config) (*stats.Result, error) {
		total := cfg.Rate * float64(cfg.Connections)
		*ran = append(*ran, Level{Connections: cfg.Connections, Rate: total})
		est := min(cfg.Connections, limit)
		r := &stats.Result{
			Config:      stats.Config{Connections: cfg.Connections},
			Connections: stats.Connections{Attempted: int64(cfg.Connections), Established: int64(est), Failed: int64(cfg.Connections - est)},
			Errors:      map[string]int64{},
		}
		if n := cfg.Connections - est; n > 0 {
			r.Errors["http_503"] = int64(n)
		}
		sent := int64(total * cfg.Duration.Seconds())
		r.Messages.Sent = sent
		if rateLimit > 0 && total > rateLimit {
			r.Messages.TimedOut = sent - int64(rateLimit*cfg.Duration.Seconds())
		}
		r.Messages.Received = sent - r.Messages.TimedOut
		h := stats.NewHistogram()
		_ = h.RecordValues(1000, int64(est))
		var err error
		if r.Latency.Handshake, err = stats.NewLatency(h); err != nil {
			return nil, err
		}
		return r, nil
	}
}

func TestSearchLogic(t *testing.T) {
	spec, err := slo.Parse("errors<1%,timeouts<1%")
	if err != nil {
		t.Fatal(err)
	}
	conns := Range{Start: 100, Max: 1000, Step: 100}
	for _, c := range []struct {
		name      string
		dim       Dimension
		limit     int
		rateLimit float64
		conns     Range
		rate      Range
		base      engine.Config
		refine    int
		knee      *Level
		firstBad  *Level
		ran       []int // connections of each step, in order (rate dimension: total rate)
	}{
		{name: "no refine", dim: Connections, limit: 350, conns: conns, refine: 0,
			knee: &Level{300, 0}, firstBad: &Level{400, 0}, ran: []int{100, 200, 300, 400}},
		{name: "refine 1", dim: Connections, limit: 350, conns: conns, refine: 1,
			knee: &Level{350, 0}, firstBad: &Level{400, 0}, ran: []int{100, 200, 300, 400, 350}},
		{name: "refine 3", dim: Connections, limit: 350, conns: conns, refine: 3,
			knee: &Level{350, 0}, firstBad: &Level{362, 0}, ran: []int{100, 200, 300, 400, 350, 375, 362}},
		{name: "refine stops when adjacent", dim: Connections, limit: 2, conns: Range{Start: 1, Max: 10, Step: 1}, refine: 5,
			knee: &Level{2, 0}, firstBad: &Level{3, 0}, ran: []int{1, 2, 3}},
		{name: "first step breaks", dim: Connections, limit: 50, conns: conns, refine: 3,
			knee: nil, firstBad: &Level{100, 0}, ran: []int{100}},
		{name: "max holds", dim: Connections, limit: 5000, conns: conns, refine: 3,
			knee: &Level{1000, 0}, firstBad: nil, ran: []int{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}},
		{name: "connections carry the per-connection rate", dim: Connections, limit: 5000, rateLimit: 2500,
			conns: Range{Start: 1000, Max: 4000, Factor: 2}, base: engine.Config{Rate: 1}, refine: 1,
			knee: &Level{2000, 2000}, firstBad: &Level{3000, 3000}, ran: []int{1000, 2000, 4000, 3000}},
		{name: "rate", dim: Rate, limit: 5000, rateLimit: 3000, rate: Range{Start: 1000, Max: 8000, Factor: 2},
			base: engine.Config{Connections: 100}, refine: 2,
			knee: &Level{100, 3000}, firstBad: &Level{100, 3500}, ran: []int{1000, 2000, 4000, 3000, 3500}},
		{name: "both", dim: Both, limit: 300, conns: Range{Start: 100, Max: 400, Step: 100}, rate: Range{Start: 100, Max: 200, Step: 50}, refine: 1,
			knee: &Level{300, 200}, firstBad: &Level{350, 200}, ran: []int{100, 200, 300, 400, 350}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ran []Level
			var seen []Step
			base := c.base
			base.URL = "ws://127.0.0.1:1/"
			res, err := Search(context.Background(), Options{
				Base: base, Dimension: c.dim, Connections: c.conns, Rate: c.rate,
				Hold: 10 * time.Second, SLO: spec, Refine: c.refine, OnStep: func(s Step) { seen = append(seen, s) },
			}, fakeTarget(c.limit, c.rateLimit, &ran))
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			if !reflect.DeepEqual(res.Knee, c.knee) || !reflect.DeepEqual(res.FirstBad, c.firstBad) {
				t.Fatalf("knee %v first bad %v, want %v and %v (%s)", res.Knee, res.FirstBad, c.knee, c.firstBad, res.Summary)
			}
			var got []int
			for _, l := range ran {
				if c.dim == Rate {
					got = append(got, int(l.Rate+0.5))
				} else {
					got = append(got, l.Connections)
				}
			}
			if !reflect.DeepEqual(got, c.ran) {
				t.Fatalf("steps ran %v, want %v", got, c.ran)
			}
			if len(res.Steps) != len(c.ran) || len(seen) != len(c.ran) {
				t.Fatalf("%d steps recorded, %d reported, want %d", len(res.Steps), len(seen), len(c.ran))
			}
			for i, st := range res.Steps {
				wantPhase := "step"
				if i > 0 && st.Phase == "refine" && res.Steps[i-1].Phase == "step" && res.Steps[i-1].OK {
					t.Fatalf("refinement started before a step broke the SLO: %+v", res.Steps)
				}
				if st.N != i+1 || (st.Phase != wantPhase && st.Phase != "refine") || st.Result == nil || len(st.Verdicts) != 2 {
					t.Fatalf("step %d = %+v", i, st)
				}
				if st.Level != ran[i] {
					t.Fatalf("step %d level %v, but ran %v", i+1, st.Level, ran[i])
				}
			}
			if c.knee == nil && !strings.Contains(res.Summary, "even the first step") {
				t.Fatalf("summary %q does not say the first step broke the SLO", res.Summary)
			}
		})
	}
}

func TestSearchErrors(t *testing.T) {
	spec, _ := slo.Parse("errors<1%")
	base := engine.Config{URL: "ws://127.0.0.1:1/"}
	good := Options{Base: base, Dimension: Connections, Connections: Range{Start: 1, Max: 3, Step: 1}, Hold: time.Second, SLO: spec}
	for _, c := range []struct {
		name string
		mod  func(o *Options)
		err  string
	}{
		{"dimension", func(o *Options) { o.Dimension = "cpu" }, `dimension "cpu"`},
		{"hold", func(o *Options) { o.Hold = 0 }, "hold must be positive"},
		{"slo", func(o *Options) { o.SLO = nil }, "no SLO"},
		{"refine", func(o *Options) { o.Refine = -1 }, "refine must not be negative"},
		{"rate without connections", func(o *Options) { o.Dimension = Rate; o.Rate = Range{Start: 1, Max: 2, Step: 1} }, "fixed number of connections"},
		{"bad range", func(o *Options) { o.Connections = Range{Start: 5, Max: 1, Step: 1} }, "connections range"},
	} {
		o := good
		c.mod(&o)
		if _, err := Search(context.Background(), o, nil); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Fatalf("%s: Search error %v, want %q", c.name, err, c.err)
		}
	}

	// A step that cannot run ends the search with what was measured.
	boom := errors.New("open-file limit")
	var ran []Level
	fake := fakeTarget(10, 0, &ran)
	res, err := Search(context.Background(), good, func(ctx context.Context, cfg engine.Config) (*stats.Result, error) {
		if cfg.Connections == 2 {
			return nil, boom
		}
		return fake(ctx, cfg)
	})
	if !errors.Is(err, boom) || res == nil || len(res.Steps) != 2 || res.Steps[1].Error == "" || res.Knee == nil || res.Knee.Connections != 1 {
		t.Fatalf("failing step: err %v, result %+v", err, res)
	}
	// So does a cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	res, err = Search(ctx, good, func(ctx context.Context, cfg engine.Config) (*stats.Result, error) {
		cancel()
		return fake(ctx, cfg)
	})
	if !errors.Is(err, context.Canceled) || len(res.Steps) != 1 || res.Knee != nil {
		t.Fatalf("cancelled: err %v, steps %+v", err, res.Steps)
	}
}

func TestResultRoundTripAndText(t *testing.T) {
	spec, _ := slo.Parse("errors<1%")
	var ran []Level
	res, err := Search(context.Background(), Options{
		Base: engine.Config{URL: "ws://user:secret@127.0.0.1:1/"}, Dimension: Connections,
		Connections: Range{Start: 100, Max: 400, Step: 100}, Hold: time.Second, SLO: spec, Refine: 1,
	}, fakeTarget(250, 0, &ran))
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	// Step results made by a fake lack schema fields; give them what a run has.
	for _, st := range res.Steps {
		st.Result.Schema, st.Result.Tool = stats.Schema, stats.Tool
	}
	path := filepath.Join(t.TempDir(), "cap.json")
	if err := WriteJSONFile(path, res); err != nil {
		t.Fatalf("WriteJSONFile: %v", err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	var a, b bytes.Buffer
	_ = res.Encode(&a)
	_ = got.Encode(&b)
	if a.String() != b.String() {
		t.Fatalf("round trip changed the result:\n%s\n%s", a.String(), b.String())
	}
	if strings.Contains(a.String(), "secret") || !strings.Contains(a.String(), `"schema": "wsload.capacity/v1"`) {
		t.Fatalf("JSON leaks the password or lacks the schema:\n%.400s", a.String())
	}

	var text bytes.Buffer
	if err := got.WriteText(&text); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	for _, want := range []string{"refine", "BROKEN errors 16.7% (want <1%)", "Knee         250 connections (idle): the highest", "Broken at    300 connections (idle): errors<1% was 16.7%"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, text.String())
		}
	}

	bad := strings.Replace(a.String(), `"schema": "wsload.capacity/v1"`, `"schema": "wsload.capacity/v9"`, 1)
	if _, err := Decode(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "unsupported schema") {
		t.Fatalf("Decode of another schema: %v", err)
	}
}

func startServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	s, err := server.Start(cfg)
	if err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// patientHandshake is the handshake timeout of the engine steps: a loaded machine under -race
// may take seconds to upgrade hundreds of loopback connections, and a timeout would count as
// an error the target did not make.
const patientHandshake = time.Minute

// drained wraps RunEngine so each step starts only once the server has let go of every
// connection of the step before: the limit the search measures is then the server's
// MaxConns, not how quickly a loaded machine processes closes (the Cooldown is a guess at that).
func drained(t *testing.T, s *server.Server) StepFunc {
	return func(ctx context.Context, cfg engine.Config) (*stats.Result, error) {
		deadline := time.Now().Add(2 * time.Minute)
		for st := s.Stats(); st.Conns != 0 || st.Closed != st.Upgrades; st = s.Stats() {
			if time.Now().After(deadline) {
				t.Errorf("server still holds connections 2 minutes after a step: %+v", st)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return RunEngine(ctx, cfg)
	}
}

// TestSearchSlowServer: a server that holds every reply 20 ms cannot meet
// rtt.p99<10ms at any level, and the search says so after one step. Latency only grows
// on a loaded machine, so the verdict cannot flip; the 3 s hold leaves time for samples.
func TestSearchSlowServer(t *testing.T) {
	s := startServer(t, server.Config{Delay: 20 * time.Millisecond})
	spec, _ := slo.Parse("rtt.p99<10ms")
	res, err := Search(context.Background(), Options{
		Base: engine.Config{URL: s.URL(), Rate: 10, HandshakeTimeout: patientHandshake}, Dimension: Connections,
		Connections: Range{Start: 10, Max: 40, Step: 10}, Hold: 3 * time.Second, SLO: spec, Refine: 2,
	}, RunEngine)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	if res.Knee != nil || len(res.Steps) != 1 || res.FirstBad == nil || res.FirstBad.Connections != 10 {
		t.Fatalf("knee %v first bad %v after %d steps, want no knee after one", res.Knee, res.FirstBad, len(res.Steps))
	}
	v := res.Steps[0].Verdicts[0]
	if v.OK || v.Actual < 20000 || res.Steps[0].Result.Latency.RTT.Count == 0 {
		t.Fatalf("verdict %+v from %d samples, want rtt p99 of at least 20ms", v, res.Steps[0].Result.Latency.RTT.Count)
	}
	if !strings.Contains(res.Summary, "no capacity found: even the first step (10 connections, 100 msg/s) broke the SLO") {
		t.Fatalf("summary %q", res.Summary)
	}
}

// TestSearchConnectionLimit: a server that refuses upgrades beyond 350 open
// connections has its knee found exactly: the ladder breaks at 400, refining finds 350
// good and 375 bad. Each step starts on a drained server (drained), so the counts are
// exact however slow the machine is.
func TestSearchConnectionLimit(t *testing.T) {
	s := startServer(t, server.Config{MaxConns: 350})
	spec, _ := slo.Parse("errors<1%")
	res, err := Search(context.Background(), Options{
		Base: engine.Config{URL: s.URL(), Rate: 0, HandshakeTimeout: patientHandshake}, Dimension: Connections,
		// A step's hold includes its ramp, and a connection still opening when the step ends
		// counts against errors<1%: 8 s leaves a loaded -race run (where 350 connections took
		// over a second to open) several times the ramp it needs.
		Connections: Range{Start: 100, Max: 1000, Step: 100}, Hold: 8 * time.Second, Cooldown: 300 * time.Millisecond,
		SLO: spec, Refine: 2,
	}, drained(t, s))
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	var text bytes.Buffer
	_ = res.WriteText(&text)
	if res.Knee == nil || res.Knee.Connections != 350 {
		t.Fatalf("knee %v, want 350\n%s", res.Knee, text.String())
	}
	if res.FirstBad == nil || res.FirstBad.Connections != 375 {
		t.Fatalf("first bad %v, want 375\n%s", res.FirstBad, text.String())
	}
	// The ladder stopped at the first bad step, 400, then refined twice: 350, 375.
	var levels []int
	for _, st := range res.Steps {
		levels = append(levels, st.Level.Connections)
	}
	if want := []int{100, 200, 300, 400, 350, 375}; !reflect.DeepEqual(levels, want) {
		t.Fatalf("steps %v, want %v (4 on the ladder and 2 refinements)\n%s", levels, want, text.String())
	}
	for i, refused := range []int64{0, 0, 0, 50, 0, 25} {
		st := res.Steps[i]
		if st.OK != (refused == 0) || st.Figures.Established != int64(levels[i])-refused || st.Figures.Failed != refused || st.Result.Errors["http_503"] != refused {
			t.Fatalf("step %d (%d connections): ok %v, %+v errors %v; want %d refused with 503\n%s",
				i+1, levels[i], st.OK, st.Figures, st.Result.Errors, refused, text.String())
		}
	}
}
