package scenario

import (
	"math"
	"testing"
	"unicode/utf8"
)

func TestEchoRoundTrip(t *testing.T) {
	cases := []struct {
		conn uint32
		seq  uint64
	}{{0, 0}, {7, 42}, {math.MaxUint32, math.MaxUint64}, {0xdeadbeef, 1 << 40}}
	for _, binary := range []bool{false, true} {
		for _, size := range []int{28, 64, 1000} {
			e := Echo{Size: size, Binary: binary}
			for _, c := range cases {
				msg := e.AppendMessage(nil, c.conn, c.seq)
				if len(msg) != size {
					t.Fatalf("binary=%v size=%d: got %d bytes", binary, size, len(msg))
				}
				if !binary && !utf8.Valid(msg) {
					t.Fatalf("text message is not UTF-8: %q", msg)
				}
				conn, seq, ok := ParseID(msg)
				if !ok || conn != c.conn || seq != c.seq {
					t.Fatalf("binary=%v: ParseID(%q) = %d,%d,%v; want %d,%d", binary, msg, conn, seq, ok, c.conn, c.seq)
				}
			}
		}
	}
}

func TestParseIDRejectsOthers(t *testing.T) {
	for _, msg := range []string{"", "hello from node", "wsl1", "wsl1zzzzzzzz0000000000000000", "WSL100000000000000000000000000", "wsl10000000g0000000000000000000"} {
		if _, _, ok := ParseID([]byte(msg)); ok {
			t.Fatalf("ParseID(%q) accepted a foreign message", msg)
		}
	}
}

func TestEchoValidate(t *testing.T) {
	if err := (Echo{Size: 27}).Validate(); err == nil {
		t.Fatalf("27-byte text message accepted")
	}
	if err := (Echo{Size: 16, Binary: true}).Validate(); err != nil {
		t.Fatalf("16-byte binary message refused: %v", err)
	}
}

func TestAppendMessageNoAlloc(t *testing.T) {
	e := Echo{Size: 64}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() { buf = e.AppendMessage(buf[:0], 1, 2) })
	if allocs != 0 {
		t.Fatalf("AppendMessage allocates %v times", allocs)
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(Echo{Size: 40}.AppendMessage(nil, 3, 9))
	f.Add(Echo{Size: 20, Binary: true}.AppendMessage(nil, 3, 9))
	f.Fuzz(func(t *testing.T, msg []byte) {
		conn, seq, ok := ParseID(msg)
		if !ok {
			return
		}
		for _, binary := range []bool{false, true} {
			e := Echo{Size: 28, Binary: binary}
			again := e.AppendMessage(nil, conn, seq)
			if c2, s2, ok2 := ParseID(again); !ok2 || c2 != conn || s2 != seq {
				t.Fatalf("re-encoded id does not parse back")
			}
		}
	})
}
