package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestNumericFlagsRefused: out-of-range numbers are refused with exit 2 and a message naming
// them, never a panic, and before anything is dialed (the target is a closed port: a dial
// would have exited 1 with "refused").
func TestNumericFlagsRefused(t *testing.T) {
	closed := "ws://127.0.0.1:1/"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{closed, "--pollers", "-1"}, "pollers"},
		{[]string{closed, "--handshake-concurrency", "-1"}, "handshake concurrency"},
		{[]string{closed, "-r", "NaN"}, "message rate"},
		{[]string{closed, "-r", "+Inf"}, "message rate"},
		{[]string{closed, "--connect-rate", "NaN"}, "connect rate"},
		{[]string{closed, "--size", "20000000"}, "message size"},
		{[]string{"ws://127.0.0.1:99999/"}, "port 99999"},
		{[]string{closed, "--source-ips", "192.0.2.1"}, "not an address of this host"},
		{[]string{closed, "-c", "-3"}, "connections"},
		{[]string{closed, "-d", "-1s"}, "duration"},
	} {
		args := append([]string{"run", "-q"}, tc.args...)
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := dispatch(args, &out, &errb)
			if code != exitUsage || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "refused") {
				t.Fatalf("wsload %s: exit %d, stderr %q; want exit %d naming %q, before any dial", strings.Join(args, " "), code, errb.String(), exitUsage, tc.want)
			}
		})
	}
}
