// Package memstore is the in-memory seamless.Store: the reference implementation of the
// Store contract and the store tests use when they need no disk. It keeps each series as
// sorted, disjoint segments of bars plus its coverage set, behind a single RWMutex.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/internal/contract"
	"github.com/seamless-data/seamless/store/internal/merge"
)

// Store is an in-memory seamless.Store. The zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	closed bool
	series map[seamless.Series]*series
}

// series is one stored series. Its bars are segs: frames each sorted and unique by ts,
// in ts order, none overlapping the next, each owned by the store (written frames are
// copied in and read frames copied out, so callers never share one).
//
// Segments keep a write's cost proportional to what it overlaps rather than to the
// series: a write that lands before or between what is held (a backfill walking back
// in time, chunks completing out of order) merges only the segments its ts span meets.
// One sorted frame made that quadratic: a million bars written newest first in 900-bar
// chunks copied 27 GB; now 0.2 GB (docs/benchmarks.md).
type series struct {
	schema    frame.Schema
	hasSchema bool
	segs      []*frame.Frame
	cov       grid.Set
}

// maxSegment is the most rows a segment gets by merging or appending: large enough that
// a covered read of a million bars walks 16 of them, small enough that a correction
// inside a long series copies at most that many rows.
var maxSegment = 1 << 16 // a variable for the tests

var _ seamless.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{series: map[seamless.Series]*series{}}
}

func errClosed(op string) error {
	return fmt.Errorf("memstore: %s: %w", op, seamless.ErrClosed)
}

// Write implements seamless.Store.
func (s *Store) Write(ctx context.Context, w seamless.Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := contract.CheckWrite(w); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("write " + w.Series.String())
	}
	cur := s.series[w.Series]
	if cur == nil {
		cur = &series{}
	}
	schema, has, err := contract.CheckSchema(w, cur.schema, cur.hasSchema)
	if err != nil {
		return err
	}
	segs := cur.segs
	if w.Frame.Len() > 0 {
		segs = upsert(segs, w.Frame)
	}
	s.series[w.Series] = &series{schema: schema, hasSchema: has, segs: segs, cov: cur.cov.Add(w.Range)}
	return nil
}

// upsert writes add (sorted, unique) into segs and returns the new segment list. The
// segments add's ts span meets, if any, are merged with it; the result replaces them,
// cut into segments of at most maxSegment rows. A write that meets none becomes a new
// segment, or is appended to the segment before it while that stays under maxSegment
// (the common append of newer bars costs only the copy of add).
func upsert(segs []*frame.Frame, add *frame.Frame) []*frame.Frame {
	lo, hi := add.TS[0], add.TS[add.Len()-1]
	// segs[i:j] are the segments with a row in [lo, hi].
	i, _ := slices.BinarySearchFunc(segs, lo, func(f *frame.Frame, t int64) int { return cmp.Compare(f.TS[f.Len()-1], t) })
	j, _ := slices.BinarySearchFunc(segs[i:], hi, func(f *frame.Frame, t int64) int {
		if f.TS[0] <= t {
			return -1
		}
		return 1
	})
	j += i
	if i == j {
		if i > 0 && segs[i-1].Len()+add.Len() <= maxSegment {
			// add follows segs[i-1]'s last row and precedes segs[i]: append in place.
			segs[i-1].AppendRows(add, 0, add.Len())
			return segs
		}
		return slices.Insert(segs, i, split(merge.Upsert(nil, add))...)
	}
	merged := segs[i] // never extended in place: it has a row at or after lo
	if j-i > 1 {
		// Copy the met segments into one frame, then merge add into it.
		n := 0
		for _, f := range segs[i:j] {
			n += f.Len()
		}
		merged = frame.New(segs[i].Schema(), n+add.Len())
		for _, f := range segs[i:j] {
			merged.AppendRows(f, 0, f.Len())
		}
	}
	merged = merge.Upsert(merged, add)
	return slices.Replace(segs, i, j, split(merged)...)
}

// split cuts f into segments of at most maxSegment rows; f itself when it fits.
func split(f *frame.Frame) []*frame.Frame {
	if f.Len() <= maxSegment {
		return []*frame.Frame{f}
	}
	out := make([]*frame.Frame, 0, (f.Len()+maxSegment-1)/maxSegment)
	for k := 0; k < f.Len(); k += maxSegment {
		n := min(maxSegment, f.Len()-k)
		seg := frame.New(f.Schema(), n)
		seg.AppendRows(f, k, k+n)
		out = append(out, seg)
	}
	return out
}

// Read implements seamless.Store.
func (s *Store) Read(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed("read " + ser.String())
	}
	cur := s.series[ser]
	if cur == nil {
		return &frame.Frame{}, nil
	}
	if r.Empty() {
		return frame.New(cur.schema, 0), nil
	}
	// The segments with a row at or after r.Start, up to the first that starts at or
	// after r.End.
	i, _ := slices.BinarySearchFunc(cur.segs, r.Start, func(f *frame.Frame, t int64) int { return cmp.Compare(f.TS[f.Len()-1], t) })
	n := 0
	j := i
	for ; j < len(cur.segs) && cur.segs[j].TS[0] < r.End; j++ {
		f := cur.segs[j]
		n += f.SearchTS(r.End) - f.SearchTS(r.Start)
	}
	out := frame.New(cur.schema, n)
	for _, f := range cur.segs[i:j] {
		out.AppendRows(f, f.SearchTS(r.Start), f.SearchTS(r.End))
	}
	return out, nil
}

// Coverage implements seamless.Store.
func (s *Store) Coverage(ctx context.Context, ser seamless.Series) (grid.Set, error) {
	if err := ctx.Err(); err != nil {
		return grid.Set{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return grid.Set{}, errClosed("coverage " + ser.String())
	}
	if cur := s.series[ser]; cur != nil {
		return cur.cov, nil
	}
	return grid.Set{}, nil
}

// ListSeries implements seamless.Store. Series come sorted by node id, then interval.
func (s *Store) ListSeries(ctx context.Context) ([]seamless.SeriesInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed("list series")
	}
	out := make([]seamless.SeriesInfo, 0, len(s.series))
	for ser, cur := range s.series {
		out = append(out, seamless.SeriesInfo{
			Series: ser, Schema: cur.schema, Coverage: cur.cov,
			Bounds: cur.cov.Bounds(), Fragments: cur.cov.Len(),
		})
	}
	slices.SortFunc(out, func(a, b seamless.SeriesInfo) int {
		if c := strings.Compare(a.NodeID, b.NodeID); c != 0 {
			return c
		}
		return cmp.Compare(a.Interval, b.Interval)
	})
	return out, nil
}

// Close drops the data. Later calls return an error wrapping seamless.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("close")
	}
	s.closed = true
	s.series = nil
	return nil
}
