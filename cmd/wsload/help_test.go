package main

import (
	"strings"
	"testing"
)

// Help that was asked for is the command's output: stdout, exit 0, for every command and for
// wsload itself (`wsload run --help | less` must show it); a bad flag is a short error on
// stderr with a hint, exit 2, and no usage dump.
func TestHelpGoesToStdout(t *testing.T) {
	names := []string{}
	for n := range commands {
		names = append(names, n)
	}
	for _, n := range names {
		for _, args := range [][]string{{n, "--help"}, {n, "-h"}, {"help", n}} {
			code, out, errOut := dispatchCapture(args...)
			if code != exitOK || !strings.Contains(out, "Usage: wsload "+n) || errOut != "" {
				t.Fatalf("wsload %s: exit %d, stdout %q, stderr %q; want the usage on stdout, exit 0, nothing on stderr", strings.Join(args, " "), code, head(out), errOut)
			}
		}
		code, out, errOut := dispatchCapture(n, "--no-such-flag")
		if code != exitUsage || out != "" || !strings.Contains(errOut, "unknown flag: --no-such-flag") ||
			!strings.Contains(errOut, "hint: wsload "+n+" --help") || strings.Contains(errOut, "Usage:") {
			t.Fatalf("wsload %s --no-such-flag: exit %d, stdout %q, stderr %q", n, code, head(out), errOut)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := dispatchCapture(args...)
		if code != exitOK || !strings.Contains(out, "Usage: wsload COMMAND") || errOut != "" {
			t.Fatalf("wsload %s: exit %d, stdout %q, stderr %q", args, code, head(out), errOut)
		}
	}
	// No arguments at all is a usage error: the list goes to stderr.
	if code, out, errOut := dispatchCapture(); code != exitUsage || out != "" || !strings.Contains(errOut, "Usage: wsload COMMAND") {
		t.Fatalf("wsload: exit %d, stdout %q, stderr %q", code, head(out), head(errOut))
	}
}

func TestVersionSpellings(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, out, errOut := dispatchCapture(args...)
		if code != exitOK || out != "wsload "+Version+"\n" || errOut != "" {
			t.Fatalf("wsload %s: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if code, _, errOut := dispatchCapture("version", "extra"); code != exitUsage || !strings.Contains(errOut, "unexpected arguments extra") {
		t.Fatalf("wsload version extra: exit %d, stderr %q", code, errOut)
	}
}

// The examples in the help quote a token variable so that the shell expands it: single quotes
// would send the literal text $TOKEN.
func TestHelpExamplesExpandVariables(t *testing.T) {
	for n := range commands {
		_, out, _ := dispatchCapture(n, "--help")
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "'") && strings.Contains(line, "$") && strings.Contains(line, "wsload ") {
				for _, part := range strings.Split(line, "'")[1:] {
					if strings.Contains(part, "$") && !strings.Contains(part, "$(") {
						t.Fatalf("wsload %s --help: %q quotes a variable in single quotes", n, strings.TrimSpace(line))
					}
				}
			}
		}
	}
}

func dispatchCapture(args ...string) (code int, stdout, stderr string) {
	var out, errb strings.Builder
	code = dispatch(args, &out, &errb)
	return code, out.String(), errb.String()
}

func head(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
