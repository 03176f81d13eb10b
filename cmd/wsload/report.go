package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"

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
`

func reportCmd(args []string, stdout, stderr io.Writer) int {
	var (
		htmlOut, hgrmOut, hgrmOf, title string
		labelFlags                      []string
		text                            bool
	)
	fs := pflag.NewFlagSet("report", pflag.ContinueOnError)
	fs.StringVar(&htmlOut, "html", "", "write a self-contained HTML report to FILE (- for stdout); several results make a compare page")
	fs.StringVar(&hgrmOut, "hgrm", "", "write one histogram as HdrHistogram percentile distribution text (.hgrm, values in ms) to FILE (- for stdout); one result only")
	fs.StringVar(&hgrmOf, "hgrm-of", "rtt", "histogram for --hgrm: "+strings.Join(report.HistogramNames, ", "))
	fs.BoolVar(&text, "text", false, "print the text summary of each result (the default when neither --html nor --hgrm is given)")
	fs.StringArrayVarP(&labelFlags, "label", "l", nil, "name a run in the HTML: KEY=LABEL, KEY being a file as given, its base name, or A, B, … by position; or a bare LABEL for the next file (repeatable)")
	fs.StringVar(&title, "title", "", "the HTML page's heading (default: the target, or the number of runs compared)")
	fs.SortFlags = false
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wsload report RESULT.json [MORE.json...] [flags]\n\nReports JSON results written by 'wsload run -o FILE' or 'wsload merge -o FILE': an HTML page\nwith the verdict, headline figures, latency percentile distributions (HdrHistogram's log\nscale), the timeline, steps, backends, close codes, errors and configuration; the .hgrm\npercentile distribution of one histogram; or the text summary.\n\n%s\nFlags:\n%s", reportExamples, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	files := fs.Args()
	if len(files) == 0 {
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

	if text {
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
		if err := report.WriteHTML(&b, runs, report.Options{Title: title}); err != nil {
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
	if err := writeFileAtomic(path, data); err != nil {
		fmt.Fprintf(stderr, "wsload report: %s: %v\n  hint: check that the directory exists and is writable\n", flag, err)
		return exitOutput
	}
	return exitOK
}
