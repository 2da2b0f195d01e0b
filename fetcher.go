package seamless

import (
	"context"

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
// tier's extension point; the provider does not blend live data yet, so no
// implementation ships in this package.
type LiveFeed interface {
	// Subscribe delivers bars of s to the returned channel until ctx ends. Forming bars
	// (ts+interval > now) may be delivered and are never stored.
	Subscribe(ctx context.Context, s Series) (<-chan *frame.Frame, error)
}
