package seamless

import (
	"time"

	"github.com/seamless-data/seamless/conformance"
)

// Observer receives the provider's measurements. Each tier reports to a small interface
// of its own (RequestObserver, CacheObserver, BackfillObserver, QualityObserver); an
// Observer is any value implementing some of them, and a tier whose interface it does
// not implement reports nothing. So a new tier adds an interface,
// not a method every implementation must grow. The Prometheus implementation in package
// telemetry implements them all. Methods must be cheap and safe for concurrent use.
//
// Node ids passed to observers belong to requests that validated and routed; a failed
// request for a series the store holds nothing of is reported as OtherSeries, so that
// requests for made-up ids cannot grow label sets (package telemetry also caps them).
type Observer any

// RequestObserver sees each Fetch: its phases, the tiers that served it, and the SLA's
// verdict.
type RequestObserver interface {
	// Request is called once per Fetch with its strategy, error code ("ok" on
	// success) and duration.
	Request(strategy Strategy, code string, d time.Duration)
	// Phase is called for each SLA phase a request ran.
	Phase(nodeID, phase string, d time.Duration)
	// Served counts bars answered from a tier (cache, storage, backfill, live).
	Served(tier string, bars int)
	// Coverage reports a response's coverage ratio and staleness (seconds, or -1 when
	// it has no bars).
	Coverage(s Series, ratio float64, stalenessSeconds float64)
	// SLAViolation counts a budget violation and the mode it was handled with.
	SLAViolation(phase string, mode OnViolation)
	// Downgrade counts a downgraded response.
	Downgrade(mode OnViolation, reason string)
}

// CacheObserver sees the cache tier.
type CacheObserver interface {
	// Cache counts the cache tier's chunk hits and misses of one read.
	Cache(hits, misses int)
}

// BackfillObserver sees the backfill tier: runs, leased chunks and upstream calls.
type BackfillObserver interface {
	// BackfillJob is called with +1 when a backfill run starts and -1 when it ends.
	BackfillJob(delta int)
	// ChunkProgress reports a leased chunk's completion ratio (0..1); ChunkDone ends it,
	// so per-lease series do not outlive their lease.
	ChunkProgress(s Series, leaseKey string, ratio float64)
	ChunkDone(s Series, leaseKey string)
	// ChunkFetched reports a chunk written: its newest bar and how long the chunk took
	// from claim to write (the gap repair latency).
	ChunkFetched(s Series, lastTS int64, latency time.Duration)
	// BackfillRetry and BackfillFailure count retried attempts and failed chunks.
	BackfillRetry(s Series)
	BackfillFailure(s Series)
	// Upstream counts one upstream fetch attempt of a source by outcome code: ok,
	// error (retryable), permanent or canceled.
	Upstream(source, code string)
}

// QualityObserver sees the conformance pipeline.
type QualityObserver interface {
	// Conformance reports a conformance pipeline run's findings.
	Conformance(s Series, rep conformance.Report)
}

// observers resolves an Observer into the per-tier interfaces it implements, the rest
// discarding.
type observers struct {
	request  RequestObserver
	cache    CacheObserver
	backfill BackfillObserver
	quality  QualityObserver
}

func resolveObservers(o Observer) observers {
	var os observers
	var ok bool
	if os.request, ok = o.(RequestObserver); !ok {
		os.request = nopObserver{}
	}
	if os.cache, ok = o.(CacheObserver); !ok {
		os.cache = nopObserver{}
	}
	if os.backfill, ok = o.(BackfillObserver); !ok {
		os.backfill = nopObserver{}
	}
	if os.quality, ok = o.(QualityObserver); !ok {
		os.quality = nopObserver{}
	}
	return os
}

// nopObserver discards everything.
type nopObserver struct{}

func (nopObserver) Request(Strategy, string, time.Duration)   {}
func (nopObserver) Phase(string, string, time.Duration)       {}
func (nopObserver) Served(string, int)                        {}
func (nopObserver) Coverage(Series, float64, float64)         {}
func (nopObserver) SLAViolation(string, OnViolation)          {}
func (nopObserver) Downgrade(OnViolation, string)             {}
func (nopObserver) BackfillJob(int)                           {}
func (nopObserver) ChunkProgress(Series, string, float64)     {}
func (nopObserver) ChunkDone(Series, string)                  {}
func (nopObserver) ChunkFetched(Series, int64, time.Duration) {}
func (nopObserver) BackfillRetry(Series)                      {}
func (nopObserver) BackfillFailure(Series)                    {}
func (nopObserver) Upstream(string, string)                   {}
func (nopObserver) Cache(int, int)                            {}
func (nopObserver) Conformance(Series, conformance.Report)    {}

// OtherSeries is the node id under which observers see what cannot be told apart
// without unbounded labels: the phases of failed requests for series the store holds
// nothing of.
const OtherSeries = "other"
