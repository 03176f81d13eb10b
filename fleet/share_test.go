package fleet

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wsload/wsload/engine/hostlimits"
)

func TestSources(t *testing.T) {
	ips := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	four := ips("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
	for _, tc := range []struct {
		name string
		ips  []netip.Addr
		i, n int
		want []netip.Addr
	}{
		{"none", nil, 1, 4, nil},
		{"one worker takes all", four, 1, 1, four},
		{"fewer than workers: all", four[:2], 2, 3, four[:2]},
		{"one each", four, 3, 4, ips("127.0.0.4")},
		{"disjoint pairs", four, 1, 2, ips("127.0.0.2", "127.0.0.4")},
		{"disjoint pairs 2", four, 2, 2, ips("127.0.0.3", "127.0.0.5")},
		{"uneven", four, 1, 3, ips("127.0.0.2", "127.0.0.5")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sources(tc.ips, tc.i, tc.n); !slices.Equal(got, tc.want) {
				t.Fatalf("Sources(%v, %d, %d) = %v, want %v", tc.ips, tc.i, tc.n, got, tc.want)
			}
		})
	}
	// With at least n addresses, the subsets are disjoint and cover all.
	seen := map[netip.Addr]int{}
	for i := 1; i <= 3; i++ {
		for _, a := range Sources(four, i, 3) {
			seen[a]++
		}
	}
	for _, a := range four {
		if seen[a] != 1 {
			t.Fatalf("address %v used by %d workers, want 1", a, seen[a])
		}
	}
}

func TestTarget(t *testing.T) {
	targets := []string{"ws://a/", "ws://b/"}
	got := []string{Target(targets, 1, 4), Target(targets, 2, 4), Target(targets, 3, 4), Target(targets, 4, 4)}
	if !slices.Equal(got, []string{"ws://a/", "ws://b/", "ws://a/", "ws://b/"}) {
		t.Fatalf("targets of 4 workers over 2 URLs: %v", got)
	}
}

func TestAutoProcs(t *testing.T) {
	host := func(soft uint64, open int) hostlimits.Host {
		return hostlimits.Host{FileSoft: soft, FileHard: soft, PortLow: 1024, PortHigh: 65535, OpenFiles: open}
	}
	for _, tc := range []struct {
		name    string
		h       hostlimits.Host
		need    hostlimits.Need
		want    int
		wantErr string
	}{
		{"fits one", host(20000, 10), hostlimits.Need{Connections: 1000}, 1, ""},
		{"this machine: 50k over 20k fds", host(20000, 10), hostlimits.Need{Connections: 50000, SourceIPs: 4}, 3, ""},
		{"just over one", host(20000, 10), hostlimits.Need{Connections: 19900}, 2, ""},
		{"1024 default", host(1024, 5), hostlimits.Need{Connections: 10000}, 11, ""},
		{"at least Procs", host(1<<20, 5), hostlimits.Need{Connections: 10, Procs: 4}, 4, ""},
		{"ports do not count", host(20000, 10), hostlimits.Need{Connections: 100000, Targets: 1}, 6, ""},
		{"extra fds per process", host(20000, 10), hostlimits.Need{Connections: 20000, ExtraFDsPerProc: 20000}, 0, "do not fit"},
		{"too small a limit", host(100, 10), hostlimits.Need{Connections: 1000000}, 0, "do not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AutoProcs(tc.h, tc.need)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("AutoProcs = %d, %v; want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("AutoProcs = %d, %v; want %d", got, err, tc.want)
			}
			// The answer is the fewest that fit: one fewer does not.
			n := tc.need
			n.Procs = got
			if err := hostlimits.Check(tc.h, n); err != nil && isFiles(err) {
				t.Fatalf("%d processes still exceed the open-file limit: %v", got, err)
			}
			if got > max(tc.need.Procs, 1) {
				n.Procs = got - 1
				if err := hostlimits.Check(tc.h, n); err == nil || !isFiles(err) {
					t.Fatalf("%d processes would have fit too: %v", got-1, err)
				}
			}
		})
	}
}

func isFiles(err error) bool {
	le, ok := err.(*hostlimits.LimitError)
	return ok && le.Has(hostlimits.OpenFiles)
}
