package seamless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

var tierT0 = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// TestTailMemo: an unsettled tail noted for a chunk is pending for tailRetry, only while
// all that is missing lies in the settle window, and forgotten on request; entries older
// than the window are swept when the next one is noted.
func TestTailMemo(t *testing.T) {
	clk := clock.NewFake(tierT0)
	m := newTailMemo(clk, 5*time.Minute)
	now := tierT0.Unix()
	tail := grid.NewSet(grid.R(now-120, now))
	old := grid.NewSet(grid.R(now-3600, now))
	if m.pending("a", 60, tail) {
		t.Fatal("pending before any fetch noted it")
	}
	m.note("a")
	if !m.pending("a", 60, tail) {
		t.Fatal("not pending right after a fetch left the tail")
	}
	if m.pending("a", 60, old) {
		t.Fatal("pending although bars older than the settle window are missing")
	}
	if m.pending("b", 60, tail) || m.pending("a", 60, grid.Set{}) {
		t.Fatal("pending for another chunk, or with nothing missing")
	}
	clk.Advance(m.retry())
	if m.pending("a", 60, grid.NewSet(grid.R(now-60, now+60))) {
		t.Fatalf("still pending after %v", m.retry())
	}
	m.note("b")
	m.forget("b")
	if m.pending("b", 60, tail) {
		t.Fatal("pending after forget")
	}
	clk.Advance(10 * time.Minute)
	m.note("c") // sweeps a, older than the window
	if n := m.len(); n != 1 {
		t.Fatalf("%d entries after the sweep, want 1", n)
	}
	if got, want := m.retry(), 10*time.Second; got != want {
		t.Fatalf("retry %v, want %v (min of window/10 and 10 s)", got, want)
	}
}

// TestBudgets: a phase runs under what is left of its own budget and the total
// deadline, whichever ends first; spending is cumulative; the first violation is kept;
// fail_fast turns it into *SeamlessSLAExceeded, the other modes record it and go on.
func TestBudgets(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tr := noop.NewTracerProvider().Tracer("")
	for _, mode := range []OnViolation{ViolationFailFast, ViolationHold} {
		clk := clock.NewFake(tierT0)
		b := newBudgets(context.Background(), log, tr, clk, SLAPolicy{MaxWaitStorageMS: 100, TotalDeadlineMS: 250, OnViolation: mode}, clk.Now(), "n")
		// 60 ms of storage: within budget.
		violated, err := b.run(context.Background(), PhaseStorage, func(ctx context.Context) error {
			clk.Advance(60 * time.Millisecond)
			return nil
		})
		if violated || err != nil {
			t.Fatalf("%s: first storage phase: %v %v", mode, violated, err)
		}
		// 40 ms left: a phase that waits runs out.
		violated, err = b.run(context.Background(), PhaseStorage, func(ctx context.Context) error {
			clk.Advance(50 * time.Millisecond)
			<-ctx.Done()
			return ctx.Err()
		})
		if !violated {
			t.Fatalf("%s: the second storage phase did not run out", mode)
		}
		var se *SeamlessSLAExceeded
		if mode == ViolationFailFast && (!errors.As(err, &se) || se.Phase != PhaseStorage || se.BudgetMS != 100) {
			t.Fatalf("fail_fast: %v", err)
		}
		if mode == ViolationHold && err != nil {
			t.Fatalf("hold: %v", err)
		}
		if b.violation == nil || b.violation.Phase != PhaseStorage {
			t.Fatalf("%s: violation %+v", mode, b.violation)
		}
		// The total deadline bounds a phase with no budget of its own; the first
		// violation is kept.
		ctx, cancel := b.phaseCtx(context.Background(), PhaseBackfill)
		clk.Advance(139 * time.Millisecond) // 249 ms into the request
		if ctx.Err() != nil {
			t.Fatalf("%s: the backfill phase ended before the total deadline", mode)
		}
		clk.Advance(time.Millisecond)
		<-ctx.Done() // at the total deadline
		cancel()
		clk.Advance(860 * time.Millisecond)
		if v := b.expired(PhaseBackfill); v.Phase != PhaseTotal || v.BudgetMS != 250 {
			t.Fatalf("%s: expired %+v, want the total", mode, v)
		}
		_ = b.exceeded(b.expired(PhaseBackfill))
		if b.violation.Phase != PhaseStorage {
			t.Fatalf("%s: the first violation was replaced by %+v", mode, b.violation)
		}
		if ph := b.phases(); ph[PhaseStorage] != 110 || ph[PhaseTotal] != 1110 {
			t.Fatalf("%s: phases %v", mode, ph)
		}
	}
}

// tierFetcher serves one flat bar per grid point and counts calls; fail makes every
// call fail.
type tierFetcher struct {
	mu    sync.Mutex
	calls int
	fail  bool
}

func (f *tierFetcher) Fetch(_ context.Context, s Series, r grid.Range) (*frame.Frame, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.fail {
		return nil, Permanent(fmt.Errorf("unknown symbol"))
	}
	out := frame.New(frame.OHLCV, 0)
	for ts := r.Align(s.Interval).Start; ts < r.End; ts += s.Interval {
		out.TS = append(out.TS, ts)
		for i := range out.Cols {
			out.Cols[i].F64 = append(out.Cols[i].F64, 1)
		}
	}
	return out, nil
}

// memTierStore is the smallest Store the backfill tier needs: coverage and writes, with
// the tokens written.
type memTierStore struct {
	mu     sync.Mutex
	cov    grid.Set
	tokens []uint64
}

func (m *memTierStore) Write(_ context.Context, w Write) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cov = m.cov.Add(w.Range)
	m.tokens = append(m.tokens, w.Token)
	return nil
}
func (m *memTierStore) Read(context.Context, Series, grid.Range) (*frame.Frame, error) {
	return &frame.Frame{}, nil
}
func (m *memTierStore) Coverage(context.Context, Series) (grid.Set, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cov, nil
}
func (m *memTierStore) ListSeries(context.Context) ([]SeriesInfo, error) { return nil, nil }
func (m *memTierStore) Close() error                                     { return nil }

// TestBackfillerAlone: the backfill tier with no provider around it: missing chunks are
// claimed, fetched once, written under their lease token and released; a permanent
// upstream error fails the chunk at once (no retry) and releases its lease too.
func TestBackfillerAlone(t *testing.T) {
	clk := clock.NewFake(tierT0)
	st := &memTierStore{}
	coord := NewMemCoordinator(clk)
	cfg := BackfillConfig{WindowBars: 10}.withDefaults()
	q := &quality{obs: nopObserver{}, tracer: noop.NewTracerProvider().Tracer(""), log: slog.New(slog.DiscardHandler)}
	b := (&backfiller{store: st, ingest: &ingester{store: st, window: cfg.WindowBars}, quality: q, coord: coord, cfg: cfg,
		leaseTTL: leaseTTL(coord, cfg), clock: clk, log: q.log, obs: nopObserver{}, tracer: q.tracer, life: newLifetime()}).init(1)
	if b.leaseTTL != cfg.SingleFlightTTL {
		t.Fatalf("an in-process coordinator's leases last %v, want the single-flight TTL %v", b.leaseTTL, cfg.SingleFlightTTL)
	}
	fetch := &tierFetcher{}
	node, _ := ParseNodeID("ohlcv:demo:X:1m")
	rq := resolved{series: Series{NodeID: node.String(), Interval: 60}, node: node, schema: frame.OHLCV, fetcher: fetch,
		upstream: Series{NodeID: node.String(), Interval: 60}}.at(grid.R(tierT0.Unix()-3000, tierT0.Unix()), clk.Now())
	st.cov = grid.NewSet(grid.R(rq.closed.Start, rq.closed.Start+600)) // the first chunk is stored

	run := b.run(context.Background(), rq, st.cov.Missing(rq.closed))
	if run.err != nil || run.chunks != 4 || run.bars != 40 || fetch.calls != 4 {
		t.Fatalf("run %+v, %d upstream calls; want 4 chunks of 10 bars, one call each", run, fetch.calls)
	}
	if !st.cov.Covers(rq.closed) {
		t.Fatalf("coverage %v does not cover %v", st.cov, rq.closed)
	}
	seen := map[uint64]bool{}
	for _, tok := range st.tokens {
		if tok == 0 || seen[tok] {
			t.Fatalf("write tokens %v: want one lease token per chunk write", st.tokens)
		}
		seen[tok] = true
	}
	if again := b.run(context.Background(), rq, st.cov.Missing(rq.closed)); again.total != 0 || fetch.calls != 4 {
		t.Fatalf("a covered range was fetched again: %+v", again)
	}

	fetch.fail = true
	other := rq.at(grid.R(tierT0.Unix()-7200, tierT0.Unix()-6600), clk.Now())
	run = b.run(context.Background(), other, grid.NewSet(other.closed))
	var ue *UpstreamError
	if !errors.As(run.err, &ue) || ue.Attempts != 1 || len(run.failed) != 1 {
		t.Fatalf("permanent failure: %+v (%v)", run, run.err)
	}
	if held, _ := coord.Inspect(context.Background()); len(held) != 0 {
		t.Fatalf("leases left held: %v", held)
	}
}
