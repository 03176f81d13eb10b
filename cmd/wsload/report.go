package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/capacity"
	"github.com/wsload/wsload/internal/atomicfile"
	"github.com/wsload/wsload/report"
	"github.com/wsload/wsload/stats"
)

const reportExamples = `Examples:
  # A self-contained HTML report of one run (opens offline; mail it or attach it to a review).
  wsload report result.json --html report.html

  # Compare two balancer configurations on one page, one colour per run.
  wsload report roundrobin.json leastconn.json --html compare.html --label A=roundrobin --label B=leastconn

  # The RTT percentile distribution for the HdrHistogram plotter (or any .hgrm tool).
  wsload report result.json --hgrm rtt.hgrm
  wsload report result.json --hgrm handshake.hgrm --hgrm-of handshake

  # The text summary again (the default when no output is chosen).
  wsload report result.json --text

  # A capacity search: the curve with its knee, then the knee step's full report.
  wsload capacity ws://127.0.0.1:8080/ --connections 1000:20000:1000 --slo 'rtt.p99<50ms' -o cap.json
  wsload report cap.json --html cap.html            # or: --capacity cap.json --html cap.html
`

func reportCmd(args []string, stdout, stderr io.Writer) int {
	var (
		htmlOut, hgrmOut, hgrmOf, title, capFile string
		labelFlags                               []string
		text                                     bool
	)
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	fs.StringVar(&htmlOut, "html", "", "write a self-contained HTML report to FILE (- for stdout); several results make a compare page")
	fs.StringVar(&hgrmOut, "hgrm", "", "write one histogram as HdrHistogram percentile distribution text (.hgrm, values in ms) to FILE (- for stdout); one result only")
	fs.StringVar(&hgrmOf, "hgrm-of", "rtt", "histogram for --hgrm: "+strings.Join(report.HistogramNames, ", "))
	fs.BoolVar(&text, "text", false, "print the text summary of each result (the default when neither --html nor --hgrm is given)")
	fs.StringArrayVarP(&labelFlags, "label", "l", nil, "name a run in the HTML: KEY=LABEL, KEY being a file as given, its base name, or A, B, … by position; or a bare LABEL for the next file (repeatable)")
	fs.StringVar(&title, "title", "", "the HTML page's heading (default: the target, or the number of runs compared)")
	fs.StringVar(&capFile, "capacity", "", "add the capacity curve of FILE (written by 'wsload capacity -o FILE') to the HTML; a capacity file among the inputs is taken as this")
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload report RESULT.json [MORE.json...] [flags]\n\nReports JSON results written by 'wsload run -o FILE' or 'wsload merge -o FILE': an HTML page\nwith the verdict, headline figures, latency percentile distributions (HdrHistogram's log\nscale), the timeline, reconnects and recovery, steps, backends, close codes, errors and\nconfiguration; the .hgrm percentile distribution of one histogram; or the text summary.\nA capacity search ('wsload capacity -o FILE') adds its curve and knee; given alone, the\nknee step is the run reported below the curve.\n\n%s\nFlags:\n%s", reportExamples, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	var files []string
	for _, f := range fs.Args() {
		if !isCapacityFile(f) {
			files = append(files, f)
			continue
		}
		if capFile != "" && capFile != f {
			fmt.Fprintf(stderr, "wsload report: %s and %s are both capacity searches; one page shows one curve: report them one at a time\n", capFile, f)
			return exitUsage
		}
		capFile = f
	}
	var capRes *capacity.Result
	if capFile != "" {
		var err error
		if capRes, err = capacity.ReadFile(capFile); err != nil {
			fmt.Fprintf(stderr, "wsload report: --capacity %s: %v\n  hint: give the JSON file written by 'wsload capacity -o FILE'\n", capFile, err)
			return exitUsage
		}
	}
	if len(files) == 0 && capRes == nil {
		fmt.Fprintf(stderr, "wsload report: no result file given; try: wsload report result.json --html report.html\n")
		return exitUsage
	}
	if !slices.Contains(report.HistogramNames, hgrmOf) {
		fmt.Fprintf(stderr, "wsload report: --hgrm-of %q is not a histogram of a result; use one of %s\n", hgrmOf, strings.Join(report.HistogramNames, ", "))
		return exitUsage
	}
	if hgrmOut != "" && len(files) > 1 {
		fmt.Fprintf(stderr, "wsload report: --hgrm writes one histogram, but %d results were given; run it once per file (or 'wsload merge' them first)\n", len(files))
		return exitUsage
	}
	if htmlOut == "-" && hgrmOut == "-" {
		fmt.Fprintf(stderr, "wsload report: --html - and --hgrm - would both write to stdout; send one of them to a file\n")
		return exitUsage
	}
	if htmlOut == "" && hgrmOut == "" {
		text = true
	}
	labels, err := compareLabels(files, labelFlags)
	if err != nil {
		fmt.Fprintf(stderr, "wsload report: %v\n", err)
		return exitUsage
	}
	runs := make([]report.Run, len(files))
	for i, f := range files {
		if runs[i], err = report.Load(f, labels[i]); err != nil {
			fmt.Fprintf(stderr, "wsload report: %v\n  hint: give the JSON files written by 'wsload run -o FILE' or 'wsload merge -o FILE'\n", err)
			return exitUsage
		}
	}
	var opt report.Options
	if capRes != nil {
		c := report.CapacityOf(capRes)
		opt.Capacity = &c
		if len(runs) == 0 {
			run, ok := report.CapacityRun(capRes)
			if !ok {
				fmt.Fprintf(stderr, "wsload report: %s: no step of the capacity search has a result to report\n  hint: give a run's result beside it: wsload report %s result.json --html cap.html\n", capFile, capFile)
				return exitUsage
			}
			runs = append(runs, run)
			if title == "" {
				title = "wsload capacity: " + capRes.Target
			}
		}
	}
	opt.Title = title

	if text && capRes != nil {
		if err := capRes.WriteText(stdout); err != nil {
			fmt.Fprintf(stderr, "wsload report: %v\n", err)
			return exitOutput
		}
	}
	if text && len(files) > 0 {
		for i, r := range runs {
			if len(runs) > 1 {
				if i > 0 {
					fmt.Fprintln(stdout)
				}
				fmt.Fprintf(stdout, "== %s (%s)\n", r.Label, files[i])
			}
			if err := stats.WriteText(stdout, r.Result); err != nil {
				fmt.Fprintf(stderr, "wsload report: %v\n", err)
				return exitOutput
			}
		}
	}
	if hgrmOut != "" {
		h, err := report.HistogramOf(runs[0].Result, hgrmOf)
		if err != nil {
			fmt.Fprintf(stderr, "wsload report: %s: %v\n", files[0], err)
			return exitUsage
		}
		var b bytes.Buffer
		if err := report.WriteHgrm(&b, h); err != nil {
			fmt.Fprintf(stderr, "wsload report: %v\n", err)
			return exitOutput
		}
		if code := writeReportOutput("--hgrm", hgrmOut, b.Bytes(), stdout, stderr); code != exitOK {
			return code
		}
	}
	if htmlOut != "" {
		var b bytes.Buffer
		if err := report.WriteHTML(&b, runs, opt); err != nil {
			fmt.Fprintf(stderr, "wsload report: %v\n", err)
			return exitOutput
		}
		if code := writeReportOutput("--html", htmlOut, b.Bytes(), stdout, stderr); code != exitOK {
			return code
		}
	}
	return exitOK
}

// writeReportOutput writes data to stdout for "-", else atomically to path,
// so a browser or plotter never reads half a file.
func writeReportOutput(flag, path string, data []byte, stdout, stderr io.Writer) int {
	if path == "-" {
		if _, err := stdout.Write(data); err != nil {
			fmt.Fprintf(stderr, "wsload report: %s: %v\n", flag, err)
			return exitOutput
		}
		return exitOK
	}
	if err := atomicfile.WriteFile(path, data); err != nil {
		fmt.Fprintf(stderr, "wsload report: %s: %v\n  hint: check that the directory exists and is writable\n", flag, err)
		return exitOutput
	}
	// Say where the page went: a silent success leaves a newcomer looking for it.
	fmt.Fprintf(stderr, "wsload report: wrote %s (%d bytes)\n", path, len(data)) // stderr: stdout may carry --hgrm -
	return exitOK
}

// plural is "1 worker process", "3 worker processes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// isCapacityFile reports whether path holds a capacity search
// (capacity.Schema) rather than a run's result; unreadable or undecodable
// files are left to the result reader, which says what is wrong.
func isCapacityFile(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var probe struct {
		Schema string `json:"schema"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Schema == capacity.Schema
}
