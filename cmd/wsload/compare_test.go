package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsload/wsload/stats"
)

func TestCompareCmd(t *testing.T) {
	dir := t.TempDir()
	const target = "ws://127.0.0.1:8080/"
	rr := writeTestResult(t, dir, "roundrobin.json", target, stats.Segment{}, 4, 1000)
	lc := writeTestResult(t, dir, "leastconn.json", target, stats.Segment{}, 4, 600)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"default labels", []string{rr, lc}, exitOK, []string{"roundrobin  leastconn", "leastconn vs roundrobin: better on", "rtt p99 40% lower"}, ""},
		{"keyed labels", []string{rr, lc, "--label", "A=rr", "--label", "leastconn=lc"}, exitOK, []string{"lc vs rr:"}, ""},
		{"bare labels", []string{rr, lc, "-l", "one", "-l", "two"}, exitOK, []string{"two vs one:"}, ""},
		{"markdown", []string{rr, lc, "--format", "markdown"}, exitOK, []string{"| figure | roundrobin | leastconn | Δ | Δ% | better |\n| --- |"}, ""},
		{"json", []string{rr, lc, "--format", "json"}, exitOK, []string{`"labels": [`}, ""},
		{"one file", []string{rr}, exitUsage, nil, "want two or more result files, got 1"},
		{"unknown label key", []string{rr, lc, "--label", "C=x"}, exitUsage, nil, `"C" names none of the files`},
		{"too many labels", []string{rr, lc, "-l", "a", "-l", "b", "-l", "c"}, exitUsage, nil, "more labels than files"},
		{"labelled twice", []string{rr, lc, "-l", "A=x", "-l", "roundrobin=y"}, exitUsage, nil, "already labelled"},
		{"bad format", []string{rr, lc, "--format", "html"}, exitUsage, nil, `got "html"`},
		{"missing file", []string{rr, filepath.Join(dir, "nope.json")}, exitUsage, nil, "nope.json"},
		{"help", []string{"-h"}, exitOK, []string{"--label A=roundrobin"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCommand(compareCmd, tc.args...)
			ok := code == tc.code && strings.Contains(stderr, tc.stderr)
			for _, s := range tc.stdout {
				ok = ok && strings.Contains(stdout, s)
			}
			if !ok {
				t.Fatalf("wsload compare %s: exit %d, want %d\nstdout (want %q):\n%s\nstderr (want %q):\n%s",
					strings.Join(tc.args, " "), code, tc.code, tc.stdout, stdout, tc.stderr, stderr)
			}
		})
	}
	_, stdout, _ := runCommand(compareCmd, rr, lc, "--format", "json")
	var cmp struct {
		Labels []string
		Rows   []struct {
			Name   string
			Values []*float64
			Best   []int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &cmp); err != nil || len(cmp.Rows) == 0 {
		t.Fatalf("json output: %v\n%s", err, stdout)
	}
	for _, r := range cmp.Rows {
		if r.Name == "rtt p99" && (len(r.Best) != 1 || r.Best[0] != 1) {
			t.Fatalf("rtt p99 row %+v: want leastconn (1) best", r)
		}
	}
}

func TestCompareLabels(t *testing.T) {
	for _, tc := range []struct {
		files, flags []string
		want         string
	}{
		{[]string{"a/r.json", "b/l.json"}, nil, "r,l"},
		{[]string{"a/r.json", "b/r.json"}, nil, "a/r.json,b/r.json"}, // same base name: the paths
		{[]string{"a/r.json", "b/r.json"}, []string{"b/r.json=second"}, "a/r.json,second"},
		{[]string{"x.json", "y.json", "z.json"}, []string{"B=why", "first", "third"}, "first,why,third"},
		{[]string{"x.json", "y.json"}, []string{"y=Y=1"}, "x,Y=1"},
	} {
		got, err := compareLabels(tc.files, tc.flags)
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Fatalf("compareLabels(%q, %q) = %q, %v; want %s", tc.files, tc.flags, got, err, tc.want)
		}
	}
}
