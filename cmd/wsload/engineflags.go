package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/wsload/wsload/engine"
)

// engineFlags are the engine options that `run` and `capacity` share. They are declared once,
// by addEngineFlags, so their names, defaults and help cannot drift between the commands.
type engineFlags struct {
	headers     []string // -H, parsed into Config.Header
	sources     string   // --source-ips, parsed into Config.SourceIPs
	backendFrom string   // --backend-from, parsed into Config.BackendFrom
	verbose     bool     // --verbose: nbio's own log lines on stderr
}

// addEngineFlags declares the shared engine flags on fs, writing into c and e.
func addEngineFlags(fs *pflag.FlagSet, c *engine.Config, e *engineFlags) {
	fs.Float64Var(&c.ConnectRate, "connect-rate", 0, "new connections per second, in total (0 = as fast as the target accepts, bounded by --handshake-concurrency)")
	fs.IntVar(&c.HandshakeConcurrency, "handshake-concurrency", engine.DefaultHandshakeConcurrency, "most handshakes (connect + TLS + upgrade) in flight at once")
	fs.IntVar(&c.Size, "size", engine.DefaultSize, "message payload bytes (the first 28 text / 16 binary bytes carry the message id)")
	fs.BoolVar(&c.Binary, "binary", false, "send binary frames instead of text")
	fs.StringArrayVarP(&e.headers, "header", "H", nil, "extra upgrade request header 'Name: value' (repeatable); secrets are redacted in reports")
	fs.StringSliceVar(&c.Subprotocols, "subprotocol", nil, "WebSocket subprotocol to offer (repeatable or comma-separated)")
	fs.StringVar(&c.Origin, "origin", "", "Origin header")
	fs.BoolVar(&c.Compression, "compression", false, "offer permessage-deflate (no context takeover)")
	fs.BoolVar(&c.InsecureTLS, "insecure", false, "skip TLS certificate verification (self-signed targets)")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", engine.DefaultHandshakeTimeout, "limit for TCP connect + TLS + upgrade")
	fs.DurationVar(&c.ReplyTimeout, "reply-timeout", engine.DefaultReplyTimeout, "a message without reply after this counts as timed out")
	fs.StringVar(&e.sources, "source-ips", "", "local addresses to spread connections over: a list or ranges, e.g. 127.0.0.2-127.0.0.9")
	fs.IntVar(&c.Pollers, "pollers", 0, "event loops (0 = one per CPU)")
	fs.IntVar(&c.MaxMessageSize, "max-message-size", 0, "largest message accepted from the server, in bytes (0 = 16 MiB); a larger one fails its connection with 1009. --size must fit in it")
	fs.IntVar(&c.MaxWriteBuffer, "max-write-buffer", engine.DefaultMaxWriteBuffer, "bytes one connection may hold unsent beyond the kernel's buffer; past it the connection is closed and counted as backpressure (a server that stopped reading)")
	fs.StringVar(&e.backendFrom, "backend-from", "", "split results by backend: header:NAME (a response header of the upgrade) or message:REGEX (the first message; group 1 is the id)")
	fs.BoolVar(&e.verbose, "verbose", false, verboseHelp)
}

// apply parses the flags that take parsing into c. Its errors name the flag.
func (e *engineFlags) apply(c *engine.Config) error {
	h, err := parseHeaders(e.headers)
	if err != nil {
		return err
	}
	c.Header = h
	if e.sources != "" {
		if c.SourceIPs, err = engine.ParseSourceIPs(e.sources); err != nil {
			return fmt.Errorf("--source-ips: %w", err)
		}
	}
	if c.BackendFrom, err = engine.ParseBackendFrom(e.backendFrom); err != nil {
		return fmt.Errorf("--backend-from: %w", err)
	}
	return nil
}
