package seamless

import (
	"context"
	"fmt"

	"github.com/seamless-data/seamless/grid"
)

// Read-only Provider operations for servers and operators: listing what is stored,
// checking a request without running it, and probing the Provider's dependencies.

// ListSeries lists the stored series with their coverage, sorted by node id, then
// interval.
func (p *Provider) ListSeries(ctx context.Context) ([]SeriesInfo, error) {
	if p.isClosed() {
		return nil, ErrClosed
	}
	return p.store.ListSeries(ctx)
}

// Validate returns the error Fetch or Backfill would give for a malformed series or
// range (a *RequestError, or an error wrapping ErrUnknownSource), without reading or
// fetching anything. It lets a server reject a request before accepting background
// work for it.
func (p *Provider) Validate(nodeID string, interval int64, r grid.Range) error {
	pl, err := p.resolve(nodeID, interval)
	if err != nil {
		return err
	}
	_, err = p.resolveRange(pl, r, p.clock.Now())
	return err
}

// readyProbe is a series no node id grammar produces (it has no timeframe part), so
// reading its coverage touches the store without touching anyone's data.
var readyProbe = Series{NodeID: "seamless-ready-probe", Interval: 1}

// Ready reports whether the Provider can serve: it is open, its store answers a
// coverage read and its coordinator answers Inspect.
func (p *Provider) Ready(ctx context.Context) error {
	if p.isClosed() {
		return ErrClosed
	}
	if _, err := p.store.Coverage(ctx, readyProbe); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if _, err := p.coord.Inspect(ctx); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	return nil
}
