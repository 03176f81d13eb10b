package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

func TestIsScenarioArg(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plan")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for arg, want := range map[string]bool{
		"chat.yaml": true, "a/b.YML": true, "x.json": true, plain: true,
		"ws://127.0.0.1:8080/": false, "ws://h/x.yaml": false, "": false, filepath.Join(dir, "missing"): false, dir: false,
	} {
		if got := isScenarioArg(arg); got != want {
			t.Fatalf("isScenarioArg(%q) = %v, want %v", arg, got, want)
		}
	}
}

func TestRunScenario(t *testing.T) {
	srv, err := server.Start(server.Config{Addr: "127.0.0.1:0", Pollers: 1})
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	defer srv.Shutdown(context.Background())
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("target: ws://127.0.0.1:1/\nphases: [{connections: 1, duration: 1s}]\nflows:\n  - name: f\n    steps:\n      - expect: {timout: 5s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notarget := filepath.Join(dir, "notarget.yaml")
	if err := os.WriteFile(notarget, []byte("flows: [{name: f, steps: [{send: x}]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "r.json")
	echo := "../../scripts/scenarios/echo.yaml"
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"text", []string{echo, "--target", srv.URL(), "-c", "5", "-d", "1500ms", "-q"}, exitOK,
			[]string{"step echo.rtt (corrected)", "step echo.rtt uncorrected", "established 5"}, nil},
		{"json", []string{echo, "--target", srv.URL(), "-c", "3", "-d", "3s", "-q", "--format", "json", "-o", out}, exitOK,
			[]string{`"steps": {`, `"echo.rtt": {`}, nil},
		{"invalid file", []string{bad, "-q"}, exitUsage, nil,
			[]string{bad + `:6:18: unknown key "timout" in expect`, "1 problem(s); nothing was sent"}},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, exitUsage, nil, []string{"no such file", "hint:"}},
		{"echo-only flag", []string{echo, "-r", "5"}, exitUsage, nil, []string{"--rate does not apply to a scenario", "repeat.rate"}},
		{"no target", []string{notarget, "-q"}, exitUsage, nil, []string{"has no target", "--target"}},
		{"target without scenario", []string{"--target", srv.URL()}, exitUsage, nil, []string{"--target goes with a scenario file"}},
		{"bad target", []string{echo, "--target", "http://127.0.0.1:1/"}, exitUsage, nil, []string{"ws:// or wss://"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := dispatch(append([]string{"run"}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Fatalf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Fatalf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
	// The file written with -o carries the step's histograms.
	r, err := stats.ReadResultFile(out)
	if err != nil {
		t.Fatalf("read %s: %v", out, err)
	}
	s, ok := r.Latency.Steps["echo.rtt"]
	if !ok || s.Corrected.Count == 0 || s.Corrected.Count != s.Uncorrected.Count || s.Corrected.HDR == "" || r.Config.Connections != 3 {
		b, _ := json.Marshal(r.Latency.Steps)
		t.Fatalf("steps %s, config %+v", b, r.Config)
	}
}
