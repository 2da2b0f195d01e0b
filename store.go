package seamless

import (
	"context"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Store persists bars and the coverage that says where those bars are authoritative.
//
// Contract (checked by package storetest for every implementation):
//   - Write stores the bars of w.Frame and adds w.Range to the series' coverage in one
//     atomic step: a reader (or a process restarted after a crash) sees both or neither.
//   - Writes upsert on ts: writing a bar at an existing ts replaces it, so repeating a
//     write changes nothing.
//   - Every bar of a write lies inside w.Range and on the series' interval grid; a write
//     that breaks this is rejected with *WriteError and changes nothing.
//   - Read returns the bars with ts in r, sorted by ts, one per ts; an unknown series
//     reads as an empty frame with no columns.
//   - Coverage is explicit: a write of [a, b) with no bars still covers [a, b).
//   - Upsert keeps stored bars the new write does not mention.
//   - Reading a known series returns its schema's columns even when no bar is in range.
//   - A frame with no rows and no columns (or a nil frame) only records coverage and
//     never conflicts with the stored schema; a frame with columns must match it.
//   - Operations after Close return an error wrapping ErrClosed.
//   - ListSeries returns series sorted by node id, then interval.
//   - Implementations are safe for concurrent use.
type Store interface {
	Write(ctx context.Context, w Write) error
	Read(ctx context.Context, s Series, r grid.Range) (*frame.Frame, error)
	Coverage(ctx context.Context, s Series) (grid.Set, error)
	ListSeries(ctx context.Context) ([]SeriesInfo, error)
	Close() error
}

// A RewriteCounter is a Store that several processes may write to (pgstore, shared by
// a cluster). With the coverage it returns, from the same snapshot, the number of
// writes that have put bars into the series' covered ranges: the only writes that can
// change bars already served. The provider's cache tier serves a cached chunk only to
// fetches that read the same count as the fetch that cached it, so a rewrite made by
// any process (an import, a correction) is never hidden by a stale cache. Stores one
// process owns (memstore, pebblestore) need not implement it: the provider drops its
// cached chunks itself when it writes them.
type RewriteCounter interface {
	CoverageRewrites(ctx context.Context, s Series) (grid.Set, uint64, error)
}

// Write is one atomic store write.
type Write struct {
	Series Series
	// Range is added to the series' coverage. It must be non-empty.
	Range grid.Range
	// Frame holds the bars, all inside Range. It may be empty (a covered market gap).
	Frame *frame.Frame
	// Token is the coordinator lease's fencing token (0 when the write is not under a
	// lease). Shared stores use it to reject late writes from expired leases.
	Token uint64
}

// SeriesInfo describes one stored series.
type SeriesInfo struct {
	Series
	Schema   frame.Schema `json:"schema"`
	Coverage grid.Set     `json:"-"`
	// Bounds is the coverage's [first start, last end).
	Bounds grid.Range `json:"bounds"`
	// Fragments is the number of disjoint covered ranges.
	Fragments int `json:"fragments"`
}
