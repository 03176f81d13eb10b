package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/internal/atomicfile"
	"github.com/wsload/wsload/stats"
)

// defaultMaxMergeInput is --max-input-size's default.
const defaultMaxMergeInput = stats.DefaultMaxInput

const mergeExamples = `Examples:
  # Four processes each generated a quarter of the load (wsload run --segment 1/4 … 4/4).
  wsload merge seg1.json seg2.json seg3.json seg4.json -o all.json

  # Print the merged result as JSON instead of the summary.
  wsload merge a.json b.json --format json > all.json

  # Two balancer addresses that took one load together.
  wsload merge lb1.json lb2.json --allow-mixed-targets -o all.json

  # The per-second HdrHistogram logs of the same runs (wsload run --hlog): exact per-second percentiles.
  wsload merge seg1.hlog seg2.hlog seg3.hlog seg4.hlog -o all.hlog
`

func mergeCmd(args []string, stdout, stderr io.Writer) int {
	var (
		out        string
		format     string
		allowMixed bool
		allowDup   bool
		allowDisj  bool
		maxInput   int64
	)
	fs := pflag.NewFlagSet("merge", pflag.ContinueOnError)
	fs.StringVarP(&out, "out", "o", "", "write the merged result (or log) to FILE, atomically")
	fs.StringVar(&format, "format", "text", "what to print on stdout for results: text (the summary) or json")
	fs.BoolVar(&allowMixed, "allow-mixed-targets", false, "merge results of different target URLs (one load spread over several addresses)")
	fs.BoolVar(&allowDup, "allow-duplicates", false, "merge a run given twice (same start, host, PID, segment, target and duration) anyway: its counts are added again, so every count of it doubles")
	fs.BoolVar(&allowDisj, "allow-disjoint", false, "merge runs that were never all running at the same time anyway: the result adds them up as if they had run at once, a load nobody generated")
	fs.Int64Var(&maxInput, "max-input-size", defaultMaxMergeInput, "refuse an input file larger than this many bytes (default 256 MiB), checked before it is read")
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload merge FILE... [flags]\n\nMerges the JSON results of runs that made one load together (segments of it, or\nwhole runs from several processes or machines) into one result, exactly: latency\nhistograms are added, counters summed, timelines aligned on wall-clock seconds.\nRefuses overlapping segments, different schemas and, unless allowed, different\ntargets, the same run given twice (it would double every count) and runs that\nwere never all running at once (the sum would be a load nobody generated):\nthose two exit 2, and --allow-duplicates, --allow-disjoint override them.\nInputs above --max-input-size are refused before they are read. Given .hlog\nfiles instead, merges the interval logs.\n\n%s\nFlags:\n%s", mergeExamples, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	files := fs.Args()
	if len(files) == 0 {
		fmt.Fprintf(stderr, "wsload merge: no files given; try: wsload merge seg1.json seg2.json -o all.json\n")
		return exitUsage
	}
	if maxInput <= 0 {
		fmt.Fprintf(stderr, "wsload merge: --max-input-size must be more than 0 bytes, got %d\n", maxInput)
		return exitUsage
	}
	if format != "text" && format != "json" {
		fmt.Fprintf(stderr, "wsload merge: --format must be text or json, got %q\n", format)
		return exitUsage
	}
	hlogs := 0
	for _, f := range files {
		if strings.EqualFold(filepath.Ext(f), ".hlog") {
			hlogs++
		}
	}
	switch {
	case hlogs == len(files):
		if fs.Changed("format") || allowMixed || allowDup || allowDisj {
			fmt.Fprintf(stderr, "wsload merge: --format, --allow-mixed-targets, --allow-duplicates and --allow-disjoint apply to JSON results, not .hlog logs\n")
			return exitUsage
		}
		return mergeHlogFiles(files, out, maxInput, stdout, stderr)
	case hlogs > 0:
		fmt.Fprintf(stderr, "wsload merge: %s mixes .hlog logs with JSON results; merge each kind on its own\n", strings.Join(files, " "))
		return exitUsage
	}

	results := make([]*stats.Result, len(files))
	for i, f := range files {
		r, err := stats.ReadResultFileMax(f, maxInput)
		if err != nil {
			fmt.Fprintf(stderr, "wsload merge: %v\n", err)
			if errors.Is(err, stats.ErrTooLarge) {
				fmt.Fprintf(stderr, "  hint: a result is a few MB; if this one is real, raise --max-input-size\n")
			} else {
				fmt.Fprintf(stderr, "  hint: give the JSON files written by 'wsload run -o FILE'\n")
			}
			return exitUsage
		}
		results[i] = r
	}
	merged, err := stats.MergeOptions{AllowMixedTargets: allowMixed, AllowDuplicates: allowDup, AllowDisjoint: allowDisj, Names: files}.Merge(results...)
	if err != nil {
		fmt.Fprintf(stderr, "wsload merge: refused: %v\n", err)
		switch {
		case errors.Is(err, stats.ErrMixedTargets):
			fmt.Fprintf(stderr, "  hint: if these runs made one load through several addresses, add --allow-mixed-targets\n")
		case errors.Is(err, stats.ErrDuplicate):
			fmt.Fprintf(stderr, "  hint: give each run once; --allow-duplicates merges it again, doubling its counts\n")
			return exitUsage
		case errors.Is(err, stats.ErrDisjoint):
			fmt.Fprintf(stderr, "  hint: merge runs that made one load together (started with --start-at); --allow-disjoint adds them up anyway\n")
			return exitUsage
		}
		return exitRunFailed
	}
	code := exitOK
	if out != "" {
		if err := stats.WriteJSONFile(out, merged); err != nil {
			fmt.Fprintf(stderr, "wsload merge: %v\n", err)
			code = exitOutput
		}
	}
	if format == "json" {
		err = stats.EncodeResult(stdout, merged)
	} else {
		err = stats.WriteText(stdout, merged)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsload merge: %v\n", err)
		return exitOutput
	}
	return code
}

// mergeHlogFiles merges interval logs into out, or stdout without one.
func mergeHlogFiles(files []string, out string, maxInput int64, stdout, stderr io.Writer) int {
	logs := make([]*stats.Hlog, len(files))
	for i, name := range files {
		f, r, err := stats.OpenInputMax(name, maxInput)
		if err != nil {
			fmt.Fprintf(stderr, "wsload merge: %v\n", err)
			if errors.Is(err, stats.ErrTooLarge) {
				fmt.Fprintf(stderr, "  hint: if this log is real, raise --max-input-size\n")
			}
			return exitUsage
		}
		logs[i], err = stats.ReadHlog(r)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "wsload merge: %v (in %s)\n  hint: give the .hlog files written by 'wsload run --hlog FILE'\n", err, name)
			return exitUsage
		}
	}
	merged, clamped := stats.MergeHlogs(logs...)
	if clamped > 0 {
		fmt.Fprintf(stderr, "wsload merge: %d samples lay above wsload's 1 hour range and were recorded at it (logs of another tool, in ns?)\n", clamped)
	}
	var b bytes.Buffer
	if err := stats.WriteHlog(&b, merged); err != nil {
		fmt.Fprintf(stderr, "wsload merge: %v\n", err)
		return exitOutput
	}
	if out == "" {
		if _, err := stdout.Write(b.Bytes()); err != nil {
			fmt.Fprintf(stderr, "wsload merge: writing: %v\n", err)
			return exitOutput
		}
		return exitOK
	}
	if err := atomicfile.WriteFile(out, b.Bytes()); err != nil {
		fmt.Fprintf(stderr, "wsload merge: %v\n", err)
		return exitOutput
	}
	fmt.Fprintf(stdout, "merged %d logs into %s: %d intervals\n", len(files), out, len(merged.Intervals))
	return exitOK
}
