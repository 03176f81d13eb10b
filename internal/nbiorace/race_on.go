//go:build race

package nbiorace

import (
	"net"
	"sync"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// Install registers onOpen and, in this `-race` build, the hand-off. nbio hands an accepted connection from
// its accept goroutine to a poller through epoll, a synchronisation the race detector cannot
// see, so it reports nbio's own first read of the remote address (written by accept) as a
// race in every test. A mutex released when nbio opens a connection and acquired before each
// read event gives the detector the edge the kernel already provides. Normal builds compile
// the no-op in race_off.go instead.
func Install(e *nbhttp.Engine, onOpen func(net.Conn)) {
	var mu sync.Mutex
	e.OnOpen(func(c net.Conn) {
		mu.Lock()
		mu.Unlock() //nolint:staticcheck // an empty critical section is the point: a release
		if onOpen != nil {
			onOpen(c)
		}
	})
	e.Engine.OnData(func(c *nbio.Conn, data []byte) {
		mu.Lock()
		mu.Unlock() //nolint:staticcheck // the matching acquire
		c.DataHandler()(c, data)
	})
}
