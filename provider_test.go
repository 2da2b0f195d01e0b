package seamless_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		runCrashHelper(dir)
	}
	goleak.VerifyTestMain(m)
}

const (
	node = "ohlcv:demo:BTC-USD:1m"
	iv   = int64(60)
)

// t0 is a fixed "now" for tests: every range before it holds closed bars.
var t0 = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// countingFetcher serves demo bars and records every upstream call.
type countingFetcher struct {
	mu    sync.Mutex
	calls []grid.Range
	// gap, when non-empty, is a market gap: the source has no bars there.
	gap grid.Range
	// fail makes the first fail calls fail (negative: fail every call).
	fail  int
	delay time.Duration
}

func (c *countingFetcher) Fetch(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	c.mu.Lock()
	c.calls = append(c.calls, r)
	n := len(c.calls)
	c.mu.Unlock()
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if c.fail < 0 || n <= c.fail {
		return nil, fmt.Errorf("upstream 503 (call %d)", n)
	}
	f := demo.Bars(s.NodeID, s.Interval, r)
	if c.gap.Empty() {
		return f, nil
	}
	var keep []int
	for i, ts := range f.TS {
		if !c.gap.Contains(ts) {
			keep = append(keep, i)
		}
	}
	return f.Take(keep), nil
}

func (c *countingFetcher) Calls() []grid.Range {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]grid.Range(nil), c.calls...)
}

type env struct {
	p     *seamless.Provider
	store seamless.Store
	coord *seamless.MemCoordinator
	fetch *countingFetcher
	clock *clock.Fake
}

func newEnv(t *testing.T, cfg seamless.Config) *env {
	t.Helper()
	e := &env{store: memstore.New(), fetch: &countingFetcher{}, clock: clock.NewFake(t0)}
	e.coord = seamless.NewMemCoordinator(e.clock)
	cfg.Store, cfg.Coordinator, cfg.Clock = e.store, e.coord, e.clock
	if cfg.Sources == nil {
		cfg.Sources = seamless.Sources{"demo": e.fetch}
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	p, err := seamless.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	t.Cleanup(func() {
		p.Close()
		e.store.Close()
	})
	return e
}

func req(start, end int64, st seamless.Strategy) seamless.Request {
	return seamless.Request{NodeID: node, Interval: iv, Start: start, End: end, Strategy: st}
}

// checkFrame asserts the output invariants of SPEC §2 and that every bar equals the
// demo source's bar.
func checkFrame(t *testing.T, f *frame.Frame, r grid.Range, wantRows int) {
	t.Helper()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if f.Len() != wantRows {
		t.Fatalf("rows = %d, want %d", f.Len(), wantRows)
	}
	if !f.IsSortedUnique() {
		t.Fatal("ts not sorted and unique")
	}
	want := demo.Bars(node, iv, r)
	wi := 0
	for i, ts := range f.TS {
		if ts%iv != 0 || !r.Contains(ts) {
			t.Fatalf("row %d: ts %d off grid or outside %v", i, ts, r)
		}
		for want.TS[wi] < ts {
			wi++
		}
		if f.Col("close").F64[i] != want.Col("close").F64[wi] || f.Col("volume").F64[i] != want.Col("volume").F64[wi] {
			t.Fatalf("row %d (ts %d) differs from the source", i, ts)
		}
	}
}

func day(d int) int64 { return t0.Add(time.Duration(-d) * 24 * time.Hour).Unix() }

func TestSeamlessBackfillsThenServesFromStorage(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	r := grid.R(day(3)+7, day(2)+30) // unaligned bounds: the grid points inside count
	res, err := e.p.Fetch(ctx, req(r.Start, r.End, ""))
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, res.Frame, r, 1440)
	md := res.Metadata
	if md.CoverageRatio != 1 || md.Sources.Backfill != 1440 || md.Sources.Storage != 0 || md.Strategy != seamless.Seamless {
		t.Fatalf("metadata after backfill: %+v", md)
	}
	if md.CoverageBounds == nil || md.CoverageBounds[0] != day(3)+60 || md.CoverageBounds[1] != day(2)+60 {
		t.Fatalf("coverage_bounds = %v", md.CoverageBounds)
	}
	// Whole aligned chunks (900 bars) are fetched, so neighbours of the request are
	// covered too.
	if md.Backfill.Chunks < 2 || md.Backfill.FetchedBars != 900*md.Backfill.Chunks {
		t.Fatalf("backfill = %+v", md.Backfill)
	}
	calls := len(e.fetch.Calls())
	again, err := e.p.Fetch(ctx, req(r.Start, r.End, seamless.FailFast))
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, again.Frame, r, 1440)
	if src := again.Metadata.Sources; len(e.fetch.Calls()) != calls || src.Storage+src.Cache != 1440 || src.Cache == 0 || src.Backfill != 0 {
		t.Fatalf("second fetch went upstream or mislabelled tiers: %+v", again.Metadata)
	}
	if *again.Metadata.StalenessMS != (t0.Unix()-(day(2)+60))*1000 {
		t.Fatalf("staleness_ms = %d", *again.Metadata.StalenessMS)
	}
}

func TestFailFast(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	_, err := e.p.Fetch(ctx, req(day(1), day(0), seamless.FailFast))
	var nc *seamless.NotCoveredError
	if !errors.As(err, &nc) || !errors.Is(err, seamless.ErrNotCovered) || seamless.ErrorCode(err) != "not_covered" {
		t.Fatalf("err = %v, want not_covered", err)
	}
	if len(e.fetch.Calls()) != 0 {
		t.Fatal("fail_fast went upstream")
	}
	// Half covered: partial_ok returns the half with coverage_ratio 0.5.
	half := grid.R(day(1), day(1)+43200)
	if err := e.store.Write(ctx, seamless.Write{Series: seamless.Series{NodeID: node, Interval: iv}, Range: half, Frame: demo.Bars(node, iv, half)}); err != nil {
		t.Fatal(err)
	}
	r := req(day(1), day(0), seamless.FailFast)
	r.PartialOK = true
	res, err := e.p.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, res.Frame, grid.R(day(1), day(0)), 720)
	if res.Metadata.CoverageRatio != 0.5 {
		t.Fatalf("coverage_ratio = %v", res.Metadata.CoverageRatio)
	}
}

func TestPartialFillSchedulesBackgroundWork(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	res, err := e.p.Fetch(ctx, req(day(1), day(0), seamless.PartialFill))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Metadata.Backfill.Scheduled) != 2 || res.Metadata.Backfill.Chunks != 0 {
		t.Fatalf("backfill metadata = %+v", res.Metadata.Backfill)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		cov, err := e.p.Coverage(ctx, node, iv)
		if err != nil {
			t.Fatal(err)
		}
		if cov.Covers(grid.R(day(1), day(0))) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background backfill did not finish: coverage %v", cov)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res, err = e.p.Fetch(ctx, req(day(1), day(0), seamless.FailFast))
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, res.Frame, grid.R(day(1), day(0)), 1440)
	// partial_fill fetched each missing chunk once, in the background only; a repeat
	// partial_fill and an auto_backfill of the now covered day fetch nothing.
	calls := len(e.fetch.Calls())
	if calls != 2 {
		t.Fatalf("%d upstream calls for 2 scheduled chunks: %v", calls, e.fetch.Calls())
	}
	for _, st := range []seamless.Strategy{seamless.PartialFill, seamless.AutoBackfill} {
		if _, err := e.p.Fetch(ctx, req(day(1), day(0), st)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.fetch.Calls()); n != calls {
		t.Fatalf("covered day fetched again: %d more upstream calls", n-calls)
	}
}

func TestPartialFillStopsOnClose(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.fetch.delay = time.Hour // upstream hangs: Close must still return promptly
	if _, err := e.p.Fetch(context.Background(), req(day(10), day(0), seamless.PartialFill)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop background backfill")
	}
	if l, _ := e.coord.Inspect(context.Background()); len(l) != 0 {
		t.Fatalf("leases left held after Close: %v", l)
	}
	if _, err := e.p.Fetch(context.Background(), req(day(1), day(0), seamless.FailFast)); !errors.Is(err, seamless.ErrClosed) {
		t.Fatalf("Fetch after Close: %v", err)
	}
}

func TestMarketGapIsCoveredNotRefetched(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	e.fetch.gap = grid.R(day(1)+3600, day(1)+7200) // an hour of exchange maintenance
	res, err := e.p.Fetch(ctx, req(day(1), day(0), seamless.AutoBackfill))
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, res.Frame, grid.R(day(1), day(0)), 1440-60)
	if res.Metadata.CoverageRatio != 1 {
		t.Fatalf("a market gap lowered coverage_ratio to %v", res.Metadata.CoverageRatio)
	}
	calls := len(e.fetch.Calls())
	if _, err := e.p.Fetch(ctx, req(day(1), day(0), seamless.Seamless)); err != nil {
		t.Fatal(err)
	}
	if len(e.fetch.Calls()) != calls {
		t.Fatal("covered-but-empty range was fetched again")
	}
}

func TestOnlyClosedBarsAreStored(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	now := t0.Unix() + 30 // mid-bar: the bar at t0 is still forming
	e.clock.Advance(30 * time.Second)
	res, err := e.p.Fetch(ctx, req(now-600, now+600, seamless.Seamless))
	if err != nil {
		t.Fatal(err)
	}
	cov, _ := e.p.Coverage(ctx, node, iv)
	if cov.Bounds().End != t0.Unix() {
		t.Fatalf("coverage %v reaches past the last closed bar %d", cov, t0.Unix())
	}
	if res.Metadata.CoverageRatio != 1 {
		t.Fatalf("coverage_ratio %v: a forming bar must not count as missing", res.Metadata.CoverageRatio)
	}
	if n := res.Frame.Len(); n != 9 || res.Frame.TS[n-1] != t0.Unix()-60 {
		t.Fatalf("served %d bars ending %v", n, res.Frame.TS)
	}
}

// TestConcurrentOverlappingFetches: 64 goroutines ask for overlapping, uncovered
// ranges at once; every aligned chunk must be fetched upstream exactly once.
func TestConcurrentOverlappingFetches(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.fetch.delay = 2 * time.Millisecond // keep chunks in flight long enough to collide
	ctx := context.Background()
	base := day(7)
	rng := rand.New(rand.NewPCG(7, 7))
	type job struct{ r grid.Range }
	jobs := make([]job, 64)
	for i := range jobs {
		s := base + rng.Int64N(3*86400)
		jobs[i] = job{grid.R(s, s+1+rng.Int64N(2*86400))}
	}
	var wg sync.WaitGroup
	var failures atomic.Int32
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []seamless.Strategy{seamless.Seamless, seamless.AutoBackfill}[i%2]
			res, err := e.p.Fetch(ctx, req(j.r.Start, j.r.End, st))
			if err != nil {
				t.Errorf("job %d: %v", i, err)
				failures.Add(1)
				return
			}
			checkFrame(t, res.Frame, j.r, int(j.r.Bars(iv)))
			if res.Metadata.CoverageRatio != 1 {
				t.Errorf("job %d: coverage_ratio %v", i, res.Metadata.CoverageRatio)
			}
		}()
	}
	wg.Wait()
	if failures.Load() > 0 {
		return
	}
	perChunk := map[grid.Range]int{}
	width := 900 * iv
	for _, c := range e.fetch.Calls() {
		chunk := grid.R(grid.FloorAlign(c.Start, width), grid.FloorAlign(c.Start, width)+width)
		if c.End > chunk.End {
			t.Fatalf("upstream call %v crosses chunk %v", c, chunk)
		}
		perChunk[chunk]++
	}
	for c, n := range perChunk {
		if n != 1 {
			t.Errorf("chunk %v fetched %d times", c, n)
		}
	}
	if len(perChunk) == 0 {
		t.Fatal("nothing fetched")
	}
}

func TestRetryBackoffThenSuccess(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.fetch.fail = 4
	res, err := e.p.Fetch(context.Background(), req(day(1), day(1)+3600, seamless.AutoBackfill))
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, res.Frame, grid.R(day(1), day(1)+3600), 60)
	sleeps := e.clock.Sleeps()
	if len(sleeps) != 4 {
		t.Fatalf("slept %d times (%v), want 4", len(sleeps), sleeps)
	}
	for i, d := range sleeps {
		nominal := 500 * time.Millisecond << i
		if d < nominal*3/4 || d > nominal*5/4 {
			t.Errorf("retry %d slept %v, want %v ± 25%%", i+1, d, nominal)
		}
		if i > 0 && d <= sleeps[i-1] {
			t.Errorf("delays do not grow: %v", sleeps)
		}
	}
}

func TestRetryExhausted(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.fetch.fail = -1
	ctx := context.Background()
	_, err := e.p.Fetch(ctx, req(day(1), day(1)+3600, seamless.AutoBackfill))
	var ue *seamless.UpstreamError
	if !errors.As(err, &ue) || ue.Attempts != 6 || seamless.ErrorCode(err) != "upstream_failed" {
		t.Fatalf("err = %v, want upstream_failed after 6 attempts", err)
	}
	if got := len(e.fetch.Calls()); got != 6 {
		t.Fatalf("upstream called %d times, want 6", got)
	}
	if f := e.coord.Failures(); len(f) != 1 {
		t.Fatalf("failed chunk not recorded: %v", f)
	}
	// With partial_ok the request returns what exists, listing the failed chunk.
	if _, err := e.p.Fetch(ctx, req(day(1)+1800, day(1)+3600, seamless.AutoBackfill)); err == nil {
		t.Fatal("expected failure")
	}
	e.fetch.fail = 0
	if _, err := e.p.Fetch(ctx, req(day(2), day(2)+3600, seamless.AutoBackfill)); err != nil {
		t.Fatal(err)
	}
	e.fetch.fail = -1
	r := req(day(2), day(1)+3600, seamless.Seamless)
	r.PartialOK = true
	res, err := e.p.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	cov, _ := e.p.Coverage(ctx, node, iv)
	covered := 0
	for _, c := range cov.IntersectRange(grid.R(day(2), day(1)+3600)).Ranges() {
		covered += int(c.Bars(iv))
	}
	if covered == 0 || res.Frame.Len() != covered || len(res.Metadata.Backfill.Failed) == 0 || res.Metadata.CoverageRatio >= 1 {
		t.Fatalf("partial result: rows %d, metadata %+v", res.Frame.Len(), res.Metadata)
	}
	if l, _ := e.coord.Inspect(ctx); len(l) != 0 {
		t.Fatalf("leases left held: %v", l)
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, seamless.Config{MaxBars: 10_000})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  seamless.Request
		code string
	}{
		{"start after end", req(day(1), day(2), ""), "bad_request"},
		{"start equals end", req(day(1), day(1), ""), "bad_request"},
		{"zero interval", seamless.Request{NodeID: node, Interval: 0, Start: day(2), End: day(1)}, "bad_request"},
		{"negative interval", seamless.Request{NodeID: node, Interval: -60, Start: day(2), End: day(1)}, "bad_request"},
		{"interval mismatch", seamless.Request{NodeID: node, Interval: 300, Start: day(2), End: day(1)}, "bad_request"},
		{"unknown strategy", req(day(2), day(1), "yolo"), "bad_request"},
		{"too many bars", req(day(30), day(1), ""), "bad_request"},
		{"malformed node", seamless.Request{NodeID: "BTC", Interval: 60, Start: day(2), End: day(1)}, "bad_request"},
		{"bad timeframe", seamless.Request{NodeID: "ohlcv:demo:BTC:1x", Interval: 60, Start: day(2), End: day(1)}, "bad_request"},
		{"unknown kind", seamless.Request{NodeID: "candles:demo:BTC:1m", Interval: 60, Start: day(2), End: day(1)}, "bad_request"},
		{"unknown source", seamless.Request{NodeID: "ohlcv:nasdaq:AAPL:1m", Interval: 60, Start: day(2), End: day(1)}, "unknown_source"},
		{"huge range", req(-1<<62, 1<<62, ""), "bad_request"},
		{"all of int64", req(math.MinInt64, math.MaxInt64, ""), "bad_request"},
		{"the start of int64", req(math.MinInt64, math.MinInt64+3600, ""), "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.p.Fetch(ctx, tc.req)
			if got := seamless.ErrorCode(err); got != tc.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tc.code)
			}
			var re *seamless.RequestError
			if tc.code == "bad_request" && !errors.As(err, &re) {
				t.Fatalf("%v is not a *RequestError", err)
			}
		})
	}
	if s, _ := e.store.ListSeries(ctx); len(s) != 0 {
		t.Fatalf("bad requests wrote series: %v", s)
	}
	if len(e.fetch.Calls()) != 0 {
		t.Fatal("bad requests went upstream")
	}
	if l, _ := e.coord.Inspect(ctx); len(l) != 0 {
		t.Fatalf("leases held: %v", l)
	}
}

func TestCancelledRequestReleasesLeases(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.fetch.delay = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.p.Fetch(ctx, req(day(2), day(1), seamless.AutoBackfill))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if l, _ := e.coord.Inspect(context.Background()); len(l) != 0 {
		t.Fatalf("leases left held: %v", l)
	}
	if cov, _ := e.p.Coverage(context.Background(), node, iv); !cov.Empty() {
		t.Fatalf("cancelled backfill left coverage %v", cov)
	}
}
