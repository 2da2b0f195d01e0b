// Package seamless is the public API of Seamless: one request — node, bar interval, time
// range — answered with a gap-free, sorted, grid-aligned series of bars and metadata that
// says how complete and how fresh it is.
//
// The request path reads top to bottom:
//
//	Request ─► validate & plan (grid.Set arithmetic over the Store's coverage)
//	        ─► storage tier (Store) ─► backfill tier (Fetcher under Coordinator leases)
//	        ─► live tier (LiveFeed) ─► Result{Frame, Metadata}
//
// The extension points are the interfaces Store, Fetcher, LiveFeed and Coordinator; each
// has an in-memory implementation (memstore, memcoord) used by tests, and a contract
// test suite (storetest) every implementation passes.
//
// Conventions: every range is half-open [start, end) in epoch seconds; bar timestamps are
// bar open times on the interval grid from the Unix epoch; coverage is explicit (written
// with the bars, never inferred from them); only closed bars (ts+interval <= now) are
// stored.
package seamless
