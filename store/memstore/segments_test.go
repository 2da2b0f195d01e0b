package memstore

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/storetest"
)

// TestContractSmallSegments runs the Store contract with segments of at most 37 rows,
// so that its writes split, insert between and merge across many segments, and checks
// the segments' order and bounds after every test.
func TestContractSmallSegments(t *testing.T) {
	defer func(n int) { maxSegment = n }(maxSegment)
	maxSegment = 37
	storetest.Run(t, func(t *testing.T) seamless.Store {
		s := New()
		t.Cleanup(func() { checkSegments(t, s) })
		return s
	})
}

func checkSegments(t *testing.T, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for ser, cur := range s.series {
		for k, f := range cur.segs {
			if f.Len() == 0 || f.Len() > maxSegment || !f.IsSortedUnique() {
				t.Errorf("%v: segment %d has %d rows (sorted and unique: %v)", ser, k, f.Len(), f.IsSortedUnique())
				continue
			}
			if k > 0 && cur.segs[k-1].TS[cur.segs[k-1].Len()-1] >= f.TS[0] {
				t.Errorf("%v: segment %d starts at %d, not after segment %d's last %d", ser, k, f.TS[0], k-1, cur.segs[k-1].TS[cur.segs[k-1].Len()-1])
			}
		}
	}
}

// TestSegmentsInOrderAndReversed: writes in time order fill segments up to maxSegment
// and start new ones; writes newest first insert before them; either way the segments
// stay ordered and bounded and a read returns every bar.
func TestSegmentsInOrderAndReversed(t *testing.T) {
	defer func(n int) { maxSegment = n }(maxSegment)
	maxSegment = 100
	ctx := t.Context()
	for _, reverse := range []bool{false, true} {
		s := New()
		ser := seamless.Series{NodeID: "ohlcv:demo:SEG:1m", Interval: 60}
		const writes, per = 50, 30
		for k := range writes {
			if reverse {
				k = writes - 1 - k
			}
			start := int64(k*per) * 60
			w := seamless.Write{Series: ser, Range: grid.R(start, start+per*60), Frame: storetest.OHLCV(start, 60, per)}
			if err := s.Write(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		checkSegments(t, s)
		if n := len(s.series[ser].segs); n < writes*per/maxSegment {
			t.Errorf("reverse=%v: %d segments for %d bars of at most %d", reverse, n, writes*per, maxSegment)
		}
		got, err := s.Read(ctx, ser, grid.R(0, writes*per*60))
		if err != nil {
			t.Fatal(err)
		}
		if d := storetest.Diff(got, storetest.OHLCV(0, 60, writes*per)); d != "" {
			t.Errorf("reverse=%v: %s", reverse, d)
		}
	}
}
