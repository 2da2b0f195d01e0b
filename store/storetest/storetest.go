// Package storetest is the contract test suite of seamless.Store. Every implementation
// runs it from its own tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) seamless.Store { return memstore.New() })
//	}
//
// The suite checks each clause of the contract documented on seamless.Store, plus what
// callers rely on without reading it twice: node ids with any bytes, pre-1970 bars,
// several intervals per node, concurrent writers, closed stores and cancelled contexts.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Run runs the contract suite. open returns a new, empty store for each subtest; Run
// closes it when the subtest ends (so Close must tolerate being called twice).
func Run(t *testing.T, open func(t *testing.T) seamless.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s seamless.Store)
	}{
		{"RoundTripOHLCV", testRoundTripOHLCV},
		{"RoundTripAllTypes", testRoundTripAllTypes},
		{"Upsert", testUpsert},
		{"EmptyFrameCovers", testEmptyFrameCovers},
		{"CoverageMerges", testCoverageMerges},
		{"ReadBounds", testReadBounds},
		{"RejectedWrites", testRejectedWrites},
		{"UnknownSeries", testUnknownSeries},
		{"ListSeries", testListSeries},
		{"NodeIDs", testNodeIDs},
		{"IntervalsIndependent", testIntervalsIndependent},
		{"NegativeTimestamps", testNegativeTimestamps},
		{"NoAliasing", testNoAliasing},
		{"RandomWrites", testRandomWrites},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, s)
		})
	}
}

var bg = context.Background()

// everything is the widest readable range.
var everything = grid.R(math.MinInt64, math.MaxInt64)

func mustWrite(t *testing.T, s seamless.Store, w seamless.Write) {
	t.Helper()
	if err := s.Write(bg, w); err != nil {
		t.Fatalf("Write %v %v (%d bars): %v", w.Series, w.Range, w.Frame.Len(), err)
	}
}

func mustRead(t *testing.T, s seamless.Store, ser seamless.Series, r grid.Range) *frame.Frame {
	t.Helper()
	f, err := s.Read(bg, ser, r)
	if err != nil {
		t.Fatalf("Read %v %v: %v", ser, r, err)
	}
	if f == nil {
		t.Fatalf("Read %v %v returned a nil frame", ser, r)
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("Read %v %v returned a malformed frame: %v", ser, r, err)
	}
	return f
}

func mustCoverage(t *testing.T, s seamless.Store, ser seamless.Series) grid.Set {
	t.Helper()
	c, err := s.Coverage(bg, ser)
	if err != nil {
		t.Fatalf("Coverage %v: %v", ser, err)
	}
	return c
}

func mustList(t *testing.T, s seamless.Store) []seamless.SeriesInfo {
	t.Helper()
	l, err := s.ListSeries(bg)
	if err != nil {
		t.Fatalf("ListSeries: %v", err)
	}
	slices.SortFunc(l, func(a, b seamless.SeriesInfo) int {
		if a.NodeID != b.NodeID {
			if a.NodeID < b.NodeID {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Interval, b.Interval)
	})
	return l
}

func wantFrame(t *testing.T, what string, got, want *frame.Frame) {
	t.Helper()
	if d := Diff(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func wantCoverage(t *testing.T, s seamless.Store, ser seamless.Series, want grid.Set) {
	t.Helper()
	if got := mustCoverage(t, s, ser); !got.Equal(want) {
		t.Fatalf("Coverage %v = %v, want %v", ser, got, want)
	}
}

// model is the reference a store is compared with: the last written row per ts, and
// the union of written ranges.
type model struct {
	schema frame.Schema
	rows   map[int64]rowRef
	cov    grid.Set
}

type rowRef struct {
	f *frame.Frame
	i int
}

func newModel(schema frame.Schema) *model {
	return &model{schema: schema, rows: map[int64]rowRef{}}
}

func (m *model) write(w seamless.Write) {
	for i, ts := range w.Frame.TS {
		m.rows[ts] = rowRef{w.Frame, i}
	}
	m.cov = m.cov.Add(w.Range)
}

func (m *model) read(r grid.Range) *frame.Frame {
	var ts []int64
	for t := range m.rows {
		if r.Contains(t) {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	out := frame.New(m.schema, len(ts))
	for _, t := range ts {
		ref := m.rows[t]
		out.AppendRows(ref.f, ref.i, ref.i+1)
	}
	return out
}

// check compares everything the store says about ser with the model.
func (m *model) check(t *testing.T, s seamless.Store, ser seamless.Series) {
	t.Helper()
	wantFrame(t, fmt.Sprintf("Read %v everything", ser), mustRead(t, s, ser, everything), m.read(everything))
	wantCoverage(t, s, ser, m.cov)
}

func testRoundTripOHLCV(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	start := int64(1_700_000_040) // on the minute grid
	// 5000 bars cross many storage blocks of any reasonable size.
	f := OHLCV(start, 60, 5000)
	r := grid.R(start, start+5000*60)
	mustWrite(t, s, seamless.Write{Series: ser, Range: r, Frame: f})
	wantFrame(t, "Read whole range", mustRead(t, s, ser, r), f)
	wantCoverage(t, s, ser, grid.NewSet(r))
	for _, sub := range []struct{ lo, hi int }{{0, 1}, {1, 2}, {1023, 1025}, {100, 4900}, {4999, 5000}, {2047, 4096}} {
		got := mustRead(t, s, ser, grid.R(start+int64(sub.lo)*60, start+int64(sub.hi)*60))
		wantFrame(t, fmt.Sprintf("Read bars [%d, %d)", sub.lo, sub.hi), got, f.Slice(sub.lo, sub.hi))
	}
	// A known series reads with its schema even where it holds no bars.
	got := mustRead(t, s, ser, grid.R(start-600, start))
	wantFrame(t, "Read before the first bar", got, frame.New(frame.OHLCV, 0))
}

func testRoundTripAllTypes(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "trades:demo:ETH-USD:1s", Interval: 1}
	ts := gridTS(1_600_000_000, 1, 3000)
	// Leave holes so blocks are sparse.
	ts = slices.DeleteFunc(ts, func(t int64) bool { return t%7 == 3 })
	f := mixedAt(ts)
	r := grid.R(1_600_000_000, 1_600_003_000)
	mustWrite(t, s, seamless.Write{Series: ser, Range: r, Frame: f})
	wantFrame(t, "Read whole range", mustRead(t, s, ser, r), f)
	got := mustRead(t, s, ser, grid.R(1_600_000_500, 1_600_002_000))
	lo, hi := f.SearchTS(1_600_000_500), f.SearchTS(1_600_002_000)
	wantFrame(t, "Read sub-range", got, f.Slice(lo, hi))

	tr := seamless.Series{NodeID: "trades:demo:ETH-USD:1m", Interval: 60}
	tf := frame.New(frame.Trades, 3)
	tf.TS = append(tf.TS, 0, 60, 180)
	tf.Cols[0].F64 = append(tf.Cols[0].F64, 1, 2, 3)
	tf.Cols[1].F64 = append(tf.Cols[1].F64, 0.5, 0.25, 0)
	tf.Cols[2].Str = append(tf.Cols[2].Str, "buy", "", "sell")
	mustWrite(t, s, seamless.Write{Series: tr, Range: grid.R(0, 240), Frame: tf})
	wantFrame(t, "Read trades", mustRead(t, s, tr, grid.R(0, 240)), tf)
}

func testUpsert(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	m := newModel(frame.OHLCV)
	write := func(w seamless.Write) {
		t.Helper()
		mustWrite(t, s, w)
		m.write(w)
		m.check(t, s, ser)
	}
	a := seamless.Write{Series: ser, Range: grid.R(0, 3000*60), Frame: ohlcvAt(gridTS(0, 60, 3000), 0)}
	write(a)
	// A write starting at the last stored bar replaces it and appends after it.
	write(seamless.Write{Series: ser, Range: grid.R(2999*60, 3100*60), Frame: ohlcvAt(gridTS(2999*60, 60, 101), 4)})
	// Same ts, new values: the new bars replace the old ones.
	write(seamless.Write{Series: ser, Range: grid.R(1000*60, 2100*60), Frame: ohlcvAt(gridTS(1000*60, 60, 1100), 1)})
	// A sparse rewrite replaces the bars it holds and keeps the others (upsert, not
	// replace-range).
	sparse := slices.DeleteFunc(gridTS(0, 60, 3000), func(t int64) bool { return t%(7*60) != 0 })
	write(seamless.Write{Series: ser, Range: grid.R(0, 3000*60), Frame: ohlcvAt(sparse, 2)})
	before := mustRead(t, s, ser, everything)
	// Repeating a write changes nothing.
	last := seamless.Write{Series: ser, Range: grid.R(500*60, 700*60), Frame: ohlcvAt(gridTS(500*60, 60, 200), 3)}
	write(last)
	once := mustRead(t, s, ser, everything)
	write(last)
	wantFrame(t, "Read after repeating a write", mustRead(t, s, ser, everything), once)
	if Diff(once, before) == "" {
		t.Fatal("the last write changed nothing; the test is broken")
	}
}

func testEmptyFrameCovers(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1h", Interval: 3600}
	gap := grid.R(3600*10, 3600*20)
	mustWrite(t, s, seamless.Write{Series: ser, Range: gap, Frame: frame.New(frame.OHLCV, 0)})
	wantCoverage(t, s, ser, grid.NewSet(gap))
	if f := mustRead(t, s, ser, gap); f.Len() != 0 {
		t.Fatalf("Read of a covered market gap returned %d bars", f.Len())
	}
	// A frame with neither rows nor columns records coverage without a schema, even on a
	// series that has one.
	gap2 := grid.R(3600*30, 3600*31)
	mustWrite(t, s, seamless.Write{Series: ser, Range: gap2, Frame: &frame.Frame{}})
	wantCoverage(t, s, ser, grid.NewSet(gap, gap2))
	bars := OHLCV(3600*20, 3600, 5)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(3600*20, 3600*25), Frame: bars})
	wantCoverage(t, s, ser, grid.NewSet(grid.R(3600*10, 3600*25), gap2))
	wantFrame(t, "Read after bars follow the gap", mustRead(t, s, ser, everything), bars)
}

func testCoverageMerges(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	cov := grid.Set{}
	for _, tc := range []struct {
		name string
		r    grid.Range
		frag int
	}{
		{"first", grid.R(600, 1200), 1},
		{"adjacent after", grid.R(1200, 1800), 1},
		{"adjacent before", grid.R(0, 600), 1},
		{"disjoint", grid.R(6000, 6600), 2},
		{"overlapping", grid.R(6300, 7200), 2},
		{"inside", grid.R(60, 120), 2},
		{"unaligned bounds", grid.R(9001, 9999), 3},
		{"bridging", grid.R(1500, 9500), 1},
	} {
		f := OHLCV(tc.r.Align(60).Start, 60, int(tc.r.Bars(60)))
		mustWrite(t, s, seamless.Write{Series: ser, Range: tc.r, Frame: f})
		cov = cov.Add(tc.r)
		wantCoverage(t, s, ser, cov)
		if got := mustCoverage(t, s, ser).Len(); got != tc.frag {
			t.Fatalf("%s: %d fragments, want %d", tc.name, got, tc.frag)
		}
	}
	if cov.Bounds() != grid.R(0, 9999) {
		t.Fatalf("test broken: bounds %v", cov.Bounds())
	}
}

func testReadBounds(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	f := OHLCV(0, 60, 3000)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(0, 3000*60), Frame: f})
	for _, tc := range []struct {
		r      grid.Range
		lo, hi int
	}{
		{grid.R(0, 60), 0, 1},
		{grid.R(1, 60), 0, 0},
		{grid.R(1, 61), 1, 2},
		{grid.R(1, 121), 1, 3},
		{grid.R(-1, 1), 0, 1},
		{grid.R(59, 61), 1, 2},
		{grid.R(60*1000-1, 60*2000+1), 1000, 2001},
		{grid.R(60*2999, 60*3000), 2999, 3000},
		{grid.R(60*2999+1, 60*5000), 3000, 3000},
		{grid.R(60*5000, 60*6000), 3000, 3000},
		{grid.R(-60*6000, -60*5000), 0, 0},
		{grid.R(600, 600), 0, 0},
		{grid.R(1200, 600), 0, 0},
		{everything, 0, 3000},
	} {
		got := mustRead(t, s, ser, tc.r)
		wantFrame(t, fmt.Sprintf("Read %v", tc.r), got, f.Slice(tc.lo, tc.hi))
	}
}

func testRejectedWrites(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(0, 6000), Frame: OHLCV(0, 60, 100)})
	before := mustRead(t, s, ser, everything)
	beforeCov := mustCoverage(t, s, ser)

	// Each bad write holds valid-looking bars that would overwrite stored ones and a range
	// that would extend coverage, so a partial application would show.
	r := grid.R(3000, 9000)
	salted := func(ts ...int64) *frame.Frame { return ohlcvAt(ts, 9) }
	short := salted(3000, 3060)
	short.Cols[2].F64 = short.Cols[2].F64[:1]
	trades := frame.New(frame.Trades, 1)
	trades.TS = append(trades.TS, 3000)
	trades.Cols[0].F64 = append(trades.Cols[0].F64, 1)
	trades.Cols[1].F64 = append(trades.Cols[1].F64, 1)
	trades.Cols[2].Str = append(trades.Cols[2].Str, "buy")
	renamed := salted(3000)
	renamed.Cols[4].Name = "vol"

	for _, tc := range []struct {
		name string
		w    seamless.Write
	}{
		{"bar before range", seamless.Write{Series: ser, Range: r, Frame: salted(2940, 3000)}},
		{"bar at range end", seamless.Write{Series: ser, Range: r, Frame: salted(3000, 9000)}},
		{"bar after range", seamless.Write{Series: ser, Range: r, Frame: salted(3000, 12000)}},
		{"off grid", seamless.Write{Series: ser, Range: r, Frame: salted(3000, 3090, 3120)}},
		{"unsorted", seamless.Write{Series: ser, Range: r, Frame: salted(3060, 3000)}},
		{"duplicate ts", seamless.Write{Series: ser, Range: r, Frame: salted(3000, 3060, 3060)}},
		{"empty range", seamless.Write{Series: ser, Range: grid.R(3000, 3000), Frame: frame.New(frame.OHLCV, 0)}},
		{"inverted range", seamless.Write{Series: ser, Range: grid.R(9000, 3000), Frame: salted(3000)}},
		{"schema mismatch", seamless.Write{Series: ser, Range: r, Frame: trades}},
		{"column renamed", seamless.Write{Series: ser, Range: r, Frame: renamed}},
		{"column too short", seamless.Write{Series: ser, Range: r, Frame: short}},
		{"zero interval", seamless.Write{Series: seamless.Series{NodeID: ser.NodeID}, Range: r, Frame: salted(3000)}},
		{"negative interval", seamless.Write{Series: seamless.Series{NodeID: ser.NodeID, Interval: -60}, Range: r, Frame: salted(3000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Write(bg, tc.w)
			var we *seamless.WriteError
			if !errors.As(err, &we) {
				t.Fatalf("Write returned %v, want a *seamless.WriteError", err)
			}
			wantFrame(t, "Read after rejected write", mustRead(t, s, ser, everything), before)
			wantCoverage(t, s, ser, beforeCov)
		})
	}
	if l := mustList(t, s); len(l) != 1 || l[0].Series != ser {
		t.Fatalf("ListSeries after rejected writes = %+v, want only %v", l, ser)
	}
}

func testUnknownSeries(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:NOPE:1m", Interval: 60}
	check := func() {
		t.Helper()
		f := mustRead(t, s, ser, everything)
		if f.Len() != 0 || len(f.Cols) != 0 {
			t.Fatalf("Read of an unknown series = %d rows, %d columns; want an empty frame without columns", f.Len(), len(f.Cols))
		}
		if c := mustCoverage(t, s, ser); !c.Empty() {
			t.Fatalf("Coverage of an unknown series = %v", c)
		}
	}
	check()
	if l := mustList(t, s); len(l) != 0 {
		t.Fatalf("ListSeries of an empty store = %+v", l)
	}
	// Neighbours in any key space must not leak in.
	for _, n := range []seamless.Series{{NodeID: ser.NodeID, Interval: 120}, {NodeID: ser.NodeID + "x", Interval: 60}, {NodeID: ser.NodeID[:len(ser.NodeID)-1], Interval: 60}} {
		mustWrite(t, s, seamless.Write{Series: n, Range: grid.R(0, 1200), Frame: OHLCV(0, n.Interval, 5)})
	}
	check()
}

func testListSeries(t *testing.T, s seamless.Store) {
	a := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	b := seamless.Series{NodeID: "trades:demo:BTC-USD:1s", Interval: 1}
	c := seamless.Series{NodeID: "ohlcv:demo:GAP:1h", Interval: 3600}
	mustWrite(t, s, seamless.Write{Series: a, Range: grid.R(0, 600), Frame: OHLCV(0, 60, 10)})
	mustWrite(t, s, seamless.Write{Series: a, Range: grid.R(1200, 1800), Frame: OHLCV(1200, 60, 10)})
	mustWrite(t, s, seamless.Write{Series: b, Range: grid.R(-100, 100), Frame: mixedAt(gridTS(-100, 1, 200))})
	mustWrite(t, s, seamless.Write{Series: c, Range: grid.R(0, 7200), Frame: &frame.Frame{}})
	got := mustList(t, s)
	want := []seamless.SeriesInfo{
		{Series: a, Schema: frame.OHLCV, Coverage: grid.NewSet(grid.R(0, 600), grid.R(1200, 1800)), Bounds: grid.R(0, 1800), Fragments: 2},
		{Series: c, Schema: frame.Schema{}, Coverage: grid.NewSet(grid.R(0, 7200)), Bounds: grid.R(0, 7200), Fragments: 1},
		{Series: b, Schema: mixedSchema, Coverage: grid.NewSet(grid.R(-100, 100)), Bounds: grid.R(-100, 100), Fragments: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("ListSeries = %+v, want %d series", got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Series != w.Series || !g.Schema.Equal(w.Schema) || !g.Coverage.Equal(w.Coverage) || g.Bounds != w.Bounds || g.Fragments != w.Fragments {
			t.Errorf("ListSeries[%d] = %+v, want %+v", i, g, w)
		}
	}
}

func testNodeIDs(t *testing.T, s seamless.Store) {
	// Prefixes, separators, NUL and non-ASCII bytes in every position: any key layout that
	// joins node id and interval without a prefix-free encoding mixes some of these up.
	series := []seamless.Series{
		{NodeID: "a", Interval: 60},
		{NodeID: "a", Interval: 1},
		{NodeID: "a", Interval: 256},
		{NodeID: "a", Interval: 3600},
		{NodeID: "a:b", Interval: 60},
		{NodeID: "a:b/c", Interval: 60},
		{NodeID: "a/b:c", Interval: 60},
		{NodeID: "a:", Interval: 60},
		{NodeID: "a\x00", Interval: 60},
		{NodeID: "a\x00b", Interval: 60},
		{NodeID: "\x00", Interval: 60},
		{NodeID: "\x00\x00", Interval: 60},
		{NodeID: "ab", Interval: 60},
		{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 60},
		{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 1},
		{NodeID: "ohlcv:binance:BTC/USDT:1", Interval: 60},
		{NodeID: "ünïcödé:€/₿:日本:1m", Interval: 60},
		{NodeID: "%2F:%3A", Interval: 60},
		// SQL and shell metacharacters: only bound parameters survive these.
		{NodeID: "a'; DROP TABLE series; --", Interval: 60},
		{NodeID: `"quoted"\back$lash`, Interval: 60},
	}
	want := map[seamless.Series]*frame.Frame{}
	for i, ser := range series {
		start := int64(i) * 3600 * 256
		f := ohlcvAt(gridTS(start, ser.Interval, 10+i), float64(i))
		mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(start, start+int64(10+i)*ser.Interval), Frame: f})
		want[ser] = f
	}
	for i, ser := range series {
		start := int64(i) * 3600 * 256
		wantFrame(t, fmt.Sprintf("Read %q@%d", ser.NodeID, ser.Interval), mustRead(t, s, ser, everything), want[ser])
		wantCoverage(t, s, ser, grid.NewSet(grid.R(start, start+int64(10+i)*ser.Interval)))
	}
	l := mustList(t, s)
	if len(l) != len(series) {
		t.Fatalf("ListSeries has %d series, want %d", len(l), len(series))
	}
	for _, info := range l {
		if want[info.Series] == nil {
			t.Fatalf("ListSeries has unknown series %q@%d", info.NodeID, info.Interval)
		}
	}
}

func testIntervalsIndependent(t *testing.T, s seamless.Store) {
	node := "ohlcv:demo:BTC-USD"
	m := map[int64]*model{}
	for i, iv := range []int64{60, 300, 3600, 86400} {
		ser := seamless.Series{NodeID: node, Interval: iv}
		r := grid.R(0, 86400*3)
		f := ohlcvAt(gridTS(0, iv, int(r.Bars(iv))), float64(i))
		w := seamless.Write{Series: ser, Range: r, Frame: f}
		mustWrite(t, s, w)
		m[iv] = newModel(frame.OHLCV)
		m[iv].write(w)
	}
	// A second write to one interval leaves the others alone.
	w := seamless.Write{Series: seamless.Series{NodeID: node, Interval: 300}, Range: grid.R(86400*5, 86400*6), Frame: ohlcvAt(gridTS(86400*5, 300, 288), 7)}
	mustWrite(t, s, w)
	m[300].write(w)
	for iv, mm := range m {
		mm.check(t, s, seamless.Series{NodeID: node, Interval: iv})
	}
}

func testNegativeTimestamps(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:OLD:1m", Interval: 60}
	f := OHLCV(-5000*60, 60, 8000) // crosses the epoch
	r := grid.R(-5000*60, 3000*60)
	mustWrite(t, s, seamless.Write{Series: ser, Range: r, Frame: f})
	wantFrame(t, "Read all", mustRead(t, s, ser, everything), f)
	wantFrame(t, "Read across epoch", mustRead(t, s, ser, grid.R(-100*60-7, 50*60+3)), f.Slice(4900, 5051))
	wantFrame(t, "Read before epoch", mustRead(t, s, ser, grid.R(-1025*60, -1023*60)), f.Slice(3975, 3977))
	wantCoverage(t, s, ser, grid.NewSet(r))

	day := seamless.Series{NodeID: "ohlcv:demo:OLD:1d", Interval: 86400}
	start := int64(-86400 * 365 * 60) // 1910
	d := OHLCV(start, 86400, 365*20)
	mustWrite(t, s, seamless.Write{Series: day, Range: grid.R(start, start+86400*365*20), Frame: d})
	wantFrame(t, "Read daily bars of 1910-1930", mustRead(t, s, day, everything), d)
}

func testNoAliasing(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	f := OHLCV(0, 60, 100)
	want := OHLCV(0, 60, 100)
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(0, 6000), Frame: f})
	// The caller may reuse its frame after Write returns…
	f.TS[0] = 6000
	f.Cols[0].F64[1] = -1
	got := mustRead(t, s, ser, everything)
	wantFrame(t, "Read after the written frame was modified", got, want)
	// …and modify what Read returned.
	got.TS[0] = 1
	got.Cols[3].F64[2] = -1
	wantFrame(t, "Read after a read frame was modified", mustRead(t, s, ser, everything), want)
}

func testRandomWrites(t *testing.T, s seamless.Store) {
	const iv = 60
	ser := seamless.Series{NodeID: "ohlcv:demo:RANDOM:1m", Interval: iv}
	rng := rand.New(rand.NewPCG(1, 2))
	m := newModel(frame.OHLCV)
	for op := range 80 {
		first := rng.Int64N(6000) - 3000
		n := 1 + rng.Int64N(2500)
		r := grid.R(first*iv-rng.Int64N(2)*17, (first+n)*iv)
		keep := rng.Float64()
		var ts []int64
		for b := first; b < first+n; b++ {
			if keep > 0.8 || rng.Float64() < keep {
				ts = append(ts, b*iv)
			}
		}
		w := seamless.Write{Series: ser, Range: r, Frame: ohlcvAt(ts, float64(op))}
		mustWrite(t, s, w)
		m.write(w)
		if op%20 == 19 {
			m.check(t, s, ser)
		}
	}
	m.check(t, s, ser)
	for range 40 {
		a, b := rng.Int64N(12000)-6000, rng.Int64N(12000)-6000
		r := grid.R(min(a, b)*iv/2, max(a, b)*iv/2+rng.Int64N(iv))
		wantFrame(t, fmt.Sprintf("Read %v", r), mustRead(t, s, ser, r), m.read(r))
	}
}

func testConcurrentWriters(t *testing.T, s seamless.Store) {
	const iv, writers, perWriter, width = 60, 8, 12, 400
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: iv}
	// Writer g owns bars [g*perWriter*width, (g+1)*perWriter*width) and also rewrites a
	// stretch reaching into its neighbour's. All bars are OHLCV(ts), so overlapping writes
	// agree and the final state is known whatever the interleaving.
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		errs  []error
		union grid.Set
		done  = make(chan struct{})
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	for g := range writers {
		base := int64(g * perWriter * width)
		var rs []grid.Range
		for k := range perWriter {
			lo := base + int64(k*width)
			rs = append(rs, grid.R(lo*iv, (lo+width)*iv))
		}
		rs = append(rs, grid.R((base-width/2)*iv, (base+width/2)*iv))
		for _, r := range rs {
			union = union.Add(r)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range rand.New(rand.NewPCG(uint64(g), 0)).Perm(len(rs)) {
				r := rs[k]
				w := seamless.Write{Series: ser, Range: r, Frame: OHLCV(r.Start, iv, int(r.Bars(iv)))}
				if err := s.Write(bg, w); err != nil {
					fail(fmt.Errorf("writer %d: Write %v: %w", g, r, err))
				}
			}
		}()
	}
	// Readers run alongside: whatever they see must be sorted, unique and made of bars
	// that were written.
	var rwg sync.WaitGroup
	for g := range 2 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-done:
					return
				default:
				}
				lo := rng.Int64N(writers*perWriter*width) - width
				r := grid.R(lo*iv, (lo+rng.Int64N(3*width))*iv)
				f, err := s.Read(bg, ser, r)
				if err != nil {
					fail(fmt.Errorf("reader: Read %v: %w", r, err))
					return
				}
				if f.Len() == 0 {
					continue
				}
				want := ohlcvAt(f.TS, 0)
				if !f.IsSortedUnique() || Diff(f, want) != "" {
					fail(fmt.Errorf("reader: Read %v during writes: sorted=%v, %s", r, f.IsSortedUnique(), Diff(f, want)))
					return
				}
				if _, err := s.Coverage(bg, ser); err != nil {
					fail(fmt.Errorf("reader: Coverage: %w", err))
					return
				}
				if _, err := s.ListSeries(bg); err != nil {
					fail(fmt.Errorf("reader: ListSeries: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rwg.Wait()
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	wantCoverage(t, s, ser, union)
	var ts []int64
	for _, r := range union.Ranges() {
		ts = append(ts, gridTS(r.Start, iv, int(r.Bars(iv)))...)
	}
	wantFrame(t, "Read after concurrent writes", mustRead(t, s, ser, everything), ohlcvAt(ts, 0))
}

func testCancelledContext(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(0, 600), Frame: OHLCV(0, 60, 10)})
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if err := s.Write(ctx, seamless.Write{Series: ser, Range: grid.R(600, 1200), Frame: OHLCV(600, 60, 10)}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Read(ctx, ser, everything); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Coverage(ctx, ser); !errors.Is(err, context.Canceled) {
		t.Fatalf("Coverage with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.ListSeries(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListSeries with a cancelled context = %v, want context.Canceled", err)
	}
	wantFrame(t, "Read after a cancelled write", mustRead(t, s, ser, everything), OHLCV(0, 60, 10))
	wantCoverage(t, s, ser, grid.NewSet(grid.R(0, 600)))
}

func testClosed(t *testing.T, s seamless.Store) {
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(0, 600), Frame: OHLCV(0, 60, 10)})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, op := range map[string]func() error{
		"Write": func() error {
			return s.Write(bg, seamless.Write{Series: ser, Range: grid.R(600, 1200), Frame: OHLCV(600, 60, 10)})
		},
		"Read":       func() error { _, err := s.Read(bg, ser, everything); return err },
		"Coverage":   func() error { _, err := s.Coverage(bg, ser); return err },
		"ListSeries": func() error { _, err := s.ListSeries(bg); return err },
		"Close":      func() error { return s.Close() },
	} {
		err := op()
		if name == "Close" && err == nil {
			continue // closing twice may succeed
		}
		if !errors.Is(err, seamless.ErrClosed) {
			t.Errorf("%s after Close = %v, want an error wrapping seamless.ErrClosed", name, err)
		}
	}
}
