package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/lesismal/nbio"

	"github.com/wsload/wsload/engine/wsproto"
)

// ramp opens the connections: connection i is due at i/ConnectRate after
// the start (all at once when the rate is 0), waits for a handshake slot,
// and is then dialed in a goroutine of its own, so the slots alone
// (Config.HandshakeConcurrency) bound the handshakes in flight, their
// blocking parts (TCP connect, TLS) included. Every requested connection is
// either dialed (counted as attempted) or, when the run ends or the ramp
// stops at fd_limit first, counted as not started.
func (e *Engine) ramp(ctx context.Context) {
	var dialing sync.WaitGroup
	defer dialing.Wait()
	dialers := e.netDialers()
	e.dialSh.ConnRequested(e.cfg.Connections)
	e.gate.left.Store(int64(e.cfg.Connections))
	i := 0
	defer func() {
		if n := e.cfg.Connections - i; n > 0 {
			e.dialSh.ConnNotStarted(n)
			e.rampSettled(n) // the ramp gave up (fd_limit) or the run ended: no more to wait for
		}
	}()

	var timer *time.Timer
	for ; i < e.cfg.Connections; i++ {
		var due int64
		if e.cfg.ConnectRate > 0 {
			due = int64(float64(i) / e.cfg.ConnectRate * float64(time.Second))
			if wait := time.Duration(due - e.now()); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case e.sem <- struct{}{}:
		}
		if e.fdLimit.Load() || ctx.Err() != nil {
			<-e.sem
			return
		}
		e.dialSh.HandshakeWaited(time.Duration(e.now() - due))
		c := newConn(e, i)
		e.mu.Lock()
		e.conns[i] = c
		e.mu.Unlock()
		dialing.Add(1)
		go func(d *net.Dialer) {
			defer dialing.Done()
			e.dial(ctx, c, d)
		}(dialers[i%len(dialers)])
	}
}

// netDialers makes one net.Dialer per source address (or one for the
// kernel's choice). IP_BIND_ADDRESS_NO_PORT lets the kernel choose the port
// per (source, target) pair at connect time instead of per source at bind
// time, so each source address can reach its full ephemeral range per target.
func (e *Engine) netDialers() []*net.Dialer {
	mk := func(local net.Addr) *net.Dialer {
		return &net.Dialer{
			Timeout:   e.cfg.HandshakeTimeout,
			LocalAddr: local,
			KeepAlive: -1, // idle load-test connections should not wake up on their own
			Control: func(network, address string, rc syscall.RawConn) error {
				if local == nil {
					return nil
				}
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
				})
				if err != nil {
					return err
				}
				return serr
			},
		}
	}
	if len(e.cfg.SourceIPs) == 0 {
		return []*net.Dialer{mk(nil)}
	}
	out := make([]*net.Dialer, len(e.cfg.SourceIPs))
	for i, ip := range e.cfg.SourceIPs {
		out[i] = mk(&net.TCPAddr{IP: ip.AsSlice()})
	}
	return out
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from linux/in.h.
const ipBindAddressNoPort = 24

// dial does the blocking part of c's handshake and hands the socket to the
// event loop. The caller has taken one handshake slot; the connection
// releases it when its handshake ends either way. A scenario connection that
// was retired or has ended while it waited for a dialer is skipped.
func (e *Engine) dial(ctx context.Context, c *conn, d *net.Dialer) {
	c.mu.Lock()
	if c.state != stDialing || c.fl != nil && c.fl.done {
		if c.state == stDialing {
			c.state = stClosed
		}
		e.dialSh.ConnNotStarted(1) // requested, never dialed
		c.mu.Unlock()
		<-e.sem
		return
	}
	c.slot = true
	c.hsStart = e.now()
	c.mu.Unlock()
	e.dialSh.ConnAttempted()

	dctx, cancel := context.WithTimeout(ctx, e.cfg.HandshakeTimeout)
	defer cancel()
	raw, err := d.DialContext(dctx, "tcp", e.addrs[e.local(c.id)%len(e.addrs)])
	if err != nil {
		reason := classifyDialError(err)
		if runOver(ctx) { // the run ended or was interrupted mid-connect
			reason = "unfinished"
		}
		c.failDial(reason, err)
		return
	}
	var tc *tls.Conn
	var tt *tlsTransport
	if e.tlsCfg != nil {
		tt = &tlsTransport{Conn: raw}
		tc = tls.Client(tt, e.tlsCfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = raw.Close()
			reason := "tls"
			switch {
			case runOver(ctx): // the run ended or was interrupted mid-handshake, as for TCP above
				reason = "unfinished"
			case isTimeout(err):
				reason = "timeout"
			}
			c.failDial(reason, err)
			return
		}
		_ = raw.SetDeadline(time.Time{})
	}
	nbc, err := nbio.NBConn(raw) // dups the fd into a non-blocking one and closes raw
	if err != nil {
		_ = raw.Close()
		c.failDial(classifyDialError(err), err)
		return
	}
	if tt != nil {
		tt.handoff(nbc)
	}
	c.attach(nbc, tc, tt)
	if _, err := e.nb.AddConn(nbc); err != nil {
		// AddConn closed nbc; its close callback may or may not run.
		c.failDial(classifyDialError(err), err)
		return
	}
	c.sendUpgrade()
}

// runOver reports whether the run's context is done or past its deadline.
// A dial fails with "i/o timeout" at the run's deadline from the dialer's
// own timer, which can fire before the context's: that is the run's end,
// not the handshake timeout.
func runOver(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// classifyDialError maps a connect error to a stable reason.
func classifyDialError(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		switch errno {
		case syscall.ECONNREFUSED:
			return "refused"
		case syscall.ECONNRESET, syscall.EPIPE:
			return "reset"
		case syscall.ETIMEDOUT:
			return "timeout"
		case syscall.EMFILE, syscall.ENFILE:
			return "fd_limit"
		case syscall.EADDRNOTAVAIL, syscall.EADDRINUSE:
			return "no_source_port"
		case syscall.ENETUNREACH, syscall.EHOSTUNREACH:
			return "unreachable"
		}
	case isTimeout(err):
		return "timeout"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "dns"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return "closed_during_handshake"
	}
	return "connect_error"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// classifyHandshakeError maps a failed upgrade to a stable reason: the HTTP
// status of a refused upgrade ("http_502") or "bad_handshake".
func classifyHandshakeError(err error) string {
	var ue *wsproto.UpgradeError
	if errors.As(err, &ue) {
		return "http_" + strconv.Itoa(ue.Status)
	}
	return "bad_handshake"
}
