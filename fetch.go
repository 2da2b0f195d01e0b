package seamless

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

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

// fetch is the request path: admit (resolve and gate, before any I/O), wait for the
// newest bar from the live tier, plan from the coverage, execute the plan through the
// tiers, serve what is stored through the quality tier, judge, answer.
func (p *Provider) fetch(ctx context.Context, req Request, began time.Time) (_ Result, err error) {
	x, err := p.admit(ctx, req, began)
	if err != nil {
		return Result{}, err
	}
	defer func() { x.end(err) }()
	if err := x.awaitLive(); err != nil {
		return Result{}, err
	}
	pl, err := x.plan()
	if err != nil {
		return Result{}, err
	}
	if err := x.execute(pl); err != nil {
		return Result{}, err
	}
	if err := x.serve(pl); err != nil {
		return Result{}, err
	}
	return x.answer()
}

// execution is one request's state while the executor carries out its plan.
type execution struct {
	p         *Provider
	req       Request
	rq        resolved
	strategy  Strategy
	domain    Domain
	policy    SLAPolicy
	cpolicy   conformance.Policy
	now       time.Time       // the instant the data is seen at (as_of in point-in-time domains)
	parent    context.Context // the request's context
	b         *budgets
	total     *lazyTotal
	md        Metadata
	early     []decision // downgrades decided before any I/O (as_of regression)
	phaseNode string     // the node id failed requests' phases are observed under

	cov        grid.Set // coverage, as last read
	rewrites   uint64   // the series' rewrite count read with cov
	read       bool     // the bars were read (f, fromCache, release, prechecked hold them)
	f          *frame.Frame
	fromCache  int
	release    *releaser
	prechecked bool
	fetched    grid.Set // what this request backfilled
}

// admit validates the request and applies its domain's policy, before any I/O.
func (p *Provider) admit(ctx context.Context, req Request, began time.Time) (*execution, error) {
	strategy, err := ParseStrategy(string(req.Strategy))
	if err != nil {
		return nil, err
	}
	domain, err := NormalizeDomain(req.ExecutionDomain)
	if err != nil {
		return nil, err
	}
	policy, err := requestPolicy(req)
	if err != nil {
		return nil, err
	}
	cpolicy, err := conformance.PolicyByName(req.Conformance)
	if err != nil {
		return nil, &RequestError{Field: "conformance", Message: err.Error()}
	}
	rq, err := p.resolve(req.NodeID, req.Interval)
	if err != nil {
		return nil, err
	}
	now, err := gate(req, domain, p.artifacts != nil, began)
	if err != nil {
		return nil, err
	}
	if rq, err = p.resolveRange(rq, req.Range(), now); err != nil {
		return nil, err
	}
	if p.isClosed() {
		return nil, ErrClosed
	}
	x := &execution{p: p, req: req, rq: rq, strategy: strategy, domain: domain, policy: policy, cpolicy: cpolicy,
		now: now, parent: ctx, phaseNode: OtherSeries, f: frame.New(rq.schema, 0)}
	x.md = Metadata{
		NodeID: req.NodeID, Interval: req.Interval, RequestedRange: [2]int64{req.Start, req.End},
		Strategy: strategy, Backfill: BackfillInfo{Scheduled: []grid.Range{}}, ConformanceVersion: ConformanceVersion,
		WorldID: req.WorldID, ExecutionDomain: domain,
	}
	if !req.AsOf.IsZero() {
		x.md.RequestedAsOf = req.AsOf.UTC().Format(time.RFC3339)
		x.md.AsOf = now.UTC().Format(time.RFC3339)
	}
	if (domain == DomainLive || domain == DomainShadow) && !req.AsOf.IsZero() && !p.asOf.observe(req.WorldID, req.NodeID, req.AsOf) {
		x.early = append(x.early, decision{ViolationHold, ReasonAsOfRegression})
	}
	x.b = newBudgets(ctx, p.log, p.tracer, p.clock, policy, began, req.NodeID)
	// Phases derive their deadlines from the request's context; the total deadline's
	// own context is made only for work outside the phases that needs it.
	x.total = &lazyTotal{b: x.b, parent: ctx}
	return x, nil
}

// end releases the request's timers. A failed request's phases are timed too (a served
// one's are, from its metadata, in observe): the latency SLO must see the slow failures.
// Those of series the store holds nothing of share one label (made-up ids would
// otherwise each add label values).
func (x *execution) end(err error) {
	x.total.stop()
	if err != nil {
		for phase, ms := range x.b.phases() {
			x.p.obs.Phase(x.phaseNode, phase, time.Duration(ms*float64(time.Millisecond)))
		}
	}
}

// plan reads the coverage in the storage phase (and the bars too, when nothing is
// missing: one phase) and plans from it.
func (x *execution) plan() (plan, error) {
	violated, err := x.b.run(x.parent, PhaseStorage, func(ctx context.Context) (err error) {
		if x.cov, x.rewrites, err = x.p.reader.coverage(ctx, x.rq.series); err != nil {
			return fmt.Errorf("read coverage: %w", err)
		}
		if !x.cov.Empty() {
			x.phaseNode = x.req.NodeID
		}
		if x.cov.Missing(x.rq.closed).Empty() {
			return x.readBars(ctx)
		}
		return nil
	})
	if err != nil {
		return plan{}, fmt.Errorf("%s: %w", x.rq.series, err)
	}
	return planFetch(planInput{rq: x.rq, strategy: x.strategy, policy: x.policy, partialOK: x.req.PartialOK,
		cov: x.cov, storageViolated: violated}), nil
}

// execute carries out the plan's backfill work: a budget breach the plan found, the
// chunks handed to the background, and the synchronous backfill.
func (x *execution) execute(pl plan) error {
	if v := pl.violation; v != nil {
		if err := x.b.exceeded(*v); err != nil {
			return err
		}
	}
	if pl.refuse != nil {
		return pl.refuse
	}
	if !pl.schedule.Empty() {
		x.md.Backfill.Scheduled = x.p.backfill.schedule(x.rq, pl.schedule)
	}
	if pl.backfill.Empty() {
		return nil
	}
	out, err := x.syncBackfill(pl.backfill)
	if err != nil {
		return err
	}
	if out.run.err != nil && x.parent.Err() != nil {
		return x.parent.Err() // the caller's own cancellation, not the work's
	}
	info, err := settle(out, x.req.PartialOK, x.p.backfill.chunks(x.rq, pl.backfill))
	if err != nil {
		return err
	}
	x.md.Backfill, x.fetched = info, out.run.fetched
	return nil
}

// syncBackfill backfills missing while the request waits, bounded by the backfill and
// total budgets. The work runs under the provider's lifetime, so when a budget runs out
// under partial_fill or hold the request returns and the work keeps going (detached);
// under fail_fast, or when the caller gives up, it is cancelled.
func (x *execution) syncBackfill(missing grid.Set) (backfillOutcome, error) {
	work, cancelWork, done, ok := x.p.life.start()
	if !ok {
		return backfillOutcome{}, ErrClosed
	}
	b, parent := x.b, x.parent
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
	result := make(chan backfillRun, 1)
	go func() {
		defer done()
		defer cancelWork()
		result <- x.p.backfill.run(work, x.rq, missing)
	}()
	select {
	case run := <-result:
		b.spend(PhaseBackfill, start)
		stop()
		return backfillOutcome{run: run}, nil
	case <-pctx.Done():
		b.spend(PhaseBackfill, start)
		span.SetAttributes(attribute.Bool("sla.violated", true))
		// Cancelled work is waited for, so its leases are released before we return.
		if parent.Err() != nil {
			cancelWork()
			<-result
			return backfillOutcome{}, parent.Err()
		}
		if err := b.exceeded(b.expired(PhaseBackfill)); err != nil {
			cancelWork()
			<-result
			return backfillOutcome{}, err
		}
		stop() // detach: the work outlives the request
		return backfillOutcome{detached: true}, nil
	}
}

// readBars reads the answer's bars from the cache and storage tiers, under ctx's phase.
func (x *execution) readBars(ctx context.Context) error {
	rq := x.rq
	if x.domain.pointInTime() { // read no bar closed after as_of
		rq.want = rq.want.Intersect(grid.R(rq.want.Start, rq.closed.End))
	}
	res, err := x.p.reader.read(ctx, rq, x.cov, x.rewrites)
	if err != nil {
		return fmt.Errorf("read %v: %w", x.rq.want, err)
	}
	if len(res.f.Cols) > 0 || res.f.Len() > 0 {
		x.f, x.fromCache = res.f, res.cached
		// Clean cached chunks that make up every grid point of the answer need no
		// second conformance pass.
		x.prechecked = res.clean && int64(x.f.Len()) == x.rq.closed.Bars(x.rq.series.Interval)
	}
	if res.pooled {
		x.release = &releaser{pool: &x.p.reader.frames, frame: res.f}
	}
	x.read = true
	return nil
}

// serve reads the bars (unless the storage phase already did) and checks them.
func (x *execution) serve(pl plan) error {
	if !x.read {
		if _, err := x.b.run(x.parent, PhaseStorage, func(ctx context.Context) (err error) {
			if !pl.missing.Empty() { // backfill (ours or another worker's) may have grown it
				if x.cov, x.rewrites, err = x.p.reader.coverage(ctx, x.rq.series); err != nil {
					return fmt.Errorf("read coverage: %w", err)
				}
			}
			return x.readBars(ctx)
		}); err != nil {
			return fmt.Errorf("%s: %w", x.rq.series, err)
		}
	}
	if x.domain.pointInTime() {
		x.f = x.f.Slice(0, x.f.SearchTS(x.rq.closed.End))
	}
	if x.f.Len() == 0 {
		return nil
	}
	cctx := x.parent
	if x.p.quality.schemas != nil { // a registry call: bounded by the total deadline
		cctx = x.total.get()
	}
	f, err := x.p.quality.check(cctx, x.rq, x.f, x.cov, x.cpolicy, x.req.PartialOK, x.prechecked, &x.md)
	if err != nil {
		return err
	}
	x.f = f
	return nil
}

// answer describes the frame served, adds the live tier's part, publishes the artifact
// of a point-in-time request, and judges the answer against the policy.
func (x *execution) answer() (Result, error) {
	p, md := x.p, &x.md
	describe(md, x.rq, x.f, x.cov, x.fetched, x.now)
	md.Sources.Cache, md.Sources.Storage = x.fromCache, max(md.Sources.Storage-x.fromCache, 0)
	if p.live != nil && x.f.Len() > 0 && p.live.Serves(x.rq.series) {
		// Bars the live tier delivered (and stored) are served from it.
		if _, r := p.live.Recent(x.rq.series, x.rq.want); !r.Empty() {
			n := x.f.SearchTS(r.End) - x.f.SearchTS(r.Start)
			md.Sources.Live, md.Sources.Storage = n, max(md.Sources.Storage-n, 0)
		}
	}
	if x.req.IncludeForming && p.live != nil && !x.domain.pointInTime() {
		x.f = appendForming(p.live, x.rq, x.f, md)
	}
	if x.req.Fingerprint || x.domain.pointInTime() {
		md.DatasetFingerprint = fingerprint.Dataset(x.f, fingerprint.Meta{NodeID: md.NodeID, Interval: md.Interval, CoverageBounds: md.CoverageBounds})
	}
	if x.domain.pointInTime() {
		uri, err := p.artifacts.Publish(x.total.get(), ArtifactRequest{Series: x.rq.series, Range: x.rq.want, Frame: x.f, AsOf: x.now, ConformanceFlags: md.ConformanceFlags})
		if err != nil {
			return Result{}, fmt.Errorf("%s: publish artifact: %w", x.rq.series, err)
		}
		md.ManifestURI = uri
	}
	if d, ok := verdict(md, x.req, x.policy, x.domain, x.now, x.b.violation, x.early); ok {
		p.log.WarnContext(x.parent, "seamless.sla.downgrade", "node_id", x.req.NodeID, "interval", x.req.Interval,
			"range", x.rq.want.String(), "mode", d.mode, "reason", d.reason, "coverage_ratio", md.CoverageRatio)
	}
	md.SLAPhases = x.b.phases()
	return Result{Frame: x.f, Metadata: *md, release: x.release}, nil
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
		var re *RequestError
		if errors.As(err, &re) {
			return SLAPolicy{}, re
		}
		return SLAPolicy{}, &RequestError{Field: "sla", Message: strings.TrimPrefix(err.Error(), "sla: ")}
	}
	return p, nil
}

// describe fills the metadata that depends on the frame served.
func describe(md *Metadata, rq resolved, f *frame.Frame, cov grid.Set, fetched grid.Set, now time.Time) {
	iv := rq.series.Interval
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
	if expected := rq.closed.Bars(iv); expected > 0 {
		md.CoverageRatio = float64(cov.IntersectRange(rq.closed).Bars(iv)) / float64(expected)
	}
	for _, r := range fetched.Ranges() {
		md.Sources.Backfill += f.SearchTS(r.End) - f.SearchTS(r.Start)
	}
	md.Sources.Storage = md.Rows - md.Sources.Backfill
}

// defaultLiveWait bounds waiting for a just-closing bar when the SLA sets no live
// budget: past it the request goes on (the REST backfill covers the bar).
const defaultLiveWait = 2 * time.Second

// awaitLive runs the live_wait phase: when the request reaches the newest closed bar of
// a series with a live feed, it subscribes and waits (bounded by max_wait_live_ms) for
// that bar to close and be stored, so the storage read serves it and no REST call is
// needed. A bar the feed missed is left to the backfill tier. It reports whether the
// live budget ran out under partial_fill or hold, which the budgets record.
func (x *execution) awaitLive() error {
	live, b, parent := x.p.live, x.b, x.parent
	step := planLive(x.strategy, x.domain, x.rq, x.now)
	if live == nil || !step.subscribe || !live.Serves(x.rq.series) {
		return nil
	}
	if err := live.Subscribe(x.rq.series); err != nil {
		x.p.log.WarnContext(parent, "seamless.live.subscribe_failed", "node_id", x.rq.series.NodeID, "err", err)
		return nil
	}
	if !step.wait {
		return nil
	}
	_, err := b.run(parent, PhaseLive, func(ctx context.Context) error {
		if b.budgetMS(PhaseLive) <= 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, defaultLiveWait)
			defer cancel()
		}
		err := live.WaitClosed(ctx, x.rq.series, step.ts)
		if errors.Is(err, ErrLiveMissed) || errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
			return nil // the backfill tier fetches it
		}
		return err
	})
	return err
}

// appendForming adds the live tier's forming bar when it lies inside the request after
// the last closed bar served.
func appendForming(live LiveTier, rq resolved, f *frame.Frame, md *Metadata) *frame.Frame {
	fb, ok := live.Forming(rq.series)
	if !ok || fb.Len() == 0 || !fb.Schema().Equal(f.Schema()) {
		return f
	}
	ts := fb.TS[fb.Len()-1]
	if !rq.want.Contains(ts) || (f.Len() > 0 && ts <= f.TS[f.Len()-1]) {
		return f
	}
	out := frame.New(f.Schema(), f.Len()+1)
	out.AppendRows(f, 0, f.Len())
	out.AppendRows(fb, fb.Len()-1, fb.Len())
	md.Rows, md.Forming = out.Len(), true
	md.Sources.Live++
	return out
}
