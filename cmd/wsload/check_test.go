package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckCmd(t *testing.T) {
	t.Setenv("API_KEY", "k") // login.yaml reads it
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("target: ws://127.0.0.1:1/\nflows:\n  - name: f\n    steps:\n      - expect: {timout: 5s}\n      - sleep: 5\n"), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	nophases := filepath.Join(dir, "nophases.yaml")
	if err := os.WriteFile(nophases, []byte("flows: [{name: f, steps: [{repeat: {rate: 2, steps: [{send: x}]}}]}]\n"), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"valid", []string{"../../scripts/scenarios/echo.yaml"}, exitOK,
			[]string{"target        ws://127.0.0.1:8080/", "ramp up 0 → 1000 connections", "[echo.rtt]  echo.yaml:33:15", "expected peak connections  1000", "expected message rate      10000 msg/s sent", "valid: ../../scripts/scenarios/echo.yaml"}, nil},
		{"overrides", []string{"../../scripts/scenarios/echo.yaml", "--target", "ws://127.0.0.1:9/x", "-c", "50", "-d", "15s"}, exitOK,
			[]string{"target        ws://127.0.0.1:9/x", "phases (15s in all)", "hold 50 connections", "expected message rate      500 msg/s sent"}, nil},
		{"invalid", []string{bad}, exitUsage, nil,
			[]string{bad + `:5:18: unknown key "timout" in expect (hint: did you mean ` + "`timeout`?)", bad + `:6:16: sleep: bad duration "5" (hint: give a unit, e.g. 5s or 5ms)`, "2 problem(s)"}},
		{"no phases uses -c and -d", []string{nophases, "-c", "3", "-d", "1m", "--target", "ws://127.0.0.1:1/"}, exitOK,
			[]string{"hold 3 connections", "phases (1m0s in all)", "expected message rate      6.0 msg/s sent"}, nil},
		{"no target", []string{nophases}, exitUsage, nil, []string{"has no target", "--target"}},
		{"several files, one bad", []string{"-q", "../../scripts/scenarios/chat.yaml", bad, "../../scripts/scenarios/login.yaml"}, exitUsage, nil, []string{"bad.yaml:5:18"}},
		{"quiet valid", []string{"-q", "../../scripts/scenarios/subscribe.yaml"}, exitOK, nil, nil},
		{"missing file", []string{filepath.Join(dir, "nope.yaml")}, exitUsage, nil, []string{"no such file", "hint:"}},
		{"no args", nil, exitUsage, nil, []string{"no scenario file given"}},
		{"bad flag", []string{"--bogus", "x.yaml"}, exitUsage, nil, []string{"unknown flag: --bogus"}},
		{"help", []string{"--help"}, exitOK, nil, []string{"Usage: wsload check", "Examples:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(append([]string{"check"}, c.args...), &out, &errb)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out.String(), errb.String())
			}
			for _, w := range c.stdout {
				if !strings.Contains(out.String(), w) {
					t.Fatalf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.stderr {
				if !strings.Contains(errb.String(), w) {
					t.Fatalf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if c.code == exitOK && errb.Len() > 0 && c.name != "help" {
				t.Fatalf("stderr on success: %s", errb.String())
			}
			if strings.Contains(c.name, "quiet") && out.Len() > 0 {
				t.Fatalf("-q printed:\n%s", out.String())
			}
		})
	}
}
