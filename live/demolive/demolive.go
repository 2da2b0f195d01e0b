// Package demolive is a synthetic seamless.LiveFeed for ohlcv:demo:{SYMBOL}:{tf}
// nodes, so the live tier works offline.
//
// It is driven by the injected clock. On subscribing it sends the bar forming now; then
// every Options.Tick, and at each interval boundary, it sends the forming bar again,
// and when the clock has crossed one or more boundaries it first sends the bars that
// closed, in one update. A closed bar is exactly demo.Bars for its ts, so the live tier
// stores what a demo backfill of the same range would. The forming bar at time now
// opens at the closed bar's open, closes at the demo price path at now (the next bar's
// open when now is a boundary), with high and low the extremes of the two and volume
// the closed bar's volume pro rata: provisional values that always satisfy the OHLC
// relations.
//
// Waiting uses Clock.WithDeadline, so with a clock.Fake nothing happens until the test
// advances the clock. After a long jump of the clock (a laptop waking up) at most
// MaxCatchUp closed bars are sent; the older ones are left to backfill.
package demolive

import (
	"context"
	"fmt"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
)

// Defaults of Options.
const (
	DefaultTick       = time.Second
	DefaultMaxCatchUp = 1000
)

// Options configure a Feed.
type Options struct {
	// Clock drives the feed (default clock.Real).
	Clock clock.Clock
	// Tick is the period of forming updates (default DefaultTick).
	Tick time.Duration
	// MaxCatchUp bounds the closed bars sent after one clock jump (default
	// DefaultMaxCatchUp).
	MaxCatchUp int
}

// Feed is the demo live feed. It implements seamless.LiveFeed.
type Feed struct {
	opts Options
}

var _ seamless.LiveFeed = (*Feed)(nil)

// New returns a Feed.
func New(opts Options) *Feed {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Tick <= 0 {
		opts.Tick = DefaultTick
	}
	if opts.MaxCatchUp <= 0 {
		opts.MaxCatchUp = DefaultMaxCatchUp
	}
	return &Feed{opts: opts}
}

// Subscribe implements seamless.LiveFeed.
func (f *Feed) Subscribe(ctx context.Context, s seamless.Series) (<-chan seamless.LiveUpdate, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return nil, seamless.Permanent(fmt.Errorf("demolive: %w", err))
	}
	if node.Kind != "ohlcv" || node.Interval != s.Interval {
		return nil, seamless.Permanent(fmt.Errorf("demolive: %s: want an ohlcv node whose timeframe matches the interval", s))
	}
	ch := make(chan seamless.LiveUpdate, 4)
	go f.run(ctx, s, ch)
	return ch, nil
}

func (f *Feed) run(ctx context.Context, s seamless.Series, ch chan<- seamless.LiveUpdate) {
	defer close(ch)
	iv := s.Interval
	send := func(u seamless.LiveUpdate) bool {
		select {
		case ch <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	now := f.opts.Clock.Now()
	cur := grid.FloorAlign(now.Unix(), iv) // ts of the forming bar
	if !send(seamless.LiveUpdate{Bars: forming(s, cur, now)}) {
		return
	}
	for {
		next := time.Unix(cur+iv, 0)
		if t := now.Add(f.opts.Tick); t.Before(next) {
			next = t
		}
		wctx, cancel := f.opts.Clock.WithDeadline(ctx, next)
		<-wctx.Done()
		cancel()
		if ctx.Err() != nil {
			return
		}
		now = f.opts.Clock.Now()
		if b := grid.FloorAlign(now.Unix(), iv); b > cur {
			from := max(cur, b-int64(f.opts.MaxCatchUp)*iv)
			if !send(seamless.LiveUpdate{Bars: demo.Bars(s.NodeID, iv, grid.R(from, b)), Closed: true}) {
				return
			}
			cur = b
		}
		if !send(seamless.LiveUpdate{Bars: forming(s, cur, now)}) {
			return
		}
	}
}

// forming is the provisional bar at ts as of now.
func forming(s seamless.Series, ts int64, now time.Time) *frame.Frame {
	final := demo.Bars(s.NodeID, s.Interval, grid.R(ts, ts+1))
	// The one-second demo bar starting at now opens at the price path at now.
	sec := now.Unix()
	open := final.Cols[0].F64[0]
	last := demo.Bars(s.NodeID, 1, grid.R(sec, sec+1)).Cols[0].F64[0]
	elapsed := float64(now.Sub(time.Unix(ts, 0))) / float64(time.Duration(s.Interval)*time.Second)
	f := frame.New(frame.OHLCV, 1)
	f.TS = append(f.TS, ts)
	for i, v := range []float64{open, max(open, last), min(open, last), last, final.Cols[4].F64[0] * elapsed} {
		f.Cols[i].F64 = append(f.Cols[i].F64, v)
	}
	return f
}
