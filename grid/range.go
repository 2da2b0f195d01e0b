// Package grid holds the one time convention every Seamless layer shares: half-open
// ranges [Start, End) of epoch seconds, bar timestamps on an interval grid measured from
// the Unix epoch, and Set, a normalised union of ranges used for coverage and planning.
//
// Invariants: a Range with Start >= End is empty; a Set is always sorted, its ranges are
// non-empty, disjoint and non-adjacent (touching ranges are merged), so two Sets covering
// the same instants are equal value for value.
package grid

import (
	"fmt"
	"iter"
	"math"
)

// Range is the half-open interval [Start, End) in epoch seconds.
type Range struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// R is shorthand for Range{start, end}.
func R(start, end int64) Range { return Range{Start: start, End: end} }

// Empty reports whether r contains no instant.
func (r Range) Empty() bool { return r.Start >= r.End }

// Len is the width of r in seconds (0 when empty). Widths beyond the int64 range
// saturate at math.MaxInt64.
func (r Range) Len() int64 {
	if r.Empty() {
		return 0
	}
	// The difference of two int64s always fits a uint64.
	return int64(min(uint64(r.End-r.Start), math.MaxInt64))
}

// Contains reports whether t lies in [Start, End).
func (r Range) Contains(t int64) bool { return r.Start <= t && t < r.End }

// Intersect returns the overlap of r and o (possibly empty).
func (r Range) Intersect(o Range) Range {
	return Range{Start: max(r.Start, o.Start), End: min(r.End, o.End)}
}

// Overlaps reports whether r and o share at least one instant.
func (r Range) Overlaps(o Range) bool { return !r.Intersect(o).Empty() }

func (r Range) String() string { return fmt.Sprintf("[%d, %d)", r.Start, r.End) }

// FloorAlign returns the largest multiple of step that is <= t. step must be > 0.
// It rounds toward negative infinity, so pre-epoch timestamps align like later ones.
// Within step of math.MinInt64, where that multiple is not representable, it returns
// the smallest representable multiple (the one just above t) rather than overflowing.
func FloorAlign(t, step int64) int64 {
	m := t % step
	if m < 0 {
		m += step
	}
	if t < math.MinInt64+m {
		return t + (step - m)
	}
	return t - m
}

// CeilAlign returns the smallest multiple of step that is >= t, saturating at the largest
// representable multiple instead of overflowing. step must be > 0.
func CeilAlign(t, step int64) int64 {
	f := FloorAlign(t, step)
	if f >= t {
		return f
	}
	if f > math.MaxInt64-step {
		return f
	}
	return f + step
}

// Align snaps r outward-inward to the grid: the result holds exactly the grid points
// t (t % step == 0) with r.Start <= t < r.End, as [first, last+step).
func (r Range) Align(step int64) Range {
	if r.Empty() {
		return Range{}
	}
	a := Range{Start: CeilAlign(r.Start, step), End: CeilAlign(r.End, step)}
	if a.Empty() {
		return Range{}
	}
	return a
}

// Bars is the number of grid points of the given step inside r.
func (r Range) Bars(step int64) int64 {
	a := r.Align(step)
	if a.Empty() {
		return 0
	}
	// The difference fits a uint64; the count saturates at math.MaxInt64.
	return int64(min(uint64(a.End-a.Start)/uint64(step), math.MaxInt64))
}

// Chunks splits r into pieces at the boundaries of the fixed grid of width `width`
// anchored at epoch 0, so that any two ranges touching the same chunk agree on its
// bounds. Each returned Range is the full aligned chunk; the part of r inside it is
// chunk.Intersect(r).
func (r Range) Chunks(width int64) []Range {
	var out []Range
	for c := range r.ChunkSeq(width) {
		out = append(out, c)
	}
	return out
}

// ChunkSeq yields the aligned chunks of Chunks without allocating.
func (r Range) ChunkSeq(width int64) iter.Seq[Range] {
	return func(yield func(Range) bool) {
		if r.Empty() {
			return
		}
		s := FloorAlign(r.Start, width)
		if s > r.Start { // no multiple of width at or below Start: begin at the start of time
			s = math.MinInt64
		}
		for s < r.End {
			e := s + width
			if e < s { // overflow at the end of time
				e = math.MaxInt64
			}
			if !yield(Range{Start: s, End: e}) || e == math.MaxInt64 {
				return
			}
			s = e
		}
	}
}
