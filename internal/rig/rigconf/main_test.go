package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tmpl := filepath.Join("..", "..", "..", "scripts", "rig")
	out := filepath.Join(t.TempDir(), "haproxy.cfg")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   string // substring of stdout
		stderr   string // substring of stderr
		fileWant string // substring of the -o file
	}{
		{"stdout", []string{"--templates", tmpl, "--backends", "b1=127.0.0.1:9001", "--balance", "leastconn"}, 0, "balance leastconn", "", ""},
		{"nginx to file", []string{"--lb", "nginx", "--templates", tmpl, "--dir", "/tmp/r", "--backends", "b1=127.0.0.1:9001", "-o", out}, 0, "", "", "server 127.0.0.1:9001"},
		{"no backends", []string{"--templates", tmpl}, 2, "", `--backends ""`, ""},
		{"bad balance", []string{"--templates", tmpl, "--backends", "b1=127.0.0.1:9001", "--balance", "random"}, 2, "", `unknown balance "random"`, ""},
		{"public listen", []string{"--templates", tmpl, "--backends", "b1=127.0.0.1:9001", "--listen", "0.0.0.0:80"}, 2, "", "not a loopback address", ""},
		{"missing templates", []string{"--templates", t.TempDir(), "--backends", "b1=127.0.0.1:9001"}, 2, "", "template", ""},
		{"stray argument", []string{"haproxy"}, 2, "", "unexpected arguments", ""},
		{"unwritable output", []string{"--templates", tmpl, "--backends", "b1=127.0.0.1:9001", "-o", filepath.Join(t.TempDir(), "no", "such", "dir")}, 1, "", "--output", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("run(%q) = %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
			if tc.fileWant != "" {
				b, err := os.ReadFile(out)
				if err != nil || !strings.Contains(string(b), tc.fileWant) {
					t.Fatalf("output file: %v, want it to contain %q:\n%s", err, tc.fileWant, b)
				}
			}
		})
	}
}
