package engine

import (
	"bufio"
	"context"
	"io"
	"math"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// Helpers for flow tests that pass on any machine, busy or quiet: a run
// lasts until what the test waits for has happened (runUntil), with a
// deadline long enough for an oversubscribed machine under -race, and the
// test then checks exact counts.

// flowDeadline bounds every wait of the flow tests.
const flowDeadline = 120 * time.Second

// flowTimeout is the timeout of expects and pings whose timing is not what
// a test is about: long enough that a busy machine never trips it.
const flowTimeout = 60 * time.Second

// waitRun is what runUntil hands its condition: the totals so far and how
// long the run has been going.
type waitRun struct {
	tot     *stats.Interval
	elapsed time.Duration
}

func (w waitRun) steps(name string) int64 {
	if s := w.tot.Steps[name]; s != nil && s.Corrected != nil {
		return s.Corrected.TotalCount()
	}
	return 0
}

// runOpts tunes runUntil.
type runOpts struct {
	tweak    func(*Config) // the configuration, before New
	engine   func(*Engine) // the engine, after New and before Run
	interval time.Duration // default 50 ms
	onStart  func(*Engine) // in its own goroutine once Run has started
	done     func(waitRun) bool
}

// runUntil runs p until o.done reports that what the test waits for has
// happened (checked at every interval), then ends the run as its duration
// would: replies still due are waited for and the connections close with
// 1000. The run's duration is flowDeadline unless the plan's is longer; a
// run that reaches it without o.done fails the test. Replies, close
// handshakes and upgrades get generous timeouts.
func runUntil(t *testing.T, p *scenario.Plan, o runOpts) (*stats.Result, *Engine) {
	t.Helper()
	cfg := Config{
		Plan:             p,
		Duration:         max(p.Duration(), flowDeadline),
		ReplyTimeout:     flowTimeout,
		CloseTimeout:     flowTimeout,
		HandshakeTimeout: flowTimeout,
		Interval:         o.interval,
	}
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	var (
		mu      sync.Mutex
		start   = time.Now()
		agg     = stats.NewAggregate(start)
		stop    = make(chan struct{})
		stopped bool
	)
	sink := func(iv *stats.Interval) {
		mu.Lock()
		defer mu.Unlock()
		agg.Add(iv)
		if !stopped && o.done != nil && o.done(waitRun{tot: agg.Total(), elapsed: time.Since(start)}) {
			stopped = true
			close(stop)
		}
	}
	eng, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	eng.stop = stop
	if o.engine != nil {
		o.engine(eng)
	}
	if o.onStart != nil {
		go o.onStart(eng)
	}
	r, err := eng.Run(context.Background(), sink)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !stopped && o.done != nil {
		t.Fatalf("what the test waited for did not happen within %v: connections %+v messages %+v errors %v steps %v",
			cfg.Duration, r.Connections, r.Messages, r.Errors, stepCounts(r))
	}
	return r, eng
}

func stepCounts(r *stats.Result) map[string]int64 {
	m := map[string]int64{}
	for name, s := range r.Latency.Steps {
		m[name] = s.Count
	}
	return m
}

// hold appends a phase that holds to connections for flowDeadline: the
// time a run ending on a condition has to get there (cool-down after
// arrivals with 0).
func hold(p *scenario.Plan, connections int) {
	start := p.Duration()
	p.Phases = append(p.Phases, scenario.Phase{Name: "wait", Kind: scenario.PhaseConnections,
		Start: start, Duration: flowDeadline, From: connections, To: connections})
}

// stretch makes phase i last d, moving the phases after it.
func stretch(p *scenario.Plan, i int, d time.Duration) {
	p.Phases[i].Duration = d
	for j := i + 1; j < len(p.Phases); j++ {
		p.Phases[j].Start = p.Phases[j-1].End()
	}
}

// relaxTimeouts raises every expect and ping timeout of p's flows below
// flowTimeout to flowTimeout.
func relaxTimeouts(p *scenario.Plan) {
	for i := range p.Flows {
		relaxSteps(p.Flows[i].Steps)
	}
}

func relaxSteps(steps []scenario.Step) {
	for i := range steps {
		st := &steps[i]
		switch {
		case st.Expect != nil && st.Expect.Timeout < flowTimeout:
			st.Expect.Timeout = flowTimeout
		case st.Ping != nil && st.Ping.Timeout < flowTimeout:
			st.Ping.Timeout = flowTimeout
		case st.Repeat != nil:
			relaxSteps(st.Repeat.Steps)
		}
	}
}

// waitFor polls cond every few milliseconds until it holds; false after
// flowDeadline.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(flowDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// wsClient is a test's own WebSocket client for a broadcast target: it
// sends text messages and hands every text message it receives to onText.
type wsClient struct {
	c  net.Conn
	mu sync.Mutex
}

func dialClient(t *testing.T, target string, onText func(string)) *wsClient {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, flowTimeout)
	if err != nil {
		t.Fatalf("test client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(wsproto.AppendRequest(nil, &wsproto.Request{URL: u, Key: wsproto.NewKey()})); err != nil {
		t.Fatalf("test client: %v", err)
	}
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		t.Fatalf("test client: upgrade answered %q (%v)", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("test client: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	go func() {
		for {
			var h [2]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return
			}
			n := uint64(h[1] & 0x7f)
			switch n {
			case 126:
				var b [2]byte
				if _, err := io.ReadFull(br, b[:]); err != nil {
					return
				}
				n = uint64(b[0])<<8 | uint64(b[1])
			case 127:
				var b [8]byte
				if _, err := io.ReadFull(br, b[:]); err != nil {
					return
				}
				n = 0
				for _, x := range b {
					n = n<<8 | uint64(x)
				}
			}
			p := make([]byte, n)
			if _, err := io.ReadFull(br, p); err != nil {
				return
			}
			if wsproto.Opcode(h[0]&0x0f) == wsproto.OpText && onText != nil {
				onText(string(p))
			}
		}
	}()
	return &wsClient{c: c}
}

func (w *wsClient) send(t *testing.T, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.c.Write(wsproto.AppendFrame(nil, wsproto.OpText, true, []byte(text), [4]byte{7, 1, 3, 9})); err != nil {
		t.Errorf("test client: %v", err)
	}
}

// lastPoint bounds from above when, since the start of the run, the last
// interval for which pred holds recorded its events: by the end of the
// interval after it (an interval's own end is read before it is collected,
// so an event can land in an interval that ended just before it); when it
// is the run's last, by the end of the run. Checking that bound against
// when things were due is a lower bound that holds on any machine, as
// nothing happens earlier than it is due.
func lastPoint(r *stats.Result, pred func(stats.Point) bool) time.Duration {
	last := -1
	for i, pt := range r.Timeline {
		if pred(pt) {
			last = i
		}
	}
	switch {
	case last < 0:
		return 0
	case last+1 < len(r.Timeline):
		return time.Duration(r.Timeline[last+1].T * float64(time.Second))
	}
	return time.Duration(math.MaxInt64)
}
