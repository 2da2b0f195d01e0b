package demolive_test

import (
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/live/feedtest"
)

// TestContract runs the LiveFeed contract suite. The demo feed's upstream is its
// clock: advancing it is the venue's time passing.
func TestContract(t *testing.T) {
	feedtest.Run(t, feedtest.Harness{
		Source: "demo", Symbol: "BTC-USD",
		Start: func(t *testing.T, now time.Time) (seamless.LiveFeed, feedtest.Upstream) {
			clk := clock.NewFake(now)
			return demolive.New(demolive.Options{Clock: clk}), clockUpstream{clk}
		},
	})
}

// clockUpstream drives a demolive feed through its fake clock.
type clockUpstream struct{ clk *clock.Fake }

// Serving returns at once: the feed generates what it sends, there is no subscription
// to reach anywhere.
func (clockUpstream) Serving(*testing.T, seamless.Series) {}

func (u clockUpstream) Advance(_ *testing.T, now time.Time) { u.clk.Advance(now.Sub(u.clk.Now())) }
