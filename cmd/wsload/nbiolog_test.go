package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNbioLogLines runs `wsload run` (this test binary as wsload, in its own process so that
// nbio's process-wide logger starts fresh) on the embedded target: without --verbose neither
// stdout nor stderr carries nbio's info lines and stdout is exactly the JSON result; with
// --verbose nbio's lines appear on stderr, never on stdout.
func TestNbioLogLines(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	for _, verbose := range []bool{false, true} {
		args := []string{"run", "-c", "2", "-r", "2", "-d", "1s", "-q", "--format", "json"}
		if verbose {
			args = append(args, "--verbose")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Env = append(os.Environ(), asWsloadEnv+"=1")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("wsload %s: %v\nstderr: %s", strings.Join(args, " "), err, errb.String())
		}
		if strings.Contains(out.String(), "[INF]") {
			t.Fatalf("verbose=%v: nbio log lines on stdout:\n%s", verbose, out.String())
		}
		var res map[string]any
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("verbose=%v: stdout is not one JSON result (%v):\n%s", verbose, err, out.String())
		}
		if got := strings.Contains(errb.String(), "[INF]"); got != verbose {
			t.Fatalf("verbose=%v: nbio info lines on stderr = %v, want %v:\n%s", verbose, got, verbose, errb.String())
		}
	}
}
