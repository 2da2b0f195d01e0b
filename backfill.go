package seamless

import (
	"context"

	"errors"
	"fmt"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// The backfill tier: missing ranges become aligned chunks (window_bars × interval from
// epoch 0, so overlapping requests agree on them); each chunk is claimed through the
// Coordinator, fetched with retries, written with its coverage, and released. A caller
// that finds a chunk held waits for it and re-reads coverage instead of fetching again.

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
	pl, err := p.resolve(req.NodeID, req.Interval)
	if err != nil {
		return BackfillSummary{}, err
	}
	if pl, err = p.planRange(pl, grid.R(req.Start, req.End), p.clock.Now()); err != nil {
		return BackfillSummary{}, err
	}
	if p.isClosed() {
		return BackfillSummary{}, ErrClosed
	}
	cov, err := p.store.Coverage(ctx, pl.series)
	if err != nil {
		return BackfillSummary{}, fmt.Errorf("%s: read coverage: %w", pl.series, err)
	}
	run := p.runChunks(ctx, pl, alignedChunks(cov.Missing(pl.closed), p.chunkWidth(pl)), false, req.Progress)
	return BackfillSummary{
		Series: pl.series, Range: pl.want, Chunks: run.total, Fetched: run.chunks, Waited: run.waited,
		Bars: run.bars, Failed: run.failed, Elapsed: p.clock.Now().Sub(began),
	}, run.err
}

func (p *Provider) chunkWidth(pl plan) int64 { return p.cfg.WindowBars * pl.series.Interval }

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

// backfill fetches the chunks of missing synchronously, stopping at the first failure.
func (p *Provider) backfill(ctx context.Context, pl plan, missing grid.Set, progress func(BackfillProgress)) backfillRun {
	return p.runChunks(ctx, pl, alignedChunks(missing, p.chunkWidth(pl)), true, progress)
}

// runChunks processes chunks with at most max_concurrent_requests workers. With
// stopOnError the first failed chunk cancels the chunks not yet started.
func (p *Provider) runChunks(ctx context.Context, pl plan, chunks []grid.Range, stopOnError bool, progress func(BackfillProgress)) backfillRun {
	run := backfillRun{total: len(chunks)}
	if len(chunks) == 0 {
		return run
	}
	p.obs.BackfillJob(1)
	defer p.obs.BackfillJob(-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next atomic.Int64
		done int
	)
	for range min(p.cfg.MaxConcurrentRequests, len(chunks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) || ctx.Err() != nil {
					return
				}
				out := p.backfillChunk(ctx, pl, chunks[i])
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
func (p *Provider) backfillChunk(ctx context.Context, pl plan, chunk grid.Range) chunkOutcome {
	var out chunkOutcome
	key := ChunkKey(pl.series, chunk)
	for {
		// Only closed bars are durable: the chunk's target ends at the last closed bar.
		target := chunk.Intersect(grid.R(chunk.Start, ClosedEnd(p.clock.Now().Unix(), pl.series.Interval)))
		cov, err := p.store.Coverage(ctx, pl.series)
		if err != nil {
			out.err = fmt.Errorf("%s: read coverage: %w", pl.series, err)
			return out
		}
		missing := cov.Missing(target)
		if missing.Empty() {
			p.forgetTail(key)
			return out
		}
		if p.tailPending(pl, key, missing) {
			// Only bars the source had not published a moment ago are missing, and a
			// fetch (perhaps the one we waited for) just asked: not again yet.
			return out
		}
		lease, err := p.coord.Claim(ctx, key, p.leaseTTL)
		if errors.Is(err, ErrLeaseHeld) {
			// Someone else is fetching this chunk: wait for them, then re-read coverage.
			out.waited = true
			if err := p.coord.Wait(ctx, key); err != nil {
				out.err = err
				return out
			}
			continue
		}
		if err != nil {
			out.err = fmt.Errorf("%s: claim chunk %v: %w", pl.series, chunk, err)
			return out
		}
		out.claimed = true
		p.log.DebugContext(ctx, "seamless.backfill.coordinator_claimed", "node_id", pl.series.NodeID, "interval", pl.series.Interval,
			"lease_key", lease.Key, "token", lease.Token)
		p.fillUnderLease(ctx, pl, chunk, target, lease, &out)
		return out
	}
}

// fillUnderLease fetches and writes what the chunk still misses, then ends the lease:
// Complete on success, Fail with the reason otherwise. The lease is always ended, even
// when ctx is cancelled, so no lease outlives its worker.
func (p *Provider) fillUnderLease(ctx context.Context, pl plan, chunk, target grid.Range, lease Lease, out *chunkOutcome) {
	ctx, stopKeepalive := p.keepalive(ctx, lease)
	err := p.fill(ctx, pl, chunk, target, lease, out)
	stopKeepalive()
	p.obs.ChunkDone(pl.series, lease.Key)
	release := context.WithoutCancel(ctx)
	if err != nil {
		out.err = err
		p.obs.BackfillFailure(pl.series)
		if ferr := p.coord.Fail(release, lease, err.Error()); ferr != nil {
			p.log.WarnContext(ctx, "seamless.backfill.coordinator_fail_failed", "lease_key", lease.Key, "err", ferr)
		}
		p.log.WarnContext(ctx, "seamless.backfill.coordinator_failed", "node_id", pl.series.NodeID, "interval", pl.series.Interval, "lease_key", lease.Key, "err", err)
		return
	}
	if cerr := p.coord.Complete(release, lease); cerr != nil {
		p.log.WarnContext(ctx, "seamless.backfill.coordinator_complete_failed", "lease_key", lease.Key, "err", cerr)
	}
	p.log.DebugContext(ctx, "seamless.backfill.coordinator_completed", "node_id", pl.series.NodeID, "interval", pl.series.Interval, "lease_key", lease.Key, "bars", out.bars)
}

func (p *Provider) fill(ctx context.Context, pl plan, chunk, target grid.Range, lease Lease, out *chunkOutcome) error {
	// Re-read coverage under the lease: a previous holder may have finished between
	// our check and our claim.
	cov, err := p.store.Coverage(ctx, pl.series)
	if err != nil {
		return fmt.Errorf("%s: read coverage: %w", pl.series, err)
	}
	need := cov.Missing(target)
	if p.tailPending(pl, lease.Key, need) {
		return nil // that holder just asked for the unpublished tail: not again yet
	}
	total, done := need.Seconds(), int64(0)
	claimed := p.clock.Now()
	p.obs.ChunkProgress(pl.series, lease.Key, 0)
	for _, r := range need.Ranges() {
		f, attempts, err := p.fetchWithRetry(ctx, pl, r)
		if err != nil {
			if ctx.Err() != nil {
				// The cause says why: the caller gave up, or the lease was lost.
				return context.Cause(ctx)
			}
			return &UpstreamError{Series: pl.series, Chunk: chunk, Attempts: attempts, Err: err}
		}
		covered := p.settled(pl, r, f)
		if covered != r {
			p.noteTail(lease.Key)
		}
		if !covered.Empty() {
			err = p.store.Write(ctx, Write{Series: pl.series, Range: covered, Frame: f, Token: lease.Token})
			p.cache.invalidate(pl.series, covered, p.chunkWidth(pl))
			if err != nil {
				return fmt.Errorf("%s: write %v: %w", pl.series, covered, err)
			}
		}
		out.bars += f.Len()
		out.fetched = out.fetched.Add(r)
		done += r.Len()
		p.obs.ChunkProgress(pl.series, lease.Key, float64(done)/float64(total))
		if n := f.Len(); n > 0 {
			p.obs.ChunkFetched(pl.series, f.TS[n-1], p.clock.Now().Sub(claimed))
		}
	}
	return nil
}

// settled is the part of r that a fetch returning f makes covered: all of r, except
// that bars which closed within the settle window and came after the last bar f holds
// may not be published upstream yet, so that tail is left uncovered and asked for
// again by a later request instead of being recorded as a market gap for good.
func (p *Provider) settled(pl plan, r grid.Range, f *frame.Frame) grid.Range {
	iv := pl.series.Interval
	recent := p.unsettledFrom(pl)
	if r.End <= recent {
		return r
	}
	end := max(r.Start, min(recent, r.End))
	if n := f.Len(); n > 0 {
		end = max(end, f.TS[n-1]+iv)
	}
	return grid.R(r.Start, end)
}

// unsettledFrom is the first bar that closed within the settle window
// (ts + interval > now - settle_window): bars from there on may not be published yet.
func (p *Provider) unsettledFrom(pl plan) int64 {
	return grid.FloorAlign(p.clock.Now().Add(-p.cfg.SettleWindow).Unix(), pl.series.Interval)
}

// tailRetry is how soon a chunk whose unpublished tail a fetch just left uncovered is
// asked for again: often enough to catch the bars as they appear, rarely enough that a
// burst of requests (or the waiters of that fetch) cost one upstream call.
func (p *Provider) tailRetry() time.Duration { return min(p.cfg.SettleWindow/10, 10*time.Second) }

func (p *Provider) noteTail(key string) {
	now := p.clock.Now()
	p.tailsMu.Lock()
	defer p.tailsMu.Unlock()
	if p.tails == nil {
		p.tails = map[string]time.Time{}
	}
	if now.Sub(p.tailsSwept) > p.cfg.SettleWindow { // keep only chunks near now
		for k, t := range p.tails {
			if now.Sub(t) > p.cfg.SettleWindow {
				delete(p.tails, k)
			}
		}
		p.tailsSwept = now
	}
	p.tails[key] = now
}

func (p *Provider) forgetTail(key string) {
	p.tailsMu.Lock()
	delete(p.tails, key)
	p.tailsMu.Unlock()
}

// tailPending reports whether all that is missing of a chunk is its unsettled tail and a
// fetch asked for it less than tailRetry ago.
func (p *Provider) tailPending(pl plan, key string, missing grid.Set) bool {
	if rs := missing.Ranges(); len(rs) == 0 || rs[0].Start < p.unsettledFrom(pl) {
		return false
	}
	p.tailsMu.Lock()
	at, ok := p.tails[key]
	p.tailsMu.Unlock()
	return ok && p.clock.Now().Sub(at) < p.tailRetry()
}

// keepalive renews the lease every third of its TTL until stopped. If a renewal fails
// the lease is lost, so the returned context is cancelled to stop the work.
func (p *Provider) keepalive(ctx context.Context, lease Lease) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(max(p.leaseTTL/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				l, err := p.coord.Renew(ctx, lease, p.leaseTTL)
				if err != nil {
					p.log.WarnContext(ctx, "seamless.backfill.lease_lost", "lease_key", lease.Key, "err", err)
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
func (p *Provider) fetchWithRetry(ctx context.Context, pl plan, r grid.Range) (*frame.Frame, int, error) {
	for attempt := 1; ; attempt++ {
		f, err := p.fetchOnce(ctx, pl, r)
		if err == nil {
			return f, attempt, nil
		}
		if ctx.Err() != nil {
			return nil, attempt, ctx.Err()
		}
		if IsPermanent(err) || attempt >= p.cfg.MaxAttempts {
			return nil, attempt, err
		}
		delay := p.backoff(attempt)
		p.obs.BackfillRetry(pl.series)
		p.log.WarnContext(ctx, "seamless.backfill.retry", "node_id", pl.series.NodeID, "interval", pl.series.Interval,
			"range", r.String(), "attempt", attempt, "delay_ms", delay.Milliseconds(), "err", err)
		if err := p.clock.Sleep(ctx, delay); err != nil {
			return nil, attempt, err
		}
	}
}

// backoff is retry_backoff × 2^(attempt−1), scaled by a random factor in
// [1−jitter, 1+jitter] so that retrying workers spread out.
func (p *Provider) backoff(attempt int) time.Duration {
	d := float64(p.cfg.RetryBackoff) * float64(uint64(1)<<min(attempt-1, 30))
	p.randMu.Lock()
	u := p.rand.Float64()
	p.randMu.Unlock()
	return time.Duration(d * (1 + p.cfg.JitterRatio*(2*u-1)))
}

func (p *Provider) fetchOnce(ctx context.Context, pl plan, r grid.Range) (*frame.Frame, error) {
	select {
	case p.upstream <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	parent := ctx
	ctx, span := p.tracer.Start(ctx, "seamless.upstream", trace.WithAttributes(
		attribute.String("node_id", pl.series.NodeID), attribute.Int64("interval", pl.series.Interval),
		attribute.String("source", pl.node.Source), attribute.Int64("range.start", r.Start), attribute.Int64("range.end", r.End)))
	actx, cancel := p.clock.WithDeadline(ctx, p.clock.Now().Add(p.cfg.AttemptTimeout))
	f, err := pl.fetcher.Fetch(actx, pl.upstream, r)
	timedOut := actx.Err() != nil && parent.Err() == nil
	cancel()
	<-p.upstream
	if err != nil && timedOut {
		err = fmt.Errorf("upstream call unanswered after %v (attempt timeout): %w", p.cfg.AttemptTimeout, err)
	}
	span.SetAttributes(attribute.Int("rows", f.Len()))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "upstream error")
	}
	span.End()
	p.obs.Upstream(pl.node.Source, upstreamCode(ctx, err))
	if err != nil {
		return nil, err
	}
	if f == nil {
		return frame.New(pl.schema, 0), nil
	}
	if err := f.Validate(); err != nil {
		return nil, Permanent(fmt.Errorf("source returned a malformed frame: %w", err))
	}
	return p.normalizeFetched(ctx, pl, r, f)
}

// schedule queues background backfill of the chunks of missing (partial_fill) and
// returns those chunks. Chunks already queued by an earlier request are not queued
// twice. Background work stops when the provider closes.
func (p *Provider) schedule(pl plan, missing grid.Set) []grid.Range {
	chunks := alignedChunks(missing, p.chunkWidth(pl))
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return chunks
	}
	var todo []grid.Range
	for _, c := range chunks {
		if k := ChunkKey(pl.series, c); !p.scheduled[k] {
			p.scheduled[k] = true
			todo = append(todo, c)
		}
	}
	if len(todo) == 0 {
		return chunks
	}
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		run := p.runChunks(p.bgCtx, pl, todo, false, nil)
		if run.err != nil && p.bgCtx.Err() == nil {
			p.log.Warn("seamless.backfill.background_failed", "node_id", pl.series.NodeID, "interval", pl.series.Interval, "failed_chunks", len(run.failed), "err", run.err)
		}
		p.mu.Lock()
		for _, c := range todo {
			delete(p.scheduled, ChunkKey(pl.series, c))
		}
		p.mu.Unlock()
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
