// Command wsload is a high-throughput WebSocket load tester.
//
//	wsload run                         # load-test an embedded echo server (the demo)
//	wsload run ws://127.0.0.1:8080/ -c 5000 -r 1 -d 30s -o result.json
//	wsload serve --addr 127.0.0.1:8080 # the reference target
//
// This package is wiring only: flags, signals, exit codes and output. The
// work is in packages engine, scenario, stats and server.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/internal/atomicfile"
	"github.com/wsload/wsload/internal/buildinfo"
	"github.com/wsload/wsload/internal/nbiolog"
)

// Version is this wsload's version: set at build time with
// -ldflags "-X github.com/wsload/wsload/internal/buildinfo.version=…" (see
// internal/buildinfo), the module version otherwise, "dev" from a checkout.
// Results carry the same (the engine records it).
var Version = buildinfo.Version()

// Exit codes, one per failure class, stable for scripts and CI pipelines.
const (
	exitOK          = 0
	exitRunFailed   = 1 // the run could not do what was asked: target unreachable, nothing established
	exitUsage       = 2 // bad flags, arguments or configuration
	exitLimits      = 3 // the run cannot fit this host (open files, ephemeral ports); nothing was dialed
	exitSLO         = 4 // the run (or every capacity step) broke its service-level objectives (--slo)
	exitOutput      = 5 // results could not be written
	exitInterrupted = 130
)

type command struct {
	run     func(args []string, stdout, stderr io.Writer) int
	summary string
}

var commands = map[string]command{
	"run":      {runCmd, "load-test a WebSocket target (or an embedded echo server when no URL is given)"},
	"merge":    {mergeCmd, "merge the results (or .hlog logs) of runs that made one load together, exactly"},
	"capacity": {capacityCmd, "find the highest load a target sustains within an SLO: steps, refinement, the knee"},
	"compare":  {compareCmd, "compare results side by side: every headline figure, differences, which run is better"},
	"check":    {checkCmd, "validate scenario files and print their plans (phases, flows, expected load) without sending anything"},
	"probe":    {probeCmd, "check one endpoint step by step (DNS, TCP, TLS, upgrade, message, close, idle cut) and diagnose what fails"},
	"report":   {reportCmd, "report results: a self-contained HTML page (one run or a comparison), .hgrm, or the text summary"},
	"serve":    {serveCmd, "run the reference WebSocket target (echo, delay, broadcast, backend ids, wss)"},
	"version":  {versionCmd, "print the version"},
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help":
		usage(stdout)
		return exitOK
	case "help": // wsload help [COMMAND]
		if len(args) > 1 {
			if cmd, ok := commands[args[1]]; ok {
				return cmd.run([]string{"--help"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "wsload help: unknown command %q\n\n", args[1])
			usage(stderr)
			return exitUsage
		}
		usage(stdout)
		return exitOK
	case "-v", "--version":
		return versionCmd(nil, stdout, stderr)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "wsload: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return cmd.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "wsload %s: a high-throughput WebSocket load tester\n\nUsage: wsload COMMAND [flags]\n\nCommands:\n", Version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'wsload COMMAND --help' (or 'wsload help COMMAND') for a command's flags and examples;\n'wsload --version' prints the version.\n")
}

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("version", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload version\n\nPrints wsload's version (also: wsload --version, wsload -v). Results record the same\nversion in their \"version\" field.\n")
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsload version: unexpected arguments %s\n", strings.Join(fs.Args(), " "))
		return exitUsage
	}
	fmt.Fprintf(stdout, "wsload %s\n", Version)
	return exitOK
}

// verboseHelp is the one help text of --verbose, on every command that starts nbio.
const verboseHelp = "also print nbio's own log lines (engine start/stop, poller errors) on stderr; by default only its errors"

// nbioLog sets nbio's process-wide logger for a command that is about to start nbio: errors only
// on stderr, or everything with --verbose. Never stdout, where the progress line, the summary
// and a --procs worker's interval stream go.
func nbioLog(verbose bool) {
	if verbose {
		nbiolog.Verbose()
		return
	}
	nbiolog.Quiet()
}

// output is a flag that names a file a command writes, and the path it was given ("" = unused).
type output struct{ flag, path string }

// checkOutputs refuses, before anything is dialed, an output that cannot be written (a missing
// directory, a directory given as the file) and two outputs naming the same file, so a long run
// never ends by losing its result or overwriting one output with another.
func checkOutputs(outs ...output) error {
	for i, o := range outs {
		if o.path == "" {
			continue
		}
		if err := atomicfile.Check(o.path); err != nil {
			return fmt.Errorf("%s: %w", o.flag, err)
		}
		for _, p := range outs[:i] {
			if atomicfile.Same(p.path, o.path) {
				return fmt.Errorf("%s and %s both name %s: one would overwrite the other (hint: give each its own file)", p.flag, o.flag, o.path)
			}
		}
	}
	return nil
}

// parseFlags parses a subcommand's flags: a bad flag is one line on stderr with where to look
// (exit 2), help asked for goes to stdout (exit 0). ok is false when the command should return
// code. Every command's Usage writes to fs.Output().
func parseFlags(fs *pflag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard) // pflag shows the usage itself on -h: show it once, below, on stdout
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return exitOK, true
	case errors.Is(err, pflag.ErrHelp):
		// Help that was asked for is the command's output: stdout, exit 0, so that
		// `wsload run --help | less` shows it.
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return exitOK, false
	}
	fmt.Fprintf(stderr, "wsload %s: %v\n  hint: wsload %s --help lists the flags and examples\n", fs.Name(), err, fs.Name())
	return exitUsage, false
}
