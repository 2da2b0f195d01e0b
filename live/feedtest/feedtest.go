// Package feedtest is the contract suite of seamless.LiveFeed implementations. Each
// feed runs it from its own tests against a fake of its upstream (a websocket fake
// speaking the venue's protocol, or the feed's own clock for a generator):
//
//	func TestContract(t *testing.T) {
//		feedtest.Run(t, feedtest.Harness{Source: "binance", Symbol: "BTC/USDT", Start: …})
//	}
//
// The suite moves the venue's time forward (Upstream.Advance) and checks what the feed
// delivers, per series, with two series of one market subscribed at once:
//
//   - Cancel: the update channel closes soon after the subscription's context ends —
//     while updates are read, when nothing reads them, before any arrived, or when
//     the context had ended before Subscribe — and no goroutine of the feed outlives
//     it.
//   - Order: every bar is on the series' interval grid and updates come in ts order:
//     a bar older than one already delivered never follows it.
//   - ClosedApart: an update is all forming or all closed; a bar delivered as closed
//     has closed by the venue's time; a closed bar is final (never again forming,
//     repeated only with the same values); every bar that closes while the feed is
//     connected is delivered closed, and the bar forming at the venue's time follows.
package feedtest

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Harness plugs a feed into the suite.
type Harness struct {
	// Source is the source part of the feed's node ids ("binance"); Symbol a market
	// its fake streams, spelled as node ids spell it ("BTC/USDT"). The suite subscribes
	// ohlcv:{Source}:{Symbol}:1m and :5m.
	Source, Symbol string
	// Start starts a fake upstream whose time reads now and a feed connected to it.
	// Anything it starts is stopped by t.Cleanup.
	Start func(t *testing.T, now time.Time) (seamless.LiveFeed, Upstream)
}

// Upstream drives the venue behind a feed.
type Upstream interface {
	// Serving waits until the venue streams s to the feed (its subscription reached
	// the venue), so that what Advance pushes reaches it.
	Serving(t *testing.T, s seamless.Series)
	// Advance moves the venue's time forward to now and pushes what the venue pushes
	// meanwhile to the series being served: the close of every bar that ended by now,
	// in order, then the bar forming at now.
	Advance(t *testing.T, now time.Time)
}

// Run runs the contract suite.
func Run(t *testing.T, h Harness) {
	if h.Source == "" || h.Symbol == "" || h.Start == nil {
		t.Fatal("feedtest: Harness needs Source, Symbol and Start")
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Cancel", testCancel},
		{"Stream", testStream},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// closeWithin bounds how long a feed may take to close its channel once its context
// ended; deliverWithin how long it may take to deliver what the venue pushed.
const (
	closeWithin   = 5 * time.Second
	deliverWithin = 10 * time.Second
)

// t0 is a 5-minute boundary; the suite's venue time starts 10 s after it.
var t0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

func (h Harness) series(tf string, iv int64) seamless.Series {
	return seamless.Series{NodeID: fmt.Sprintf("ohlcv:%s:%s:%s", h.Source, h.Symbol, tf), Interval: iv}
}

// drainClosed reads ch until it is closed, failing if that takes longer than closeWithin.
func drainClosed(t *testing.T, ch <-chan seamless.LiveUpdate, why string) {
	t.Helper()
	deadline := time.After(closeWithin)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("update channel still open %v after %s", closeWithin, why)
		}
	}
}

func testCancel(t *testing.T, h Harness) {
	s := h.series("1m", 60)
	for _, tc := range []struct {
		name string
		// run does the subscription's life before cancel; it may read ch.
		run func(t *testing.T, up Upstream, ch <-chan seamless.LiveUpdate, now time.Time)
	}{
		{"WhileReading", func(t *testing.T, up Upstream, ch <-chan seamless.LiveUpdate, now time.Time) {
			up.Serving(t, s)
			up.Advance(t, now.Add(70*time.Second))
			select {
			case _, ok := <-ch:
				if !ok {
					t.Fatal("update channel closed before the context ended")
				}
			case <-time.After(deliverWithin):
				t.Fatal("no update delivered")
			}
		}},
		{"NeverRead", func(t *testing.T, up Upstream, _ <-chan seamless.LiveUpdate, now time.Time) {
			up.Serving(t, s)
			// Many bars close and nobody reads them: the feed is blocked on, or
			// queueing for, a subscriber that has gone.
			for i := 1; i <= 40; i++ {
				up.Advance(t, now.Add(time.Duration(i)*time.Minute))
			}
		}},
		{"BeforeAnyUpdate", func(*testing.T, Upstream, <-chan seamless.LiveUpdate, time.Time) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(10 * time.Second)
			feed, up := h.Start(t, now)
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch, err := feed.Subscribe(ctx, s)
			if err != nil {
				t.Fatalf("Subscribe %v: %v", s, err)
			}
			tc.run(t, up, ch, now)
			cancel()
			drainClosed(t, ch, "the context was cancelled")
		})
	}
	t.Run("CancelledBeforeSubscribe", func(t *testing.T) {
		feed, _ := h.Start(t, t0.Add(10*time.Second))
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// Refusing is as good as a channel that closes at once.
		if ch, err := feed.Subscribe(ctx, s); err == nil {
			drainClosed(t, ch, "Subscribe with a cancelled context")
		}
	})
}

// steps are the venue's time offsets from its start, 10 s after t0 (a 5-minute
// boundary): within a bar, exactly on a boundary, across several 1m bars, onto a 5m
// boundary, and across several 5m bars at once.
var steps = []time.Duration{
	20 * time.Second,   // 30 s: mid-bar
	50 * time.Second,   // 60 s: exactly on a 1m boundary
	95 * time.Second,   // 105 s
	290 * time.Second,  // 300 s: on the 5m boundary, several 1m bars closed at once
	301 * time.Second,  // 311 s: just past it
	1190 * time.Second, // 1200 s: three 5m bars closed at once
	1230 * time.Second, // 1240 s
}

// seriesCheck follows one series' updates and checks each against the contract.
type seriesCheck struct {
	s            seamless.Series
	lastClosed   int64 // ts of the newest closed bar delivered; math.MinInt64 before any
	lastForming  int64 // ts of the newest forming bar delivered
	closedValues []float64
}

func newSeriesCheck(s seamless.Series) *seriesCheck {
	return &seriesCheck{s: s, lastClosed: math.MinInt64, lastForming: math.MinInt64}
}

func values(f *frame.Frame, i int) []float64 {
	out := make([]float64, len(f.Cols))
	for c := range f.Cols {
		out[c] = f.Cols[c].F64[i]
	}
	return out
}

func sameValues(a, b []float64) bool {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// check applies one update, delivered when the venue's time was now.
func (c *seriesCheck) check(t *testing.T, u seamless.LiveUpdate, now time.Time) {
	t.Helper()
	iv := c.s.Interval
	kind := map[bool]string{true: "closed", false: "forming"}[u.Closed]
	if u.Bars == nil || u.Bars.Len() == 0 {
		t.Fatalf("%v: a %s update without bars", c.s, kind)
	}
	if err := u.Bars.Validate(); err != nil {
		t.Fatalf("%v: a malformed %s update: %v", c.s, kind, err)
	}
	if !u.Bars.Schema().Equal(frame.OHLCV) {
		t.Fatalf("%v: update schema %v, want OHLCV", c.s, u.Bars.Schema().Names())
	}
	if !u.Closed && u.Bars.Len() != 1 {
		// Only one bar forms at a time.
		t.Fatalf("%v: a forming update of %d bars %v", c.s, u.Bars.Len(), u.Bars.TS)
	}
	for i, ts := range u.Bars.TS {
		if ts%iv != 0 {
			t.Fatalf("%v: %s bar at ts %d, off the %d s grid", c.s, kind, ts, iv)
		}
		v := values(u.Bars, i)
		if !u.Closed {
			switch {
			case ts <= c.lastClosed:
				t.Fatalf("%v: bar %d delivered forming after it was delivered closed (a closed bar is final)", c.s, ts)
			case ts < c.lastForming:
				t.Fatalf("%v: forming bar %d after forming bar %d: out of ts order", c.s, ts, c.lastForming)
			case time.Unix(ts, 0).After(now):
				t.Fatalf("%v: forming bar %d opens after the venue's time %d", c.s, ts, now.Unix())
			}
			c.lastForming = ts
			continue
		}
		switch {
		case time.Unix(ts+iv, 0).After(now):
			t.Fatalf("%v: bar %d delivered closed at venue time %d, before it closes at %d", c.s, ts, now.Unix(), ts+iv)
		case ts == c.lastClosed:
			if !sameValues(v, c.closedValues) {
				t.Fatalf("%v: closed bar %d delivered again with other values %v (first %v): a closed bar is final", c.s, ts, v, c.closedValues)
			}
		case ts < c.lastClosed:
			t.Fatalf("%v: closed bar %d after closed bar %d: out of ts order", c.s, ts, c.lastClosed)
		case ts < c.lastForming:
			t.Fatalf("%v: closed bar %d after forming bar %d: out of ts order", c.s, ts, c.lastForming)
		case c.lastClosed != math.MinInt64 && ts != c.lastClosed+iv:
			t.Fatalf("%v: closed bar %d after closed bar %d: bars %d… closed while connected but were not delivered", c.s, ts, c.lastClosed, c.lastClosed+iv)
		}
		c.lastClosed, c.closedValues = ts, v
	}
}

func testStream(t *testing.T, h Harness) {
	start := t0.Add(10 * time.Second)
	feed, up := h.Start(t, start)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	series := []seamless.Series{h.series("1m", 60), h.series("5m", 300)}
	chans := make([]<-chan seamless.LiveUpdate, len(series))
	checks := make([]*seriesCheck, len(series))
	for i, s := range series {
		ch, err := feed.Subscribe(ctx, s)
		if err != nil {
			t.Fatalf("Subscribe %v: %v", s, err)
		}
		chans[i], checks[i] = ch, newSeriesCheck(s)
	}
	for _, s := range series {
		up.Serving(t, s)
	}
	for _, step := range steps {
		now := start.Add(step)
		up.Advance(t, now)
		for i, s := range series {
			c := checks[i]
			forming := grid.FloorAlign(now.Unix(), s.Interval)
			// Read until the bar forming at now arrives: the venue pushed it last.
			deadline := time.After(deliverWithin)
			for c.lastForming < forming {
				select {
				case u, ok := <-chans[i]:
					if !ok {
						t.Fatalf("%v: update channel closed while subscribed", s)
					}
					c.check(t, u, now)
				case <-deadline:
					t.Fatalf("%v: at venue time %d, no forming update of bar %d within %v (newest closed %d, forming %d)",
						s, now.Unix(), forming, deliverWithin, c.lastClosed, c.lastForming)
				}
			}
			// The bar forming at the start closed while the feed was connected, and so
			// did every one after it (check saw them in sequence): the newest closed
			// bar delivered is the one before the forming bar.
			if forming > grid.FloorAlign(start.Unix(), s.Interval) && c.lastClosed != forming-s.Interval {
				t.Fatalf("%v: at venue time %d the newest closed bar delivered is %d, want %d", s, now.Unix(), c.lastClosed, forming-s.Interval)
			}
		}
	}
}
