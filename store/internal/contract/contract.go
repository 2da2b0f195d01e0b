// Package contract enforces the input rules of the seamless.Store contract, so that every
// Store implementation rejects exactly the same writes with the same *seamless.WriteError.
//
// A write is checked in two steps: CheckWrite needs only the write itself and runs before
// an implementation takes any lock; CheckSchema compares the frame with the schema the
// series already has and runs under the implementation's write lock.
package contract

import (
	"fmt"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
)

// CheckWrite checks the parts of w that do not depend on stored state: a positive
// interval, a non-empty range, a well-formed frame, and bars that are on the interval
// grid, inside w.Range, strictly increasing by ts.
func CheckWrite(w seamless.Write) error {
	if w.Series.Interval <= 0 {
		return reject(w, "interval %d is not positive", w.Series.Interval)
	}
	if w.Range.Empty() {
		return reject(w, "empty range")
	}
	f := w.Frame
	if f == nil {
		return nil
	}
	if err := f.Validate(); err != nil {
		return reject(w, "%v", err)
	}
	for i, ts := range f.TS {
		switch {
		case !w.Range.Contains(ts):
			return reject(w, "bar %d at ts %d lies outside the write range", i, ts)
		case ts%w.Series.Interval != 0:
			return reject(w, "bar %d at ts %d is off the %ds grid", i, ts, w.Series.Interval)
		case i > 0 && ts <= f.TS[i-1]:
			return reject(w, "bar %d at ts %d is not after the previous bar at ts %d (want sorted, unique ts)", i, ts, f.TS[i-1])
		}
	}
	return nil
}

// FrameSchema returns the schema w's frame imposes on its series. A frame with neither
// rows nor columns (or no frame at all) imposes none: it is how a caller records a
// covered market gap without knowing the schema.
func FrameSchema(f *frame.Frame) (frame.Schema, bool) {
	if f == nil || (f.Len() == 0 && len(f.Cols) == 0) {
		return frame.Schema{}, false
	}
	return f.Schema(), true
}

// CheckSchema rejects w when its frame's schema differs from the schema the series
// already has (stored reports whether it has one). It returns the series' schema after
// the write and whether it has one.
func CheckSchema(w seamless.Write, stored frame.Schema, hasStored bool) (frame.Schema, bool, error) {
	s, ok := FrameSchema(w.Frame)
	switch {
	case !ok:
		return stored, hasStored, nil
	case !hasStored:
		return s, true, nil
	case !s.Equal(stored):
		return stored, hasStored, reject(w, "frame schema %v differs from the series' stored schema %v", s.Fields, stored.Fields)
	}
	return stored, true, nil
}

func reject(w seamless.Write, format string, args ...any) error {
	return &seamless.WriteError{Series: w.Series, Range: w.Range, Reason: fmt.Sprintf(format, args...)}
}
