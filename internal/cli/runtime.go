package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/coordinator/etcdcoord"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/reportlog"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/live"
	sr "github.com/seamless-data/seamless/schemaregistry"
	srfile "github.com/seamless-data/seamless/schemaregistry/filestore"
	srpg "github.com/seamless-data/seamless/schemaregistry/pgstore"
	"github.com/seamless-data/seamless/schemaregistry/registryhttp"
	"github.com/seamless-data/seamless/store/pebblestore"
	"github.com/seamless-data/seamless/store/pgstore"
	"github.com/seamless-data/seamless/telemetry"
)

// runtime is one process's assembly of the provider and its parts, chosen by
// configuration: the store (embedded Pebble, or PostgreSQL with SEAMLESS_STORE), the
// coordinator (in-process, or etcd with SEAMLESS_COORDINATOR_URL), the venues' sources
// and live feeds (venues.go), the report archive and artifact registrar under the data
// dir, metrics.
type runtime struct {
	provider *seamless.Provider
	store    seamless.Store
	coord    seamless.Coordinator
	schemas  *sr.Registry
	reports  *reportlog.Log
	registry *prometheus.Registry
	metrics  *telemetry.Metrics
	log      *slog.Logger
	// backfill is the provider's BackfillConfig as configured (zero fields: defaults).
	backfill seamless.BackfillConfig
	// closers close what the runtime opened, in reverse (Close).
	closers closerStack
}

// newLogger builds the JSON (or text) slog logger of SEAMLESS_LOG_LEVEL (level when
// unset) and SEAMLESS_LOG_FORMAT.
func newLogger(w io.Writer, c *config, level slog.Level) (*slog.Logger, error) {
	if v := c.raw("log_level"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, c.invalid("log_level", "want debug, info, warn or error")
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.text("log_format") {
	case "json":
		return slog.New(seamless.TraceLogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(seamless.TraceLogHandler(slog.NewTextHandler(w, opts))), nil
	default:
		return nil, c.invalid("log_format", "want json or text")
	}
}

// runtimeOptions are the core settings a runtime is assembled from, all parsed and
// checked before anything is opened, so that a bad setting fails fast. (The venues
// parse their own settings as openRuntime builds them, also before the stores open.)
type runtimeOptions struct {
	maxBars    int64
	cacheBytes int64
	backfill   seamless.BackfillConfig
	aliases    map[string]string
	store      storeOptions
	coord      coordinatorOptions
	// s3 configures the artifact registrar; nil keeps artifacts under the data dir.
	s3 *artifact.S3Config
	// live holds the live tier's tuning; openLive adds its feeds, store and logger.
	live live.Options
	// subs tunes the provider's subscriptions (stream_*).
	subs seamless.SubscribeOptions
}

// parseRuntimeOptions parses the core settings; the first bad one is a *SettingError.
func parseRuntimeOptions(c *config) (o runtimeOptions, err error) {
	if o.maxBars, err = maxBarsOption(c); err != nil {
		return o, err
	}
	if v := c.raw("cache_bytes"); v != "" {
		if o.cacheBytes, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return o, c.invalid("cache_bytes", "want a byte count (0 default, negative off)")
		}
	}
	if o.backfill, err = backfillOptions(c); err != nil {
		return o, err
	}
	if o.aliases, err = aliasesOption(c); err != nil {
		return o, err
	}
	if o.store, err = storeOption(c); err != nil {
		return o, err
	}
	if o.coord, err = coordinatorOption(c); err != nil {
		return o, err
	}
	o.s3 = s3Option(c)
	if o.live, err = liveOptions(c); err != nil {
		return o, err
	}
	if o.subs, err = subscribeOptions(c); err != nil {
		return o, err
	}
	return o, nil
}

// subscribeOptions reads the subscriptions' tuning (stream_buffer_events,
// stream_heartbeat, stream_live_grace); unset ones stay zero, the provider's defaults.
func subscribeOptions(c *config) (o seamless.SubscribeOptions, err error) {
	n, err := c.intIn("stream_buffer_events", "events per subscription", 2, 1_000_000)
	if err != nil {
		return o, err
	}
	o.Buffer = int(n)
	if o.Heartbeat, err = c.durationIn("stream_heartbeat", time.Second, time.Hour, "want a duration from 1s to 1h, e.g. 15s"); err != nil {
		return o, err
	}
	if o.LiveGrace, err = c.durationIn("stream_live_grace", 100*time.Millisecond, time.Hour, "want a duration from 100ms to 1h, e.g. 5s"); err != nil {
		return o, err
	}
	return o, nil
}

// streamConfig reads the limits of the server's /v1/stream (stream_max_*); unset ones
// stay zero, the server's defaults.
func streamConfig(c *config) (sc server.StreamConfig, err error) {
	n, err := c.intIn("stream_max_connections", "stream connections", 1, 1_000_000)
	if err != nil {
		return sc, err
	}
	sc.MaxConnections = int(n)
	if n, err = c.intIn("stream_max_subscriptions", "subscriptions per connection", 1, 10_000); err != nil {
		return sc, err
	}
	sc.MaxSubscriptions = int(n)
	return sc, nil
}

func (g *globals) openRuntime(ctx context.Context) (_ *runtime, err error) {
	// rt is not the named result: `return nil, err` must not nil it before the deferred
	// Close of what was opened so far.
	rt := &runtime{}
	defer func() {
		if err != nil {
			rt.Close()
		}
	}()
	c := g.config()
	if rt.log, err = newLogger(g.stderr, c, g.logLevel); err != nil {
		return nil, err
	}
	opts, err := parseRuntimeOptions(c)
	if err != nil {
		return nil, err
	}
	rt.backfill = opts.backfill
	if rt.metrics, rt.registry, err = newMetrics(); err != nil {
		return nil, err
	}
	if addr := c.raw("metrics_addr"); addr != "" {
		if err := rt.serveMetrics(addr); err != nil {
			return nil, err
		}
	}
	// The venues' sources and feeds only hold configuration until used: built
	// before anything durable opens, a bad venue URL fails fast too.
	sources := seamless.Sources{}
	opts.live.Feeds = map[string]seamless.LiveFeed{}
	for _, v := range g.venueList() {
		if sources[v.name], err = v.source(c, rt); err != nil {
			return nil, err
		}
		if v.live != nil {
			if opts.live.Feeds[v.name], err = v.live(c, rt); err != nil {
				return nil, err
			}
		}
	}
	tp, err := tracerProvider(ctx)
	if err != nil {
		return nil, err
	}
	rt.closers.push("tracer provider", func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tp.Shutdown(sctx)
	})

	if err := os.MkdirAll(g.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if rt.store, err = g.openStore(ctx, opts.store); err != nil {
		return nil, err
	}
	rt.closers.push("store", rt.store.Close)
	if rt.coord, err = rt.openCoordinator(ctx, opts.coord); err != nil {
		return nil, err
	}
	if rt.reports, err = reportlog.Open(filepath.Join(g.dataDir, "reports")); err != nil {
		return nil, fmt.Errorf("report archive: %w", err)
	}
	arts, err := g.openArtifacts(opts.s3)
	if err != nil {
		return nil, err
	}
	if rt.schemas, err = g.openSchemaRegistry(ctx, rt, opts.store); err != nil {
		return nil, err
	}
	tier, err := rt.openLive(opts.live)
	if err != nil {
		return nil, err
	}
	var router seamless.Router = sources
	if len(opts.aliases) > 0 {
		router = seamless.Aliases{Sources: sources, IDs: opts.aliases}
	}
	rt.provider, err = seamless.New(seamless.Config{
		Live: tier, CacheBytes: opts.cacheBytes, Backfill: rt.backfill,
		Store: rt.store, Coordinator: rt.coord, MaxBars: opts.maxBars, Logger: rt.log, Observer: rt.metrics, TracerProvider: tp,
		Subscriptions: opts.subs,
		Sources:       router,
		Reports:       reportSink{rt.reports},
		Artifacts:     artifact.Publisher(arts, "seamless"),
		Schemas:       rt.schemas.Validator(),
	})
	if err != nil {
		return nil, err
	}
	// Last opened, first closed: the provider stops its background work while the
	// tiers and the store are still open. The live tier writes through the provider, so
	// it stops first (its own closer, pushed when it opened, then does nothing).
	rt.closers.push("provider", func() error { return errors.Join(tier.Close(), rt.provider.Close()) })
	return rt, nil
}

// aliasesOption reads SEAMLESS_NODE_ALIASES: comma-separated alias=node entries that
// serve node ids outside the standard grammar (SPEC §1), e.g.
// "btc-1m=ohlcv:binance:BTC/USDT:1m,eth-1h=ohlcv:binance:ETH/USDT:1h".
func aliasesOption(c *config) (map[string]string, error) {
	v := c.raw("node_aliases")
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	bad := func(msg string, args ...any) error { return c.invalid("node_aliases", msg, args...) }
	out := map[string]string{}
	for _, entry := range strings.Split(v, ",") {
		alias, target, ok := strings.Cut(strings.TrimSpace(entry), "=")
		alias, target = strings.TrimSpace(alias), strings.TrimSpace(target)
		if !ok || alias == "" || target == "" {
			return nil, bad("entry %q: want alias=node, e.g. btc-1m=ohlcv:binance:BTC/USDT:1m", entry)
		}
		if _, err := seamless.ParseNodeID(alias); err == nil {
			return nil, bad("alias %q is itself a standard node id", alias)
		}
		if _, err := seamless.ParseNodeID(target); err != nil {
			return nil, bad("alias %q: %v", alias, err)
		}
		if _, dup := out[alias]; dup {
			return nil, bad("alias %q given twice", alias)
		}
		out[alias] = target
	}
	return out, nil
}

// backfillOptions reads the backfill tier's settings (SPEC §2 BackfillConfig):
// lease_ttl (both lease TTLs) and the backfill_* settings. Unset ones stay zero,
// which the provider replaces by the reference's defaults
// (seamless.DefaultBackfillConfig, the table's Default); a set one out of its bounds
// is a *SettingError.
func backfillOptions(c *config) (bf seamless.BackfillConfig, err error) {
	ttl, err := c.durationIn("lease_ttl", time.Second, 0, "want a duration of at least 1s, e.g. 30s")
	if err != nil {
		return bf, err
	}
	bf.DistributedLeaseTTL, bf.SingleFlightTTL = ttl, ttl
	if bf.WindowBars, err = c.intIn("backfill_window_bars", "bars per aligned chunk", 1, 1_000_000); err != nil {
		return bf, err
	}
	n, err := c.intIn("backfill_max_concurrent_requests", "concurrent upstream requests", 1, 1024)
	if err != nil {
		return bf, err
	}
	bf.MaxConcurrentRequests = int(n)
	if n, err = c.intIn("backfill_max_attempts", "upstream attempts per chunk", 1, 100); err != nil {
		return bf, err
	}
	bf.MaxAttempts = int(n)
	if n, err = c.intIn("backfill_retry_backoff_ms", "milliseconds before the first retry", 1, 600_000); err != nil {
		return bf, err
	}
	bf.RetryBackoff = time.Duration(n) * time.Millisecond
	// 0 cannot be expressed (a zero field means the default); above 1 a retry delay
	// could turn negative.
	if bf.JitterRatio, err = c.ratio("backfill_jitter_ratio", 0, 1, true, "want a number above 0 and at most 1 (default "+c.setting("backfill_jitter_ratio").Default+")"); err != nil {
		return bf, err
	}
	if bf.AttemptTimeout, err = c.durationIn("backfill_attempt_timeout", time.Second, 0,
		"want a duration of at least 1s, e.g. 90s (default "+c.setting("backfill_attempt_timeout").Default+")"); err != nil {
		return bf, err
	}
	if bf.SettleWindow, err = c.durationIn("backfill_settle_window", time.Second, 24*time.Hour,
		"want a duration from 1s to 24h, e.g. 10m (default "+c.setting("backfill_settle_window").Default+")"); err != nil {
		return bf, err
	}
	return bf, nil
}

// maxBarsOption reads max_bars (SEAMLESS_MAX_BARS, flag --max-bars): the most bars
// one request may ask for; unset, seamless.DefaultMaxBars.
func maxBarsOption(c *config) (int64, error) {
	v := c.raw("max_bars")
	if v == "" {
		return seamless.DefaultMaxBars, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 1 {
		return 0, c.invalid("max_bars", "want a whole number of bars per request, at least 1 (default %d)", seamless.DefaultMaxBars)
	}
	return n, nil
}

// liveOptions reads the live tier's tuning (live_*); unset ones stay zero, the
// tier's defaults.
func liveOptions(c *config) (o live.Options, err error) {
	if o.BufferBars, err = c.positiveInt("live_buffer_bars", "want a positive number of bars"); err != nil {
		return o, err
	}
	if o.IdleTimeout, err = c.durationIn("live_idle_timeout", time.Nanosecond, 0, "want a positive duration such as 10m"); err != nil {
		return o, err
	}
	if o.SilentAfter, err = c.durationIn("live_silent_after", time.Nanosecond, 0, "want a positive duration such as 2m"); err != nil {
		return o, err
	}
	return o, nil
}

// storeOptions say which store to open: dsn "" is the embedded Pebble store under
// the data dir, else a PostgreSQL DSN.
type storeOptions struct{ dsn string }

// storeOption reads store: empty or "pebble" for the embedded store, a postgres://
// DSN for PostgreSQL.
func storeOption(c *config) (storeOptions, error) {
	switch u := c.raw("store"); {
	case u == "" || u == "pebble":
		return storeOptions{}, nil
	case strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://"):
		return storeOptions{dsn: u}, nil
	default:
		return storeOptions{}, c.invalid("store", "want pebble or a postgres:// DSN")
	}
}

// coordinatorOptions say which coordinator to open: url "" is the in-process one;
// prod (profile prod) refuses to start without a reachable one.
type coordinatorOptions struct {
	url  string
	prod bool
}

// coordinatorOption reads coordinator_url and profile.
func coordinatorOption(c *config) (coordinatorOptions, error) {
	o := coordinatorOptions{url: c.raw("coordinator_url"), prod: c.raw("profile") == "prod"}
	switch u := o.url; {
	case u == "":
		if o.prod {
			return o, errors.New("profile prod needs SEAMLESS_COORDINATOR_URL (etcd://host:port or http://host:port)")
		}
	case strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "etcd://"):
	default:
		return o, c.invalid("coordinator_url", "want etcd://host:port[,host:port…] or http://host:port")
	}
	return o, nil
}

// s3Option reads the artifacts_s3_* settings; nil when no endpoint is set.
func s3Option(c *config) *artifact.S3Config {
	ep := c.raw("artifacts_s3_endpoint")
	if ep == "" {
		return nil
	}
	return &artifact.S3Config{
		Endpoint: ep, Bucket: c.raw("artifacts_s3_bucket"),
		AccessKey: c.raw("artifacts_s3_access_key"), SecretKey: c.raw("artifacts_s3_secret_key"),
		Prefix: c.raw("artifacts_s3_prefix"), Region: c.raw("artifacts_s3_region"),
		// Only "false" turns TLS off, as it always has.
		TLS: c.raw("artifacts_s3_tls") != "false",
	}
}

// openStore opens the store: the embedded one under the data dir, or PostgreSQL.
func (g *globals) openStore(ctx context.Context, o storeOptions) (seamless.Store, error) {
	if o.dsn == "" {
		st, err := pebblestore.Open(g.dataDir, pebblestore.Options{})
		if err != nil {
			return nil, fmt.Errorf("open embedded store in %s: %w", g.dataDir, err)
		}
		return st, nil
	}
	st, err := pgstore.Open(ctx, o.dsn, pgstore.Options{})
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL store: %w", err)
	}
	return st, nil
}

// openCoordinator opens the coordinator of coordinator_url (SEAMLESS_COORDINATOR_URL,
// alias QMTL_SEAMLESS_COORDINATOR_URL): empty for the in-process guard, etcd://host:port[,…] for etcd, http(s)://host:port
// for a remote lease API. A remote coordinator is wrapped so that, when unreachable,
// backfill falls back to the local guard loudly. It is checked once at start (etcd: a
// ping; lease API: GET /healthz; both bounded by coordinatorProbeTimeout):
// SEAMLESS_PROFILE=prod refuses to start when it does not answer, other profiles log
// seamless.backfill.coordinator_unreachable with the URL and the error and start (the
// fallback covers it). Stale claims found by any coordinator of this process (etcd's,
// the in-process one, the local guard of a fallback) count in
// seamless_backfill_stale_claims_total.
func (rt *runtime) openCoordinator(ctx context.Context, o coordinatorOptions) (seamless.Coordinator, error) {
	u, prod := o.url, o.prod
	if u == "" {
		return rt.memCoordinator(), nil
	}
	if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
		// A remote lease API (seamless coordinator, or another seamless serve).
		if err := probeLeaseAPI(ctx, u, coordinatorProbeTimeout); err != nil {
			if prod {
				return nil, fmt.Errorf("profile prod: coordinator %s is unreachable, refusing to start: %w", u, err)
			}
			rt.log.Warn("seamless.backfill.coordinator_unreachable", "url", u, "err", err)
		}
		return rt.fallback(leaseapi.NewClient(u, nil)), nil
	}
	hostname, _ := os.Hostname()
	c, cli, err := etcdcoord.Dial(u, etcdcoord.Options{Holder: hostname + ":" + strconv.Itoa(os.Getpid()), Logger: rt.log, OnStaleClaim: rt.metrics.StaleClaim})
	if err != nil {
		return nil, err
	}
	rt.closers.push("etcd client", cli.Close)
	pctx, cancel := context.WithTimeout(ctx, coordinatorProbeTimeout)
	defer cancel()
	if err := c.Ping(pctx); err != nil {
		if prod {
			return nil, fmt.Errorf("profile prod: coordinator %s is unreachable, refusing to start: %w", u, err)
		}
		rt.log.Warn("seamless.backfill.coordinator_unreachable", "url", u, "err", err)
	}
	return rt.fallback(c), nil
}

// memCoordinator is an in-process coordinator whose stale claims are counted.
func (rt *runtime) memCoordinator() *seamless.MemCoordinator {
	c := seamless.NewMemCoordinator(nil)
	c.SetOnStaleClaim(rt.metrics.StaleClaim)
	return c
}

// fallback wraps a remote coordinator: unreachable, it is replaced by an in-process
// guard (counted in seamless_coordinator_fallback_total) and skipped for
// seamless.DefaultFallbackCooldown before it is tried again.
func (rt *runtime) fallback(primary seamless.Coordinator) *seamless.FallbackCoordinator {
	fb := seamless.NewFallbackCoordinator(primary, rt.memCoordinator(), 5*time.Second, rt.log)
	fb.OnFallback = rt.metrics.CoordinatorFallback
	return fb
}

// coordinatorProbeTimeout bounds the start-up check of a configured coordinator.
const coordinatorProbeTimeout = 5 * time.Second

// probeLeaseAPI checks that the lease API at base answers GET /healthz with 200.
func probeLeaseAPI(ctx context.Context, base string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimSuffix(base, "/") + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Close = true // a one-off: keep no idle connection behind
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err // *url.Error: names the method and the URL
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return nil
}

// openArtifacts opens the artifact registrar: S3 when s3 is set, else a directory
// under the data dir.
func (g *globals) openArtifacts(s3 *artifact.S3Config) (artifact.Registrar, error) {
	if s3 != nil {
		r, err := artifact.NewS3Registrar(*s3, nil)
		if err != nil {
			return nil, fmt.Errorf("artifact registrar: %w", err)
		}
		return r, nil
	}
	return artifact.NewDirRegistrar(filepath.Join(g.dataDir, "artifacts"), nil), nil
}

// Close closes what the runtime opened, last opened first (closerStack).
func (rt *runtime) Close() error { return rt.closers.close() }

// reportSink archives conformance reports in the report log.
type reportSink struct{ log *reportlog.Log }

func (r reportSink) Archive(ctx context.Context, s seamless.Series, rng grid.Range, rep conformance.Report) error {
	_, err := r.log.Append(ctx, reportlog.Record{NodeID: s.NodeID, Interval: s.Interval, Range: rng, Report: rep})
	return err
}

// mounts are the runtime's extra HTTP routes on seamless serve: the coordinator's
// lease API in the reference's wire protocol and the conformance report archive.
func (rt *runtime) mounts() []server.Mount {
	leases := leaseapi.NewHandler(rt.coord)
	ms := []server.Mount{
		{Pattern: "/v1/leases", Handler: leases}, {Pattern: "/v1/leases/", Handler: leases},
		{Pattern: "GET /v1/reports", Handler: reportsHandler(rt.reports)},
	}
	// The schema registry's Confluent-style routes; audit records name the API token.
	registry := registryhttp.New(rt.schemas, registryhttp.Options{Actor: func(r *http.Request) string {
		if p := server.Principal(r.Context()); p != "" {
			return p
		}
		return "anonymous"
	}})
	for _, p := range registryhttp.Patterns {
		ms = append(ms, server.Mount{Pattern: p, Handler: registry})
	}
	return ms
}

// newMetrics returns the process's registry (Go runtime and process collectors) with
// the provider's metrics on it.
func newMetrics() (*telemetry.Metrics, *prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := telemetry.New(reg)
	return m, reg, err
}

// tracerProvider exports spans over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and records none otherwise.
func tracerProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())), nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp)), nil
}

// metricsHandler serves the registry in the Prometheus exposition format.
func (rt *runtime) metricsHandler() http.Handler {
	return promhttp.HandlerFor(rt.registry, promhttp.HandlerOpts{Registry: rt.registry})
}

// serveMetrics exposes the registry on addr until the runtime closes (--metrics-addr,
// for batch commands such as a long backfill, and seamless coordinator).
func (rt *runtime) serveMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", rt.metricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	rt.log.Info("seamless.metrics.serving", "addr", ln.Addr().String())
	rt.closers.push("metrics server", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	return nil
}

// openSchemaRegistry opens the schema registry in the configured store: PostgreSQL
// tables beside the bars when the store is PostgreSQL, else a JSON-lines log under
// the data dir. Validation failures are counted in
// seamless_schema_validation_failures_total{subject,mode}.
func (g *globals) openSchemaRegistry(ctx context.Context, rt *runtime, o storeOptions) (*sr.Registry, error) {
	var st sr.Store
	if o.dsn != "" {
		pg, err := srpg.Open(ctx, o.dsn, srpg.Options{})
		if err != nil {
			return nil, fmt.Errorf("schema registry: %w", err)
		}
		rt.closers.push("schema registry store", pg.Close)
		st = pg
	} else {
		fs, err := srfile.Open(filepath.Join(g.dataDir, "schemaregistry"))
		if err != nil {
			return nil, fmt.Errorf("schema registry: %w", err)
		}
		rt.closers.push("schema registry store", fs.Close)
		st = fs
	}
	count, err := sr.FailureCounter(rt.registry)
	if err != nil {
		return nil, err
	}
	reg, err := sr.Open(ctx, st, sr.Options{OnValidationFailure: count, Logger: rt.log})
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	rt.closers.push("schema registry", reg.Close)
	return reg, nil
}

// openLive starts the live tier over the venues' feeds (opts.Feeds). Subscriptions
// start on demand when requests reach the newest bars.
func (rt *runtime) openLive(opts live.Options) (*live.Tier, error) {
	for source := range opts.Feeds {
		rt.metrics.LiveSource(source)
	}
	opts.Logger = rt.log // the provider binds itself as the sink: live bars take its write path
	tier, err := live.New(opts)
	if err != nil {
		return nil, err
	}
	rt.closers.push("live tier", tier.Close)
	return tier, nil
}
