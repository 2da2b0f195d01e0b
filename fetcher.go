package seamless

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Fetcher reads historical bars from an upstream source (an exchange, a file, the demo
// generator). Fetch returns the bars of s with ts in r; bars the source does not have
// are simply absent. Errors are retried by the backfill tier unless marked with
// Permanent. Fetchers must honour ctx cancellation.
type Fetcher interface {
	Fetch(ctx context.Context, s Series, r grid.Range) (*frame.Frame, error)
}

// A HistoryLimiter is a Fetcher that serves only recent history, as Kraken's OHLC
// endpoint serves only its newest 720 bars. Oldest returns the oldest ts it can serve
// for s at now. The backfill tier asks it for nothing older: the older part of a
// chunk stays uncovered (a hole the source cannot fill, reported as a gap), never
// recorded as covered-but-empty as if the market had been closed.
type HistoryLimiter interface {
	Oldest(s Series, now time.Time) int64
}

// FetcherFunc adapts a function to Fetcher.
type FetcherFunc func(ctx context.Context, s Series, r grid.Range) (*frame.Frame, error)

// Fetch calls f.
func (f FetcherFunc) Fetch(ctx context.Context, s Series, r grid.Range) (*frame.Frame, error) {
	return f(ctx, s, r)
}

// Router maps a node id to the Fetcher serving it.
type Router interface {
	// Route returns the fetcher for the node, or an error wrapping ErrUnknownSource.
	Route(node NodeID) (Fetcher, error)
}

// A NodeResolver is a Router that also serves node ids outside the standard grammar
// (SPEC §1: "other node ids are allowed when a route maps them to a source").
// ResolveNode returns the standard node id such an id stands for — its kind, source,
// symbol and timeframe decide the schema, the interval, the route and what upstream
// is asked for — or an error wrapping ErrUnknownSource when no route knows it.
type NodeResolver interface {
	ResolveNode(id string) (NodeID, error)
}

// Aliases is a Router that serves node ids of any form by mapping each to a standard
// node id routed by Sources, e.g. {"btc-1m": "ohlcv:binance:BTC/USDT:1m"}. The alias
// names the series in storage, metadata, reports and metrics; the source fetches the
// standard id. (The live tier serves standard ids only.)
type Aliases struct {
	Sources Router
	IDs     map[string]string
}

// Route implements Router.
func (a Aliases) Route(node NodeID) (Fetcher, error) { return a.Sources.Route(node) }

// ResolveNode implements NodeResolver.
func (a Aliases) ResolveNode(id string) (NodeID, error) {
	target, ok := a.IDs[id]
	if !ok {
		return NodeID{}, &SourceError{NodeID: id, Source: "(no route)"}
	}
	n, err := ParseNodeID(target)
	if err != nil {
		return NodeID{}, fmt.Errorf("route of node %q: %w", id, err)
	}
	return n, nil
}

// Sources is a Router keyed by the source part of standard node ids
// ("ohlcv:demo:BTC-USD:1m" → "demo").
type Sources map[string]Fetcher

// Route implements Router.
func (m Sources) Route(node NodeID) (Fetcher, error) {
	if f, ok := m[node.Source]; ok {
		return f, nil
	}
	return nil, &SourceError{NodeID: node.String(), Source: node.Source}
}

// LiveFeed pushes the newest bars of a series as they form and close. It is the live
// tier's extension point: package live subscribes to feeds on demand, dedupes their
// updates, buffers recent closed bars and writes them to the Store.
type LiveFeed interface {
	// Subscribe delivers updates of s on the returned channel until ctx ends, then
	// closes the channel. A feed that loses its upstream reconnects on its own; bars
	// that closed while it was away are simply not delivered (the live tier leaves
	// that hole for backfill). An error means s cannot be served at all (an unknown
	// symbol or timeframe) and should be wrapped with Permanent when retrying is
	// pointless.
	Subscribe(ctx context.Context, s Series) (<-chan LiveUpdate, error)
}

// LiveUpdate is one push of a live feed: one or more bars of the series' schema,
// sorted by ts, either all still forming or all closed.
type LiveUpdate struct {
	Bars *frame.Frame
	// Closed reports the bars final: their values will not change again. Forming bars
	// (Closed false) are provisional and never stored (SPEC §1).
	Closed bool
}

// LiveTier serves the newest bars of series that have a live feed (package live): it
// stores each bar as it closes, extending coverage, and holds the bar still forming.
type LiveTier interface {
	// Serves reports whether a feed exists for the series (it starts nothing).
	Serves(s Series) bool
	// Subscribe starts (or keeps alive) the series' subscription.
	Subscribe(s Series) error
	// WaitClosed blocks until the bar at ts has closed and is stored, or ctx ends. An
	// error wrapping ErrLiveMissed means the feed went past that bar without it (it
	// closed before the subscription, or fell in a hole): backfill it instead.
	WaitClosed(ctx context.Context, s Series, ts int64) error
	// Recent returns the newest contiguous closed bars the tier holds inside r.
	Recent(s Series, r grid.Range) (*frame.Frame, grid.Range)
	// Forming returns the bar still forming, if any.
	Forming(s Series) (*frame.Frame, bool)
}

// ErrLiveMissed is wrapped by LiveTier.WaitClosed when the feed cannot deliver the bar.
var ErrLiveMissed = errors.New("live feed missed the bar")
