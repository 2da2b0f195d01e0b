package seamless

import (
	"errors"
	"time"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Resolution, the first step of every request: a node id and interval become a series
// with its schema and fetcher, and a range becomes the grid points it means. What comes
// out (resolved) is what the planner plans from.

// resolved is a validated request: the series, its schema and fetcher, and the grid
// points it asks for.
type resolved struct {
	series  Series
	node    NodeID
	schema  frame.Schema
	fetcher Fetcher
	// upstream is the series the fetcher is asked for: series itself for a standard
	// node id, the standard id a routed alias stands for otherwise.
	upstream Series
	// want is the request aligned to the grid: exactly its expected grid points.
	want grid.Range
	// closed is the part of want whose bars are closed at planning time: the only
	// part that can be stored or backfilled.
	closed grid.Range
}

// parseNode reads a node id: the standard grammar, or an id a NodeResolver router
// maps to a standard one.
func (p *Provider) parseNode(nodeID string) (NodeID, error) {
	// A routed alias is bounded like a standard id: it names a stored series too.
	if err := checkNodeIDLength(nodeID); err != nil {
		return NodeID{}, &RequestError{Field: "node_id", Message: err.Error()}
	}
	node, err := ParseNodeID(nodeID)
	if err == nil {
		return node, nil
	}
	if r, ok := p.sources.(NodeResolver); ok {
		n, rerr := r.ResolveNode(nodeID)
		if rerr == nil {
			return n, nil
		}
		if !errors.Is(rerr, ErrUnknownSource) {
			return NodeID{}, &RequestError{Field: "node_id", Message: rerr.Error()}
		}
	}
	return NodeID{}, &RequestError{Field: "node_id", Message: err.Error()}
}

// Resolve validates a series and finds its schema and fetcher.
func (p *Provider) resolve(nodeID string, interval int64) (resolved, error) {
	node, err := p.parseNode(nodeID)
	if err != nil {
		return resolved{}, err
	}
	if interval <= 0 {
		return resolved{}, badRequest("interval", "must be a positive number of seconds, got %d", interval)
	}
	if interval != node.Interval {
		return resolved{}, badRequest("interval", "%d s does not match the timeframe %q (%d s) of node %s", interval, node.Timeframe, node.Interval, nodeID)
	}
	schema, ok := node.Schema()
	if !ok {
		return resolved{}, badRequest("node_id", "unknown kind %q in node %s (want ohlcv, trades or quotes)", node.Kind, nodeID)
	}
	f, err := p.sources.Route(node)
	if err != nil {
		return resolved{}, err
	}
	return resolved{series: Series{NodeID: nodeID, Interval: interval}, node: node, schema: schema, fetcher: f,
		upstream: Series{NodeID: node.String(), Interval: interval}}, nil
}

// MaxTimestamp bounds the timestamps of requests: ±2^53 epoch seconds (±285 million
// years) is far beyond any market data, and keeps every derived value exact — bar and
// chunk bounds in int64, milliseconds for exchanges, and numbers in float64 or JSON
// clients.
const MaxTimestamp = 1 << 53

// resolveRange checks a request range and aligns it to the grid: want is its grid points,
// closed the part of them closed at now.
func (p *Provider) resolveRange(rq resolved, r grid.Range, now time.Time) (resolved, error) {
	for _, f := range []struct {
		name string
		t    int64
	}{{"start", r.Start}, {"end", r.End}} {
		if f.t < -MaxTimestamp || f.t > MaxTimestamp {
			return resolved{}, badRequest(f.name, "%d is outside the supported timestamps, ±%d epoch seconds", f.t, int64(MaxTimestamp))
		}
	}
	if r.Start >= r.End {
		return resolved{}, badRequest("start", "start %d must be before end %d", r.Start, r.End)
	}
	if n := r.Bars(rq.series.Interval); n > p.maxBars {
		return resolved{}, badRequest("end", "range %v holds %d bars of %d s, over the maximum of %d per request", r, n, rq.series.Interval, p.maxBars)
	}
	return rq.at(r, now), nil
}

// at sets the grid points of r as what rq wants, and those closed at now as what can be
// stored or backfilled.
func (rq resolved) at(r grid.Range, now time.Time) resolved {
	rq.want = r.Align(rq.series.Interval)
	rq.closed = rq.want.Intersect(grid.R(rq.want.Start, ClosedEnd(now.Unix(), rq.series.Interval)))
	return rq
}

// resolveStored validates a series for storage-only operations: the node id grammar
// and interval must hold, but no source needs to route it.
func (p *Provider) resolveStored(nodeID string, interval int64) (resolved, error) {
	rq, err := p.resolve(nodeID, interval)
	if errors.Is(err, ErrUnknownSource) {
		node, _ := p.parseNode(nodeID)
		schema, _ := node.Schema()
		return resolved{series: Series{NodeID: nodeID, Interval: interval}, node: node, schema: schema,
			upstream: Series{NodeID: node.String(), Interval: interval}}, nil
	}
	return rq, err
}
