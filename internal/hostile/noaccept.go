package hostile

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// listenNoAccept opens a TCP socket on 127.0.0.1 listening with a backlog of 0, which net.Listen
// cannot do (it asks for the system's maximum), and never accepts on it. It returns the address
// and the function that closes the socket.
//
// The kernel still completes the TCP handshake of as many connections as the accept queue
// holds (one on Linux for a backlog of 0), so listenNoAccept fills the queue itself first: it
// dials until a connect times out (fillTimeout) and keeps those connections. From then on every
// client's SYN is dropped.
func listenNoAccept() (string, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("socket: %w", err)
	}
	sa := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("bind: %w", err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("listen: %w", err)
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return "", nil, fmt.Errorf("getsockname: %w", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", got.(*syscall.SockaddrInet4).Port)
	var fill []net.Conn
	for range maxFill {
		c, err := net.DialTimeout("tcp", addr, fillTimeout)
		if err != nil {
			break
		}
		fill = append(fill, c)
	}
	closeAll := func() {
		for _, c := range fill {
			c.Close()
		}
		syscall.Close(fd)
	}
	if len(fill) == maxFill {
		closeAll()
		return "", nil, fmt.Errorf("no_accept: the accept queue still took connections after %d", maxFill)
	}
	return addr, closeAll, nil
}

// The queue filling: at most maxFill connections, and a connect that takes fillTimeout is taken
// for a dropped SYN (a loopback handshake takes microseconds; the slack is for a busy machine).
const (
	maxFill     = 8
	fillTimeout = time.Second
)
