package live_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memFeed is an in-memory seamless.LiveFeed: tests push updates into a series'
// subscription. It follows the feed contract: the channel closes when ctx ends.
type memFeed struct {
	mu   sync.Mutex
	subs map[seamless.Series]chan seamless.LiveUpdate
	n    int
}

func newMemFeed() *memFeed { return &memFeed{subs: map[seamless.Series]chan seamless.LiveUpdate{}} }

func (f *memFeed) Subscribe(ctx context.Context, s seamless.Series) (<-chan seamless.LiveUpdate, error) {
	in := make(chan seamless.LiveUpdate, 64)
	out := make(chan seamless.LiveUpdate)
	f.mu.Lock()
	f.subs[s] = in
	f.n++
	f.mu.Unlock()
	go func() {
		defer close(out)
		for {
			select {
			case u := <-in:
				select {
				case out <- u:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (f *memFeed) push(t *testing.T, s seamless.Series, closed bool, bars ...[6]float64) {
	t.Helper()
	f.mu.Lock()
	in := f.subs[s]
	f.mu.Unlock()
	if in == nil {
		t.Fatalf("no subscription of %s", s)
	}
	in <- seamless.LiveUpdate{Bars: ohlcv(bars...), Closed: closed}
}

func (f *memFeed) subscriptions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// ohlcv builds a frame from rows {ts, open, high, low, close, volume}.
func ohlcv(rows ...[6]float64) *frame.Frame {
	f := frame.New(frame.OHLCV, len(rows))
	for _, r := range rows {
		f.TS = append(f.TS, int64(r[0]))
		for i := range 5 {
			f.Cols[i].F64 = append(f.Cols[i].F64, r[i+1])
		}
	}
	return f
}

func bar(ts int64, c float64) [6]float64 { return [6]float64{float64(ts), 10, c + 1, 9, c, 5} }

const iv = 60

var (
	ser = seamless.Series{NodeID: "ohlcv:mem:BTC-USD:1m", Interval: iv}
	t0  = int64(1_700_000_040) // a minute boundary
)

type fixture struct {
	tier  *live.Tier
	feed  *memFeed
	store *memstore.Store
	clk   *clock.Fake
	gaps  chan grid.Range
}

func newFixture(t *testing.T, opts live.Options) *fixture {
	t.Helper()
	fx := &fixture{feed: newMemFeed(), store: memstore.New(), clk: clock.NewFake(time.Unix(t0+10*iv+5, 0)),
		gaps: make(chan grid.Range, 16)}
	opts.Feeds = map[string]seamless.LiveFeed{"mem": fx.feed}
	if opts.Sink == nil {
		opts.Sink = sinkOn(t, fx.store, fx.clk)
	}
	opts.Clock = fx.clk
	opts.OnGap = func(s seamless.Series, r grid.Range) { fx.gaps <- r }
	tier, err := live.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	fx.tier = tier
	t.Cleanup(func() {
		tier.Close()
		fx.store.Close()
	})
	if err := tier.Subscribe(ser); err != nil {
		t.Fatal(err)
	}
	return fx
}

// sinkOn is a provider over st: the write path the tier's closed bars take.
func sinkOn(t *testing.T, st seamless.Store, clk clock.Clock) *seamless.Provider {
	t.Helper()
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func wait(t *testing.T, tier *live.Tier, ts int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tier.WaitClosed(ctx, ser, ts); err != nil {
		t.Fatalf("WaitClosed(%d): %v", ts, err)
	}
}

// eventually polls cond for up to 10 s: for state changed by a background goroutine
// that no API call waits for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func closes(t *testing.T, f *frame.Frame) []float64 {
	t.Helper()
	return f.Col("close").F64
}

func TestClosedBarsStoredOnceWithCoverage(t *testing.T) {
	fx := newFixture(t, live.Options{})
	fx.feed.push(t, ser, false, bar(t0, 1))
	fx.feed.push(t, ser, false, bar(t0, 2))
	fx.feed.push(t, ser, true, bar(t0, 3))
	fx.feed.push(t, ser, true, bar(t0, 99)) // a replay: ignored, not an update
	fx.feed.push(t, ser, false, bar(t0+iv, 4))
	fx.feed.push(t, ser, false, bar(t0, 98)) // late forming update of a closed bar
	fx.feed.push(t, ser, true, bar(t0+iv, 5), bar(t0+2*iv, 6))
	wait(t, fx.tier, t0+2*iv)

	ctx := context.Background()
	got, err := fx.store.Read(ctx, ser, grid.R(t0, t0+10*iv))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.TS, []int64{t0, t0 + iv, t0 + 2*iv}) || !slices.Equal(closes(t, got), []float64{3, 5, 6}) {
		t.Fatalf("stored ts %v close %v", got.TS, closes(t, got))
	}
	cov, _ := fx.store.Coverage(ctx, ser)
	if want := grid.NewSet(grid.R(t0, t0+3*iv)); !cov.Equal(want) {
		t.Fatalf("coverage %v, want %v", cov, want)
	}
	recent, covered := fx.tier.Recent(ser, grid.R(t0+1, t0+10*iv))
	if covered != grid.R(t0+iv, t0+3*iv) || !slices.Equal(closes(t, recent), []float64{5, 6}) {
		t.Fatalf("Recent = %v %v", covered, closes(t, recent))
	}
	if _, ok := fx.tier.Forming(ser); ok {
		t.Fatal("a closed bar must replace the forming one")
	}
	sts := fx.tier.Statuses()
	if len(sts) != 1 || sts[0].Series != ser || sts[0].Buffered != 3 || sts[0].ClosedEnd != t0+3*iv || sts[0].LastUpdate.IsZero() {
		t.Fatalf("statuses %+v", sts)
	}
	st := fx.tier.Stats()
	if st.Duplicates != 1 || st.Stale != 1 || st.ClosedBars != 3 || st.StoredBars != 3 || st.Gaps != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFormingBarServedNotStored(t *testing.T) {
	fx := newFixture(t, live.Options{})
	now := fx.clk.Now().Unix()
	cur := grid.FloorAlign(now, iv)
	fx.feed.push(t, ser, true, bar(cur-iv, 1))
	fx.feed.push(t, ser, false, bar(cur, 7))
	wait(t, fx.tier, cur-iv)
	var f *frame.Frame
	eventually(t, "the forming bar", func() bool {
		var ok bool
		f, ok = fx.tier.Forming(ser)
		return ok
	})
	if f.TS[0] != cur || closes(t, f)[0] != 7 {
		t.Fatalf("forming %v %v", f.TS, closes(t, f))
	}
	got, _ := fx.store.Read(context.Background(), ser, grid.R(cur, cur+iv))
	if got.Len() != 0 {
		t.Fatal("a forming bar was stored")
	}
	fx.clk.Advance(iv * time.Second) // the interval ended without a closed update
	if _, ok := fx.tier.Forming(ser); ok {
		t.Fatal("a bar past its interval is not forming")
	}
}

func TestHoleLeftForBackfill(t *testing.T) {
	fx := newFixture(t, live.Options{})
	fx.feed.push(t, ser, true, bar(t0, 1))
	fx.feed.push(t, ser, false, bar(t0+3*iv, 2)) // resumed after a disconnect
	fx.feed.push(t, ser, true, bar(t0+3*iv, 3))
	wait(t, fx.tier, t0+3*iv)

	cov, _ := fx.store.Coverage(context.Background(), ser)
	if want := grid.NewSet(grid.R(t0, t0+iv), grid.R(t0+3*iv, t0+4*iv)); !cov.Equal(want) {
		t.Fatalf("coverage %v, want %v: the hole must stay uncovered", cov, want)
	}
	if g := <-fx.gaps; g != grid.R(t0+iv, t0+3*iv) {
		t.Fatalf("gap %v", g)
	}
	if _, covered := fx.tier.Recent(ser, grid.R(t0, t0+10*iv)); covered != grid.R(t0+3*iv, t0+4*iv) {
		t.Fatalf("Recent covered %v: want only the newest contiguous run", covered)
	}
	err := fx.tier.WaitClosed(context.Background(), ser, t0+iv)
	if !errors.Is(err, live.ErrMissed) {
		t.Fatalf("WaitClosed in the hole: %v, want ErrMissed", err)
	}
	// A late delivery of a missing bar fills the hole.
	fx.feed.push(t, ser, true, bar(t0+iv, 4))
	want := grid.NewSet(grid.R(t0, t0+2*iv), grid.R(t0+3*iv, t0+4*iv))
	eventually(t, "the late bar stored", func() bool {
		cov, _ = fx.store.Coverage(context.Background(), ser)
		return cov.Equal(want)
	})
	if st := fx.tier.Stats(); st.Gaps != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWaitClosedBeforeSubscriptionIsMissed(t *testing.T) {
	fx := newFixture(t, live.Options{})
	cur := grid.FloorAlign(fx.clk.Now().Unix(), iv)
	fx.feed.push(t, ser, false, bar(cur, 1))
	eventually(t, "the forming bar", func() bool { _, ok := fx.tier.Forming(ser); return ok })
	if err := fx.tier.WaitClosed(context.Background(), ser, cur-iv); !errors.Is(err, live.ErrMissed) {
		t.Fatalf("WaitClosed: %v, want ErrMissed", err)
	}
}

func TestWaitClosedBoundedByContext(t *testing.T) {
	fx := newFixture(t, live.Options{})
	ctx, cancel := fx.clk.WithDeadline(context.Background(), fx.clk.Now().Add(2*time.Second))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fx.tier.WaitClosed(ctx, ser, t0+10*iv) }()
	fx.clk.Advance(3 * time.Second)
	if err := <-done; err == nil || !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		t.Fatalf("WaitClosed: %v", err)
	}
	if err := fx.tier.WaitClosed(context.Background(), ser, t0+1); err == nil {
		t.Fatal("an off-grid ts must be rejected")
	}
}

func TestBufferKeepsNewestBars(t *testing.T) {
	fx := newFixture(t, live.Options{BufferBars: 3})
	for i := range int64(5) {
		fx.feed.push(t, ser, true, bar(t0+i*iv, float64(i)))
	}
	wait(t, fx.tier, t0+4*iv)
	f, covered := fx.tier.Recent(ser, grid.R(t0, t0+10*iv))
	if covered != grid.R(t0+2*iv, t0+5*iv) || !slices.Equal(closes(t, f), []float64{2, 3, 4}) {
		t.Fatalf("Recent %v %v", covered, closes(t, f))
	}
	got, _ := fx.store.Read(context.Background(), ser, grid.R(t0, t0+10*iv))
	if got.Len() != 5 {
		t.Fatalf("stored %d bars, want all 5", got.Len())
	}
	// A replay older than the buffer is not written again.
	fx.feed.push(t, ser, true, bar(t0, 42))
	fx.feed.push(t, ser, true, bar(t0+5*iv, 5))
	wait(t, fx.tier, t0+5*iv)
	if st := fx.tier.Stats(); st.Stale != 1 || st.StoredBars != 6 {
		t.Fatalf("stats %+v", st)
	}
}

// flakyStore fails its first n writes.
type flakyStore struct {
	seamless.Store
	mu sync.Mutex
	n  int
}

func (s *flakyStore) Write(ctx context.Context, w seamless.Write) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 {
		s.n--
		return errors.New("disk full")
	}
	return s.Store.Write(ctx, w)
}

func TestFailedWriteRetried(t *testing.T) {
	mem := memstore.New()
	fx := newFixture(t, live.Options{Sink: sinkOn(t, &flakyStore{Store: mem, n: 1}, nil)})
	fx.feed.push(t, ser, true, bar(t0, 1))
	eventually(t, "a failed write", func() bool { return fx.tier.Stats().WriteErrors == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := fx.tier.WaitClosed(ctx, ser, t0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitClosed before the bar is stored: %v", err)
	}
	fx.feed.push(t, ser, true, bar(t0+iv, 2))
	wait(t, fx.tier, t0)
	wait(t, fx.tier, t0+iv)
	cov, _ := mem.Coverage(context.Background(), ser)
	if want := grid.NewSet(grid.R(t0, t0+2*iv)); !cov.Equal(want) {
		t.Fatalf("coverage %v, want %v", cov, want)
	}
}

func TestIdleSubscriptionStops(t *testing.T) {
	fx := newFixture(t, live.Options{IdleTimeout: time.Minute})
	fx.clk.Advance(30 * time.Second)
	fx.tier.Forming(ser) // a use postpones the timeout
	fx.clk.Advance(45 * time.Second)
	if st := fx.tier.Stats(); st.Active != 1 {
		t.Fatalf("stopped early: %+v", st)
	}
	fx.clk.Advance(20 * time.Second)
	// The subscription leaves the tier (Active) before its goroutine has ended
	// (Unsubscribed): wait for both.
	eventually(t, "the idle stop", func() bool { st := fx.tier.Stats(); return st.Active == 0 && st.Unsubscribed == 1 })
	if st := fx.tier.Stats(); st.IdleStops != 1 || st.Unsubscribed != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := fx.tier.Subscribe(ser); err != nil {
		t.Fatal(err)
	}
	if fx.feed.subscriptions() != 2 {
		t.Fatalf("%d feed subscriptions, want a new one", fx.feed.subscriptions())
	}
}

func TestSeriesErrors(t *testing.T) {
	fx := newFixture(t, live.Options{})
	if err := fx.tier.Subscribe(seamless.Series{NodeID: "ohlcv:nowhere:BTC-USD:1m", Interval: 60}); !errors.Is(err, live.ErrNoFeed) {
		t.Fatalf("unknown source: %v", err)
	}
	if fx.tier.Serves(seamless.Series{NodeID: "ohlcv:mem:BTC-USD:1m", Interval: 300}) {
		t.Fatal("an interval that contradicts the timeframe is not served")
	}
	if !fx.tier.Serves(ser) {
		t.Fatal("Serves")
	}
	fx.tier.Close()
	if err := fx.tier.Subscribe(ser); !errors.Is(err, seamless.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if f, covered := fx.tier.Recent(ser, grid.R(t0, t0+iv)); f.Len() != 0 || !covered.Empty() {
		t.Fatal("Recent after Close")
	}
}

func TestCloseEndsWaiters(t *testing.T) {
	fx := newFixture(t, live.Options{})
	done := make(chan error, 1)
	go func() { done <- fx.tier.WaitClosed(context.Background(), ser, t0+20*iv) }()
	fx.tier.Close()
	if err := <-done; !errors.Is(err, seamless.ErrClosed) {
		t.Fatalf("WaitClosed across Close: %v", err)
	}
}

// TestSilentFeedIsMissed: once a feed has delivered nothing for its silence threshold,
// waiting for a bar reports it missed at once (the request falls back to REST) instead
// of spending the whole live budget; a delivery makes the feed live again.
func TestSilentFeedIsMissed(t *testing.T) {
	fx := newFixture(t, live.Options{})
	next := grid.FloorAlign(fx.clk.Now().Unix(), iv) // closes within the minute
	fx.clk.Advance(2 * iv * time.Second)             // no update for two intervals
	if err := fx.tier.WaitClosed(context.Background(), ser, next); !errors.Is(err, live.ErrMissed) || !strings.Contains(err.Error(), "silent") {
		t.Fatalf("WaitClosed on a silent feed: %v, want ErrMissed", err)
	}
	cur := grid.FloorAlign(fx.clk.Now().Unix(), iv)
	fx.feed.push(t, ser, false, bar(cur, 1))
	eventually(t, "the forming bar", func() bool { _, ok := fx.tier.Forming(ser); return ok })
	done := make(chan error, 1)
	go func() { done <- fx.tier.WaitClosed(context.Background(), ser, cur) }()
	select {
	case err := <-done:
		t.Fatalf("WaitClosed on a live feed returned at once: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	fx.feed.push(t, ser, true, bar(cur, 2))
	if err := <-done; err != nil {
		t.Fatalf("WaitClosed after the bar closed: %v", err)
	}
}
