// Command rigconf renders the test rig's HAProxy or nginx configuration from the templates in
// scripts/rig, through the same package (internal/rig/lbconf) the Go tests use. It is the
// hidden helper behind scripts/rig/start.sh, not a user-facing command:
//
//	go build -o /tmp/wsload-rig/rigconf ./internal/rig/rigconf
//	/tmp/wsload-rig/rigconf --lb haproxy --templates scripts/rig --balance leastconn \
//	    --listen 127.0.0.1:8080 --backends b1=127.0.0.1:9001,b2=127.0.0.1:9002 \
//	    --dir /tmp/wsload-rig -o /tmp/wsload-rig/haproxy.cfg
//
// Exit codes: 0 written, 1 the file could not be written, 2 bad flags or parameters.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/internal/rig/lbconf"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("rigconf", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		p        lbconf.Params
		lb       = fs.String("lb", lbconf.HAProxy, "balancer: haproxy or nginx")
		tmplDir  = fs.String("templates", "scripts/rig", "directory holding haproxy.cfg.tmpl and nginx.conf.tmpl")
		backends = fs.String("backends", "", "name=host:port,… of the backends, e.g. b1=127.0.0.1:9001,b2=127.0.0.1:9002")
		out      = fs.StringP("output", "o", "", "write the configuration to this file instead of stdout")
	)
	fs.StringVar(&p.Balance, "balance", lbconf.RoundRobin, "roundrobin or leastconn")
	fs.StringVar(&p.Listen, "listen", "127.0.0.1:8080", "ws listen address (loopback only)")
	fs.StringVar(&p.TLSListen, "tls-listen", "", "wss listen address, e.g. 127.0.0.1:8443 (needs --tls-pem)")
	fs.StringVar(&p.TLSPEM, "tls-pem", "", "PEM file with the certificate followed by its private key")
	fs.StringVar(&p.StatsListen, "stats-listen", "", "HAProxy stats page address, e.g. 127.0.0.1:8404")
	fs.IntVar(&p.MaxConn, "maxconn", lbconf.DefaultMaxConn, "open client connections the balancer accepts (HAProxy frontend maxconn, nginx limit_conn)")
	fs.StringVar(&p.Dir, "dir", "", "run directory for nginx's pid and temp files (absolute)")
	fs.IntVar(&p.Workers, "workers", 0, "nginx worker processes; 0 = one per core")
	fs.DurationVar(&p.TunnelTimeout, "tunnel-timeout", lbconf.DefaultTunnelTimeout, "idle WebSocket timeout after the upgrade")
	fs.DurationVar(&p.CheckInterval, "check-interval", lbconf.DefaultCheckInterval, "health check interval (nginx: fail_timeout)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rigconf --lb haproxy|nginx --backends b1=127.0.0.1:9001,… [flags]\n\n")
		fmt.Fprintf(stderr, "Renders scripts/rig/<lb> template for scripts/rig/start.sh.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rigconf: unexpected arguments %q: every setting is a flag (see --help)\n", fs.Args())
		return 2
	}
	bs, err := lbconf.ParseBackends(*backends)
	if err != nil {
		fmt.Fprintf(stderr, "rigconf: --backends %q: %v\n", *backends, err)
		return 2
	}
	p.Backends = bs
	if p.Dir != "" {
		if p.Dir, err = filepath.Abs(p.Dir); err != nil {
			fmt.Fprintf(stderr, "rigconf: --dir: %v\n", err)
			return 2
		}
	}
	var buf bytes.Buffer
	if err := lbconf.Render(&buf, *tmplDir, *lb, p); err != nil {
		fmt.Fprintf(stderr, "rigconf: %v\n", err)
		return 2
	}
	if *out == "" {
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			fmt.Fprintf(stderr, "rigconf: %v\n", err)
			return 1
		}
		return 0
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		fmt.Fprintf(stderr, "rigconf: --output: %v\n", err)
		return 1
	}
	return 0
}
