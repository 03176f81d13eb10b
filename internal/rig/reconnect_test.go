package rig

import (
	"testing"
	"time"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/internal/rig/lbconf"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// TestReconnectAfterRestart is the long-lived-connection case of the rig,
// through a real HAProxy: scripts/scenarios/rig-reconnect.yaml holds 150
// connections, b2 restarts mid-run, its clients (closed with 1001) reconnect
// with backoff, and the result says how many reconnected, how the open count
// recovered and where the connections were open at the end, per backend.
// Where the reconnecting clients land is the balancer's choice: roundrobin
// gives the restarted backend only its turn, leastconn sends them to it as
// the emptiest; the test asserts that ordering loosely (leastconn leaves
// b2 at least as full as roundrobin does) and logs the figures.
func TestReconnectAfterRestart(t *testing.T) {
	const conns = 150
	bf, err := engine.ParseBackendFrom("header:X-Backend")
	if err != nil {
		t.Fatalf("%v", err)
	}
	b2AtEnd := map[string]int64{}
	for _, balance := range []string{lbconf.RoundRobin, lbconf.LeastConn} {
		t.Run(balance, func(t *testing.T) {
			r := Start(t, Options{Backends: 3, Balance: balance})
			p, err := scenario.Load("../../scripts/scenarios/rig-reconnect.yaml")
			if err != nil {
				t.Fatalf("%v", err)
			}
			if err := p.Override(scenario.Overrides{Target: r.URL(), Connections: conns, Duration: 8 * time.Second}); err != nil {
				t.Fatalf("override: %v", err)
			}
			l := startLoad(t, engine.Config{Plan: p, BackendFrom: bf, ReplyTimeout: 2 * time.Second})
			before, ok := waitConns(r, l, conns)
			if !ok {
				res := l.wait(t)
				t.Fatalf("backends held %v, never all %d; result %+v errors %v", before, conns, res.Connections, res.Errors)
			}
			time.Sleep(500 * time.Millisecond) // a full second at the level before the drop
			r.Restart(1)
			res := l.wait(t)
			dropped := int64(before[1])
			rec := res.Recovery
			if rec == nil {
				t.Fatalf("no recovery in the result: close codes %v, steps %v", res.CloseCodes, res.Latency.Steps)
			}
			t.Logf("%s: b2 held %d; reconnects %d, drops %v, dropped at %v recovered at %v (min open %d); open at end %v",
				balance, dropped, rec.Reconnects, rec.DropsByCode, fmtP(rec.DroppedAtS), fmtP(rec.RecoveredAtS), rec.MinOpen, openAtEnd(res))
			if dropped == 0 || rec.Reconnects < dropped {
				t.Fatalf("%d reconnects, want at least the %d connections b2 held", rec.Reconnects, dropped)
			}
			if got := rec.DropsByCode[1001] + rec.DropsByCode[1006]; got < dropped {
				t.Fatalf("drops by code %v: want at least %d closes with 1001 or 1006", rec.DropsByCode, dropped)
			}
			if rec.Target != conns || rec.Level != 149 {
				t.Fatalf("recovery target %d level %d, want %d and 149", rec.Target, rec.Level, conns)
			}
			// A dip the timeline saw must have ended: every client reconnects
			// within its 2 s backoff cap plus a handshake, well before the end.
			if rec.DroppedAtS != nil && rec.RecoverS == nil {
				t.Fatalf("open fell at %vs (min %d) and never recovered; timeline %+v", *rec.DroppedAtS, rec.MinOpen, res.Timeline)
			}
			s := res.BackendSpread
			if s == nil || s.OpenAtEnd == nil || s.OpenAtEnd.Backends != 3 {
				t.Fatalf("no open-at-end spread over 3 backends: %+v", s)
			}
			var sum int64
			for _, b := range res.Backends {
				sum += b.Connections.OpenAtEnd
			}
			if sum < rec.Level {
				t.Fatalf("open at end %v sums to %d, want every client back (≥ %d)", openAtEnd(res), sum, rec.Level)
			}
			b2AtEnd[balance] = res.Backends[BackendID(1)].Connections.OpenAtEnd
		})
	}
	rr, lc := b2AtEnd[lbconf.RoundRobin], b2AtEnd[lbconf.LeastConn]
	t.Logf("b2 (restarted) open at end: roundrobin %d, leastconn %d", rr, lc)
	if len(b2AtEnd) == 2 && lc < rr {
		t.Fatalf("leastconn left the restarted b2 with %d open, fewer than roundrobin's %d: leastconn should send the reconnecting clients to the emptiest backend", lc, rr)
	}
}

func openAtEnd(r *stats.Result) map[string]int64 {
	m := map[string]int64{}
	for name, b := range r.Backends {
		m[name] = b.Connections.OpenAtEnd
	}
	return m
}

func fmtP(v *float64) any {
	if v == nil {
		return "never"
	}
	return *v
}
