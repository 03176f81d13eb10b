package engine

import "github.com/wsload/wsload/internal/nbiolog"

// QuietLogs keeps nbio's own log to errors only, on stderr. nbio logs every
// event-loop start and stop at info level on stdout by default, where the
// lines would mix with a program's own output. nbio's logger is
// process-wide, so the engine never changes it by itself: a program calls
// QuietLogs once at start, before any Run.
func QuietLogs() { nbiolog.Quiet() }
