// Package report renders wsload results for people and for other tools: a
// self-contained HTML report of one run or a comparison of several, the
// HdrHistogram percentile distribution text (.hgrm) of a latency histogram,
// and a capacity curve with its knee.
//
//	run, err := report.Load("result.json", "")           // label = file name
//	var page bytes.Buffer
//	err = report.WriteHTML(&page, []report.Run{run}, report.Options{})
//
//	h, err := report.HistogramOf(run.Result, "rtt")      // decoded from the result's hdr
//	err = report.WriteHgrm(os.Stdout, h)                 // ms, HdrHistogram's layout
//
// The HTML page opens offline: inline CSS, charts drawn by gonum/plot as
// inline SVG, no script, font or image from anywhere; one small inline script
// only marks the page once every chart has drawn, for the headless-browser
// test. Every string taken from a result is escaped by html/template (or, in
// chart labels, by the SVG writer). One run gives the verdict, headline
// figures, latency percentile distributions on HdrHistogram's log scale
// (computed from the decoded histograms, not from the summary numbers),
// the timeline, steps, backends, close codes, errors and configuration;
// several runs give the same page overlaid, one colour per run, with the
// compare table of stats.Compare (the first run is the baseline).
//
// The report reads only stats.Result: results from any machine, merged or
// not, report the same way.
package report
