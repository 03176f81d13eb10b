package stats

import (
	"bytes"
	"strings"
	"testing"
)

// TestTextEscapesServerText: text a server controls (here an error reason and a backend-like
// target string carrying escape sequences and a carriage return) reaches the text summary and
// the comparison escaped, so it can neither clear the terminal nor forge a line.
func TestTextEscapesServerText(t *testing.T) {
	evil := "\x1b[2J\rErrors       none"
	r := &Result{Target: "ws://127.0.0.1/" + evil, Errors: map[string]int64{evil: 3}}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\r") {
		t.Fatalf("the summary carries raw control characters:\n%q", out)
	}
	if !strings.Contains(out, `\x1b[2J\x0dErrors`) {
		t.Fatalf("the summary does not show the escaped text:\n%s", out)
	}
	c := Compare([]string{"a" + evil, "b"}, []*Result{r, r})
	for _, write := range []func(*bytes.Buffer) error{
		func(b *bytes.Buffer) error { return c.WriteText(b) },
		func(b *bytes.Buffer) error { return c.WriteMarkdown(b) },
	} {
		b.Reset()
		if err := write(&b); err != nil {
			t.Fatalf("write comparison: %v", err)
		}
		if strings.ContainsAny(b.String(), "\x1b\r") {
			t.Fatalf("the comparison carries raw control characters:\n%q", b.String())
		}
	}
}
