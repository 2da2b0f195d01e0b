package binancews_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/live/feedtest"
	"github.com/seamless-data/seamless/source/binance"
	"github.com/seamless-data/seamless/source/binance/binancetest"
)

// TestContract runs the LiveFeed contract suite against binancetest's fake
// combined-stream endpoint.
func TestContract(t *testing.T) {
	feedtest.Run(t, feedtest.Harness{
		Source: "binance", Symbol: "BTC/USDT",
		Start: func(t *testing.T, now time.Time) (seamless.LiveFeed, feedtest.Upstream) {
			fs := binancetest.NewStream(t)
			// The fake clock only drives backoff: no reconnect happens here.
			feed, err := binancews.New(binancews.Options{BaseURL: fs.URL(), Clock: clock.NewFake(now), Seed: 1, ReadTimeout: -1})
			if err != nil {
				t.Fatal(err)
			}
			return feed, &streamUpstream{fs: fs, now: now}
		},
	})
}

// streamUpstream plays Binance's kline streams on the fake endpoint: as time advances
// it pushes, on each served stream, the final event (x true) of every kline that
// closed, then an event of the kline forming.
type streamUpstream struct {
	fs *binancetest.Stream

	mu     sync.Mutex
	now    time.Time
	served []binance.Market
}

func stream(m binance.Market) string { return strings.ToLower(m.Symbol) + "@kline_" + m.Interval }

func (u *streamUpstream) Serving(t *testing.T, s seamless.Series) {
	t.Helper()
	m, err := binance.ResolveMarket(s)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the feed subscribing "+stream(m), func() bool {
		for _, c := range u.fs.Live() {
			for _, sub := range c.Subscribed() {
				if sub == stream(m) {
					return true
				}
			}
		}
		return false
	})
	u.mu.Lock()
	u.served = append(u.served, m)
	u.mu.Unlock()
}

func (u *streamUpstream) Advance(t *testing.T, now time.Time) {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, m := range u.served {
		iv := m.Seconds
		publish := func(ts int64, closed bool) {
			bar := binancetest.Bars(m.Symbol, iv, grid.R(ts, ts+1))[0]
			if !closed {
				bar[4] /= 2 // provisional: volume so far
			}
			ev := binancetest.Kline(m.Symbol, m.Interval, ts*1000, (ts+iv)*1000-1, bar, closed)
			if u.fs.Publish(t, stream(m), ev) == 0 {
				t.Fatalf("no connection subscribed to %s", stream(m))
			}
		}
		for ts := grid.FloorAlign(u.now.Unix(), iv); ts+iv <= now.Unix(); ts += iv {
			publish(ts, true)
		}
		publish(grid.FloorAlign(now.Unix(), iv), false)
	}
	u.now = now
}

// TestCancelledSubscribeLeavesNoConnection: a subscription whose context ends while its
// shard dials leaves no connection behind. net/http finishes a dial its request no
// longer waits for and pools the connection; the feed's own client pooled it (an idle
// TCP connection to Binance and its goroutines, for the transport's 90 s idle timeout)
// until its transport stopped keeping idle connections. The race is narrow, so the
// test subscribes many times.
func TestCancelledSubscribeLeavesNoConnection(t *testing.T) {
	fs := binancetest.NewStream(t)
	feed, err := binancews.New(binancews.Options{BaseURL: fs.URL(), Seed: 1, ReadTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ch, err := feed.Subscribe(ctx, btc)
		if err != nil {
			t.Fatal(err)
		}
		for range ch {
		}
	}
}
