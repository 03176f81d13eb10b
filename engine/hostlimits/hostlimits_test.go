package hostlimits

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// host is a machine like this project's CI: 20000 open files, the default port range.
var host = Host{FileSoft: 20000, FileHard: 20000, PortLow: 32768, PortHigh: 60999, OpenFiles: 10}

func TestCheck(t *testing.T) {
	big := Host{FileSoft: 1 << 20, FileHard: 1 << 20, PortLow: 32768, PortHigh: 60999, OpenFiles: 10}
	tests := []struct {
		name string
		host Host
		need Need
		// exceeded lists the limits hit, in order; nil means Check returns nil.
		exceeded []Limit
		// needs and haves are the Need and Have of each exceeded limit.
		needs, haves []uint64
		// words must all appear in the error message, notWords none.
		words, notWords []string
	}{
		{name: "fits", host: host, need: Need{Connections: 10000, Targets: 1}},
		{name: "no connections", host: Host{}, need: Need{}},
		{
			// 19000 + 64 + 190 + 10 open = 19264 of 20000.
			name: "fits just under the fd limit", host: host, need: Need{Connections: 19000, Targets: 1},
		},
		{
			// 50000 conns + 64 + 500 margin + 10 open = 50574.
			name: "fd limit exceeded", host: host, need: Need{Connections: 50000, Targets: 2},
			exceeded: []Limit{OpenFiles}, needs: []uint64{50574}, haves: []uint64{20000},
			words: []string{"50000 connections", "open files: need 50574 per process, available 20000",
				"ulimit -n 50574", "LimitNOFILE", "/etc/security/limits.conf", "--procs 3", "--segment"},
		},
		{
			name: "soft below hard", host: Host{FileSoft: 1024, FileHard: 1 << 20, OpenFiles: 3},
			need:     Need{Connections: 5000},
			exceeded: []Limit{OpenFiles}, needs: []uint64{5000 + 64 + 50 + 3}, haves: []uint64{1024},
			words: []string{"the hard limit allows it", "ulimit -n 1048576"},
		},
		{
			name: "ports exceeded with one source", host: big, need: Need{Connections: 100000, Targets: 1, SourceIPs: 1},
			exceeded: []Limit{EphemeralPorts}, needs: []uint64{100000}, haves: []uint64{28232},
			words: []string{"ephemeral ports: need 100000 per (source IP, target) pair, available 28232",
				"32768-60999", "at least 4 local addresses with --source-ips", `ip_local_port_range="1024 65535" (then 2 source addresses suffice)`, "--segment"},
		},
		{name: "ports fit with four sources", host: big, need: Need{Connections: 100000, Targets: 1, SourceIPs: 4}},
		{name: "ports fit with four targets", host: big, need: Need{Connections: 100000, Targets: 4}},
		{
			// Processes share the host's ports: four of them fit the fds but not the ports.
			name: "procs do not add ports", host: Host{FileSoft: 30000, FileHard: 30000, OpenFiles: 10},
			need:     Need{Connections: 100000, Targets: 1, Procs: 4},
			exceeded: []Limit{EphemeralPorts}, needs: []uint64{100000}, haves: []uint64{28232},
			words: []string{"more --procs does not help"},
		},
		{
			name: "wider range no longer suggested once wide", host: Host{FileSoft: 1 << 20, PortLow: 1024, PortHigh: 65535},
			need:     Need{Connections: 200000, Targets: 1},
			exceeded: []Limit{EphemeralPorts}, needs: []uint64{200000}, haves: []uint64{64512},
			words: []string{"at least 4 local addresses"}, notWords: []string{"ip_local_port_range="},
		},
		{name: "connections split over procs", host: host, need: Need{Connections: 60000, Targets: 4, Procs: 4}},
		{name: "client side alone fits", host: host, need: Need{Connections: 10000, Targets: 1}},
		{
			// An in-process target holds the accepted side of every connection too.
			name: "in-process target doubles the fds", host: host, need: Need{Connections: 10000, Targets: 1, ExtraFDsPerProc: 10000},
			exceeded: []Limit{OpenFiles}, needs: []uint64{20000 + 64 + 200 + 10}, haves: []uint64{20000},
			words: []string{"open files: need 20274 per process"}, notWords: []string{"ephemeral ports"},
		},
		{
			name: "both limits", host: host, need: Need{Connections: 100000, Targets: 1},
			exceeded: []Limit{OpenFiles, EphemeralPorts}, needs: []uint64{101074, 100000}, haves: []uint64{20000, 28232},
			words: []string{"open files", "ephemeral ports", "--procs 6"},
		},
		{
			name: "fixed extra fds leave no room for any process count", host: Host{FileSoft: 1000, FileHard: 1000},
			need:     Need{Connections: 100, Targets: 1, ExtraFDsPerProc: 2000},
			exceeded: []Limit{OpenFiles}, needs: []uint64{2100 + 64 + 21}, haves: []uint64{1000},
			notWords: []string{"--procs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.host, tt.need)
			if tt.exceeded == nil {
				if err != nil {
					t.Fatalf("Check(%+v, %+v) = %v, want nil", tt.host, tt.need, err)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("Check(%+v, %+v) = %v, want a *LimitError", tt.host, tt.need, err)
			}
			if len(le.Exceeded) != len(tt.exceeded) {
				t.Fatalf("exceeded %+v, want limits %v", le.Exceeded, tt.exceeded)
			}
			for i, x := range le.Exceeded {
				if x.Limit != tt.exceeded[i] || x.Need != tt.needs[i] || x.Have != tt.haves[i] {
					t.Fatalf("exceeded[%d] = %s need %d have %d, want %s need %d have %d",
						i, x.Limit, x.Need, x.Have, tt.exceeded[i], tt.needs[i], tt.haves[i])
				}
				if !le.Has(x.Limit) {
					t.Fatalf("Has(%s) = false for an exceeded limit", x.Limit)
				}
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "hostlimits: ") || strings.Count(msg, "\n") < 3 {
				t.Fatalf("message is not a several-line hostlimits error:\n%s", msg)
			}
			for _, w := range tt.words {
				if !strings.Contains(msg, w) {
					t.Fatalf("message lacks %q:\n%s", w, msg)
				}
			}
			for _, w := range tt.notWords {
				if strings.Contains(msg, w) {
					t.Fatalf("message has %q:\n%s", w, msg)
				}
			}
		})
	}
}

func TestCheckSuggestedProcsFit(t *testing.T) {
	// The --procs remedy must be the smallest count that passes Check's own fd rule.
	need := Need{Connections: 50000, Targets: 2}
	p := procsFor(host, need)
	if p < 2 {
		t.Fatalf("procsFor = %d, want at least 2", p)
	}
	fits := func(procs int) bool {
		n := need
		n.Procs = procs
		var le *LimitError
		return !errors.As(Check(host, n), &le) || !le.Has(OpenFiles)
	}
	if !fits(p) || fits(p-1) {
		t.Fatalf("procsFor = %d: fits(%d) = %v, fits(%d) = %v; want the smallest count that fits", p, p, fits(p), p-1, fits(p-1))
	}
}

func TestCheckRejectsNegative(t *testing.T) {
	for _, n := range []Need{{Connections: -1}, {Connections: 1, Procs: -2}, {Connections: 1, ExtraFDsPerProc: -1}} {
		err := Check(host, n)
		var le *LimitError
		if err == nil || errors.As(err, &le) {
			t.Fatalf("Check(%+v) = %v, want a plain error", n, err)
		}
	}
}

func TestParsePortRange(t *testing.T) {
	tests := []struct {
		in        string
		low, high int
		wantErr   bool
	}{
		{"32768\t60999\n", 32768, 60999, false},
		{"1024 65535", 1024, 65535, false},
		{"40000 40000\n", 40000, 40000, false},
		{"60999 32768", 0, 0, true},
		{"0 100", 0, 0, true},
		{"1024 70000", 0, 0, true},
		{"1024", 0, 0, true},
		{"", 0, 0, true},
		{"a b", 0, 0, true},
	}
	for _, tt := range tests {
		low, high, err := parsePortRange(tt.in)
		if (err != nil) != tt.wantErr || low != tt.low || high != tt.high {
			t.Fatalf("parsePortRange(%q) = %d, %d, %v; want %d, %d, error %v", tt.in, low, high, err, tt.low, tt.high, tt.wantErr)
		}
	}
}

func TestReadAndRaise(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := Read(); err == nil {
			t.Fatalf("Read on %s: want an unsupported error", runtime.GOOS)
		}
		return
	}
	soft, hard, err := RaiseFileLimit()
	if err != nil {
		t.Fatalf("RaiseFileLimit: %v", err)
	}
	if soft != hard || soft == 0 {
		t.Fatalf("RaiseFileLimit = %d, %d; want soft raised to hard", soft, hard)
	}
	h, err := Read()
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if h.FileSoft != soft || h.FileHard != hard {
		t.Fatalf("Read limits %d/%d, RaiseFileLimit said %d/%d", h.FileSoft, h.FileHard, soft, hard)
	}
	if h.PortLow < 1 || h.PortLow > h.PortHigh || h.PortHigh > 65535 {
		t.Fatalf("Read port range %d-%d", h.PortLow, h.PortHigh)
	}
	// Opening files must show in OpenFiles one for one.
	const extra = 3
	dir := t.TempDir()
	var files []*os.File
	for i := range extra {
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))))
		if err != nil {
			t.Fatalf("%v", err)
		}
		files = append(files, f)
	}
	h2, err := Read()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if h2.OpenFiles != h.OpenFiles+extra {
		t.Fatalf("OpenFiles went from %d to %d after opening %d files", h.OpenFiles, h2.OpenFiles, extra)
	}
}
