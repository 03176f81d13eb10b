package lbconf

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/testenv"
	"github.com/wsload/wsload/server"
)

func twoBackends() []Backend {
	return []Backend{{Name: "b1", Addr: "127.0.0.1:9001"}, {Name: "b2", Addr: "127.0.0.1:9002"}}
}

func TestValidate(t *testing.T) {
	ok := func() Params { return Params{Listen: "127.0.0.1:8080", Backends: twoBackends(), Dir: "/tmp/rig"} }
	for _, tc := range []struct {
		name    string
		lb      string
		edit    func(*Params)
		wantErr string // "" = valid
	}{
		{"minimal haproxy", HAProxy, func(*Params) {}, ""},
		{"minimal nginx", Nginx, func(*Params) {}, ""},
		{"leastconn", HAProxy, func(p *Params) { p.Balance = LeastConn }, ""},
		{"localhost and 127.0.0.2", HAProxy, func(p *Params) { p.Listen = "localhost:80"; p.Backends[0].Addr = "127.0.0.2:1" }, ""},
		{"ipv6 loopback", HAProxy, func(p *Params) { p.Listen = "[::1]:8080" }, ""},
		{"unknown lb", "envoy", func(*Params) {}, `unknown balancer "envoy"`},
		{"unknown balance", HAProxy, func(p *Params) { p.Balance = "source" }, `unknown balance "source"`},
		{"listen not loopback", HAProxy, func(p *Params) { p.Listen = "0.0.0.0:8080" }, "not a loopback address"},
		{"listen hostname", HAProxy, func(p *Params) { p.Listen = "example.com:8080" }, "not a loopback address"},
		{"listen no port", HAProxy, func(p *Params) { p.Listen = "127.0.0.1" }, "want host:port"},
		{"listen port 0", HAProxy, func(p *Params) { p.Listen = "127.0.0.1:0" }, "port must be 1-65535"},
		{"backend not loopback", HAProxy, func(p *Params) { p.Backends[1].Addr = "10.0.0.1:9002" }, "backend b2"},
		{"no backends", HAProxy, func(p *Params) { p.Backends = nil }, "no backends"},
		{"duplicate name", HAProxy, func(p *Params) { p.Backends[1].Name = "b1" }, `"b1" is used twice`},
		{"bad name", HAProxy, func(p *Params) { p.Backends[0].Name = "b 1" }, `backend name "b 1"`},
		{"tls without pem", HAProxy, func(p *Params) { p.TLSListen = "127.0.0.1:8443" }, "needs a PEM file"},
		{"stats not loopback", HAProxy, func(p *Params) { p.StatsListen = "[::]:8404" }, "stats listen"},
		{"negative maxconn", HAProxy, func(p *Params) { p.MaxConn = -1 }, "must not be negative"},
		{"global below frontend", HAProxy, func(p *Params) { p.MaxConn = 500; p.GlobalMaxConn = 100 }, "below the frontend's 500"},
		{"nginx relative dir", Nginx, func(p *Params) { p.Dir = "rig" }, "absolute run directory"},
		{"haproxy needs no dir", HAProxy, func(p *Params) { p.Dir = "" }, ""},
		{"sub-ms timeout", HAProxy, func(p *Params) { p.TunnelTimeout = 1500 * time.Microsecond }, "tunnel timeout 1.5ms"},
		{"negative timeout", HAProxy, func(p *Params) { p.ConnectTimeout = -time.Second }, "connect timeout -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ok()
			tc.edit(&p)
			err := p.Validate(tc.lb)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate error %v, want one containing %q", err, tc.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "lbconf: "):
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestValidateDefaults(t *testing.T) {
	p := Params{Listen: "127.0.0.1:8080", Backends: twoBackends(), MaxConn: 1000}
	if err := p.Validate(HAProxy); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Params{
		Balance: RoundRobin, Listen: p.Listen, Backends: p.Backends,
		MaxConn: 1000, GlobalMaxConn: 1000 + globalSlack,
		WorkerConnections: 2*1000 + fdSlack, NoFile: 2*1000 + 2*fdSlack,
		TunnelTimeout: DefaultTunnelTimeout, ClientTimeout: DefaultClientTimeout, ServerTimeout: DefaultServerTimeout,
		HTTPRequestTimeout: DefaultHTTPRequestTimeout, ConnectTimeout: DefaultConnectTimeout, CheckInterval: DefaultCheckInterval,
	}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", p, want)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d         time.Duration
		dur, secs string
	}{
		{time.Hour, "1h", "3600s"},
		{90 * time.Minute, "90m", "5400s"},
		{90 * time.Second, "90s", "90s"},
		{1500 * time.Millisecond, "1500ms", "2s"},
		{500 * time.Millisecond, "500ms", "1s"},
		{time.Millisecond, "1ms", "1s"},
		{2 * time.Second, "2s", "2s"},
	} {
		if got := Duration(tc.d); got != tc.dur {
			t.Fatalf("Duration(%v) = %q, want %q", tc.d, got, tc.dur)
		}
		if got := Seconds(tc.d); got != tc.secs {
			t.Fatalf("Seconds(%v) = %q, want %q", tc.d, got, tc.secs)
		}
	}
}

func TestParseBackends(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Backend
		wantErr string
	}{
		{"b1=127.0.0.1:9001", []Backend{{"b1", "127.0.0.1:9001"}}, ""},
		{" b1=127.0.0.1:9001, b2=127.0.0.1:9002 ,", twoBackends(), ""},
		{"", nil, "no backends"},
		{"127.0.0.1:9001", nil, "want name=host:port"},
		{"b1=", nil, "want name=host:port"},
	} {
		got, err := ParseBackends(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseBackends(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("ParseBackends(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestRender renders every template and algorithm and has the real balancer check the
// result (haproxy -c, nginx -t), then checks the settings WebSocket traffic depends on.
func TestRender(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	tmplDir := filepath.Join(root, "scripts", "rig")
	for _, tc := range []struct {
		lb, balance string
		want        []string // lines (trimmed) the configuration must contain
		notWant     []string
	}{
		{HAProxy, RoundRobin, []string{
			"maxconn 700", "maxconn 600", "balance roundrobin", "timeout tunnel 1h", "timeout http-request 10s",
			"timeout client 30s", "timeout server 30s", "no option http-server-close",
			"default-server check inter 1s fall 2 rise 1",
			"bind 127.0.0.1:18080", "bind 127.0.0.1:18443 ssl crt PEM",
			"server b1 127.0.0.1:9001", "server b2 127.0.0.1:9002", "bind 127.0.0.1:18404",
		}, []string{"option http-server-close"}},
		{HAProxy, LeastConn, []string{"balance leastconn"}, []string{"balance roundrobin"}},
		{Nginx, RoundRobin, []string{
			"proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
			"proxy_set_header Connection $connection_upgrade;", "proxy_read_timeout 1h;",
			"listen 127.0.0.1:18080;", "listen 127.0.0.1:18443 ssl;", "limit_conn rigconns 600;",
			"server 127.0.0.1:9001 max_fails=1 fail_timeout=1s; # b1", "zone wsload 64k;",
			"worker_connections 1456;",
		}, []string{"least_conn;"}},
		{Nginx, LeastConn, []string{"least_conn;"}, nil},
	} {
		t.Run(tc.lb+"/"+tc.balance, func(t *testing.T) {
			dir := t.TempDir()
			pem := filepath.Join(dir, "PEM")
			p := Params{
				Balance: tc.balance, Listen: "127.0.0.1:18080", TLSListen: "127.0.0.1:18443", TLSPEM: pem,
				StatsListen: "127.0.0.1:18404", Backends: twoBackends(), MaxConn: 600, GlobalMaxConn: 700, Dir: dir,
			}
			var buf bytes.Buffer
			if err := Render(&buf, tmplDir, tc.lb, p); err != nil {
				t.Fatalf("Render: %v", err)
			}
			cfg := buf.String()
			lines := map[string]bool{}
			for _, l := range strings.Split(cfg, "\n") {
				lines[strings.TrimSpace(l)] = true
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "PEM", pem)
				if !lines[w] {
					t.Fatalf("configuration lacks %q:\n%s", w, cfg)
				}
			}
			for _, nw := range tc.notWant {
				if lines[nw] {
					t.Fatalf("configuration has %q:\n%s", nw, cfg)
				}
			}
			checkWithBinary(t, tc.lb, dir, pem, cfg)
		})
	}
}

// checkWithBinary has haproxy or nginx parse cfg, with a real certificate at pem.
func checkWithBinary(t *testing.T, lb, dir, pem, cfg string) {
	t.Helper()
	bin, err := exec.LookPath(lb)
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/" + lb); serr != nil {
			t.Fatalf("%s is not installed: run ./scripts/test.sh (installs haproxy/nginx)", lb)
		}
		bin = "/usr/sbin/" + lb
	}
	cert, key, err := server.SelfSigned()
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := os.WriteFile(pem, append(cert, key...), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	path := filepath.Join(dir, lb+".conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	var cmd *exec.Cmd
	if lb == HAProxy {
		cmd = exec.Command(bin, "-c", "-f", path)
	} else {
		cmd = exec.Command(bin, "-t", "-q", "-p", dir+"/", "-e", "stderr", "-c", path)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s rejects the configuration (%v):\n%s\n%s", lb, err, out, cfg)
	}
}
