package termsafe

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text\n\tindented", "plain text\n\tindented"},
		{"µs and 日本 stay", "µs and 日本 stay"},
		{"\x1b[2Jcleared", `\x1b[2Jcleared`},
		{"going away\rErrors       none", `going away\x0dErrors       none`},
		{"bell\a del\x7f", `bell\x07 del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202eevil", `bidi \u202eevil`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"nul \x00", `nul \x00`},
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	n, err := fmt.Fprintf(w, "reason %s\n", "\x1b]0;title\x07")
	if err != nil || n != len("reason \x1b]0;title\x07\n") {
		t.Fatalf("Fprintf = %d, %v", n, err)
	}
	if got, want := b.String(), `reason \x1b]0;title\x07`+"\n"; got != want {
		t.Fatalf("wrote %q, want %q", got, want)
	}
}

// FuzzEscape: the output never holds a byte that acts on a terminal, is valid UTF-8, and equals
// the input whenever the input was already safe.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "ok", "\x1b[2J", "\xff", "\u202e", "a\nb\tc", "\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if unsafeRune(r) {
				t.Fatalf("Escape(%q) = %q still holds %U", s, out, r)
			}
		}
		safe := utf8.ValidString(s) && !strings.ContainsFunc(s, unsafeRune)
		if safe && out != s {
			t.Fatalf("Escape changed safe text %q to %q", s, out)
		}
	})
}
