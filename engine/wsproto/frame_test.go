package wsproto

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// naiveMask is the RFC's byte-at-a-time definition, the reference for the
// 8-bytes-at-a-time maskBytes.
func naiveMask(b []byte, mask [4]byte) {
	for i := range b {
		b[i] ^= mask[i%4]
	}
}

func TestMaskBytesMatchesNaive(t *testing.T) {
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for n := 0; n <= 100; n++ {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i*7 + 3)
		}
		got := bytes.Clone(src)
		want := bytes.Clone(src)
		maskBytes(got, mask)
		naiveMask(want, mask)
		if !bytes.Equal(got, want) {
			t.Fatalf("len %d: maskBytes = %x, want %x", n, got, want)
		}
	}
}

// unmaskClientFrame decodes a frame written by AppendFrame, checking the
// header's shape, and returns its first byte and unmasked payload.
func unmaskClientFrame(t *testing.T, f []byte) (b0 byte, payload []byte) {
	t.Helper()
	if len(f) < 6 || f[1]&maskBit == 0 {
		t.Fatalf("frame %x is not a masked frame", f[:min(len(f), 16)])
	}
	n := int(f[1] & 0x7f)
	p := 2
	switch n {
	case 126:
		n = int(binary.BigEndian.Uint16(f[2:]))
		p = 4
		if n < 126 {
			t.Fatalf("16-bit length %d not minimal", n)
		}
	case 127:
		n = int(binary.BigEndian.Uint64(f[2:]))
		p = 10
		if n <= 0xffff {
			t.Fatalf("64-bit length %d not minimal", n)
		}
	}
	var mask [4]byte
	copy(mask[:], f[p:p+4])
	p += 4
	if len(f)-p != n {
		t.Fatalf("frame holds %d payload bytes, header says %d", len(f)-p, n)
	}
	payload = bytes.Clone(f[p:])
	naiveMask(payload, mask)
	return f[0], payload
}

func TestAppendFrame(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	tests := []struct {
		name    string
		op      Opcode
		fin     bool
		n       int
		wantB0  byte
		wantHdr int // header length including mask key
	}{
		{"empty text", OpText, true, 0, 0x81, 6},
		{"7-bit max", OpBinary, true, 125, 0x82, 6},
		{"16-bit min", OpBinary, true, 126, 0x82, 8},
		{"16-bit max", OpText, false, 0xffff, 0x01, 8},
		{"64-bit min", OpBinary, true, 0x10000, 0x82, 14},
		{"continuation", OpContinuation, true, 10, 0x80, 6},
		{"ping", OpPing, true, 4, 0x89, 6},
		{"pong", OpPong, true, 0, 0x8a, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := bytes.Repeat([]byte("abcdefg"), tt.n/7+1)[:tt.n]
			prefix := []byte("xyz")
			f := AppendFrame(bytes.Clone(prefix), tt.op, tt.fin, payload, mask)
			if !bytes.HasPrefix(f, prefix) {
				t.Fatalf("AppendFrame overwrote dst's prefix")
			}
			f = f[len(prefix):]
			if len(f) != tt.wantHdr+tt.n {
				t.Fatalf("frame length %d, want %d", len(f), tt.wantHdr+tt.n)
			}
			b0, got := unmaskClientFrame(t, f)
			if b0 != tt.wantB0 {
				t.Fatalf("first byte %#x, want %#x", b0, tt.wantB0)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("payload round trip differs")
			}
		})
	}
}

func TestAppendFrameDoesNotModifyPayload(t *testing.T) {
	payload := []byte("the payload stays as the caller wrote it")
	orig := bytes.Clone(payload)
	AppendFrame(nil, OpText, true, payload, [4]byte{9, 9, 9, 9})
	if !bytes.Equal(payload, orig) {
		t.Fatalf("payload modified: %q", payload)
	}
}

func TestAppendClose(t *testing.T) {
	mask := [4]byte{0xaa, 0xbb, 0xcc, 0xdd}
	long := strings.Repeat("é", 100) // 200 bytes, 2-byte runes
	tests := []struct {
		name        string
		code        int
		reason      string
		wantPayload []byte
	}{
		{"no status", 0, "ignored", nil},
		{"1005 means no status", CloseNoStatus, "", nil},
		{"normal", CloseNormal, "", []byte{0x03, 0xe8}},
		{"with reason", CloseGoingAway, "bye", []byte("\x03\xe9bye")},
		{"reason cut at rune boundary", 4000, long, append([]byte{0x0f, 0xa0}, long[:122]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b0, got := unmaskClientFrame(t, AppendClose(nil, tt.code, tt.reason, mask))
			if b0 != 0x88 {
				t.Fatalf("first byte %#x, want 0x88", b0)
			}
			if !bytes.Equal(got, tt.wantPayload) {
				t.Fatalf("payload %q, want %q", got, tt.wantPayload)
			}
			if len(got) > MaxControlPayload {
				t.Fatalf("close payload %d bytes > 125", len(got))
			}
		})
	}
}

func TestOpcodeString(t *testing.T) {
	tests := map[Opcode]string{OpText: "text", OpClose: "close", 0x3: "opcode(3)"}
	for op, want := range tests {
		if got := op.String(); got != want {
			t.Fatalf("Opcode(%d).String() = %q, want %q", op, got, want)
		}
	}
}
