package seamless

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// The write path. Every bar that reaches the Store — backfilled, imported, or closed on a
// live feed — goes through one ingest step the provider owns:
//
//	normalise  the conformance pipeline (cast, sort, dedupe, grid), findings archived
//	write      bars and coverage in one Store write, fenced by the lease token
//	invalidate the cache tier's chunks the write touched
//	notify     the listeners registered with OnIngest (streaming, materialised rollups)
//
// so storage only ever holds normalised bars, the cache never serves what a write
// replaced, and a listener sees every write exactly when it becomes readable.
//
// Backfilled bars are written under their chunk's lease token. Live bars carry no
// lease (a claim per bar would cost a coordinator round trip per bar): they are written
// with token 0 and never overwrite covered history. Only the parts of a live write the
// store does not cover yet are written; bars there came from a fenced backfill, an
// import or an earlier live write, and stay.

// Origin names the part of the system a write came from.
type Origin string

// Origins of writes.
const (
	OriginBackfill Origin = "backfill"
	OriginImport   Origin = "import"
	OriginLive     Origin = "live"
)

// Ingested is one write that reached the store, as OnIngest listeners see it.
type Ingested struct {
	Series Series
	// Range is now covered; Frame holds the normalised bars written inside it (none for
	// a covered market gap). Listeners must not modify Frame.
	Range  grid.Range
	Frame  *frame.Frame
	Origin Origin
	// Token is the lease's fencing token (0 for live writes and imports).
	Token uint64
	// share is set on the copy the subscriptions' hub publishes (subscribe.go): the
	// events the write becomes, shared by subscriptions at the same cursor.
	share *writeShare
}

// LiveSink receives the closed bars of a live tier. *Provider implements it, so live
// bars take the one write path; package live writes through it.
type LiveSink interface {
	// IngestLive stores the closed bars of f, all inside r, and covers r. Parts of r
	// already covered are left as they are.
	IngestLive(ctx context.Context, s Series, r grid.Range, f *frame.Frame) error
}

// A SinkBinder is a LiveTier that writes closed bars (package live's Tier): New binds
// it to the provider it serves, so that its writes take the provider's ingest step.
type SinkBinder interface {
	BindSink(LiveSink)
}

// ingester is the provider's write path.
type ingester struct {
	store  Store
	cache  *barCache
	window int64 // window_bars: the cache's chunk width in bars

	// listeners is copied on write, so that a write notifies without a lock and a slow
	// listener never holds up a registration (or the other way round).
	mu        sync.Mutex // serialises registrations
	listeners atomic.Pointer[[]listener]
	nextID    uint64
}

type listener struct {
	id uint64
	fn func(Ingested)
}

// normalize runs the pipeline on bars about to be stored, with no range-dependent
// checks (grid points without bars are covered market gaps, not findings). The caller
// reports the findings. The frame returned may be f itself.
func normalize(rq resolved, f *frame.Frame) (*frame.Frame, conformance.Report, error) {
	if f.Len() == 0 {
		return f, conformance.Empty(), nil
	}
	return conformance.Run(conformance.Input{Frame: f}, conformanceOptions(rq, grid.Range{}))
}

// commit writes w (bars normalised by normalize), drops the cached chunks it touches,
// and notifies the listeners.
func (in *ingester) commit(ctx context.Context, w Write, origin Origin) error {
	err := in.store.Write(ctx, w)
	// Dropped even when the write failed: a store may have applied part of it.
	in.cache.invalidate(w.Series, w.Range, in.window*w.Series.Interval)
	if err != nil {
		return err
	}
	if ls := in.listeners.Load(); ls != nil && len(*ls) > 0 {
		ev := Ingested{Series: w.Series, Range: w.Range, Frame: w.Frame, Origin: origin, Token: w.Token}
		if ev.Frame == nil {
			ev.Frame = &frame.Frame{}
		}
		for _, l := range *ls {
			l.fn(ev)
		}
	}
	return nil
}

// OnIngest registers fn to be called after every write that reaches the store, from the
// writing goroutine, once the bars are readable. fn must be quick and must not block (a
// subscriber hub copies the event to its own queue). The returned function unregisters
// it; writes already under way when it returns may still call fn once.
func (p *Provider) OnIngest(fn func(Ingested)) (stop func()) {
	in := p.ingest
	in.mu.Lock()
	defer in.mu.Unlock()
	id := in.nextID
	in.nextID++
	in.swap(func(ls []listener) []listener { return append(ls, listener{id, fn}) })
	var once sync.Once
	return func() {
		once.Do(func() {
			in.mu.Lock()
			defer in.mu.Unlock()
			in.swap(func(ls []listener) []listener {
				return slices.DeleteFunc(ls, func(l listener) bool { return l.id == id })
			})
		})
	}
}

// swap replaces the listeners with edit applied to a copy of them. mu must be held.
func (in *ingester) swap(edit func([]listener) []listener) {
	var cur []listener
	if ls := in.listeners.Load(); ls != nil {
		cur = slices.Clone(*ls)
	}
	next := edit(cur)
	in.listeners.Store(&next)
}

// IngestLive implements LiveSink: the closed bars of a live feed are normalised and
// written with token 0 where the store does not cover them yet.
func (p *Provider) IngestLive(ctx context.Context, s Series, r grid.Range, f *frame.Frame) error {
	if p.isClosed() {
		return ErrClosed
	}
	rq, out, rep, err := p.prepareWrite(s.NodeID, s.Interval, r, f, false)
	if err != nil {
		return err
	}
	if !rep.Clean() {
		p.quality.report(ctx, rq.series, r, rep)
	}
	cov, err := p.store.Coverage(ctx, rq.series)
	if err != nil {
		return fmt.Errorf("%s: read coverage: %w", rq.series, err)
	}
	for _, part := range grid.NewSet(r).Subtract(cov).Ranges() {
		piece := out
		if lo, hi := out.SearchTS(part.Start), out.SearchTS(part.End); lo != 0 || hi != out.Len() {
			piece = out.Slice(lo, hi)
		}
		if err := p.ingest.commit(ctx, Write{Series: rq.series, Range: part, Frame: piece}, OriginLive); err != nil {
			return fmt.Errorf("%s: write %v: %w", rq.series, part, err)
		}
	}
	return nil
}

// prepareWrite checks bars offered for storage outside a backfill (see checkWrite) and
// normalises them; a nil frame means no bars.
func (p *Provider) prepareWrite(nodeID string, interval int64, r grid.Range, f *frame.Frame, closedOnly bool) (resolved, *frame.Frame, conformance.Report, error) {
	rq, err := p.checkWrite(nodeID, interval, r, f, closedOnly)
	if err != nil {
		return resolved{}, nil, conformance.Report{}, err
	}
	if f == nil {
		f = frame.New(rq.schema, 0)
	}
	out, rep, err := normalize(rq, f)
	if err != nil {
		return resolved{}, nil, conformance.Report{}, badRequest("frame", "%v", err)
	}
	return rq, out, rep, nil
}

// checkWrite validates bars offered for storage outside a backfill: the series, a
// non-empty range, and a frame of the series' schema whose bars are on the grid inside
// the range. A nil frame means no bars. With closedOnly the range must end by the last
// bar closed on the provider's clock; a live feed's bars are closed by the feed's word
// (the venue closes them on its clock, which may run a little ahead of ours).
func (p *Provider) checkWrite(nodeID string, interval int64, r grid.Range, f *frame.Frame, closedOnly bool) (resolved, error) {
	rq, err := p.resolveStored(nodeID, interval)
	if err != nil {
		return resolved{}, err
	}
	if r.Empty() {
		return resolved{}, badRequest("range", "empty range %v", r)
	}
	if f != nil && !f.Schema().Equal(rq.schema) {
		return resolved{}, badRequest("columns", "frame columns %v do not match the %s schema %v", f.Schema().Names(), rq.node.Kind, rq.schema.Names())
	}
	if end := ClosedEnd(p.clock.Now().Unix(), interval); closedOnly && r.End > end {
		return resolved{}, badRequest("range", "range %v reaches past the last closed bar (ends %d): only closed bars are stored", r, end)
	}
	if f == nil {
		return rq, nil
	}
	if err := f.Validate(); err != nil {
		return resolved{}, badRequest("frame", "%v", err)
	}
	for _, ts := range f.TS {
		if ts%interval != 0 || !r.Contains(ts) {
			return resolved{}, badRequest("frame", "bar at %d is off the %d s grid or outside the range %v", ts, interval, r)
		}
	}
	return rq, nil
}

// ImportOption changes how Import treats conformance findings.
type ImportOption func(*importOptions)

type importOptions struct {
	policy    conformance.Policy
	partialOK bool
	reported  bool
}

// ImportPolicy decides which findings refuse an import (default:
// conformance.DefaultPolicy, which refuses corrupt data).
func ImportPolicy(p conformance.Policy) ImportOption {
	return func(o *importOptions) { o.policy = p }
}

// ImportPartialOK stores the normalised bars even when findings would refuse them.
func ImportPartialOK() ImportOption {
	return func(o *importOptions) { o.partialOK = true }
}

// ImportReported tells Import that the caller has already counted and archived the
// conformance report of this data (the CLI does, from the raw file), so that it is not
// archived twice.
func ImportReported() ImportOption {
	return func(o *importOptions) { o.reported = true }
}

// Import stores f as authoritative data for r, and r becomes covered. The bars must be
// on the grid and inside r. Like backfilled data, they go through the conformance
// pipeline first (SPEC §3): the normalised bars are stored, the report is counted and
// archived, and findings the policy blocks refuse the import with
// *conformance.PipelineError unless ImportPartialOK. Nothing is written when the
// frame or range is invalid or the import is refused. Unlike a live write, an import
// replaces covered bars: it is how history is corrected.
func (p *Provider) Import(ctx context.Context, nodeID string, interval int64, r grid.Range, f *frame.Frame, opts ...ImportOption) error {
	o := importOptions{policy: conformance.DefaultPolicy()}
	for _, opt := range opts {
		opt(&o)
	}
	// As for backfilled data, grid points of r without bars are not findings: the
	// import declares them covered (market gaps, served as known_gap).
	rq, out, rep, err := p.prepareWrite(nodeID, interval, r, f, true)
	if err != nil {
		return err
	}
	if !rep.Clean() && !o.reported {
		p.quality.report(ctx, rq.series, r, rep)
	}
	if blocking := o.policy.Blocking(rep); o.policy.Refuses(blocking, o.partialOK) {
		return &conformance.PipelineError{Report: rep, Blocking: blocking}
	}
	return p.ingest.commit(ctx, Write{Series: rq.series, Range: r, Frame: out}, OriginImport)
}
