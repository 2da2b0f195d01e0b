package binancews_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const iv = 60

var (
	btc = seamless.Series{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: iv}
	t0  = int64(1_700_000_040) // a minute boundary
)

type fixture struct {
	fs    *fakeStream
	feed  *binancews.Feed
	tier  *live.Tier
	store *memstore.Store
	clk   *clock.Fake

	mu         sync.Mutex
	reconnects []string
}

// newFixture wires fakeStream → Feed → Tier → memstore on a fake clock set inside the
// bar t0+4*iv.
func newFixture(t *testing.T, opts binancews.Options, script ...step) *fixture {
	t.Helper()
	fx := &fixture{fs: newFakeStream(t, script...), store: memstore.New(), clk: clock.NewFake(time.Unix(t0+4*iv+10, 0))}
	opts.BaseURL = fx.fs.url()
	opts.Clock = fx.clk
	opts.Seed = 7
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = -1
	}
	opts.OnReconnect = func(source string) {
		fx.mu.Lock()
		fx.reconnects = append(fx.reconnects, source)
		fx.mu.Unlock()
	}
	feed, err := binancews.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	fx.feed = feed
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"binance": feed}, Store: fx.store,
		Clock: fx.clk, IdleTimeout: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fx.tier = tier
	t.Cleanup(func() {
		tier.Close()
		fx.store.Close()
	})
	return fx
}

func (fx *fixture) wait(t *testing.T, ts int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fx.tier.WaitClosed(ctx, btc, ts); err != nil {
		t.Fatalf("WaitClosed(%d): %v (feed %+v, tier %+v)", ts, err, fx.feed.Stats(), fx.tier.Stats())
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// checkStored asserts the stored bars of [t0, end) are exactly ts → barOf(n).
func checkStored(t *testing.T, st seamless.Store, end int64, want map[int64]float64) {
	t.Helper()
	f, err := st.Read(context.Background(), btc, grid.R(t0, end))
	if err != nil {
		t.Fatal(err)
	}
	if f.Len() != len(want) {
		t.Fatalf("stored ts %v, want %d bars", f.TS, len(want))
	}
	for i, ts := range f.TS {
		n, ok := want[ts]
		if !ok {
			t.Fatalf("unexpected bar at %d", ts)
		}
		var got [5]float64
		for c := range 5 {
			got[c] = f.Cols[c].F64[i]
		}
		if got != barOf(n) {
			t.Fatalf("bar %d = %v, want %v", ts, got, barOf(n))
		}
	}
}

func TestDisconnectNeitherDuplicatesNorLosesBars(t *testing.T) {
	fx := newFixture(t, binancews.Options{},
		step{send: []string{kline(t0, 1, false), kline(t0, 2, false), kline(t0, 3, true),
			kline(t0+iv, 4, false), kline(t0+iv, 5, true)}, drop: true},
		// Reconnected: the server replays the last closed kline first.
		step{send: []string{kline(t0+iv, 5, true), kline(t0+2*iv, 6, false), `{"e":"kline","k":`,
			kline(t0+2*iv, 7, true), kline(t0+3*iv, 8, true), kline(t0+4*iv, 9, false)}},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0+3*iv)
	checkStored(t, fx.store, t0+10*iv, map[int64]float64{t0: 3, t0 + iv: 5, t0 + 2*iv: 7, t0 + 3*iv: 8})
	cov, _ := fx.store.Coverage(context.Background(), btc)
	if want := grid.NewSet(grid.R(t0, t0+4*iv)); !cov.Equal(want) {
		t.Fatalf("coverage %v, want %v", cov, want)
	}

	eventually(t, "the forming bar", func() bool { _, ok := fx.tier.Forming(btc); return ok })
	f, _ := fx.tier.Forming(btc)
	if f.TS[0] != t0+4*iv || f.Col("close").F64[0] != barOf(9)[3] {
		t.Fatalf("forming %v close %v", f.TS, f.Col("close").F64)
	}

	fs, ts := fx.feed.Stats(), fx.tier.Stats()
	if fs.Reconnects != 1 || fs.Malformed != 1 || fs.Connects != 2 || ts.Duplicates != 1 || ts.Gaps != 0 {
		t.Fatalf("feed %+v tier %+v", fs, ts)
	}
	fx.mu.Lock()
	if !slices.Equal(fx.reconnects, []string{"binance"}) {
		t.Fatalf("OnReconnect calls %v", fx.reconnects)
	}
	fx.mu.Unlock()
	if paths, _ := fx.fs.state(); !slices.Equal(paths, []string{"/ws/btcusdt@kline_1m", "/ws/btcusdt@kline_1m"}) {
		t.Fatalf("paths %v", paths)
	}
	if sl := fx.clk.Sleeps(); len(sl) != 1 || sl[0] < 750*time.Millisecond || sl[0] > 1250*time.Millisecond {
		t.Fatalf("backoff sleeps %v, want one of 1 s ± 25%%", sl)
	}
}

func TestHoleAfterReconnectLeftUncovered(t *testing.T) {
	fx := newFixture(t, binancews.Options{},
		step{send: []string{kline(t0, 1, true)}, drop: true},
		step{send: []string{kline(t0+3*iv, 2, false), kline(t0+3*iv, 3, true)}},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0+3*iv)
	checkStored(t, fx.store, t0+10*iv, map[int64]float64{t0: 1, t0 + 3*iv: 3})
	cov, _ := fx.store.Coverage(context.Background(), btc)
	if want := grid.NewSet(grid.R(t0, t0+iv), grid.R(t0+3*iv, t0+4*iv)); !cov.Equal(want) {
		t.Fatalf("coverage %v, want %v", cov, want)
	}
	if err := fx.tier.WaitClosed(context.Background(), btc, t0+iv); !errors.Is(err, live.ErrMissed) {
		t.Fatalf("WaitClosed in the hole: %v", err)
	}
	if st := fx.tier.Stats(); st.Gaps != 1 {
		t.Fatalf("tier %+v", st)
	}
}

func TestReconnectBackoffSchedule(t *testing.T) {
	var script []step
	for range 7 {
		script = append(script, step{refuse: 503})
	}
	script = append(script,
		step{send: []string{kline(t0, 1, true)}, drop: true}, // healthy: resets the backoff
		step{refuse: 429},
		step{send: []string{kline(t0+iv, 2, true)}},
	)
	fx := newFixture(t, binancews.Options{MinBackoff: time.Second, MaxBackoff: 16 * time.Second}, script...)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0+iv)
	bases := []time.Duration{1, 2, 4, 8, 16, 16, 16, 1, 2}
	sl := fx.clk.Sleeps()
	if len(sl) != len(bases) {
		t.Fatalf("sleeps %v, want %d", sl, len(bases))
	}
	for i, b := range bases {
		b *= time.Second
		if sl[i] < b*3/4 || sl[i] > b*5/4 {
			t.Fatalf("sleep %d = %v, want %v ± 25%% (all: %v)", i, sl[i], b, sl)
		}
	}
	if fs := fx.feed.Stats(); fs.Dials != 10 || fs.Connects != 2 || fs.Reconnects != 9 {
		t.Fatalf("feed %+v", fs)
	}
	fx.mu.Lock()
	defer fx.mu.Unlock()
	if len(fx.reconnects) != 9 {
		t.Fatalf("OnReconnect called %d times", len(fx.reconnects))
	}
}

func TestMalformedMessagesSkipped(t *testing.T) {
	bad := []string{
		`not json`,
		`{"e":"24hrTicker","E":1,"s":"BTCUSDT"}`,
		`{"result":null,"id":1}`,
		klineFor("ETHUSDT", "1m", t0*1000, t0*1000+59_999, 1, true), // another symbol
		klineFor("BTCUSDT", "5m", t0*1000, t0*1000+59_999, 1, true), // another interval
		klineFor("BTCUSDT", "1m", t0*1000+1, t0*1000+60_000, 1, true),
		klineFor("BTCUSDT", "1m", t0*1000, t0*1000+60_000, 1, true), // close time inconsistent
		`{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":` + itoa(t0*1000) + `,"T":` + itoa(t0*1000+59_999) +
			`,"s":"BTCUSDT","i":"1m","o":"abc","c":"1","h":"1","l":"1","v":"1","x":true}}`,
		`{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":` + itoa(t0*1000) + `,"T":` + itoa(t0*1000+59_999) +
			`,"s":"BTCUSDT","i":"1m","o":"NaN","c":"1","h":"1","l":"1","v":"1","x":true}}`,
		`{"e":"kline","E":1,"s":"BTCUSDT","k":{"t":` + itoa(t0*1000) + `,"T":` + itoa(t0*1000+59_999) +
			`,"s":"BTCUSDT","i":"1m","o":"1","c":"1","h":"1","l":"1","v":"1"}}`, // no x
	}
	fx := newFixture(t, binancews.Options{},
		step{send: append(bad, kline(t0, 10, true))},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0)
	checkStored(t, fx.store, t0+10*iv, map[int64]float64{t0: 10})
	if fs := fx.feed.Stats(); fs.Malformed != uint64(len(bad)) || fs.Reconnects != 0 || fs.Messages != uint64(len(bad)+1) {
		t.Fatalf("feed %+v, want %d malformed on one connection", fs, len(bad))
	}
}

func TestBinaryMessagesSkipped(t *testing.T) {
	fx := newFixture(t, binancews.Options{},
		step{send: []string{kline(t0, 1, true)}, binary: true, drop: true},
		step{send: []string{kline(t0, 1, true)}},
	)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0)
	if fs := fx.feed.Stats(); fs.Malformed != 1 {
		t.Fatalf("feed %+v", fs)
	}
}

func TestSilentConnectionReplaced(t *testing.T) {
	// The first connection stays silent; the following ones deliver t0. Advancing
	// the clock past the read timeout can also expire a dial in progress (both run on
	// the fake clock), so later steps repeat the kline.
	script := []step{{}}
	for range 5 {
		script = append(script, step{send: []string{kline(t0, 1, true)}})
	}
	fx := newFixture(t, binancews.Options{ReadTimeout: 30 * time.Second}, script...)
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the bar from a replacement connection", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if fx.tier.WaitClosed(ctx, btc, t0) == nil {
			return true
		}
		if _, open := fx.fs.state(); open == 1 {
			fx.clk.Advance(31 * time.Second)
		}
		return false
	})
	if fs := fx.feed.Stats(); fs.Reconnects == 0 {
		t.Fatalf("feed %+v: the silent connection was kept", fs)
	}
}

func TestCloseStopsConnections(t *testing.T) {
	// Either subscription may take either step: each step serves both symbols, and
	// each connection skips the other's kline as malformed.
	both := step{send: []string{kline(t0, 1, true), klineFor("ETHUSDT", "5m", 1_700_000_100_000, 1_700_000_399_999, 1, true)}}
	fx := newFixture(t, binancews.Options{}, both, both)
	eth := seamless.Series{NodeID: "ohlcv:binance:ETH/USDT:5m", Interval: 300}
	for _, s := range []seamless.Series{btc, eth} {
		if err := fx.tier.Subscribe(s); err != nil {
			t.Fatal(err)
		}
	}
	fx.wait(t, t0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fx.tier.WaitClosed(ctx, eth, 1_700_000_100); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two connections", func() bool { _, open := fx.fs.state(); return open == 2 })
	fx.tier.Close()
	eventually(t, "the server to see both connections closed", func() bool { _, open := fx.fs.state(); return open == 0 })
	if st := fx.tier.Stats(); st.Active != 0 || st.Unsubscribed != 2 {
		t.Fatalf("tier %+v", st)
	}
	if err := fx.tier.Subscribe(btc); !errors.Is(err, seamless.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}

func TestIdleSubscriptionDisconnects(t *testing.T) {
	fx := newFixture(t, binancews.Options{}, step{send: []string{kline(t0, 1, true)}})
	if err := fx.tier.Subscribe(btc); err != nil {
		t.Fatal(err)
	}
	fx.wait(t, t0)
	fx.clk.Advance(25 * time.Hour)
	eventually(t, "the idle disconnect", func() bool { _, open := fx.fs.state(); return open == 0 })
	if st := fx.tier.Stats(); st.IdleStops != 1 || st.Active != 0 {
		t.Fatalf("tier %+v", st)
	}
}

func TestSubscribeRejectsUnstreamableNodes(t *testing.T) {
	feed, err := binancews.New(binancews.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []seamless.Series{
		{NodeID: "ohlcv:binance:btc/usdt:1m", Interval: 60},
		{NodeID: "ohlcv:binance:BTCUSDT:1m", Interval: 60},
		{NodeID: "ohlcv:binance:BTC/USDT:1w", Interval: 604800},
		{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 300},
		{NodeID: "trades:binance:BTC/USDT:1m", Interval: 60},
	} {
		if _, err := feed.Subscribe(context.Background(), s); !seamless.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", s, err)
		}
	}
}

func TestOptionsFromEnv(t *testing.T) {
	t.Setenv("SEAMLESS_BINANCE_WS_URL", "ws://127.0.0.1:9/ws")
	o, err := binancews.OptionsFromEnv()
	if err != nil || o.BaseURL != "ws://127.0.0.1:9/ws" {
		t.Fatalf("%+v %v", o, err)
	}
	t.Setenv("SEAMLESS_BINANCE_WS_URL", "ftp://x")
	if _, err := binancews.OptionsFromEnv(); err == nil {
		t.Fatal("an ftp URL was accepted")
	}
}
