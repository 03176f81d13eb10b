package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/stats"
)

// writeTestResult writes a 2-second result of conns connections with RTTs
// around rttUS to dir/name and returns its path.
func writeTestResult(t *testing.T, dir, name, target string, seg stats.Segment, conns, rttUS int) string {
	t.Helper()
	t0 := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	rec := stats.NewRecorder(1)
	rec.SetStart(t0)
	agg := stats.NewAggregate(t0)
	for sec := 1; sec <= 2; sec++ {
		for c := range conns {
			s := rec.Shard(c)
			if sec == 1 {
				s.ConnAttempted()
				s.ConnEstablished(time.Duration(900+c) * time.Microsecond)
			}
			for i := range 20 {
				d := time.Duration(rttUS+i*rttUS/20) * time.Microsecond
				s.Sent(64, 0)
				s.Received(64)
				s.RTT(d, d)
			}
		}
		agg.Add(rec.Rotate(t0.Add(time.Duration(sec) * time.Second)))
	}
	r := agg.Result(stats.Header{Version: "test", Target: target, Start: t0, Duration: 2 * time.Second,
		Config:    stats.Config{Connections: conns, Rate: 20, Size: 64, Segment: seg},
		Generator: stats.Generator{CPUUserS: 0.1, GOMAXPROCS: 1}})
	path := filepath.Join(dir, name)
	if err := stats.WriteJSONFile(path, r); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return path
}

// runCommand runs a subcommand's function and returns its exit code, stdout
// and stderr.
func runCommand(fn func([]string, io.Writer, io.Writer) int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := fn(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestMergeCmd(t *testing.T) {
	dir := t.TempDir()
	const target = "ws://127.0.0.1:8080/"
	s1 := writeTestResult(t, dir, "s1.json", target, stats.Segment{Index: 1, Count: 2}, 3, 500)
	s2 := writeTestResult(t, dir, "s2.json", target, stats.Segment{Index: 2, Count: 2}, 3, 700)
	s2dup := writeTestResult(t, dir, "s2-again.json", target, stats.Segment{Index: 2, Count: 2}, 3, 700)
	other := writeTestResult(t, dir, "other.json", "ws://127.0.0.1:9090/", stats.Segment{Index: 2, Count: 2}, 3, 700)
	out := filepath.Join(dir, "all.json")
	notJSON := filepath.Join(dir, "notes.json")
	if err := os.WriteFile(notJSON, []byte("hello"), 0o644); err != nil {
		t.Fatalf("%v", err)
	}

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"segments", []string{s1, s2, "-o", out}, exitOK, "established 6", ""},
		{"json", []string{s2, s1, "--format", "json"}, exitOK, `"sources": [`, ""},
		{"overlap", []string{s1, s2, s2dup}, exitRunFailed, "", "refused: stats: merge: " + s2 + " and " + s2dup + " are both segment 2/2"},
		{"mixed targets", []string{s1, other}, exitRunFailed, "", "--allow-mixed-targets"},
		{"mixed targets allowed", []string{s1, other, "--allow-mixed-targets"}, exitOK, "ws://127.0.0.1:8080/, ws://127.0.0.1:9090/", ""},
		{"missing file", []string{s1, filepath.Join(dir, "nope.json")}, exitUsage, "", "nope.json"},
		{"not a result", []string{s1, notJSON}, exitUsage, "", "notes.json"},
		{"no files", nil, exitUsage, "", "no files given"},
		{"bad format", []string{s1, s2, "--format", "yaml"}, exitUsage, "", `got "yaml"`},
		{"hlog and json", []string{s1, "x.hlog"}, exitUsage, "", "mixes .hlog logs with JSON results"},
		{"unwritable", []string{s1, s2, "-o", filepath.Join(dir, "no", "dir", "all.json")}, exitOutput, "established 6", "all.json"},
		{"help", []string{"--help"}, exitOK, "", "wsload merge seg1.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(mergeCmd, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("wsload merge %s: exit %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
					strings.Join(tc.args, " "), code, tc.code, tc.stdout, stdout, tc.stderr, stderr)
			}
		})
	}

	merged, err := stats.ReadResultFile(out)
	if err != nil {
		t.Fatalf("reading the merged file: %v", err)
	}
	if merged.Connections.Established != 6 || merged.Latency.RTT.Count != 240 || len(merged.Sources) != 2 ||
		merged.Sources[0].Name != s1 || merged.Sources[1].Segment != "2/2" {
		t.Fatalf("merged: established %d, rtt count %d, sources %+v", merged.Connections.Established, merged.Latency.RTT.Count, merged.Sources)
	}
}

func TestMergeCmdHlog(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	var paths []string
	for p := range 2 {
		path := filepath.Join(dir, []string{"a.hlog", "b.hlog"}[p])
		w, err := stats.CreateHlog(path, t0)
		if err != nil {
			t.Fatalf("CreateHlog: %v", err)
		}
		for sec := range 3 {
			iv := stats.NewInterval(t0.Add(time.Duration(sec)*time.Second), t0.Add(time.Duration(sec+1)*time.Second))
			for i := range 100 {
				stats.Record(iv.RTT, time.Duration(100*(p+1)+i)*time.Microsecond)
			}
			_ = w.WriteInterval(iv)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		paths = append(paths, path)
	}
	out := filepath.Join(dir, "all.hlog")
	code, stdout, stderr := runCommand(mergeCmd, paths[0], paths[1], "-o", out)
	if code != exitOK || !strings.Contains(stdout, "merged 2 logs into "+out+": 3 intervals") {
		t.Fatalf("wsload merge a.hlog b.hlog: exit %d\n%s%s", code, stdout, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer f.Close()
	l, err := stats.ReadHlog(f)
	if err != nil || len(l.Intervals) != 3 {
		t.Fatalf("ReadHlog(all.hlog): %v, %+v", err, l)
	}
	for _, iv := range l.Intervals {
		h, _ := iv.Histogram()
		if iv.Tag != stats.HlogTagRTT || h.TotalCount() != 200 || h.Min() != 100 || h.Max() != 299 {
			t.Fatalf("merged interval %s: %d samples, %d..%d; want rtt, 200, 100..299", iv.Tag, h.TotalCount(), h.Min(), h.Max())
		}
	}
	if code, _, stderr := runCommand(mergeCmd, paths[0], "--format", "json"); code != exitUsage || !strings.Contains(stderr, "not .hlog") {
		t.Fatalf("--format with .hlog: exit %d, %s", code, stderr)
	}
	bad := filepath.Join(dir, "bad.hlog")
	_ = os.WriteFile(bad, []byte("1,2\n"), 0o644)
	if code, _, stderr := runCommand(mergeCmd, paths[0], bad); code != exitUsage || !strings.Contains(stderr, "bad.hlog") {
		t.Fatalf("a bad .hlog: exit %d, %s", code, stderr)
	}
}
