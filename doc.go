// Package seamless is the public API of Seamless: one request — node, bar interval, time
// range — answered with a gap-free, sorted, grid-aligned series of bars and metadata that
// says how complete and how fresh it is.
//
// The request path reads top to bottom, one file per step:
//
//	resolve.go   Request ─► resolved: series, schema, fetcher, the grid points wanted
//	planner.go   gate, planLive, planFetch, settle, judge: pure decisions, tested as data
//	fetch.go     the executor: admit ─► live wait ─► plan ─► execute ─► serve ─► answer
//	cache.go     reader: coverage and bars from the cache tier and the Store
//	backfill.go  backfiller: aligned chunks under Coordinator leases, retries, upstream
//	ingest.go    ingester: the one write path (normalise ─► fenced write ─► invalidate ─► notify)
//	quality.go   quality: the conformance pipeline, schema validation, report archive
//	budget.go    budgets: the SLA phases of one request as deadlines
//
// *Provider composes these tiers; each owns its state and is tested alone. Backfilled,
// imported and live bars all reach the Store through the ingest step, and OnIngest
// listeners see every write.
//
// The extension points are the interfaces Store, Fetcher, LiveFeed and Coordinator; each
// has an in-memory implementation (memstore, MemCoordinator) used by tests, and a
// contract test suite (storetest, coordtest) every implementation passes. Observers are
// per tier (RequestObserver, CacheObserver, BackfillObserver, QualityObserver).
//
// Conventions: every range is half-open [start, end) in epoch seconds; bar timestamps are
// bar open times on the interval grid from the Unix epoch; coverage is explicit (written
// with the bars, never inferred from them); only closed bars (ts+interval <= now) are
// stored.
package seamless
