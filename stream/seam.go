package stream

import (
	"sort"

	"github.com/seamless-data/seamless/grid"
)

// Action is what the seam decides for a write offered to it.
type Action int

// Actions of Seam.Offer.
const (
	// Drop: the write ends at or before the cursor; its bars were delivered already.
	Drop Action = iota
	// Deliver rows [Lo, Hi) of the write's bars and move the cursor to Next.
	Deliver
	// Repair the hole Missing (from the cursor to the write's start) first, then offer
	// the write again.
	Repair
)

func (a Action) String() string {
	switch a {
	case Drop:
		return "drop"
	case Deliver:
		return "deliver"
	}
	return "repair"
}

// Step is the seam's decision for one write.
type Step struct {
	Action Action
	// Lo and Hi bound the rows to deliver (Deliver).
	Lo, Hi int
	// Next is the cursor after delivering (Deliver).
	Next int64
	// Missing is the hole before the write (Repair).
	Missing grid.Range
}

// Seam is the boundary between the bars a subscription has delivered and those it
// has not: Next is the ts of the next bar to deliver, on the Interval grid.
type Seam struct {
	Next     int64
	Interval int64
}

// Offer decides what to do with a write that covered r (coverage: bars inside r that
// are not in ts are covered market gaps) with the bars ts, sorted. It reads no state
// but the seam, so the caller applies the step (Advance) once it has delivered.
func (s Seam) Offer(r grid.Range, ts []int64) Step {
	a := r.Align(s.Interval)
	switch {
	case a.Empty() || a.End <= s.Next:
		return Step{Action: Drop}
	case a.Start > s.Next:
		return Step{Action: Repair, Missing: grid.R(s.Next, a.Start)}
	}
	lo := sort.Search(len(ts), func(i int) bool { return ts[i] >= s.Next })
	hi := sort.Search(len(ts), func(i int) bool { return ts[i] >= a.End })
	return Step{Action: Deliver, Lo: lo, Hi: hi, Next: a.End}
}

// Advance moves the cursor to next; a cursor never moves back.
func (s *Seam) Advance(next int64) {
	if next > s.Next {
		s.Next = next
	}
}
