package demo_test

import (
	"context"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// TestContract runs the Fetcher contract suite. The demo source's upstream is its
// generator: its clock says which bars have closed, and its latency knob, slept on the
// wall clock, is the venue that never answers.
func TestContract(t *testing.T) {
	sourcetest.Run(t, sourcetest.Harness{
		Source: "demo", Symbol: "BTC-USD",
		// The generator serves every symbol: no UnknownSymbol. It never pages.
		Generated: func(s seamless.Series, r grid.Range) *frame.Frame { return demo.Bars(s.NodeID, s.Interval, r) },
		Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher {
			opts := demo.Options{Clock: stoppedClock{up.Now}, Seed: 1}
			if up.Stall {
				opts.Latency = time.Hour
			}
			src, err := demo.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
	})
}

// stoppedClock reads a fixed time and sleeps on the wall clock.
type stoppedClock struct{ now time.Time }

func (c stoppedClock) Now() time.Time { return c.now }

func (stoppedClock) Sleep(ctx context.Context, d time.Duration) error {
	return clock.Real{}.Sleep(ctx, d)
}

func (stoppedClock) WithDeadline(ctx context.Context, t time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, t)
}
