package seamless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// The backfill tier: missing ranges become aligned chunks (window_bars × interval from
// epoch 0, so overlapping requests agree on them); each chunk is claimed through the
// Coordinator, fetched with retries, written with its coverage through the ingest step
// under the lease's fencing token, and released. A caller that finds a chunk held waits
// for it and re-reads coverage instead of fetching again.
//
// Chunk lifecycle (backfillChunk): target (the chunk's closed part) → coverage check →
// claim → [held elsewhere: wait, re-check] → keepalive → fill (re-check under the lease,
// fetch with retries, normalise, write) → Complete | Fail. The lease is always ended.

// backfiller is the backfill tier. It owns the upstream concurrency bound, retry
// jitter, the queue of background chunks and the memo of unsettled tails.
type backfiller struct {
	store    Store // coverage reads; writes go through ingest
	ingest   *ingester
	quality  *quality
	coord    Coordinator
	cfg      BackfillConfig
	leaseTTL time.Duration
	clock    clock.Clock
	log      *slog.Logger
	obs      BackfillObserver
	tracer   trace.Tracer
	life     *lifetime

	// upstream bounds concurrent upstream fetches across all requests
	// (max_concurrent_requests).
	upstream chan struct{}

	randMu sync.Mutex
	rand   *rand.Rand

	mu        sync.Mutex
	scheduled map[string]bool // chunk keys with background work queued or running

	tails *tailMemo
}

// init sets up what the tier owns; seed seeds retry jitter.
func (b *backfiller) init(seed uint64) *backfiller {
	b.upstream = make(chan struct{}, b.cfg.MaxConcurrentRequests)
	b.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b.scheduled = map[string]bool{}
	b.tails = newTailMemo(b.clock, b.cfg.SettleWindow)
	return b
}

// BackfillRequest asks for a range of a series to be made covered.
type BackfillRequest struct {
	NodeID     string
	Interval   int64
	Start, End int64
	// Progress, if set, is called after each chunk (from one goroutine at a time).
	Progress func(BackfillProgress)
}

// BackfillProgress reports one finished chunk of a backfill.
type BackfillProgress struct {
	ChunksDone, ChunksTotal int
	// Bars is the number of bars fetched so far.
	Bars  int
	Chunk grid.Range
	// Err is the chunk's failure, if any.
	Err error
}

// BackfillSummary is the outcome of Backfill.
type BackfillSummary struct {
	Series Series
	Range  grid.Range
	// Chunks is the number of aligned chunks that were missing data.
	Chunks int
	// Fetched chunks were fetched by this call; Waited ones by another worker.
	Fetched, Waited int
	Bars            int
	Failed          []grid.Range
	Elapsed         time.Duration
}

// Backfill makes [Start, End) of a series covered, fetching every missing closed chunk.
// Unlike Fetch it keeps going past failed chunks and reports them all: the error is
// the first chunk failure (an *UpstreamError) and the summary lists every failed chunk.
func (p *Provider) Backfill(ctx context.Context, req BackfillRequest) (BackfillSummary, error) {
	began := p.clock.Now()
	rq, err := p.resolve(req.NodeID, req.Interval)
	if err != nil {
		return BackfillSummary{}, err
	}
	if rq, err = p.resolveRange(rq, grid.R(req.Start, req.End), p.clock.Now()); err != nil {
		return BackfillSummary{}, err
	}
	if p.isClosed() {
		return BackfillSummary{}, ErrClosed
	}
	cov, err := p.store.Coverage(ctx, rq.series)
	if err != nil {
		return BackfillSummary{}, fmt.Errorf("%s: read coverage: %w", rq.series, err)
	}
	run := p.backfill.runChunks(ctx, rq, p.backfill.chunks(rq, cov.Missing(rq.closed)), false, req.Progress)
	return BackfillSummary{
		Series: rq.series, Range: rq.want, Chunks: run.total, Fetched: run.chunks, Waited: run.waited,
		Bars: run.bars, Failed: run.failed, Elapsed: p.clock.Now().Sub(began),
	}, run.err
}

// chunks are the aligned chunks of missing.
func (b *backfiller) chunks(rq resolved, missing grid.Set) []grid.Range {
	return alignedChunks(missing, b.cfg.WindowBars*rq.series.Interval)
}

// alignedChunks returns the distinct aligned chunks touching the set, in order.
func alignedChunks(missing grid.Set, width int64) []grid.Range {
	var out []grid.Range
	for _, r := range missing.Ranges() {
		for c := range r.ChunkSeq(width) {
			if n := len(out); n > 0 && out[n-1] == c {
				continue // two missing pieces inside one chunk
			}
			out = append(out, c)
		}
	}
	return out
}

// backfillRun aggregates the chunk outcomes of one backfill.
type backfillRun struct {
	total, chunks, waited, bars int
	fetched                     grid.Set
	failed                      []grid.Range
	err                         error
}

// run fetches the chunks of missing synchronously, stopping at the first failure.
func (b *backfiller) run(ctx context.Context, rq resolved, missing grid.Set) backfillRun {
	return b.runChunks(ctx, rq, b.chunks(rq, missing), true, nil)
}

// runChunks processes chunks with at most max_concurrent_requests workers. With
// stopOnError the first failed chunk cancels the chunks not yet started.
func (b *backfiller) runChunks(ctx context.Context, rq resolved, chunks []grid.Range, stopOnError bool, progress func(BackfillProgress)) backfillRun {
	run := backfillRun{total: len(chunks)}
	if len(chunks) == 0 {
		return run
	}
	b.obs.BackfillJob(1)
	defer b.obs.BackfillJob(-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next atomic.Int64
		done int
	)
	for range min(b.cfg.MaxConcurrentRequests, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) || ctx.Err() != nil {
					return
				}
				out := b.backfillChunk(ctx, rq, chunks[i])
				mu.Lock()
				done++
				run.bars += out.bars
				run.fetched = run.fetched.Union(out.fetched)
				if out.claimed {
					run.chunks++
				}
				if out.waited {
					run.waited++
				}
				if out.err != nil {
					run.failed = append(run.failed, chunks[i])
					if run.err == nil {
						run.err = out.err
					}
					if stopOnError {
						cancel()
					}
				}
				if progress != nil {
					progress(BackfillProgress{ChunksDone: done, ChunksTotal: len(chunks), Bars: run.bars, Chunk: chunks[i], Err: out.err})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if run.err == nil && ctx.Err() != nil {
		run.err = ctx.Err()
	}
	return run
}

type chunkOutcome struct {
	claimed, waited bool
	bars            int
	fetched         grid.Set
	err             error
}

// backfillChunk makes the closed part of one aligned chunk covered.
func (b *backfiller) backfillChunk(ctx context.Context, rq resolved, chunk grid.Range) chunkOutcome {
	var out chunkOutcome
	key := ChunkKey(rq.series, chunk)
	for {
		// Only closed bars are durable: the chunk's target ends at the last closed bar.
		now := b.clock.Now()
		target := chunk.Intersect(grid.R(chunk.Start, ClosedEnd(now.Unix(), rq.series.Interval)))
		if hl, ok := rq.fetcher.(HistoryLimiter); ok {
			// Nothing older than the source serves: that part stays a gap.
			target = target.Intersect(grid.R(hl.Oldest(rq.upstream, now), target.End))
		}
		cov, err := b.store.Coverage(ctx, rq.series)
		if err != nil {
			out.err = fmt.Errorf("%s: read coverage: %w", rq.series, err)
			return out
		}
		missing := cov.Missing(target)
		if missing.Empty() {
			b.tails.forget(key)
			return out
		}
		if b.tails.pending(key, rq.series.Interval, missing) {
			// Only bars the source had not published a moment ago are missing, and a
			// fetch (perhaps the one we waited for) just asked: not again yet.
			return out
		}
		lease, err := b.coord.Claim(ctx, key, b.leaseTTL)
		if errors.Is(err, ErrLeaseHeld) {
			// Someone else is fetching this chunk: wait for them, then re-read coverage.
			out.waited = true
			if err := b.coord.Wait(ctx, key); err != nil {
				out.err = err
				return out
			}
			continue
		}
		if err != nil {
			out.err = fmt.Errorf("%s: claim chunk %v: %w", rq.series, chunk, err)
			return out
		}
		out.claimed = true
		b.log.DebugContext(ctx, "seamless.backfill.coordinator_claimed", "node_id", rq.series.NodeID, "interval", rq.series.Interval,
			"lease_key", lease.Key, "token", lease.Token)
		b.fillUnderLease(ctx, rq, chunk, target, lease, &out)
		return out
	}
}

// fillUnderLease fetches and writes what the chunk still misses, then ends the lease:
// Complete on success, Fail with the reason otherwise. The lease is always ended, even
// when ctx is cancelled, so no lease outlives its worker.
func (b *backfiller) fillUnderLease(ctx context.Context, rq resolved, chunk, target grid.Range, lease Lease, out *chunkOutcome) {
	ctx, stopKeepalive := b.keepalive(ctx, lease)
	err := b.fill(ctx, rq, chunk, target, lease, out)
	stopKeepalive()
	b.obs.ChunkDone(rq.series, lease.Key)
	release := context.WithoutCancel(ctx)
	if err != nil {
		out.err = err
		b.obs.BackfillFailure(rq.series)
		if ferr := b.coord.Fail(release, lease, err.Error()); ferr != nil {
			b.log.WarnContext(ctx, "seamless.backfill.coordinator_fail_failed", "lease_key", lease.Key, "err", ferr)
		}
		b.log.WarnContext(ctx, "seamless.backfill.coordinator_failed", "node_id", rq.series.NodeID, "interval", rq.series.Interval, "lease_key", lease.Key, "err", err)
		return
	}
	if cerr := b.coord.Complete(release, lease); cerr != nil {
		b.log.WarnContext(ctx, "seamless.backfill.coordinator_complete_failed", "lease_key", lease.Key, "err", cerr)
	}
	b.log.DebugContext(ctx, "seamless.backfill.coordinator_completed", "node_id", rq.series.NodeID, "interval", rq.series.Interval, "lease_key", lease.Key, "bars", out.bars)
}

func (b *backfiller) fill(ctx context.Context, rq resolved, chunk, target grid.Range, lease Lease, out *chunkOutcome) error {
	// Re-read coverage under the lease: a previous holder may have finished between
	// our check and our claim.
	cov, err := b.store.Coverage(ctx, rq.series)
	if err != nil {
		return fmt.Errorf("%s: read coverage: %w", rq.series, err)
	}
	need := cov.Missing(target)
	if b.tails.pending(lease.Key, rq.series.Interval, need) {
		return nil // that holder just asked for the unpublished tail: not again yet
	}
	total, done := need.Seconds(), int64(0)
	claimed := b.clock.Now()
	b.obs.ChunkProgress(rq.series, lease.Key, 0)
	for _, r := range need.Ranges() {
		f, attempts, err := b.fetchWithRetry(ctx, rq, r)
		if err != nil {
			if ctx.Err() != nil {
				// The cause says why: the caller gave up, or the lease was lost.
				return context.Cause(ctx)
			}
			return &UpstreamError{Series: rq.series, Chunk: chunk, Attempts: attempts, Err: err}
		}
		covered := b.settled(rq, r, f)
		if covered != r {
			b.tails.note(lease.Key)
		}
		if !covered.Empty() {
			err = b.ingest.commit(ctx, Write{Series: rq.series, Range: covered, Frame: f, Token: lease.Token}, OriginBackfill)
			if err != nil {
				return fmt.Errorf("%s: write %v: %w", rq.series, covered, err)
			}
		}
		out.bars += f.Len()
		out.fetched = out.fetched.Add(r)
		done += r.Len()
		b.obs.ChunkProgress(rq.series, lease.Key, float64(done)/float64(total))
		if n := f.Len(); n > 0 {
			b.obs.ChunkFetched(rq.series, f.TS[n-1], b.clock.Now().Sub(claimed))
		}
	}
	return nil
}

// settled is the part of r that a fetch returning f makes covered: all of r, except
// that bars which closed within the settle window and came after the last bar f holds
// may not be published upstream yet, so that tail is left uncovered and asked for
// again by a later request instead of being recorded as a market gap for good.
func (b *backfiller) settled(rq resolved, r grid.Range, f *frame.Frame) grid.Range {
	iv := rq.series.Interval
	recent := b.tails.unsettledFrom(rq.series.Interval)
	if r.End <= recent {
		return r
	}
	end := max(r.Start, min(recent, r.End))
	if n := f.Len(); n > 0 {
		end = max(end, f.TS[n-1]+iv)
	}
	return grid.R(r.Start, end)
}

// keepalive renews the lease every third of its TTL until stopped. If a renewal fails
// the lease is lost, so the returned context is cancelled to stop the work.
func (b *backfiller) keepalive(ctx context.Context, lease Lease) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(b.leaseTTL/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				l, err := b.coord.Renew(ctx, lease, b.leaseTTL)
				if err != nil {
					b.log.WarnContext(ctx, "seamless.backfill.lease_lost", "lease_key", lease.Key, "err", err)
					cancel(err)
					return
				}
				lease = l
			}
		}
	}()
	return ctx, func() {
		close(stop)
		<-done
		cancel(nil)
	}
}

// fetchWithRetry fetches r from upstream with exponential backoff and jitter. Each
// attempt holds one of the max_concurrent_requests upstream slots; sleeping does not.
func (b *backfiller) fetchWithRetry(ctx context.Context, rq resolved, r grid.Range) (*frame.Frame, int, error) {
	for attempt := 1; ; attempt++ {
		f, err := b.fetchOnce(ctx, rq, r)
		if err == nil {
			return f, attempt, nil
		}
		if ctx.Err() != nil {
			return nil, attempt, ctx.Err()
		}
		if IsPermanent(err) || attempt >= b.cfg.MaxAttempts {
			return nil, attempt, err
		}
		delay := b.backoff(attempt)
		b.obs.BackfillRetry(rq.series)
		b.log.WarnContext(ctx, "seamless.backfill.retry", "node_id", rq.series.NodeID, "interval", rq.series.Interval,
			"range", r.String(), "attempt", attempt, "delay_ms", delay.Milliseconds(), "err", err)
		if err := b.clock.Sleep(ctx, delay); err != nil {
			return nil, attempt, err
		}
	}
}

// backoff is retry_backoff × 2^(attempt−1), scaled by a random factor in
// [1−jitter, 1+jitter] so that retrying workers spread out.
func (b *backfiller) backoff(attempt int) time.Duration {
	d := float64(b.cfg.RetryBackoff) * float64(uint64(1)<<min(attempt-1, 30))
	b.randMu.Lock()
	u := b.rand.Float64()
	b.randMu.Unlock()
	return time.Duration(d * (1 + b.cfg.JitterRatio*(2*u-1)))
}

func (b *backfiller) fetchOnce(ctx context.Context, rq resolved, r grid.Range) (*frame.Frame, error) {
	select {
	case b.upstream <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	parent := ctx
	ctx, span := b.tracer.Start(ctx, "seamless.upstream", trace.WithAttributes(
		attribute.String("node_id", rq.series.NodeID), attribute.Int64("interval", rq.series.Interval),
		attribute.String("source", rq.node.Source), attribute.Int64("range.start", r.Start), attribute.Int64("range.end", r.End)))
	actx, cancel := b.clock.WithDeadline(ctx, b.clock.Now().Add(b.cfg.AttemptTimeout))
	f, err := rq.fetcher.Fetch(actx, rq.upstream, r)
	timedOut := actx.Err() != nil && parent.Err() == nil
	cancel()
	<-b.upstream
	if err != nil && timedOut {
		err = fmt.Errorf("upstream call unanswered after %v (attempt timeout): %w", b.cfg.AttemptTimeout, err)
	}
	span.SetAttributes(attribute.Int("rows", f.Len()))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "upstream error")
	}
	span.End()
	b.obs.Upstream(rq.node.Source, upstreamCode(ctx, err))
	if err != nil {
		return nil, err
	}
	if f == nil {
		return frame.New(rq.schema, 0), nil
	}
	if err := f.Validate(); err != nil {
		return nil, Permanent(fmt.Errorf("source returned a malformed frame: %w", err))
	}
	// Normalised before it is stored (the ingest step's first stage), so storage only
	// ever holds normalised bars; the findings are reported now, blocking is decided
	// when the data is served.
	out, rep, err := normalize(rq, f)
	if err != nil {
		return nil, Permanent(err)
	}
	if !rep.Clean() {
		b.quality.report(ctx, rq.series, r, rep)
	}
	// Keep only what lies in the fetched range: the pipeline checked the grid.
	if lo, hi := out.SearchTS(r.Start), out.SearchTS(r.End); lo != 0 || hi != out.Len() {
		out = out.Slice(lo, hi)
	}
	return out, nil
}

// schedule queues background backfill of the chunks of missing (partial_fill) and
// returns those chunks. Chunks already queued by an earlier request are not queued
// twice. Background work stops when the provider closes.
func (b *backfiller) schedule(rq resolved, missing grid.Set) []grid.Range {
	chunks := b.chunks(rq, missing)
	b.mu.Lock()
	var todo []grid.Range
	for _, c := range chunks {
		if k := ChunkKey(rq.series, c); !b.scheduled[k] {
			b.scheduled[k] = true
			todo = append(todo, c)
		}
	}
	b.mu.Unlock()
	if len(todo) == 0 {
		return chunks
	}
	unmark := func() {
		b.mu.Lock()
		for _, c := range todo {
			delete(b.scheduled, ChunkKey(rq.series, c))
		}
		b.mu.Unlock()
	}
	ctx, cancel, done, ok := b.life.start()
	if !ok { // closed: nothing runs any more
		unmark()
		return chunks
	}
	go func() {
		defer done()
		defer cancel()
		defer unmark()
		run := b.runChunks(ctx, rq, todo, false, nil)
		if run.err != nil && ctx.Err() == nil {
			b.log.Warn("seamless.backfill.background_failed", "node_id", rq.series.NodeID, "interval", rq.series.Interval, "failed_chunks", len(run.failed), "err", run.err)
		}
	}()
	return chunks
}

// upstreamCode classifies an upstream attempt for metrics.
func upstreamCode(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return "ok"
	case ctx.Err() != nil:
		return "canceled"
	case IsPermanent(err):
		return "permanent"
	}
	return "error"
}
