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
	"github.com/wsload/wsload/partition"
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
	DefaultMaxWriteBuffer       = 1 << 20
)

// Config is everything one load-generating process needs. New validates it
// and fills defaults; zero values mean "default" except where noted.
type Config struct {
	URL         string // ws:// or wss:// target
	Connections int    // concurrent connections to open and hold
	// Partition and TotalConnections spread one run over processes or
	// machines, echo and scenario runs alike (package partition): this
	// process is slot Partition.Slot of Partition.Slots and owns the
	// connection numbers Slot, Slot+Slots, Slot+2·Slots, … of the whole run,
	// numbered as one process would number them, so the send grid, the
	// scenario's data rows and its per-connection choices are those of one
	// run. TotalConnections is the whole run's connections (a scenario's:
	// its peak) and Connections this process's share of it,
	// Partition.Share(TotalConnections). A scenario run takes the same
	// share of every connections phase and every arrivals phase. Zero
	// values: this process is the whole run.
	Partition        partition.Partition
	TotalConnections int
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

	// MaxMessageSize bounds one received message (after reassembly and
	// inflation) in bytes; a larger one fails its connection with 1009,
	// counted. Default wsproto.DefaultMaxMessageSize (16 MiB), at most
	// MaxMessageSizeLimit. The echo flow's --size must fit in it.
	MaxMessageSize int

	// MaxWriteBuffer bounds the bytes one connection holds waiting to be
	// written, beyond what the kernel's socket buffer takes (a server that
	// stops reading, or reads slower than the run sends). Past it the
	// connection is closed and counted as "backpressure": memory stays flat
	// and the fault is named. Default DefaultMaxWriteBuffer; at least one
	// message frame.
	MaxWriteBuffer int

	SourceIPs []netip.Addr // local addresses to spread connections over (round robin)
	Pollers   int          // nbio event loops; default GOMAXPROCS

	// ExtraFDs is the number of file descriptors this process needs besides
	// its own connections, e.g. the accepted side of an in-process target.
	ExtraFDs int

	// Interval is how often the recorder is rotated into a stats.Interval and
	// handed to Run's sinks. Default one second.
	Interval time.Duration

	// TuneProcess lets Run change process-wide settings that a large run
	// needs: raise the soft open-file limit to the hard limit before the
	// pre-flight check, size nbio's connection table to that limit, and hand
	// the ramp's garbage back to the OS once every connection is up, so that
	// holding idle connections costs only what they keep. The CLI sets it; a
	// program that embeds the engine decides for itself.
	TuneProcess bool

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
		return nil, fmt.Errorf("engine: target %q: %w", c.URL, err)
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
	if err := c.Partition.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if c.TotalConnections == 0 && c.Partition.IsWhole() {
		c.TotalConnections = c.Connections
	}
	if c.TotalConnections < 0 || c.TotalConnections > 1<<31-1 ||
		(c.Plan == nil && int64(c.Connections) != c.Partition.Share(int64(c.TotalConnections))) {
		return nil, fmt.Errorf("engine: %d connections are not slot %s's share of a run of %d (want %d)",
			c.Connections, c.Partition, c.TotalConnections, c.Partition.Share(int64(c.TotalConnections)))
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
	if c.MaxMessageSize < 0 || c.MaxMessageSize > MaxMessageSizeLimit {
		return nil, fmt.Errorf("engine: the message size limit must be between 1 and %d bytes (0 = the default, %d), got %d", MaxMessageSizeLimit, wsproto.DefaultMaxMessageSize, c.MaxMessageSize)
	}
	setDefault(&c.MaxMessageSize, wsproto.DefaultMaxMessageSize)
	if c.Size < 0 || c.Size > c.MaxMessageSize {
		return nil, fmt.Errorf("engine: message size must be between 0 and %d bytes (the read limit for the echoed reply; raise it with --max-message-size), got %d", c.MaxMessageSize, c.Size)
	}
	if c.Interval < 0 {
		return nil, fmt.Errorf("engine: interval must not be negative, got %v", c.Interval)
	}
	if c.Plan != nil {
		c.Rate = 0 // the flows send; no echo grid
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
	if c.MaxWriteBuffer < 0 {
		return nil, fmt.Errorf("engine: the write buffer bound must not be negative, got %d", c.MaxWriteBuffer)
	}
	setDefault(&c.MaxWriteBuffer, DefaultMaxWriteBuffer)
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if err := (scenario.Echo{Size: c.Size, Binary: c.Binary}).Validate(); err != nil {
		return nil, fmt.Errorf("engine: %v (use --size %d or more)", err, (scenario.Echo{Binary: c.Binary}).HeaderSize())
	}
	if frame := c.Size + wsproto.MaxHeaderSize; c.Plan == nil && c.Rate > 0 && c.MaxWriteBuffer < frame {
		return nil, fmt.Errorf("engine: a write buffer of %d bytes cannot hold one %d-byte message frame (give --max-write-buffer %d or more)", c.MaxWriteBuffer, frame, frame)
	}
	if c.HandshakeTimeout < 0 || c.ReplyTimeout < 0 || c.CloseTimeout < 0 {
		return nil, errors.New("engine: timeouts must not be negative")
	}
	req := wsproto.Request{URL: u, Header: c.Header, Origin: c.Origin, Subprotocols: c.Subprotocols, Compression: c.Compression}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
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

// MaxMessageSizeLimit bounds Config.MaxMessageSize: a message is held whole in memory.
const MaxMessageSizeLimit = 1 << 30

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

// Resolved returns c as New would run it: validated, defaults filled in,
// nothing dialed. A caller that spreads one configuration over processes
// describes the whole run with it (Resolved, then Stats).
func (c Config) Resolved() (Config, error) {
	if _, err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Stats describes the configuration in a result (header values that look
// like secrets redacted). Called on a validated configuration
// ((*Engine).Config, Resolved), it reports the values the run used, defaults
// included.
func (c Config) Stats() stats.Config {
	src := make([]string, len(c.SourceIPs))
	for i, ip := range c.SourceIPs {
		src[i] = ip.String()
	}
	return stats.Config{
		Connections:       c.Connections,
		ConnectRate:       c.ConnectRate,
		Rate:              c.Rate,
		Size:              c.Size,
		Binary:            c.Binary,
		DurationS:         c.Duration.Seconds(),
		SourceIPs:         src,
		Headers:           stats.RedactHeaders(c.Header),
		Subprotocols:      c.Subprotocols,
		HandshakeTimeoutS: c.HandshakeTimeout.Seconds(),
		ReplyTimeoutS:     c.ReplyTimeout.Seconds(),
		Pollers:           c.Pollers,
		BackendFrom:       c.BackendFrom.String(),

		HandshakeConcurrency: c.HandshakeConcurrency,
		Compression:          c.Compression,
		Origin:               c.Origin,
		MaxWriteBuffer:       c.MaxWriteBuffer,
		MaxMessageSize:       c.MaxMessageSize,
		SendAfterRamp:        c.SendAfterRamp,
	}
}
