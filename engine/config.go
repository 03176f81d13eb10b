package engine

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/wsload/wsload/engine/wsproto"
	"github.com/wsload/wsload/scenario"
	"github.com/wsload/wsload/stats"
)

// Defaults shared with the command line, so flag defaults cannot drift from
// what the engine does when a field is left zero.
const (
	DefaultConnections          = 100
	DefaultDuration             = 10 * time.Second
	DefaultRate                 = 10.0
	DefaultSize                 = 64
	DefaultHandshakeTimeout     = 10 * time.Second
	DefaultReplyTimeout         = 10 * time.Second
	DefaultHandshakeConcurrency = 256
	DefaultCloseTimeout         = 2 * time.Second
	DefaultInterval             = time.Second
)

// Config is everything one load-generating process needs. New validates it
// and fills defaults; zero values mean "default" except where noted.
type Config struct {
	URL         string // ws:// or wss:// target
	Connections int    // concurrent connections to open and hold
	// FirstID and TotalConnections number this process's connections within
	// a run spread over processes or machines (connection ids FirstID …
	// FirstID+Connections-1 of TotalConnections), so the send grid spreads
	// evenly over all of them. Zero values: this process is the whole run.
	FirstID          int
	TotalConnections int
	// PlanSlot and PlanSlots spread a scenario run over processes or
	// machines (Plan set, PlanSlots > 1): this process is slot PlanSlot
	// (0 <= PlanSlot < PlanSlots) and runs its share of every connections
	// phase and of every arrivals phase: of n connections wanted in all, the
	// slot takes n/PlanSlots, plus one when PlanSlot < n%PlanSlots, so the
	// slots' shares add up to n at every instant. Its j-th connection is
	// numbered PlanSlot + j*PlanSlots: the slots together number their
	// connections as one process would (the same ids, hence the same flows
	// and data rows). Slot s of a segment's worker w splits further as slot
	// s + w*PlanSlots of PlanSlots*workers. FirstID and TotalConnections do
	// not apply to plans.
	PlanSlot, PlanSlots int
	// StartAt, when set, makes Run wait until then before dialing, so the
	// workers of a multi-machine run start together.
	StartAt     time.Time
	ConnectRate float64 // new connections per second; 0 = as fast as the target accepts

	// HandshakeConcurrency bounds the handshakes in flight (TCP connect, TLS,
	// waiting for the 101), whatever the connect rate.
	HandshakeConcurrency int

	// SendAfterRamp holds every message back until the ramp is over: every
	// requested connection established or failed (or the ramp stopped at
	// fd_limit). From then on the schedule is the open model as usual. Echo
	// runs only (a scenario's phases say when its flows start).
	SendAfterRamp bool

	Duration time.Duration // whole run, ramp included; the run stops by itself

	// Rate is messages per second per connection (open model: sends follow the
	// schedule whether or not replies came). 0 holds connections open and idle.
	Rate   float64
	Size   int  // message payload bytes
	Binary bool // binary frames instead of text

	Header       http.Header // extra upgrade request headers (-H)
	Origin       string
	Subprotocols []string
	Compression  bool // offer permessage-deflate
	InsecureTLS  bool // skip certificate verification for wss

	// BackendFrom tells the backends behind a balancer apart (ParseBackendFrom),
	// so results split by backend. Zero: no per-backend breakdown.
	BackendFrom BackendFrom

	HandshakeTimeout time.Duration // TCP connect + TLS + upgrade
	ReplyTimeout     time.Duration // after this a message without reply counts as timed out
	CloseTimeout     time.Duration // how long to wait for close handshakes at the end

	SourceIPs []netip.Addr // local addresses to spread connections over (round robin)
	Pollers   int          // nbio event loops; default GOMAXPROCS

	// ExtraFDs is the number of file descriptors this process needs besides
	// its own connections, e.g. the accepted side of an in-process target.
	ExtraFDs int

	// Interval is how often the recorder is rotated into a stats.Interval and
	// handed to OnInterval. Default one second.
	Interval time.Duration
	// OnInterval receives every interval in order, from one goroutine, the
	// last one (shorter) when the run ends.
	OnInterval func(iv *stats.Interval)

	// Plan, when set, runs a scenario instead of the built-in echo flow: its
	// phases decide how many connections are open over time and its flows
	// what each connection does (flow.go, control.go). Plan.Override must
	// have been applied. Left zero, URL, Connections and Duration are taken
	// from the plan (Connections: its estimated peak, for the pre-flight
	// check); Rate, Size, Binary and ConnectRate do not apply. Subprotocols,
	// Compression, InsecureTLS and Header add to the plan's.
	Plan *scenario.Plan
}

// validate checks the configuration and fills in defaults. It is the one
// place options are checked.
func (c *Config) validate() (*url.URL, error) {
	if err := c.fromPlan(); err != nil {
		return nil, err
	}
	if c.URL == "" {
		return nil, errors.New("engine: no target URL")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("engine: target %q: %v", c.URL, err)
	}
	switch u.Scheme {
	case "ws", "wss":
	default:
		return nil, fmt.Errorf("engine: target %q: scheme must be ws:// or wss://", c.URL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("engine: target %q has no host", c.URL)
	}
	if c.Connections <= 0 {
		return nil, fmt.Errorf("engine: connections must be at least 1, got %d", c.Connections)
	}
	if c.Connections > 1<<31-1 {
		return nil, fmt.Errorf("engine: %d connections is more than one process can number", c.Connections)
	}
	if c.TotalConnections == 0 {
		c.TotalConnections = c.FirstID + c.Connections
	}
	if c.FirstID < 0 || c.FirstID+c.Connections > c.TotalConnections || c.TotalConnections > 1<<31-1 {
		return nil, fmt.Errorf("engine: connections %d…%d do not fit a run of %d", c.FirstID, c.FirstID+c.Connections-1, c.TotalConnections)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("engine: target %q: port %s is not between 1 and 65535", c.URL, port)
		}
	}
	if c.ConnectRate < 0 || math.IsNaN(c.ConnectRate) || math.IsInf(c.ConnectRate, 0) {
		return nil, fmt.Errorf("engine: connect rate must be a finite number, 0 or more, got %v", c.ConnectRate)
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return nil, fmt.Errorf("engine: message rate must be a finite number, 0 or more, got %v", c.Rate)
	}
	if c.SendAfterRamp && c.Plan != nil {
		return nil, errors.New("engine: send after ramp applies to echo runs; a scenario's phases and flows say when messages start")
	}
	if c.Pollers < 0 || c.Pollers > MaxPollers {
		return nil, fmt.Errorf("engine: pollers must be between 0 (one per CPU) and %d, got %d", MaxPollers, c.Pollers)
	}
	if c.HandshakeConcurrency < 0 || c.HandshakeConcurrency > MaxHandshakeConcurrency {
		return nil, fmt.Errorf("engine: handshake concurrency must be between 1 and %d (0 = the default, %d), got %d", MaxHandshakeConcurrency, DefaultHandshakeConcurrency, c.HandshakeConcurrency)
	}
	if c.Size < 0 || c.Size > wsproto.DefaultMaxMessageSize {
		return nil, fmt.Errorf("engine: message size must be between 0 and %d bytes (the read limit for the echoed reply), got %d", wsproto.DefaultMaxMessageSize, c.Size)
	}
	if c.Interval < 0 {
		return nil, fmt.Errorf("engine: interval must not be negative, got %v", c.Interval)
	}
	if c.Plan != nil {
		c.Rate = 0 // the flows send; no echo grid
	}
	if c.PlanSlots < 0 || c.PlanSlot < 0 || (c.PlanSlots > 0 && c.PlanSlot >= c.PlanSlots) || (c.PlanSlots > 1 && c.Plan == nil) {
		return nil, fmt.Errorf("engine: plan slot %d of %d: want 0 <= slot < slots, and a scenario plan", c.PlanSlot, c.PlanSlots)
	}
	if c.Duration <= 0 {
		return nil, fmt.Errorf("engine: duration must be positive, got %v", c.Duration)
	}
	setDefault(&c.HandshakeConcurrency, DefaultHandshakeConcurrency)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.ReplyTimeout, DefaultReplyTimeout)
	setDefault(&c.CloseTimeout, DefaultCloseTimeout)
	setDefault(&c.Interval, DefaultInterval)
	setDefault(&c.Pollers, runtime.GOMAXPROCS(0))
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if err := (scenario.Echo{Size: c.Size, Binary: c.Binary}).Validate(); err != nil {
		return nil, fmt.Errorf("engine: %v (use --size %d or more)", err, (scenario.Echo{Binary: c.Binary}).HeaderSize())
	}
	if c.HandshakeTimeout < 0 || c.ReplyTimeout < 0 || c.CloseTimeout < 0 {
		return nil, errors.New("engine: timeouts must not be negative")
	}
	req := wsproto.Request{URL: u, Header: c.Header, Origin: c.Origin, Subprotocols: c.Subprotocols, Compression: c.Compression}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %v", err)
	}
	if err := c.BackendFrom.validate(); err != nil {
		return nil, err
	}
	for _, ip := range c.SourceIPs {
		if !ip.IsValid() {
			return nil, errors.New("engine: invalid source address")
		}
		if err := localAddress(ip); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// MaxPollers bounds Config.Pollers: beyond a few per core event loops only add scheduling.
const MaxPollers = 1024

// MaxHandshakeConcurrency bounds Config.HandshakeConcurrency (each handshake in flight holds a
// dialing goroutine until its TCP connect and TLS are done).
const MaxHandshakeConcurrency = 1 << 16

// localAddress refuses a source address this host cannot bind: any loopback address (the whole
// 127.0.0.0/8 and ::1) binds; another must be assigned to one of its interfaces. Without the
// check every dial fails with "cannot assign requested address", which reads as port exhaustion.
func localAddress(ip netip.Addr) error {
	if ip.IsLoopback() {
		return nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("engine: source address %s: listing this host's addresses: %w", ip, err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip.Unmap() {
			return nil
		}
	}
	return fmt.Errorf("engine: source address %s is not an address of this host (hint: loopback 127.0.0.x always is; list yours with 'ip -brief addr')", ip)
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// fromPlan fills URL, Connections, Duration and the handshake options from
// the plan, when there is one.
func (c *Config) fromPlan() error {
	p := c.Plan
	if p == nil {
		return nil
	}
	if len(p.Flows) == 0 || len(p.Phases) == 0 {
		return errors.New("engine: the scenario plan has no flows or no phases (apply Plan.Override first)")
	}
	if c.URL == "" {
		c.URL = p.Target
	}
	if c.Connections == 0 {
		c.Connections = max(p.Estimate().PeakConnections, 1)
	}
	if c.Duration == 0 {
		c.Duration = p.Duration()
	}
	for _, sp := range p.Subprotocols {
		if !slices.Contains(c.Subprotocols, sp) {
			c.Subprotocols = append(slices.Clip(c.Subprotocols), sp) // never into the caller's array
		}
	}
	c.Compression = c.Compression || p.Compression
	c.InsecureTLS = c.InsecureTLS || p.TLS.Insecure
	return nil
}

// Stats describes the configuration in a result (header values that look
// like secrets redacted). Called on a validated configuration
// ((*Engine).Config), it reports the values the run used, defaults included.
func (c Config) Stats() stats.Config {
	src := make([]string, len(c.SourceIPs))
	for i, ip := range c.SourceIPs {
		src[i] = ip.String()
	}
	return stats.Config{
		Connections:          c.Connections,
		ConnectRate:          c.ConnectRate,
		Rate:                 c.Rate,
		Size:                 c.Size,
		Binary:               c.Binary,
		DurationS:            c.Duration.Seconds(),
		SourceIPs:            src,
		Headers:              stats.RedactHeaders(c.Header),
		Subprotocols:         c.Subprotocols,
		HandshakeTimeoutS:    c.HandshakeTimeout.Seconds(),
		HandshakeConcurrency: c.HandshakeConcurrency,
		SendAfterRamp:        c.SendAfterRamp,
		ReplyTimeoutS:        c.ReplyTimeout.Seconds(),
		Pollers:              c.Pollers,
		BackendFrom:          c.BackendFrom.String(),
	}
}
