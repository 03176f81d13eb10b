package wsproto

import (
	"bytes"
	"strconv"
	"testing"
)

// BenchmarkReaderFeed measures parsing server frames as the engine feeds
// them: a read of many small whole frames, one large frame, frames cut across
// reads, and compressed messages. Throughput is of wire bytes.
func BenchmarkReaderFeed(b *testing.B) {
	batch := func(n, size int) []byte {
		var out []byte
		for range n {
			out = append(out, sf(0x81, string(bytes.Repeat([]byte{'m'}, size)))...)
		}
		return out
	}
	var c Compressor
	var compressed []byte
	for range 16 {
		z, _ := c.AppendMessage(nil, OpText, bytes.Repeat([]byte(`{"id":1,"ts":123456789,"v":"x"} `), 8), [4]byte{})
		compressed = append(compressed, unmaskForFuzz(z)...)
	}
	tests := []struct {
		name  string
		cfg   Reader
		data  []byte
		split int // >0: feed data[:split] and data[split:] separately
	}{
		{"64x64B", Reader{}, batch(64, 64), 0},
		{"64x64B-utf8", Reader{ValidateUTF8: true}, batch(64, 64), 0},
		{"1x64KB", Reader{}, batch(1, 64<<10), 0},
		{"64x64B-split", Reader{}, batch(64, 64), 64*66/2 + 1},
		{"16x256B-deflate", Reader{Compression: true}, compressed, 0},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			r := tt.cfg
			b.SetBytes(int64(len(tt.data)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if tt.split > 0 {
					err = r.Feed(tt.data[:tt.split], nopHandler{})
					if err == nil {
						err = r.Feed(tt.data[tt.split:], nopHandler{})
					}
				} else {
					err = r.Feed(tt.data, nopHandler{})
				}
				if err != nil {
					b.Fatalf("Feed: %v", err)
				}
			}
		})
	}
}

// BenchmarkAppendFrame measures framing and masking a message into a reused
// buffer, the per-send cost in the engine.
func BenchmarkAppendFrame(b *testing.B) {
	for _, size := range []int{16, 128, 1024, 64 << 10} {
		b.Run(strconv.Itoa(size)+"B", func(b *testing.B) {
			payload := bytes.Repeat([]byte{'p'}, size)
			dst := make([]byte, 0, size+14)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			mask := [4]byte{1, 2, 3, 4}
			for b.Loop() {
				mask[0]++
				dst = AppendFrame(dst[:0], OpText, true, payload, mask)
			}
		})
	}
}

// BenchmarkCompressor measures permessage-deflate sends at the default level.
func BenchmarkCompressor(b *testing.B) {
	payload := bytes.Repeat([]byte(`{"id":1,"ts":123456789,"v":"x"} `), 32) // 1 KiB
	var c Compressor
	dst := make([]byte, 0, 2048)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, err = c.AppendMessage(dst[:0], OpText, payload, [4]byte{1, 2, 3, 4})
		if err != nil {
			b.Fatalf("AppendMessage: %v", err)
		}
	}
}
