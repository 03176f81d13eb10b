package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/server"
)

const serveExamples = `Examples:
  # Plain ws echo on 127.0.0.1:8080 (the default).
  wsload serve

  # wss with an in-memory self-signed certificate on 8443 (clients: wsload run --insecure).
  wsload serve --addr 127.0.0.1:8443 --tls-self-signed

  # Three backends behind HAProxy or nginx: each names itself in the X-Backend header
  # and in a first "hello from bN" message, for per-backend breakdowns.
  wsload serve --addr 127.0.0.1:9001 --backend-id b1 --hello &
  wsload serve --addr 127.0.0.1:9002 --backend-id b2 --hello &
  wsload serve --addr 127.0.0.1:9003 --backend-id b3 --hello &

  # A target that stalls 500 ms every 2 s: the stall must show in wsload run's p99.
  wsload serve --stall 2s/500ms

  # Any free port; the URL is on the first line of stderr.
  wsload serve --addr 127.0.0.1:0
`

// stallFlag parses --stall EVERY/FOR, e.g. 2s/500ms.
type stallFlag struct{ st *server.Stall }

func (f stallFlag) String() string {
	if f.st == nil || !f.st.Enabled() {
		return ""
	}
	return f.st.Every.String() + "/" + f.st.For.String()
}

func (f stallFlag) Set(v string) error {
	everyS, forS, ok := strings.Cut(v, "/")
	if !ok {
		return fmt.Errorf("want EVERY/FOR, e.g. 2s/500ms, got %q", v)
	}
	every, err := time.ParseDuration(everyS)
	if err != nil {
		return fmt.Errorf("EVERY: %w", err)
	}
	stallFor, err := time.ParseDuration(forS)
	if err != nil {
		return fmt.Errorf("FOR: %w", err)
	}
	*f.st = server.Stall{Every: every, For: stallFor}
	return nil
}

func (stallFlag) Type() string { return "EVERY/FOR" }

func serveFlags(cfg *server.Config, verbose *bool) *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "host:port to listen on (port 0 picks a free one)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate file: serve wss (with --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", false, "serve wss with an in-memory self-signed certificate for 127.0.0.1/localhost")
	fs.StringVar(&cfg.BackendID, "backend-id", "", "name this server: sent as the X-Backend header on every response and in --hello")
	fs.BoolVar(&cfg.Hello, "hello", false, "send \""+server.HelloPrefix+"<backend-id>\" as the first message of every connection")
	fs.DurationVar(&cfg.Delay, "delay", 0, "hold every reply this long (timers, other connections are not slowed)")
	fs.Var(stallFlag{&cfg.Stall}, "stall", "every EVERY, stop replying for FOR and send the held replies when it ends, e.g. 2s/500ms")
	fs.BoolVar(&cfg.Broadcast, "broadcast", false, "send each message to every connected client (sender included) instead of echoing it")
	fs.IntVar(&cfg.Pollers, "pollers", 0, "event loops (0 = one per CPU)")
	fs.IntVar(&cfg.MaxConns, "max-conns", 0, "most open WebSocket connections; further upgrades get 503 (0 = unlimited)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 0, "close connections that receive nothing this long (0 = never)")
	fs.BoolVar(verbose, "verbose", false, verboseHelp)
	fs.SortFlags = false
	return fs
}

// serveCmd runs `wsload serve` until SIGINT or SIGTERM.
func serveCmd(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveUntil(ctx, stop, args, stdout, stderr)
}

// serveUntil runs the server until ctx is done. stop is called once ctx is done, so that a
// second Ctrl-C during a slow shutdown kills the process the default way.
func serveUntil(ctx context.Context, stop func(), args []string, stdout, stderr io.Writer) int {
	var cfg server.Config
	var verbose bool
	fs := serveFlags(&cfg, &verbose)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wsload serve [flags]\n\nRuns the reference WebSocket target: an echo server on nbio that holds tens of\nthousands of connections. Every path upgrades; GET / answers a short page and\n/status/NNN answers HTTP status NNN instead of upgrading (to test refused upgrades).\n\n%s\nFlags:\n%s", serveExamples, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsload serve: unexpected arguments %q (the address is --addr)\n", fs.Args())
		return exitUsage
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "wsload serve: %v\n", err)
		return exitUsage
	}

	var logMu sync.Mutex // Logf is called from pollers; stderr may be any io.Writer
	cfg.Logf = func(format string, a ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(stderr, "wsload serve: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	nbioLog(verbose)

	soft, hard, limErr := raiseOpenFiles()

	srv, err := server.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "wsload serve: %v\n", err)
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			return exitUsage // certificate or key files: a problem with what was typed
		}
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			fmt.Fprintf(stderr, "hint: address in use: is another server on %s? pick --addr 127.0.0.1:0 for a free port\n", cfg.Addr)
		case errors.Is(err, syscall.EACCES):
			fmt.Fprintf(stderr, "hint: ports below 1024 need privileges; pick a higher port, e.g. --addr 127.0.0.1:8080\n")
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			fmt.Fprintf(stderr, "hint: %s is not an address of this host\n", cfg.Addr)
		}
		return exitRunFailed
	}
	limit := fmt.Sprintf("open files limit %d", soft)
	if limErr != nil {
		limit = fmt.Sprintf("open files limit %d (raising to %d failed: %v)", soft, hard, limErr)
	}
	fmt.Fprintf(stderr, "wsload serve: listening on %s (%s); Ctrl-C to stop\n", srv.URL(), limit)

	<-ctx.Done()
	stop()
	fmt.Fprintf(stderr, "wsload serve: shutting down: closing %d connections with 1001 Going Away\n", srv.Conns())
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "wsload serve: %v\n", err)
		return exitRunFailed
	}
	st := srv.Stats()
	fmt.Fprintf(stderr, "wsload serve: stopped: %d upgrades (peak %d open), %d refused; %d messages in, %d out\n",
		st.Upgrades, st.PeakConns, st.Refused, st.MessagesIn, st.MessagesOut)
	return exitOK
}

// raiseOpenFiles lifts the soft RLIMIT_NOFILE to the hard limit: every WebSocket connection
// is a file descriptor, and the usual soft limit of 1024 is far below a load test.
// It returns the soft limit in force afterwards.
func raiseOpenFiles() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	if lim.Cur >= lim.Max {
		return lim.Cur, lim.Max, nil
	}
	want := lim
	want.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return lim.Cur, lim.Max, err
	}
	return want.Cur, want.Max, nil
}
