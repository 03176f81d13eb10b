package main

// `wsload run SCENARIO.yaml`: the run is a scenario's plan (phases and
// flows) instead of the echo flow of the flags.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/internal/termsafe"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

const scenarioExamples = `
  # A scenario: phases (ramps, holds, arrivals) and flows of steps; see wsload check.
  wsload run scripts/scenarios/echo.yaml

  # The chat room against another target, scaled to a peak of 5,000 connections and 2 minutes.
  wsload run scripts/scenarios/chat.yaml --target ws://10.0.0.5:8080/chat -c 5000 -d 2m -o chat.json

  # The same over worker processes sized from the open-file limit (each runs its share of every phase).
  wsload run scripts/scenarios/chat.yaml --target ws://10.0.0.5:8080/chat -c 50000 --procs auto
`

// isScenarioArg reports whether run's argument names a scenario file rather
// than a target URL: a .yaml, .yml or .json name, or an existing file.
func isScenarioArg(arg string) bool {
	if arg == "" || strings.Contains(arg, "://") {
		return false
	}
	switch low := strings.ToLower(arg); {
	case strings.HasSuffix(low, ".yaml"), strings.HasSuffix(low, ".yml"), strings.HasSuffix(low, ".json"):
		return true
	}
	fi, err := os.Stat(arg)
	return err == nil && fi.Mode().IsRegular()
}

// allowOutsideHelp is the help of run's and check's --allow-outside-files.
const allowOutsideHelp = "let a scenario read payload, data and capture files outside its own directory (absolute or ../ paths, symlinks leading out); without it such a file is an error, so a scenario from elsewhere cannot send this machine's files to its target"

// noteOutsideFiles says on w which files outside its directory a scenario
// read (with --allow-outside-files), so that the user sees what is sent.
func noteOutsideFiles(w io.Writer, cmd, file string, plan *scenario.Plan) {
	for _, f := range plan.Files {
		if f.Outside && f.Kind != "tls.ca_file" {
			fmt.Fprintf(w, "%s: %s reads %s (%s), outside its directory (--allow-outside-files)\n", cmd, file, termsafe.Escape(f.Path), f.Kind)
		}
	}
}

// echoOnlyFlags are run's flags that shape the echo flow; a scenario's flows
// decide these themselves.
var echoOnlyFlags = map[string]string{
	"rate":         "the flows send: set repeat.rate in the scenario",
	"size":         "the flows' send steps make the messages",
	"binary":       "write the send step as {hex: …}, {base64: …} or {text: …, binary: true}",
	"connect-rate": "the phases set the pace: ramp with connections: {from: 0, to: N}",
}

// runScenario loads the scenario file, applies --target, -c and -d (only
// when given) and runs it: in this process, over --procs workers (each runs
// the same file with the same flags and takes its share, fleet's --worker),
// or as one --segment of a load several machines make. Problems in the file
// print as file:line:col and exit 2, before anything is dialed.
func runScenario(o *runOptions, fs *pflag.FlagSet, file string, args []string, stdout, stderr io.Writer) int {
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "wsload run: one scenario file at most, got %q\n  hint: the target goes in the file or in --target\n", fs.Args())
		return exitUsage
	}
	for name, why := range echoOnlyFlags {
		if fs.Changed(name) {
			fmt.Fprintf(stderr, "wsload run: --%s does not apply to a scenario (%s): %s\n", name, file, why)
			return exitUsage
		}
	}
	plan, err := scenario.LoadWith(file, scenario.Options{AllowOutsideFiles: o.allowOutside})
	if err != nil {
		var list scenario.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(stderr, e)
			}
			fmt.Fprintf(stderr, "wsload run: %s: %d problem(s); nothing was sent\n", file, len(list))
		} else {
			fmt.Fprintf(stderr, "wsload run: %v\n  hint: give a scenario file (e.g. scripts/scenarios/echo.yaml) or a ws:// URL\n", err)
		}
		return exitUsage
	}
	if o.spread.worker == "" {
		noteOutsideFiles(stderr, "wsload run", file, plan)
	}
	ov := scenario.Overrides{Target: o.target}
	if fs.Changed("connections") {
		ov.Connections = o.cfg.Connections
	}
	if fs.Changed("duration") {
		ov.Duration = o.cfg.Duration
	}
	if len(plan.Phases) == 0 {
		// A file that leaves the load to the flags: the flags' defaults.
		ov.Connections, ov.Duration = o.cfg.Connections, o.cfg.Duration
	}
	if err := plan.Override(ov); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage
	}
	c := &o.cfg
	c.Plan = plan
	c.URL = plan.Target
	c.Connections = max(plan.Estimate().PeakConnections, 1)
	c.Duration = plan.Duration()
	c.Rate, c.Size, c.ConnectRate = 0, 0, 0
	if o.scenario, err = scenarioRecord(file, plan); err != nil {
		fmt.Fprintf(stderr, "wsload run: %v\n", err)
		return exitUsage
	}
	if code, handled := spread(o, []string{plan.Target}, args, stdout, stderr); handled {
		return code
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nbioLog(o.verbose)
	return execute(ctx, o, false, stdout, stderr)
}

// scenarioRecord describes the run's scenario for its result: the file's
// name and SHA-256 (so results of different files are not merged by
// mistake), its flows and its phases after the overrides.
func scenarioRecord(file string, plan *scenario.Plan) (*stats.Scenario, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	sum := sha256.Sum256(b)
	rec := &stats.Scenario{File: file, SHA256: hex.EncodeToString(sum[:]),
		Flows: []stats.ScenarioFlow{}, Phases: []stats.ScenarioPhase{}}
	for _, f := range plan.Flows {
		rec.Flows = append(rec.Flows, stats.ScenarioFlow{Name: f.Name, Weight: f.Weight})
	}
	for _, ph := range plan.Phases {
		p := stats.ScenarioPhase{Name: ph.Name, DurationS: ph.Duration.Seconds()}
		switch ph.Kind {
		case scenario.PhaseArrivals:
			p.Kind, p.Rate = "arrivals", ph.Rate
		default:
			p.Kind, p.From, p.To = "connections", ph.From, ph.To
		}
		rec.Phases = append(rec.Phases, p)
	}
	return rec, nil
}
