package fleet

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/wsload/wsload/engine/hostlimits"
)

func TestShareCoversTheRangeExactly(t *testing.T) {
	for _, total := range []int{0, 1, 2, 7, 100, 50000, 99991} {
		for n := 1; n <= 17; n++ {
			next, lo, hi := 1000, total, 0
			for i := 1; i <= n; i++ {
				first, count := Share(1000, total, i, n)
				if first != next {
					t.Fatalf("Share(1000, %d, %d, %d) starts at %d, want %d (contiguous)", total, i, n, first, next)
				}
				next = first + count
				lo, hi = min(lo, count), max(hi, count)
			}
			if next != 1000+total {
				t.Fatalf("shares of %d over %d end at %d, want %d", total, n, next, 1000+total)
			}
			if hi-lo > 1 {
				t.Fatalf("shares of %d over %d range from %d to %d: want equal within 1", total, n, lo, hi)
			}
		}
	}
}

func TestShareTable(t *testing.T) {
	for _, tc := range []struct {
		first, count, i, n   int
		wantFirst, wantCount int
	}{
		{0, 10, 1, 3, 0, 4},
		{0, 10, 2, 3, 4, 3},
		{0, 10, 3, 3, 7, 3},
		{0, 50000, 4, 4, 37500, 12500},
		{12500, 12500, 2, 3, 16667, 4167}, // worker 2/3 of segment 2/4 of 50,000
		{0, 2, 3, 3, 2, 0},                // more shares than connections: an empty share
	} {
		f, c := Share(tc.first, tc.count, tc.i, tc.n)
		if f != tc.wantFirst || c != tc.wantCount {
			t.Fatalf("Share(%d, %d, %d, %d) = %d, %d; want %d, %d", tc.first, tc.count, tc.i, tc.n, f, c, tc.wantFirst, tc.wantCount)
		}
	}
}

func TestShareRateAddsUp(t *testing.T) {
	for _, tc := range []struct {
		rate  float64
		count int
		n     int
	}{{1000, 10, 3}, {2000, 50000, 4}, {1, 7, 7}, {0, 10, 2}} {
		var sum float64
		for i := 1; i <= tc.n; i++ {
			sum += ShareRate(tc.rate, tc.count, i, tc.n)
		}
		if d := sum - tc.rate; d > 1e-9 || d < -1e-9 {
			t.Fatalf("ShareRate parts of %v over %d workers add up to %v", tc.rate, tc.n, sum)
		}
	}
}

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
