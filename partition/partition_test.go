package partition

import (
	"math"
	"testing"
)

// A load split n ways and each part re-split m ways covers every connection number, every data
// row and the whole rate exactly once, at every load level (a scenario phase's count changes
// over time), and each process's numbers map back to its own 0…share-1.
func TestSplitCoversEveryConnectionOnce(t *testing.T) {
	const rate = 1234.5
	for _, total := range []int64{0, 1, 2, 3, 7, 10, 64, 99, 1000, 1001} {
		for n := 1; n <= 5; n++ {
			for m := 1; m <= 4; m++ {
				for _, rows := range []int64{1, 3, 10} {
					seen := make([]int, total)
					rowSeen := make([]int64, rows)
					var share, rateSum float64
					for i := 0; i < n; i++ {
						seg := Partition{Slot: i, Slots: n}
						if n == 1 {
							seg = Partition{}
						}
						for k := 0; k < m; k++ {
							p := seg.Split(k, m)
							if err := p.Validate(); err != nil {
								t.Fatalf("%v split %d/%d: %v", seg, k, m, err)
							}
							c := p.Share(total)
							share += float64(c)
							rateSum += p.Rate(rate, total)
							for j := 0; j < int(c); j++ {
								id := p.ID(j)
								if id < 0 || id >= total {
									t.Fatalf("total %d, %d×%d: %v's connection %d is number %d, outside 0…%d", total, n, m, p, j, id, total-1)
								}
								if !p.Owns(id) || p.Index(id) != j {
									t.Fatalf("%v: ID(%d) = %d, but Owns %v, Index %d", p, j, id, p.Owns(id), p.Index(id))
								}
								seen[id]++
								rowSeen[id%rows]++
							}
						}
					}
					for id, k := range seen {
						if k != 1 {
							t.Fatalf("total %d split %d then %d: connection %d taken %d times", total, n, m, id, k)
						}
					}
					// Rows are taken as often as one process would take them: row r by the
					// connections numbered r, r+rows, …
					for r, k := range rowSeen {
						want := total / rows
						if int64(r) < total%rows {
							want++
						}
						if k != want {
							t.Fatalf("total %d split %d then %d: data row %d used %d times, want %d", total, n, m, r, k, want)
						}
					}
					if int64(share) != total {
						t.Fatalf("total %d split %d then %d: shares add up to %v", total, n, m, share)
					}
					if total > 0 && math.Abs(rateSum-rate) > 1e-9*rate {
						t.Fatalf("total %d split %d then %d: rates add up to %v, want %v", total, n, m, rateSum, rate)
					}
				}
			}
		}
	}
}

// A Share of a Split equals the Split's Share of the whole: what a worker of a segment takes is
// what that worker would take if the whole run were split into segments × workers at once.
func TestSplitOfSplitIsFlat(t *testing.T) {
	for total := int64(0); total < 200; total++ {
		for n := 1; n <= 4; n++ {
			for m := 1; m <= 3; m++ {
				var sum int64
				for i := 0; i < n; i++ {
					for k := 0; k < m; k++ {
						p := Partition{Slot: i, Slots: n}.Split(k, m)
						flat := Partition{Slot: i + k*n, Slots: n * m}
						if p != flat && !(n*m == 1 && p.IsWhole() && flat.IsWhole()) {
							t.Fatalf("%d/%d split %d/%d = %+v, want %+v", i, n, k, m, p, flat)
						}
						sum += p.Share(total)
					}
				}
				if sum != total {
					t.Fatalf("total %d: %d×%d shares add up to %d", total, n, m, sum)
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Partition{{}, {0, 1}, {3, 4}, {0, MaxSlots}} {
		if err := p.Validate(); err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
	}
	for _, p := range []Partition{{1, 0}, {-1, 2}, {2, 2}, {0, -1}, {0, MaxSlots + 1}} {
		if err := p.Validate(); err == nil {
			t.Fatalf("%+v: no error", p)
		}
	}
	if s := (Partition{Slot: 1, Slots: 4}).String(); s != "2/4" {
		t.Fatalf("String = %q", s)
	}
}
