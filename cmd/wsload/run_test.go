package main

import (
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

// TestRunExitsWhenTargetCountNeverReached: a target that holds at most 4
// WebSocket connections (503 beyond) against -c 10. The run must say that
// only 4 of the 10 were ever open at once, in the summary, the JSON and on
// stderr, and exit 1 so that CI notices; every requested connection is in
// one bucket.
func TestRunExitsWhenTargetCountNeverReached(t *testing.T) {
	url := startTarget(t, server.Config{MaxConns: 4})
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := runCommand(runCmd, url, "-c", "10", "-r", "0", "-d", "3s", "-q", "-o", out)
	if code != exitRunFailed {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, exitRunFailed, stdout, stderr)
	}
	res, err := stats.ReadResultFile(out)
	if err != nil {
		t.Fatalf("ReadResultFile: %v", err)
	}
	c := res.Connections
	if c.Requested != 10 || c.Attempted+c.NotStarted != 10 || c.Established+c.Failed != c.Attempted || c.PeakOpen > 4 {
		t.Fatalf("connections %+v errors %v", c, res.Errors)
	}
	if c.Established == 0 {
		return // a machine too busy to upgrade one connection in 3 s: exit 1 for that reason
	}
	want := "only " + strconv.FormatInt(c.PeakOpen, 10) + " of 10 connections were open at once"
	warned := false
	for _, w := range res.Generator.Warnings {
		warned = warned || strings.HasPrefix(w, want)
	}
	if !warned || !strings.Contains(stdout, want) || !strings.Contains(stderr, want) {
		t.Fatalf("no %q in the warnings %q, the summary or stderr:\n%s\n%s", want, res.Generator.Warnings, stdout, stderr)
	}
	if !strings.Contains(stdout, "requested 10, attempted ") {
		t.Fatalf("summary lacks the requested count:\n%s", stdout)
	}
}

// TestFinishShortOfTarget: the exit code of a run whose peak stayed below
// the asked connections: 1, unless it was interrupted (130); a scenario's
// peak is an estimate and does not decide the exit code.
func TestFinishShortOfTarget(t *testing.T) {
	for _, tc := range []struct {
		name        string
		peak        int64
		scenario    bool
		interrupted bool
		want        int
	}{
		{"all open", 10, false, false, exitOK},
		{"short", 6, false, false, exitRunFailed},
		{"short but interrupted", 6, false, true, exitInterrupted},
		{"scenario short", 6, true, false, exitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := &stats.Result{
				Config:      stats.Config{Connections: 10},
				Connections: stats.Connections{Requested: 10, Attempted: 10, Established: 10, PeakOpen: tc.peak},
			}
			if tc.scenario {
				res.Config.Scenario = &stats.Scenario{}
			}
			o := &runOptions{format: "json"}
			if got := finish(tc.interrupted, exitOK, o, res, nil, io.Discard, io.Discard); got != tc.want {
				t.Fatalf("exit %d, want %d", got, tc.want)
			}
		})
	}
}
