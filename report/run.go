package report

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/wsload/wsload/stats"
)

// Run is one result to report, with the label it is shown under in tables
// and legends.
type Run struct {
	Label  string
	Result *stats.Result
}

// Load reads the Result file at path as a Run labelled label, or by the
// file's name without ".json" when label is empty.
func Load(path, label string) (Run, error) {
	res, err := stats.ReadResultFile(path)
	if err != nil {
		return Run{}, fmt.Errorf("report: %w", err)
	}
	if label == "" {
		label = strings.TrimSuffix(filepath.Base(path), ".json")
	}
	return Run{Label: label, Result: res}, nil
}
