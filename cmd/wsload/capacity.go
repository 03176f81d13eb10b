package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/capacity"
	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/engine/hostlimits"
	"github.com/wsload/wsload/slo"
	"github.com/wsload/wsload/stats"
)

const capacityExamples = `Examples:
  # Connection capacity: 1,000 to 20,000 connections in steps of 1,000, one message per second
  # each, 10 s per step; refine twice between the last good and the first bad step.
  wsload capacity ws://127.0.0.1:8080/ --connections 1000:20000:1000 --per-conn-rate 1 \
      --slo 'rtt.p99<50ms,handshake.p99<1s,errors<0.1%' --hold 10s --refine 2 -o cap.json

  # Message capacity: 100 connections, 100 to 5,000 messages per second in total, doubling.
  wsload capacity ws://127.0.0.1:8080/ -c 100 --rate 100:5000:x2 --slo 'rtt.p99<20ms,timeouts<0.1%'

  # Both at once: connections and total rate rise together, step by step.
  wsload capacity ws://127.0.0.1:8080/ -c 500:5000:500 --rate 500:5000:500 --slo 'rtt.p99<50ms'

Ranges are START:MAX:STEP or START:MAX:xFACTOR; MAX is always the last step.
Exit codes: 0 a knee was found, 4 even the first step broke the SLO, 1 a step could
not run, 2 usage, 3 host limits, 5 output, 130 interrupted (what was measured is written).
`

// capacityOptions are the flags of `wsload capacity`, parsed.
type capacityOptions struct {
	cfg         engine.Config
	connections string
	rate        string
	perConnRate float64
	engineFlags
	sloText  string
	hold     time.Duration
	cooldown time.Duration
	refine   int
	out      string
	format   string
	quiet    bool
}

// capacityStep runs each step of wsload capacity; a test swaps it to wait for its server to
// let go of one step's connections before the next, so the knee it checks is exact.
var capacityStep capacity.StepFunc = capacity.RunEngine

func capacityFlags(o *capacityOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("capacity", pflag.ContinueOnError)
	c := &o.cfg
	fs.StringVarP(&o.connections, "connections", "c", strconv.Itoa(engine.DefaultConnections), "connections: a fixed number, or a range START:MAX:STEP (or START:MAX:xFACTOR) to search")
	fs.StringVar(&o.rate, "rate", "", "TOTAL messages per second over all connections: a range to search (e.g. 100:5000:x2), or a fixed number")
	fs.Float64Var(&o.perConnRate, "per-conn-rate", engine.DefaultRate, "messages per second PER CONNECTION when --rate is not given (0 = idle connections)")
	fs.StringVar(&o.sloText, "slo", "", "objectives every step must meet, e.g. 'rtt.p99<50ms,handshake.p99<1s,errors<0.1%' (required)")
	fs.DurationVar(&o.hold, "hold", 10*time.Second, "how long each step runs, ramp included")
	fs.IntVar(&o.refine, "refine", 2, "bisection steps between the last good and the first bad step")
	fs.DurationVar(&o.cooldown, "cooldown", time.Second, "pause between steps, so the target lets go of the previous step's connections")
	addEngineFlags(fs, c, &o.engineFlags)
	fs.StringVarP(&o.out, "out", "o", "", "write the capacity JSON (every step's full result) to FILE, atomically")
	fs.StringVar(&o.format, "format", "text", "what to print on stdout at the end: text or json")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "no per-step progress on stderr")
	fs.SortFlags = false
	return fs
}

func capacityCmd(args []string, stdout, stderr io.Writer) int {
	var o capacityOptions
	fs := capacityFlags(&o)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload capacity URL --slo OBJECTIVES (--connections RANGE | --rate RANGE) [flags]\n\n"+
			"Raises the load in steps, holds each, judges it against the SLO, stops at the first\n"+
			"step that breaks it, refines between the last good and the first bad step, and reports\n"+
			"the knee: the highest load that met the SLO, with the curve of every step.\n\n%s\nFlags:\n%s", capacityExamples, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wsload capacity: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() != 1 {
		return usageErr("want one target URL, got %d arguments (start a target with 'wsload serve' if you need one)", fs.NArg())
	}
	if err := checkTarget(fs.Arg(0)); err != nil {
		return usageErr("%v", err)
	}
	if o.format != "text" && o.format != "json" {
		return usageErr("--format must be text or json, got %q", o.format)
	}
	if err := checkOutputs(output{"--out", o.out}); err != nil {
		return usageErr("%v", err)
	}
	opts, err := o.searchOptions(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "wsload capacity: %v\n", err)
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	nbioLog(o.verbose)
	opts.OnStep = func(st capacity.Step) {
		if !o.quiet {
			fmt.Fprintln(stderr, stepLine(st))
		}
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "wsload capacity: %s search of %s, SLO %s, %s per step\n", opts.Dimension, stats.RedactURL(opts.Base.URL), opts.SLO, o.hold)
	}
	res, err := capacity.Search(ctx, opts, capacityStep)
	if res == nil { // the options were refused
		fmt.Fprintf(stderr, "wsload capacity: %v\n", err)
		return exitUsage
	}
	res.Version = Version

	code := exitOK
	switch {
	case ctx.Err() != nil:
		code = exitInterrupted
		fmt.Fprintln(stderr, "wsload capacity: interrupted: reporting the steps measured so far")
	case err != nil:
		fmt.Fprintf(stderr, "wsload capacity: %v\n", err)
		code = exitRunFailed
		var le *hostlimits.LimitError
		if errors.As(err, &le) {
			code = exitLimits
		}
	case res.Knee == nil:
		code = exitSLO
	}
	if o.out != "" {
		if werr := capacity.WriteJSONFile(o.out, res); werr != nil {
			fmt.Fprintf(stderr, "wsload capacity: %v\n", werr)
			code = exitOutput
		}
	}
	if o.format == "json" {
		_ = res.Encode(stdout)
	} else {
		_ = res.WriteText(stdout)
	}
	return code
}

// searchOptions turns the flags into capacity.Options: which dimension the
// ranges make, the base configuration and the SLO.
func (o *capacityOptions) searchOptions(url string) (capacity.Options, error) {
	opts := capacity.Options{Hold: o.hold, Cooldown: o.cooldown, Refine: o.refine}
	if o.sloText == "" {
		return opts, errors.New("--slo is required: the objectives that judge each step, e.g. --slo 'rtt.p99<50ms,errors<0.1%'")
	}
	spec, err := slo.Parse(o.sloText)
	if err != nil {
		return opts, fmt.Errorf("--slo: %v\n%s", err, sloPointer(err))
	}
	opts.SLO = spec

	var fixedConns int
	connRange := strings.Contains(o.connections, ":")
	if connRange {
		if opts.Connections, err = capacity.ParseRange(o.connections); err != nil {
			return opts, fmt.Errorf("--connections: %w", err)
		}
	} else if fixedConns, err = strconv.Atoi(o.connections); err != nil || fixedConns <= 0 {
		return opts, fmt.Errorf("--connections %q: want a positive number or a range START:MAX:STEP, e.g. 1000:20000:1000", o.connections)
	}
	rateRange := strings.Contains(o.rate, ":")
	var fixedRate float64
	if rateRange {
		if opts.Rate, err = capacity.ParseRange(o.rate); err != nil {
			return opts, fmt.Errorf("--rate: %w", err)
		}
	} else if o.rate != "" {
		if fixedRate, err = strconv.ParseFloat(o.rate, 64); err != nil || fixedRate < 0 {
			return opts, fmt.Errorf("--rate %q: want total messages per second (a number) or a range START:MAX:STEP, e.g. 100:5000:x2", o.rate)
		}
	}

	cfg := o.cfg
	cfg.URL = url
	cfg.TuneProcess = true
	switch {
	case connRange && rateRange:
		opts.Dimension = capacity.Both
	case connRange:
		if o.rate != "" {
			return opts, fmt.Errorf("--rate %s is a fixed total but the connections vary: give the rate per connection with --per-conn-rate, or a --rate range", o.rate)
		}
		opts.Dimension = capacity.Connections
		cfg.Rate = o.perConnRate
	case rateRange:
		opts.Dimension = capacity.Rate
		cfg.Connections = fixedConns
	default:
		return opts, errors.New("nothing to search: give a range to --connections (e.g. 1000:20000:1000) or to --rate (e.g. 100:5000:x2)")
	}
	if o.perConnRate < 0 {
		return opts, fmt.Errorf("--per-conn-rate must not be negative, got %v", o.perConnRate)
	}
	if err := o.engineFlags.apply(&cfg); err != nil {
		return opts, err
	}
	opts.Base = cfg
	return opts, nil
}

// stepLine is one step's progress line.
func stepLine(st capacity.Step) string {
	head := fmt.Sprintf("  step %d (%s) %s:", st.N, st.Phase, st.Level)
	if st.Error != "" {
		return head + " could not run: " + st.Error
	}
	f := st.Figures
	verdict := "ok"
	if !st.OK {
		var broken []string
		for _, v := range st.Verdicts {
			if !v.OK {
				broken = append(broken, v.Objective)
			}
		}
		verdict = "BROKEN " + strings.Join(broken, ",")
	}
	rtt := "-"
	if st.Result != nil && st.Result.Latency.RTT.Count > 0 {
		rtt = stats.FormatValue(float64(f.RTTP99US), "us")
	}
	return fmt.Sprintf("%s %s; established %d, errors %s, rtt p99 %s", head, verdict, f.Established, stats.FormatValue(f.ErrorsPct, "%"), rtt)
}

// sloPointer shows where in the --slo string a syntax error is.
func sloPointer(err error) string {
	var se *slo.SyntaxError
	if errors.As(err, &se) {
		return "  " + strings.ReplaceAll(se.Pointer(), "\n", "\n  ")
	}
	return ""
}
