// Package memstore is the in-memory seamless.Store: the reference implementation of the
// Store contract and the store tests use when they need no disk. It keeps each series as
// one sorted frame plus its coverage set, behind a single RWMutex.
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

// series is one stored series. bars is sorted and unique by ts and owned by the store:
// written frames are copied in and read frames copied out, so callers never share it.
type series struct {
	schema    frame.Schema
	hasSchema bool
	bars      *frame.Frame
	cov       grid.Set
}

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
	bars := cur.bars
	if w.Frame.Len() > 0 {
		bars = merge.Upsert(bars, w.Frame)
	}
	s.series[w.Series] = &series{schema: schema, hasSchema: has, bars: bars, cov: cur.cov.Add(w.Range)}
	return nil
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
	if cur.bars == nil || r.Empty() {
		return frame.New(cur.schema, 0), nil
	}
	i, j := cur.bars.SearchTS(r.Start), cur.bars.SearchTS(r.End)
	out := frame.New(cur.schema, j-i)
	out.AppendRows(cur.bars, i, j)
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
