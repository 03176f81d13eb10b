package main

import (
	"bytes"
	"io"
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
		{"help", []string{"--help"}, exitOK, []string{"Usage: wsload check", "Examples:"}, nil},
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
			if c.code == exitOK && errb.Len() > 0 {
				t.Fatalf("stderr on success: %s", errb.String())
			}
			if strings.Contains(c.name, "quiet") && out.Len() > 0 {
				t.Fatalf("-q printed:\n%s", out.String())
			}
		})
	}
}

// TestOutsideFiles: a scenario whose payload lies outside its directory is
// refused by check and run (file:line:col, a hint naming the flag, exit 2,
// nothing dialed) unless --allow-outside-files; check lists the files a
// scenario reads and says whether any lies outside.
func TestOutsideFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "scen")
	for path, data := range map[string]string{
		filepath.Join(root, "secret.txt"): "SECRET",
		filepath.Join(dir, "hello.txt"):   "hello",
		filepath.Join(dir, "out.yaml"):    "target: ws://127.0.0.1:1/\nphases: [{connections: 1, duration: 1s}]\nflows:\n  - name: f\n    steps:\n      - send: {file: ../secret.txt}\n",
		filepath.Join(dir, "in.yaml"):     "target: ws://127.0.0.1:1/\nphases: [{connections: 1, duration: 1s}]\nflows:\n  - name: f\n    steps:\n      - send: {file: hello.txt}\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, in := filepath.Join(dir, "out.yaml"), filepath.Join(dir, "in.yaml")
	for _, tc := range []struct {
		name   string
		fn     func([]string, io.Writer, io.Writer) int
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"check refuses", checkCmd, []string{out}, exitUsage, "", out + `:6:22: send.file "../secret.txt" is outside the scenario's directory ` + dir},
		{"check hint", checkCmd, []string{out}, exitUsage, "", "add --allow-outside-files"},
		{"check allowed", checkCmd, []string{out, "--allow-outside-files"}, exitOK, "(send.file, 6 bytes)  out.yaml:6:22  OUTSIDE the scenario's directory", ""},
		{"check allowed summary", checkCmd, []string{out, "--allow-outside-files"}, exitOK, "1 of 1 files outside " + dir, ""},
		{"check inside", checkCmd, []string{in}, exitOK, "every file inside " + dir, ""},
		{"run refuses", runCmd, []string{out, "-q"}, exitUsage, "", "1 problem(s); nothing was sent"},
		{"run hint", runCmd, []string{out, "-q"}, exitUsage, "", "add --allow-outside-files"},
		{"run allowed names the file", runCmd, []string{out, "-q", "--allow-outside-files", "-c", "1", "-d", "1s"}, exitRunFailed, "", "reads " + filepath.Join(root, "secret.txt") + " (send.file), outside its directory (--allow-outside-files)"},
		{"run help", runCmd, []string{"--help"}, exitOK, "--allow-outside-files", ""},
		{"echo run", runCmd, []string{"ws://127.0.0.1:1/", "--allow-outside-files"}, exitUsage, "", "--allow-outside-files goes with a scenario file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(tc.fn, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("%s: exit %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s", strings.Join(tc.args, " "), code, tc.code, tc.stdout, stdout, tc.stderr, stderr)
			}
			if strings.Contains(stdout+stderr, "SECRET") {
				t.Fatalf("the secret file's content was printed")
			}
		})
	}
}
