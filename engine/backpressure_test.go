package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/hostile"
	"github.com/wsload/wsload/stats"
)

// Against a server that stops reading, a connection's unsent bytes are bounded by
// MaxWriteBuffer: past it the connection is closed and counted as backpressure (one bucket,
// with an example that says what happened), instead of wsload's memory growing without bound
// and the run saying "Errors none".
func TestBackpressureClosesAConnectionTheServerStoppedReading(t *testing.T) {
	const conns = 3
	// A short reply timeout: the drain after the run has nothing to wait for.
	cfg := Config{URL: hostile.Start(t, hostile.Mode{Kind: hostile.StopReading}), Connections: conns, Rate: 2000, Size: 16 << 10, MaxWriteBuffer: 256 << 10, Pollers: 1, ReplyTimeout: 2 * time.Second}
	r, eng := runEcho(t, cfg, echoWait{until: func(tot *stats.Interval) bool { return tot.Errors["backpressure"] == conns }})
	if r.Errors["backpressure"] != conns || r.Connections.Established != conns {
		t.Fatalf("errors %v, connections %+v: want every connection closed for backpressure", r.Errors, r.Connections)
	}
	if r.Messages.Received != 0 {
		t.Fatalf("received %d replies from a server that never writes", r.Messages.Received)
	}
	if s := eng.SampleErrors()["backpressure"]; !strings.Contains(s, "stopped reading") || !strings.Contains(s, "--max-write-buffer") {
		t.Fatalf("backpressure example %q does not say what happened", s)
	}
	if r.Config.MaxWriteBuffer != 256<<10 {
		t.Fatalf("config block records max_write_buffer %d", r.Config.MaxWriteBuffer)
	}
}
