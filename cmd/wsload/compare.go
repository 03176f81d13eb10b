package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/stats"
)

const compareExamples = `Examples:
  # Two balancer configurations, labelled by file name (roundrobin, leastconn).
  wsload compare roundrobin.json leastconn.json

  # Explicit labels, by file name or by position (A is the first file, B the second).
  wsload compare r1.json r2.json --label A=roundrobin --label B=leastconn

  # Direct vs through HAProxy vs through nginx, as a Markdown table for a review.
  wsload compare direct.json haproxy.json nginx.json --format markdown > compare.md
`

func compareCmd(args []string, stdout, stderr io.Writer) int {
	var (
		labelFlags []string
		format     string
	)
	fs := pflag.NewFlagSet("compare", pflag.ContinueOnError)
	fs.StringArrayVarP(&labelFlags, "label", "l", nil, "name a run: KEY=LABEL, KEY being a file as given, its base name, or A, B, … by position; or a bare LABEL for the next file in order (repeatable)")
	fs.StringVar(&format, "format", "text", "output: text, json or markdown")
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload compare FILE FILE... [flags]\n\nLines up the headline figures of two or more JSON results side by side: connections,\nrates, timeouts, errors, RTT and handshake percentiles, send lag and the generator's\nCPU per message, with each run's difference from the first and which run is better.\nDifferences within 2%% (and the histogram's precision) on latency, 1%% on rates and\n2%% on CPU are shown as ≈.\n\n%s\nFlags:\n%s", compareExamples, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	files := fs.Args()
	if len(files) < 2 {
		fmt.Fprintf(stderr, "wsload compare: want two or more result files, got %d; try: wsload compare a.json b.json\n", len(files))
		return exitUsage
	}
	switch format {
	case "text", "json", "markdown":
	default:
		fmt.Fprintf(stderr, "wsload compare: --format must be text, json or markdown, got %q\n", format)
		return exitUsage
	}
	labels, err := compareLabels(files, labelFlags)
	if err != nil {
		fmt.Fprintf(stderr, "wsload compare: %v\n", err)
		return exitUsage
	}
	results := make([]*stats.Result, len(files))
	for i, f := range files {
		if results[i], err = stats.ReadResultFile(f); err != nil {
			fmt.Fprintf(stderr, "wsload compare: %v\n  hint: give the JSON files written by 'wsload run -o FILE' or 'wsload merge -o FILE'\n", err)
			return exitUsage
		}
	}
	cmp := stats.Compare(labels, results)
	switch format {
	case "json":
		b, merr := json.MarshalIndent(cmp, "", "  ")
		if merr == nil {
			_, err = stdout.Write(append(b, '\n'))
		} else {
			err = merr
		}
	case "markdown":
		err = cmp.WriteMarkdown(stdout)
	default:
		err = cmp.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsload compare: %v\n", err)
		return exitOutput
	}
	return exitOK
}

// compareLabels resolves --label flags against files. Runs without a label
// are named after their file: the base name without .json, or the path as
// given when two files share a base name.
func compareLabels(files, flags []string) ([]string, error) {
	labels := make([]string, len(files))
	next := 0 // the next file a bare label names
	for _, fl := range flags {
		key, label, keyed := strings.Cut(fl, "=")
		if !keyed {
			key, label = "", fl
		}
		if strings.TrimSpace(label) == "" {
			return nil, fmt.Errorf("--label %q: the label is empty; want KEY=LABEL or LABEL", fl)
		}
		i := -1
		if keyed {
			i = labelTarget(files, key)
			if i < 0 {
				return nil, fmt.Errorf("--label %q: %q names none of the files; give a file as typed, its base name, or A, B, … by position", fl, key)
			}
		} else {
			for next < len(files) && labels[next] != "" {
				next++
			}
			if next == len(files) {
				return nil, fmt.Errorf("--label %q: more labels than files (%d)", fl, len(files))
			}
			i = next
		}
		if labels[i] != "" {
			return nil, fmt.Errorf("--label %q: %s is already labelled %q", fl, files[i], labels[i])
		}
		labels[i] = label
	}
	base := func(f string) string { return strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)) }
	for i, f := range files {
		if labels[i] != "" {
			continue
		}
		labels[i] = base(f)
		if slices.ContainsFunc(files, func(g string) bool { return g != f && base(g) == base(f) }) {
			labels[i] = f
		}
	}
	return labels, nil
}

// labelTarget finds the file a --label key names: the file as typed, its
// base name with or without extension, or its position as a letter.
func labelTarget(files []string, key string) int {
	for _, match := range []func(string) bool{
		func(f string) bool { return f == key },
		func(f string) bool { return filepath.Base(f) == key },
		func(f string) bool { return strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)) == key },
	} {
		if i := slices.IndexFunc(files, match); i >= 0 {
			return i
		}
	}
	if len(key) == 1 && key[0] >= 'A' && key[0] <= 'Z' && int(key[0]-'A') < len(files) {
		return int(key[0] - 'A')
	}
	return -1
}
