// Package telemetry turns the provider's measurements into Prometheus metrics with the
// reference's names (SPEC §8), so existing dashboards and alerts keep working.
//
// Cardinality: node_id labels come only from requests that validated and routed to a
// source (failed requests for series the store holds nothing of come as
// seamless.OtherSeries), and a Metrics hands out at most MaxNodeLabels distinct node_id
// values — later ones are reported as node_id="other" — so requests for made-up series
// cannot grow the label sets without bound; per-lease series
// (backfill_completion_ratio) are deleted when their lease ends. Every histogram's
// buckets fit its unit: seconds from 1 ms to 600 s, gap repair from 10 ms to 10 min.
package telemetry

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/conformance"
)

// SecondsBuckets span 1 ms to 10 min (the reference's default buckets stop at 10 s, so
// its 240 s p99 alert could never fire).
var SecondsBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 240, 300, 600}

// MillisBuckets span 10 ms to 10 min, in milliseconds.
var MillisBuckets = []float64{10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000, 600000}

// Metrics implements the seamless per-tier observers on Prometheus collectors.
type Metrics struct {
	slaDeadline         *prometheus.HistogramVec
	requests            *prometheus.CounterVec
	requestDuration     *prometheus.HistogramVec
	barsServed          *prometheus.CounterVec
	coverageRatio       *prometheus.GaugeVec
	liveStaleness       *prometheus.GaugeVec
	gapRepair           *prometheus.HistogramVec
	jobsInProgress      prometheus.Gauge
	lastTimestamp       *prometheus.GaugeVec
	backfillFailures    *prometheus.CounterVec
	backfillRetries     *prometheus.CounterVec
	completionRatio     *prometheus.GaugeVec
	staleClaims         prometheus.Counter
	slaViolations       *prometheus.CounterVec
	domainHolds         *prometheus.CounterVec
	partialFills        *prometheus.CounterVec
	coordinatorFallback prometheus.Counter
	conformanceFlags    *prometheus.CounterVec
	conformanceWarnings *prometheus.CounterVec
	upstream            *prometheus.CounterVec
	liveReconnects      *prometheus.CounterVec
	cacheHits           prometheus.Counter
	cacheMisses         prometheus.Counter
	reg                 prometheus.Registerer

	// node_id label values handed out: read without a lock on every observation (the
	// hot path), written under nodesMu, at most MaxNodeLabels of them.
	nodes     sync.Map // string → struct{}
	nodesMu   sync.Mutex
	nodeCount int
}

// MaxNodeLabels bounds the distinct node_id label values of a Metrics: 10,000 series
// is far more than one deployment serves, and the bound keeps a stream of requests for
// made-up series from growing every per-series metric without end.
const MaxNodeLabels = 10_000

// node is the node_id label value for id: id itself while fewer than MaxNodeLabels
// distinct values have been handed out (or id is one of them), else
// seamless.OtherSeries.
func (m *Metrics) node(id string) string {
	if _, ok := m.nodes.Load(id); ok {
		return id
	}
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	if _, ok := m.nodes.Load(id); ok {
		return id
	}
	if m.nodeCount >= MaxNodeLabels {
		return seamless.OtherSeries
	}
	m.nodes.Store(id, struct{}{})
	m.nodeCount++
	return id
}

// New creates the metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		slaDeadline: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "seamless_sla_deadline_seconds", Help: "Time spent per SLA phase of a request.", Buckets: SecondsBuckets,
		}, []string{"node_id", "phase"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_requests_total", Help: "Fetch requests by strategy and outcome code (ok or an error code).",
		}, []string{"strategy", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "seamless_request_duration_seconds", Help: "Fetch latency by strategy.", Buckets: SecondsBuckets,
		}, []string{"strategy"}),
		barsServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_bars_served_total", Help: "Bars answered, by tier.",
		}, []string{"tier"}),
		coverageRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "coverage_ratio", Help: "Coverage ratio of the latest response per series.",
		}, []string{"node_id", "interval"}),
		liveStaleness: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "live_staleness_seconds", Help: "Age of the newest bar of the latest response per series.",
		}, []string{"node_id", "interval"}),
		gapRepair: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gap_repair_latency_ms", Help: "Time from claiming a missing chunk to its bars being stored, ms.", Buckets: MillisBuckets,
		}, []string{"node_id", "interval"}),
		jobsInProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "backfill_jobs_in_progress", Help: "Backfill runs in progress.",
		}),
		lastTimestamp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backfill_last_timestamp", Help: "Newest bar ts (epoch seconds) written by backfill per series.",
		}, []string{"node_id", "interval"}),
		backfillFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backfill_failure_total", Help: "Backfill chunks that failed after retries.",
		}, []string{"node_id", "interval"}),
		backfillRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "backfill_retry_total", Help: "Upstream fetch attempts retried.",
		}, []string{"node_id", "interval"}),
		completionRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "backfill_completion_ratio", Help: "Completion of each held backfill lease (removed when the lease ends).",
		}, []string{"node_id", "interval", "lease_key"}),
		staleClaims: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seamless_backfill_stale_claims_total", Help: "Leases found abandoned by a vanished holder.",
		}),
		slaViolations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_sla_violations_total", Help: "SLA budget violations by phase and handling mode.",
		}, []string{"phase", "mode"}),
		domainHolds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "domain_gate_holds_total", Help: "Responses downgraded to hold, by reason.",
		}, []string{"reason"}),
		partialFills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "partial_fill_returns_total", Help: "Responses returned partially under partial_fill, by reason.",
		}, []string{"reason"}),
		coordinatorFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seamless_coordinator_fallback_total", Help: "Coordinator calls that fell back to the local guard because the coordinator was unreachable.",
		}),
		conformanceFlags: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_conformance_flag_total", Help: "Conformance findings by flag.",
		}, []string{"node_id", "interval", "flag_type"}),
		conformanceWarnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_conformance_warning_total", Help: "Conformance warnings.",
		}, []string{"node_id", "interval"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_upstream_requests_total", Help: "Upstream fetch attempts by source and outcome (ok, error, permanent, canceled).",
		}, []string{"source", "code"}),
		liveReconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_live_reconnects_total", Help: "Live feed reconnect attempts by source.",
		}, []string{"source"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seamless_cache_hit_total", Help: "Chunks served from the cache tier.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seamless_cache_miss_total", Help: "Cacheable chunks (covered and closed) read from storage instead.",
		}),
		reg: reg,
	}
	for _, c := range []prometheus.Collector{m.slaDeadline, m.requests, m.requestDuration, m.barsServed, m.coverageRatio,
		m.liveStaleness, m.gapRepair, m.jobsInProgress, m.lastTimestamp, m.backfillFailures, m.backfillRetries,
		m.completionRatio, m.staleClaims, m.slaViolations, m.domainHolds, m.partialFills, m.coordinatorFallback,
		m.conformanceFlags, m.conformanceWarnings, m.upstream, m.liveReconnects, m.cacheHits, m.cacheMisses} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Metrics reports every tier.
var (
	_ seamless.RequestObserver  = (*Metrics)(nil)
	_ seamless.CacheObserver    = (*Metrics)(nil)
	_ seamless.BackfillObserver = (*Metrics)(nil)
	_ seamless.QualityObserver  = (*Metrics)(nil)
)

func iv(s seamless.Series) string { return strconv.FormatInt(s.Interval, 10) }

// Request implements seamless.RequestObserver.
func (m *Metrics) Request(strategy seamless.Strategy, code string, d time.Duration) {
	m.requests.WithLabelValues(string(strategy), code).Inc()
	m.requestDuration.WithLabelValues(string(strategy)).Observe(d.Seconds())
}

// Phase implements seamless.RequestObserver.
func (m *Metrics) Phase(nodeID, phase string, d time.Duration) {
	m.slaDeadline.WithLabelValues(m.node(nodeID), phase).Observe(d.Seconds())
}

// Served implements seamless.RequestObserver.
func (m *Metrics) Served(tier string, bars int) {
	if bars > 0 {
		m.barsServed.WithLabelValues(tier).Add(float64(bars))
	}
}

// Coverage implements seamless.RequestObserver.
func (m *Metrics) Coverage(s seamless.Series, ratio, staleness float64) {
	m.coverageRatio.WithLabelValues(m.node(s.NodeID), iv(s)).Set(ratio)
	if staleness >= 0 {
		m.liveStaleness.WithLabelValues(m.node(s.NodeID), iv(s)).Set(staleness)
	}
}

// SLAViolation implements seamless.RequestObserver.
func (m *Metrics) SLAViolation(phase string, mode seamless.OnViolation) {
	m.slaViolations.WithLabelValues(phase, string(mode)).Inc()
}

// Downgrade implements seamless.RequestObserver: hold feeds domain_gate_holds_total,
// partial_fill feeds partial_fill_returns_total (as in the reference).
func (m *Metrics) Downgrade(mode seamless.OnViolation, reason string) {
	switch mode {
	case seamless.ViolationHold:
		m.domainHolds.WithLabelValues(reason).Inc()
	case seamless.ViolationPartialFill:
		m.partialFills.WithLabelValues(reason).Inc()
	}
}

// BackfillJob implements seamless.BackfillObserver.
func (m *Metrics) BackfillJob(delta int) { m.jobsInProgress.Add(float64(delta)) }

// ChunkProgress implements seamless.BackfillObserver.
func (m *Metrics) ChunkProgress(s seamless.Series, leaseKey string, ratio float64) {
	m.completionRatio.WithLabelValues(m.node(s.NodeID), iv(s), leaseKey).Set(ratio)
}

// ChunkDone implements seamless.BackfillObserver: the lease's series is deleted.
func (m *Metrics) ChunkDone(s seamless.Series, leaseKey string) {
	m.completionRatio.DeleteLabelValues(m.node(s.NodeID), iv(s), leaseKey)
}

// ChunkFetched implements seamless.BackfillObserver.
func (m *Metrics) ChunkFetched(s seamless.Series, lastTS int64, latency time.Duration) {
	m.lastTimestamp.WithLabelValues(m.node(s.NodeID), iv(s)).Set(float64(lastTS))
	m.gapRepair.WithLabelValues(m.node(s.NodeID), iv(s)).Observe(float64(latency.Microseconds()) / 1000)
}

// BackfillRetry implements seamless.BackfillObserver.
func (m *Metrics) BackfillRetry(s seamless.Series) {
	m.backfillRetries.WithLabelValues(m.node(s.NodeID), iv(s)).Inc()
}

// BackfillFailure implements seamless.BackfillObserver.
func (m *Metrics) BackfillFailure(s seamless.Series) {
	m.backfillFailures.WithLabelValues(m.node(s.NodeID), iv(s)).Inc()
}

// StaleClaim counts a stale claim (wire it to the coordinator).
func (m *Metrics) StaleClaim() { m.staleClaims.Inc() }

// CoordinatorFallback counts a fallback to the local guard (wire it to
// seamless.FallbackCoordinator.OnFallback).
func (m *Metrics) CoordinatorFallback(string, error) { m.coordinatorFallback.Inc() }

// JobsInProgress exposes the backfill_jobs_in_progress gauge (for tests and health).
func (m *Metrics) JobsInProgress() prometheus.Gauge { return m.jobsInProgress }

// Conformance implements seamless.QualityObserver.
func (m *Metrics) Conformance(s seamless.Series, rep conformance.Report) {
	for flag, n := range rep.FlagsCounts {
		m.conformanceFlags.WithLabelValues(m.node(s.NodeID), iv(s), flag).Add(float64(n))
	}
	if n := len(rep.Warnings); n > 0 {
		m.conformanceWarnings.WithLabelValues(m.node(s.NodeID), iv(s)).Add(float64(n))
	}
}

// Upstream implements seamless.BackfillObserver.
func (m *Metrics) Upstream(source, code string) { m.upstream.WithLabelValues(source, code).Inc() }

// RateLimited exports seamless_upstream_rate_limited_total{source} from a source's own
// counter of rate-limit answers (429/418), read at scrape time.
func (m *Metrics) RateLimited(source string, count func() uint64) error {
	return m.reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "seamless_upstream_rate_limited_total",
		Help:        "Upstream answers that were rate limits (HTTP 429 or 418).",
		ConstLabels: prometheus.Labels{"source": source},
	}, func() float64 { return float64(count()) }))
}

// LiveSource exports seamless_live_reconnects_total for a configured live source at
// zero, so dashboards show the series before the first reconnect.
func (m *Metrics) LiveSource(source string) { m.liveReconnects.WithLabelValues(source) }

// LiveReconnect counts a live feed reconnect attempt (wire it to the feed's
// OnReconnect hook).
func (m *Metrics) LiveReconnect(source string) { m.liveReconnects.WithLabelValues(source).Inc() }

// Cache implements seamless.CacheObserver.
func (m *Metrics) Cache(hits, misses int) {
	m.cacheHits.Add(float64(hits))
	m.cacheMisses.Add(float64(misses))
}
