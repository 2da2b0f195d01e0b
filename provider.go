package seamless

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// DefaultMaxBars is the largest number of grid bars one request may ask for unless
// Config.MaxBars says otherwise.
const DefaultMaxBars = 5_000_000

// Config assembles a Provider from its parts. Store and Sources are required.
type Config struct {
	Store   Store
	Sources Router
	// Coordinator hands out chunk leases; nil means a new in-process MemCoordinator.
	Coordinator Coordinator
	Backfill    BackfillConfig
	// CacheBytes sizes the cache tier (DefaultCacheBytes when 0; negative turns it
	// off, e.g. for a store other processes rewrite).
	CacheBytes int64
	// MaxBars bounds the grid bars of one request (DefaultMaxBars when 0).
	MaxBars int64
	// Clock defaults to the wall clock; Seed seeds retry jitter (0: random).
	Clock  clock.Clock
	Seed   uint64
	Logger *slog.Logger
	// Observer receives measurements (nil: discarded).
	Observer Observer
	// TracerProvider creates the request spans (nil: the global OpenTelemetry
	// provider, a no-op unless the process installs one).
	TracerProvider trace.TracerProvider
	// Reports archives conformance reports (nil: not archived).
	Reports ReportSink
	// Live serves the newest bars of series with a live feed (nil: no live tier). The
	// provider does not close it.
	Live LiveTier
	// Schemas validates responses against the schema registry (nil: not validated).
	Schemas SchemaValidator
	// Artifacts publishes artifact-backed responses; backtest and dryrun requests need
	// it (nil: those domains are refused).
	Artifacts ArtifactPublisher
}

// Provider answers Fetch requests from storage and upstream sources. It is safe for
// concurrent use. Close stops its background backfills; it does not close the Store.
type Provider struct {
	store     Store
	frames    frame.Pool // answers stitched from several pieces, recycled by Result.Release
	sources   Router
	coord     Coordinator
	cfg       BackfillConfig
	leaseTTL  time.Duration
	maxBars   int64
	clock     clock.Clock
	log       *slog.Logger
	obs       Observer
	tracer    trace.Tracer
	reports   ReportSink
	artifacts ArtifactPublisher
	schemas   SchemaValidator
	live      LiveTier
	cache     *barCache
	last      lastReport

	// upstream bounds concurrent upstream fetches across all requests
	// (max_concurrent_requests).
	upstream chan struct{}

	randMu sync.Mutex
	rand   *rand.Rand

	bgCtx     context.Context
	bgCancel  context.CancelFunc
	bg        sync.WaitGroup
	mu        sync.Mutex
	closed    bool
	scheduled map[string]bool // chunk keys with background work queued or running

	// tails remembers, by chunk key, when a fetch last left the chunk's newest bars
	// uncovered because the source had not published them yet (see settled), so that
	// requests waiting on that fetch, or right behind it, do not ask again at once.
	tailsMu    sync.Mutex
	tails      map[string]time.Time
	tailsSwept time.Time // when tails was last cleared of old entries

	// archivedClean says, per series, whether the last report this process archived
	// was clean (see archive).
	archivedClean sync.Map // Series → bool

	asOf asOfGate
}

// New builds a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Store == nil {
		return nil, errors.New("seamless: Config.Store is required")
	}
	if cfg.Sources == nil {
		return nil, errors.New("seamless: Config.Sources is required")
	}
	p := &Provider{
		store:     cfg.Store,
		sources:   cfg.Sources,
		coord:     cfg.Coordinator,
		cfg:       cfg.Backfill.withDefaults(),
		maxBars:   cfg.MaxBars,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		scheduled: map[string]bool{},
	}
	if p.clock == nil {
		p.clock = clock.Real{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.reports, p.artifacts, p.schemas, p.live = cfg.Reports, cfg.Artifacts, cfg.Schemas, cfg.Live
	switch {
	case cfg.CacheBytes == 0:
		p.cache = newBarCache(DefaultCacheBytes)
	case cfg.CacheBytes > 0:
		p.cache = newBarCache(cfg.CacheBytes)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	p.tracer = tp.Tracer("github.com/seamless-data/seamless")
	p.obs = cfg.Observer
	if p.obs == nil {
		p.obs = nopObserver{}
	}
	if p.maxBars <= 0 {
		p.maxBars = DefaultMaxBars
	}
	p.leaseTTL = p.cfg.DistributedLeaseTTL
	if p.coord == nil {
		p.coord = NewMemCoordinator(p.clock)
	}
	if _, local := p.coord.(*MemCoordinator); local {
		p.leaseTTL = p.cfg.SingleFlightTTL
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	p.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p.upstream = make(chan struct{}, p.cfg.MaxConcurrentRequests)
	p.bgCtx, p.bgCancel = context.WithCancel(context.Background())
	return p, nil
}

// Close cancels background backfills and waits for them to stop. Later calls return
// ErrClosed.
func (p *Provider) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.bgCancel()
	p.bg.Wait()
	return nil
}

func (p *Provider) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// plan is a validated request: what to read, what may be backfilled.
type plan struct {
	series  Series
	node    NodeID
	schema  frame.Schema
	fetcher Fetcher
	// upstream is the series the fetcher is asked for: series itself for a standard
	// node id, the standard id a routed alias stands for otherwise.
	upstream Series
	// want is the request aligned to the grid: exactly its expected grid points.
	want grid.Range
	// closed is the part of want whose bars are closed at planning time: the only
	// part that can be stored or backfilled.
	closed grid.Range
}

// parseNode reads a node id: the standard grammar, or an id a NodeResolver router
// maps to a standard one.
func (p *Provider) parseNode(nodeID string) (NodeID, error) {
	node, err := ParseNodeID(nodeID)
	if err == nil {
		return node, nil
	}
	if r, ok := p.sources.(NodeResolver); ok {
		n, rerr := r.ResolveNode(nodeID)
		if rerr == nil {
			return n, nil
		}
		if !errors.Is(rerr, ErrUnknownSource) {
			return NodeID{}, &RequestError{Field: "node_id", Message: rerr.Error()}
		}
	}
	return NodeID{}, &RequestError{Field: "node_id", Message: err.Error()}
}

// Resolve validates a series and finds its schema and fetcher.
func (p *Provider) resolve(nodeID string, interval int64) (plan, error) {
	node, err := p.parseNode(nodeID)
	if err != nil {
		return plan{}, err
	}
	if interval <= 0 {
		return plan{}, badRequest("interval", "must be a positive number of seconds, got %d", interval)
	}
	if interval != node.Interval {
		return plan{}, badRequest("interval", "%d s does not match the timeframe %q (%d s) of node %s", interval, node.Timeframe, node.Interval, nodeID)
	}
	schema, ok := node.Schema()
	if !ok {
		return plan{}, badRequest("node_id", "unknown kind %q in node %s (want ohlcv, trades or quotes)", node.Kind, nodeID)
	}
	f, err := p.sources.Route(node)
	if err != nil {
		return plan{}, err
	}
	return plan{series: Series{NodeID: nodeID, Interval: interval}, node: node, schema: schema, fetcher: f,
		upstream: Series{NodeID: node.String(), Interval: interval}}, nil
}

// MaxTimestamp bounds the timestamps of requests: ±2^53 epoch seconds (±285 million
// years) is far beyond any market data, and keeps every derived value exact — bar and
// chunk bounds in int64, milliseconds for exchanges, and numbers in float64 or JSON
// clients.
const MaxTimestamp = 1 << 53

func (p *Provider) planRange(pl plan, r grid.Range, now time.Time) (plan, error) {
	for _, f := range []struct {
		name string
		t    int64
	}{{"start", r.Start}, {"end", r.End}} {
		if f.t < -MaxTimestamp || f.t > MaxTimestamp {
			return plan{}, badRequest(f.name, "%d is outside the supported timestamps, ±%d epoch seconds", f.t, int64(MaxTimestamp))
		}
	}
	if r.Start >= r.End {
		return plan{}, badRequest("start", "start %d must be before end %d", r.Start, r.End)
	}
	if n := r.Bars(pl.series.Interval); n > p.maxBars {
		return plan{}, badRequest("end", "range %v holds %d bars of %d s, over the maximum of %d per request", r, n, pl.series.Interval, p.maxBars)
	}
	pl.want = r.Align(pl.series.Interval)
	pl.closed = pl.want.Intersect(grid.R(pl.want.Start, ClosedEnd(now.Unix(), pl.series.Interval)))
	return pl, nil
}

// Coverage returns the stored coverage of a series.
func (p *Provider) Coverage(ctx context.Context, nodeID string, interval int64) (grid.Set, error) {
	pl, err := p.resolveStored(nodeID, interval)
	if err != nil {
		return grid.Set{}, err
	}
	return p.store.Coverage(ctx, pl.series)
}

// resolveStored validates a series for storage-only operations: the node id grammar
// and interval must hold, but no source needs to route it.
func (p *Provider) resolveStored(nodeID string, interval int64) (plan, error) {
	pl, err := p.resolve(nodeID, interval)
	if errors.Is(err, ErrUnknownSource) {
		node, _ := p.parseNode(nodeID)
		schema, _ := node.Schema()
		return plan{series: Series{NodeID: nodeID, Interval: interval}, node: node, schema: schema,
			upstream: Series{NodeID: node.String(), Interval: interval}}, nil
	}
	return pl, err
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
// frame or range is invalid or the import is refused.
func (p *Provider) Import(ctx context.Context, nodeID string, interval int64, r grid.Range, f *frame.Frame, opts ...ImportOption) error {
	o := importOptions{policy: conformance.DefaultPolicy()}
	for _, opt := range opts {
		opt(&o)
	}
	pl, err := p.resolveStored(nodeID, interval)
	if err != nil {
		return err
	}
	if r.Empty() {
		return badRequest("range", "empty import range %v", r)
	}
	if f == nil {
		f = frame.New(pl.schema, 0)
	}
	if !f.Schema().Equal(pl.schema) {
		return badRequest("columns", "frame columns %v do not match the %s schema %v", f.Schema().Names(), pl.node.Kind, pl.schema.Names())
	}
	if end := ClosedEnd(p.clock.Now().Unix(), interval); r.End > end {
		return badRequest("range", "import range %v reaches past the last closed bar (ends %d): only closed bars are stored", r, end)
	}
	if err := f.Validate(); err != nil {
		return badRequest("frame", "%v", err)
	}
	for _, ts := range f.TS {
		if ts%interval != 0 || !r.Contains(ts) {
			return badRequest("frame", "bar at %d is off the %d s grid or outside the import range %v", ts, interval, r)
		}
	}
	// As for backfilled data, grid points of r without bars are not findings: the
	// import declares them covered (market gaps, served as known_gap).
	out, rep, err := f, conformance.Empty(), error(nil)
	if f.Len() > 0 {
		if out, rep, err = conformance.Run(conformance.Input{Frame: f}, p.conformanceOptions(pl, grid.Range{})); err != nil {
			return badRequest("frame", "%v", err)
		}
	}
	if !rep.Clean() && !o.reported {
		p.obs.Conformance(pl.series, rep)
		p.archive(ctx, pl.series, r, rep)
	}
	if blocking := o.policy.Blocking(rep); o.policy.Refuses(blocking, o.partialOK) {
		return &conformance.PipelineError{Report: rep, Blocking: blocking}
	}
	defer p.cache.invalidate(pl.series, r, p.chunkWidth(pl))
	return p.store.Write(ctx, Write{Series: pl.series, Range: r, Frame: out})
}
