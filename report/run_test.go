package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsload/wsload/stats"
)

func TestLoad(t *testing.T) {
	res := balancedRun(t).Result
	path := filepath.Join(t.TempDir(), "lb-run.json")
	if err := stats.WriteJSONFile(path, res); err != nil {
		t.Fatalf("WriteJSONFile: %v", err)
	}
	for _, tc := range []struct{ label, want string }{
		{"", "lb-run"},
		{"leastconn", "leastconn"},
	} {
		run, err := Load(path, tc.label)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if run.Label != tc.want {
			t.Fatalf("Load(%q) label = %q, want %q", tc.label, run.Label, tc.want)
		}
		// What the report reads survives the file: counts, backends, SLOs.
		got := run.Result
		if got.Messages.Received != res.Messages.Received || len(got.Backends) != 3 ||
			got.Backends["app-2"].Connections.Established != res.Backends["app-2"].Connections.Established ||
			len(got.SLO) != 3 || got.SLO[2].OK {
			t.Fatalf("Load lost data: received %d, backends %v, slo %v", got.Messages.Received, got.Backends, got.SLO)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	notResult := filepath.Join(dir, "x.json")
	if err := os.WriteFile(notResult, []byte(`{"hello": 1}`), 0o644); err != nil {
		t.Fatalf("writing: %v", err)
	}
	for _, tc := range []struct {
		path  string
		wants []string
	}{
		{filepath.Join(dir, "nope.json"), []string{"report:", "nope.json"}},
		{notResult, []string{"report:", "x.json", "not a wsload result"}},
	} {
		_, err := Load(tc.path, "")
		if err == nil {
			t.Fatalf("Load(%s) succeeded", tc.path)
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("Load(%s) error %q lacks %q", tc.path, err, w)
			}
		}
	}
}
