package seamless

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamless-data/seamless/clock"
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
	// Observer receives measurements: each tier reports to the per-tier observer
	// interfaces it implements (nil: discarded).
	Observer Observer
	// TracerProvider creates the request spans (nil: the global OpenTelemetry
	// provider, a no-op unless the process installs one).
	TracerProvider trace.TracerProvider
	// Reports archives conformance reports (nil: not archived).
	Reports ReportSink
	// Live serves the newest bars of series with a live feed (nil: no live tier). The
	// provider does not close it. A tier that writes closed bars (a SinkBinder, such as
	// package live's) is bound to the provider's ingest step, the one write path.
	Live LiveTier
	// Schemas validates responses against the schema registry (nil: not validated).
	Schemas SchemaValidator
	// Artifacts publishes artifact-backed responses; backtest and dryrun requests need
	// it (nil: those domains are refused).
	Artifacts ArtifactPublisher
	// Subscriptions tunes Subscribe (subscribe.go).
	Subscriptions SubscribeOptions
}

// Provider answers Fetch requests from storage and upstream sources. It is safe for
// concurrent use. Close stops its background backfills; it does not close the Store.
//
// It composes the tiers, each owning its state: reader (cache and storage reads),
// backfill (chunks under leases), ingest (the one write path), quality (conformance,
// schemas, reports), and the live tier it is given. The request path is in fetch.go:
// resolve, plan (planner.go, pure), execute through the tiers, judge, answer.
type Provider struct {
	store     Store
	sources   Router
	coord     Coordinator
	maxBars   int64
	clock     clock.Clock
	log       *slog.Logger
	obs       RequestObserver
	tracer    trace.Tracer
	artifacts ArtifactPublisher
	live      LiveTier

	reader   *reader
	backfill *backfiller
	ingest   *ingester
	quality  *quality
	life     *lifetime
	asOf     asOfGate
	subs     subscriptions
}

// A LeaseTTLPolicy is a Coordinator that says how long its leases should be claimed
// for. The in-process MemCoordinator uses BackfillConfig.SingleFlightTTL (a lease
// there guards one process's waiters, not a cluster's workers); coordinators that do
// not implement it get DistributedLeaseTTL.
type LeaseTTLPolicy interface {
	LeaseTTL(cfg BackfillConfig) time.Duration
}

// leaseTTL is the TTL the backfill tier claims and renews coord's leases with.
func leaseTTL(coord Coordinator, cfg BackfillConfig) time.Duration {
	if p, ok := coord.(LeaseTTLPolicy); ok {
		if ttl := p.LeaseTTL(cfg); ttl > 0 {
			return ttl
		}
	}
	return cfg.DistributedLeaseTTL
}

// New builds a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Store == nil {
		return nil, errors.New("seamless: Config.Store is required")
	}
	if cfg.Sources == nil {
		return nil, errors.New("seamless: Config.Sources is required")
	}
	bcfg := cfg.Backfill.withDefaults()
	p := &Provider{store: cfg.Store, sources: cfg.Sources, coord: cfg.Coordinator, maxBars: cfg.MaxBars,
		clock: cfg.Clock, log: cfg.Logger, artifacts: cfg.Artifacts, live: cfg.Live, life: newLifetime(),
		subs: subscriptions{opts: cfg.Subscriptions}}
	if p.clock == nil {
		p.clock = clock.Real{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.maxBars <= 0 {
		p.maxBars = DefaultMaxBars
	}
	if p.coord == nil {
		p.coord = NewMemCoordinator(p.clock)
	}
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	p.tracer = tp.Tracer("github.com/seamless-data/seamless")
	obs := resolveObservers(cfg.Observer)
	p.obs = obs.request

	var cache *barCache
	switch {
	case cfg.CacheBytes == 0:
		cache = newBarCache(DefaultCacheBytes)
	case cfg.CacheBytes > 0:
		cache = newBarCache(cfg.CacheBytes)
	}
	p.quality = &quality{reports: cfg.Reports, schemas: cfg.Schemas, obs: obs.quality, tracer: p.tracer, log: p.log}
	p.reader = &reader{store: p.store, cache: cache, obs: obs.cache, clock: p.clock, window: bcfg.WindowBars}
	p.ingest = &ingester{store: p.store, cache: cache, window: bcfg.WindowBars}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	p.backfill = (&backfiller{store: p.store, ingest: p.ingest, quality: p.quality, coord: p.coord,
		cfg: bcfg, leaseTTL: leaseTTL(p.coord, bcfg), clock: p.clock, log: p.log, obs: obs.backfill,
		tracer: p.tracer, life: p.life}).init(seed)
	if b, ok := cfg.Live.(SinkBinder); ok {
		b.BindSink(p)
	}
	return p, nil
}

// Close cancels background backfills and waits for them to stop. Later calls return
// ErrClosed.
func (p *Provider) Close() error {
	p.life.close()
	return nil
}

func (p *Provider) isClosed() bool { return p.life.isClosed() }

// Coverage returns the stored coverage of a series.
func (p *Provider) Coverage(ctx context.Context, nodeID string, interval int64) (grid.Set, error) {
	pl, err := p.resolveStored(nodeID, interval)
	if err != nil {
		return grid.Set{}, err
	}
	return p.store.Coverage(ctx, pl.series)
}
