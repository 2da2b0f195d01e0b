package seamless_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

// hangingFetcher blocks every call until released or cancelled, reporting each entry.
type hangingFetcher struct {
	entered  chan struct{}
	release  chan struct{}
	canceled chan struct{}
}

func newHanging() *hangingFetcher {
	return &hangingFetcher{entered: make(chan struct{}, 100), release: make(chan struct{}), canceled: make(chan struct{}, 100)}
}

func (h *hangingFetcher) Fetch(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	h.entered <- struct{}{}
	select {
	case <-h.release:
		return demo.Bars(s.NodeID, s.Interval, r), nil
	case <-ctx.Done():
		h.canceled <- struct{}{}
		return nil, ctx.Err()
	}
}

type fetchOutcome struct {
	res seamless.Result
	err error
}

// fetchAsync starts a Fetch and, once the source has been entered, advances the fake
// clock by d so that budgets expire.
func fetchAsync(t *testing.T, e *env, h *hangingFetcher, r seamless.Request, d time.Duration) fetchOutcome {
	t.Helper()
	out := make(chan fetchOutcome, 1)
	go func() {
		res, err := e.p.Fetch(context.Background(), r)
		out <- fetchOutcome{res, err}
	}()
	select {
	case <-h.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("source never called")
	}
	e.clock.Advance(d)
	select {
	case o := <-out:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("Fetch did not return at its deadline")
	}
	return fetchOutcome{}
}

func slaReq(mode seamless.OnViolation) seamless.Request {
	r := req(day(1), day(1)+3600, seamless.Seamless)
	r.SLA = &seamless.SLAPolicy{MaxWaitBackfillMS: 1000, OnViolation: mode}
	return r
}

func TestSLAHungSourceCancelledAtDeadline(t *testing.T) {
	h := newHanging()
	e := newEnv(t, seamless.Config{Sources: seamless.Sources{"demo": h}})
	o := fetchAsync(t, e, h, slaReq(seamless.ViolationFailFast), 1001*time.Millisecond)
	var se *seamless.SeamlessSLAExceeded
	if !errors.As(o.err, &se) || se.Phase != seamless.PhaseBackfill || se.BudgetMS != 1000 || seamless.ErrorCode(o.err) != "sla_exceeded" {
		t.Fatalf("err = %v, want backfill_wait violation", o.err)
	}
	want := "SLA phase 'backfill_wait' exceeded for node " + node + ": elapsed=1001.0ms budget=1000ms"
	if o.err.Error() != want {
		t.Fatalf("message %q, want %q", o.err.Error(), want)
	}
	select {
	case <-h.canceled:
	case <-time.After(5 * time.Second):
		t.Fatal("the hung source was not cancelled")
	}
	if l, _ := e.coord.Inspect(context.Background()); len(l) != 0 {
		t.Fatalf("leases held after the violation: %v", l)
	}
}

func TestSLAPartialFillKeepsBackfilling(t *testing.T) {
	h := newHanging()
	e := newEnv(t, seamless.Config{Sources: seamless.Sources{"demo": h}})
	o := fetchAsync(t, e, h, slaReq(seamless.ViolationPartialFill), 1001*time.Millisecond)
	if o.err != nil {
		t.Fatal(o.err)
	}
	md := o.res.Metadata
	if !md.Downgraded || md.DowngradeMode != seamless.ViolationPartialFill || md.DowngradeReason != "sla_violation" ||
		md.SLAViolation == nil || md.SLAViolation.Phase != seamless.PhaseBackfill || len(md.Backfill.Scheduled) == 0 {
		t.Fatalf("metadata %+v", md)
	}
	if md.SLAPhases[seamless.PhaseBackfill] < 1000 {
		t.Fatalf("sla_phases %v", md.SLAPhases)
	}
	close(h.release) // the upstream recovers: the detached backfill completes
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := e.p.Fetch(context.Background(), req(day(1), day(1)+3600, seamless.FailFast))
		if err == nil {
			checkFrame(t, res.Frame, grid.R(day(1), day(1)+3600), 60)
			if res.Metadata.Downgraded {
				t.Fatalf("complete fetch downgraded: %+v", res.Metadata)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background backfill never completed: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stallingStore makes its first Coverage call wait until its context ends.
type stallingStore struct {
	seamless.Store
	once    sync.Once
	entered chan struct{}
}

func (s *stallingStore) Coverage(ctx context.Context, ser seamless.Series) (grid.Set, error) {
	stall := false
	s.once.Do(func() { stall = true })
	if stall {
		s.entered <- struct{}{}
		<-ctx.Done()
		return grid.Set{}, ctx.Err()
	}
	return s.Store.Coverage(ctx, ser)
}

// TestSLAPartialFillAfterStorageWait: when storage_wait runs out under partial_fill, the
// answer comes back with what is ready and the missing range is still backfilled in the
// background (SPEC §4), not dropped.
func TestSLAPartialFillAfterStorageWait(t *testing.T) {
	st := &stallingStore{Store: memstore.New(), entered: make(chan struct{}, 1)}
	fc := clock.NewFake(t0)
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": &countingFetcher{}}, Clock: fc, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	r := req(day(1), day(1)+3600, seamless.Seamless)
	r.SLA = &seamless.SLAPolicy{MaxWaitStorageMS: 1000, OnViolation: seamless.ViolationPartialFill}
	out := make(chan fetchOutcome, 1)
	go func() {
		res, err := p.Fetch(context.Background(), r)
		out <- fetchOutcome{res, err}
	}()
	<-st.entered
	fc.Advance(1001 * time.Millisecond)
	o := <-out
	if o.err != nil {
		t.Fatal(o.err)
	}
	md := o.res.Metadata
	if !md.Downgraded || md.DowngradeMode != seamless.ViolationPartialFill || md.SLAViolation == nil ||
		md.SLAViolation.Phase != seamless.PhaseStorage || len(md.Backfill.Scheduled) == 0 {
		t.Fatalf("metadata %+v", md)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := p.Fetch(context.Background(), req(day(1), day(1)+3600, seamless.FailFast))
		if err == nil {
			checkFrame(t, res.Frame, grid.R(day(1), day(1)+3600), 60)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduled backfill never completed: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSLAHoldReturnsData(t *testing.T) {
	h := newHanging()
	e := newEnv(t, seamless.Config{Sources: seamless.Sources{"demo": h}})
	o := fetchAsync(t, e, h, slaReq(seamless.ViolationHold), 1001*time.Millisecond)
	if o.err != nil {
		t.Fatal(o.err)
	}
	if md := o.res.Metadata; !md.Downgraded || md.DowngradeMode != seamless.ViolationHold || md.DowngradeReason != "sla_violation" {
		t.Fatalf("metadata %+v", md)
	}
	close(h.release)
}

func TestSLATotalDeadline(t *testing.T) {
	h := newHanging()
	e := newEnv(t, seamless.Config{Sources: seamless.Sources{"demo": h}})
	r := req(day(1), day(1)+3600, seamless.AutoBackfill)
	r.SLA = &seamless.SLAPolicy{TotalDeadlineMS: 500}
	o := fetchAsync(t, e, h, r, 600*time.Millisecond)
	var se *seamless.SeamlessSLAExceeded
	if !errors.As(o.err, &se) || se.Phase != seamless.PhaseTotal || se.BudgetMS != 500 {
		t.Fatalf("err = %v, want total violation", o.err)
	}
}

func TestSLASyncGap(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	r := req(day(1), day(0), seamless.Seamless)
	r.SLA = &seamless.SLAPolicy{MaxSyncGapBars: 100}
	_, err := e.p.Fetch(context.Background(), r)
	var se *seamless.SeamlessSLAExceeded
	if !errors.As(err, &se) || se.Phase != seamless.PhaseSyncGap || se.MissingBars != 1440 || !strings.Contains(err.Error(), "missing=1440 bars budget=100 bars") {
		t.Fatalf("err = %v", err)
	}
	if len(e.fetch.Calls()) != 0 {
		t.Fatal("sync_gap violation still went upstream inline")
	}
	r.SLA.OnViolation = seamless.ViolationPartialFill
	res, err := e.p.Fetch(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if md := res.Metadata; !md.Downgraded || md.SLAViolation.Phase != seamless.PhaseSyncGap || len(md.Backfill.Scheduled) == 0 {
		t.Fatalf("metadata %+v", md)
	}
}

func TestCoverageAndFreshnessBreaches(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	half := grid.R(day(1), day(1)+43200)
	if err := e.store.Write(ctx, seamless.Write{Series: seamless.Series{NodeID: node, Interval: iv}, Range: half, Frame: demo.Bars(node, iv, half)}); err != nil {
		t.Fatal(err)
	}
	r := req(day(1), day(0), seamless.FailFast)
	r.PartialOK, r.MinCoverage = true, 0.9
	res, err := e.p.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if md := res.Metadata; md.DowngradeMode != seamless.ViolationHold || md.DowngradeReason != "coverage_breach" {
		t.Fatalf("metadata %+v", md)
	}
	// The data ends 12 h before now: a request reaching to now is stale.
	r = req(day(1), half.End, seamless.FailFast)
	r.MaxLagSeconds = 45
	if res, err = e.p.Fetch(ctx, r); err != nil {
		t.Fatal(err)
	}
	if res.Metadata.DowngradeReason != "" {
		t.Fatalf("historical request judged on freshness: %+v", res.Metadata)
	}
	r.ExecutionDomain = "production" // live domains always care about freshness
	if res, err = e.p.Fetch(ctx, r); err != nil {
		t.Fatal(err)
	}
	if md := res.Metadata; md.DowngradeReason != "freshness_breach" || md.ExecutionDomain != seamless.DomainLive {
		t.Fatalf("metadata %+v", md)
	}
}

func TestSLAPresetsAndValidation(t *testing.T) {
	b, err := seamless.SLAPreset("baseline")
	if err != nil {
		t.Fatal(err)
	}
	want := seamless.SLAPolicy{MaxWaitStorageMS: 3000, MaxWaitBackfillMS: 45000, MaxWaitLiveMS: 5000, TotalDeadlineMS: 60000, MinCoverage: 0.98, MaxLagSeconds: 45, OnViolation: seamless.ViolationFailFast}
	if b != want {
		t.Fatalf("baseline = %+v", b)
	}
	tp, _ := seamless.SLAPreset("tolerant-partial")
	if tp.TotalDeadlineMS != 90000 || tp.OnViolation != seamless.ViolationPartialFill || tp.MinCoverage != 0.9 {
		t.Fatalf("tolerant-partial = %+v", tp)
	}
	if _, err := seamless.SLAPreset("nope"); seamless.ErrorCode(err) != "bad_request" {
		t.Fatalf("unknown preset: %v", err)
	}
	e := newEnv(t, seamless.Config{})
	for _, p := range []seamless.SLAPolicy{{MinCoverage: 1.5}, {MaxLagSeconds: -1}, {TotalDeadlineMS: -1}, {OnViolation: "panic"}} {
		r := req(day(1), day(0), "")
		r.SLA = &p
		if _, err := e.p.Fetch(context.Background(), r); seamless.ErrorCode(err) != "bad_request" {
			t.Errorf("policy %+v: %v", p, err)
		}
	}
	// Per-request overrides are validated too, whatever the policy.
	for _, o := range []struct {
		field    string
		cov, lag float64
	}{{"min_coverage", -0.5, 0}, {"min_coverage", 1.5, 0}, {"min_coverage", math.NaN(), 0}, {"max_lag_seconds", 0, -1},
		{"max_lag_seconds", 0, math.Inf(1)}, {"max_lag_seconds", 0, math.NaN()}} {
		r := req(day(1), day(0), "")
		r.MinCoverage, r.MaxLagSeconds = o.cov, o.lag
		_, err := e.p.Fetch(context.Background(), r)
		var re *seamless.RequestError
		if !errors.As(err, &re) || re.Field != o.field {
			t.Errorf("min_coverage %v, max_lag_seconds %v: %v, want a bad %s", o.cov, o.lag, err, o.field)
		}
	}
	var v seamless.OnViolation
	if err := v.UnmarshalText([]byte("explode")); err == nil {
		t.Fatal("bad on_violation accepted")
	}
}

func TestExecutionDomains(t *testing.T) {
	reg := artifact.NewDirRegistrar(t.TempDir(), nil)
	e := newEnv(t, seamless.Config{Artifacts: artifact.Publisher(reg, "test")})
	ctx := context.Background()
	for _, alias := range []string{"backtest", "Backtesting", "offline", "paper", "sim"} {
		r := req(day(2), day(1), "")
		r.ExecutionDomain = alias
		_, err := e.p.Fetch(ctx, r)
		var de *seamless.SeamlessDomainPolicyError
		if !errors.As(err, &de) || seamless.ErrorCode(err) != "domain_policy" || !strings.Contains(err.Error(), "as_of is required") {
			t.Fatalf("%s without as_of: %v", alias, err)
		}
	}
	if len(e.fetch.Calls()) != 0 {
		t.Fatal("domain gate did I/O")
	}
	r := req(day(2), day(1), "")
	r.ExecutionDomain = "moon"
	if _, err := e.p.Fetch(ctx, r); seamless.ErrorCode(err) != "bad_request" {
		t.Fatalf("unknown domain: %v", err)
	}
	// Backtest as of noon sees only bars closed by noon: no look-ahead.
	r = req(day(2), day(1), "")
	r.ExecutionDomain, r.AsOf = "backtest", time.Unix(day(2)+43200+30, 0)
	res, err := e.p.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Frame.Len(); n != 720 || res.Frame.TS[n-1] != day(2)+43200-60 || res.Metadata.CoverageRatio != 1 {
		t.Fatalf("backtest as_of served %d bars, ratio %v", n, res.Metadata.CoverageRatio)
	}
	for range 2 { // the second fetch reads cached chunks, some past as_of: tiers still add up
		res, err := e.p.Fetch(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if src := res.Metadata.Sources; src.Cache+src.Storage+src.Backfill+src.Live != res.Frame.Len() {
			t.Fatalf("backtest tiers %+v do not add up to %d rows", src, res.Frame.Len())
		}
	}
	// The response is artifact-backed: published, fingerprinted, and replayable.
	md := res.Metadata
	if !strings.HasPrefix(md.ManifestURI, "file://") || !strings.HasPrefix(md.DatasetFingerprint, "sha256:") {
		t.Fatalf("artifact metadata: %+v", md)
	}
	m, replay, err := reg.Get(ctx, node, md.DatasetFingerprint)
	if err != nil || replay.Len() != 720 || m.AsOf.Unix() != r.AsOf.Unix() {
		t.Fatalf("artifact replay: %v, %d rows, %+v", err, replay.Len(), m)
	}
	again, err := e.p.Fetch(ctx, r)
	if err != nil || again.Metadata.DatasetFingerprint != md.DatasetFingerprint {
		t.Fatalf("same backtest, different fingerprint: %v %s", err, again.Metadata.DatasetFingerprint)
	}
	noReg := newEnv(t, seamless.Config{})
	if _, err := noReg.p.Fetch(ctx, r); seamless.ErrorCode(err) != "domain_policy" {
		t.Fatalf("backtest without a registrar: %v", err)
	}
	// Live: as_of must not go back per (world, node).
	r = req(day(2), day(1), "")
	r.ExecutionDomain, r.WorldID, r.AsOf = "live", "w1", t0
	if res, err = e.p.Fetch(ctx, r); err != nil || res.Metadata.Downgraded {
		t.Fatalf("first live fetch: %v %+v", err, res.Metadata)
	}
	r.AsOf = t0.Add(-time.Minute)
	if res, err = e.p.Fetch(ctx, r); err != nil || res.Metadata.DowngradeReason != "as_of_regression" || res.Metadata.DowngradeMode != seamless.ViolationHold {
		t.Fatalf("as_of regression: %v %+v", err, res.Metadata)
	}
	r.WorldID = "w2" // another world has its own clock
	if res, err = e.p.Fetch(ctx, r); err != nil || res.Metadata.Downgraded {
		t.Fatalf("other world: %v %+v", err, res.Metadata)
	}
}

// hangOnce hangs its first call until that call's context ends, then serves demo bars.
type hangOnce struct {
	calls   atomic.Int32
	entered chan struct{}
}

func (h *hangOnce) Fetch(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	if h.calls.Add(1) == 1 {
		h.entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return demo.Bars(s.NodeID, s.Interval, r), nil
}

// TestHungUpstreamAttemptTimesOut: an upstream call that never answers is cancelled at
// the attempt timeout and retried, so the chunk completes instead of its lease being
// renewed forever.
func TestHungUpstreamAttemptTimesOut(t *testing.T) {
	h := &hangOnce{entered: make(chan struct{}, 1)}
	e := newEnv(t, seamless.Config{Sources: seamless.Sources{"demo": h},
		Backfill: seamless.BackfillConfig{AttemptTimeout: 30 * time.Second, RetryBackoff: time.Second}})
	out := make(chan fetchOutcome, 1)
	go func() {
		res, err := e.p.Fetch(context.Background(), req(day(1), day(1)+3600, seamless.AutoBackfill))
		out <- fetchOutcome{res, err}
	}()
	<-h.entered
	e.clock.Advance(30 * time.Second) // the attempt times out
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) { // then the retry's backoff passes
		select {
		case o := <-out:
			if o.err != nil {
				t.Fatal(o.err)
			}
			checkFrame(t, o.res.Frame, grid.R(day(1), day(1)+3600), 60)
			if n := h.calls.Load(); n != 2 {
				t.Fatalf("%d upstream calls, want 2", n)
			}
			return
		case <-time.After(time.Millisecond):
			e.clock.Advance(100 * time.Millisecond)
		}
	}
	t.Fatal("the hung upstream call was never given up")
}
