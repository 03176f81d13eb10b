package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/capacity"
	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

func startTarget(t *testing.T, cfg server.Config) string {
	t.Helper()
	return startTargetServer(t, cfg).URL()
}

func startTargetServer(t *testing.T, cfg server.Config) *server.Server {
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

func TestCapacityCmdUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--slo", "errors<1%", "-c", "10:20:10"}, "want one target URL"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:20:10"}, "--slo is required"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:20:10", "--slo", "rtt.p99<50ms,rt.p99<1s"}, "column 14"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:20:10", "--slo", "rtt.p99<50ms,rt.p99<1s"}, "\n               ^"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10", "--slo", "errors<1%"}, "nothing to search"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:5:1", "--slo", "errors<1%"}, "--connections: capacity: range \"10:5:1\": max 5 is below start 10"},
		{[]string{"ws://127.0.0.1:1/", "-c", "ten", "--rate", "1:2:1", "--slo", "errors<1%"}, `--connections "ten"`},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:20:10", "--rate", "100", "--slo", "errors<1%"}, "--per-conn-rate"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:20:10", "--slo", "errors<1%", "--backend-from", "cookie:x"}, "--backend-from"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:20:10", "--slo", "errors<1%", "--hold", "0s"}, "hold must be positive"},
		{[]string{"ws://127.0.0.1:1/", "-c", "10:20:10", "--slo", "errors<1%", "--format", "xml"}, "--format"},
	} {
		code, _, errOut := runCommand(capacityCmd, c.args...)
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Fatalf("capacity %q: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, exitUsage, c.want)
		}
	}
}

// TestCapacityCmdKnee searches a server capped at 30 connections. Each step starts once the
// server has let go of the step before (capacityStep), so the knee is exact however slowly a
// loaded machine processes closes; the --cooldown is still passed and parsed.
func TestCapacityCmdKnee(t *testing.T) {
	srv := startTargetServer(t, server.Config{MaxConns: 30, BackendID: "b1"})
	url := srv.URL()
	capacityStep = func(ctx context.Context, cfg engine.Config) (*stats.Result, error) {
		deadline := time.Now().Add(2 * time.Minute)
		for st := srv.Stats(); st.Conns != 0 || st.Closed != st.Upgrades; st = srv.Stats() {
			if time.Now().After(deadline) {
				t.Errorf("server still holds connections 2 minutes after a step: %+v", st)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		return capacity.RunEngine(ctx, cfg)
	}
	defer func() { capacityStep = capacity.RunEngine }()
	out := filepath.Join(t.TempDir(), "cap.json")
	code, stdout, stderr := runCommand(capacityCmd, url, "-c", "10:60:10", "--per-conn-rate", "2", "--slo", "errors<1%",
		// 4 s: a step's hold includes its ramp, and a connection still opening at its end
		// counts against errors<1% (as in capacity's TestSearchConnectionLimit).
		"--hold", "4s", "--cooldown", "200ms", "--refine", "1", "--backend-from", "header:X-Backend", "--handshake-timeout", "1m", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res, err := capacity.ReadFile(out)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	// Ladder 10, 20, 30, 40 (broken), then 35 (broken).
	if res.Knee == nil || res.Knee.Connections != 30 || res.FirstBad == nil || res.FirstBad.Connections != 35 || len(res.Steps) != 5 {
		t.Fatalf("knee %v first bad %v steps %d\n%s", res.Knee, res.FirstBad, len(res.Steps), stdout)
	}
	if res.Version != Version || res.Steps[0].Result.Backends["b1"].Connections.Established != 10 {
		t.Fatalf("version %q, first step backends %+v", res.Version, res.Steps[0].Result.Backends)
	}
	for _, want := range []string{"Knee         30 connections, 60 msg/s: the highest level that met the SLO", "BROKEN errors"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "step 4 (step) 40 connections, 80 msg/s: BROKEN errors<1%") {
		t.Fatalf("stderr lacks the step progress:\n%s", stderr)
	}
}

// TestCapacityCmdNoKnee: every step too slow, exit 4, and the file is still
// written. Latency only grows on a loaded machine, so the verdict cannot flip.
func TestCapacityCmdNoKnee(t *testing.T) {
	url := startTarget(t, server.Config{Delay: 20 * time.Millisecond})
	out := filepath.Join(t.TempDir(), "cap.json")
	code, stdout, _ := runCommand(capacityCmd, url, "-c", "5", "--rate", "50:200:x2", "--slo", "rtt.p99<10ms",
		"--hold", "1s", "-q", "-o", out)
	if code != exitSLO {
		t.Fatalf("exit %d, want %d\n%s", code, exitSLO, stdout)
	}
	if !strings.Contains(stdout, "Knee         none: even the first step broke the SLO") {
		t.Fatalf("stdout:\n%s", stdout)
	}
	if res, err := capacity.ReadFile(out); err != nil || res.Knee != nil || len(res.Steps) != 1 || res.Dimension != capacity.Rate {
		t.Fatalf("result %+v, %v", res, err)
	}
}

// TestRunSLO: wsload run --slo prints the verdicts, stores them and exits 4
// when one is broken, 0 when all hold.
func TestRunSLO(t *testing.T) {
	url := startTarget(t, server.Config{Delay: 20 * time.Millisecond, BackendID: "b1"})
	for _, c := range []struct {
		slo  string
		code int
		ok   []bool
	}{
		// Met by any machine, however loaded: a passing SLO without a loopback latency bound.
		{"rtt.p99<10ms,errors<1%", exitSLO, []bool{false, true}},
		{"rtt.p99<1h,errors<1%", exitOK, []bool{true, true}},
	} {
		out := filepath.Join(t.TempDir(), "r.json")
		code, stdout, stderr := runCommand(runCmd, url, "-c", "5", "-r", "10", "-d", "3s", "-q", "--slo", c.slo,
			"--backend-from", "header:X-Backend", "-o", out)
		if code != c.code {
			t.Fatalf("--slo %s: exit %d, want %d\n%s\n%s", c.slo, code, c.code, stdout, stderr)
		}
		res, err := stats.ReadResultFile(out)
		if err != nil {
			t.Fatalf("ReadResultFile: %v", err)
		}
		if len(res.SLO) != len(c.ok) {
			t.Fatalf("--slo %s: verdicts %+v", c.slo, res.SLO)
		}
		for i, v := range res.SLO {
			if v.OK != c.ok[i] {
				t.Fatalf("--slo %s: verdict %d = %+v, want ok %v", c.slo, i, v, c.ok[i])
			}
		}
		if res.Config.BackendFrom != "header:X-Backend" || res.Backends["b1"].Connections.Established != 5 {
			t.Fatalf("backend_from %q backends %+v", res.Config.BackendFrom, res.Backends)
		}
		for _, want := range []string{"\nSLO          ", "actual ", "Backends (by header:X-Backend)"} {
			if !strings.Contains(stdout, want) {
				t.Fatalf("summary lacks %q:\n%s", want, stdout)
			}
		}
	}
	code, _, stderr := runCommand(runCmd, url, "--slo", "rtt.p99<50")
	if code != exitUsage || !strings.Contains(stderr, "needs a unit") || !strings.Contains(stderr, "rtt.p99<50\n          ^") {
		t.Fatalf("bad --slo: exit %d, stderr %q", code, stderr)
	}
}
