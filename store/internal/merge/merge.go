// Package merge upserts sorted bars into sorted bars, the one operation every Store
// implementation needs to apply a write on top of what it already holds.
package merge

import "github.com/seamless-data/seamless/frame"

// Upsert merges add into old. Both must be sorted and unique by ts and share a schema;
// old may be nil. Rows of add replace rows of old at the same ts; the result is sorted
// and unique. add is never retained. old is extended in place when every row of add
// follows its last row (the common append of newer bars); otherwise a new frame is
// returned, built from runs of consecutive rows rather than row by row.
func Upsert(old, add *frame.Frame) *frame.Frame {
	n := add.Len()
	if old == nil {
		out := frame.New(add.Schema(), n)
		out.AppendRows(add, 0, n)
		return out
	}
	m := old.Len()
	if n == 0 {
		return old
	}
	if m == 0 || add.TS[0] > old.TS[m-1] {
		old.AppendRows(add, 0, n)
		return old
	}
	out := frame.New(old.Schema(), m+n)
	k, a := 0, 0
	for a < n {
		// The run of old rows before add's next row…
		k2 := k
		for k2 < m && old.TS[k2] < add.TS[a] {
			k2++
		}
		out.AppendRows(old, k, k2)
		k = k2
		// …then the run of add rows up to old's next row, skipping the old rows they
		// replace.
		a2 := a
		for a2 < n && (k == m || add.TS[a2] <= old.TS[k]) {
			if k < m && add.TS[a2] == old.TS[k] {
				k++
			}
			a2++
		}
		out.AppendRows(add, a, a2)
		a = a2
	}
	out.AppendRows(old, k, m)
	return out
}
