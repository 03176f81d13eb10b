package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/scenario"
)

const checkExamples = `Examples:
  # Validate a scenario and print the plan: phases, flows and their steps,
  # expected peak connections and message rate. Nothing is sent.
  wsload check scripts/scenarios/chat.yaml

  # The plan as 'wsload run' would run it with these overrides: -c scales the
  # connections phases to a new peak, -d scales the phases to a new length.
  wsload check scripts/scenarios/echo.yaml --target ws://127.0.0.1:9000/ -c 5000 -d 2m

  # In CI: validate every script; exit status 2 and file:line:col errors if any is invalid.
  wsload check -q scripts/scenarios/*.yaml
`

type checkOptions struct {
	target       string
	connections  int
	duration     time.Duration
	quiet        bool
	allowOutside bool
}

func checkFlags(o *checkOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	fs.StringVar(&o.target, "target", "", "target URL replacing the file's target (ws:// or wss://)")
	fs.IntVarP(&o.connections, "connections", "c", 0, fmt.Sprintf("peak connections: scales the file's connections phases (a file without phases holds this many; default %d)", engine.DefaultConnections))
	fs.DurationVarP(&o.duration, "duration", "d", 0, fmt.Sprintf("length of the whole run: scales the file's phases (a file without phases runs this long; default %v)", engine.DefaultDuration))
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only problems, not the plan")
	fs.BoolVar(&o.allowOutside, "allow-outside-files", false, allowOutsideHelp)
	fs.SortFlags = false
	return fs
}

// checkCmd is `wsload check`: validation before any connection is opened.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	var o checkOptions
	fs := checkFlags(&o)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload check SCENARIO.yaml... [flags]\n\nValidates scenario files (YAML or JSON) and prints the plan each resolves to,\nwith the flags 'wsload run' would apply. Problems are reported as\nfile:line:col: message (hint: …). Lists the files a scenario reads and\nwhether any lies outside its directory, which only --allow-outside-files\npermits. Exit status 0: valid; 2: invalid.\n\n%s\nFlags:\n%s", checkExamples, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "wsload check: no scenario file given\n  hint: wsload check scripts/scenarios/echo.yaml\n")
		return exitUsage
	}
	if o.connections < 0 {
		fmt.Fprintf(stderr, "wsload check: -c %d: connections must be positive\n", o.connections)
		return exitUsage
	}
	if fs.Changed("duration") && o.duration <= 0 {
		fmt.Fprintf(stderr, "wsload check: -d %v: the duration must be positive\n", o.duration)
		return exitUsage
	}
	code := exitOK
	for i, name := range fs.Args() {
		if i > 0 && !o.quiet {
			fmt.Fprintln(stdout)
		}
		if !checkOne(name, &o, stdout, stderr) {
			code = exitUsage
		}
	}
	return code
}

func checkOne(name string, o *checkOptions, stdout, stderr io.Writer) bool {
	plan, err := scenario.LoadWith(name, scenario.Options{AllowOutsideFiles: o.allowOutside})
	if err != nil {
		var list scenario.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				fmt.Fprintln(stderr, e)
			}
			fmt.Fprintf(stderr, "wsload check: %s: %d problem(s)\n", name, len(list))
		} else {
			fmt.Fprintf(stderr, "wsload check: %v\n  hint: give the path of a scenario file, e.g. scripts/scenarios/echo.yaml\n", err)
		}
		return false
	}
	ov := scenario.Overrides{Target: o.target, Connections: o.connections, Duration: o.duration}
	if len(plan.Phases) == 0 {
		// What `wsload run` does with a file that leaves the load to flags.
		if ov.Connections == 0 {
			ov.Connections = engine.DefaultConnections
		}
		if ov.Duration == 0 {
			ov.Duration = engine.DefaultDuration
		}
	}
	if err := plan.Override(ov); err != nil {
		fmt.Fprintf(stderr, "wsload check: %v\n", err)
		return false
	}
	if o.quiet {
		return true
	}
	if err := plan.Describe(stdout); err != nil {
		fmt.Fprintf(stderr, "wsload check: %v\n", err)
		return false
	}
	fmt.Fprintf(stdout, "\nvalid: %s (nothing was sent)\n", name)
	return true
}
