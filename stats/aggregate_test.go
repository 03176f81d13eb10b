package stats

import (
	"math"
	"net/http"
	"slices"
	"testing"
	"time"
)

// recordSecond records a deterministic second of traffic: n connections,
// each sending and receiving msgs messages with RTTs of base+i µs.
func recordSecond(rec *Recorder, n, msgs int, base time.Duration) {
	for c := range n {
		s := rec.Shard(c)
		s.ConnAttempted()
		s.ConnEstablished(time.Duration(500+c) * time.Microsecond)
		for i := range msgs {
			s.Sent(100, time.Duration(i)*time.Microsecond)
			s.Received(100)
			s.RTT(base+time.Duration(i)*time.Microsecond, base/2)
		}
	}
}

func TestAggregateTimeline(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := NewRecorder(2)
	rec.SetStart(t0)
	agg := NewAggregate(t0)

	recordSecond(rec, 10, 100, time.Millisecond)
	agg.Add(rec.Rotate(t0.Add(time.Second)))

	recordSecond(rec, 5, 200, 2*time.Millisecond)
	rec.Shard(0).ConnFailed("refused")
	rec.Shard(1).Error("read")
	rec.Shard(1).TimedOut()
	rec.Shard(0).ConnClosed(1000)
	agg.Add(rec.Rotate(t0.Add(2 * time.Second)))

	for range 4 {
		rec.Shard(0).ConnClosed(1001)
	}
	agg.Add(rec.Rotate(t0.Add(2500 * time.Millisecond))) // the short last interval

	want := []Point{
		{T: 1, LenS: 1, Open: 10, Established: 10, Sent: 1000, Received: 1000, RTTP50US: 1049, RTTP99US: 1098},
		{T: 2, LenS: 1, Open: 14, Established: 5, Failed: 1, Closed: 1, Sent: 1000, Received: 1000, RTTP50US: 2099, RTTP99US: 2197, Errors: 2, TimedOut: 1},
		{T: 2.5, LenS: 0.5, Open: 10, Closed: 4},
	}
	res := agg.Result(Header{Version: "test", Target: "ws://127.0.0.1:1/", Start: t0})
	if len(res.Timeline) != len(want) {
		t.Fatalf("timeline has %d points, want %d", len(res.Timeline), len(want))
	}
	for i, w := range want {
		g := res.Timeline[i]
		// RTT quantiles are within histogram precision of the exact values.
		if math.Abs(float64(g.RTTP50US-w.RTTP50US)) > 2 || math.Abs(float64(g.RTTP99US-w.RTTP99US)) > 2 {
			t.Fatalf("point %d rtt p50/p99 = %d/%d, want %d/%d", i, g.RTTP50US, g.RTTP99US, w.RTTP50US, w.RTTP99US)
		}
		g.RTTP50US, g.RTTP99US, w.RTTP50US, w.RTTP99US = 0, 0, 0, 0
		if g != w {
			t.Fatalf("point %d = %+v, want %+v", i, g, w)
		}
	}

	if res.DurationS != 2.5 {
		t.Fatalf("duration_s = %v, want 2.5 (up to the last interval)", res.DurationS)
	}
	c := res.Connections
	if c.Attempted != 15 || c.Established != 15 || c.Failed != 1 || c.Closed != 5 || c.PeakOpen != 15 {
		t.Fatalf("connections = %+v", c)
	}
	if c.FailedByReason["refused"] != 1 || len(c.FailedByReason) != 1 {
		t.Fatalf("failed_by_reason = %v, want refused 1", c.FailedByReason)
	}
	if res.Errors["refused"] != 1 || res.Errors["read"] != 1 {
		t.Fatalf("errors = %v", res.Errors)
	}
	if m := res.Messages; m.Sent != 2000 || m.Received != 2000 || m.SentPerS != 800 || m.ReceivedPerS != 800 || m.BytesSent != 200_000 {
		t.Fatalf("messages = %+v", m)
	}
	if res.CloseCodes[1000] != 1 || res.CloseCodes[1001] != 4 {
		t.Fatalf("close codes = %v", res.CloseCodes)
	}
	if res.Latency.Handshake.Count != 15 || res.Latency.RTT.Count != 2000 || res.Latency.SendLag.Count != 2000 {
		t.Fatalf("latency counts handshake %d rtt %d send lag %d", res.Latency.Handshake.Count, res.Latency.RTT.Count, res.Latency.SendLag.Count)
	}
	if agg.Total().Open != 10 {
		t.Fatalf("total open = %d, want the last gauge 10", agg.Total().Open)
	}
}

func TestResultHeader(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	for _, tc := range []struct {
		name       string
		sent, recv int64
		user, sys  float64
		wantPerMsg float64
	}{
		{"per received message", 4000, 2000, 0.5, 0.5, 500},
		{"per sent message when nothing came back", 4000, 0, 0.3, 0.1, 100},
		{"nothing sent", 0, 0, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			agg := NewAggregate(t0)
			iv := NewInterval(t0, t0.Add(time.Second))
			iv.Sent, iv.Received = tc.sent, tc.recv
			agg.Add(iv)
			h := http.Header{
				"Authorization": {"Bearer abc"},
				"X-Trace":       {"1", "2"},
			}
			cfg := Config{Connections: 3, Headers: RedactHeaders(h)}
			cfg.Headers["X-Session-Token"] = "leaked-by-caller" // not redacted by the caller
			res := agg.Result(Header{
				Version:   "v9",
				Target:    "wss://user:pw@127.0.0.1:8443/ws?token=s3cret&room=1",
				Duration:  2 * time.Second,
				Config:    cfg,
				Generator: Generator{CPUUserS: tc.user, CPUSysS: tc.sys, GOMAXPROCS: 2},
			})
			if res.Schema != Schema || res.Tool != "wsload" || res.Version != "v9" {
				t.Fatalf("identity = %q %q %q", res.Schema, res.Tool, res.Version)
			}
			if !res.Start.Equal(t0) || res.Start.Location() != time.UTC {
				t.Fatalf("start = %v, want %v in UTC", res.Start, t0)
			}
			if res.DurationS != 2 {
				t.Fatalf("duration_s = %v, want the header's 2", res.DurationS)
			}
			if got := res.Generator.CPUPerMsgUS; math.Abs(got-tc.wantPerMsg) > 1e-9 {
				t.Fatalf("cpu_per_msg_us = %v, want %v", got, tc.wantPerMsg)
			}
			if res.Target != "wss://redacted@127.0.0.1:8443/ws?room=1&token=redacted" {
				t.Fatalf("target = %q: secrets not redacted", res.Target)
			}
			want := map[string]string{"Authorization": Redacted, "X-Trace": "1, 2", "X-Session-Token": Redacted}
			if len(res.Config.Headers) != len(want) {
				t.Fatalf("headers = %v, want %v", res.Config.Headers, want)
			}
			for k, v := range want {
				if res.Config.Headers[k] != v {
					t.Fatalf("headers[%q] = %q, want %q", k, res.Config.Headers[k], v)
				}
			}
			if cfg.Headers["X-Session-Token"] != "leaked-by-caller" {
				t.Fatalf("Result modified the caller's header map")
			}
			if res.Config.SourceIPs == nil || res.Config.Subprotocols == nil || res.Timeline == nil || res.Errors == nil {
				t.Fatalf("nil slices or maps would encode as null")
			}
			if !slices.Equal(res.Generator.Warnings, res.Diagnose()) {
				t.Fatalf("warnings %q, want Diagnose() %q", res.Generator.Warnings, res.Diagnose())
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret bool
	}{
		{"Authorization", true},
		{"Cookie", true},
		{"Proxy-Authorization", true},
		{"X-Api-Key", true},
		{"X-Auth-Token", true},
		{"X-Client-Secret", true},
		{"X-Password", true},
		{"Sec-WebSocket-Key", true},
		{"Origin", false},
		{"User-Agent", false},
		{"Sec-WebSocket-Protocol", false},
	} {
		if got := IsSecretName(tc.name); got != tc.secret {
			t.Fatalf("IsSecretName(%q) = %v, want %v", tc.name, got, tc.secret)
		}
		m := RedactHeaders(http.Header{tc.name: {"value"}})
		if got := m[tc.name] == Redacted; got != tc.secret {
			t.Fatalf("RedactHeaders(%q) = %q", tc.name, m[tc.name])
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"ws://127.0.0.1:8080/", "ws://127.0.0.1:8080/"},
		{"ws://127.0.0.1/?room=a&b=c", "ws://127.0.0.1/?room=a&b=c"},
		{"ws://tok@127.0.0.1/", "ws://redacted@127.0.0.1/"},
		{"ws://127.0.0.1/?access_token=x", "ws://127.0.0.1/?access_token=redacted"},
		{"ws://127.0.0.1/?apikey=x&apikey=y", "ws://127.0.0.1/?apikey=redacted&apikey=redacted"},
		{"ws://[::1", Redacted},
		{"", ""},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Fatalf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
