// Package testenv starts the third-party servers that wsload's tests run against.
//
// NodeWS runs testdata/node/ws-server.js (the npm ws package) in one of its modes and returns the
// URL to dial; the process is killed when the test ends:
//
//	func TestEchoAgainstNode(t *testing.T) {
//		url := testenv.NodeWS(t, "echo")                   // ws://127.0.0.1:<port>/
//		slow := testenv.NodeWS(t, "stall", "--every-ms", "1000", "--for-ms", "200")
//		...
//	}
//
// Node and the ws module are installed by ./scripts/test.sh. A missing one fails the test with
// that hint instead of skipping it: a skipped end-to-end test looks like a passing one in CI.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// installHint is the one remedy for every missing piece of the Node setup.
const installHint = "run ./scripts/test.sh, it installs Node's ws (npm ci in testdata/node)"

// startTimeout bounds how long NodeWS waits for the server's "listening" line. Node starts in
// well under a second; the slack is for a loaded 2-core CI machine running tests in parallel.
const startTimeout = 60 * time.Second

// maxStderr caps how much of the server's stderr is kept for failure messages.
const maxStderr = 16 << 10

// NodeWS starts `node testdata/node/ws-server.js --mode mode args...` on 127.0.0.1 with a
// kernel-chosen port (unless args name one), waits for it to listen and returns its URL,
// "ws://127.0.0.1:<port>/". A cleanup registered on t kills the server and waits for it; a server
// that died on its own before that fails the test with its stderr.
func NodeWS(t testing.TB, mode string, args ...string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	node, err := nodeSetup(root)
	if err != nil {
		t.Fatalf("%v", err)
	}
	url, stop, err := startNodeWS(node, root, mode, args)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return url
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another process may take
// it before the caller binds it; prefer listening on port 0 where the code under test allows it.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	return port
}

// RepoRoot returns the directory holding go.mod, found by walking up from the working
// directory (go test runs each package's tests in that package's directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.mod in the working directory or above it")
		}
		dir = parent
	}
}

// nodeSetup checks that node and the ws module are installed for the repository at root and
// returns the node binary's path.
func nodeSetup(root string) (string, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("testenv: node is not installed: %s", installHint)
	}
	ws := filepath.Join(root, "testdata", "node", "node_modules", "ws", "package.json")
	if _, err := os.Stat(ws); err != nil {
		return "", fmt.Errorf("testenv: the npm package ws is not installed (no %s): %s", ws, installHint)
	}
	return node, nil
}

// startNodeWS starts the server and waits for its "listening <port>" line. stop kills the server,
// waits for it, and reports whether it had died on its own.
func startNodeWS(node, root, mode string, args []string) (url string, stop func() error, err error) {
	dir := filepath.Join(root, "testdata", "node")
	argv := append([]string{filepath.Join(dir, "ws-server.js"), "--mode", mode, "--exit-with-stdin"}, args...)
	cmd := exec.Command(node, argv...)
	cmd.Dir = dir
	stderr := &capped{max: maxStderr}
	lines := &firstLine{ch: make(chan string, 1)}
	cmd.Stdout = lines
	cmd.Stderr = stderr
	// The server exits when this pipe closes, so it dies with the test binary even when the
	// binary is killed (a -timeout panic, ^C) before its cleanups run.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, fmt.Errorf("testenv: node ws-server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("testenv: start node ws-server: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	kill := func() {
		_ = cmd.Process.Kill()
		_ = stdin.Close()
		<-exited
	}
	what := fmt.Sprintf("node ws-server --mode %s %s", mode, strings.Join(args, " "))

	var line string
	select {
	case line = <-lines.ch:
	case <-exited:
		return "", nil, fmt.Errorf("testenv: %s exited before listening (%v); stderr:\n%s", what, waitErr, stderr)
	case <-time.After(startTimeout):
		kill()
		return "", nil, fmt.Errorf("testenv: %s did not print \"listening <port>\" within %v; stderr:\n%s", what, startTimeout, stderr)
	}
	port, err := parseListening(line)
	if err != nil {
		kill()
		return "", nil, fmt.Errorf("testenv: %s: %w", what, err)
	}
	stop = func() error {
		select {
		case <-exited:
			return fmt.Errorf("testenv: %s died during the test (%v); stderr:\n%s", what, waitErr, stderr)
		default:
		}
		kill()
		return nil
	}
	return fmt.Sprintf("ws://127.0.0.1:%d/", port), stop, nil
}

// parseListening reads the server's one stdout line, "listening <port>".
func parseListening(line string) (int, error) {
	rest, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		return 0, fmt.Errorf("first stdout line is %q, want \"listening <port>\"", line)
	}
	port, err := strconv.Atoi(rest)
	if err != nil || port <= 0 || port > 65535 {
		return 0, fmt.Errorf("first stdout line is %q: bad port", line)
	}
	return port, nil
}

// firstLine is the server's stdout: it sends the first line on ch and discards the rest, so
// the server never blocks on a full pipe.
type firstLine struct {
	buf  []byte
	ch   chan string
	done bool
}

func (w *firstLine) Write(p []byte) (int, error) {
	if w.done {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.ch <- strings.TrimSpace(string(w.buf[:i]))
		w.done = true
		w.buf = nil
	}
	return len(p), nil
}

// capped keeps the first max bytes written to it; it is written by exec's copying goroutine
// and read by the test, hence the lock.
type capped struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.b) == 0 {
		return "(empty)"
	}
	return string(c.b)
}

var _ io.Writer = (*capped)(nil)

// SyncBuffer is a bytes.Buffer that another goroutine (a child process's output copier) writes
// into while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
