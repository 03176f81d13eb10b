package stats

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Sparse histograms for Merge. A dense histogram of wsload's geometry holds
// about 184 KB of counts whatever it records, and the library's encoder and
// decoder each set up a new zlib stream (about 1 MB to compress at the best
// level, 45 KB to inflate). A result of 6,000 steps holds over 12,000
// histograms of a few samples each: merging two such results the dense way
// allocated about 20 GB. Here the histograms are hdrhistogram's packed
// (sparse) ones, which grow with the buckets they populate, and the V2
// encoding is read and written with pooled zlib streams. The bytes are those
// of the library's encoder (pinned by a test), so other HdrHistogram tools
// read them as before.

// The wire header of wsload's geometry (see NewHistogram): the codec below
// handles it; any other geometry goes through the library.
const (
	v2EncodingCookie           = hdrhistogram.V2EncodingCookieBase | 0x10 // word size 8, as the library writes
	v2CompressedEncodingCookie = hdrhistogram.V2CompressedEncodingCookieBase | 0x10
	v2HeaderSize               = 40

	// wsload's geometry in the library's terms: unit magnitude 0, and
	// 2 × 10^3 values at unit resolution need 2^11 sub-buckets, half of them
	// per bucket after the first.
	subBucketHalfCountMagnitude = 10
	subBucketHalfCount          = 1 << subBucketHalfCountMagnitude
	subBucketMask               = 2*subBucketHalfCount - 1
	// maxVarintCount keeps counts where LEB128 and Go's uvarint agree (the
	// ninth byte of HdrHistogram's LEB128 holds 8 bits, uvarint's 7).
	maxVarintCount = 1 << 55
)

// freeList keeps a few values for reuse. Unlike sync.Pool it never drops
// them (sync.Pool drops some on every GC, and at random under the race
// detector), so what a merge allocates does not depend on the collector.
type freeList[T any] struct {
	mu   sync.Mutex
	free []T
}

func (l *freeList[T]) get() (v T, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		v, l.free = l.free[n-1], l.free[:n-1]
		return v, true
	}
	return v, false
}

// put keeps v unless 4 are kept already (a writer holds about 1 MB).
func (l *freeList[T]) put(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < 4 {
		l.free = append(l.free, v)
	}
}

var (
	zlibWriters freeList[*zlib.Writer]
	zlibReaders freeList[io.ReadCloser] // zlib readers, which are zlib.Resetter

	emptyOnce sync.Once
	emptyHDR  string // an empty histogram's encoding (a payload of one 0)
)

// newSparse returns an empty packed histogram of wsload's geometry.
func newSparse() *hdrhistogram.PackedHistogram {
	return hdrhistogram.NewPacked(LowestUS, HighestUS, SigFigs)
}

// wsloadGeometry reports whether p has the geometry the codec handles.
func wsloadGeometry(p *hdrhistogram.PackedHistogram) bool {
	return p.LowestTrackableValue() == LowestUS && p.HighestTrackableValue() == HighestUS && p.SignificantFigures() == SigFigs
}

// countsIndex is the library's flat counts index of v (>= 0) in wsload's
// geometry.
func countsIndex(v int64) int64 {
	bucket := int64(64-bits.LeadingZeros64(uint64(v)|subBucketMask)) - (subBucketHalfCountMagnitude + 1)
	sub := v >> uint(bucket)
	return (bucket+1)<<subBucketHalfCountMagnitude + sub - subBucketHalfCount
}

// valueAt is the lowest value of flat counts index idx in wsload's geometry.
func valueAt(idx int64) int64 {
	bucket := idx>>subBucketHalfCountMagnitude - 1
	sub := idx&(subBucketHalfCount-1) + subBucketHalfCount
	if bucket < 0 {
		sub -= subBucketHalfCount
		bucket = 0
	}
	return sub << uint(bucket)
}

// decodeSparse decodes a V2 compressed base64 histogram into a packed one.
func decodeSparse(hdr string) (*hdrhistogram.PackedHistogram, error) {
	raw, err := base64.StdEncoding.DecodeString(hdr)
	if err != nil || len(raw) < 8 || int32(binary.BigEndian.Uint32(raw))&^0xf0 != hdrhistogram.V2CompressedEncodingCookieBase {
		return hdrhistogram.DecodePacked([]byte(hdr)) // the library's error
	}
	clen := binary.BigEndian.Uint32(raw[4:])
	if int64(clen) > int64(len(raw)-8) {
		return hdrhistogram.DecodePacked([]byte(hdr))
	}
	src := bytes.NewReader(raw[8 : 8+clen])
	var z io.ReadCloser
	if r, ok := zlibReaders.get(); ok && r.(zlib.Resetter).Reset(src, nil) == nil {
		z = r
	} else if z, err = zlib.NewReader(bytes.NewReader(raw[8 : 8+clen])); err != nil {
		return hdrhistogram.DecodePacked([]byte(hdr))
	}
	defer zlibReaders.put(z)
	var head [v2HeaderSize]byte
	if _, err := io.ReadFull(z, head[:]); err != nil {
		return hdrhistogram.DecodePacked([]byte(hdr))
	}
	cookie := binary.BigEndian.Uint32(head[0:])
	payloadLen := int64(binary.BigEndian.Uint32(head[4:]))
	sig := int32(binary.BigEndian.Uint32(head[12:]))
	low := int64(binary.BigEndian.Uint64(head[16:]))
	high := int64(binary.BigEndian.Uint64(head[24:]))
	ratio := math.Float64frombits(binary.BigEndian.Uint64(head[32:]))
	maxIdx := countsIndex(HighestUS)
	if int32(cookie)&^0xf0 != hdrhistogram.V2EncodingCookieBase || sig != SigFigs || low != LowestUS || high != HighestUS ||
		ratio != 1 || payloadLen > 9*(maxIdx+1) {
		// Another geometry, or something to reject: the library's decoder
		// handles and explains both.
		return hdrhistogram.DecodePacked([]byte(hdr))
	}
	payload, err := io.ReadAll(io.LimitReader(z, payloadLen+1))
	if err != nil || int64(len(payload)) != payloadLen {
		return hdrhistogram.DecodePacked([]byte(hdr))
	}
	p := newSparse()
	var idx int64
	for pos := 0; pos < len(payload); {
		u, n := binary.Uvarint(payload[pos:])
		if n <= 0 || n > 8 {
			return hdrhistogram.DecodePacked([]byte(hdr)) // 9-byte varints, or corrupt
		}
		pos += n
		count := int64(u>>1) ^ -int64(u&1)
		// Anything out of the ordinary (an index past HighestUS's bucket,
		// a count the total cannot hold) is left to the library, whose
		// checks are the reference.
		switch {
		case count < 0:
			idx += -count
		case idx > maxIdx:
			return hdrhistogram.DecodePacked([]byte(hdr))
		default:
			if count > 0 && p.RecordValues(valueAt(idx), count) != nil {
				return hdrhistogram.DecodePacked([]byte(hdr))
			}
			idx++
		}
		if idx < 0 || idx > maxIdx+1 {
			return hdrhistogram.DecodePacked([]byte(hdr))
		}
	}
	return p, nil
}

// encodeSparse is p.Encode() with a pooled zlib stream: the same bytes.
func encodeSparse(p *hdrhistogram.PackedHistogram) (string, error) {
	if p.TotalCount() == 0 && wsloadGeometry(p) {
		emptyOnce.Do(func() {
			b, _ := newSparse().Encode()
			emptyHDR = string(b)
		})
		return emptyHDR, nil
	}
	if !wsloadGeometry(p) || p.TotalCount() >= maxVarintCount {
		b, err := p.Encode()
		return string(b), err
	}
	inner := make([]byte, v2HeaderSize, v2HeaderSize+64)
	var next int64 // the next flat index to write
	var ok = true
	p.ForEachBucket(func(value, count int64) bool {
		idx := countsIndex(value)
		if idx < next {
			ok = false
			return false
		}
		switch zeros := idx - next; {
		case zeros > 1:
			inner = binary.AppendUvarint(inner, uint64(zeros)<<1-1) // zig-zag of -zeros
		case zeros == 1:
			inner = append(inner, 0)
		}
		inner = binary.AppendUvarint(inner, uint64(count)<<1)
		next = idx + 1
		return true
	})
	if !ok {
		b, err := p.Encode()
		return string(b), err
	}
	binary.BigEndian.PutUint32(inner[0:], uint32(v2EncodingCookie))
	binary.BigEndian.PutUint32(inner[4:], uint32(len(inner)-v2HeaderSize))
	binary.BigEndian.PutUint32(inner[8:], 0)
	binary.BigEndian.PutUint32(inner[12:], SigFigs)
	binary.BigEndian.PutUint64(inner[16:], uint64(LowestUS))
	binary.BigEndian.PutUint64(inner[24:], uint64(HighestUS))
	binary.BigEndian.PutUint64(inner[32:], math.Float64bits(1))

	var zb bytes.Buffer
	zb.Write(make([]byte, 8))
	w, ok := zlibWriters.get()
	if ok {
		w.Reset(&zb)
	} else {
		w, _ = zlib.NewWriterLevel(&zb, zlib.BestCompression) // the level the library uses
	}
	_, _ = w.Write(inner) // into memory: cannot fail
	_ = w.Close()
	w.Reset(io.Discard) // drop zb
	zlibWriters.put(w)
	out := zb.Bytes()
	binary.BigEndian.PutUint32(out[0:], uint32(v2CompressedEncodingCookie))
	binary.BigEndian.PutUint32(out[4:], uint32(len(out)-8))
	return base64.StdEncoding.EncodeToString(out), nil
}

// sparseQuantile is Quantile for a packed histogram: the reference's rank,
// asked of the library's nearest-rank walk with a quarter sample of margin.
func sparseQuantile(p *hdrhistogram.PackedHistogram, percent float64) int64 {
	if p.TotalCount() == 0 {
		return 0
	}
	if percent == 0 {
		return p.ValueAtPercentile(0)
	}
	rank := refRank(percent, p.TotalCount())
	return p.ValueAtPercentile(100 * (float64(rank) - 0.25) / float64(p.TotalCount()))
}

// newSparseLatency is NewLatency for a packed histogram (nil is empty).
func newSparseLatency(p *hdrhistogram.PackedHistogram) (Latency, error) {
	if p == nil {
		p = newSparse()
	}
	l := Latency{
		Count:    p.TotalCount(),
		MinUS:    p.Min(),
		MeanUS:   p.Mean(),
		StddevUS: p.StdDev(),
		MaxUS:    p.Max(),
		P50US:    sparseQuantile(p, 50),
		P90US:    sparseQuantile(p, 90),
		P99US:    sparseQuantile(p, 99),
		P999US:   sparseQuantile(p, 99.9),
		P9999US:  sparseQuantile(p, 99.99),
	}
	hdr, err := encodeSparse(p)
	if err != nil {
		return l, fmt.Errorf("stats: encoding histogram: %w", err)
	}
	l.HDR = hdr
	return l, nil
}

// sparseOf decodes l into a packed histogram, checking its count; an empty
// l gives nil.
func sparseOf(l *Latency) (*hdrhistogram.PackedHistogram, error) {
	if l.HDR == "" {
		if l.Count != 0 {
			return nil, fmt.Errorf("stats: latency has count %d but no hdr", l.Count)
		}
		return nil, nil
	}
	p, err := decodeSparse(l.HDR)
	if err != nil {
		return nil, fmt.Errorf("stats: decoding hdr: %w", err)
	}
	if p.TotalCount() != l.Count {
		return nil, fmt.Errorf("stats: hdr holds %d samples but count is %d", p.TotalCount(), l.Count)
	}
	return p, nil
}

// mergeSparse adds src into *dst (allocated on first use) and returns the
// samples clamped: as mergeHist, values dst's range cannot hold are
// recorded at its highest value rather than dropped.
func mergeSparse(dst **hdrhistogram.PackedHistogram, src *hdrhistogram.PackedHistogram) (clamped int64) {
	if src == nil || src.TotalCount() == 0 {
		return 0
	}
	if *dst == nil {
		*dst = newSparse()
	}
	dropped := (*dst).Merge(src)
	if dropped > 0 && (*dst).RecordValues(HighestUS, dropped) == nil {
		clamped = dropped
	}
	return clamped
}
