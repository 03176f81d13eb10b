// Package partition splits one load over processes and machines, the same way for echo runs and
// scenario runs: a Partition is slot Slot of Slots, and it owns every connection number that is
// Slot modulo Slots. Numbering is interleaved (slot 1 of 4 owns 1, 5, 9, …), so at any load level
// n the slots together hold exactly the numbers below n that one process would: the first n
// connections of a scenario phase, the rows of its data file, and the points of the echo send
// grid. A slot splits again for the processes of one segment (Split), and the sub-slots cover
// their slot's numbers exactly once.
//
//	seg := partition.Partition{Slot: 1, Slots: 4} // --segment 2/4 (Segment counts from 1)
//	w := seg.Split(0, 2)                          // its first of two worker processes: slot 1 of 8
//	w.Share(1000)                                 // 125 of 1,000 connections
//	w.ID(3)                                       // 25: its fourth connection's number in the whole run
package partition

import (
	"fmt"
)

// Partition is slot Slot (0 <= Slot < Slots) of a load split Slots ways. The zero value is the
// whole load (slot 0 of 1).
type Partition struct {
	Slot, Slots int
}

// MaxSlots bounds Slots: connection numbers are 32-bit, and a load split further than that has
// empty slots at any size.
const MaxSlots = 1 << 20

// Count is the number of slots: Slots, or 1 for the zero value.
func (p Partition) Count() int { return max(p.Slots, 1) }

// IsWhole reports whether p is the whole load.
func (p Partition) IsWhole() bool { return p.Count() == 1 }

// Validate refuses a slot outside its slots.
func (p Partition) Validate() error {
	if p.Slots < 0 || p.Slots > MaxSlots || p.Slot < 0 || p.Slot >= p.Count() {
		return fmt.Errorf("partition: slot %d of %d: want 0 <= slot < slots <= %d", p.Slot, p.Slots, MaxSlots)
	}
	return nil
}

// Share is the number of p's connections among n: the numbers below n that are Slot modulo
// Slots. The shares of all slots add up to n for every n, and differ by at most one.
func (p Partition) Share(n int64) int64 {
	if n <= 0 {
		return 0
	}
	s := int64(p.Count())
	q, r := n/s, n%s
	if int64(p.Slot) < r {
		q++
	}
	return q
}

// ID is the number, in the whole load, of p's j-th connection (j counts from 0).
func (p Partition) ID(j int) int64 { return int64(p.Slot) + int64(j)*int64(p.Count()) }

// Index is the inverse of ID: which of p's connections the whole load's number id is. id must
// belong to p (id modulo Slots is Slot).
func (p Partition) Index(id int64) int { return int(id / int64(p.Count())) }

// Owns reports whether the whole load's connection number id is one of p's.
func (p Partition) Owns(id int64) bool { return id >= 0 && id%int64(p.Count()) == int64(p.Slot) }

// Split is sub-slot i (0 <= i < n) of p split n ways: slot Slot + i*Slots of Slots*n. The
// sub-slots' numbers are exactly p's, each in one sub-slot, and a Share of a Split is the Split's
// Share of the whole, so splitting a segment over processes keeps every count exact.
func (p Partition) Split(i, n int) Partition {
	if n <= 1 {
		return p
	}
	s := p.Count()
	return Partition{Slot: p.Slot + i*s, Slots: s * n}
}

// Rate is p's part of a rate that the whole load of n connections has in total (a connect rate,
// a total message rate): in proportion to p's share of the connections, so the parts add up.
func (p Partition) Rate(total float64, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return total * float64(p.Share(n)) / float64(n)
}

// String is "slot/slots" counting from 1, like --segment: "2/4"; "1/1" for the whole load.
func (p Partition) String() string { return fmt.Sprintf("%d/%d", p.Slot+1, p.Count()) }
