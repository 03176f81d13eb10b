// Package termsafe escapes text that a server controls (close reasons, backend names taken from
// messages or headers, error samples) before it reaches a terminal. A close reason carrying
// "\x1b[2J" would otherwise clear the screen, and one carrying "\r" and a line of its own could
// forge a line of the summary ("Errors none").
//
//	w := termsafe.NewWriter(os.Stdout) // every text report writes through it
//	fmt.Fprintf(w, "reason %s\n", reason)
//
// Newlines and tabs pass (they are the reports' own layout); every other control character, C1
// control, Unicode bidirectional override and invalid UTF-8 byte is written as a Go-style escape
// (\x1b, \u202e), so what a server sent stays readable and cannot act on the terminal.
package termsafe

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// Escape returns s with every character that could act on a terminal escaped.
func Escape(s string) string {
	if clean(s) {
		return s
	}
	return string(appendEscaped(make([]byte, 0, len(s)+16), s))
}

// clean is the fast path: printable ASCII, newlines and tabs only.
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// unsafeRune reports whether r must be escaped: C0 controls other than \n and \t, DEL, C1
// controls, and the bidirectional marks and overrides that reorder what a terminal shows.
func unsafeRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		return true
	case r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069):
		return true
	}
	return false
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = fmt.Appendf(b, `\x%02x`, s[i])
		case unsafeRune(r) && r < 0x80:
			b = fmt.Appendf(b, `\x%02x`, r)
		case unsafeRune(r):
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// Writer escapes everything written through it. Each Write is escaped on its own, so write
// whole strings (as fmt.Fprintf does), not a rune split across two calls.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer that escapes into w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write writes p escaped; it reports len(p) on success, as io.Writer asks.
func (w *Writer) Write(p []byte) (int, error) {
	s := string(p)
	if clean(s) {
		return w.w.Write(p)
	}
	w.buf = appendEscaped(w.buf[:0], s)
	if _, err := w.w.Write(w.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
