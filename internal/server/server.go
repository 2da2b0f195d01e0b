// Package server is the Seamless gateway: the HTTP API of SPEC §2 over a
// seamless.Provider. Requests flow auth → limits → route → Provider → encoder
// (JSON, CSV or Arrow IPC); errors become {"error":{…}} documents with the status of
// their code (see package wire, which the public client shares).
//
// Lifecycle: Serve answers until its context ends, then stops accepting connections,
// cancels background backfill jobs, lets in-flight requests finish (up to
// Config.ShutdownTimeout) and returns. The caller then closes the Provider (stopping
// partial_fill work) and the Store: the Server owns neither.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/internal/server/admission"
)

// DefaultAddr is where `seamless serve` listens unless told otherwise (SPEC §7).
const DefaultAddr = "127.0.0.1:8080"

// Config assembles a Server. Provider is required; zero fields take the defaults
// documented on each.
type Config struct {
	Provider *seamless.Provider
	// Tokens, when non-empty, turn on bearer-token auth for every /v1 route.
	Tokens []Token
	// MaxConcurrentFetches bounds the /v1/bars requests planning, reading, backfilling
	// and checking at once (0: sized from the machine, admission.AutoSlots). Requests
	// past it wait in a queue of FetchQueue (0: 32 per slot) for at most FetchQueueWait
	// (default 10 s, or the request's own deadline); only then, or with the queue full,
	// the server answers 429 with Retry-After.
	MaxConcurrentFetches int
	FetchQueue           int
	FetchQueueWait       time.Duration
	// MaxConcurrentStreams bounds the /v1/bars answers being written to clients at
	// once (0: 4 per fetch slot; queued as fetches are). Writing holds its own slot, not
	// a fetch slot, so slow readers cannot keep fetches from starting. Each write
	// to the connection must make progress within StreamStallTimeout (default 30 s), or
	// the answer is cut off and the connection closed.
	MaxConcurrentStreams int
	StreamStallTimeout   time.Duration
	// MaxBackfillJobs bounds the background backfill jobs running at once (default 2);
	// MaxQueuedJobs bounds those waiting for a slot (default 64; past it, 429).
	MaxBackfillJobs int
	MaxQueuedJobs   int
	// JobRetention is how long a finished job stays visible (default 1 h).
	JobRetention time.Duration
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// BarsTimeout bounds one /v1/bars request, fetch and streaming together
	// (default 15 min). Other routes get RouteTimeout (default 1 min).
	BarsTimeout  time.Duration
	RouteTimeout time.Duration
	// ReadHeaderTimeout and IdleTimeout tune the connection (defaults 10 s and 2 min).
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// ShutdownTimeout bounds how long Serve waits for in-flight requests after its
	// context ends (default 30 s); requests still running then are cancelled.
	ShutdownTimeout time.Duration
	// Registry receives the server's metrics and is served on /metrics. Nil means a
	// new NewRegistry(). Other components register their collectors on the same one.
	Registry *prometheus.Registry
	Clock    clock.Clock
	Logger   *slog.Logger
	// Mounts adds handlers of other components (the lease API, the schema registry)
	// under the server's instrumentation, deadlines and, unless Public, its auth.
	Mounts []Mount
	// Addr is the listen address as configured ("seamless:8080"); without Tokens the
	// server answers only requests whose Host is its host, localhost, an IP address
	// or one of AllowedHosts (hostguard.go: DNS-rebinding protection).
	Addr         string
	AllowedHosts []string
	// Stream sets the limits of GET /v1/stream (stream.go).
	Stream StreamConfig
}

// Mount is an extra handler served at Pattern (a ServeMux pattern).
type Mount struct {
	Pattern string
	Handler http.Handler
	// Public mounts skip bearer-token auth.
	Public bool
}

func (c Config) withDefaults() Config {
	setDefault(&c.MaxConcurrentFetches, admission.AutoSlots())
	setDefault(&c.FetchQueueWait, admission.DefaultMaxWait)
	setDefault(&c.MaxConcurrentStreams, 4*c.MaxConcurrentFetches)
	setDefault(&c.StreamStallTimeout, 30*time.Second)
	setDefault(&c.MaxBackfillJobs, 2)
	setDefault(&c.MaxQueuedJobs, 64)
	setDefault(&c.JobRetention, time.Hour)
	setDefault(&c.MaxBodyBytes, 64<<10)
	setDefault(&c.BarsTimeout, 15*time.Minute)
	setDefault(&c.RouteTimeout, time.Minute)
	setDefault(&c.ReadHeaderTimeout, 10*time.Second)
	setDefault(&c.IdleTimeout, 2*time.Minute)
	setDefault(&c.ShutdownTimeout, 30*time.Second)
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Server is the HTTP gateway. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg      Config
	provider *seamless.Provider
	handler  http.Handler
	metrics  *metrics
	jobs     *jobs
	// fetches admits /v1/bars requests to their fetch, streams to writing the answer.
	fetches    *admission.Controller
	barStreams *admission.Controller
	streams    *streams
	draining   atomic.Bool
	// inflight counts handlers running, so that a forced shutdown can still wait for
	// them to notice their cancelled context before the Provider is closed.
	inflight sync.WaitGroup
	// routeList is every route pattern routes() registered (Routes).
	routeList []string
	hosts     *hostGuard
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Provider == nil {
		return nil, errors.New("server: Config.Provider is required")
	}
	cfg = cfg.withDefaults()
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		provider: cfg.Provider,
		metrics:  m,
		jobs:     newJobs(cfg.Provider, cfg.MaxBackfillJobs, cfg.MaxQueuedJobs, cfg.JobRetention, cfg.Clock, cfg.Logger),
		hosts:    newHostGuard(cfg.Addr, cfg.AllowedHosts),
	}
	am, err := admission.NewMetrics(cfg.Registry, "fetch", "stream")
	if err != nil {
		return nil, err
	}
	s.fetches = admission.New(admission.Config{Name: "fetch", Slots: cfg.MaxConcurrentFetches, MaxQueue: cfg.FetchQueue, MaxWait: cfg.FetchQueueWait}, am)
	s.barStreams = admission.New(admission.Config{Name: "stream", Slots: cfg.MaxConcurrentStreams, MaxQueue: cfg.FetchQueue, MaxWait: cfg.FetchQueueWait}, am)
	if s.streams, err = s.newStreams(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler, for tests and for embedding it under
// another server. Its background jobs stop only when Serve returns or Close is called.
func (s *Server) Handler() http.Handler { return s.handler }

// Close cancels background backfill jobs and waits for them to stop. Serve calls it.
func (s *Server) Close() error {
	s.draining.Store(true)
	s.streams.shutdown()
	s.jobs.close()
	return nil
}

// Serve answers on ln until ctx ends, then shuts down gracefully: no new connections,
// background jobs cancelled, in-flight requests given ShutdownTimeout to finish. It
// returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// No global WriteTimeout: every route sets its own write deadline, so that a
	// million-bar stream is not cut off by a limit meant for health checks.
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(s.streams.shutdown) // streams end with a cursor; see stream.go
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	s.cfg.Logger.Info("seamless.http.serving", "addr", ln.Addr().String(), "auth", len(s.cfg.Tokens) > 0)
	select {
	case err := <-served:
		s.Close()
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.cfg.Logger.Info("seamless.http.shutdown", "timeout", s.cfg.ShutdownTimeout.String())
	s.draining.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	// Jobs are stopped alongside the drain: they may run for hours, requests not.
	jobsDone := make(chan struct{})
	go func() { s.jobs.close(); close(jobsDone) }()
	err := srv.Shutdown(shutdownCtx)
	if err != nil {
		// Past the deadline: closing the connections cancels the requests' contexts.
		s.cfg.Logger.Warn("seamless.http.shutdown_forced", "err", err)
		err = errors.Join(err, srv.Close())
	}
	s.inflight.Wait()
	<-jobsDone
	<-served
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: requests still running after %s were cancelled", s.cfg.ShutdownTimeout)
	}
	return err
}
