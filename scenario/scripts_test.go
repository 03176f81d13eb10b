package scenario

import (
	"path/filepath"
	"testing"
)

// TestExampleScripts loads every scenario in scripts/scenarios: the examples
// users start from must always be valid.
func TestExampleScripts(t *testing.T) {
	t.Setenv("API_KEY", "test-key") // login.yaml sends it as a header
	files, err := filepath.Glob("../scripts/scenarios/*.yaml")
	if err != nil {
		t.Fatalf("glob: %v", err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d scenarios in scripts/scenarios, want at least 5: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := Load(f)
			if err != nil {
				t.Fatalf("Load(%s):\n%v", f, err)
			}
			if err := p.Override(Overrides{}); err != nil {
				t.Fatalf("%s cannot run as is: %v", f, err)
			}
			if len(p.Flows) == 0 || len(p.Phases) == 0 {
				t.Fatalf("%s: %d flows, %d phases", f, len(p.Flows), len(p.Phases))
			}
		})
	}
}
