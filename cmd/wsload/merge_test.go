package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
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
		{"help", []string{"--help"}, exitOK, "wsload merge seg1.json", ""},
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

// TestMergeCmdRefusesDuplicatesAndDisjoint: the same whole run given twice,
// and runs that never ran together, are refused with exit 2 and a hint
// naming the override; the override merges them.
func TestMergeCmdRefusesDuplicatesAndDisjoint(t *testing.T) {
	dir := t.TempDir()
	const target = "ws://127.0.0.1:8080/"
	whole := writeTestResult(t, dir, "whole.json", target, stats.Segment{}, 3, 500)
	again := filepath.Join(dir, "whole-copy.json")
	later := filepath.Join(dir, "later.json")
	r, err := stats.ReadResultFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	if err := stats.WriteJSONFile(again, r); err != nil {
		t.Fatal(err)
	}
	r.Start = r.Start.Add(time.Hour)
	if err := stats.WriteJSONFile(later, r); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"same run twice", []string{whole, again}, exitUsage, "", whole + " and " + again + " are the same run"},
		{"same run twice hint", []string{whole, again}, exitUsage, "", "--allow-duplicates merges it again, doubling its counts"},
		{"duplicates allowed", []string{whole, again, "--allow-duplicates"}, exitOK, "established 6", ""},
		{"disjoint", []string{whole, later}, exitUsage, "", "the runs never ran at the same time: " + whole + " ended at"},
		{"disjoint hint", []string{whole, later}, exitUsage, "", "--allow-disjoint adds them up anyway"},
		{"disjoint allowed", []string{whole, later, "--allow-disjoint"}, exitOK, "established 6", ""},
		{"help", []string{"--help"}, exitOK, "every count of it doubles", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(mergeCmd, tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("wsload merge %s: exit %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
					strings.Join(tc.args, " "), code, tc.code, tc.stdout, stdout, tc.stderr, stderr)
			}
		})
	}
}

// TestMergeCmdMaxInputSize: an input above --max-input-size is refused from
// its size, before it is read (the file here is sparse: reading it would
// find only zero bytes), for results and logs alike.
func TestMergeCmdMaxInputSize(t *testing.T) {
	dir := t.TempDir()
	s1 := writeTestResult(t, dir, "s1.json", "ws://127.0.0.1:8080/", stats.Segment{Index: 1, Count: 2}, 3, 500)
	fi, err := os.Stat(s1)
	if err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	bigLog := filepath.Join(dir, "big.hlog")
	for _, p := range []string{big, bigLog} {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(stats.DefaultMaxInput + 1); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	size := strconv.FormatInt(fi.Size(), 10)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"default limit", []string{s1, big}, exitUsage, big + " is 268435457 bytes: input larger than the limit of 268435456 bytes"},
		{"hint", []string{s1, big}, exitUsage, "raise --max-input-size"},
		{"log", []string{bigLog}, exitUsage, bigLog + " is 268435457 bytes"},
		{"lower limit", []string{s1, "--max-input-size", strconv.FormatInt(fi.Size()-1, 10)}, exitUsage, "input larger than the limit"},
		{"exact limit", []string{s1, "--max-input-size", size}, exitOK, ""},
		{"zero", []string{s1, "--max-input-size", "0"}, exitUsage, "--max-input-size must be more than 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(mergeCmd, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("wsload merge %s: exit %d, want %d\nstdout:\n%s\nstderr (want %q):\n%s", strings.Join(tc.args, " "), code, tc.code, stdout, tc.stderr, stderr)
			}
		})
	}
}
