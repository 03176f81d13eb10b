package wsproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
)

// recorder is a Handler that logs events as strings, so that runs over
// differently split input can be compared.
type recorder struct{ events []string }

func describe(p []byte) string {
	if len(p) > 64 {
		return fmt.Sprintf("len=%d,crc=%08x", len(p), crc32.ChecksumIEEE(p))
	}
	return fmt.Sprintf("%q", p)
}

func (r *recorder) OnMessage(op Opcode, p []byte) {
	r.events = append(r.events, op.String()+":"+describe(p))
}
func (r *recorder) OnPing(p []byte) { r.events = append(r.events, "ping:"+describe(p)) }
func (r *recorder) OnPong(p []byte) { r.events = append(r.events, "pong:"+describe(p)) }
func (r *recorder) OnClose(code int, reason string) {
	r.events = append(r.events, fmt.Sprintf("close:%d:%q", code, reason))
}

// sf builds an unmasked server frame with first byte b0 and the minimal
// length encoding.
func sf(b0 byte, payload string) []byte {
	n := len(payload)
	var f []byte
	switch {
	case n <= 125:
		f = []byte{b0, byte(n)}
	case n <= 0xffff:
		f = []byte{b0, 126, byte(n >> 8), byte(n)}
	default:
		f = binary.BigEndian.AppendUint64([]byte{b0, 127}, uint64(n))
	}
	return append(f, payload...)
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// closePayload builds a close frame payload.
func closePayload(code int, reason string) string {
	return string([]byte{byte(code >> 8), byte(code)}) + reason
}

// serverFrames turns masked client frames (as AppendFrame and Compressor
// write them) into the unmasked frames a server sends, so that the encoders
// can be checked through the Reader.
func serverFrames(t *testing.T, client []byte) []byte {
	t.Helper()
	var out []byte
	for len(client) > 0 {
		hl := headerLen(client[0], client[1])
		var n int
		switch client[1] & 0x7f {
		case 126:
			n = int(binary.BigEndian.Uint16(client[2:]))
		case 127:
			n = int(binary.BigEndian.Uint64(client[2:]))
		default:
			n = int(client[1] & 0x7f)
		}
		if client[1]&maskBit == 0 {
			t.Fatalf("client frame not masked")
		}
		var mask [4]byte
		copy(mask[:], client[hl-4:hl])
		hdr := bytes.Clone(client[:hl-4])
		hdr[1] &^= maskBit
		payload := bytes.Clone(client[hl : hl+n])
		naiveMask(payload, mask)
		out = append(append(out, hdr...), payload...)
		client = client[hl+n:]
	}
	return out
}

type feedResult struct {
	events []string
	err    error
}

// feedChunks feeds the chunks in order, stopping at the first error, and
// checks that the error is sticky.
func feedChunks(t *testing.T, cfg Reader, chunks [][]byte) feedResult {
	t.Helper()
	r := cfg
	rec := &recorder{}
	for _, c := range chunks {
		// Feed a copy so that a Reader that kept a reference to an
		// earlier chunk instead of copying it would see garbage.
		c = bytes.Clone(c)
		if err := r.Feed(c, rec); err != nil {
			clear(c)
			if again := r.Feed([]byte{0x81, 0}, rec); again != err {
				t.Fatalf("error not sticky: first %v, then %v", err, again)
			}
			return feedResult{rec.events, err}
		}
		clear(c)
	}
	return feedResult{rec.events, nil}
}

func codeOf(err error) int {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe.Code
	}
	if err != nil {
		return -1
	}
	return 0
}

type readerCase struct {
	name     string
	cfg      Reader
	in       []byte
	want     []string
	wantCode int // 0: no error
}

func readerCases() []readerCase {
	big := strings.Repeat("0123456789", 7000) // 70,000 bytes: 64-bit length
	mid := strings.Repeat("x", 300)           // 16-bit length
	utf := Reader{ValidateUTF8: true}
	comp := Reader{Compression: true}
	small := Reader{MaxMessageSize: 10}
	return []readerCase{
		{name: "text", in: sf(0x81, "hello"), want: []string{`text:"hello"`}},
		{name: "empty text", in: sf(0x81, ""), want: []string{`text:""`}},
		{name: "binary 16-bit length", in: sf(0x82, mid), want: []string{"binary:" + describe([]byte(mid))}},
		{name: "binary 64-bit length", in: sf(0x82, big), want: []string{"binary:" + describe([]byte(big))}},
		{name: "non-minimal 16-bit length accepted", in: []byte{0x81, 126, 0, 2, 'h', 'i'}, want: []string{`text:"hi"`}},
		{name: "ping and pong", in: cat(sf(0x89, "p1"), sf(0x8a, ""), sf(0x89, strings.Repeat("z", 125))),
			want: []string{`ping:"p1"`, `pong:""`, "ping:" + describe([]byte(strings.Repeat("z", 125)))}},
		{name: "several messages", in: cat(sf(0x81, "a"), sf(0x82, "b"), sf(0x81, "c")),
			want: []string{`text:"a"`, `binary:"b"`, `text:"c"`}},
		{name: "fragmented text with interleaved ping", in: cat(sf(0x01, "Hel"), sf(0x89, "p"), sf(0x00, "lo"), sf(0x8a, "q"), sf(0x80, "!")),
			want: []string{`ping:"p"`, `pong:"q"`, `text:"Hello!"`}},
		{name: "fragmented binary then text", in: cat(sf(0x02, mid), sf(0x80, mid), sf(0x81, "after")),
			want: []string{"binary:" + describe([]byte(mid+mid)), `text:"after"`}},
		{name: "fragment with empty first frame", in: cat(sf(0x01, ""), sf(0x80, "x")), want: []string{`text:"x"`}},
		{name: "rune split across fragments is valid", cfg: utf, in: cat(sf(0x01, "\xc3"), sf(0x80, "\xa9")), want: []string{`text:"é"`}},
		{name: "close with code and reason", in: sf(0x88, closePayload(1000, "bye")), want: []string{`close:1000:"bye"`}},
		{name: "close without payload", in: sf(0x88, ""), want: []string{`close:1005:""`}},
		{name: "close codes 1014, 3000, 4999", in: sf(0x88, closePayload(1014, "")), want: []string{`close:1014:""`}},
		{name: "application close code", in: sf(0x88, closePayload(4999, "app")), want: []string{`close:4999:"app"`}},
		{name: "bytes after close ignored", in: cat(sf(0x88, closePayload(1001, "")), sf(0x81, "late"), []byte{0xff, 0xff}), want: []string{`close:1001:""`}},
		{name: "invalid UTF-8 accepted without validation", in: cat(sf(0x81, "\xff"), sf(0x88, closePayload(1000, "\xfe"))),
			want: []string{`text:"\xff"`, `close:1000:"\xfe"`}},
		{name: "binary not UTF-8 checked", cfg: utf, in: sf(0x82, "\xff"), want: []string{`binary:"\xff"`}},
		{name: "uncompressed message on a compressed connection", cfg: comp, in: sf(0x81, "plain"), want: []string{`text:"plain"`}},
		{name: "message at size limit", cfg: small, in: cat(sf(0x01, "12345"), sf(0x80, "67890")), want: []string{`text:"1234567890"`}},

		{name: "masked server frame", in: []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}, wantCode: 1002},
		{name: "reserved opcode 3", in: sf(0x83, ""), wantCode: 1002},
		{name: "reserved opcode 7", in: sf(0x87, "x"), wantCode: 1002},
		{name: "reserved control opcode 0xB", in: sf(0x8b, ""), wantCode: 1002},
		{name: "reserved control opcode 0xF", in: sf(0x8f, ""), wantCode: 1002},
		{name: "RSV1 without compression", in: sf(0xc1, "x"), wantCode: 1002},
		{name: "RSV2", cfg: comp, in: sf(0xa1, "x"), wantCode: 1002},
		{name: "RSV3", cfg: comp, in: sf(0x91, "x"), wantCode: 1002},
		{name: "RSV1 on ping", cfg: comp, in: sf(0xc9, ""), wantCode: 1002},
		{name: "RSV1 on continuation", cfg: comp, in: cat(sf(0x41, "\x00"), sf(0xc0, "")), wantCode: 1002},
		{name: "fragmented ping", in: sf(0x09, "x"), wantCode: 1002},
		{name: "fragmented close", in: sf(0x08, ""), wantCode: 1002},
		{name: "ping of 126 bytes", in: sf(0x89, strings.Repeat("p", 126)), wantCode: 1002},
		{name: "close of 126 bytes", in: sf(0x88, closePayload(1000, strings.Repeat("r", 124))), wantCode: 1002},
		{name: "continuation without start", in: sf(0x80, "x"), wantCode: 1002},
		{name: "events before the error are delivered", in: cat(sf(0x81, "ok"), sf(0x80, "x")), want: []string{`text:"ok"`}, wantCode: 1002},
		{name: "new message inside fragmented one", in: cat(sf(0x01, "a"), sf(0x81, "b")), wantCode: 1002},
		{name: "new fragmented message inside fragmented one", in: cat(sf(0x02, "a"), sf(0x89, "p"), sf(0x02, "b")), want: []string{`ping:"p"`}, wantCode: 1002},
		{name: "close with 1-byte payload", in: sf(0x88, "\x03"), wantCode: 1002},
		{name: "close code 999", in: sf(0x88, closePayload(999, "")), wantCode: 1002},
		{name: "close code 1004", in: sf(0x88, closePayload(1004, "")), wantCode: 1002},
		{name: "close code 1005 on the wire", in: sf(0x88, closePayload(1005, "")), wantCode: 1002},
		{name: "close code 1006 on the wire", in: sf(0x88, closePayload(1006, "")), wantCode: 1002},
		{name: "close code 1015", in: sf(0x88, closePayload(1015, "")), wantCode: 1002},
		{name: "close code 2999", in: sf(0x88, closePayload(2999, "")), wantCode: 1002},
		{name: "close code 5000", in: sf(0x88, closePayload(5000, "")), wantCode: 1002},
		{name: "close reason not UTF-8", cfg: utf, in: sf(0x88, closePayload(1000, "\xff")), wantCode: 1007},
		{name: "text not UTF-8", cfg: utf, in: sf(0x81, "ok\xff"), wantCode: 1007},
		{name: "fragmented text not UTF-8", cfg: utf, in: cat(sf(0x01, "\xc3"), sf(0x80, "x")), wantCode: 1007},
		{name: "64-bit length with top bit set", in: []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, wantCode: 1002},
		{name: "64-bit length beyond default limit", in: []byte{0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0}, wantCode: 1009},
		{name: "message over limit", cfg: small, in: sf(0x81, "12345678901"), wantCode: 1009},
		{name: "fragments over limit", cfg: small, in: cat(sf(0x01, "123456"), sf(0x89, ""), sf(0x80, "78901")), want: []string{`ping:""`}, wantCode: 1009},
		{name: "corrupt deflate data", cfg: comp, in: sf(0xc1, "\xff\xff\xff\xff"), wantCode: 1007},
	}
}

// splits returns the ways a case's input is cut into chunks: whole, in two at
// every offset (sampled for big inputs), byte by byte, and in three.
func splits(in []byte) [][][]byte {
	out := [][][]byte{{in}, {nil, in, nil}}
	step := 1
	if len(in) > 2000 {
		step = 997
	}
	for i := 0; i <= len(in); i++ {
		if step > 1 && i > 20 && i < len(in)-20 && i%step != 0 {
			continue
		}
		out = append(out, [][]byte{in[:i], in[i:]})
		if j := i + (len(in)-i)/2; i < j {
			out = append(out, [][]byte{in[:i], in[i:j], in[j:]})
		}
	}
	if len(in) <= 2000 {
		bytewise := make([][]byte, len(in))
		for i := range in {
			bytewise[i] = in[i : i+1]
		}
		out = append(out, bytewise)
	}
	return out
}

func TestReaderFeed(t *testing.T) {
	for _, tt := range readerCases() {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunks := range splits(tt.in) {
				got := feedChunks(t, tt.cfg, chunks)
				if code := codeOf(got.err); code != tt.wantCode {
					t.Fatalf("split %d chunks (first %d bytes): error %v (code %d), want code %d", len(chunks), len(chunks[0]), got.err, code, tt.wantCode)
				}
				if !slices.Equal(got.events, tt.want) {
					t.Fatalf("split %d chunks (first %d bytes): events %q, want %q", len(chunks), len(chunks[0]), got.events, tt.want)
				}
			}
		})
	}
}

// A 64-bit length that does not fit the limit must fail as soon as the header
// is complete, not after buffering the payload.
func TestReaderOversizeFailsAtHeader(t *testing.T) {
	r := Reader{MaxMessageSize: 1000}
	hdr := binary.BigEndian.AppendUint64([]byte{0x82, 127}, 1001)
	err := r.Feed(hdr, &recorder{})
	if codeOf(err) != CloseMessageTooBig {
		t.Fatalf("Feed(header of 1001-byte frame) = %v, want code 1009", err)
	}
}

func TestReaderZeroCopyForWholeFrames(t *testing.T) {
	data := cat(sf(0x81, "first"), sf(0x82, "second"))
	var offsets []int
	h := handlerFunc(func(op Opcode, p []byte) {
		for i := range data {
			if &data[i] == &p[0] {
				offsets = append(offsets, i)
			}
		}
	})
	var r Reader
	if err := r.Feed(data, h); err != nil {
		t.Fatalf("Feed: %v", err)
	}
	if want := []int{2, 9}; !slices.Equal(offsets, want) {
		t.Fatalf("payloads found at offsets %v of data, want %v (sub-slices, no copy)", offsets, want)
	}
}

// handlerFunc adapts a message callback to Handler, ignoring control frames.
type handlerFunc func(op Opcode, p []byte)

func (f handlerFunc) OnMessage(op Opcode, p []byte) { f(op, p) }
func (handlerFunc) OnPing([]byte)                   {}
func (handlerFunc) OnPong([]byte)                   {}
func (handlerFunc) OnClose(int, string)             {}

func TestReaderReset(t *testing.T) {
	r := Reader{ValidateUTF8: true, MaxMessageSize: 100}
	rec := &recorder{}
	// Leave a fragmented message and a partial frame pending, then reset.
	if err := r.Feed(cat(sf(0x01, "pending"), []byte{0x80}), rec); err != nil {
		t.Fatalf("Feed: %v", err)
	}
	r.Reset()
	if !r.ValidateUTF8 || r.MaxMessageSize != 100 {
		t.Fatalf("Reset lost the configuration: %+v", r)
	}
	if err := r.Feed(sf(0x81, "fresh"), rec); err != nil {
		t.Fatalf("Feed after Reset: %v", err)
	}
	if want := []string{`text:"fresh"`}; !slices.Equal(rec.events, want) {
		t.Fatalf("events %q, want %q", rec.events, want)
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	var random []byte
	x := uint32(1)
	for range 70_000 {
		x = x*1664525 + 1013904223
		random = append(random, byte(x>>24))
	}
	tests := []struct {
		name    string
		op      Opcode
		payload []byte
	}{
		{"empty", OpText, nil},
		{"short text", OpText, []byte("hello, compressed world")},
		{"repetitive 1 MiB", OpBinary, bytes.Repeat([]byte("wsload "), 1<<20/7)},
		{"incompressible 70 KB", OpBinary, random},
	}
	var c Compressor
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := c.AppendMessage(nil, tt.op, tt.payload, [4]byte{5, 6, 7, 8})
			if err != nil {
				t.Fatalf("AppendMessage: %v", err)
			}
			if client[0] != finBit|rsv1Bit|byte(tt.op) {
				t.Fatalf("first byte %#x, want FIN|RSV1|%v", client[0], tt.op)
			}
			again, _ := c.AppendMessage(nil, tt.op, tt.payload, [4]byte{5, 6, 7, 8})
			if !bytes.Equal(client, again) {
				t.Fatalf("compressing twice gave different bytes: state carried over between messages")
			}
			in := serverFrames(t, client)
			want := []string{tt.op.String() + ":" + describe(tt.payload)}
			if tt.payload == nil {
				want = []string{tt.op.String() + `:""`}
			}
			for _, chunks := range [][][]byte{{in}, {in[:len(in)/2], in[len(in)/2:]}} {
				got := feedChunks(t, Reader{Compression: true, ValidateUTF8: true}, chunks)
				if got.err != nil || !slices.Equal(got.events, want) {
					t.Fatalf("Reader got %q, %v; want %q", got.events, got.err, want)
				}
			}

			// The same compressed bytes cut into fragments: RSV1 only
			// on the first.
			z := in[headerLen(in[0], in[1]):]
			cut := len(z) / 2
			frag := cat(sf(rsv1Bit|byte(tt.op), string(z[:cut])), sf(0x89, "ping"), sf(finBit, string(z[cut:])))
			got := feedChunks(t, Reader{Compression: true}, [][]byte{frag})
			if wantFrag := append([]string{`ping:"ping"`}, want...); got.err != nil || !slices.Equal(got.events, wantFrag) {
				t.Fatalf("fragmented: Reader got %q, %v; want %q", got.events, got.err, wantFrag)
			}
		})
	}
}

func TestCompressionBombStopsAtLimit(t *testing.T) {
	var c Compressor
	client, err := c.AppendMessage(nil, OpBinary, make([]byte, 1<<20), [4]byte{})
	if err != nil {
		t.Fatalf("AppendMessage: %v", err)
	}
	in := serverFrames(t, client)
	got := feedChunks(t, Reader{Compression: true, MaxMessageSize: 4096}, [][]byte{in})
	if codeOf(got.err) != CloseMessageTooBig {
		t.Fatalf("1 MiB of zeros under a 4 KiB limit: %v, want code 1009", got.err)
	}
}

func TestCompressorRejectsControl(t *testing.T) {
	var c Compressor
	if _, err := c.AppendMessage(nil, OpPing, []byte("x"), [4]byte{}); err == nil {
		t.Fatalf("AppendMessage(OpPing) succeeded, want error")
	}
	if _, err := NewCompressor(42); err == nil {
		t.Fatalf("NewCompressor(42) succeeded, want error")
	}
	c2, err := NewCompressor(9)
	if err != nil {
		t.Fatalf("NewCompressor(9): %v", err)
	}
	out, err := c2.AppendMessage(nil, OpText, []byte("level nine"), [4]byte{})
	if err != nil {
		t.Fatalf("AppendMessage: %v", err)
	}
	got := feedChunks(t, Reader{Compression: true}, [][]byte{serverFrames(t, out)})
	if want := []string{`text:"level nine"`}; !slices.Equal(got.events, want) {
		t.Fatalf("events %q, want %q", got.events, want)
	}
}

type nopHandler struct{}

func (nopHandler) OnMessage(Opcode, []byte) {}
func (nopHandler) OnPing([]byte)            {}
func (nopHandler) OnPong([]byte)            {}
func (nopHandler) OnClose(int, string)      {}

func TestZeroAllocs(t *testing.T) {
	whole := cat(sf(0x81, "hello"), sf(0x89, "p"), sf(0x82, strings.Repeat("b", 300)))
	fragmented := cat(sf(0x01, "frag"), sf(0x80, "ment"))
	split := sf(0x81, strings.Repeat("s", 1000))
	var c Compressor
	zc, _ := c.AppendMessage(nil, OpText, bytes.Repeat([]byte("compress me "), 50), [4]byte{})
	compressed := serverFrames(t, zc)

	var r Reader
	rc := Reader{Compression: true}
	payload := make([]byte, 1024)
	dst := make([]byte, 0, 2048)
	tests := []struct {
		name     string
		skipRace bool
		f        func()
	}{
		{"Feed whole frames", false, func() { _ = r.Feed(whole, nopHandler{}) }},
		{"Feed fragmented", false, func() { _ = r.Feed(fragmented, nopHandler{}) }},
		{"Feed split frame", false, func() {
			_ = r.Feed(split[:500], nopHandler{})
			_ = r.Feed(split[500:], nopHandler{})
		}},
		// sync.Pool drops items at random under the race detector.
		{"Feed compressed", true, func() { _ = rc.Feed(compressed, nopHandler{}) }},
		{"AppendFrame", false, func() { dst = AppendFrame(dst[:0], OpBinary, true, payload, [4]byte{1, 2, 3, 4}) }},
		{"AppendClose", false, func() { dst = AppendClose(dst[:0], 1000, "bye", [4]byte{1, 2, 3, 4}) }},
		{"Compressor", false, func() { dst, _ = c.AppendMessage(dst[:0], OpBinary, payload, [4]byte{1, 2, 3, 4}) }},
	}
	for _, tt := range tests {
		if tt.skipRace && raceEnabled {
			continue
		}
		tt.f() // warm up buffers
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Fatalf("%s: %v allocs per run, want 0", tt.name, n)
		}
	}
	if err := r.Feed(nil, nopHandler{}); err != nil {
		t.Fatalf("reader failed during the alloc runs: %v", err)
	}
}
