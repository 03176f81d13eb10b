package stats

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// sparsePair records the same samples into a dense and a packed histogram.
func sparsePair(samples []int64, counts []int64) (*hdrhistogram.Histogram, *hdrhistogram.PackedHistogram) {
	d, p := NewHistogram(), newSparse()
	for i, v := range samples {
		_ = d.RecordValues(v, counts[i])
		_ = p.RecordValues(v, counts[i])
	}
	return d, p
}

// TestSparseCodecMatchesLibrary: the pooled codec writes the library's
// bytes, reads back what the library reads, and a sparse Latency equals the
// dense one (percentiles, mean, stddev, hdr) on the same samples.
func TestSparseCodecMatchesLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := map[string]func() ([]int64, []int64){
		"empty":  func() ([]int64, []int64) { return nil, nil },
		"one":    func() ([]int64, []int64) { return []int64{1}, []int64{1} },
		"zero":   func() ([]int64, []int64) { return []int64{0}, []int64{3} },
		"top":    func() ([]int64, []int64) { return []int64{HighestUS, 1}, []int64{2, 1} },
		"second": func() ([]int64, []int64) { return []int64{2}, []int64{1} }, // a zero run of one
		"big counts": func() ([]int64, []int64) {
			return []int64{500, 90_000, 7_000_000}, []int64{1 << 40, 1 << 20, 3}
		},
	}
	for i := range 40 {
		shapes[fmt.Sprintf("random %d", i)] = func() ([]int64, []int64) {
			n := 1 + rng.IntN(3000)
			var vs, cs []int64
			for range n {
				vs = append(vs, 1+rng.Int64N(int64(1)<<(1+rng.IntN(31))))
				cs = append(cs, 1+rng.Int64N(5))
			}
			return vs, cs
		}
	}
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			d, p := sparsePair(shape())
			want, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeSparse(p)
			if err != nil || got != string(want) {
				t.Fatalf("encodeSparse = %q, %v\nlibrary     = %q", got, err, want)
			}
			dense, _ := d.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
			back, err := decodeSparse(string(dense))
			if err != nil {
				t.Fatalf("decodeSparse of the dense encoding: %v", err)
			}
			if again, _ := back.Encode(); string(again) != string(want) || back.TotalCount() != d.TotalCount() {
				t.Fatalf("decodeSparse then Encode differs: count %d, want %d", back.TotalCount(), d.TotalCount())
			}
			wl, err := NewLatency(d)
			if err != nil {
				t.Fatal(err)
			}
			gl, err := newSparseLatency(p)
			if err != nil || !reflect.DeepEqual(gl, wl) {
				t.Fatalf("newSparseLatency = %+v, %v\nNewLatency      = %+v", gl, err, wl)
			}
		})
	}
}

// TestSparseDecodeAgreesOnBadInput: on damaged encodings the pooled decoder
// fails exactly when the library's does, and agrees with it otherwise.
func TestSparseDecodeAgreesOnBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	_, p := sparsePair([]int64{3, 700, 80_000, 9_000_000}, []int64{1, 2, 3, 4})
	good, _ := p.Encode()
	other, _ := hdrhistogram.New(1, 1000, 2).Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	inputs := []string{"", "AAAA", "not base64!", string(good[:len(good)-4]), string(other)}
	for range 500 {
		b := []byte(good)
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.IntN(64)]
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		want, werr := hdrhistogram.DecodePacked([]byte(in))
		got, gerr := decodeSparse(in)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: decodeSparse error %v, library %v", in, gerr, werr)
		}
		if werr != nil {
			continue
		}
		we, _ := want.Encode()
		ge, _ := got.Encode()
		if string(we) != string(ge) || want.TotalCount() != got.TotalCount() {
			t.Fatalf("%q: decodeSparse and the library decode different histograms", in)
		}
	}
}

// TestMergeManyStepsIsCheap: merging results with many named steps of a few
// samples each allocates a few KB per step, not the ~3 MB per step of dense
// histograms and fresh zlib streams (measured as allocated bytes, which do
// not depend on the machine's speed).
func TestMergeManyStepsIsCheap(t *testing.T) {
	const steps = 1000
	mk := func(seg int) *Result {
		r := sampleResult(t)
		r.Config.Segment = Segment{Index: seg, Count: 2}
		r.Latency.Steps = map[string]StepLatency{}
		for i := range steps {
			h := newSparse()
			_ = h.RecordValue(int64(1000 + i))
			_ = h.RecordValue(int64(2000 + seg))
			l, _ := newSparseLatency(h)
			r.Latency.Steps[fmt.Sprintf("step-%d", i)] = StepLatency{Count: 2, Corrected: l, Uncorrected: l}
		}
		return r
	}
	a, b := mk(1), mk(2)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := Merge(a, b)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Latency.Steps["step-7"]; got.Count != 4 || got.Corrected.MinUS != 1007 || got.Corrected.MaxUS != 2002 {
		t.Fatalf("step-7 merged: %+v", got.Corrected)
	}
	perStep := (after.TotalAlloc - before.TotalAlloc) / steps
	if perStep > 32<<10 {
		t.Fatalf("Merge allocated %d bytes per step, want at most 32 KiB", perStep)
	}
	t.Logf("Merge allocated %d bytes per step", perStep)
}

// FuzzDecodeSparse: on any input the pooled decoder fails exactly when the
// library's does, and otherwise decodes the same histogram.
func FuzzDecodeSparse(f *testing.F) {
	_, p := sparsePair([]int64{3, 700, 80_000, 9_000_000}, []int64{1, 2, 3, 4})
	good, _ := p.Encode()
	f.Add(string(good))
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		want, werr := hdrhistogram.DecodePacked([]byte(in))
		got, gerr := decodeSparse(in)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("decodeSparse error %v, library %v", gerr, werr)
		}
		if werr == nil {
			we, _ := want.Encode()
			ge, _ := got.Encode()
			if string(we) != string(ge) {
				t.Fatalf("decodeSparse and the library decode different histograms")
			}
		}
	})
}
