package seamless

import (
	"context"
	"errors"
	"math"
	"strings"

	"fmt"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"time"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/fingerprint"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Fetch answers a request (SPEC §2): validate, plan against coverage, read storage,
// backfill what is missing per the strategy, all under the request's SLA budgets, then
// judge coverage and freshness.
func (p *Provider) Fetch(ctx context.Context, req Request) (Result, error) {
	began := p.clock.Now()
	ctx, span := p.tracer.Start(ctx, "seamless.fetch", trace.WithAttributes(
		attribute.String("node_id", req.NodeID), attribute.Int64("interval", req.Interval),
		attribute.String("strategy", string(req.Strategy))))
	defer span.End()
	res, err := p.fetch(ctx, req, began)
	span.SetAttributes(attribute.Int("rows", res.Frame.Len()), attribute.Bool("sla.violated", res.Metadata.SLAViolation != nil))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, ErrorCode(err))
	}
	code := "ok"
	var se *SeamlessSLAExceeded
	if errors.As(err, &se) {
		p.obs.SLAViolation(se.Phase, ViolationFailFast)
	}
	if err != nil {
		code = ErrorCode(err)
	} else {
		p.observe(res.Metadata)
	}
	strategy := req.Strategy
	if strategy == "" {
		strategy = Seamless
	}
	p.obs.Request(strategy, code, p.clock.Now().Sub(began))
	return res, err
}

// observe reports a served response's measurements.
func (p *Provider) observe(md Metadata) {
	s := Series{NodeID: md.NodeID, Interval: md.Interval}
	for phase, ms := range md.SLAPhases {
		p.obs.Phase(md.NodeID, phase, time.Duration(ms*float64(time.Millisecond)))
	}
	p.obs.Served("storage", md.Sources.Storage)
	p.obs.Served("backfill", md.Sources.Backfill)
	p.obs.Served("cache", md.Sources.Cache)
	p.obs.Served("live", md.Sources.Live)
	stale := -1.0
	if md.StalenessMS != nil {
		stale = float64(*md.StalenessMS) / 1000
	}
	p.obs.Coverage(s, md.CoverageRatio, stale)
	if v := md.SLAViolation; v != nil {
		mode := md.DowngradeMode
		if mode == "" {
			mode = ViolationFailFast
		}
		p.obs.SLAViolation(v.Phase, mode)
	}
	if md.Downgraded {
		p.obs.Downgrade(md.DowngradeMode, md.DowngradeReason)
	}
}

func (p *Provider) fetch(ctx context.Context, req Request, began time.Time) (_ Result, err error) {
	strategy, err := ParseStrategy(string(req.Strategy))
	if err != nil {
		return Result{}, err
	}
	domain, err := NormalizeDomain(req.ExecutionDomain)
	if err != nil {
		return Result{}, err
	}
	policy, err := requestPolicy(req)
	if err != nil {
		return Result{}, err
	}
	cpolicy, err := conformance.PolicyByName(req.Conformance)
	if err != nil {
		return Result{}, &RequestError{Field: "conformance", Message: err.Error()}
	}
	pl, err := p.resolve(req.NodeID, req.Interval)
	if err != nil {
		return Result{}, err
	}
	// Point-in-time domains see only bars closed by as_of: no look-ahead.
	now := began
	if domain.pointInTime() {
		if req.AsOf.IsZero() {
			return Result{}, &SeamlessDomainPolicyError{Domain: domain, NodeID: req.NodeID, Reason: "as_of is required for backtest/dryrun domains"}
		}
		if p.artifacts == nil {
			return Result{}, &SeamlessDomainPolicyError{Domain: domain, NodeID: req.NodeID, Reason: "backtest/dryrun need artifact-backed data, and no artifact registrar is configured"}
		}
		if req.AsOf.Before(now) {
			now = req.AsOf
		}
	}
	if pl, err = p.planRange(pl, req.Range(), now); err != nil {
		return Result{}, err
	}
	if p.isClosed() {
		return Result{}, ErrClosed
	}
	md := Metadata{
		NodeID: req.NodeID, Interval: req.Interval, RequestedRange: [2]int64{req.Start, req.End},
		Strategy: strategy, Backfill: BackfillInfo{Scheduled: []grid.Range{}}, ConformanceVersion: ConformanceVersion,
		WorldID: req.WorldID, ExecutionDomain: domain,
	}
	if !req.AsOf.IsZero() {
		md.RequestedAsOf = req.AsOf.UTC().Format(time.RFC3339)
		md.AsOf = now.UTC().Format(time.RFC3339)
	}
	var ds []decision
	if (domain == DomainLive || domain == DomainShadow) && !req.AsOf.IsZero() && !p.asOf.observe(req.WorldID, req.NodeID, req.AsOf) {
		ds = append(ds, decision{ViolationHold, ReasonAsOfRegression})
	}

	b := newBudgets(ctx, p.log, p.tracer, p.clock, policy, began, req.NodeID)
	phaseNode := OtherSeries // until the coverage shows the store holds the series
	defer func() {
		// A failed request's phases are timed too (a served one's are, from its
		// metadata, in observe): the latency SLO must see the slow failures. Those of
		// series the store holds nothing of share one label (made-up ids would
		// otherwise each add label values).
		if err != nil {
			for phase, ms := range b.phases() {
				p.obs.Phase(phaseNode, phase, time.Duration(ms*float64(time.Millisecond)))
			}
		}
	}()
	// Phases derive their deadlines from the request's context; the total deadline's
	// own context is made only for work outside the phases that needs it.
	parent := ctx
	total := &lazyTotal{b: b, parent: parent}
	defer total.stop()

	// A live_wait violation (recorded in b, so the answer is downgraded) only ends the
	// wait for the newest bar: the backfill of what is missing keeps its own budget.
	if _, err := p.awaitLive(parent, b, strategy, domain, pl, now); err != nil {
		return Result{}, err
	}
	var (
		cov        grid.Set
		rewrites   uint64
		f          = frame.New(pl.schema, 0)
		fromCache  int
		release    *releaser
		prechecked bool
		read       bool // the bars were read with the coverage, in one storage phase
	)
	readBars := func(ctx context.Context) error {
		rpl := pl
		if domain.pointInTime() { // read no bar closed after as_of
			rpl.want = pl.want.Intersect(grid.R(pl.want.Start, pl.closed.End))
		}
		res, err := p.read(ctx, rpl, cov, rewrites)
		if err != nil {
			return fmt.Errorf("read %v: %w", pl.want, err)
		}
		if len(res.f.Cols) > 0 || res.f.Len() > 0 {
			f, fromCache = res.f, res.cached
			// Clean cached chunks that make up every grid point of the answer need
			// no second conformance pass.
			prechecked = res.clean && int64(f.Len()) == pl.closed.Bars(pl.series.Interval)
		}
		if res.pooled {
			release = &releaser{pool: &p.frames, frame: res.f}
		}
		read = true
		return nil
	}
	violated, err := b.run(parent, PhaseStorage, func(ctx context.Context) (err error) {
		if cov, rewrites, err = p.coverage(ctx, pl.series); err != nil {
			return fmt.Errorf("read coverage: %w", err)
		}
		if !cov.Empty() {
			phaseNode = req.NodeID
		}
		if cov.Missing(pl.closed).Empty() { // nothing to backfill: read now, in the same phase
			return readBars(ctx)
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", pl.series, err)
	}
	missing := cov.Missing(pl.closed)
	var fetched grid.Set
	if violated && !missing.Empty() && strategy != FailFast && policy.mode() == ViolationPartialFill {
		// A budget ran out before the backfill could start: answer with what is
		// stored, and fill the rest in the background (SPEC §4 partial_fill).
		md.Backfill.Scheduled = p.schedule(pl, missing)
	}
	if !violated && !missing.Empty() {
		switch strategy {
		case FailFast:
			if !req.PartialOK {
				return Result{}, &NotCoveredError{Series: pl.series, Missing: missing}
			}
		case PartialFill:
			md.Backfill.Scheduled = p.schedule(pl, missing)
		case AutoBackfill, Seamless:
			if gap := barsIn(missing, pl.series.Interval); policy.MaxSyncGapBars > 0 && gap > policy.MaxSyncGapBars {
				// Too much to backfill inline: judge before any upstream call.
				if err := b.exceeded(SLAViolation{Phase: PhaseSyncGap, MissingBars: gap, BudgetBars: policy.MaxSyncGapBars}); err != nil {
					return Result{}, err
				}
				violated = true
				md.Backfill.Scheduled = p.schedule(pl, missing)
				break
			}
			run, detached, err := p.syncBackfill(parent, b, pl, missing)
			if err != nil {
				return Result{}, err
			}
			if detached {
				violated = true
				md.Backfill.Scheduled = alignedChunks(missing, p.chunkWidth(pl))
			}
			md.Backfill.Chunks, md.Backfill.Waited, md.Backfill.FetchedBars = run.chunks, run.waited, run.bars
			fetched = run.fetched
			if run.err != nil {
				if err := parent.Err(); err != nil {
					return Result{}, err // the caller's own cancellation, not the work's
				}
				if !req.PartialOK {
					return Result{}, run.err
				}
				md.Backfill.Failed = run.failed
			}
		}
	}

	if !read && (!violated || policy.mode() != ViolationFailFast) {
		if _, err := b.run(parent, PhaseStorage, func(ctx context.Context) (err error) {
			if !missing.Empty() { // backfill (ours or another worker's) may have grown it
				if cov, rewrites, err = p.coverage(ctx, pl.series); err != nil {
					return fmt.Errorf("read coverage: %w", err)
				}
			}
			return readBars(ctx)
		}); err != nil {
			return Result{}, fmt.Errorf("%s: %w", pl.series, err)
		}
	}
	if domain.pointInTime() {
		f = f.Slice(0, f.SearchTS(pl.closed.End))
	}
	if f.Len() > 0 {
		cctx := parent
		if p.schemas != nil { // a registry call: bounded by the total deadline
			cctx = total.get()
		}
		if f, err = p.check(cctx, pl, f, cov, cpolicy, req.PartialOK, prechecked, &md); err != nil {
			return Result{}, err
		}
	}
	p.describe(&md, pl, f, cov, fetched, now)
	md.Sources.Cache, md.Sources.Storage = fromCache, max(md.Sources.Storage-fromCache, 0)
	if p.live != nil && f.Len() > 0 && p.live.Serves(pl.series) {
		// Bars the live tier delivered (and stored) are served from it.
		if _, r := p.live.Recent(pl.series, pl.want); !r.Empty() {
			n := f.SearchTS(r.End) - f.SearchTS(r.Start)
			md.Sources.Live, md.Sources.Storage = n, max(md.Sources.Storage-n, 0)
		}
	}
	if req.IncludeForming && p.live != nil && !domain.pointInTime() {
		f = p.appendForming(pl, f, &md)
	}
	if req.Fingerprint || domain.pointInTime() {
		md.DatasetFingerprint = fingerprint.Dataset(f, fingerprint.Meta{NodeID: md.NodeID, Interval: md.Interval, CoverageBounds: md.CoverageBounds})
	}
	if domain.pointInTime() {
		uri, err := p.artifacts.Publish(total.get(), ArtifactRequest{Series: pl.series, Range: pl.want, Frame: f, AsOf: now, ConformanceFlags: md.ConformanceFlags})
		if err != nil {
			return Result{}, fmt.Errorf("%s: publish artifact: %w", pl.series, err)
		}
		md.ManifestURI = uri
	}

	if b.violation != nil {
		ds = append([]decision{{policy.mode(), ReasonSLAViolation}}, ds...)
		md.SLAViolation = b.violation
	}
	ds = append(ds, p.judge(req, policy, domain, &md, now)...)
	if d, ok := merge(ds); ok {
		md.Downgraded, md.DowngradeMode, md.DowngradeReason = true, d.mode, d.reason
		p.log.WarnContext(parent, "seamless.sla.downgrade", "node_id", req.NodeID, "interval", req.Interval,
			"range", pl.want.String(), "mode", d.mode, "reason", d.reason, "coverage_ratio", md.CoverageRatio)
	}
	md.SLAPhases = b.phases()
	return Result{Frame: f, Metadata: md, release: release}, nil
}

// requestPolicy is the request's SLA with its per-request overrides, validated.
func requestPolicy(req Request) (SLAPolicy, error) {
	var p SLAPolicy
	if req.SLA != nil {
		p = *req.SLA
	}
	if v := req.MinCoverage; math.IsNaN(v) || v < 0 || v > 1 {
		return SLAPolicy{}, &RequestError{Field: "min_coverage", Message: fmt.Sprintf("must be in [0, 1] (0: the policy's), got %v", v)}
	}
	if v := req.MaxLagSeconds; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return SLAPolicy{}, &RequestError{Field: "max_lag_seconds", Message: fmt.Sprintf("must be a finite number >= 0 (0: the policy's), got %v", v)}
	}
	if req.MinCoverage > 0 {
		p.MinCoverage = req.MinCoverage
	}
	if req.MaxLagSeconds > 0 {
		p.MaxLagSeconds = req.MaxLagSeconds
	}
	if err := p.Validate(); err != nil {
		return SLAPolicy{}, &RequestError{Field: "sla", Message: strings.TrimPrefix(err.Error(), "sla: ")}
	}
	return p, nil
}

// judge checks coverage and freshness against the policy (SPEC §4): breaches give hold.
func (p *Provider) judge(req Request, policy SLAPolicy, domain Domain, md *Metadata, now time.Time) []decision {
	var ds []decision
	if policy.MinCoverage > 0 && md.CoverageRatio < policy.MinCoverage {
		ds = append(ds, decision{ViolationHold, ReasonCoverageBreach})
	}
	if lag := policy.MaxLagSeconds; lag > 0 {
		// Freshness matters only for requests reaching into the last max_lag window, or
		// in domains that trade on the newest bars.
		recent := float64(req.End) >= float64(now.Unix())-lag
		if recent || domain == DomainLive || domain == DomainShadow {
			if md.StalenessMS == nil || float64(*md.StalenessMS) > lag*1000 {
				ds = append(ds, decision{ViolationHold, ReasonFreshness})
			}
		}
	}
	return ds
}

func barsIn(s grid.Set, interval int64) int64 {
	var n int64
	for _, r := range s.Ranges() {
		n += r.Bars(interval)
	}
	return n
}

// syncBackfill backfills missing while the request waits, bounded by the backfill and
// total budgets. The work runs under the provider's background context, so when a
// budget runs out under partial_fill or hold the request returns and the work keeps
// going (detached); under fail_fast, or when the caller gives up, it is cancelled.
func (p *Provider) syncBackfill(parent context.Context, b *budgets, pl plan, missing grid.Set) (backfillRun, bool, error) {
	work, cancelWork, ok := p.background()
	if !ok {
		return backfillRun{}, false, ErrClosed
	}
	_, span := b.span(parent, PhaseBackfill)
	defer span.End()
	// Upstream spans of the (possibly detached) work are children of this span.
	work = trace.ContextWithSpanContext(work, span.SpanContext())
	// The budget starts before the work does, so the deadline is armed before any
	// upstream call can be made (and before a test's fake clock can move past it).
	pctx, pcancel := b.phaseCtx(parent, PhaseBackfill)
	defer pcancel()
	start := b.clock.Now()
	stop := context.AfterFunc(parent, cancelWork)
	done := make(chan backfillRun, 1)
	go func() {
		defer p.bg.Done()
		defer cancelWork()
		done <- p.backfill(work, pl, missing, nil)
	}()
	select {
	case run := <-done:
		b.spend(PhaseBackfill, start)
		stop()
		return run, false, nil
	case <-pctx.Done():
		b.spend(PhaseBackfill, start)
		span.SetAttributes(attribute.Bool("sla.violated", true))
		// Cancelled work is waited for, so its leases are released before we return.
		if parent.Err() != nil {
			cancelWork()
			<-done
			return backfillRun{}, false, parent.Err()
		}
		if err := b.exceeded(b.expired(PhaseBackfill)); err != nil {
			cancelWork()
			<-done
			return backfillRun{}, false, err
		}
		stop() // detach: the work outlives the request
		return backfillRun{}, true, nil
	}
}

// background returns a context for work that outlives a request, registered so that
// Close cancels and waits for it. ok is false once the provider is closed. The caller
// must call p.bg.Done when the work ends.
func (p *Provider) background() (context.Context, context.CancelFunc, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, false
	}
	p.bg.Add(1)
	ctx, cancel := context.WithCancel(p.bgCtx)
	return ctx, cancel, true
}

// describe fills the metadata that depends on the frame served.
func (p *Provider) describe(md *Metadata, pl plan, f *frame.Frame, cov grid.Set, fetched grid.Set, now time.Time) {
	iv := pl.series.Interval
	md.Rows = f.Len()
	if n := f.Len(); n > 0 {
		first, last := f.TS[0], f.TS[n-1]
		md.CoverageBounds = &[2]int64{first, last + iv}
		stale := max(now.UnixMilli()-(last+iv)*1000, 0)
		md.StalenessMS = &stale
	}
	// A covered grid point is present even without a bar (a market gap is not a
	// coverage failure), so the ratio is covered expected bars over expected bars.
	// Expected bars are the closed ones: a bar still forming cannot be stored yet.
	md.CoverageRatio = 1
	if expected := pl.closed.Bars(iv); expected > 0 {
		md.CoverageRatio = float64(barsIn(cov.IntersectRange(pl.closed), iv)) / float64(expected)
	}
	for _, r := range fetched.Ranges() {
		md.Sources.Backfill += f.SearchTS(r.End) - f.SearchTS(r.Start)
	}
	md.Sources.Storage = md.Rows - md.Sources.Backfill
}

// budgets tracks a request's SLA phases: time spent per phase, deadlines, and the first
// violation.
type budgets struct {
	ctx       context.Context // the request's, for the trace ids of log records
	log       *slog.Logger
	tracer    trace.Tracer
	clock     clock.Clock
	policy    SLAPolicy
	began     time.Time
	node      string
	spent     map[string]time.Duration
	violation *SLAViolation
}

func newBudgets(ctx context.Context, log *slog.Logger, tr trace.Tracer, c clock.Clock, policy SLAPolicy, began time.Time, node string) *budgets {
	return &budgets{ctx: ctx, log: log, tracer: tr, clock: c, policy: policy, began: began, node: node, spent: map[string]time.Duration{}}
}

// phaseSpans names each phase's span (SPEC §8).
var phaseSpans = map[string]string{PhaseStorage: "seamless.storage", PhaseBackfill: "seamless.backfill", PhaseLive: "seamless.live"}

// span starts a phase's span with its SLA attributes.
func (b *budgets) span(ctx context.Context, phase string) (context.Context, trace.Span) {
	return b.tracer.Start(ctx, phaseSpans[phase], trace.WithAttributes(
		attribute.String("sla.phase", phase), attribute.Int64("sla.budget_ms", b.budgetMS(phase))))
}

func (b *budgets) budgetMS(phase string) int64 {
	switch phase {
	case PhaseStorage:
		return b.policy.MaxWaitStorageMS
	case PhaseBackfill:
		return b.policy.MaxWaitBackfillMS
	case PhaseLive:
		return b.policy.MaxWaitLiveMS
	case PhaseTotal:
		return b.policy.TotalDeadlineMS
	}
	return 0
}

// totalDeadline is the instant total_deadline_ms ends the request, if it is set.
func (b *budgets) totalDeadline() (time.Time, bool) {
	ms := b.policy.TotalDeadlineMS
	return b.began.Add(time.Duration(ms) * time.Millisecond), ms > 0
}

// phaseCtx bounds parent by what is left of the phase's budget and by the total
// deadline, whichever ends first: one timer per phase.
func (b *budgets) phaseCtx(parent context.Context, phase string) (context.Context, context.CancelFunc) {
	deadline, ok := b.totalDeadline()
	if ms := b.budgetMS(phase); ms > 0 {
		left := time.Duration(ms)*time.Millisecond - b.spent[phase]
		if d := b.clock.Now().Add(left); !ok || d.Before(deadline) {
			deadline, ok = d, true
		}
	}
	if !ok {
		return context.WithCancel(parent)
	}
	return b.clock.WithDeadline(parent, deadline)
}

// lazyTotal is the request's context bounded by total_deadline_ms, made on first use:
// an answer that never leaves its phases needs no timer for it.
type lazyTotal struct {
	b      *budgets
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

func (t *lazyTotal) get() context.Context {
	if t.ctx == nil {
		if d, ok := t.b.totalDeadline(); ok {
			t.ctx, t.cancel = t.b.clock.WithDeadline(t.parent, d)
		} else {
			t.ctx, t.cancel = context.WithCancel(t.parent)
		}
	}
	return t.ctx
}

func (t *lazyTotal) stop() {
	if t.cancel != nil {
		t.cancel()
	}
}

func (b *budgets) spend(phase string, since time.Time) {
	b.spent[phase] += b.clock.Now().Sub(since)
}

// run executes fn under the phase's remaining budget (and the total deadline). It
// reports whether a budget ran out; the error is fn's own failure, or
// *SeamlessSLAExceeded when a budget ran out under fail_fast.
func (b *budgets) run(parent context.Context, phase string, fn func(context.Context) error) (bool, error) {
	pctx, cancel := b.phaseCtx(parent, phase)
	defer cancel()
	pctx, span := b.span(pctx, phase)
	defer span.End()
	start := b.clock.Now()
	err := fn(pctx)
	b.spend(phase, start)
	if pctx.Err() != nil && parent.Err() == nil {
		span.SetAttributes(attribute.Bool("sla.violated", true))
	}
	if pctx.Err() == nil || parent.Err() != nil {
		if err == nil && parent.Err() != nil {
			err = parent.Err()
		}
		return false, err
	}
	return true, b.exceeded(b.expired(phase))
}

// expired describes the budget that ended a phase: the total deadline when that is
// what fired, else the phase's own.
func (b *budgets) expired(phase string) SLAViolation {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if total, ok := b.totalDeadline(); ok && !b.clock.Now().Before(total) {
		return SLAViolation{Phase: PhaseTotal, ElapsedMS: ms(b.clock.Now().Sub(b.began)), BudgetMS: b.policy.TotalDeadlineMS}
	}
	return SLAViolation{Phase: phase, ElapsedMS: ms(b.spent[phase]), BudgetMS: b.budgetMS(phase)}
}

// exceeded records v (the first violation wins) and returns *SeamlessSLAExceeded when
// the policy says fail_fast, nil when the request should degrade instead.
func (b *budgets) exceeded(v SLAViolation) error {
	if b.violation == nil {
		b.violation = &v
		b.log.WarnContext(b.ctx, "seamless.sla.phase_exceeded", "node_id", b.node, "phase", v.Phase, "elapsed_ms", v.ElapsedMS,
			"budget_ms", v.BudgetMS, "missing_bars", v.MissingBars, "on_violation", b.policy.mode())
	}
	if b.policy.mode() == ViolationFailFast {
		return &SeamlessSLAExceeded{NodeID: b.node, SLAViolation: v}
	}
	return nil
}

// phases reports each phase's elapsed milliseconds, plus the total.
func (b *budgets) phases() map[string]float64 {
	out := make(map[string]float64, len(b.spent)+1)
	for k, v := range b.spent {
		out[k] = float64(v.Microseconds()) / 1000
	}
	out[PhaseTotal] = float64(b.clock.Now().Sub(b.began).Microseconds()) / 1000
	return out
}

// defaultLiveWait bounds waiting for a just-closing bar when the SLA sets no live
// budget: past it the request goes on (the REST backfill covers the bar).
const defaultLiveWait = 2 * time.Second

// awaitLive runs the live_wait phase: when the request reaches the newest closed bar of
// a series with a live feed, it subscribes and waits (bounded by max_wait_live_ms) for
// that bar to close and be stored, so the storage read serves it and no REST call is
// needed. A bar the feed missed is left to the backfill tier. It reports whether the
// live budget ran out (under partial_fill or hold).
func (p *Provider) awaitLive(parent context.Context, b *budgets, strategy Strategy, domain Domain, pl plan, now time.Time) (bool, error) {
	if p.live == nil || strategy != Seamless || domain.pointInTime() || !p.live.Serves(pl.series) {
		return false, nil
	}
	iv := pl.series.Interval
	closedEnd := ClosedEnd(now.Unix(), iv)
	if pl.want.End <= closedEnd-iv {
		return false, nil // historical: nothing live to wait for
	}
	if err := p.live.Subscribe(pl.series); err != nil {
		p.log.WarnContext(parent, "seamless.live.subscribe_failed", "node_id", pl.series.NodeID, "err", err)
		return false, nil
	}
	last := closedEnd - iv
	if !pl.closed.Contains(last) {
		return false, nil
	}
	return b.run(parent, PhaseLive, func(ctx context.Context) error {
		if b.budgetMS(PhaseLive) <= 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, defaultLiveWait)
			defer cancel()
		}
		err := p.live.WaitClosed(ctx, pl.series, last)
		if errors.Is(err, ErrLiveMissed) || errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return nil // the backfill tier fetches it
		}
		return err
	})
}

// appendForming adds the live tier's forming bar when it lies inside the request after
// the last closed bar served.
func (p *Provider) appendForming(pl plan, f *frame.Frame, md *Metadata) *frame.Frame {
	fb, ok := p.live.Forming(pl.series)
	if !ok || fb.Len() == 0 || !fb.Schema().Equal(f.Schema()) {
		return f
	}
	ts := fb.TS[fb.Len()-1]
	if !pl.want.Contains(ts) || (f.Len() > 0 && ts <= f.TS[f.Len()-1]) {
		return f
	}
	out := frame.New(f.Schema(), f.Len()+1)
	out.AppendRows(f, 0, f.Len())
	out.AppendRows(fb, fb.Len()-1, fb.Len())
	md.Rows, md.Forming = out.Len(), true
	md.Sources.Live++
	return out
}
