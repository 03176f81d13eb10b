package buildinfo

import "testing"

func TestVersion(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })

	version = ""
	// A test binary is built from the checkout: Go records no module version for it.
	if got := Version(); got != "dev" {
		t.Fatalf("Version() = %q from a checkout, want dev", got)
	}
	version = "v1.2.3"
	if got := Version(); got != "v1.2.3" {
		t.Fatalf("Version() = %q with -X version=v1.2.3", got)
	}
}
