package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/internal/nbiolog"
	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/partition"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// asWsloadEnv makes the test binary behave as the wsload command, so that
// `--procs` runs started from a test (which exec os.Executable()) get real
// workers, and a target can run in its own process.
const asWsloadEnv = "WSLOAD_TEST_AS_WSLOAD"

func TestMain(m *testing.M) {
	if os.Getenv(asWsloadEnv) == "1" {
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	nbiolog.Quiet() // nbio's errors only, on stderr
	os.Exit(m.Run())
}

func TestParseStartAt(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{"", time.Time{}, ""},
		{"2025-06-01T12:00:30Z", now.Add(30 * time.Second), ""},
		{"2025-06-01T14:00:30+02:00", now.Add(30 * time.Second), ""},
		{"2025-06-01T12:00:00.5Z", now.Add(500 * time.Millisecond), ""},
		{strconv.FormatInt(now.Unix()+60, 10), now.Add(time.Minute), ""},
		{fmt.Sprintf("%d.25", now.Unix()+1), now.Add(1250 * time.Millisecond), ""},
		{"2025-06-01T11:59:59.5Z", now.Add(-500 * time.Millisecond), ""}, // within a second: clock skew
		{"2025-06-01T11:59:00Z", time.Time{}, "in the past"},
		{strconv.FormatInt(now.Unix()-3600, 10), time.Time{}, "1h0m0s in the past"},
		{"tomorrow", time.Time{}, "want RFC 3339"},
		{"-5", time.Time{}, "want RFC 3339"},
		{"NaN", time.Time{}, "want RFC 3339"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseStartAt(tc.in, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.in) {
					t.Fatalf("parseStartAt(%q) = %v, %v; want an error naming the input and %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) {
				t.Fatalf("parseStartAt(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseProcs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		auto bool
		bad  bool
	}{
		{"", 1, false, false}, {"4", 4, false, false}, {"auto", 0, true, false},
		{"0", 0, false, true}, {"-2", 0, false, true}, {"257", 0, false, true}, {"many", 0, false, true},
	} {
		n, auto, err := parseProcs(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (n != tc.n || auto != tc.auto)) {
			t.Fatalf("parseProcs(%q) = %d, %v, %v", tc.in, n, auto, err)
		}
	}
}

// Segments, and workers within a segment, take shares of an echo run or a scenario that add up
// to the whole load, with connection numbers that tile the whole run exactly once, for every n:
// the one partition (package partition) does both.
func TestSegmentAndWorkerShares(t *testing.T) {
	for _, plan := range []*scenario.Plan{nil, {}} {
		for _, total := range []int{1, 9, 13, 1000, 100003} {
			for n := 1; n <= 9 && n <= total; n++ {
				seen := make([]bool, total)
				conns, rate := 0, 0.0
				for i := 1; i <= n; i++ {
					cfg := engine.Config{Connections: total, ConnectRate: 1000, Plan: plan}
					if err := applySegment(&cfg, stats.Segment{Index: i, Count: n}); err != nil {
						t.Fatalf("segment %d/%d of %d: %v", i, n, total, err)
					}
					if cfg.TotalConnections != total || (n > 1 && cfg.Partition != partition.Partition{Slot: i - 1, Slots: n}) {
						t.Fatalf("segment %d/%d of %d: partition %v of %d", i, n, total, cfg.Partition, cfg.TotalConnections)
					}
					// Three workers inside the segment tile it the same way.
					wconns, wrate := 0, 0.0
					for w := 1; w <= 3; w++ {
						wc := cfg
						applyWorker(&wc, []string{"ws://a/"}, w, 3)
						if wc.TotalConnections != total || wc.Partition.Count() != 3*n {
							t.Fatalf("worker %d/3 of segment %d/%d: partition %v of %d", w, i, n, wc.Partition, wc.TotalConnections)
						}
						for j := range wc.Connections {
							id := wc.Partition.ID(j)
							if id >= int64(total) || seen[id] {
								t.Fatalf("worker %d/3 of segment %d/%d owns connection %d twice or beyond %d", w, i, n, id, total)
							}
							seen[id] = true
						}
						wconns += wc.Connections
						wrate += wc.ConnectRate
					}
					if wconns != cfg.Connections || !near(wrate, cfg.ConnectRate) {
						t.Fatalf("workers of segment %d/%d hold %d at %v/s, want %d at %v/s", i, n, wconns, wrate, cfg.Connections, cfg.ConnectRate)
					}
					conns += cfg.Connections
					rate += cfg.ConnectRate
				}
				if conns != total || !near(rate, 1000) || slices.Contains(seen, false) {
					t.Fatalf("%d segments of %d connections at 1000/s add up to %d at %v/s (every number owned: %v)", n, total, conns, rate, !slices.Contains(seen, false))
				}
			}
		}
	}
	cfg := engine.Config{Connections: 2}
	if err := applySegment(&cfg, stats.Segment{Index: 3, Count: 3}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("segment 3/3 of 2 connections: %v, want an error", err)
	}
	// A scenario's empty segment is refused with the numbers.
	cfg = engine.Config{Connections: 2, Plan: &scenario.Plan{}}
	if err := applySegment(&cfg, stats.Segment{Index: 3, Count: 3}); err == nil || !strings.Contains(err.Error(), "peak of 2 connections leaves segment 3 empty") {
		t.Fatalf("applySegment of an empty scenario segment: %v", err)
	}
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

func TestRunSpreadUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"procs zero", []string{"ws://127.0.0.1:1/", "--procs", "0"}, exitUsage, `--procs "0"`},
		{"procs without URL", []string{"--procs", "2"}, exitUsage, "needs a target URL"},
		{"two URLs without procs", []string{"ws://127.0.0.1:1/", "ws://127.0.0.1:2/"}, exitUsage, "several targets need --procs"},
		{"procs not a multiple of targets", []string{"ws://127.0.0.1:1/", "ws://127.0.0.1:2/", "--procs", "3"}, exitUsage, "multiple of 2"},
		{"more procs than connections", []string{"ws://127.0.0.1:1/", "--procs", "4", "-c", "3"}, exitUsage, "more than the 3 connections"},
		{"bad segment", []string{"ws://127.0.0.1:1/", "--segment", "3/2"}, exitUsage, `--segment "3/2"`},
		{"empty segment", []string{"ws://127.0.0.1:1/", "--segment", "3/3", "-c", "2"}, exitUsage, "empty"},
		{"start in the past", []string{"ws://127.0.0.1:1/", "--start-at", "2001-01-01T00:00:00Z"}, exitUsage, "in the past"},
		{"procs over the ports", []string{"ws://127.0.0.1:1/", "--procs", "2", "-c", "200000"}, exitLimits, "ephemeral ports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runCmd(tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("wsload run %q: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errb.String(), tc.code, tc.want)
			}
		})
	}
}

// startServe runs `wsload serve` (this test binary as wsload) in its own
// process and returns its URL.
func startServe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(exe, "serve", "--addr", addr, "--pollers", "1")
	cmd.Env = append(os.Environ(), asWsloadEnv+"=1")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.Stdout = &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start wsload serve: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(2 * time.Minute) // a -race binary starting on a loaded machine
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return "ws://" + addr + "/"
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsload serve did not listen on %s: %s", addr, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// patientLead gives --procs workers 10 s to start before their common start (startLead, 1 s
// in production): on a loaded machine three -race test binaries may take seconds to start,
// and a worker past the start refuses to run.
func patientLead(t *testing.T) {
	old := startLead
	startLead = 10 * time.Second
	t.Cleanup(func() { startLead = old })
}

func TestRunProcsMergesWorkers(t *testing.T) {
	patientLead(t)
	url := startServe(t)
	t.Setenv(asWsloadEnv, "1")
	dir := t.TempDir()
	out := filepath.Join(dir, "all.json")
	hlog := filepath.Join(dir, "all.hlog")
	var stdout, stderr bytes.Buffer
	code := runCmd([]string{url, "--procs", "3", "-c", "30", "-r", "10", "-d", "5s", "-o", out, "--hlog", hlog, "--format", "json"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	res, err := stats.ReadResultFile(out)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if res.Connections.Established != 30 || res.Connections.PeakOpen != 30 || res.Messages.Sent == 0 || res.Messages.Received != res.Messages.Sent {
		t.Fatalf("merged result: %+v %+v", res.Connections, res.Messages)
	}
	if res.Latency.RTT.Count != res.Messages.Received {
		t.Fatalf("rtt count %d, received %d: histograms were not merged", res.Latency.RTT.Count, res.Messages.Received)
	}
	if res.Connections.RampS <= 0 || res.Config.Connections != 30 {
		t.Fatalf("ramp %v, config connections %d", res.Connections.RampS, res.Config.Connections)
	}
	// The config block is the one a single process records for the same flags: resolved,
	// defaults filled in (a --procs result used to say "pollers": 0).
	single, err := engine.Config{URL: url, Connections: 30, Rate: 10, Duration: 5 * time.Second}.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	want := single.Stats()
	want.Headers, want.SourceIPs, want.Subprotocols = res.Config.Headers, res.Config.SourceIPs, res.Config.Subprotocols // {} and [] after the JSON round trip
	if !reflect.DeepEqual(res.Config, want) {
		t.Fatalf("--procs config block\n%+v\nwant, as one process records it,\n%+v", res.Config, want)
	}
	if !containsStr(res.Generator.Warnings, "3 worker processes") || res.Generator.CPUUserS+res.Generator.CPUSysS <= 0 || res.Generator.MaxRSSBytes <= 0 {
		t.Fatalf("generator: %+v", res.Generator)
	}
	// One merged line per second on stderr, not one per worker: no more progress lines or
	// timeline points than the run lasted in whole seconds (as it measured itself, however
	// long a loaded machine made it) plus one for a partial second at each end; three
	// workers' lines appended would be about three times that.
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "[") {
			lines++
		}
	}
	most := int(math.Ceil(res.DurationS)) + 2
	if lines < 2 || lines > most {
		t.Fatalf("%d progress lines for a %.1f s run over 3 workers, want 2..%d:\n%s", lines, res.DurationS, most, stderr.String())
	}
	if len(res.Timeline) < 2 || len(res.Timeline) > most {
		t.Fatalf("%d timeline points for a %.1f s run, want 2..%d", len(res.Timeline), res.DurationS, most)
	}
	var sum int64
	for _, p := range res.Timeline {
		sum += p.Sent
	}
	if sum != res.Messages.Sent {
		t.Fatalf("timeline sent adds up to %d, total %d", sum, res.Messages.Sent)
	}
	if st, err := os.Stat(hlog); err != nil || st.Size() == 0 {
		t.Fatalf("--hlog file: %v", err)
	}
	if !strings.Contains(stdout.String(), `"established": 30`) {
		t.Fatalf("stdout is not the JSON result:\n%s", stdout.String())
	}
}

// Two segments run side by side (as on two machines) with one --start-at
// merge into the whole load.
func TestRunSegmentsMerge(t *testing.T) {
	url := startServe(t)
	dir := t.TempDir()
	// 5 s ahead: both segments must reach their wait before it, even on a loaded machine.
	at := time.Now().Add(5 * time.Second).Truncate(time.Millisecond)
	startAt := strconv.FormatFloat(float64(at.UnixNano())/1e9, 'f', 3, 64)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	errs := make([]bytes.Buffer, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			codes[i] = runCmd([]string{url, "-c", "21", "-r", "5", "-d", "2s", "-q", "--pollers", "1",
				"--segment", fmt.Sprintf("%d/2", i+1), "--start-at", startAt,
				"-o", filepath.Join(dir, fmt.Sprintf("seg-%d.json", i+1))}, &out, &errs[i])
		}()
	}
	wg.Wait()
	var parts []*stats.Result
	for i := range 2 {
		if codes[i] != exitOK {
			t.Fatalf("segment %d/2: exit %d\n%s", i+1, codes[i], errs[i].String())
		}
		r, err := stats.ReadResultFile(filepath.Join(dir, fmt.Sprintf("seg-%d.json", i+1)))
		if err != nil {
			t.Fatalf("%v", err)
		}
		if r.Config.Segment != (stats.Segment{Index: i + 1, Count: 2}) {
			t.Fatalf("segment %d/2 recorded as %+v", i+1, r.Config.Segment)
		}
		if !strings.Contains(errs[i].String(), "waiting until") {
			t.Fatalf("segment %d/2 did not say it waits for --start-at: %s", i+1, errs[i].String())
		}
		parts = append(parts, r)
	}
	if parts[0].Connections.Established != 11 || parts[1].Connections.Established != 10 {
		t.Fatalf("segments established %d and %d, want 11 and 10", parts[0].Connections.Established, parts[1].Connections.Established)
	}
	// Both started at --start-at, not when the command was typed: the result's start is no
	// earlier than it (an order, not a guess at how long the run took).
	for i, r := range parts {
		if r.Start.Before(at.Add(-time.Millisecond)) { // a millisecond for the float's precision
			t.Fatalf("segment %d/2 started at %v, before --start-at %v: the wait for --start-at was counted", i+1, r.Start, at)
		}
	}
	all, err := stats.Merge(parts...)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if all.Connections.Established != 21 || all.Config.Connections != 21 || all.Messages.Sent != parts[0].Messages.Sent+parts[1].Messages.Sent {
		t.Fatalf("merged segments: %+v, config connections %d", all.Connections, all.Config.Connections)
	}
}

func containsStr(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Ctrl-C while a run waits for its --start-at ends it at once with exit 130 (interrupted), for a
// single process and for a --procs parent, without dialing anything.
func TestInterruptDuringStartAt(t *testing.T) {
	url := startServe(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	for _, extra := range [][]string{nil, {"--procs", "2"}} {
		t.Run(fmt.Sprint("procs=", len(extra) > 0), func(t *testing.T) {
			startAt := strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10)
			args := append([]string{"run", url, "-c", "2", "-d", "1s", "-q", "--start-at", startAt}, extra...)
			cmd := exec.Command(exe, args...)
			cmd.Env = append(os.Environ(), asWsloadEnv+"=1")
			var errb testenv.SyncBuffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatalf("start: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			deadline := time.Now().Add(2 * time.Minute)
			for !strings.Contains(errb.String(), "waiting until") {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatalf("wsload run never said it was waiting: %s", errb.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatalf("wsload run did not stop within 2 minutes of Ctrl-C: %s", errb.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Fatalf("exit %d after Ctrl-C during --start-at, want %d (interrupted); stderr:\n%s", code, exitInterrupted, errb.String())
			}
		})
	}
}
