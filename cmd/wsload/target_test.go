package main

import (
	"strings"
	"testing"
)

func TestCheckTargetHints(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:8080", "did you mean ws://127.0.0.1:8080/?"},
		{"localhost:8080/chat", "did you mean ws://localhost:8080/chat?"},
		{"http://127.0.0.1:8080/ws", "did you mean ws://127.0.0.1:8080/ws?"},
		{"https://example.test/ws", "did you mean wss://example.test/ws?"},
		{"ftp://127.0.0.1/", "must be ws:// or wss://"},
		{"ws:///path", "has no host"},
	} {
		err := checkTarget(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("checkTarget(%q) = %v, want it to say %q", tc.in, err, tc.want)
		}
	}
	for _, ok := range []string{"ws://127.0.0.1:8080/", "wss://127.0.0.1:8443/ws?room=1", "WS://127.0.0.1/"} {
		if err := checkTarget(ok); err != nil {
			t.Fatalf("checkTarget(%q) = %v", ok, err)
		}
	}
	// run says it before anything else, with exit 2.
	code, _, errOut := runCommand(runCmd, "127.0.0.1:8080")
	if code != exitUsage || !strings.Contains(errOut, "did you mean ws://127.0.0.1:8080/?") {
		t.Fatalf("wsload run 127.0.0.1:8080: exit %d, stderr %q", code, errOut)
	}
}
