package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wsload/wsload/server"
	"github.com/wsload/wsload/stats"
)

// TestReportCmdRealRun reports a result made by a short real run: 'wsload
// run' against its embedded echo server on loopback, 2 s, 4 connections.
func TestReportCmdRealRun(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "echo.json")
	if code, _, stderr := runCommand(runCmd, "-c", "4", "-r", "20", "-d", "2s", "-q", "-o", res); code != exitOK {
		t.Fatalf("wsload run: exit %d\n%s", code, stderr)
	}
	html := filepath.Join(dir, "report.html")
	hgrm := filepath.Join(dir, "rtt.hgrm")
	code, stdout, stderr := runCommand(reportCmd, res, "--html", html, "--hgrm", hgrm, "--text")
	if code != exitOK {
		t.Fatalf("wsload report: exit %d\n%s", code, stderr)
	}
	r, err := stats.ReadResultFile(res)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if r.Messages.Received == 0 || !strings.Contains(stdout, "rtt (corrected)") {
		t.Fatalf("the run received %d messages; --text printed:\n%s", r.Messages.Received, stdout)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatalf("reading the HTML report: %v", err)
	}
	for _, want := range []string{"<title>wsload report: " + r.Target, `id="latency-rtt"`, `id="timeline-rates"`, "<svg "} {
		if !strings.Contains(string(page), want) {
			t.Fatalf("HTML report lacks %q", want)
		}
	}
	dist, err := os.ReadFile(hgrm)
	if err != nil {
		t.Fatalf("reading the hgrm: %v", err)
	}
	lines := strings.Split(strings.TrimRight(string(dist), "\n"), "\n")
	last := lines[len(lines)-2] // before the Buckets line
	if !strings.HasPrefix(lines[0], "       Value     Percentile") || !strings.Contains(last, "Total count") ||
		!strings.HasSuffix(strings.TrimSpace(strings.TrimSuffix(last, "]")), " "+strconv.FormatInt(r.Latency.RTT.Count, 10)) {
		t.Fatalf("hgrm of %d RTT samples:\n%s", r.Latency.RTT.Count, dist)
	}
}

func TestReportCmd(t *testing.T) {
	dir := t.TempDir()
	const target = "ws://127.0.0.1:8080/"
	rr := writeTestResult(t, dir, "roundrobin.json", target, stats.Segment{}, 4, 1000)
	lc := writeTestResult(t, dir, "leastconn.json", target, stats.Segment{}, 4, 600)
	out := filepath.Join(dir, "out.html")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"text by default", []string{rr}, exitOK, []string{"wsload test -> ws://127.0.0.1:8080/", "rtt (corrected)"}, ""},
		{"text of two", []string{rr, lc, "--text"}, exitOK, []string{"== roundrobin (" + rr + ")", "== leastconn (" + lc + ")"}, ""},
		{"html to a file says where", []string{rr, "--html", out}, exitOK, nil, "wsload report: wrote " + out + " ("},
		{"html to stdout", []string{rr, lc, "--html", "-", "-l", "A=rr", "-l", "B=lc"}, exitOK, []string{"<title>wsload compare: 2 runs</title>", "rr (baseline)", "lc vs rr: better on"}, ""},
		{"title", []string{rr, "--html", "-", "--title", "HAProxy <leastconn>"}, exitOK, []string{"<title>HAProxy &lt;leastconn&gt;</title>"}, ""},
		{"hgrm to stdout", []string{rr, "--hgrm", "-", "--hgrm-of", "handshake"}, exitOK, []string{"1/(1-Percentile)", "Total count    =            4]"}, ""},
		{"no file", nil, exitUsage, nil, "no result file given"},
		{"bad histogram", []string{rr, "--hgrm", "-", "--hgrm-of", "p99"}, exitUsage, nil, `--hgrm-of "p99" is not a histogram`},
		{"hgrm of two", []string{rr, lc, "--hgrm", "x.hgrm"}, exitUsage, nil, "--hgrm writes one histogram, but 2 results"},
		{"both to stdout", []string{rr, "--hgrm", "-", "--html", "-"}, exitUsage, nil, "both write to stdout"},
		{"bad label", []string{rr, "-l", "C=x"}, exitUsage, nil, `"C" names none of the files`},
		{"missing file", []string{filepath.Join(dir, "nope.json")}, exitUsage, nil, "nope.json"},
		{"unwritable", []string{rr, "--html", filepath.Join(dir, "no", "such", "dir.html")}, exitOutput, nil, "check that the directory exists"},
		{"help", []string{"--help"}, exitOK, []string{"wsload report result.json --hgrm rtt.hgrm"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(reportCmd, tc.args...)
			ok := code == tc.code && strings.Contains(stderr, tc.stderr)
			for _, s := range tc.stdout {
				ok = ok && strings.Contains(stdout, s)
			}
			if !ok {
				t.Fatalf("wsload report %s: exit %d, want %d\nstdout (want %q):\n%.2000s\nstderr (want %q):\n%s",
					strings.Join(tc.args, " "), code, tc.code, tc.stdout, stdout, tc.stderr, stderr)
			}
		})
	}
	if page, err := os.ReadFile(out); err != nil || !strings.Contains(string(page), `id="latency-rtt"`) {
		t.Fatalf("--html %s: %v", out, err)
	}
}

// TestReportCmdCapacity reports a real capacity search (a target capped at 30
// connections): given alone or with --capacity beside a run, the page shows
// the curve with the knee marked.
func TestReportCmdCapacity(t *testing.T) {
	dir := t.TempDir()
	url := startTarget(t, server.Config{MaxConns: 30})
	capFile := filepath.Join(dir, "cap.json")
	if code, stdout, stderr := runCommand(capacityCmd, url, "-c", "10:50:20", "--per-conn-rate", "2", "--slo", "errors<1%",
		"--hold", "1s", "--cooldown", "200ms", "--refine", "1", "-q", "-o", capFile); code != exitOK {
		t.Fatalf("wsload capacity: exit %d\n%s\n%s", code, stdout, stderr)
	}
	run := filepath.Join(dir, "run.json")
	if code, _, stderr := runCommand(runCmd, url, "-c", "4", "-r", "5", "-d", "1s", "-q", "-o", run); code != exitOK {
		t.Fatalf("wsload run: exit %d\n%s", code, stderr)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		title string
	}{
		{"alone", []string{capFile}, "wsload capacity: "},
		{"flag beside a run", []string{run, "--capacity", capFile}, "wsload report: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			html := filepath.Join(dir, tc.name+".html")
			code, stdout, stderr := runCommand(reportCmd, append(tc.args, "--html", html, "--text")...)
			if code != exitOK {
				t.Fatalf("wsload report: exit %d\n%s", code, stderr)
			}
			if !strings.Contains(stdout, "capacity") {
				t.Fatalf("--text did not print the capacity summary:\n%s", stdout)
			}
			page, err := os.ReadFile(html)
			if err != nil {
				t.Fatalf("%v", err)
			}
			for _, want := range []string{"<title>" + tc.title, `id="capacity-p99"`, "Capacity (knee): <strong>", ">knee "} {
				if !strings.Contains(string(page), want) {
					t.Fatalf("HTML lacks %q", want)
				}
			}
		})
	}
	if code, _, stderr := runCommand(reportCmd, capFile, capFile+"x"); code != exitUsage || !strings.Contains(stderr, "no such file") {
		t.Fatalf("a missing second file: exit %d, %s", code, stderr)
	}
}
