package rig

import (
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// maxOutput caps how much of the balancer's output is kept: enough for its startup errors
// and a few backend state changes, bounded however long a test runs.
const maxOutput = 64 << 10

// process is a balancer started in the foreground, in its own process group so that stop
// also reaches nginx's workers.
type process struct {
	cmd  *exec.Cmd
	out  *capped
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed

	stopOnce sync.Once
	stopErr  error
}

func startProcess(bin string, argv []string) (*process, error) {
	cmd := exec.Command(bin, argv...)
	out := &capped{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// waitListening polls until every address accepts a TCP connection. A process that exits
// first is an error (a bad configuration or a taken port); its output says which.
func (p *process) waitListening(addrs []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, a := range addrs {
		for {
			select {
			case <-p.done:
				return fmt.Errorf("exited before listening on %s (%v)", a, p.err)
			default:
			}
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not listening on %s after %v: %w", a, timeout, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}

// stop sends SIGTERM (both balancers stop at once on it, closing their connections) to the
// process group and SIGKILL if it is still there after stopTimeout. A process that had died
// on its own before stop is reported.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("%s exited by itself (%v); its output:\n%s", p.cmd.Path, p.err, p.output())
			return
		default:
		}
		pgid := -p.cmd.Process.Pid
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = syscall.Kill(pgid, syscall.SIGKILL)
			<-p.done
			p.stopErr = fmt.Errorf("%s ignored SIGTERM for %v and was killed", p.cmd.Path, stopTimeout)
		}
		// Workers left behind by a master that died first.
		if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.stopErr = errors.Join(p.stopErr, fmt.Errorf("kill process group %d: %w", -pgid, err))
		}
	})
	return p.stopErr
}

func (p *process) output() string { return p.out.String() }

// capped keeps the first max bytes written to it; the rest is counted, not kept.
type capped struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped int
}

func (c *capped) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - len(c.buf)
	if room > len(b) {
		room = len(b)
	}
	c.buf = append(c.buf, b[:room]...)
	c.dropped += len(b) - room
	return len(b), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		return fmt.Sprintf("%s\n[… %d more bytes not kept]", c.buf, c.dropped)
	}
	return string(c.buf)
}
