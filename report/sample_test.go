package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wsload/wsload/stats"
)

// sample describes a synthetic run, recorded through stats.Recorder and
// folded by stats.Aggregate exactly as the engine does, so the report reads
// real histograms (hdr) and a real timeline.
type sample struct {
	seconds    int
	conns      int     // connections opened over the first rampS seconds
	rampS      int     // seconds of ramp
	rate       int     // messages per second per connection
	baseUS     float64 // median service time
	spikeEvery int     // every Nth message waits spikeUS more (a stall), 0 = none
	spikeUS    float64
	failEvery  int // every Nth connection attempt fails, 0 = none
	timeoutPct int // per mille of messages that time out
	step       bool
	lateErrors int // runtime errors in the last second
	abnormal   int // connections closed with 1006 at the end
	backends   int // connections spread over this many backends, app-1.., the last one slower; 0 = not told apart
	slo        []stats.Verdict
}

var t0 = time.Date(2025, 3, 4, 10, 20, 30, 0, time.UTC)

func (s sample) result(t testing.TB, target string) *stats.Result {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	rec := stats.NewRecorder(2)
	rec.SetStart(t0)
	agg := stats.NewAggregate(t0)
	open := 0
	attempted := 0
	msg := 0
	backendOf := func(c int) *stats.Backend {
		if s.backends == 0 {
			return nil
		}
		return rec.Backend(fmt.Sprintf("app-%d", c%s.backends+1))
	}
	slow := func(c int) float64 {
		if s.backends > 1 && c%s.backends == s.backends-1 {
			return 2.5
		}
		return 1
	}
	for sec := 0; sec < s.seconds; sec++ {
		target := s.conns
		if sec < s.rampS {
			target = s.conns * (sec + 1) / s.rampS
		}
		for attempted < target {
			sh := rec.Shard(attempted)
			sh.ConnAttempted()
			attempted++
			if s.failEvery > 0 && attempted%s.failEvery == 0 {
				sh.ConnFailed([]string{"refused", "timeout", "http_503"}[attempted/s.failEvery%3])
				continue
			}
			hs := 400 + 300*rng.ExpFloat64()
			sh.ConnEstablished(time.Duration(hs) * time.Microsecond)
			sh.BackendEstablished(backendOf(open))
			open++
		}
		for c := 0; c < open; c++ {
			sh := rec.Shard(c)
			b := backendOf(c)
			for i := 0; i < s.rate; i++ {
				msg++
				lag := time.Duration(2+5*rng.ExpFloat64()) * time.Microsecond
				svc := slow(c) * s.baseUS * math.Exp(0.35*rng.NormFloat64())
				if s.spikeEvery > 0 && msg%s.spikeEvery == 0 {
					svc += s.spikeUS * rng.Float64()
					lag += time.Duration(s.spikeUS/4) * time.Microsecond
				}
				sh.SentFor(b, 64, lag)
				if s.timeoutPct > 0 && rng.IntN(1000) < s.timeoutPct {
					sh.TimedOutFor(b)
					continue
				}
				sh.ReceivedFor(b, 64)
				d := time.Duration(svc) * time.Microsecond
				sh.RTTFor(b, d+lag, d)
				if s.step && i == 0 {
					sh.Step("login", 2*(d+lag), 2*d)
				}
			}
		}
		if sec == s.seconds-1 {
			for i := 0; i < s.lateErrors; i++ {
				rec.Shard(i).Error([]string{"read", "invalid_frame"}[i%2])
			}
			for c := 0; c < open; c++ {
				code := 1000
				if c < s.abnormal {
					code = 1006
				}
				rec.Shard(c).ConnClosed(code)
				rec.Shard(c).BackendClosed(backendOf(c), code)
			}
		}
		agg.Add(rec.Rotate(t0.Add(time.Duration(sec+1) * time.Second)))
	}
	backendFrom := ""
	if s.backends > 0 {
		backendFrom = "header:X-Backend"
	}
	res := agg.Result(stats.Header{
		Version:  "0.1.0-test",
		Target:   target,
		Start:    t0,
		Duration: time.Duration(s.seconds) * time.Second,
		Config: stats.Config{
			Connections: s.conns, ConnectRate: float64(s.conns / max(s.rampS, 1)), Rate: float64(s.rate), Size: 64,
			DurationS: float64(s.seconds), Headers: map[string]string{"Authorization": "Bearer secret-token"},
			Subprotocols: []string{"chat"}, HandshakeTimeoutS: 10, ReplyTimeoutS: 5, Pollers: 2,
			BackendFrom: backendFrom,
		},
		Generator: stats.Generator{CPUUserS: 0.8, CPUSysS: 0.3, MaxRSSBytes: 64 << 20, GOMAXPROCS: 2},
	})
	res.SLO = s.slo
	return res
}

// healthy is a clean run; degraded is the same load with a slower, stalling
// target, failures, timeouts and errors: together they exercise every part
// of the page.
var (
	healthy  = sample{seconds: 10, conns: 100, rampS: 3, rate: 20, baseUS: 350}
	degraded = sample{seconds: 10, conns: 100, rampS: 3, rate: 20, baseUS: 900, spikeEvery: 500, spikeUS: 40_000,
		failEvery: 17, timeoutPct: 2, step: true, lateErrors: 5, abnormal: 7}
)

func healthyRun(t testing.TB) Run {
	return Run{Label: "haproxy-roundrobin", Result: healthy.result(t, "ws://127.0.0.1:8080/echo")}
}

// balancedRun is healthy behind a balancer with three backends, one slower,
// and SLOs of which one is broken.
func balancedRun(t testing.TB) Run {
	s := healthy
	s.backends = 3
	s.slo = []stats.Verdict{
		{Objective: "rtt.p99<50ms", Metric: "rtt.p99", Op: "<", Threshold: 50000, Actual: 1900, Unit: "us", OK: true},
		{Objective: "errors<0.1%", Metric: "errors", Op: "<", Threshold: 0.1, Actual: 0, Unit: "%", OK: true},
		{Objective: "rtt.p999<1ms", Metric: "rtt.p999", Op: "<", Threshold: 1000, Actual: 2300, Unit: "us", OK: false},
	}
	return Run{Label: "behind-haproxy", Result: s.result(t, "ws://127.0.0.1:8080/echo")}
}

func degradedRun(t testing.TB) Run {
	return Run{Label: "haproxy-leastconn", Result: degraded.result(t, "ws://127.0.0.1:8081/echo")}
}

var sampleCapacity = Capacity{
	LevelName: "connections",
	SLO:       "p99 ≤ 50ms, errors ≤ 0.1%",
	Points: []CapacityPoint{
		{Level: 20000, P99US: 31_000, ErrorsPct: 0.02, OK: true},
		{Level: 5000, P99US: 4_100, ErrorsPct: 0, OK: true},
		{Level: 10000, P99US: 9_800, ErrorsPct: 0, OK: true},
		{Level: 25000, P99US: 78_000, ErrorsPct: 0.4, OK: false},
		{Level: 30000, P99US: 240_000, ErrorsPct: 3.5, OK: false},
		{Level: 15000, P99US: 18_500, ErrorsPct: 0.01, OK: true},
	},
}
