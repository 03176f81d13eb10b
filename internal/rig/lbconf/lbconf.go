// Package lbconf renders the test rig's balancer configurations (HAProxy and nginx) from the
// Go text/template files in scripts/rig/. The shell rig (scripts/rig/start.sh, through the
// rigconf helper) and the Go tests (package internal/rig) both render through here, so the
// rig's HAProxy and nginx settings live in exactly one place each.
//
//	p := lbconf.Params{
//		Balance:  lbconf.LeastConn,
//		Listen:   "127.0.0.1:8080",
//		Backends: []lbconf.Backend{{Name: "b1", Addr: "127.0.0.1:9001"}, {Name: "b2", Addr: "127.0.0.1:9002"}},
//		Dir:      "/tmp/wsload-rig",
//	}
//	var cfg bytes.Buffer
//	err := lbconf.Render(&cfg, "scripts/rig", lbconf.HAProxy, p) // then: haproxy -f cfg -db
//
// Everything listens on and forwards to loopback addresses only: the rig is for measuring a
// balancer on one machine, and a config that could expose a load target is refused.
package lbconf

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Balancers the rig can run.
const (
	HAProxy = "haproxy"
	Nginx   = "nginx"
)

// Balance algorithms, spelled as HAProxy spells them; the nginx template maps LeastConn to
// least_conn and RoundRobin to nginx's default.
const (
	RoundRobin = "roundrobin"
	LeastConn  = "leastconn"
)

// Defaults filled in by Params.Validate. start.sh's flag defaults are these values.
const (
	// DefaultMaxConn is the cap on open client connections (HAProxy frontend maxconn, nginx
	// limit_conn). HAProxy's own default is 2000 per frontend, which a load test hits first.
	DefaultMaxConn = 100000
	// DefaultTunnelTimeout is how long an idle WebSocket may stay open through the balancer.
	DefaultTunnelTimeout      = time.Hour
	DefaultClientTimeout      = 30 * time.Second
	DefaultServerTimeout      = 30 * time.Second
	DefaultHTTPRequestTimeout = 10 * time.Second
	DefaultConnectTimeout     = 5 * time.Second
	// DefaultCheckInterval is HAProxy's health check interval and nginx's fail_timeout.
	DefaultCheckInterval = time.Second
)

// globalSlack is what HAProxy's global maxconn keeps above the frontend's: the stats page
// and connections being accepted while the frontend is full.
const globalSlack = 100

// fdSlack is what nginx's per-worker limits keep above two sockets per connection: listeners,
// the error log, connections to backends being retried.
const fdSlack = 256

// Backend is one server behind the balancer.
type Backend struct {
	Name string // HAProxy server name and the backend id (b1, b2, …)
	Addr string // loopback host:port
}

// Params is everything a template needs. Validate fills the zero fields with defaults.
type Params struct {
	Balance  string    // RoundRobin or LeastConn; "" means RoundRobin
	Listen   string    // ws listen address, loopback host:port
	Backends []Backend // at least one

	TLSListen   string // optional wss listen address; needs TLSPEM
	TLSPEM      string // PEM file with the certificate and its private key
	StatsListen string // optional HAProxy stats page address; nginx ignores it

	MaxConn int // open client connections the balancer accepts; default DefaultMaxConn
	// GlobalMaxConn is HAProxy's process-wide cap; default MaxConn plus a little.
	GlobalMaxConn int

	// Dir holds nginx's pid file and temp paths; an absolute path, required for nginx.
	Dir string
	// Workers is nginx's worker_processes; 0 means "auto" (one per core).
	Workers int
	// WorkerConnections and NoFile are nginx's per-worker connection and open-file limits;
	// default two sockets per allowed connection plus slack, as one worker may get them all.
	WorkerConnections, NoFile int

	TunnelTimeout      time.Duration // idle WebSocket after the upgrade
	ClientTimeout      time.Duration // HAProxy: idle client before the upgrade
	ServerTimeout      time.Duration // HAProxy: idle server before the upgrade
	HTTPRequestTimeout time.Duration // time to send the whole upgrade request
	ConnectTimeout     time.Duration // balancer → backend TCP connect
	CheckInterval      time.Duration // health check interval (HAProxy), fail_timeout (nginx)
}

// serverName is what HAProxy accepts as a server name, kept simple.
var serverName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Validate checks p for the balancer lb and fills in defaults. It is the one place rig
// parameters are checked; Render calls it.
func (p *Params) Validate(lb string) error {
	switch lb {
	case HAProxy, Nginx:
	default:
		return fmt.Errorf("lbconf: unknown balancer %q (want %s or %s)", lb, HAProxy, Nginx)
	}
	switch p.Balance {
	case "":
		p.Balance = RoundRobin
	case RoundRobin, LeastConn:
	default:
		return fmt.Errorf("lbconf: unknown balance %q (want %s or %s)", p.Balance, RoundRobin, LeastConn)
	}
	if err := checkLoopback("listen", p.Listen); err != nil {
		return err
	}
	if p.TLSListen != "" {
		if err := checkLoopback("TLS listen", p.TLSListen); err != nil {
			return err
		}
		if p.TLSPEM == "" {
			return fmt.Errorf("lbconf: TLS listen %s needs a PEM file with the certificate and key", p.TLSListen)
		}
	}
	if p.StatsListen != "" {
		if err := checkLoopback("stats listen", p.StatsListen); err != nil {
			return err
		}
	}
	if len(p.Backends) == 0 {
		return fmt.Errorf("lbconf: no backends")
	}
	names := make(map[string]bool, len(p.Backends))
	for _, b := range p.Backends {
		if !serverName.MatchString(b.Name) {
			return fmt.Errorf("lbconf: backend name %q: use letters, digits, '_', '.' and '-'", b.Name)
		}
		if names[b.Name] {
			return fmt.Errorf("lbconf: backend name %q is used twice", b.Name)
		}
		names[b.Name] = true
		if err := checkLoopback("backend "+b.Name, b.Addr); err != nil {
			return err
		}
	}
	if p.MaxConn < 0 || p.GlobalMaxConn < 0 || p.Workers < 0 || p.WorkerConnections < 0 || p.NoFile < 0 {
		return fmt.Errorf("lbconf: connection and file limits must not be negative")
	}
	if p.MaxConn == 0 {
		p.MaxConn = DefaultMaxConn
	}
	if p.GlobalMaxConn == 0 {
		p.GlobalMaxConn = p.MaxConn + globalSlack
	}
	if p.GlobalMaxConn < p.MaxConn {
		return fmt.Errorf("lbconf: global maxconn %d is below the frontend's %d: the frontend could never reach it", p.GlobalMaxConn, p.MaxConn)
	}
	if p.WorkerConnections == 0 {
		p.WorkerConnections = 2*p.MaxConn + fdSlack
	}
	if p.NoFile == 0 {
		p.NoFile = p.WorkerConnections + fdSlack
	}
	if lb == Nginx && !filepath.IsAbs(p.Dir) {
		return fmt.Errorf("lbconf: nginx needs an absolute run directory for its pid and temp files, got %q", p.Dir)
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"tunnel", &p.TunnelTimeout, DefaultTunnelTimeout},
		{"client", &p.ClientTimeout, DefaultClientTimeout},
		{"server", &p.ServerTimeout, DefaultServerTimeout},
		{"http-request", &p.HTTPRequestTimeout, DefaultHTTPRequestTimeout},
		{"connect", &p.ConnectTimeout, DefaultConnectTimeout},
		{"check interval", &p.CheckInterval, DefaultCheckInterval},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < time.Millisecond || *d.v%time.Millisecond != 0 {
			return fmt.Errorf("lbconf: %s timeout %v: use a whole number of milliseconds, at least 1ms", d.name, *d.v)
		}
	}
	return nil
}

// checkLoopback accepts host:port where host is a loopback IP literal (or "localhost").
func checkLoopback(what, hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("lbconf: %s address %q: want host:port, e.g. 127.0.0.1:8080", what, hostport)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("lbconf: %s address %q: port must be 1-65535", what, hostport)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("lbconf: %s address %q is not a loopback address: the rig stays on 127.0.0.0/8", what, hostport)
	}
	return nil
}

// TemplateName is the file in the template directory (scripts/rig) for balancer lb.
func TemplateName(lb string) (string, error) {
	switch lb {
	case HAProxy:
		return "haproxy.cfg.tmpl", nil
	case Nginx:
		return "nginx.conf.tmpl", nil
	}
	return "", fmt.Errorf("lbconf: unknown balancer %q (want %s or %s)", lb, HAProxy, Nginx)
}

// Render validates p for lb and writes the configuration rendered from lb's template in
// tmplDir (the repository's scripts/rig).
func Render(w io.Writer, tmplDir, lb string, p Params) error {
	if err := p.Validate(lb); err != nil {
		return err
	}
	name, err := TemplateName(lb)
	if err != nil {
		return err
	}
	path := filepath.Join(tmplDir, name)
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("lbconf: template: %w", err)
	}
	tmpl, err := template.New(name).Funcs(template.FuncMap{"dur": Duration, "secs": Seconds}).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return fmt.Errorf("lbconf: %s: %w", path, err)
	}
	if err := tmpl.Execute(w, p); err != nil {
		return fmt.Errorf("lbconf: %s: %w", path, err)
	}
	return nil
}

// Duration spells d in the largest unit that is exact (h, m, s or ms), which both HAProxy
// and nginx read: 1h, 90s, 1500ms. Validate has made every timeout a whole number of ms.
func Duration(d time.Duration) string {
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.unit == 0 {
			return strconv.FormatInt(int64(d/u.unit), 10) + u.name
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// Seconds spells d in whole seconds, rounded up, for the nginx settings that take nothing
// finer (fail_timeout): 500ms becomes 1s.
func Seconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10) + "s"
}

// ParseBackends reads "b1=127.0.0.1:9001,b2=127.0.0.1:9002" (the rigconf helper's --backends).
func ParseBackends(s string) ([]Backend, error) {
	var bs []Backend
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("lbconf: backend %q: want name=host:port, e.g. b1=127.0.0.1:9001", item)
		}
		bs = append(bs, Backend{Name: name, Addr: addr})
	}
	if len(bs) == 0 {
		return nil, fmt.Errorf("lbconf: no backends in %q", s)
	}
	return bs, nil
}
