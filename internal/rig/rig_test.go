package rig

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/internal/rig/lbconf"
	"github.com/wsload/wsload/stats"
)

// load is one engine run in the background: its engine is reachable while it runs.
type load struct {
	eng  *engine.Engine
	done chan struct{}
	res  *stats.Result
	err  error
	stop context.CancelFunc // ends the run early, as Ctrl-C would (its result is kept)
}

// startLoad runs cfg against its URL in a goroutine.
func startLoad(t *testing.T, cfg engine.Config) *load {
	t.Helper()
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := &load{eng: eng, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(l.done)
		l.res, l.err = eng.Run(ctx)
	}()
	return l
}

// wait returns the run's result; the engine's Duration bounds how long that takes.
func (l *load) wait(t *testing.T) *stats.Result {
	t.Helper()
	<-l.done
	if l.err != nil {
		t.Fatalf("engine run: %v", l.err)
	}
	return l.res
}

// waitConns polls the backends until want connections are open on them in total, and
// returns the per-backend counts (the last seen ones, with ok false, once l's run has ended:
// its connections can no longer all be open). The run's length is the only deadline, so how
// fast a loaded machine opens them does not matter as long as the run outlasts it.
func waitConns(r *Rig, l *load, want int) (conns []int, ok bool) {
	for {
		conns = r.Conns()
		if sum(conns) == want {
			return conns, true
		}
		select {
		case <-l.done:
			return r.Conns(), false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func sum(ns []int) int {
	s := 0
	for _, n := range ns {
		s += n
	}
	return s
}

// checkPassed asserts a run in which the balancer passed every WebSocket: all established,
// no errors, echoes back, all closed normally at the end. minSent is a floor that does not
// depend on speed beyond the run's length: one message per connection.
func checkPassed(t *testing.T, r *Rig, res *stats.Result, conns int, minSent int64) {
	t.Helper()
	c := res.Connections
	if c.Established != int64(conns) || c.Failed != 0 || len(res.Errors) != 0 {
		t.Fatalf("connections %+v errors %v, want %d established and no errors; balancer log:\n%s", c, res.Errors, conns, r.Log())
	}
	m := res.Messages
	if m.Sent < minSent || m.TimedOut != 0 {
		t.Fatalf("messages %+v, want at least %d sent and none timed out", m, minSent)
	}
	// Every echo comes back (received counts matched replies only), and beside them one
	// "hello from bN" per connection that matches no request.
	if m.Received != m.Sent || m.Unmatched != int64(conns) {
		t.Fatalf("messages %+v, want %d echoes and %d hellos", m, m.Sent, conns)
	}
	if res.CloseCodes[1000] != int64(conns) {
		t.Fatalf("close codes %v, want %d × 1000", res.CloseCodes, conns)
	}
}

// TestSpread runs 300 connections through each balancer and algorithm and counts where they
// landed on the backends while all were open.
func TestSpread(t *testing.T) {
	const conns = 300
	for _, tc := range []struct {
		lb, balance string
		// slack is how far from conns/backends a backend may be.
		slack int
	}{
		{lbconf.HAProxy, lbconf.RoundRobin, 1},
		{lbconf.HAProxy, lbconf.LeastConn, 1},
		{lbconf.Nginx, lbconf.RoundRobin, 1},
		{lbconf.Nginx, lbconf.LeastConn, 1},
	} {
		t.Run(tc.lb+"/"+tc.balance, func(t *testing.T) {
			r := Start(t, Options{Backends: 3, Balance: tc.balance, LB: tc.lb})
			// 8 s: the connections must all be open at once before the run ends, and then send.
			l := startLoad(t, engine.Config{URL: r.URL(), Connections: conns, Rate: 2, Duration: 8 * time.Second, HandshakeTimeout: time.Minute})
			spread, ok := waitConns(r, l, conns)
			res := l.wait(t)
			if !ok {
				t.Fatalf("backends held %v (sum %d), never all %d at once; result %+v errors %v", spread, sum(spread), conns, res.Connections, res.Errors)
			}
			t.Logf("%s %s: connections per backend %v", tc.lb, tc.balance, spread)
			even := conns / len(spread)
			for i, n := range spread {
				if n < even-tc.slack || n > even+tc.slack {
					t.Fatalf("%s has %d connections, want %d±%d: spread %v", BackendID(i), n, even, tc.slack, spread)
				}
			}
			// At least one message per connection: how many of the 2/s a loaded machine
			// manages is not the balancer's business, every echo coming back is.
			checkPassed(t, r, res, conns, conns)
		})
	}
}

// TestWSS: the balancer terminates TLS and passes the upgrade to plain ws backends.
func TestWSS(t *testing.T) {
	for _, lb := range []string{lbconf.HAProxy, lbconf.Nginx} {
		t.Run(lb, func(t *testing.T) {
			r := Start(t, Options{Backends: 2, LB: lb, TLS: true})
			if r.TLSURL() == "" {
				t.Fatalf("no wss URL with Options.TLS")
			}
			res := startLoad(t, engine.Config{URL: r.TLSURL(), InsecureTLS: true, Connections: 20, Rate: 5, Duration: 3 * time.Second, HandshakeTimeout: time.Minute}).wait(t)
			checkPassed(t, r, res, 20, 20)
		})
	}
}

// TestProbeRotates: sequential handshakes through roundrobin visit the backends in turn, and
// the backend id travels back through the balancer in the 101's X-Backend header.
func TestProbeRotates(t *testing.T) {
	for _, lb := range []string{lbconf.HAProxy, lbconf.Nginx} {
		t.Run(lb, func(t *testing.T) {
			r := Start(t, Options{Backends: 3, LB: lb})
			seen := map[string]int{}
			var order []string
			for range 6 {
				id, err := r.Probe()
				if err != nil {
					t.Fatalf("%v; balancer log:\n%s", err, r.Log())
				}
				seen[id]++
				order = append(order, id)
			}
			for i := range 3 {
				if seen[BackendID(i)] != 2 {
					t.Fatalf("6 round-robin handshakes went to %v, want each of b1..b3 twice", order)
				}
			}
		})
	}
}

// TestRestartMidRun: a backend restarted during a run closes its clients with 1001 through
// the balancer (1006 if the close frame were lost); the other connections are untouched, and
// the restarted backend is soon back in rotation.
func TestRestartMidRun(t *testing.T) {
	const conns = 150
	for _, lb := range []string{lbconf.HAProxy, lbconf.Nginx} {
		t.Run(lb, func(t *testing.T) {
			r := Start(t, Options{Backends: 3, LB: lb})
			l := startLoad(t, engine.Config{URL: r.URL(), Connections: conns, Rate: 2, Duration: 8 * time.Second, HandshakeTimeout: time.Minute})
			before, ok := waitConns(r, l, conns)
			if !ok {
				res := l.wait(t)
				t.Fatalf("backends held %v, never all %d; result %+v errors %v", before, conns, res.Connections, res.Errors)
			}
			r.Restart(1)
			res := l.wait(t)
			dropped := int64(before[1])
			t.Logf("%s: b2 held %d; close codes %v, errors %v", lb, dropped, res.CloseCodes, res.Errors)
			if got := res.CloseCodes[1001] + res.CloseCodes[1006]; got != dropped || dropped == 0 {
				t.Fatalf("close codes %v: want %d closes with 1001 or 1006 (the connections b2 held), got %d", res.CloseCodes, dropped, got)
			}
			if res.CloseCodes[1000] != conns-dropped {
				t.Fatalf("close codes %v: want the other %d connections closed normally", res.CloseCodes, conns-dropped)
			}
			if res.Connections.Established != conns || res.Connections.Failed != 0 {
				t.Fatalf("connections %+v", res.Connections)
			}
			// Back in rotation: a handshake reaches b2 again (a few health checks; the
			// deadline is for a loaded machine).
			deadline := time.Now().Add(time.Minute)
			for {
				id, err := r.Probe()
				if err == nil && id == BackendID(1) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("restarted b2 never got a connection again (last probe %q, %v); balancer log:\n%s", id, err, r.Log())
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// TestMaxConn shows what a client meets beyond the balancer's connection cap, with 50
// connections held open and more arriving:
//
//   - HAProxy (frontend maxconn 50) stops accepting: the kernel completes the TCP handshake
//     and queues the connection in the listen backlog (HAProxy sizes it to maxconn), the
//     upgrade request waits there unanswered, and the client sees a handshake that takes as
//     long as a slot takes to free up, or a handshake timeout. Never an HTTP error.
//   - nginx (limit_conn 50) answers 503 at once.
func TestMaxConn(t *testing.T) {
	const capConns = 50
	t.Run(lbconf.HAProxy, func(t *testing.T) {
		r := Start(t, Options{Backends: 2, LB: lbconf.HAProxy, MaxConn: capConns})
		// The hold must outlast the waits below even on a loaded machine.
		const holdFor = 8 * time.Second
		holdStart := time.Now()
		hold := startLoad(t, engine.Config{URL: r.URL(), Connections: capConns, Duration: holdFor, HandshakeTimeout: time.Minute})
		if spread, ok := waitConns(r, hold, capConns); !ok {
			t.Fatalf("the first %d connections did not all open: backends %v", capConns, spread)
		}
		// While the 50 are held, 20 more with a short handshake timeout all time out.
		// Their run ends once all 20 have failed (the duration is only the deadline), so the
		// timeouts are counted as timeouts however late a busy machine dials them.
		impatient := startLoad(t, engine.Config{URL: r.URL(), Connections: 20, Duration: time.Minute, HandshakeTimeout: 700 * time.Millisecond}).wait(t)
		if c := impatient.Connections; c.Established != 0 || c.Failed != 20 || impatient.Errors["timeout"] != 20 {
			t.Fatalf("beyond maxconn with a 700ms handshake timeout: %+v errors %v, want 20 handshake timeouts", c, impatient.Errors)
		}
		if n := sum(r.Conns()); n != capConns {
			t.Fatalf("backends hold %d connections, want the cap %d", n, capConns)
		}
		// 20 patient ones wait in the backlog until the held connections close: none opens
		// while the hold's run is still going (checked throughout, not at one moment).
		patientStart := time.Now()
		// Its run lasts until all 20 are open (ended then; the duration is only the deadline), so
		// the queued handshakes complete inside it however slowly the hold lets go.
		patient := startLoad(t, engine.Config{URL: r.URL(), Connections: 20, Duration: 10 * time.Minute, HandshakeTimeout: 5 * time.Minute})
		for held := true; held; {
			open := patient.eng.Open()
			held = time.Since(holdStart) < holdFor // the hold's connections stay open at least this long
			if open != 0 && held {
				t.Fatalf("%d connections beyond maxconn opened while the cap was held", open)
			}
			time.Sleep(10 * time.Millisecond)
		}
		hold.wait(t)
		for deadline := time.Now().Add(5 * time.Minute); patient.eng.Open() < 20 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		patient.stop()
		res := patient.wait(t)
		if c := res.Connections; c.Established != 20 || c.Failed != 0 {
			t.Fatalf("patient connections: %+v errors %v, want all 20 established once slots freed", c, res.Errors)
		}
		// They waited from their start until the hold ended.
		waited := time.Duration(res.Latency.Handshake.P50US) * time.Microsecond
		freed := holdStart.Add(holdFor).Sub(patientStart)
		t.Logf("haproxy: handshake p50 %v for connections queued %v before a slot freed", waited, freed)
		if waited < freed/2 {
			t.Fatalf("handshake p50 %v: the connections beyond maxconn did not wait (slots freed after %v)", waited, freed)
		}
	})
	t.Run(lbconf.Nginx, func(t *testing.T) {
		r := Start(t, Options{Backends: 2, LB: lbconf.Nginx, MaxConn: capConns})
		hold := startLoad(t, engine.Config{URL: r.URL(), Connections: capConns, Duration: 8 * time.Second, HandshakeTimeout: time.Minute})
		if spread, ok := waitConns(r, hold, capConns); !ok {
			t.Fatalf("the first %d connections did not all open: backends %v", capConns, spread)
		}
		over := startLoad(t, engine.Config{URL: r.URL(), Connections: 20, Duration: time.Second}).wait(t)
		hold.wait(t)
		c := over.Connections
		t.Logf("nginx beyond limit_conn: %+v errors %v", c, over.Errors)
		if c.Established != 0 || c.Failed != 20 || over.Errors[fmt.Sprintf("http_%d", 503)] != 20 {
			t.Fatalf("beyond limit_conn: %+v errors %v, want 20 refused with 503", c, over.Errors)
		}
	})
}
