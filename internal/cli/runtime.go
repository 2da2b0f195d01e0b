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
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/live/demolive"
	sr "github.com/seamless-data/seamless/schemaregistry"
	srfile "github.com/seamless-data/seamless/schemaregistry/filestore"
	srpg "github.com/seamless-data/seamless/schemaregistry/pgstore"
	"github.com/seamless-data/seamless/schemaregistry/registryhttp"
	"github.com/seamless-data/seamless/source/binance"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/pebblestore"
	"github.com/seamless-data/seamless/store/pgstore"
	"github.com/seamless-data/seamless/telemetry"
)

// env reads a SEAMLESS_* variable, falling back to the reference's QMTL_SEAMLESS_*
// alias where one exists.
func env(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return os.Getenv("QMTL_" + name)
}

// runtime is one process's assembly of the provider and its parts, chosen by
// configuration: the store (embedded Pebble, or PostgreSQL with SEAMLESS_STORE), the
// coordinator (in-process, or etcd with SEAMLESS_COORDINATOR_URL), the sources (demo,
// binance), the report archive and artifact registrar under the data dir, metrics.
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
	closers  []func() error
}

// newLogger builds the JSON (or text) slog logger of SEAMLESS_LOG_LEVEL (default level
// when unset) and SEAMLESS_LOG_FORMAT.
func newLogger(w io.Writer, level slog.Level) (*slog.Logger, error) {
	if v := env("SEAMLESS_LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("SEAMLESS_LOG_LEVEL=%q: want debug, info, warn or error", v)
		}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f := env("SEAMLESS_LOG_FORMAT"); f {
	case "", "json":
		return slog.New(seamless.TraceLogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(seamless.TraceLogHandler(slog.NewTextHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("SEAMLESS_LOG_FORMAT=%q: want json or text", f)
	}
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
	if rt.log, err = newLogger(g.stderr, g.logLevel); err != nil {
		return nil, &seamless.RequestError{Field: "env", Message: err.Error()}
	}
	// Checked before anything is opened: a bad setting fails fast.
	if rt.backfill, err = backfillFromEnv(); err != nil {
		return nil, err
	}
	if g.given == nil || !g.given("max-bars") { // file < env < flags: --max-bars wins
		if _, err := maxBarsFromEnv(); err != nil {
			return nil, err
		}
	}
	if rt.metrics, rt.registry, err = newMetrics(); err != nil {
		return nil, err
	}
	if g.metricsAddr != "" {
		if err := rt.serveMetrics(g.metricsAddr); err != nil {
			return nil, err
		}
	}

	demoOpts, err := demo.OptionsFromEnv()
	if err != nil {
		return nil, &seamless.RequestError{Field: "env", Message: err.Error()}
	}
	demoSrc, err := demo.New(demoOpts)
	if err != nil {
		return nil, err
	}
	binOpts, err := binance.OptionsFromEnv()
	if err != nil {
		return nil, &seamless.RequestError{Field: "env", Message: err.Error()}
	}
	binSrc, err := binance.New(binOpts)
	if err != nil {
		return nil, err
	}
	if err := rt.metrics.RateLimited("binance", func() uint64 { return binSrc.Stats().RateLimited }); err != nil {
		return nil, err
	}
	tp, err := tracerProvider(ctx)
	if err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return tp.Shutdown(sctx)
	})

	if err := os.MkdirAll(g.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if rt.store, err = g.openStore(ctx); err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, rt.store.Close)
	if rt.coord, err = rt.openCoordinator(ctx); err != nil {
		return nil, err
	}
	if rt.reports, err = reportlog.Open(filepath.Join(g.dataDir, "reports")); err != nil {
		return nil, fmt.Errorf("report archive: %w", err)
	}
	arts, err := g.openArtifacts()
	if err != nil {
		return nil, err
	}
	if rt.schemas, err = g.openSchemaRegistry(ctx, rt); err != nil {
		return nil, err
	}
	tier, err := rt.openLive()
	if err != nil {
		return nil, err
	}
	var cacheBytes int64
	if v := env("SEAMLESS_CACHE_BYTES"); v != "" {
		if cacheBytes, err = strconv.ParseInt(v, 10, 64); err != nil {
			return nil, &seamless.RequestError{Field: "SEAMLESS_CACHE_BYTES", Message: "want a byte count (0 default, negative off)"}
		}
	}
	var sources seamless.Router = seamless.Sources{"demo": demoSrc, "binance": binSrc}
	aliases, err := aliasesFromEnv()
	if err != nil {
		return nil, err
	}
	if len(aliases) > 0 {
		sources = seamless.Aliases{Sources: sources, IDs: aliases}
	}
	rt.provider, err = seamless.New(seamless.Config{
		Live: tier, CacheBytes: cacheBytes, Backfill: rt.backfill,
		Store: rt.store, Coordinator: rt.coord, MaxBars: g.maxBars, Logger: rt.log, Observer: rt.metrics, TracerProvider: tp,
		Sources:   sources,
		Reports:   reportSink{rt.reports},
		Artifacts: artifact.Publisher(arts, "seamless"),
		Schemas:   rt.schemas.Validator(),
	})
	if err != nil {
		return nil, err
	}
	// The live tier stops first (it writes through the provider), then the provider
	// stops its background work, then the store closes.
	rt.closers = append([]func() error{tier.Close, rt.provider.Close}, rt.closers...)
	return rt, nil
}

// aliasesFromEnv reads SEAMLESS_NODE_ALIASES: comma-separated alias=node entries that
// serve node ids outside the standard grammar (SPEC §1), e.g.
// "btc-1m=ohlcv:binance:BTC/USDT:1m,eth-1h=ohlcv:binance:ETH/USDT:1h".
func aliasesFromEnv() (map[string]string, error) {
	v := env("SEAMLESS_NODE_ALIASES")
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	bad := func(msg string, args ...any) error {
		return &seamless.RequestError{Field: "SEAMLESS_NODE_ALIASES", Message: fmt.Sprintf(msg, args...)}
	}
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

// backfillFromEnv reads the backfill tier's settings (SPEC §2 BackfillConfig):
// SEAMLESS_LEASE_TTL (both lease TTLs) and the SEAMLESS_BACKFILL_* variables (file keys
// backfill_*). Unset ones stay zero, which the provider replaces by the reference's
// defaults (seamless.DefaultBackfillConfig); a set one out of its bounds is a bad request
// naming the variable.
func backfillFromEnv() (seamless.BackfillConfig, error) {
	var bf seamless.BackfillConfig
	def := seamless.DefaultBackfillConfig()
	if v := env("SEAMLESS_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return bf, &seamless.RequestError{Field: "SEAMLESS_LEASE_TTL", Message: "want a duration of at least 1s, e.g. 30s"}
		}
		bf.DistributedLeaseTTL, bf.SingleFlightTTL = d, d
	}
	n, err := intEnv("SEAMLESS_BACKFILL_WINDOW_BARS", "bars per aligned chunk", 1, 1_000_000, def.WindowBars)
	if err != nil {
		return bf, err
	}
	bf.WindowBars = n
	if n, err = intEnv("SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS", "concurrent upstream requests", 1, 1024, int64(def.MaxConcurrentRequests)); err != nil {
		return bf, err
	}
	bf.MaxConcurrentRequests = int(n)
	if n, err = intEnv("SEAMLESS_BACKFILL_MAX_ATTEMPTS", "upstream attempts per chunk", 1, 100, int64(def.MaxAttempts)); err != nil {
		return bf, err
	}
	bf.MaxAttempts = int(n)
	if n, err = intEnv("SEAMLESS_BACKFILL_RETRY_BACKOFF_MS", "milliseconds before the first retry", 1, 600_000, def.RetryBackoff.Milliseconds()); err != nil {
		return bf, err
	}
	bf.RetryBackoff = time.Duration(n) * time.Millisecond
	if v := env("SEAMLESS_BACKFILL_JITTER_RATIO"); v != "" {
		// 0 cannot be expressed (a zero field means the default); above 1 a retry
		// delay could turn negative.
		r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || !(r > 0 && r <= 1) {
			return bf, &seamless.RequestError{Field: "SEAMLESS_BACKFILL_JITTER_RATIO", Message: fmt.Sprintf("%q: want a number above 0 and at most 1 (default %g)", v, def.JitterRatio)}
		}
		bf.JitterRatio = r
	}
	if v := env("SEAMLESS_BACKFILL_ATTEMPT_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < time.Second {
			return bf, &seamless.RequestError{Field: "SEAMLESS_BACKFILL_ATTEMPT_TIMEOUT", Message: fmt.Sprintf("%q: want a duration of at least 1s, e.g. 90s (default %v)", v, def.AttemptTimeout)}
		}
		bf.AttemptTimeout = d
	}
	if v := env("SEAMLESS_BACKFILL_SETTLE_WINDOW"); v != "" {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil || d < time.Second || d > 24*time.Hour {
			return bf, &seamless.RequestError{Field: "SEAMLESS_BACKFILL_SETTLE_WINDOW", Message: fmt.Sprintf("%q: want a duration from 1s to 24h, e.g. 10m (default %v)", v, def.SettleWindow)}
		}
		bf.SettleWindow = d
	}
	return bf, nil
}

// maxBarsFromEnv reads SEAMLESS_MAX_BARS (file key max_bars, flag --max-bars): the
// most bars one request may ask for. Unset is 0 (seamless.DefaultMaxBars applies); a
// set value that is not a whole number of at least 1 is a bad request naming the
// variable. It has no QMTL_ alias (see qmtlAliased), so it is read under its own name.
func maxBarsFromEnv() (int64, error) {
	v := os.Getenv("SEAMLESS_MAX_BARS")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 1 {
		return 0, &seamless.RequestError{Field: "SEAMLESS_MAX_BARS", Message: fmt.Sprintf("%q: want a whole number of bars per request, at least 1 (default %d)", v, seamless.DefaultMaxBars)}
	}
	return n, nil
}

// intEnv reads a whole-number variable in [lo, hi]; unset is 0 (the default, def,
// applies). A bad value is a *seamless.RequestError naming the variable.
func intEnv(name, what string, lo, hi, def int64) (int64, error) {
	v := env(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, &seamless.RequestError{Field: name, Message: fmt.Sprintf("%q: want a whole number of %s from %d to %d (default %d)", v, what, lo, hi, def)}
	}
	return n, nil
}

// openStore opens SEAMLESS_STORE: empty or "pebble" for the embedded store under the
// data dir, a postgres:// DSN for PostgreSQL.
func (g *globals) openStore(ctx context.Context) (seamless.Store, error) {
	switch u := env("SEAMLESS_STORE"); {
	case u == "" || u == "pebble":
		st, err := pebblestore.Open(g.dataDir, pebblestore.Options{})
		if err != nil {
			return nil, fmt.Errorf("open embedded store in %s: %w", g.dataDir, err)
		}
		return st, nil
	case strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://"):
		st, err := pgstore.Open(ctx, u, pgstore.Options{})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, nil
	default:
		return nil, &seamless.RequestError{Field: "SEAMLESS_STORE", Message: "want pebble or a postgres:// DSN"}
	}
}

// openCoordinator opens SEAMLESS_COORDINATOR_URL (alias QMTL_SEAMLESS_COORDINATOR_URL):
// empty for the in-process guard, etcd://host:port[,…] for etcd, http(s)://host:port
// for a remote lease API. A remote coordinator is wrapped so that, when unreachable,
// backfill falls back to the local guard loudly. It is checked once at start (etcd: a
// ping; lease API: GET /healthz; both bounded by coordinatorProbeTimeout):
// SEAMLESS_PROFILE=prod refuses to start when it does not answer, other profiles log
// seamless.backfill.coordinator_unreachable with the URL and the error and start (the
// fallback covers it). Stale claims found by any coordinator of this process (etcd's,
// the in-process one, the local guard of a fallback) count in
// seamless_backfill_stale_claims_total.
func (rt *runtime) openCoordinator(ctx context.Context) (seamless.Coordinator, error) {
	u := env("SEAMLESS_COORDINATOR_URL")
	prod := env("SEAMLESS_PROFILE") == "prod"
	if u == "" {
		if prod {
			return nil, errors.New("profile prod needs SEAMLESS_COORDINATOR_URL (etcd://host:port or http://host:port)")
		}
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
	if !strings.HasPrefix(u, "etcd://") {
		return nil, &seamless.RequestError{Field: "SEAMLESS_COORDINATOR_URL", Message: fmt.Sprintf("%q: want etcd://host:port[,host:port…] or http://host:port", u)}
	}
	hostname, _ := os.Hostname()
	c, cli, err := etcdcoord.Dial(u, etcdcoord.Options{Holder: hostname + ":" + strconv.Itoa(os.Getpid()), Logger: rt.log, OnStaleClaim: rt.metrics.StaleClaim})
	if err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, cli.Close)
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

// openArtifacts opens the artifact registrar: S3 when SEAMLESS_ARTIFACTS_S3_ENDPOINT
// is set, else a directory under the data dir.
func (g *globals) openArtifacts() (artifact.Registrar, error) {
	if ep := env("SEAMLESS_ARTIFACTS_S3_ENDPOINT"); ep != "" {
		r, err := artifact.NewS3Registrar(artifact.S3Config{
			Endpoint: ep, Bucket: env("SEAMLESS_ARTIFACTS_S3_BUCKET"),
			AccessKey: env("SEAMLESS_ARTIFACTS_S3_ACCESS_KEY"), SecretKey: env("SEAMLESS_ARTIFACTS_S3_SECRET_KEY"),
			Prefix: env("SEAMLESS_ARTIFACTS_S3_PREFIX"), Region: env("SEAMLESS_ARTIFACTS_S3_REGION"),
			TLS: env("SEAMLESS_ARTIFACTS_S3_TLS") != "false",
		}, nil)
		if err != nil {
			return nil, fmt.Errorf("artifact registrar: %w", err)
		}
		return r, nil
	}
	return artifact.NewDirRegistrar(filepath.Join(g.dataDir, "artifacts"), nil), nil
}

func (rt *runtime) Close() error {
	var errs []error
	for _, c := range rt.closers {
		errs = append(errs, c())
	}
	rt.closers = nil
	return errors.Join(errs...)
}

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
	rt.closers = append(rt.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	return nil
}

// openSchemaRegistry opens the schema registry in the configured store: PostgreSQL
// tables beside the bars when SEAMLESS_STORE is a DSN, else a JSON-lines log under
// the data dir. Validation failures are counted in
// seamless_schema_validation_failures_total{subject,mode}.
func (g *globals) openSchemaRegistry(ctx context.Context, rt *runtime) (*sr.Registry, error) {
	var st sr.Store
	if u := env("SEAMLESS_STORE"); strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		pg, err := srpg.Open(ctx, u, srpg.Options{})
		if err != nil {
			return nil, fmt.Errorf("schema registry: %w", err)
		}
		rt.closers = append(rt.closers, pg.Close)
		st = pg
	} else {
		fs, err := srfile.Open(filepath.Join(g.dataDir, "schemaregistry"))
		if err != nil {
			return nil, fmt.Errorf("schema registry: %w", err)
		}
		rt.closers = append(rt.closers, fs.Close)
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
	// Closed before its store (closers run in order; prepend).
	rt.closers = append([]func() error{reg.Close}, rt.closers...)
	return reg, nil
}

// openLive starts the live tier: Binance kline websockets (SEAMLESS_BINANCE_WS_URL)
// and the demo feed. Subscriptions start on demand when requests reach the newest bars.
func (rt *runtime) openLive() (*live.Tier, error) {
	wsOpts, err := binancews.OptionsFromEnv()
	if err != nil {
		return nil, &seamless.RequestError{Field: "env", Message: err.Error()}
	}
	wsOpts.OnReconnect, wsOpts.Logger = rt.metrics.LiveReconnect, rt.log
	ws, err := binancews.New(wsOpts)
	if err != nil {
		return nil, err
	}
	opts, err := live.OptionsFromEnv()
	if err != nil {
		return nil, &seamless.RequestError{Field: "env", Message: err.Error()}
	}
	opts.Feeds = map[string]seamless.LiveFeed{"binance": ws, "demo": demolive.New(demolive.Options{})}
	for source := range opts.Feeds {
		rt.metrics.LiveSource(source)
	}
	opts.Logger = rt.log // the provider binds itself as the sink: live bars take its write path
	tier, err := live.New(opts)
	if err != nil {
		return nil, err
	}
	return tier, nil
}
