package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/probe"
)

const probeExamples = `Examples:
  # Does the endpoint speak WebSocket? Connect, send "hello server", show the reply, close.
  wsload probe ws://127.0.0.1:8080/

  # Through a balancer with TLS: certificate, X-Backend and other response headers, timings.
  wsload probe wss://ws.example.com/socket -H "Authorization: Bearer $TOKEN" --origin https://example.com

  # Find the balancer's idle timeout: hold the connection idle for 5 minutes and report the cut.
  wsload probe wss://ws.example.com/socket --idle 5m

  # ...and check that keepalive pings every 30 s prevent it.
  wsload probe wss://ws.example.com/socket --idle 5m --ping-every 30s

  # A server that speaks first; JSON for scripts (the exit status names the fault class).
  wsload probe ws://127.0.0.1:8080/ --expect-greeting --format json
`

// Exit codes of `wsload probe`, one per fault class, after the common ones (0 OK, 2 usage,
// 130 interrupted): a script tells "nothing listens" from "the balancer drops the upgrade"
// without parsing text.
const (
	exitProbeDNS       = 10 // the host name does not resolve
	exitProbeRefused   = 11 // nothing listens on host:port
	exitProbeConnect   = 12 // connect timeout or unreachable
	exitProbeTLS       = 13 // certificate, TLS handshake, or ws/wss on the wrong kind of port
	exitProbeHTTP      = 14 // the upgrade was answered with a plain HTTP status
	exitProbeHandshake = 15 // a broken 101, a non-HTTP answer, or no answer
	exitProbeNoReply   = 16 // no greeting or no reply to the message
	exitProbeClosed    = 17 // the server closed or broke the protocol during the exchange
	exitProbeIdleCut   = 18 // the connection was cut during --idle
)

// probeExitCodes maps every probe.Fault to its exit code; a test checks that none is
// missing.
var probeExitCodes = map[probe.Fault]int{
	probe.FaultDNS:                 exitProbeDNS,
	probe.FaultRefused:             exitProbeRefused,
	probe.FaultConnectTimeout:      exitProbeConnect,
	probe.FaultUnreachable:         exitProbeConnect,
	probe.FaultTLSExpired:          exitProbeTLS,
	probe.FaultTLSNotYetValid:      exitProbeTLS,
	probe.FaultTLSUnknownAuthority: exitProbeTLS,
	probe.FaultTLSNameMismatch:     exitProbeTLS,
	probe.FaultTLSPlainHTTP:        exitProbeTLS,
	probe.FaultTLSExpected:         exitProbeTLS,
	probe.FaultTLS:                 exitProbeTLS,
	probe.FaultHTTPStatus:          exitProbeHTTP,
	probe.FaultBadUpgrade:          exitProbeHandshake,
	probe.FaultNotHTTP:             exitProbeHandshake,
	probe.FaultNoUpgradeAnswer:     exitProbeHandshake,
	probe.FaultNoGreeting:          exitProbeNoReply,
	probe.FaultNoReply:             exitProbeNoReply,
	probe.FaultClosed:              exitProbeClosed,
	probe.FaultProtocol:            exitProbeClosed,
	probe.FaultIdleCut:             exitProbeIdleCut,
}

const probeExitText = `Exit status: 0 the endpoint works; 2 bad flags; 10 DNS; 11 connection refused;
12 connect timeout/unreachable; 13 TLS (certificate, or ws/wss on the wrong port);
14 the upgrade got a plain HTTP status; 15 a broken or missing upgrade answer;
16 no greeting/reply; 17 closed or protocol error during the exchange;
18 cut during --idle; 130 interrupted (the report so far is still printed).
`

type probeOptions struct {
	o       probe.Options
	headers []string
	format  string
}

func probeFlags(po *probeOptions) *pflag.FlagSet {
	fs := pflag.NewFlagSet("probe", pflag.ContinueOnError)
	o := &po.o
	fs.StringArrayVarP(&po.headers, "header", "H", nil, "extra upgrade request header 'Name: value' (repeatable); secrets are redacted in the report")
	fs.StringVar(&o.Origin, "origin", "", "Origin header, as a browser would send it")
	fs.StringSliceVar(&o.Subprotocols, "subprotocol", nil, "WebSocket subprotocol to offer (repeatable or comma-separated)")
	fs.BoolVar(&o.Insecure, "insecure", false, "go on when the certificate does not verify (the report still says why)")
	fs.DurationVar(&o.Timeout, "timeout", probe.DefaultTimeout, "limit for each phase: DNS, connect, TLS, upgrade, reply, close")
	fs.StringVar(&o.Message, "message", probe.DefaultMessage, "text message to send after the upgrade ('' sends none)")
	fs.BoolVar(&o.ExpectGreeting, "expect-greeting", false, "wait for a message from the server before sending (servers that speak first)")
	fs.DurationVar(&o.Idle, "idle", 0, "after the exchange, hold the connection idle this long and report whether and how it is cut")
	fs.DurationVar(&o.PingEvery, "ping-every", 0, "during --idle, send a ping this often (shows whether keepalive pings prevent the cut)")
	fs.StringVar(&po.format, "format", "text", "output on stdout: text or json")
	fs.SortFlags = false
	return fs
}

// probeCmd is `wsload probe URL`: one connection, every phase shown and diagnosed.
func probeCmd(args []string, stdout, stderr io.Writer) int {
	var po probeOptions
	fs := probeFlags(&po)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload probe URL [flags]\n\nChecks one WebSocket endpoint like the browser test page does: connects, sends\n--message, shows what comes back and closes, with the timing of every phase (DNS,\nTCP, TLS, upgrade, message, close), the certificate, the upgrade's request and\nresponse headers, and a diagnosis with a hint when something fails.\n\n%s\n%s\nFlags:\n%s", probeExamples, probeExitText, fs.FlagUsages())
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wsload probe: "+format+"\n  hint: wsload probe --help lists the flags and examples\n", a...)
		return exitUsage
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	switch {
	case fs.NArg() == 0:
		return usageErr("give the URL to probe, e.g. wsload probe ws://127.0.0.1:8080/")
	case fs.NArg() > 1:
		return usageErr("one URL at a time, got %q", fs.Args())
	case po.format != "text" && po.format != "json":
		return usageErr("--format must be text or json, got %q", po.format)
	case po.o.Timeout <= 0:
		return usageErr("--timeout must be positive, got %v", po.o.Timeout)
	case po.o.PingEvery > 0 && po.o.Idle == 0:
		return usageErr("--ping-every %v needs --idle: pings are sent during the idle hold", po.o.PingEvery)
	}
	h, err := parseHeaders(po.headers)
	if err != nil {
		return usageErr("%v", err)
	}
	po.o.Header = h
	po.o.URL = fs.Arg(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := probe.Run(ctx, po.o)
	if rep == nil {
		return usageErr("%s", strings.TrimPrefix(err.Error(), "probe: "))
	}
	switch po.format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
		// People run the JSON form too: the verdict goes to stderr as well.
		for _, d := range rep.Diagnoses {
			fmt.Fprintf(stderr, "diagnosis: %s\nhint: %s\n", d.Summary, d.Hint)
		}
	default:
		_ = rep.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "wsload probe: interrupted: the report shows the phases done so far\n")
		return exitInterrupted
	}
	if d := rep.Diagnosis(); d != nil {
		if code, ok := probeExitCodes[d.Fault]; ok {
			return code
		}
		return exitRunFailed
	}
	return exitOK
}
