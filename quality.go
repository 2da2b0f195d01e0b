package seamless

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"sync"
	"time"

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

// lastReport keeps the provider's most recent conformance report.
type lastReport struct {
	mu  sync.Mutex
	rep conformance.Report
	ok  bool
}

// LastConformanceReport returns the report of the most recent response that ran the
// conformance pipeline, blocked or not.
func (p *Provider) LastConformanceReport() (conformance.Report, bool) {
	p.last.mu.Lock()
	defer p.last.mu.Unlock()
	return p.last.rep, p.last.ok
}

func (p *Provider) conformanceOptions(pl plan, r grid.Range) conformance.Options {
	opts, _ := conformance.OptionsFor(pl.node.Kind, pl.series.Interval)
	opts.Range = r
	return opts
}

// check runs the conformance pipeline on a response frame, records the report and
// fills the metadata. It returns the normalised frame, or *conformance.PipelineError
// when the policy blocks and partial_ok is off.
//
// prechecked says f is exactly the grid points of pl.closed, all from cached chunks the
// pipeline found clean when they were cached: the pass would find nothing and return f
// itself, so its clean report is used without running it again.
func (p *Provider) check(ctx context.Context, pl plan, f *frame.Frame, cov grid.Set, policy conformance.Policy, partialOK, prechecked bool, md *Metadata) (*frame.Frame, error) {
	ctx, span := p.tracer.Start(ctx, "seamless.conformance", trace.WithAttributes(attribute.Int("rows", f.Len()), attribute.Bool("prechecked", prechecked)))
	defer span.End()
	out, rep := f, conformance.Empty()
	if !prechecked {
		opts := p.conformanceOptions(pl, pl.closed)
		// Covered grid points without bars are market gaps: still reported as gap, and
		// counted as known_gap so consumers can tell them from holes.
		opts.KnownGaps = cov.IntersectRange(pl.closed)
		var err error
		if out, rep, err = conformance.Run(conformance.Input{Frame: f}, opts); err != nil {
			return nil, err
		}
	}
	md.ConformanceFlags, md.ConformanceWarnings, md.ConformanceVersion = rep.FlagsCounts, rep.Warnings, ConformanceVersion
	p.last.mu.Lock()
	p.last.rep, p.last.ok = rep, true
	p.last.mu.Unlock()
	p.obs.Conformance(pl.series, rep)
	p.archive(ctx, pl.series, pl.want, rep)
	if blocking := policy.Blocking(rep); policy.Refuses(blocking, partialOK) {
		return nil, &conformance.PipelineError{Report: rep, Blocking: blocking}
	}
	if p.schemas != nil {
		res, err := p.schemas.Validate(ctx, pl.series.NodeID, out)
		if err != nil {
			return nil, err
		}
		if res.SchemaID != 0 {
			md.SchemaID, md.SchemaVersion = res.SchemaID, res.Version
		}
	}
	return out, nil
}

// archive records rep in the report archive: every report with findings, and a clean
// one when the series' last archived report had findings (or the process has not
// archived one for it yet), so that the regression digest sees findings go away and a
// flag that comes back counts as new — without a write for every clean answer.
func (p *Provider) archive(ctx context.Context, s Series, r grid.Range, rep conformance.Report) {
	if p.reports == nil {
		return
	}
	clean := rep.Clean()
	// The common case, a clean answer after a clean report, takes no lock. (Two answers
	// racing over a transition may both record it: the digest then sees one state twice.)
	if last, ok := p.archivedClean.Load(s); clean && ok && last.(bool) {
		return
	}
	p.archivedClean.Store(s, clean)
	if err := p.reports.Archive(ctx, s, r, rep); err != nil {
		p.log.WarnContext(ctx, "seamless.conformance.archive_failed", "node_id", s.NodeID, "err", err)
	}
}

// normalizeFetched runs the pipeline on upstream data before it is stored, so storage
// only ever holds normalised bars (cast, sorted, unique, on the grid, inside r). The
// findings are archived; blocking is decided when the data is served.
func (p *Provider) normalizeFetched(ctx context.Context, pl plan, r grid.Range, f *frame.Frame) (*frame.Frame, error) {
	out, rep, err := conformance.Run(conformance.Input{Frame: f}, p.conformanceOptions(pl, grid.Range{}))
	if err != nil {
		return nil, Permanent(err)
	}
	if !rep.Clean() {
		p.obs.Conformance(pl.series, rep)
		p.archive(ctx, pl.series, r, rep)
	}
	// Keep only what lies in the fetched range: the pipeline checked the grid.
	if lo, hi := out.SearchTS(r.Start), out.SearchTS(r.End); lo != 0 || hi != out.Len() {
		out = out.Slice(lo, hi)
	}
	return out, nil
}
