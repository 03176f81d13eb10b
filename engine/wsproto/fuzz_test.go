package wsproto

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// FuzzReader feeds arbitrary bytes, whole and cut at two arbitrary points,
// under arbitrary settings. The Reader must not panic, must fail only with
// *ProtocolError, and must report the same events and error however the
// stream was cut.
func FuzzReader(f *testing.F) {
	for _, tc := range readerCases() {
		if len(tc.in) > 4096 {
			continue
		}
		var flags byte
		if tc.cfg.Compression {
			flags |= 1
		}
		if tc.cfg.ValidateUTF8 {
			flags |= 2
		}
		f.Add(tc.in, flags, uint16(len(tc.in)/3), uint16(len(tc.in)/2))
	}
	var c Compressor
	z, _ := c.AppendMessage(nil, OpText, []byte("fuzz me, fuzz me, fuzz me"), [4]byte{})
	f.Add(unmaskForFuzz(z), byte(3), uint16(3), uint16(9))

	f.Fuzz(func(t *testing.T, data []byte, flags byte, cut1, cut2 uint16) {
		cfg := Reader{
			Compression:    flags&1 != 0,
			ValidateUTF8:   flags&2 != 0,
			MaxMessageSize: 1 << 16, // keep inflation bombs cheap
		}
		whole := feedAll(t, cfg, [][]byte{data})
		i := int(cut1) % (len(data) + 1)
		j := i + int(cut2)%(len(data)-i+1)
		split := feedAll(t, cfg, [][]byte{data[:i], data[i:j], data[j:]})
		if !slices.Equal(whole.events, split.events) || codeOf(whole.err) != codeOf(split.err) {
			t.Fatalf("cut at %d,%d: %q / %v, whole: %q / %v", i, j, split.events, split.err, whole.events, whole.err)
		}
	})
}

// feedAll is feedChunks without the *testing.T helpers' copying, checking
// the error type.
func feedAll(t *testing.T, cfg Reader, chunks [][]byte) feedResult {
	r := cfg
	rec := &recorder{}
	for _, c := range chunks {
		if err := r.Feed(c, rec); err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("Feed returned %T %v, want *ProtocolError", err, err)
			}
			if pe.Code != CloseProtocolError && pe.Code != CloseInvalidPayload && pe.Code != CloseMessageTooBig {
				t.Fatalf("unexpected close code %d in %v", pe.Code, err)
			}
			return feedResult{rec.events, err}
		}
	}
	return feedResult{rec.events, nil}
}

// unmaskForFuzz converts one masked client frame with a short payload into
// the unmasked server form, for seeding.
func unmaskForFuzz(client []byte) []byte {
	hl := headerLen(client[0], client[1])
	out := []byte{client[0], client[1] &^ maskBit}
	out = append(out, client[2:hl-4]...)
	payload := bytes.Clone(client[hl:])
	var mask [4]byte
	copy(mask[:], client[hl-4:hl])
	maskBytes(payload, mask)
	return append(out, payload...)
}

// FuzzParseResponse checks ParseResponse's contract on arbitrary input:
// no panic; a complete head is a prefix that parses the same on its own
// and with bytes after it; incomplete only below the size limit.
func FuzzParseResponse(f *testing.F) {
	seeds := []string{
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
		"HTTP/1.1 404 Not Found\nContent-Length: 0\n\n",
		"HTTP/1.1 101 x\r\nX: a\r\n b\r\n\r\n\x81\x00",
		"HTTP/1.0 502\r\n\r\n",
		"HTTP/1.1 101 x\r\n\r",
		"HTTP/",
		"\x81\x05hello",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		resp, n, err := ParseResponse(buf)
		switch {
		case err != nil:
			if resp != nil || n != 0 {
				t.Fatalf("error %v with resp %v, n %d", err, resp, n)
			}
		case n == 0:
			if resp != nil {
				t.Fatalf("incomplete but resp %v", resp)
			}
			if len(buf) >= MaxResponseHead {
				t.Fatalf("incomplete with %d bytes, limit %d", len(buf), MaxResponseHead)
			}
		default:
			if resp == nil || n > len(buf) || n > MaxResponseHead {
				t.Fatalf("complete: resp %v, n %d of %d", resp, n, len(buf))
			}
			if resp.Status < 100 || resp.Status > 999 {
				t.Fatalf("status %d", resp.Status)
			}
			again, m, err := ParseResponse(buf[:n])
			if err != nil || m != n || again.Status != resp.Status || !headersEqual(again.Header, resp.Header) {
				t.Fatalf("head alone parses differently: %v, %d, %v", again, m, err)
			}
			for i := range n {
				if _, m, err := ParseResponse(buf[:i]); m != 0 && err == nil {
					t.Fatalf("prefix of %d bytes complete (n=%d) before the head's end %d", i, m, n)
				}
			}
		}
	})
}
