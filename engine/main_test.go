package engine

import (
	"os"
	"testing"

	"github.com/wsload/wsload/internal/nbiolog"
)

// TestMain keeps nbio to its errors, on stderr, so a failing test's output is not buried under
// nbio's start/stop lines.
func TestMain(m *testing.M) {
	nbiolog.Quiet()
	os.Exit(m.Run())
}
