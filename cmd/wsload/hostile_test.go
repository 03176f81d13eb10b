package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/hostile"
	"github.com/wsload/wsload/probe"
	"github.com/wsload/wsload/stats"
)

// hostileConns is how many connections each hostile run opens: every per-connection fault then
// shows as exactly this count in its bucket.
const hostileConns = 3

// hostileRunArgs are the flags of every run against a hostile server: a few connections, ten
// messages per second each for two seconds (so that even a badly lagging sender gets its first
// messages out), short limits. A case's own flags come after and win.
var hostileRunArgs = []string{"-c", "3", "-r", "10", "-d", "2s", "--reply-timeout", "500ms", "--handshake-timeout", "5s", "-q"}

// runWant is what `wsload run` must report against a mode.
type runWant struct {
	args   []string // flags after hostileRunArgs
	code   int
	reason string // the errors bucket every connection must land in, "" for none at all
	close  int    // the close code every established connection must end with, 0: none expected
	text   string // a fragment the text summary must hold
	check  func(t *testing.T, r *stats.Result)
}

// probeWant is what `wsload probe` must report against a mode.
type probeWant struct {
	args  []string // flags after --format json --timeout 2s
	code  int
	fault probe.Fault // "" for none
	check func(t *testing.T, rep *probe.Report)
}

// TestHostileServers runs `wsload run` and `wsload probe` against each misbehaving server
// mode and checks the exit code, the bucket the fault is counted in, that no figure is inflated,
// that the connection and message buckets add up exactly, and that nothing the server sent
// reaches the terminal raw. A nil run or probe means that command's answer to the mode is not
// pinned (http10 and non_minimal_length are not pinned either way yet).
func TestHostileServers(t *testing.T) {
	protocolFault := &runWant{reason: "invalid_frame", close: 1002}
	tests := []struct {
		mode  hostile.Mode
		run   *runWant
		probe *probeWant
	}{
		{hostile.Mode{Kind: hostile.Echo}, &runWant{check: func(t *testing.T, r *stats.Result) {
			if r.Messages.Received == 0 {
				t.Fatalf("received nothing from an echo server: %+v", r.Messages)
			}
		}}, &probeWant{check: func(t *testing.T, rep *probe.Report) {
			if rep.Exchange == nil || !rep.Exchange.Echo {
				t.Fatalf("exchange %+v, want an echo", rep.Exchange)
			}
		}}},
		// Fragmented echoes with a ping between the fragments are valid: nothing to count.
		{hostile.Mode{Kind: hostile.FragmentEcho, N: 5}, &runWant{check: func(t *testing.T, r *stats.Result) {
			if r.Messages.Received == 0 {
				t.Fatalf("received nothing from a fragmenting echo server: %+v", r.Messages)
			}
		}}, &probeWant{check: func(t *testing.T, rep *probe.Report) {
			if rep.Exchange == nil || !rep.Exchange.Echo {
				t.Fatalf("exchange %+v, want the fragments reassembled into an echo", rep.Exchange)
			}
		}}},
		// Slow but within the limits: the handshake shows the wait.
		{hostile.Mode{Kind: hostile.Slow101, Delay: 500 * time.Millisecond}, &runWant{check: func(t *testing.T, r *stats.Result) {
			if h := r.Latency.Handshake; h.Count != hostileConns || h.MinUS < 500_000 {
				t.Fatalf("handshake count %d min %d µs, want %d handshakes of at least the server's 500 ms", h.Count, h.MinUS, hostileConns)
			}
		}}, &probeWant{}},
		// The upgrade never completes.
		{hostile.Mode{Kind: hostile.Slow101, Delay: time.Minute},
			&runWant{args: []string{"--handshake-timeout", "500ms"}, code: exitRunFailed, reason: "timeout"},
			&probeWant{args: []string{"--timeout", "500ms"}, code: exitProbeHandshake, fault: probe.FaultNoUpgradeAnswer}},
		{hostile.Mode{Kind: hostile.SilentAccept},
			&runWant{args: []string{"--handshake-timeout", "500ms"}, code: exitRunFailed, reason: "timeout"},
			&probeWant{args: []string{"--timeout", "500ms"}, code: exitProbeHandshake, fault: probe.FaultNoUpgradeAnswer}},
		{hostile.Mode{Kind: hostile.NoAccept},
			&runWant{args: []string{"--handshake-timeout", "500ms"}, code: exitRunFailed, reason: "timeout"},
			&probeWant{args: []string{"--timeout", "500ms"}, code: exitProbeConnect, fault: probe.FaultConnectTimeout}},
		// The upgrade is refused or broken.
		{hostile.Mode{Kind: hostile.Status, Code: 200}, &runWant{code: exitRunFailed, reason: "http_200"}, &probeWant{code: exitProbeHTTP, fault: probe.FaultHTTPStatus}},
		{hostile.Mode{Kind: hostile.Status, Code: 400}, &runWant{code: exitRunFailed, reason: "http_400"}, &probeWant{code: exitProbeHTTP, fault: probe.FaultHTTPStatus}},
		{hostile.Mode{Kind: hostile.Status, Code: 403}, &runWant{code: exitRunFailed, reason: "http_403"}, &probeWant{code: exitProbeHTTP, fault: probe.FaultHTTPStatus}},
		{hostile.Mode{Kind: hostile.Status, Code: 426}, &runWant{code: exitRunFailed, reason: "http_426"}, &probeWant{code: exitProbeHTTP, fault: probe.FaultHTTPStatus}},
		{hostile.Mode{Kind: hostile.Status, Code: 502}, &runWant{code: exitRunFailed, reason: "http_502"}, &probeWant{code: exitProbeHTTP, fault: probe.FaultHTTPStatus}},
		{hostile.Mode{Kind: hostile.Garbage}, &runWant{code: exitRunFailed, reason: "bad_handshake"}, &probeWant{code: exitProbeHandshake, fault: probe.FaultNotHTTP}},
		{hostile.Mode{Kind: hostile.BadAccept}, &runWant{code: exitRunFailed, reason: "bad_handshake"}, &probeWant{code: exitProbeHandshake, fault: probe.FaultBadUpgrade}},
		// The connection drops.
		{hostile.Mode{Kind: hostile.HalfClose}, &runWant{reason: "closed_abnormally", close: 1006}, &probeWant{code: exitProbeClosed, fault: probe.FaultClosed}},
		{hostile.Mode{Kind: hostile.ResetAfter, N: 1}, &runWant{reason: "reset", close: 1006, check: func(t *testing.T, r *stats.Result) {
			if r.Messages.Received > hostileConns {
				t.Fatalf("received %d, but the server echoes only one message on each of %d connections", r.Messages.Received, hostileConns)
			}
		}}, nil},
		// A balancer's idle timeout: the probe holds the connection (--idle) past it.
		{hostile.Mode{Kind: hostile.CutAfter, Delay: time.Second}, &runWant{args: []string{"-d", "3s"}, reason: "closed_abnormally", close: 1006},
			&probeWant{args: []string{"--idle", "1m"}, code: exitProbeIdleCut, fault: probe.FaultIdleCut, check: cutAfter(1006)}},
		{hostile.Mode{Kind: hostile.CutAfter, Delay: time.Second, Code: 1001}, &runWant{args: []string{"-d", "3s"}, reason: "server_close_1001", close: 1001},
			&probeWant{args: []string{"--idle", "1m"}, code: exitProbeIdleCut, fault: probe.FaultIdleCut, check: cutAfter(1001)}},
		{hostile.Mode{Kind: hostile.ResetAfter}, nil, &probeWant{code: exitProbeClosed, fault: probe.FaultClosed}},
		// The server closes with a valid code, or a reason meant for the terminal.
		{hostile.Mode{Kind: hostile.EscapeReason}, &runWant{reason: "server_close_1000", close: 1000, text: `\x1b[2J\x1b[H\x0dErrors       none\x07`},
			&probeWant{code: exitProbeClosed, fault: probe.FaultClosed}},
		// Frames that break RFC 6455.
		{hostile.Mode{Kind: hostile.CloseWith, Code: 999}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.CloseWith, Code: 1005}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.CloseWith, Code: 1006}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.MaskedFrames}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.RSVBits}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.ReservedOpcode}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.OversizedPing}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.FragmentedPing}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.StrayContinuation}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.InterleavedData}, protocolFault, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.HugeLength}, &runWant{reason: "invalid_frame", close: 1009}, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.DeflateBomb}, &runWant{args: []string{"--compression"}, reason: "invalid_frame", close: 1009},
			&probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		// Text that is not UTF-8: RFC 6455 fails the connection with 1007.
		{hostile.Mode{Kind: hostile.InvalidUTF8Text}, &runWant{reason: "invalid_utf8", close: 1007}, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		{hostile.Mode{Kind: hostile.InvalidUTF8Reason}, &runWant{reason: "invalid_utf8", close: 1007}, &probeWant{code: exitProbeClosed, fault: probe.FaultProtocol}},
		// A server that stops reading: the unsent bytes are bounded and the connection is
		// closed as backpressure. 200 messages of 60 kB a second per connection fill the
		// socket buffers within the run however the sender lags (it catches up on schedule).
		{hostile.Mode{Kind: hostile.StopReading}, &runWant{args: []string{"-r", "200", "--size", "60000", "--max-write-buffer", "131072", "-d", "4s"}, reason: "backpressure", close: 1006},
			&probeWant{args: []string{"--timeout", "1s"}, code: exitProbeNoReply, fault: probe.FaultNoReply}},
		// Replies after the reply timeout are timeouts, and late; never round trips.
		{hostile.Mode{Kind: hostile.LateEcho, Delay: 1500 * time.Millisecond}, &runWant{check: func(t *testing.T, r *stats.Result) {
			m := r.Messages
			if m.Received != 0 || r.Latency.RTT.Count != 0 || m.Late == 0 || m.TimedOut != m.Sent {
				t.Fatalf("messages %+v, rtt count %d: want every message timed out, the echoes that came counted late, none received", m, r.Latency.RTT.Count)
			}
		}}, nil},
		{hostile.Mode{Kind: hostile.LateEcho, Delay: time.Minute}, nil, &probeWant{args: []string{"--timeout", "1s"}, code: exitProbeNoReply, fault: probe.FaultNoReply}},
		// Every echo twice: the second is a duplicate, beside received, never in it.
		{hostile.Mode{Kind: hostile.DuplicateEcho}, &runWant{check: func(t *testing.T, r *stats.Result) {
			m := r.Messages
			if m.Received == 0 || m.Duplicate == 0 || m.Duplicate > m.Received || m.Unmatched != 0 || r.Latency.RTT.Count != m.Received {
				t.Fatalf("messages %+v: want the second echoes counted as duplicates only", m)
			}
		}}, nil},
		// Echoes that are not what was sent: corrupt, never received.
		{hostile.Mode{Kind: hostile.GarbleEcho, N: 28}, &runWant{check: corruptEchoes}, nil}, // the bytes after run's ids
		{hostile.Mode{Kind: hostile.GarbleEcho}, nil, &probeWant{check: notAnEcho}},          // probe's message is 12 bytes
		{hostile.Mode{Kind: hostile.TruncateEcho, N: 28}, &runWant{check: corruptEchoes}, nil},
		{hostile.Mode{Kind: hostile.TruncateEcho, N: 4}, nil, &probeWant{check: notAnEcho}},
		{hostile.Mode{Kind: hostile.TextForBinary}, &runWant{args: []string{"--binary"}, check: corruptEchoes}, nil},
		// Unsolicited pushes: unmatched, beside received.
		{hostile.Mode{Kind: hostile.Push, Delay: 50 * time.Millisecond}, &runWant{check: func(t *testing.T, r *stats.Result) {
			m := r.Messages
			if m.Unmatched == 0 || m.Received > m.Sent {
				t.Fatalf("messages %+v: want the pushes unmatched and received at most sent", m)
			}
		}}, nil},
		// A server that ignores the offered subprotocol: the connections work, and the run says
		// the server chose none.
		{hostile.Mode{Kind: hostile.IgnoreSubprotocol}, &runWant{args: []string{"--subprotocol", "chat"}, reason: "subprotocol_ignored",
			text: "chose none of the offered subprotocols", check: func(t *testing.T, r *stats.Result) {
				if r.Messages.Received == 0 || r.Connections.Failed != 0 {
					t.Fatalf("messages %+v, connections %+v: the connections must still work", r.Messages, r.Connections)
				}
			}}, nil},
		// Every connection closed by the server: the run stops waiting for replies at once
		// (the reply timeout is an hour, the run 2 s: waiting it out could not pass for not
		// waiting on any machine) and says why it ended.
		{hostile.Mode{Kind: hostile.CloseWith, Code: 1009}, &runWant{args: []string{"--reply-timeout", "1h"}, reason: "server_close_1009", close: 1009,
			text: "all connections closed", check: func(t *testing.T, r *stats.Result) {
				if r.EndReason != stats.EndAllClosed || r.DurationS >= 600 {
					t.Fatalf("end reason %q after %.2fs: want all_connections_closed, without waiting out the hour-long reply timeout", r.EndReason, r.DurationS)
				}
			}}, nil},
		// A close the server never answers: counted, recorded as abnormal, the wait bounded.
		{hostile.Mode{Kind: hostile.CloseUnanswered}, &runWant{reason: "close_timeout", close: 1006},
			&probeWant{args: []string{"--timeout", "1s"}, check: func(t *testing.T, rep *probe.Report) {
				if rep.Close == nil || !strings.Contains(rep.Close.Error, "did not answer the close frame") {
					t.Fatalf("close %+v, want the unanswered close reported", rep.Close)
				}
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			// Most of a case is waiting (the run's duration, a timeout): two at a time (the
			// -parallel default on a 2-core machine) halves the test's length.
			t.Parallel()
			url := hostile.Start(t, tc.mode)
			if tc.run != nil {
				t.Run("run", func(t *testing.T) { hostileRun(t, url, tc.run) })
			}
			if tc.probe != nil {
				t.Run("probe", func(t *testing.T) { hostileProbe(t, url, tc.probe) })
			}
		})
	}
}

// cutAfter checks that the probe saw its idle hold cut with code.
func cutAfter(code int) func(t *testing.T, rep *probe.Report) {
	return func(t *testing.T, rep *probe.Report) {
		t.Helper()
		if i := rep.Idle; i == nil || !i.Cut || i.Code != code {
			t.Fatalf("idle %+v, want a cut with %d", rep.Idle, code)
		}
	}
}

// notAnEcho checks that the probe did not call a changed reply an echo.
func notAnEcho(t *testing.T, rep *probe.Report) {
	t.Helper()
	if rep.Exchange == nil || rep.Exchange.Received == nil || rep.Exchange.Echo {
		t.Fatalf("exchange %+v, want a reply that is not called an echo", rep.Exchange)
	}
}

// corruptEchoes checks that echoes that differ from what was sent were counted corrupt, never
// received, and that their messages ended timed out.
func corruptEchoes(t *testing.T, r *stats.Result) {
	t.Helper()
	m := r.Messages
	if m.Corrupt == 0 || m.Received != 0 || r.Latency.RTT.Count != 0 || m.TimedOut != m.Sent {
		t.Fatalf("messages %+v: want every echo corrupt, none received, every message timed out", m)
	}
}

func hostileRun(t *testing.T, url string, w *runWant) {
	out := filepath.Join(t.TempDir(), "r.json")
	args := append(append([]string{url, "-o", out}, hostileRunArgs...), w.args...)
	code, stdout, stderr := runCommand(runCmd, args...)
	rawFree(t, "stdout", stdout)
	rawFree(t, "stderr", stderr)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("result: %v\nstderr:\n%s", err, stderr)
	}
	var r stats.Result
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	// A server that drops connections as they open may keep fewer than -c open at once, and
	// then the run exits 1 (the asked load was never reached): whether it did is in the result.
	want := w.code
	if want == exitOK && r.Connections.PeakOpen < r.Connections.Requested {
		want = exitRunFailed
	}
	if code != want {
		t.Fatalf("wsload run %q: exit %d, want %d (peak open %d of %d)\nstdout:\n%s\nstderr:\n%s", args, code, want, r.Connections.PeakOpen, r.Connections.Requested, stdout, stderr)
	}
	notInflated(t, &r)
	c := r.Connections
	if w.reason == "" {
		if len(r.Errors) != 0 || c.Failed != 0 {
			t.Fatalf("errors %v, failed %d; want none", r.Errors, c.Failed)
		}
	} else {
		if len(r.Errors) != 1 || r.Errors[w.reason] != hostileConns {
			t.Fatalf("errors %v, want only %s: %d", r.Errors, w.reason, hostileConns)
		}
		if !strings.Contains(stdout, w.reason) {
			t.Fatalf("the summary does not name %s:\n%s", w.reason, stdout)
		}
	}
	if !strings.Contains(stdout, w.text) {
		t.Fatalf("the summary lacks %q:\n%s", w.text, stdout)
	}
	if w.close != 0 && (len(r.CloseCodes) != 1 || r.CloseCodes[w.close] != hostileConns) {
		t.Fatalf("close codes %v, want only %d: %d", r.CloseCodes, w.close, hostileConns)
	}
	if want == exitOK && c.Established != hostileConns {
		t.Fatalf("established %d of %d", c.Established, hostileConns)
	}
	if w.check != nil {
		w.check(t, &r)
	}
}

// notInflated checks that no figure claims more than happened: every count is within the one
// it is a part of.
func notInflated(t *testing.T, r *stats.Result) {
	t.Helper()
	c, m, l := r.Connections, r.Messages, r.Latency
	var byReason, closes int64
	for _, n := range c.FailedByReason {
		byReason += n
	}
	for _, n := range r.CloseCodes {
		closes += n
	}
	for _, f := range []struct {
		what        string
		part, whole int64
	}{
		{"attempted ≤ requested", c.Attempted, int64(r.Config.Connections)},
		{"established + failed ≤ attempted", c.Established + c.Failed, c.Attempted},
		{"failed by reason ≤ failed", byReason, c.Failed},
		{"failed ≤ failed by reason", c.Failed, byReason},
		{"closed ≤ established", c.Closed, c.Established},
		{"close codes ≤ established", closes, c.Established},
		{"peak open ≤ established", c.PeakOpen, c.Established},
		{"handshakes ≤ established", l.Handshake.Count, c.Established},
		{"received + timed out ≤ sent", m.Received + m.TimedOut, m.Sent},
		{"rtt samples ≤ received", l.RTT.Count, m.Received},
		{"uncorrected rtt samples ≤ received", l.RTTUncorrected.Count, m.Received},
	} {
		if f.part > f.whole {
			t.Fatalf("%s: %d > %d\nconnections %+v\nmessages %+v", f.what, f.part, f.whole, c, m)
		}
	}
	if m.ReceivedPerS > m.SentPerS {
		t.Fatalf("received %.2f/s > sent %.2f/s", m.ReceivedPerS, m.SentPerS)
	}
	// And the buckets add up exactly: every requested connection and every sent message is in
	// one of them.
	if c.Requested != int64(r.Config.Connections) || c.Attempted+c.NotStarted != c.Requested || c.Established+c.Failed != c.Attempted {
		t.Fatalf("connection buckets do not add up: %+v (asked %d)", c, r.Config.Connections)
	}
	if m.Received+m.TimedOut+m.InFlight != m.Sent {
		t.Fatalf("message buckets do not add up: sent %d != received %d + timed out %d + in flight %d", m.Sent, m.Received, m.TimedOut, m.InFlight)
	}
}

func hostileProbe(t *testing.T, url string, w *probeWant) {
	args := append([]string{url, "--format", "json", "--timeout", "2s"}, w.args...)
	code, stdout, stderr := runCommand(probeCmd, args...)
	if code != w.code {
		t.Fatalf("wsload probe %q: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, w.code, stdout, stderr)
	}
	rawFree(t, "stdout", stdout)
	rawFree(t, "stderr", stderr)
	var rep probe.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not a probe report: %v\n%s", err, stdout)
	}
	var fault probe.Fault
	if d := rep.Diagnosis(); d != nil {
		fault = d.Fault
	}
	if fault != w.fault || rep.OK != (w.fault == "") {
		t.Fatalf("fault %q (ok %v), want %q; diagnoses %+v", fault, rep.OK, w.fault, rep.Diagnoses)
	}
	if w.check != nil {
		w.check(t, &rep)
	}
}

// rawFree checks that output holds no control character but newlines and tabs: whatever a
// server sends must be escaped before it reaches a terminal.
func rawFree(t *testing.T, name, s string) {
	t.Helper()
	for i, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			t.Fatalf("%s holds control character %q at byte %d:\n%q", name, r, i, s)
		}
	}
}
