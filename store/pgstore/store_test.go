package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/pgstore"
	"github.com/seamless-data/seamless/store/storetest"
)

var ctx = context.Background()

// testOptions keep pools small: the suite opens a store per subtest.
var testOptions = pgstore.Options{MaxConns: 4}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) seamless.Store { return openStore(t, freshSchema(t), testOptions) })
}

// TestContractSmallBlocks runs the suite with blocks of 7 bars, so that every test's
// writes and reads cross many block boundaries and merge into stored blocks.
func TestContractSmallBlocks(t *testing.T) {
	t.Parallel()
	opts := testOptions
	opts.BlockBars = 7
	storetest.Run(t, func(t *testing.T) seamless.Store { return openStore(t, freshSchema(t), opts) })
}

type state struct {
	f   *frame.Frame
	cov grid.Set
}

func snapshot(t *testing.T, s seamless.Store, series ...seamless.Series) map[seamless.Series]state {
	t.Helper()
	out := map[seamless.Series]state{}
	for _, ser := range series {
		f, err := s.Read(ctx, ser, grid.R(-1<<62, 1<<62))
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Coverage(ctx, ser)
		if err != nil {
			t.Fatal(err)
		}
		out[ser] = state{f, c}
	}
	return out
}

func sameState(t *testing.T, what string, got, want map[seamless.Series]state) {
	t.Helper()
	for ser, w := range want {
		g := got[ser]
		if d := storetest.Diff(g.f, w.f); d != "" {
			t.Errorf("%s: %v: %s", what, ser, d)
		}
		if !g.cov.Equal(w.cov) {
			t.Errorf("%s: %v coverage = %v, want %v", what, ser, g.cov, w.cov)
		}
	}
}

func mustWrite(t *testing.T, s seamless.Store, w seamless.Write) {
	t.Helper()
	if err := s.Write(ctx, w); err != nil {
		t.Fatalf("Write %v %v token %d: %v", w.Series, w.Range, w.Token, err)
	}
}

// TestRestart writes, closes, reopens with a different BlockBars (which must not apply
// to existing series) and reads the same frames, coverage and series back; the reopened
// store keeps working, and reopening applied no migration twice.
func TestRestart(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	s, err := pgstore.Open(ctx, dsn, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	a := seamless.Series{NodeID: "ohlcv:demo:BTC/USD:1m", Interval: 60}
	b := seamless.Series{NodeID: "ohlcv:demo:BTC/USD:1h", Interval: 3600}
	for _, w := range []seamless.Write{
		{Series: a, Range: grid.R(-3000*60, 5000*60), Frame: storetest.OHLCV(-3000*60, 60, 8000)},
		{Series: a, Range: grid.R(9000*60, 9500*60), Frame: storetest.OHLCV(9100*60, 60, 100), Token: 3},
		{Series: b, Range: grid.R(0, 3600*24), Frame: &frame.Frame{}},
	} {
		mustWrite(t, s, w)
	}
	before := snapshot(t, s, a, b)
	listBefore, err := s.ListSeries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before[a].f.Len() != 8100 || before[a].cov.Len() != 2 {
		t.Fatalf("before restart: %d bars, coverage %v", before[a].f.Len(), before[a].cov)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	reopened := testOptions
	reopened.BlockBars = 100
	s = openStore(t, dsn, reopened)
	sameState(t, "after restart", snapshot(t, s, a, b), before)
	listAfter, err := s.ListSeries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(listAfter) != fmt.Sprint(listBefore) {
		t.Errorf("ListSeries after restart = %+v, want %+v", listAfter, listBefore)
	}
	// Fences survive too.
	err = s.Write(ctx, seamless.Write{Series: a, Range: grid.R(9000*60, 9500*60), Frame: storetest.OHLCV(9000*60, 60, 1), Token: 2})
	if !errors.Is(err, seamless.ErrLeaseLost) {
		t.Errorf("stale write after restart = %v, want a rejection", err)
	}
	// A write merges with reopened blocks, which keep their 900-bar size.
	mustWrite(t, s, seamless.Write{Series: a, Range: grid.R(5000*60, 9000*60), Frame: storetest.OHLCV(5000*60, 60, 4000)})
	want := storetest.OHLCV(-3000*60, 60, 12000)
	tail := storetest.OHLCV(9100*60, 60, 100)
	want.AppendRows(tail, 0, tail.Len())
	if d := storetest.Diff(snapshot(t, s, a)[a].f, want); d != "" {
		t.Fatalf("after a write following restart: %s", d)
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n, blocks int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&n, &blocks); err != nil || n != blocks || n == 0 {
		t.Fatalf("schema_migrations: %d rows, %d versions, %v", n, blocks, err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM blocks b JOIN series s ON s.id = b.series_id WHERE s.interval = 60`).Scan(&blocks); err != nil {
		t.Fatal(err)
	}
	// 12,100 bars from bar -3000 on: blocks -4..10 of 900 bars each.
	if blocks != 15 {
		t.Errorf("series a has %d blocks, want 15 of 900 bars", blocks)
	}
}

// TestConcurrentOpen opens stores on one fresh schema at once: the advisory lock makes
// exactly one of them apply the migrations, and all of them work.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	const n = 6
	stores := make([]*pgstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = pgstore.Open(ctx, dsn, pgstore.Options{MaxConns: 2})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	for i, s := range stores {
		r := grid.R(int64(i)*600, int64(i+1)*600)
		mustWrite(t, s, seamless.Write{Series: ser, Range: r, Frame: storetest.OHLCV(r.Start, 60, 10)})
	}
	got := snapshot(t, stores[0], ser)[ser]
	if d := storetest.Diff(got.f, storetest.OHLCV(0, 60, 10*n)); d != "" || !got.cov.Equal(grid.NewSet(grid.R(0, 600*n))) {
		t.Fatalf("after writes through %d stores: %s, coverage %v", n, d, got.cov)
	}
}

// TestNodeIDIsData writes series whose node ids are SQL fragments; they are stored and
// read back as they are, and every table survives.
func TestNodeIDIsData(t *testing.T) {
	t.Parallel()
	s := openStore(t, freshSchema(t), testOptions)
	ids := []string{
		"x'; DROP TABLE bars; --",
		"x'; DROP TABLE blocks; --",
		`x"); DELETE FROM series; --`,
		"ohlcv:demo:$1:1m",
		`\x00' OR '1'='1`,
	}
	var series []seamless.Series
	for i, id := range ids {
		ser := seamless.Series{NodeID: id, Interval: 60}
		series = append(series, ser)
		mustWrite(t, s, seamless.Write{Series: ser, Range: grid.R(0, int64(i+1)*60), Frame: storetest.OHLCV(0, 60, i+1)})
	}
	for i, ser := range series {
		st := snapshot(t, s, ser)[ser]
		if d := storetest.Diff(st.f, storetest.OHLCV(0, 60, i+1)); d != "" {
			t.Errorf("%q: %s", ser.NodeID, d)
		}
		if !st.cov.Equal(grid.NewSet(grid.R(0, int64(i+1)*60))) {
			t.Errorf("%q: coverage %v", ser.NodeID, st.cov)
		}
	}
	l, err := s.ListSeries(ctx)
	if err != nil || len(l) != len(ids) {
		t.Fatalf("ListSeries = %d series, %v; want %d", len(l), err, len(ids))
	}
}

// TestFencing checks SPEC §6: a writer whose lease expired (an older token) cannot
// overwrite a chunk written under a newer token, and its rejected write changes nothing.
func TestFencing(t *testing.T) {
	t.Parallel()
	s := openStore(t, freshSchema(t), testOptions)
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	other := seamless.Series{NodeID: "ohlcv:demo:ETH-USD:1m", Interval: 60}
	chunk := grid.R(0, 900*60)
	bars := func(r grid.Range, salt float64) *frame.Frame {
		f := storetest.OHLCV(r.Start, 60, int(r.Bars(60)))
		for i := range f.Cols[0].F64 {
			f.Cols[0].F64[i] += salt
		}
		return f
	}
	// The worker holding token 7 writes the chunk.
	mustWrite(t, s, seamless.Write{Series: ser, Range: chunk, Frame: bars(chunk, 7), Token: 7})
	before := snapshot(t, s, ser)

	stale := func(name string, w seamless.Write, applied uint64) {
		t.Helper()
		err := s.Write(ctx, w)
		var se *pgstore.StaleTokenError
		if !errors.As(err, &se) || !errors.Is(err, seamless.ErrLeaseLost) {
			t.Fatalf("%s: Write = %v, want a *pgstore.StaleTokenError wrapping seamless.ErrLeaseLost", name, err)
		}
		if se.Token != w.Token || se.Applied != applied || se.Series != w.Series || se.Range != w.Range {
			t.Fatalf("%s: error %+v does not describe the write", name, se)
		}
		sameState(t, name, snapshot(t, s, ser), before)
	}
	// The expired lease's late write of the same chunk, and of a range overlapping it,
	// are rejected; so is a write that overlaps by one bar.
	stale("same chunk, older token", seamless.Write{Series: ser, Range: chunk, Frame: bars(chunk, 5), Token: 5}, 7)
	stale("overlapping range", seamless.Write{Series: ser, Range: grid.R(450*60, 1350*60), Frame: bars(grid.R(450*60, 1350*60), 5), Token: 6}, 7)
	stale("one bar of overlap", seamless.Write{Series: ser, Range: grid.R(899*60, 1800*60), Frame: &frame.Frame{}, Token: 1}, 7)
	stale("largest token below", seamless.Write{Series: ser, Range: chunk, Frame: &frame.Frame{}, Token: 6}, 7)

	// The same token may write again (a retry by the lease holder), and a newer token
	// wins; after it the old holder's token is stale too.
	mustWrite(t, s, seamless.Write{Series: ser, Range: chunk, Frame: bars(chunk, 7), Token: 7})
	mustWrite(t, s, seamless.Write{Series: ser, Range: chunk, Frame: bars(chunk, 9), Token: 1 << 63})
	before = snapshot(t, s, ser)
	if d := storetest.Diff(before[ser].f, bars(chunk, 9)); d != "" {
		t.Fatalf("after the newer token's write: %s", d)
	}
	stale("token 7 after a newer one", seamless.Write{Series: ser, Range: chunk, Frame: bars(chunk, 7), Token: 7}, 1<<63)
	mustWrite(t, s, seamless.Write{Series: ser, Range: chunk, Frame: bars(chunk, 9), Token: ^uint64(0)})
	stale("token 2^63 after 2^64-1", seamless.Write{Series: ser, Range: chunk, Frame: &frame.Frame{}, Token: 1 << 63}, ^uint64(0))

	// Adjacent chunks, other series and unfenced writes are not fenced.
	next := grid.R(900*60, 1800*60)
	mustWrite(t, s, seamless.Write{Series: ser, Range: next, Frame: bars(next, 1), Token: 1})
	mustWrite(t, s, seamless.Write{Series: other, Range: chunk, Frame: bars(chunk, 1), Token: 1})
	mustWrite(t, s, seamless.Write{Series: ser, Range: chunk, Frame: bars(chunk, 0)})
	got := snapshot(t, s, ser, other)
	want := bars(grid.R(0, 1800*60), 0)
	want.Cols[0].F64 = append(bars(chunk, 0).Cols[0].F64, bars(next, 1).Cols[0].F64...)
	if d := storetest.Diff(got[ser].f, want); d != "" {
		t.Fatalf("after unfenced and adjacent writes: %s", d)
	}
	if d := storetest.Diff(got[other].f, bars(chunk, 1)); d != "" {
		t.Fatalf("other series: %s", d)
	}
}

// TestFencingRace has two writers of one chunk race with tokens 1..n in random order:
// whatever the interleaving, a write is rejected exactly when a higher token landed
// before it, and the chunk ends with the bars of the highest token.
func TestFencingRace(t *testing.T) {
	t.Parallel()
	s := openStore(t, freshSchema(t), testOptions)
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	chunk := grid.R(0, 900*60)
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := 1 + g; tok <= n; tok += 2 {
				f := storetest.OHLCV(0, 60, 900)
				f.Cols[4].F64[0] = float64(tok)
				errs[tok] = s.Write(ctx, seamless.Write{Series: ser, Range: chunk, Frame: f, Token: uint64(tok)})
			}
		}()
	}
	wg.Wait()
	if errs[n] != nil {
		t.Fatalf("the highest token's write failed: %v", errs[n])
	}
	for tok, err := range errs[1:] {
		if err != nil && !errors.Is(err, seamless.ErrLeaseLost) {
			t.Fatalf("token %d: %v", tok+1, err)
		}
	}
	f, err := s.Read(ctx, ser, chunk)
	if err != nil || f.Len() != 900 {
		t.Fatalf("chunk after the race: %d bars, %v", f.Len(), err)
	}
	if got := f.Cols[4].F64[0]; got != n {
		t.Fatalf("chunk after the race holds the bars of token %v, want %d", got, n)
	}
}
