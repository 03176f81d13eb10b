// Package capacity finds the highest load a target sustains within an SLO:
// it raises the load in steps (connections, messages per second, or both),
// holds each step, judges it with package slo, stops at the first step that
// breaks the SLO, bisects between the last good and the first bad step, and
// reports the knee (the highest level that held) with the curve of every
// step.
//
//	conns, _ := capacity.ParseRange("1000:20000:1000")
//	spec, _ := slo.Parse("rtt.p99<50ms,errors<0.1%")
//	res, err := capacity.Search(ctx, capacity.Options{
//		Base:        engine.Config{URL: url, Rate: 1},
//		Dimension:   capacity.Connections,
//		Connections: conns,
//		Hold:        10 * time.Second,
//		SLO:         spec,
//		Refine:      2,
//	}, capacity.RunEngine)
//	if res.Knee == nil { ... }           // even the first step broke the SLO
//	_ = res.WriteText(os.Stdout)
//	_ = capacity.WriteJSONFile("cap.json", res)
//
// Each step is a fresh run of Hold (connections ramp up, hold, close), so
// the steps are independent and each is judged on its own Result; a step's
// Result is kept whole in the capacity Result, histograms included.
package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/slo"
	"github.com/wsload/wsload/stats"
)

// Schema identifies the capacity Result JSON format.
const Schema = "wsload.capacity/v1"

// Dimension is what the search raises.
type Dimension string

const (
	// Connections raises the number of connections; each sends at the base
	// configuration's per-connection rate, so the total rate rises with them.
	Connections Dimension = "connections"
	// Rate raises the total messages per second over a fixed number of
	// connections (the base configuration's).
	Rate Dimension = "rate"
	// Both raises connections and the total rate together, step by step,
	// each along its own range.
	Both Dimension = "both"
)

// maxLevels bounds a range's steps: a search is a handful of runs, not a
// sweep of thousands.
const maxLevels = 1000

// Range is a ladder of levels: Start, then Start+Step (or Start×Factor), …,
// up to Max; Max itself is the last level when the ladder overshoots it.
// Exactly one of Step and Factor is set.
type Range struct {
	Start, Max float64
	Step       float64 // additive step; 0 when Factor is used
	Factor     float64 // multiplicative step (> 1); 0 when Step is used
}

// ParseRange parses "START:MAX:STEP" or "START:MAX:xFACTOR", e.g.
// "1000:20000:1000" or "100:5000:x2".
func ParseRange(s string) (Range, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Range{}, fmt.Errorf("capacity: range %q: want START:MAX:STEP or START:MAX:xFACTOR, e.g. 1000:20000:1000 or 100:5000:x2", s)
	}
	num := func(what, v string) (float64, error) {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("capacity: range %q: %s %q is not a number", s, what, v)
		}
		return f, nil
	}
	var r Range
	var err error
	if r.Start, err = num("start", parts[0]); err != nil {
		return Range{}, err
	}
	if r.Max, err = num("max", parts[1]); err != nil {
		return Range{}, err
	}
	step := strings.TrimSpace(parts[2])
	if f, ok := strings.CutPrefix(step, "x"); ok {
		if r.Factor, err = num("factor", f); err != nil {
			return Range{}, err
		}
	} else if r.Step, err = num("step", step); err != nil {
		return Range{}, err
	}
	if err := r.validate(); err != nil {
		return Range{}, fmt.Errorf("capacity: range %q: %w", s, err)
	}
	return r, nil
}

func (r Range) validate() error {
	switch {
	case r.Start <= 0:
		return fmt.Errorf("start must be positive, got %g", r.Start)
	case r.Max < r.Start:
		return fmt.Errorf("max %g is below start %g", r.Max, r.Start)
	case (r.Step > 0) == (r.Factor > 0):
		return errors.New("give a step (…:1000) or a factor (…:x2), one of them")
	case r.Step < 0:
		return fmt.Errorf("step must be positive, got %g", r.Step)
	case r.Factor != 0 && r.Factor <= 1:
		return fmt.Errorf("factor must be above 1, got x%g", r.Factor)
	}
	if n := len(r.Levels()); n > maxLevels {
		return fmt.Errorf("%d steps is more than %d; use a larger step or a factor", n, maxLevels)
	}
	return nil
}

// String is the range as ParseRange reads it.
func (r Range) String() string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	if r.Factor > 0 {
		return f(r.Start) + ":" + f(r.Max) + ":x" + f(r.Factor)
	}
	return f(r.Start) + ":" + f(r.Max) + ":" + f(r.Step)
}

// Levels lists the ladder, ending with Max. It stops early (past maxLevels)
// for a range validate would refuse.
func (r Range) Levels() []float64 {
	var out []float64
	for v := r.Start; v < r.Max && len(out) <= maxLevels; {
		out = append(out, v)
		next := v + r.Step
		if r.Factor > 0 {
			next = v * r.Factor
		}
		if !(next > v) {
			break // no progress (a step lost in float precision)
		}
		v = next
	}
	return append(out, r.Max)
}

// Level is one load level. Rate is the total scheduled messages per second
// over all connections (0 = connections held idle).
type Level struct {
	Connections int     `json:"connections"`
	Rate        float64 `json:"rate"`
}

func (l Level) String() string {
	if l.Rate == 0 {
		return fmt.Sprintf("%d connections (idle)", l.Connections)
	}
	return fmt.Sprintf("%d connections, %s msg/s", l.Connections, strconv.FormatFloat(l.Rate, 'f', -1, 64))
}

// Options describe a search.
type Options struct {
	// Base is the run configuration every step starts from; the search sets
	// Connections, Rate and Duration. Base.Rate is per connection, as in
	// engine.Config: it is the rate of the Connections dimension.
	Base      engine.Config
	Dimension Dimension
	// Connections is the ladder of connection counts (dimensions connections
	// and both); Rate the ladder of total messages per second (rate and
	// both).
	Connections Range
	Rate        Range
	Hold        time.Duration // how long each step runs, ramp included
	// Cooldown is the pause between steps, so the target can let go of the
	// previous step's connections before the next one is judged.
	Cooldown time.Duration
	SLO      slo.Spec
	// Refine is the number of bisection steps between the last good and the
	// first bad level.
	Refine int
	// OnStep, when set, receives every step as it completes (progress).
	OnStep func(Step)
}

// Step is one run of the search.
type Step struct {
	N        int             `json:"n"`     // 1-based, in the order run
	Phase    string          `json:"phase"` // "step" (the ladder) or "refine" (bisection)
	Level    Level           `json:"level"`
	OK       bool            `json:"ok"` // every objective met
	Verdicts []stats.Verdict `json:"verdicts"`
	Figures  Figures         `json:"figures"`
	Error    string          `json:"error,omitempty"` // the step could not run
	Result   *stats.Result   `json:"result,omitempty"`
}

// Figures are a step's key numbers, for the curve.
type Figures struct {
	Established    int64   `json:"established"`
	Failed         int64   `json:"failed"`
	ErrorsPct      float64 `json:"errors_pct"`   // as slo's "errors"
	TimeoutsPct    float64 `json:"timeouts_pct"` // as slo's "timeouts"
	SentPerS       float64 `json:"sent_per_s"`
	ReceivedPerS   float64 `json:"received_per_s"`
	RTTP50US       int64   `json:"rtt_p50_us"`
	RTTP99US       int64   `json:"rtt_p99_us"`
	HandshakeP99US int64   `json:"handshake_p99_us"`
}

// Result is the outcome of a search.
type Result struct {
	Schema      string    `json:"schema"`
	Tool        string    `json:"tool"`
	Version     string    `json:"version"`
	Target      string    `json:"target"`
	Start       time.Time `json:"start"`
	Dimension   Dimension `json:"dimension"`
	Connections string    `json:"connections"` // the range, or the fixed count
	Rate        string    `json:"rate"`        // the range of total msg/s, or the fixed per-connection rate
	HoldS       float64   `json:"hold_s"`
	SLO         string    `json:"slo"`
	Refine      int       `json:"refine"`
	// Knee is the highest level that met the SLO, null when even the first
	// step broke it. FirstBad is the lowest level that broke it, null when
	// every level up to the maximum held (the knee is then at least Max).
	Knee     *Level `json:"knee"`
	FirstBad *Level `json:"first_bad"`
	// Summary says the outcome in one sentence.
	Summary string `json:"summary"`
	Steps   []Step `json:"steps"`
}

// StepFunc runs one step: the engine configuration of a level, for its
// Hold. RunEngine is the real one; tests pass fakes.
type StepFunc func(ctx context.Context, cfg engine.Config) (*stats.Result, error)

func (o *Options) validate() error {
	switch o.Dimension {
	case Connections:
		if err := o.Connections.validate(); err != nil {
			return fmt.Errorf("capacity: connections range: %w", err)
		}
	case Rate:
		if err := o.Rate.validate(); err != nil {
			return fmt.Errorf("capacity: rate range: %w", err)
		}
		if o.Base.Connections <= 0 {
			return errors.New("capacity: the rate dimension needs a fixed number of connections")
		}
	case Both:
		if err := o.Connections.validate(); err != nil {
			return fmt.Errorf("capacity: connections range: %w", err)
		}
		if err := o.Rate.validate(); err != nil {
			return fmt.Errorf("capacity: rate range: %w", err)
		}
	default:
		return fmt.Errorf("capacity: dimension %q: want connections, rate or both", o.Dimension)
	}
	if o.Hold <= 0 {
		return fmt.Errorf("capacity: hold must be positive, got %v", o.Hold)
	}
	if o.Refine < 0 {
		return fmt.Errorf("capacity: refine must not be negative, got %d", o.Refine)
	}
	if o.Cooldown < 0 {
		return fmt.Errorf("capacity: cooldown must not be negative, got %v", o.Cooldown)
	}
	if len(o.SLO) == 0 {
		return errors.New("capacity: no SLO to judge the steps by")
	}
	return nil
}

// ladder is the list of levels the search climbs.
func (o *Options) ladder() []Level {
	switch o.Dimension {
	case Connections:
		var out []Level
		for _, c := range o.Connections.Levels() {
			out = append(out, o.level(int(math.Round(c)), 0))
		}
		return dedupe(out)
	case Rate:
		var out []Level
		for _, r := range o.Rate.Levels() {
			out = append(out, o.level(o.Base.Connections, r))
		}
		return dedupe(out)
	}
	cs, rs := o.Connections.Levels(), o.Rate.Levels()
	out := make([]Level, max(len(cs), len(rs)))
	for i := range out {
		out[i] = o.level(int(math.Round(cs[min(i, len(cs)-1)])), rs[min(i, len(rs)-1)])
	}
	return dedupe(out)
}

// level makes a Level of conns connections and (dimensions rate and both) a
// total rate; the connections dimension's rate follows from Base.Rate.
func (o *Options) level(conns int, rate float64) Level {
	conns = max(conns, 1)
	if o.Dimension == Connections {
		rate = o.Base.Rate * float64(conns)
	}
	return Level{Connections: conns, Rate: math.Round(rate*1000) / 1000}
}

func dedupe(ls []Level) []Level {
	out := ls[:0:0]
	for _, l := range ls {
		if len(out) == 0 || out[len(out)-1] != l {
			out = append(out, l)
		}
	}
	return out
}

// midpoint is the level halfway between a good and a bad level, or ok false
// when there is none strictly between them (they are adjacent).
func (o *Options) midpoint(good, bad Level) (Level, bool) {
	c := (good.Connections + bad.Connections) / 2
	r := (good.Rate + bad.Rate) / 2
	var mid Level
	switch o.Dimension {
	case Connections:
		mid = o.level(c, 0)
	case Rate:
		mid = o.level(good.Connections, math.Round(r))
	default:
		mid = o.level(c, math.Round(r))
	}
	return mid, mid != good && mid != bad
}

// config is the engine configuration of level l.
func (o *Options) config(l Level) engine.Config {
	cfg := o.Base
	cfg.Connections = l.Connections
	cfg.Duration = o.Hold
	if o.Dimension != Connections {
		cfg.Rate = l.Rate / float64(l.Connections)
	}
	return cfg
}

// Search runs the search. It returns the Result so far with an error when a
// step cannot run (runStep's error, e.g. a host limit) or ctx ends; a step
// that runs and breaks the SLO is not an error, it is the answer.
func Search(ctx context.Context, opts Options, runStep StepFunc) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	res := &Result{
		Schema:    Schema,
		Tool:      stats.Tool,
		Target:    stats.RedactURL(opts.Base.URL),
		Start:     time.Now().UTC(),
		Dimension: opts.Dimension,
		HoldS:     opts.Hold.Seconds(),
		SLO:       opts.SLO.String(),
		Refine:    opts.Refine,
		Steps:     []Step{},
	}
	switch opts.Dimension {
	case Connections:
		res.Connections = opts.Connections.String()
		res.Rate = strconv.FormatFloat(opts.Base.Rate, 'f', -1, 64) + "/s per connection"
	case Rate:
		res.Connections = strconv.Itoa(opts.Base.Connections)
		res.Rate = opts.Rate.String()
	case Both:
		res.Connections, res.Rate = opts.Connections.String(), opts.Rate.String()
	}

	var good, bad *Level
	run := func(phase string, l Level) (bool, error) {
		if len(res.Steps) > 0 && opts.Cooldown > 0 {
			t := time.NewTimer(opts.Cooldown)
			select {
			case <-ctx.Done():
				t.Stop()
				return false, ctx.Err()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		st := Step{N: len(res.Steps) + 1, Phase: phase, Level: l}
		r, err := runStep(ctx, opts.config(l))
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // an interrupted step is not a measurement
		}
		if err != nil {
			st.Error = err.Error()
			res.Steps = append(res.Steps, st)
			if opts.OnStep != nil {
				opts.OnStep(st)
			}
			return false, fmt.Errorf("capacity: step %d (%s): %w", st.N, l, err)
		}
		st.Result = r
		st.Verdicts = slo.Evaluate(opts.SLO, r)
		st.OK = !stats.Broken(st.Verdicts)
		st.Figures = figures(r)
		res.Steps = append(res.Steps, st)
		if opts.OnStep != nil {
			opts.OnStep(st)
		}
		return st.OK, nil
	}
	finish := func(err error) (*Result, error) {
		res.Knee, res.FirstBad = good, bad
		res.Summary = summary(res, opts)
		return res, err
	}

	for _, l := range opts.ladder() {
		ok, err := run("step", l)
		if err != nil {
			return finish(err)
		}
		if !ok {
			bad = &l
			break
		}
		good = &l
	}
	if good != nil && bad != nil {
		for range opts.Refine {
			mid, ok := opts.midpoint(*good, *bad)
			if !ok {
				break
			}
			held, err := run("refine", mid)
			if err != nil {
				return finish(err)
			}
			if held {
				good = &mid
			} else {
				bad = &mid
			}
		}
	}
	return finish(nil)
}

func summary(res *Result, opts Options) string {
	switch {
	case len(res.Steps) == 0:
		return "no step ran"
	case res.Knee == nil && res.FirstBad != nil:
		return fmt.Sprintf("no capacity found: even the first step (%s) broke the SLO (%s)", res.FirstBad, brokenText(res, *res.FirstBad))
	case res.Knee == nil:
		return "the search stopped before any step completed"
	case res.FirstBad == nil:
		return fmt.Sprintf("every step met the SLO up to the maximum: the knee is at least %s", res.Knee)
	}
	return fmt.Sprintf("knee: %s met the SLO; %s broke it (%s)", res.Knee, res.FirstBad, brokenText(res, *res.FirstBad))
}

// brokenText lists the broken objectives of the step at level l.
func brokenText(res *Result, l Level) string {
	for i := len(res.Steps) - 1; i >= 0; i-- {
		st := res.Steps[i]
		if st.Level != l || st.OK {
			continue
		}
		var parts []string
		for _, v := range st.Verdicts {
			if !v.OK {
				s := v.Objective + " was " + stats.FormatValue(v.Actual, v.Unit)
				if v.Note != "" {
					s = v.Objective + ": " + v.Note
				}
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

// figures extracts a step's key numbers; the ratios are computed as slo
// computes them, so the curve and the verdicts agree.
func figures(r *stats.Result) Figures {
	f := Figures{
		Established:    r.Connections.Established,
		Failed:         r.Connections.Failed,
		SentPerS:       r.Messages.SentPerS,
		ReceivedPerS:   r.Messages.ReceivedPerS,
		RTTP50US:       r.Latency.RTT.P50US,
		RTTP99US:       r.Latency.RTT.P99US,
		HandshakeP99US: r.Latency.Handshake.P99US,
	}
	spec, _ := slo.Parse("errors<100%,timeouts<100%")
	vs := slo.Evaluate(spec, r)
	f.ErrorsPct, f.TimeoutsPct = vs[0].Actual, vs[1].Actual
	return f
}

// RunEngine is the StepFunc that runs cfg on the engine in this process: the
// step's Result is the engine's, with the generator's CPU, RSS and error
// samples.
func RunEngine(ctx context.Context, cfg engine.Config) (*stats.Result, error) {
	eng, err := engine.New(cfg)
	if err != nil {
		return nil, err
	}
	return eng.Run(ctx)
}
