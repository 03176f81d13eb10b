package engine

import (
	"errors"
	"net"
	"time"

	"github.com/lesismal/nbio"
)

// tlsTransport is the net.Conn under a crypto/tls client connection.
//
// Why not nbio's TLS (llib's fork of crypto/tls): its TLS 1.3 client fails
// against current servers ("bad record MAC" against Go's own TLS 1.3 server),
// and most wss targets speak TLS 1.3. So wss uses the standard library: the
// handshake runs blocking on the dialed socket (in a dialer goroutine, with a
// deadline); then the socket moves to the event loop and this transport
// switches over: writes go to the non-blocking nbio connection, reads are fed
// by the poller. When the fed bytes run out, Read returns a temporary error,
// which crypto/tls treats as "try again later" and keeps any partial record.
type tlsTransport struct {
	net.Conn            // the blocking socket, until handoff
	nbc      *nbio.Conn // after handoff
	in       []byte     // ciphertext fed by the poller, valid during one onData call
}

// errWouldBlock tells crypto/tls that no more ciphertext is buffered.
var errWouldBlock net.Error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "engine: tls transport: no buffered data" }
func (wouldBlock) Timeout() bool   { return true }
func (wouldBlock) Temporary() bool { return true }

func (t *tlsTransport) handoff(nbc *nbio.Conn) { t.nbc = nbc }

func (t *tlsTransport) Read(b []byte) (int, error) {
	if t.nbc == nil {
		return t.Conn.Read(b)
	}
	if len(t.in) == 0 {
		return 0, errWouldBlock
	}
	n := copy(b, t.in)
	t.in = t.in[n:]
	return n, nil
}

func (t *tlsTransport) Write(b []byte) (int, error) {
	if t.nbc == nil {
		return t.Conn.Write(b)
	}
	return t.nbc.Write(b)
}

func (t *tlsTransport) Close() error {
	if t.nbc == nil {
		return t.Conn.Close()
	}
	return t.nbc.Close()
}

func (t *tlsTransport) SetDeadline(d time.Time) error {
	if t.nbc == nil {
		return t.Conn.SetDeadline(d)
	}
	return nil // the engine's own timers bound everything after the handshake
}

func (t *tlsTransport) SetReadDeadline(d time.Time) error {
	if t.nbc == nil {
		return t.Conn.SetReadDeadline(d)
	}
	return nil
}

func (t *tlsTransport) SetWriteDeadline(d time.Time) error {
	if t.nbc == nil {
		return t.Conn.SetWriteDeadline(d)
	}
	return nil
}

func isWouldBlock(err error) bool { return errors.Is(err, errWouldBlock) }
