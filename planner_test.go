package seamless

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// TestPlanner runs the planning matrix as data: each file under testdata/planner holds
// requests (strategy, domain, SLA, coverage, and how the tiers' work turns out) and the
// plan and answer the pure planner gives. The executor is simulated: a synchronous
// backfill covers what it was given (backfill=ok), fails every chunk (failed) or runs out
// of its budget (detached); a storage phase can run out of its budget (storage=violated).
// Every covered closed grid point holds a bar except those in empty=.
//
// Rewrite the expected output after a deliberate change with
// go test . -run TestPlanner -rewrite.
func TestPlanner(t *testing.T) {
	datadriven.Walk(t, "testdata/planner", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "fetch" {
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			return simulateFetch(t, d)
		})
	})
}

// plannerArgs are a fetch command's arguments.
type plannerArgs struct {
	req        Request
	now        int64
	covered    grid.Set
	empty      grid.Set
	storage    string // ok | violated
	backfill   string // ok | failed | detached
	artifacts  bool
	regression bool // a later as_of was already seen for (world, node)
	windowBars int64
}

func parsePlannerArgs(t *testing.T, d *datadriven.TestData) plannerArgs {
	a := plannerArgs{req: Request{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}, storage: "ok", backfill: "ok", windowBars: 10}
	policy := SLAPolicy{}
	for _, arg := range d.CmdArgs {
		val := ""
		if len(arg.Vals) > 0 {
			val = arg.Vals[0]
		}
		num := func() int64 {
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				d.Fatalf(t, "%s=%q: %v", arg.Key, val, err)
			}
			return n
		}
		flt := func() float64 {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				d.Fatalf(t, "%s=%q: %v", arg.Key, val, err)
			}
			return v
		}
		switch arg.Key {
		case "strategy":
			a.req.Strategy = Strategy(val)
		case "domain":
			a.req.ExecutionDomain = val
		case "world":
			a.req.WorldID = val
		case "as_of":
			a.req.AsOf = time.Unix(num(), 0)
		case "start":
			a.req.Start = num()
		case "end":
			a.req.End = num()
		case "now":
			a.now = num()
		case "partial_ok":
			a.req.PartialOK = true
		case "covered":
			a.covered = parseSet(t, d, arg.Vals)
		case "empty":
			a.empty = parseSet(t, d, arg.Vals)
		case "storage":
			a.storage = val
		case "backfill":
			a.backfill = val
		case "artifacts":
			a.artifacts = true
		case "as_of_regression":
			a.regression = true
		case "on_violation":
			policy.OnViolation = OnViolation(val)
		case "max_sync_gap_bars":
			policy.MaxSyncGapBars = num()
		case "min_coverage":
			policy.MinCoverage = flt()
		case "max_lag":
			policy.MaxLagSeconds = flt()
		case "window_bars":
			a.windowBars = num()
		default:
			d.Fatalf(t, "unknown argument %q", arg.Key)
		}
	}
	a.req.SLA = &policy
	return a
}

// parseSet reads ranges written start-end.
func parseSet(t *testing.T, d *datadriven.TestData, vals []string) grid.Set {
	var s grid.Set
	for _, v := range vals {
		lo, hi, ok := strings.Cut(v, "-")
		a, err1 := strconv.ParseInt(lo, 10, 64)
		b, err2 := strconv.ParseInt(hi, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			d.Fatalf(t, "range %q: want start-end", v)
		}
		s = s.Add(grid.R(a, b))
	}
	return s
}

// simulateFetch runs the pure steps of a fetch in the executor's order and reports
// what each decided.
func simulateFetch(t *testing.T, d *datadriven.TestData) string {
	a := parsePlannerArgs(t, d)
	var out strings.Builder
	refuse := func(err error) string {
		fmt.Fprintf(&out, "refuse: %s: %v\n", ErrorCode(err), err)
		return out.String()
	}
	strategy, err := ParseStrategy(string(a.req.Strategy))
	if err != nil {
		return refuse(err)
	}
	domain, err := NormalizeDomain(a.req.ExecutionDomain)
	if err != nil {
		return refuse(err)
	}
	policy, err := requestPolicy(a.req)
	if err != nil {
		return refuse(err)
	}
	now, err := gate(a.req, domain, a.artifacts, time.Unix(a.now, 0))
	if err != nil {
		return refuse(err)
	}
	node, err := ParseNodeID(a.req.NodeID)
	if err != nil {
		d.Fatalf(t, "%v", err)
	}
	schema, _ := node.Schema()
	rq := resolved{series: Series{NodeID: a.req.NodeID, Interval: a.req.Interval}, node: node, schema: schema}.at(a.req.Range(), now)
	iv := rq.series.Interval
	width := a.windowBars * iv

	if ls := planLive(strategy, domain, rq, now); ls.wait {
		fmt.Fprintf(&out, "live: subscribe, wait for %d\n", ls.ts)
	} else if ls.subscribe {
		out.WriteString("live: subscribe\n")
	}

	var violation *SLAViolation
	violate := func(v SLAViolation) error {
		if violation == nil {
			violation = &v
		}
		if policy.mode() == ViolationFailFast {
			return &SeamlessSLAExceeded{NodeID: a.req.NodeID, SLAViolation: v}
		}
		return nil
	}
	if a.storage == "violated" {
		if err := violate(SLAViolation{Phase: PhaseStorage}); err != nil {
			return refuse(err)
		}
	}
	pl := planFetch(planInput{rq: rq, strategy: strategy, policy: policy, partialOK: a.req.PartialOK,
		cov: a.covered, storageViolated: a.storage == "violated"})
	fmt.Fprintf(&out, "plan: missing=%v backfill=%v schedule=%v\n", pl.missing, pl.backfill, pl.schedule)
	if pl.violation != nil {
		if err := violate(*pl.violation); err != nil && pl.refuse == nil {
			t.Fatal("a fail_fast violation the planner did not refuse")
		}
	}
	if pl.refuse != nil {
		return refuse(pl.refuse)
	}

	info := BackfillInfo{Scheduled: alignedChunks(pl.schedule, width)}
	if info.Scheduled == nil {
		info.Scheduled = []grid.Range{}
	}
	cov := a.covered
	var fetched grid.Set
	if !pl.backfill.Empty() {
		chunks := alignedChunks(pl.backfill, width)
		var o backfillOutcome
		switch a.backfill {
		case "ok":
			o.run = backfillRun{total: len(chunks), chunks: len(chunks), fetched: pl.backfill}
			for _, r := range pl.backfill.Ranges() {
				o.run.bars += int(r.Bars(iv) - a.empty.IntersectRange(r).Bars(iv))
			}
		case "failed":
			o.run = backfillRun{total: len(chunks), failed: chunks,
				err: &UpstreamError{Series: rq.series, Chunk: chunks[0], Attempts: 6, Err: errors.New("503 Service Unavailable")}}
		case "detached":
			o.detached = true
			if err := violate(SLAViolation{Phase: PhaseBackfill}); err != nil {
				return refuse(err)
			}
		default:
			d.Fatalf(t, "backfill=%q: want ok, failed or detached", a.backfill)
		}
		if info, err = settle(o, a.req.PartialOK, chunks); err != nil {
			return refuse(err)
		}
		cov, fetched = cov.Union(o.run.fetched), o.run.fetched
	}

	// The bars stored: every covered closed grid point of the request, but market gaps.
	f := frame.New(schema, 0)
	for ts := rq.closed.Start; ts < rq.closed.End; ts += iv {
		if cov.Contains(ts) && !a.empty.Contains(ts) {
			f.TS = append(f.TS, ts)
			for i := range f.Cols {
				f.Cols[i].F64 = append(f.Cols[i].F64, 1)
			}
		}
	}
	md := Metadata{Backfill: info}
	describe(&md, rq, f, cov, fetched, now)
	var early []decision
	if a.regression {
		early = append(early, decision{ViolationHold, ReasonAsOfRegression})
	}
	verdict(&md, a.req, policy, domain, now, violation, early)

	fmt.Fprintf(&out, "answer: rows=%d coverage_ratio=%.4g staleness_ms=%s sources=%+v\n", md.Rows, md.CoverageRatio, msString(md.StalenessMS), md.Sources)
	fmt.Fprintf(&out, "backfill: chunks=%d fetched_bars=%d scheduled=%v failed=%v\n", md.Backfill.Chunks, md.Backfill.FetchedBars, md.Backfill.Scheduled, md.Backfill.Failed)
	if md.Downgraded {
		fmt.Fprintf(&out, "downgrade: %s (%s)\n", md.DowngradeMode, md.DowngradeReason)
	}
	if v := md.SLAViolation; v != nil {
		fmt.Fprintf(&out, "sla_violation: %s\n", v.Phase)
	}
	return out.String()
}

func msString(ms *int64) string {
	if ms == nil {
		return "null"
	}
	return strconv.FormatInt(*ms, 10)
}

// TestPlanFetchTotal: every strategy, on_violation and coverage case gives exactly one
// of refuse, backfill, schedule or a plain read, and never backfills or schedules what
// is covered.
func TestPlanFetchTotal(t *testing.T) {
	rq := resolved{series: Series{NodeID: "ohlcv:demo:X:1m", Interval: 60}}.at(grid.R(0, 6000), time.Unix(6000, 0))
	covs := []grid.Set{{}, grid.NewSet(grid.R(0, 6000)), grid.NewSet(grid.R(0, 600), grid.R(3000, 3600))}
	for _, strategy := range []Strategy{Seamless, FailFast, AutoBackfill, PartialFill} {
		for _, mode := range []OnViolation{ViolationFailFast, ViolationPartialFill, ViolationHold} {
			for _, gap := range []int64{0, 5, 1000} {
				for _, cov := range covs {
					for _, violated := range []bool{false, true} {
						for _, partialOK := range []bool{false, true} {
							in := planInput{rq: rq, strategy: strategy, policy: SLAPolicy{OnViolation: mode, MaxSyncGapBars: gap},
								partialOK: partialOK, cov: cov, storageViolated: violated}
							pl := planFetch(in)
							acts := 0
							for _, on := range []bool{pl.refuse != nil, !pl.backfill.Empty(), !pl.schedule.Empty()} {
								if on {
									acts++
								}
							}
							if acts > 1 {
								t.Errorf("%+v: more than one action: %+v", in, pl)
							}
							if !pl.backfill.Intersect(cov).Empty() || !pl.schedule.Intersect(cov).Empty() {
								t.Errorf("%+v: plans work on covered data: %+v", in, pl)
							}
							if !slices.Equal(pl.missing.Ranges(), cov.Missing(rq.closed).Ranges()) {
								t.Errorf("%+v: missing %v", in, pl.missing)
							}
							if strategy == FailFast && (!pl.backfill.Empty() || !pl.schedule.Empty()) {
								t.Errorf("%+v: fail_fast never backfills: %+v", in, pl)
							}
						}
					}
				}
			}
		}
	}
}
