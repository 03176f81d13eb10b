package engine

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxSourceIPs bounds a source address range, so a typo such as
// 127.0.0.1-127.255.0.0 fails fast instead of allocating millions.
const MaxSourceIPs = 65536

// ParseSourceIPs parses a comma-separated list of local addresses and
// inclusive ranges, e.g. "127.0.0.2-127.0.0.9,127.0.1.1".
func ParseSourceIPs(spec string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil {
			return nil, fmt.Errorf("engine: source address %q: not an IP address", lo)
		}
		last := first
		if isRange {
			if last, err = netip.ParseAddr(strings.TrimSpace(hi)); err != nil {
				return nil, fmt.Errorf("engine: source range %q: %q is not an IP address", part, hi)
			}
			if first.Is4() != last.Is4() {
				return nil, fmt.Errorf("engine: source range %q mixes IPv4 and IPv6", part)
			}
			if last.Less(first) {
				return nil, fmt.Errorf("engine: source range %q ends before it starts", part)
			}
		}
		for a := first; ; a = a.Next() {
			out = append(out, a)
			if len(out) > MaxSourceIPs {
				return nil, fmt.Errorf("engine: more than %d source addresses in %q", MaxSourceIPs, spec)
			}
			if a == last {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("engine: no source address in %q", spec)
	}
	return out, nil
}
