//go:build !race

package nbiorace

import (
	"net"

	"github.com/lesismal/nbio/nbhttp"
)

// Install only registers onOpen outside race builds; see race_on.go.
func Install(e *nbhttp.Engine, onOpen func(net.Conn)) {
	if onOpen != nil {
		e.OnOpen(onOpen)
	}
}
