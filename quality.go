package seamless

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/fingerprint"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// ConformanceVersion is the version of the conformance rules reported in metadata.
const ConformanceVersion = fingerprint.ConformanceVersion

// ReportSink archives conformance reports (the embedded default writes JSON lines per
// series under the data dir; see internal/reportlog).
type ReportSink interface {
	Archive(ctx context.Context, s Series, r grid.Range, rep conformance.Report) error
}

// ArtifactPublisher stores a response as an immutable, fingerprinted artifact (package
// artifact provides directory and S3 implementations). backtest and dryrun responses
// are artifact-backed, so a run can be replayed from exactly the data it saw.
type ArtifactPublisher interface {
	Publish(ctx context.Context, a ArtifactRequest) (uri string, err error)
}

// ArtifactRequest is what a response contributes to an artifact.
type ArtifactRequest struct {
	Series           Series
	Range            grid.Range
	Frame            *frame.Frame
	AsOf             time.Time
	ConformanceFlags map[string]int
}

// SchemaValidator checks a response against the approved schema of its node (package
// schemaregistry). A node without an approved schema validates as zero SchemaResult
// and no error; in strict mode a deviating payload is an error whose Code() is
// schema_violation; in canary mode deviations are recorded and served.
type SchemaValidator interface {
	Validate(ctx context.Context, nodeID string, f *frame.Frame) (SchemaResult, error)
}

// SchemaResult names the approved schema a response was validated against.
type SchemaResult struct {
	SchemaID int64
	Version  int
}

// quality is the provider's quality tier: it runs the conformance pipeline on answers,
// validates them against the schema registry, and counts and archives reports.
type quality struct {
	reports ReportSink      // nil: not archived
	schemas SchemaValidator // nil: not validated
	obs     QualityObserver
	tracer  trace.Tracer
	log     *slog.Logger

	last lastReport
	// archivedClean says, per series, whether the last report this process archived
	// was clean (see archive).
	archivedClean sync.Map // Series → bool
}

// lastReport keeps the provider's most recent conformance report.
type lastReport struct {
	mu  sync.Mutex
	rep conformance.Report
	ok  bool
}

// LastConformanceReport returns the report of the most recent response that ran the
// conformance pipeline, blocked or not.
func (p *Provider) LastConformanceReport() (conformance.Report, bool) {
	q := p.quality
	q.last.mu.Lock()
	defer q.last.mu.Unlock()
	return q.last.rep, q.last.ok
}

// conformanceOptions are the pipeline's options for the series' kind and interval over r.
func conformanceOptions(rq resolved, r grid.Range) conformance.Options {
	opts, _ := conformance.OptionsFor(rq.node.Kind, rq.series.Interval)
	opts.Range = r
	return opts
}

// check runs the conformance pipeline on an answer over rq.closed, records the report
// and fills the metadata. It returns the normalised frame, or *conformance.PipelineError
// when the policy blocks and partial_ok is off. cov's covered grid points without bars
// are market gaps: still reported as gap, and counted as known_gap so consumers can tell
// them from holes.
//
// prechecked says f is exactly the grid points of rq.closed, all from cached chunks the
// pipeline found clean when they were cached: the pass would find nothing and return f
// itself, so its clean report is used without running it again.
func (q *quality) check(ctx context.Context, rq resolved, f *frame.Frame, cov grid.Set, policy conformance.Policy, partialOK, prechecked bool, md *Metadata) (*frame.Frame, error) {
	ctx, span := q.tracer.Start(ctx, "seamless.conformance", trace.WithAttributes(attribute.Int("rows", f.Len()), attribute.Bool("prechecked", prechecked)))
	defer span.End()
	out, rep := f, conformance.Empty()
	if !prechecked {
		opts := conformanceOptions(rq, rq.closed)
		opts.KnownGaps = cov.IntersectRange(rq.closed)
		var err error
		if out, rep, err = conformance.Run(conformance.Input{Frame: f}, opts); err != nil {
			return nil, err
		}
	}
	md.ConformanceFlags, md.ConformanceWarnings, md.ConformanceVersion = rep.FlagsCounts, rep.Warnings, ConformanceVersion
	q.last.mu.Lock()
	q.last.rep, q.last.ok = rep, true
	q.last.mu.Unlock()
	q.obs.Conformance(rq.series, rep)
	q.archive(ctx, rq.series, rq.want, rep)
	if blocking := policy.Blocking(rep); policy.Refuses(blocking, partialOK) {
		return nil, &conformance.PipelineError{Report: rep, Blocking: blocking}
	}
	if q.schemas != nil {
		res, err := q.schemas.Validate(ctx, rq.series.NodeID, out)
		if err != nil {
			return nil, err
		}
		if res.SchemaID != 0 {
			md.SchemaID, md.SchemaVersion = res.SchemaID, res.Version
		}
	}
	return out, nil
}

// report counts and archives the findings of data about to be stored.
func (q *quality) report(ctx context.Context, s Series, r grid.Range, rep conformance.Report) {
	q.obs.Conformance(s, rep)
	q.archive(ctx, s, r, rep)
}

// archive records rep in the report archive: every report with findings, and a clean
// one when the series' last archived report had findings (or the process has not
// archived one for it yet), so that the regression digest sees findings go away and a
// flag that comes back counts as new — without a write for every clean answer.
func (q *quality) archive(ctx context.Context, s Series, r grid.Range, rep conformance.Report) {
	if q.reports == nil {
		return
	}
	clean := rep.Clean()
	// The common case, a clean answer after a clean report, takes no lock. (Two answers
	// racing over a transition may both record it: the digest then sees one state twice.)
	if last, ok := q.archivedClean.Load(s); clean && ok && last.(bool) {
		return
	}
	q.archivedClean.Store(s, clean)
	if err := q.reports.Archive(ctx, s, r, rep); err != nil {
		q.log.WarnContext(ctx, "seamless.conformance.archive_failed", "node_id", s.NodeID, "err", err)
	}
}
