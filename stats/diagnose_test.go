package stats

import (
	"slices"
	"testing"
)

func TestDiagnose(t *testing.T) {
	healthy := func() Result {
		return Result{
			DurationS:   10,
			Config:      Config{Rate: 10, ReplyTimeoutS: 5},
			Connections: Connections{Requested: 100, Attempted: 100, Established: 100, PeakOpen: 100},
			Messages:    Messages{Sent: 10000, Received: 10000},
			Latency:     Latencies{SendLag: Latency{Count: 10000, P99US: 900}},
			Generator:   Generator{CPUUserS: 5, CPUSysS: 2, GOMAXPROCS: 2},
		}
	}
	for _, tc := range []struct {
		name   string
		modify func(r *Result)
		want   []string
	}{
		{"healthy run", func(r *Result) {}, nil},
		{"nothing attempted", func(r *Result) { r.Connections = Connections{} },
			[]string{"no connection was attempted"}},
		{"nothing established", func(r *Result) {
			r.Connections = Connections{Attempted: 10, Failed: 10, FailedByReason: map[string]int64{"refused": 6, "timeout": 3, "dns": 1}}
		}, []string{"no connection was established: 10 of 10 attempts failed (refused 6, timeout 3, dns 1)"}},
		{"nothing established, none failed yet", func(r *Result) { r.Connections = Connections{Attempted: 10} },
			[]string{"no connection was established (10 attempted)"}},
		{"some failed, top three reasons, ties by name", func(r *Result) {
			r.Connections.Attempted, r.Connections.Failed = 120, 20
			r.Connections.FailedByReason = map[string]int64{"reset": 5, "refused": 5, "tls": 4, "http_404": 4, "dns": 2}
		}, []string{"20 of 120 connection attempts failed (16.7%): refused 5, reset 5, http_404 4 and 2 more"}},
		{"failure reasons fall back to errors", func(r *Result) {
			r.Connections.Failed = 1
			r.Errors = map[string]int64{"fd_limit": 1}
		}, []string{"1 of 100 connection attempts failed (1.0%): fd_limit 1"}},
		{"replies timed out", func(r *Result) { r.Messages.TimedOut = 50 },
			[]string{"50 replies timed out (0.5% of 10000 sent) after the reply timeout of 5s or with their connection closed"}},
		{"in flight, corrupt, late, duplicate", func(r *Result) {
			r.Messages.InFlight, r.Messages.Corrupt, r.Messages.Late, r.Messages.Duplicate = 4, 3, 2, 1
		}, []string{
			"4 messages were still waiting for their reply when the run was interrupted (in flight, not timed out)",
			"3 echoes were corrupt (length, frame type or content differ from what was sent): not counted as received",
			"2 replies arrived after their message had timed out (late): not counted as received",
			"1 replies answered a message already answered (duplicate): not counted as received",
		}},
		{"send lag above 10% of the send interval", func(r *Result) {
			r.Config.Rate = 1 // interval 1s: the limit is 100ms
			r.Latency.SendLag.P99US = 150_000
		}, []string{"sends left late (send lag p99 150ms exceeds 10% of the 1.00s send interval) although wsload used only 0.70 of 2 cores: the sender did not get a core when it needed one (other work on this machine?) or its writes blocked; the corrected latency includes the lag, so check the machine's load or spread the run over more processes or machines"}},
		{"send lag while wsload was busy: the generator was the bottleneck", func(r *Result) {
			r.Config.Rate = 1
			r.Latency.SendLag.P99US = 150_000
			r.Generator.CPUUserS, r.Generator.CPUSysS = 14, 4
		}, []string{"the generator was the bottleneck: send lag p99 150ms exceeds 10% of the 1.00s send interval while wsload used 1.80 of 2 cores (GOMAXPROCS), so messages left late and the numbers show wsload's limit, not the target's; use more cores, processes or machines"}},
		{"send lag while the target fell behind: not wsload's fault", func(r *Result) {
			// Seen: RTT p50 4-5 s, 30% timed out, wsload at 0.7 of a core, the sender in write(2).
			r.Config.Rate = 1
			r.Latency.SendLag.P99US = 150_000
			r.Latency.RTTUncorrected = Latency{Count: 7000, P50US: 4_500_000}
			r.Messages.Received, r.Messages.TimedOut = 7000, 3000
		}, []string{
			"3000 replies timed out (30.0% of 10000 sent) after the reply timeout of 5s or with their connection closed",
			"sends left late (send lag p99 150ms exceeds 10% of the 1.00s send interval), but wsload used only 0.70 of 2 cores while the target fell behind (uncorrected rtt p50 4.50s, 30.0% of replies timed out): the writes waited behind a target that stopped keeping up, or other work on this machine held the sender back, not wsload's CPU; the corrected latency includes the wait",
		}},
		{"a scenario is judged by its measured send interval, like an echo run", func(r *Result) {
			// 23 messages a second per connection: the interval is 43.5 ms, 10% is 4.35 ms.
			r.Config.Rate, r.Config.Scenario = 0, &Scenario{}
			r.LoadS, r.DurationS = 10, 11
			r.Messages.Sent, r.Messages.Received = 23000, 23000
			r.Latency.SendLag.P99US = 2_000 // a false alarm at the old fixed 1 ms
		}, nil},
		{"a scenario's send lag above 10% of its measured interval", func(r *Result) {
			r.Config.Rate, r.Config.Scenario = 0, &Scenario{}
			r.LoadS, r.DurationS = 10, 11
			r.Messages.Sent, r.Messages.Received = 23000, 23000
			r.Latency.SendLag.P99US = 5_000
		}, []string{"sends left late (send lag p99 5.00ms exceeds 10% of the 43.5ms send interval) although wsload used only 0.64 of 2 cores: the sender did not get a core when it needed one (other work on this machine?) or its writes blocked; the corrected latency includes the lag, so check the machine's load or spread the run over more processes or machines"}},
		{"send lag below 10% of a long interval", func(r *Result) {
			r.Config.Rate = 1
			r.Latency.SendLag.P99US = 90_000
		}, nil},
		{"send lag above the 1ms floor", func(r *Result) {
			r.Config.Rate = 1000 // 10% of 1ms is below the floor
			r.Latency.SendLag.P99US = 1001
		}, []string{"sends left late (send lag p99 1.00ms exceeds 1.00ms) although wsload used only 0.70 of 2 cores: the sender did not get a core when it needed one (other work on this machine?) or its writes blocked; the corrected latency includes the lag, so check the machine's load or spread the run over more processes or machines"}},
		{"send lag without a rate: the measured interval (100 ms here)", func(r *Result) {
			r.Config.Rate = 0
			r.Latency.SendLag.P99US = 1000
		}, nil},
		{"cpu bound", func(r *Result) { r.Generator.CPUUserS, r.Generator.CPUSysS = 14, 4 },
			[]string{"the generator was CPU-bound: it used 1.80 of 2 cores (GOMAXPROCS) over the run, so the numbers may show wsload's limit, not the target's"}},
		{"cpu just below 90%", func(r *Result) { r.Generator.CPUUserS, r.Generator.CPUSysS = 14, 3.9 }, nil},
		{"clamped samples", func(r *Result) { r.Generator.Clamped = 3 },
			[]string{"3 latency samples exceeded 3600s and were recorded as 3600s"}},
		{"requested connections never dialed", func(r *Result) {
			r.Config.Connections = 20
			r.Connections = Connections{Requested: 20, Attempted: 5, Failed: 5, NotStarted: 15, FailedByReason: map[string]int64{"unfinished": 5}}
		}, []string{
			"no connection was established: 5 of 5 attempts failed (unfinished 5)",
			"15 of 20 requested connections were never dialed: the run ended (or the ramp stopped) before their turn (5 attempted: all failed)",
		}},
		{"asked for more than were ever open at once", func(r *Result) {
			r.Config.Connections = 30000
			r.Connections = Connections{Requested: 30000, Attempted: 30000, Established: 30000, PeakOpen: 5930}
		}, []string{"only 5930 of 30000 connections were open at once (peak open): the target load was never reached"}},
		{"a scenario's peak is an estimate: no asked-for check", func(r *Result) {
			r.Config.Connections, r.Config.Scenario = 30000, &Scenario{}
		}, nil},
		{"connect rate not met: dials waited for a slot", func(r *Result) {
			r.Config.Connections, r.Config.ConnectRate, r.Config.HandshakeConcurrency = 200, 100, 8
			r.Latency.Handshake = Latency{Count: 200, P99US: 200_000}
			r.Latency.HandshakeWait = &Latency{Count: 200, P50US: 1_500_000, MaxUS: 3_200_000}
			r.Connections.Requested, r.Connections.Attempted, r.Connections.Established, r.Connections.PeakOpen = 200, 200, 200, 200
		}, []string{"the connect rate was not met: asked 100/s (200 connections in 1.99s), but dials started up to 3.20s behind that schedule, about 38.5/s achieved: they queued for one of the 8 handshake slots (--handshake-concurrency) while earlier handshakes were in flight (handshake p99 200ms, wait p50 1.50s, max 3.20s)"}},
		{"connect rate met within the slack", func(r *Result) {
			r.Config.Connections, r.Config.ConnectRate = 100, 50
			r.Latency.HandshakeWait = &Latency{Count: 100, P50US: 5, MaxUS: 198_000} // 10% of the 1.98 s ramp
		}, nil},
		{"no connect rate: waiting for a slot is the plan", func(r *Result) {
			r.Config.Connections = 100
			r.Latency.HandshakeWait = &Latency{Count: 100, P50US: 1_500_000, MaxUS: 3_200_000}
		}, nil},
		{"a scenario's connections dialed late", func(r *Result) {
			r.Config.Scenario = &Scenario{}
			r.Latency.HandshakeWait = &Latency{Count: 10, P50US: 1000, MaxUS: 400_000}
		}, []string{"the scenario's connections were dialed up to 400ms after its phases asked for them: they queued for a handshake slot while earlier handshakes were in flight (handshake p99 0µs, wait p50 1.00ms, max 400ms)"}},
		{"handshakes timed out while messages flowed", func(r *Result) {
			r.Connections.Failed, r.Connections.FailedByReason = 3, map[string]int64{"timeout": 3}
			r.Connections.PeakOpen = 97
			r.Config.Connections = 97
			r.Timeline = []Point{{Established: 50, Sent: 0}, {Established: 47, Failed: 3, Sent: 500}}
		}, []string{
			"3 of 100 connection attempts failed (3.0%): timeout 3",
			"3 handshakes timed out while messages were flowing: the connections already open may have starved the rest of the ramp (the target served their messages before the upgrades); --send-after-ramp starts messages once every connection is up or has failed",
		}},
		{"handshake timeouts before any message: not starved", func(r *Result) {
			r.Connections.Failed, r.Connections.FailedByReason = 3, map[string]int64{"timeout": 3}
			r.Config.Connections = 97
			r.Connections.PeakOpen = 97
			r.Timeline = []Point{{Established: 97, Failed: 3}, {Sent: 500}}
		}, []string{"3 of 100 connection attempts failed (3.0%): timeout 3"}},
		{"send after ramp: no hint", func(r *Result) {
			r.Connections.Failed, r.Connections.FailedByReason = 3, map[string]int64{"timeout": 3}
			r.Config.Connections, r.Config.SendAfterRamp = 97, true
			r.Connections.PeakOpen = 97
			r.Timeline = []Point{{Established: 47, Failed: 3, Sent: 500}}
		}, []string{"3 of 100 connection attempts failed (3.0%): timeout 3"}},
		{"several at once, in order", func(r *Result) {
			r.Connections.Failed = 1
			r.Connections.FailedByReason = map[string]int64{"timeout": 1}
			r.Messages.TimedOut = 1
			r.Generator.CPUUserS = 100
		}, []string{
			"1 of 100 connection attempts failed (1.0%): timeout 1",
			"1 replies timed out (0.0% of 10000 sent) after the reply timeout of 5s or with their connection closed",
			"the generator was CPU-bound: it used 10.20 of 2 cores (GOMAXPROCS) over the run, so the numbers may show wsload's limit, not the target's",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			tc.modify(&r)
			if got := r.Diagnose(); !slices.Equal(got, tc.want) {
				t.Fatalf("Diagnose() =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
