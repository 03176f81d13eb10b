// Package nbiolog decides what nbio's process-wide logger prints. nbio logs every engine start
// and stop at info level, on stdout by default, where it would interleave with wsload's
// progress line, corrupt a --procs worker's interval stream, and bury a failing test's output.
// Programs and test binaries choose once, at start:
//
//	nbiolog.Quiet()   // errors only, on stderr (the CLI's default, and every test binary's)
//	nbiolog.Verbose() // everything nbio says, on stderr (wsload --verbose)
//
// The engine and server packages never call it: a library does not change process-wide state
// its user did not ask for.
package nbiolog

import (
	"io"
	"os"
	"sync"

	"github.com/lesismal/nbio/logging"
)

var (
	mu      sync.Mutex
	current = -1 // the level last set here; -1 before the first call
)

// Quiet sends nbio's log to stderr and keeps only errors.
func Quiet() { set(os.Stderr, logging.LevelError) }

// Verbose sends nbio's log to stderr with everything it says (debug and up).
func Verbose() { set(os.Stderr, logging.LevelDebug) }

// set writes nbio's unsynchronised globals, which nbio goroutines read whenever they log, so it
// does so only when the level changes: a program calls it once before any engine starts, and a
// second call with the same choice (a test binary's TestMain, then each command it runs) is a
// no-op rather than a data race with engines already running.
func set(w io.Writer, level int) {
	mu.Lock()
	defer mu.Unlock()
	if current == level {
		return
	}
	current = level
	logging.Output = w
	logging.SetLevel(level)
}
