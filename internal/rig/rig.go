// Package rig runs a real balancer (HAProxy or nginx) in front of in-process wsload backends,
// for tests that need to see what a balancer does to WebSocket traffic:
//
//	func TestThroughHAProxy(t *testing.T) {
//		r := rig.Start(t, rig.Options{Backends: 3, Balance: "leastconn", LB: "haproxy"})
//		cfg := engine.Config{URL: r.URL(), Connections: 300, Rate: 2, Duration: 3 * time.Second}
//		...                       // run the engine; r.Conns() says where the connections went
//		r.Restart(1)              // backend 1 closes its clients (1001) and comes back on its port
//	}
//
// Backends are server.Server instances on 127.0.0.1 with BackendID b1, b2, … and Hello on;
// the balancer is the haproxy or nginx binary, started with a configuration rendered from
// scripts/rig/*.tmpl (the same templates scripts/rig/start.sh uses) into the test's temp
// directory, so nothing under /etc is read or written. Everything stops when the test ends.
//
// A missing haproxy or nginx fails the test (with the remedy: ./scripts/test.sh installs
// them) instead of skipping it: a skipped end-to-end test looks like a passing one in CI.
package rig

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/rig/lbconf"
	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/server"
)

// installHint is the one remedy for a missing balancer binary.
const installHint = "run ./scripts/test.sh (installs haproxy/nginx)"

// Timeouts for a loaded 2-core CI machine; HAProxy and nginx are listening within
// milliseconds normally.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 5 * time.Second
	// rebindTimeout bounds Restart's wait for the backend's port to be free again.
	rebindTimeout = 5 * time.Second
)

// DefaultMaxConn is the balancer's connection cap in tests when Options.MaxConn is 0, far
// above what a test opens. It is lowered to what the open-file hard limit allows: HAProxy
// refuses to start when it cannot raise its limit to two files per connection, and a
// container may not raise the hard limit even as root.
const DefaultMaxConn = 10000

// fdReserve is what maxConnFit keeps out of the open-file limit for listeners, health checks
// and log files.
const fdReserve = 1024

// maxConnFit returns the largest connection cap whose two files per connection fit hard,
// at most want.
func maxConnFit(want int, hard uint64) int {
	if hard < 2*fdReserve {
		return 1
	}
	if fit := (hard - fdReserve) / 2; fit < uint64(want) {
		return int(fit)
	}
	return want
}

// Options describe a rig. The zero value is three backends behind HAProxy, round robin.
type Options struct {
	Backends int    // number of backends; default 3
	Balance  string // lbconf.RoundRobin (default) or lbconf.LeastConn
	LB       string // lbconf.HAProxy (default) or lbconf.Nginx
	// MaxConn caps the client connections the balancer holds open (HAProxy frontend
	// maxconn, nginx limit_conn); default DefaultMaxConn.
	MaxConn int
	// TLS adds a wss listener with a self-signed certificate for 127.0.0.1 (TLSURL);
	// dial it with engine.Config.InsecureTLS.
	TLS bool
	// Backend is the template of every backend's configuration (Delay, Stall, …); Addr,
	// BackendID and Hello are set by the rig.
	Backend server.Config
}

// Rig is a running balancer and its backends.
type Rig struct {
	t    testing.TB
	opts Options
	dir  string

	url, tlsURL string
	addrs       []string // backend listen addresses, fixed for the rig's life

	mu       sync.Mutex
	backends []*server.Server

	proc *process
}

// Start starts the backends and the balancer, waits until the balancer accepts connections
// and registers a cleanup that stops everything. Any failure fails t.
func Start(t testing.TB, opts Options) *Rig {
	t.Helper()
	if opts.Backends == 0 {
		opts.Backends = 3
	}
	if opts.LB == "" {
		opts.LB = lbconf.HAProxy
	}
	if opts.MaxConn == 0 {
		opts.MaxConn = DefaultMaxConn
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
			opts.MaxConn = maxConnFit(DefaultMaxConn, lim.Max)
		}
	}
	if opts.Backends < 0 {
		t.Fatalf("rig: %d backends: want at least 1", opts.Backends)
	}
	bin, err := exec.LookPath(opts.LB)
	if err != nil {
		// Debian installs both under /usr/sbin, which an unprivileged PATH may lack.
		if _, serr := os.Stat("/usr/sbin/" + opts.LB); serr == nil && (opts.LB == lbconf.HAProxy || opts.LB == lbconf.Nginx) {
			bin = "/usr/sbin/" + opts.LB
		} else {
			t.Fatalf("rig: %s is not installed: %s", opts.LB, installHint)
		}
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatalf("rig: %v", err)
	}
	r := &Rig{t: t, opts: opts, dir: t.TempDir()}
	t.Cleanup(r.stop)

	for i := 0; i < opts.Backends; i++ {
		s, err := r.startBackend(i, "127.0.0.1:0")
		if err != nil {
			t.Fatalf("rig: %v", err)
		}
		r.backends = append(r.backends, s)
		r.addrs = append(r.addrs, s.Addr())
	}

	var pem string
	if opts.TLS {
		certPEM, keyPEM, err := server.SelfSigned()
		if err != nil {
			t.Fatalf("rig: %v", err)
		}
		pem = filepath.Join(r.dir, "rig.pem")
		if err := os.WriteFile(pem, append(certPEM, keyPEM...), 0o600); err != nil {
			t.Fatalf("rig: %v", err)
		}
	}

	// The balancer's ports are chosen before it binds them, so another process can take one
	// in between; that shows up as a bind error in its log, and a fresh pair of ports is tried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p := lbconf.Params{
			Balance:  opts.Balance,
			Listen:   "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
			MaxConn:  opts.MaxConn,
			Dir:      r.dir,
			Backends: make([]lbconf.Backend, len(r.addrs)),
			// Short enough that a restarted backend is back in rotation within a test.
			CheckInterval: 500 * time.Millisecond,
		}
		if opts.LB == lbconf.Nginx {
			p.Workers = 2 // what the CI machine has; several workers is what users run
		}
		for i, a := range r.addrs {
			p.Backends[i] = lbconf.Backend{Name: BackendID(i), Addr: a}
		}
		if opts.TLS {
			p.TLSListen = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
			p.TLSPEM = pem
		}
		proc, err := r.startBalancer(bin, root, p)
		if err == nil {
			r.proc = proc
			r.url = "ws://" + p.Listen + "/"
			if opts.TLS {
				r.tlsURL = "wss://" + p.TLSListen + "/"
			}
			return r
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("rig: %v", lastErr)
	return nil
}

// BackendID is the id of backend i (0-based): "b1", "b2", …, as sent in X-Backend and in the
// hello message.
func BackendID(i int) string { return "b" + strconv.Itoa(i+1) }

// URL is the balancer's ws:// URL.
func (r *Rig) URL() string { return r.url }

// TLSURL is the balancer's wss:// URL, or "" without Options.TLS.
func (r *Rig) TLSURL() string { return r.tlsURL }

// Dir is the rig's directory: the rendered balancer configuration and its pid/temp files.
func (r *Rig) Dir() string { return r.dir }

// Backend returns backend i (0-based). After Restart it is the new server.
func (r *Rig) Backend(i int) *server.Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backends[i]
}

// Conns returns the WebSocket connections open on each backend now, by index.
func (r *Rig) Conns() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := make([]int, len(r.backends))
	for i, s := range r.backends {
		n[i] = s.Conns()
	}
	return n
}

// Log returns what the balancer has written to stdout and stderr so far.
func (r *Rig) Log() string { return r.proc.output() }

// Restart shuts backend i down (its clients get a 1001 close frame through the balancer)
// and starts a fresh one with the same id on the same port. It does not wait for the
// balancer to route to it again: HAProxy's health check or nginx's fail_timeout decides that.
// Call it from the test's goroutine: a failure ends the test.
func (r *Rig) Restart(i int) {
	r.t.Helper()
	r.mu.Lock()
	old := r.backends[i]
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	err := old.Shutdown(ctx)
	cancel()
	if err != nil {
		r.t.Fatalf("rig: restart %s: shutdown: %v", BackendID(i), err)
	}
	// The listener is closed, but the port may take a moment to be bindable again.
	deadline := time.Now().Add(rebindTimeout)
	for {
		s, err := r.startBackend(i, r.addrs[i])
		if err == nil {
			r.mu.Lock()
			r.backends[i] = s
			r.mu.Unlock()
			return
		}
		if time.Now().After(deadline) || !isAddrInUse(err) {
			r.t.Fatalf("rig: restart %s on %s: %v", BackendID(i), r.addrs[i], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Probe makes one WebSocket handshake through the balancer and returns the X-Backend header
// of the 101, i.e. the id of the backend the balancer chose. The connection is closed at once.
func (r *Rig) Probe() (string, error) {
	return probe(strings.TrimSuffix(strings.TrimPrefix(r.url, "ws://"), "/"))
}

func probe(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("rig: probe: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return "", fmt.Errorf("rig: probe: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", fmt.Errorf("rig: probe: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return "", fmt.Errorf("rig: probe: the balancer answered %s, not 101", resp.Status)
	}
	return resp.Header.Get("X-Backend"), nil
}

func (r *Rig) startBackend(i int, addr string) (*server.Server, error) {
	cfg := r.opts.Backend
	cfg.Addr = addr
	cfg.BackendID = BackendID(i)
	cfg.Hello = true
	if cfg.Pollers == 0 {
		cfg.Pollers = 1 // several backends share two cores with the balancer and the client
	}
	return server.Start(cfg)
}

// stop ends the balancer, then the backends; it is the cleanup registered by Start.
func (r *Rig) stop() {
	if r.proc != nil {
		if err := r.proc.stop(); err != nil {
			r.t.Errorf("rig: %v", err)
		}
	}
	r.mu.Lock()
	bs := r.backends
	r.mu.Unlock()
	for _, s := range bs {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		_ = s.Shutdown(ctx)
		cancel()
	}
}

// errAddrInUse marks a balancer that could not bind its port.
var errAddrInUse = errors.New("address already in use")

// startBalancer renders the configuration, starts the balancer and waits until its ws port
// (and wss port) accepts connections.
func (r *Rig) startBalancer(bin, root string, p lbconf.Params) (*process, error) {
	var cfg bytes.Buffer
	if err := lbconf.Render(&cfg, filepath.Join(root, "scripts", "rig"), r.opts.LB, p); err != nil {
		return nil, err
	}
	name, _ := lbconf.TemplateName(r.opts.LB)
	cfgPath := filepath.Join(r.dir, strings.TrimSuffix(name, ".tmpl"))
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		return nil, err
	}
	var argv []string
	switch r.opts.LB {
	case lbconf.HAProxy:
		// -db: stay in the foreground, logs on stderr. No -W master: one process to stop.
		argv = []string{"-f", cfgPath, "-db"}
	case lbconf.Nginx:
		// -p and -e keep nginx away from /etc/nginx and /var/log/nginx even before it has
		// read the configuration.
		argv = []string{"-p", r.dir + "/", "-e", "stderr", "-c", cfgPath, "-g", "daemon off;"}
	}
	proc, err := startProcess(bin, argv)
	if err != nil {
		return nil, err
	}
	addrs := []string{p.Listen}
	if p.TLSListen != "" {
		addrs = append(addrs, p.TLSListen)
	}
	if err := proc.waitListening(addrs, startTimeout); err != nil {
		_ = proc.stop()
		out := proc.output()
		if strings.Contains(out, "Address already in use") {
			return nil, fmt.Errorf("%s: %w:\n%s", r.opts.LB, errAddrInUse, out)
		}
		return nil, fmt.Errorf("%s: %v; its output:\n%s\nconfiguration %s", r.opts.LB, err, out, cfgPath)
	}
	return proc, nil
}

// isAddrInUse reports a bind that failed because the port is taken. nbio may not wrap the
// listen error, so the message is checked too.
func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
