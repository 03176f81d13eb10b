package engine

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestConfigRefusesOutOfRange pins every numeric option's range check: each bad value is refused
// by New with a message that names it, before anything is allocated from it (a negative poller
// or handshake count used to panic in makeslice/makechan).
func TestConfigRefusesOutOfRange(t *testing.T) {
	base := func() Config {
		return Config{URL: "ws://127.0.0.1:1/", Connections: 1, Duration: time.Second}
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"pollers -1", func(c *Config) { c.Pollers = -1 }, "pollers"},
		{"pollers huge", func(c *Config) { c.Pollers = MaxPollers + 1 }, "pollers"},
		{"handshake concurrency -1", func(c *Config) { c.HandshakeConcurrency = -1 }, "handshake concurrency"},
		{"handshake concurrency huge", func(c *Config) { c.HandshakeConcurrency = math.MaxInt32 }, "handshake concurrency"},
		{"rate NaN", func(c *Config) { c.Rate = math.NaN() }, "message rate"},
		{"rate +Inf", func(c *Config) { c.Rate = math.Inf(1) }, "message rate"},
		{"connect rate NaN", func(c *Config) { c.ConnectRate = math.NaN() }, "connect rate"},
		{"connect rate -Inf", func(c *Config) { c.ConnectRate = math.Inf(-1) }, "connect rate"},
		{"size above the read limit", func(c *Config) { c.Size = 17 << 20 }, "raise it with --max-message-size"},
		{"size above a lowered read limit", func(c *Config) { c.Size, c.MaxMessageSize = 2000, 1000 }, "message size must be between 0 and 1000"},
		{"read limit negative", func(c *Config) { c.MaxMessageSize = -1 }, "message size limit"},
		{"read limit huge", func(c *Config) { c.MaxMessageSize = MaxMessageSizeLimit + 1 }, "message size limit"},
		{"size negative", func(c *Config) { c.Size = -5 }, "message size"},
		{"port 99999", func(c *Config) { c.URL = "ws://127.0.0.1:99999/" }, "port 99999"},
		{"port 0", func(c *Config) { c.URL = "ws://127.0.0.1:0/" }, "port 0"},
		{"interval negative", func(c *Config) { c.Interval = -time.Second }, "interval"},
		{"source address not on this host", func(c *Config) {
			c.SourceIPs = []netip.Addr{netip.MustParseAddr("192.0.2.7")} // TEST-NET-1: never assigned
		}, "not an address of this host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%s) = %v, want an error naming %q", tc.name, err, tc.want)
			}
		})
	}
	// A message above the default read limit is accepted with a higher one.
	c := base()
	c.Size, c.MaxMessageSize = 17<<20, 32<<20
	if e, err := New(c); err != nil || e.Config().MaxMessageSize != 32<<20 {
		t.Fatalf("a 17 MiB message with a 32 MiB limit: %v", err)
	}
	// Loopback source addresses other than 127.0.0.1 are valid without being on an interface.
	c = base()
	c.SourceIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}
	if _, err := New(c); err != nil {
		t.Fatalf("loopback source addresses refused: %v", err)
	}
}

// FuzzConfig: no combination of numeric options makes New panic; it accepts or names an error.
func FuzzConfig(f *testing.F) {
	f.Add(1, 0, 0, 0.0, 0.0, int64(time.Second), 0, "ws://127.0.0.1:1/")
	f.Add(-1, -1, -1, math.NaN(), math.Inf(1), int64(-1), -1, "ws://127.0.0.1:99999/")
	f.Add(1<<40, 1<<40, 1<<40, 1e300, -1e300, int64(math.MaxInt64), 1<<30, "wss://[::1]:8443/x")
	f.Fuzz(func(t *testing.T, conns, pollers, hsc int, rate, crate float64, dur int64, size int, url string) {
		c := Config{URL: url, Connections: conns, Pollers: pollers, HandshakeConcurrency: hsc,
			Rate: rate, ConnectRate: crate, Duration: time.Duration(dur), Size: size}
		e, err := New(c)
		if err == nil && e == nil {
			t.Fatalf("New returned neither an engine nor an error")
		}
	})
}
