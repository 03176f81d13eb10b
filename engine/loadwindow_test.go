package engine

import (
	"math"
	"testing"
	"time"

	"github.com/wsload/wsload/internal/hostile"
)

// One reply lost out of a few hundred must not divide the run's rates by the drain: before,
// the run waited the reply timeout for it after its load and reported sent/s and received/s
// over load + drain (a 100 msg/s run showed 33.1/s). Rates are over the load window; the drain
// and the close are reported apart, and the lost reply is one timeout.
func TestRatesAreOverTheLoadWindow(t *testing.T) {
	const replyTimeout = 3 * time.Second
	url := hostile.Start(t, hostile.Mode{Kind: hostile.DropEcho, N: 5})
	r, _ := runEcho(t, Config{URL: url, Connections: 2, Rate: 100, Duration: 2 * time.Second, ReplyTimeout: replyTimeout}, echoWait{})
	m := r.Messages
	if m.Sent == 0 || m.TimedOut != 2 || m.Received != m.Sent-2 {
		t.Fatalf("messages %+v: want every message answered but the one dropped on each connection", m)
	}
	if r.LoadS <= 0 || r.DrainS < replyTimeout.Seconds() || r.LoadS+r.DrainS > r.DurationS+0.001 {
		t.Fatalf("load %.3fs, drain %.3fs, close %.3fs of %.3fs: want the drain to have waited the %v reply timeout, apart from the load",
			r.LoadS, r.DrainS, r.CloseS, r.DurationS, replyTimeout)
	}
	if got, want := m.SentPerS, float64(m.Sent)/r.LoadS; math.Abs(got-want) > 1e-9*want {
		t.Fatalf("sent/s %.3f, want sent over the load window %.3f (over the whole duration: %.3f)", got, want, float64(m.Sent)/r.DurationS)
	}
	if got, want := m.ReceivedPerS, float64(m.Received)/r.LoadS; math.Abs(got-want) > 1e-9*want {
		t.Fatalf("received/s %.3f, want %.3f", got, want)
	}
}
