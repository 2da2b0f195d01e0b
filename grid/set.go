package grid

import (
	"math"
	"slices"
	"sort"
	"strings"
)

// Set is a union of half-open ranges kept normalised: sorted, non-empty, disjoint and
// non-adjacent. The zero value is the empty set. Sets are values: methods never modify
// their receiver or arguments.
type Set struct {
	rs []Range
}

// NewSet returns the normalised union of the given ranges.
func NewSet(rs ...Range) Set {
	in := make([]Range, 0, len(rs))
	for _, r := range rs {
		if !r.Empty() {
			in = append(in, r)
		}
	}
	slices.SortFunc(in, func(a, b Range) int {
		switch {
		case a.Start < b.Start:
			return -1
		case a.Start > b.Start:
			return 1
		}
		return 0
	})
	out := in[:0]
	for _, r := range in {
		if n := len(out); n > 0 && r.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, r.End)
			continue
		}
		out = append(out, r)
	}
	return Set{rs: out}
}

// Ranges returns the set's ranges in order. The caller must not modify the slice.
func (s Set) Ranges() []Range { return s.rs }

// Empty reports whether the set contains no instant.
func (s Set) Empty() bool { return len(s.rs) == 0 }

// Len is the number of ranges (fragments) in the set.
func (s Set) Len() int { return len(s.rs) }

// Seconds is the total width of the set.
func (s Set) Seconds() int64 {
	var n int64
	for _, r := range s.rs {
		n += r.End - r.Start
	}
	return n
}

// Bars counts the grid points of step inside the set's ranges (saturating at
// math.MaxInt64, like Range.Bars).
func (s Set) Bars(step int64) int64 {
	var n int64
	for _, r := range s.rs {
		b := r.Bars(step)
		if n > math.MaxInt64-b {
			return math.MaxInt64
		}
		n += b
	}
	return n
}

// Bounds returns [first start, last end) or an empty Range for the empty set.
func (s Set) Bounds() Range {
	if len(s.rs) == 0 {
		return Range{}
	}
	return Range{Start: s.rs[0].Start, End: s.rs[len(s.rs)-1].End}
}

// Contains reports whether instant t is in the set.
func (s Set) Contains(t int64) bool {
	i := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].End > t })
	return i < len(s.rs) && s.rs[i].Start <= t
}

// Covers reports whether every instant of r is in the set.
func (s Set) Covers(r Range) bool {
	if r.Empty() {
		return true
	}
	i := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].End > r.Start })
	return i < len(s.rs) && s.rs[i].Start <= r.Start && s.rs[i].End >= r.End
}

// Equal reports whether s and o contain the same instants.
func (s Set) Equal(o Set) bool { return slices.Equal(s.rs, o.rs) }

// Add returns s ∪ {r}.
func (s Set) Add(r Range) Set {
	if r.Empty() {
		return s
	}
	// Ranges strictly before r (not touching) and strictly after r stay as they are;
	// everything between merges with r.
	lo := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].End >= r.Start })
	hi := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].Start > r.End })
	m := r
	if lo < hi {
		m.Start = min(m.Start, s.rs[lo].Start)
		m.End = max(m.End, s.rs[hi-1].End)
	}
	out := make([]Range, 0, len(s.rs)-(hi-lo)+1)
	out = append(out, s.rs[:lo]...)
	out = append(out, m)
	out = append(out, s.rs[hi:]...)
	return Set{rs: out}
}

// Union returns s ∪ o.
func (s Set) Union(o Set) Set {
	if len(o.rs) == 0 {
		return s
	}
	if len(s.rs) == 0 {
		return o
	}
	all := make([]Range, 0, len(s.rs)+len(o.rs))
	all = append(all, s.rs...)
	all = append(all, o.rs...)
	return NewSet(all...)
}

// Intersect returns s ∩ o.
func (s Set) Intersect(o Set) Set {
	var out []Range
	i, j := 0, 0
	for i < len(s.rs) && j < len(o.rs) {
		if x := s.rs[i].Intersect(o.rs[j]); !x.Empty() {
			out = append(out, x)
		}
		if s.rs[i].End < o.rs[j].End {
			i++
		} else {
			j++
		}
	}
	return Set{rs: out}
}

// IntersectRange returns s ∩ {r}, found by binary search so that a small request against
// a large coverage set costs O(log n + k).
func (s Set) IntersectRange(r Range) Set {
	if r.Empty() {
		return Set{}
	}
	lo := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].End > r.Start })
	hi := lo + sort.Search(len(s.rs)-lo, func(i int) bool { return s.rs[lo+i].Start >= r.End })
	if lo == hi {
		return Set{}
	}
	out := make([]Range, hi-lo)
	copy(out, s.rs[lo:hi])
	out[0] = out[0].Intersect(r)
	out[len(out)-1] = out[len(out)-1].Intersect(r)
	return Set{rs: out}
}

// Subtract returns s − o.
func (s Set) Subtract(o Set) Set {
	if len(s.rs) == 0 {
		return Set{}
	}
	out := make([]Range, 0, len(s.rs)+len(o.rs))
	j := 0
	for _, r := range s.rs {
		cur := r
		for j < len(o.rs) && o.rs[j].End <= cur.Start {
			j++
		}
		for k := j; k < len(o.rs) && o.rs[k].Start < cur.End; k++ {
			if o.rs[k].Start > cur.Start {
				out = append(out, Range{Start: cur.Start, End: o.rs[k].Start})
			}
			cur.Start = max(cur.Start, o.rs[k].End)
			if cur.Empty() {
				break
			}
		}
		if !cur.Empty() {
			out = append(out, cur)
		}
	}
	if len(out) == 0 {
		return Set{}
	}
	return Set{rs: out}
}

// Missing returns {r} − s: the parts of r the set does not cover. This is the planner's
// question, answered by binary search plus a walk over the fragments inside r.
func (s Set) Missing(r Range) Set {
	if r.Empty() {
		return Set{}
	}
	return Set{rs: []Range{r}}.Subtract(s.IntersectRange(r))
}

// String renders the set as "{[a, b) [c, d)}".
func (s Set) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, r := range s.rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.String())
	}
	b.WriteByte('}')
	return b.String()
}
