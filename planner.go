package seamless

import (
	"time"

	"github.com/seamless-data/seamless/grid"
)

// The planner: pure functions from what a request asks and what the store holds to what
// the tiers should do. They read no clock, store or network, so the planning matrix
// (strategy × domain × on_violation × coverage) is tested as data (testdata/planner),
// and the executor (fetch.go) only carries the plan out:
//
//	gate        domain policy and the instant the data is seen at, before any I/O
//	planLive    whether to wait for the newest bar from the live tier
//	planFetch   from the coverage: read, backfill synchronously, schedule, or refuse
//	settle      a synchronous backfill's outcome folded into the answer
//	judge       coverage and freshness against the policy, and the final downgrade
//
// To add a strategy: a case in planFetch and a testdata file that exercises it.

// gate applies the execution domain's policy before any I/O (SPEC §5) and returns the
// instant the request sees the data at: now, or as_of for point-in-time domains (no bar
// closed after as_of is served: no look-ahead).
func gate(req Request, domain Domain, artifacts bool, now time.Time) (time.Time, error) {
	if !domain.pointInTime() {
		return now, nil
	}
	if req.AsOf.IsZero() {
		return time.Time{}, &SeamlessDomainPolicyError{Domain: domain, NodeID: req.NodeID, Reason: "as_of is required for backtest/dryrun domains"}
	}
	if !artifacts {
		return time.Time{}, &SeamlessDomainPolicyError{Domain: domain, NodeID: req.NodeID, Reason: "backtest/dryrun need artifact-backed data, and no artifact registrar is configured"}
	}
	if req.AsOf.Before(now) {
		return req.AsOf, nil
	}
	return now, nil
}

// liveStep is what the live tier is asked before the storage read.
type liveStep struct {
	// subscribe: the request reaches the newest bars, so the series' feed should run.
	subscribe bool
	// wait for the bar at ts to close and be stored, so the storage read serves it and
	// no REST call is needed for it.
	wait bool
	ts   int64
}

// planLive decides the live_wait phase of a request on a series the live tier serves.
// Only seamless requests in domains that are not point-in-time use the live tier; a
// historical request (ending before the newest closed bar) needs nothing from it.
func planLive(strategy Strategy, domain Domain, rq resolved, now time.Time) liveStep {
	if strategy != Seamless || domain.pointInTime() {
		return liveStep{}
	}
	iv := rq.series.Interval
	closedEnd := ClosedEnd(now.Unix(), iv)
	if rq.want.End <= closedEnd-iv {
		return liveStep{}
	}
	last := closedEnd - iv
	return liveStep{subscribe: true, wait: rq.closed.Contains(last), ts: last}
}

// planInput is what planFetch decides from.
type planInput struct {
	rq        resolved
	strategy  Strategy
	policy    SLAPolicy
	partialOK bool
	// cov is the series' stored coverage, read in the storage phase.
	cov grid.Set
	// storageViolated: a budget ran out during the storage phase and the policy did
	// not fail the request (partial_fill or hold).
	storageViolated bool
}

// plan is what the executor does after the storage phase.
type plan struct {
	// missing is the closed grid points of the request the store does not cover.
	missing grid.Set
	// refuse, when set, is the answer: nothing is read or fetched.
	refuse error
	// violation is a budget the plan itself breaks before any upstream call (sync_gap);
	// under fail_fast refuse carries it as *SeamlessSLAExceeded.
	violation *SLAViolation
	// backfill is fetched synchronously within the backfill budget before reading.
	backfill grid.Set
	// schedule is handed to background backfill (partial_fill); the answer serves what
	// is stored now.
	schedule grid.Set
}

// planFetch decides, from the coverage, how a request is answered (SPEC §2, §4).
func planFetch(in planInput) plan {
	pl := plan{missing: in.cov.Missing(in.rq.closed)}
	if pl.missing.Empty() {
		return pl // covered: read it
	}
	mode := in.policy.mode()
	if in.storageViolated {
		// A budget ran out before the backfill could start: answer with what is stored,
		// and under partial_fill fill the rest in the background.
		if in.strategy != FailFast && mode == ViolationPartialFill {
			pl.schedule = pl.missing
		}
		return pl
	}
	switch in.strategy {
	case FailFast:
		if !in.partialOK {
			pl.refuse = &NotCoveredError{Series: in.rq.series, Missing: pl.missing}
		}
	case PartialFill:
		pl.schedule = pl.missing
	case AutoBackfill, Seamless:
		gap := pl.missing.Bars(in.rq.series.Interval)
		if budget := in.policy.MaxSyncGapBars; budget > 0 && gap > budget {
			// Too much to backfill inline: judged before any upstream call.
			pl.violation = &SLAViolation{Phase: PhaseSyncGap, MissingBars: gap, BudgetBars: budget}
			if mode == ViolationFailFast {
				pl.refuse = &SeamlessSLAExceeded{NodeID: in.rq.series.NodeID, SLAViolation: *pl.violation}
				return pl
			}
			pl.schedule = pl.missing
			return pl
		}
		pl.backfill = pl.missing
	}
	return pl
}

// backfillOutcome is how a synchronous backfill ended, as the executor saw it.
type backfillOutcome struct {
	run backfillRun
	// detached: the backfill budget ran out (partial_fill or hold) and the work goes on
	// in the background.
	detached bool
}

// settle folds a synchronous backfill's outcome into the answer's backfill metadata, or
// returns the error that answers the request: a failed chunk fails it unless partial_ok.
// chunks are the aligned chunks of the backfilled set (what a detached backfill still
// works on).
func settle(out backfillOutcome, partialOK bool, chunks []grid.Range) (BackfillInfo, error) {
	info := BackfillInfo{Chunks: out.run.chunks, Waited: out.run.waited, FetchedBars: out.run.bars, Scheduled: []grid.Range{}}
	if out.detached {
		info.Scheduled = chunks
	}
	if out.run.err != nil {
		if !partialOK {
			return BackfillInfo{}, out.run.err
		}
		info.Failed = out.run.failed
	}
	return info, nil
}

// judge checks coverage and freshness against the policy (SPEC §4): breaches give hold.
func judge(req Request, policy SLAPolicy, domain Domain, md *Metadata, now time.Time) []decision {
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

// verdict sets the answer's downgrade from the decisions collected (as_of regression
// first), the SLA violation if any, and the judged coverage and freshness.
func verdict(md *Metadata, req Request, policy SLAPolicy, domain Domain, now time.Time, violation *SLAViolation, early []decision) (decision, bool) {
	ds := early
	if violation != nil {
		ds = append([]decision{{policy.mode(), ReasonSLAViolation}}, ds...)
		md.SLAViolation = violation
	}
	ds = append(ds, judge(req, policy, domain, md, now)...)
	d, ok := merge(ds)
	if ok {
		md.Downgraded, md.DowngradeMode, md.DowngradeReason = true, d.mode, d.reason
	}
	return d, ok
}
