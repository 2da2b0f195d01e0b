package seamless_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/stream"
)

// muteFeed wraps a live feed: while muted, the closed bars it delivers are dropped, as
// a websocket that is reconnecting loses them.
type muteFeed struct {
	inner seamless.LiveFeed
	muted atomic.Bool
	subs  atomic.Int64
	// dropped is the ts of the newest closed bar dropped.
	dropped atomic.Int64
}

func (m *muteFeed) Subscribe(ctx context.Context, s seamless.Series) (<-chan seamless.LiveUpdate, error) {
	in, err := m.inner.Subscribe(ctx, s)
	if err != nil {
		return nil, err
	}
	m.subs.Add(1)
	out := make(chan seamless.LiveUpdate)
	go func() {
		defer close(out)
		for u := range in {
			if u.Closed && m.muted.Load() {
				m.dropped.Store(u.Bars.TS[u.Bars.Len()-1])
				continue
			}
			select {
			case out <- u:
			case <-ctx.Done():
			}
		}
	}()
	return out, nil
}

// advancingFetcher serves demo bars and moves the clock by step on each call, so that
// bars close while a subscription replays history.
type advancingFetcher struct {
	clk   *clock.Fake
	step  time.Duration
	calls atomic.Int64
}

func (a *advancingFetcher) Fetch(_ context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	a.calls.Add(1)
	a.clk.Advance(a.step)
	return demo.Bars(s.NodeID, s.Interval, r), nil
}

// liveEnv is a provider on memstore and a fake clock with the demo source and the demo
// live feed (behind a muteFeed).
type liveEnv struct {
	p     *seamless.Provider
	tier  *live.Tier
	feed  *muteFeed
	clock *clock.Fake
	fetch *advancingFetcher
}

func newLiveEnv(t *testing.T, opts seamless.SubscribeOptions) *liveEnv {
	t.Helper()
	e := newEnv(t, seamless.Config{})
	e.clock.Advance(30 * time.Second) // mid-bar
	le := &liveEnv{clock: e.clock, feed: &muteFeed{inner: demolive.New(demolive.Options{Clock: e.clock})}}
	le.fetch = &advancingFetcher{clk: e.clock}
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"demo": le.feed}, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	le.tier = tier
	p, err := seamless.New(seamless.Config{Store: e.store, Sources: seamless.Sources{"demo": le.fetch}, Coordinator: e.coord,
		Clock: e.clock, Live: tier, Seed: 1, Backfill: seamless.BackfillConfig{WindowBars: 10}, Subscriptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	le.p = p
	t.Cleanup(func() {
		p.Close()
		tier.Close()
	})
	return le
}

// received is what a test read from a subscription.
type received struct {
	ts      []int64
	origins map[string]int
	events  []seamless.StreamEvent
	cursor  string
	next    int64 // the cursor's ts
	caught  *seamless.StreamEvent
	end     *seamless.StreamEvent
}

func newReceived() *received { return &received{origins: map[string]int{}} }

// add records one event, checking the invariants every bars event must hold.
func (r *received) add(t *testing.T, ev seamless.StreamEvent) {
	t.Helper()
	r.events = append(r.events, ev)
	switch ev.Type {
	case seamless.EventBars:
		f := ev.Frame
		if err := f.Validate(); err != nil || !f.IsSortedUnique() {
			t.Fatalf("bars event: invalid frame (%v): %v", err, f.TS)
		}
		want := demo.Bars(node, iv, grid.R(f.TS[0], f.TS[f.Len()-1]+iv))
		for i, ts := range f.TS {
			if ts%iv != 0 || f.Col("close").F64[i] != want.Col("close").F64[want.SearchTS(ts)] {
				t.Fatalf("bar at %d differs from the demo source or is off the grid", ts)
			}
		}
		r.ts = append(r.ts, f.TS...)
		r.origins[ev.Origin]++
		r.setCursor(t, ev.Cursor)
	case seamless.EventCaughtUp:
		if r.caught != nil {
			t.Fatalf("second caught_up: %+v", ev)
		}
		r.caught = &ev
		r.setCursor(t, ev.Cursor)
	case seamless.EventEnd:
		r.end = &ev
		r.setCursor(t, ev.Cursor)
	case seamless.EventError:
		t.Fatalf("error event: %v", ev.Err)
	}
	if ev.NodeID != node || ev.Interval != iv {
		t.Fatalf("event names %s@%d", ev.NodeID, ev.Interval)
	}
}

func (r *received) setCursor(t *testing.T, c string) {
	t.Helper()
	next, err := stream.ParseCursor(c)
	if err != nil {
		t.Fatal(err)
	}
	if next < r.next {
		t.Fatalf("cursor went back from %d to %d", r.next, next)
	}
	r.cursor, r.next = c, next
}

func (r *received) count(typ seamless.StreamEventType) int {
	n := 0
	for _, ev := range r.events {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// drive reads events into r until done holds. When no event comes for a moment it
// moves the clock a second on (a feed may have armed its timer after the clock last
// moved, and only a later move fires it); nudge false never moves it. It fails the
// test if done does not hold within 20 s.
func drive(t *testing.T, clk *clock.Fake, sub *seamless.Subscription, r *received, nudge bool, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out; received up to cursor %d, %d events", r.next, len(r.events))
		}
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				if done() {
					return
				}
				t.Fatalf("events closed at cursor %d (end %+v)", r.next, r.end)
			}
			r.add(t, ev)
		case <-time.After(20 * time.Millisecond):
			if nudge {
				clk.Advance(time.Second)
			}
		}
	}
}

// caughtUpTo reports whether r has every closed bar up to the clock's now.
func caughtUpTo(r *received, clk *clock.Fake) func() bool {
	return func() bool { return r.caught != nil && r.next >= seamless.ClosedEnd(clk.Now().Unix(), iv) }
}

// wantGrid asserts that ts is exactly the grid [start, end): no gap, no duplicate.
func wantGrid(t *testing.T, ts []int64, start, end int64) {
	t.Helper()
	var want []int64
	for x := start; x < end; x += iv {
		want = append(want, x)
	}
	if !slices.Equal(ts, want) {
		t.Fatalf("received %d bars, want the %d of [%d, %d):\n got %v\nwant %v", len(ts), len(want), start, end, ts, want)
	}
}

// advanceBars moves the clock n bars on, a bar at a time, delivering as it goes.
func advanceBars(t *testing.T, e *liveEnv, sub *seamless.Subscription, r *received, n int) {
	t.Helper()
	for range n {
		e.clock.Advance(time.Duration(iv) * time.Second)
		drive(t, e.clock, sub, r, true, caughtUpTo(r, e.clock))
	}
}

// TestSubscribeSeam: subscribed an hour back while bars keep closing during the replay,
// the bars received are exactly the grid from start to the newest closed bar, each
// once, in order — through the replay, the seam to live, a live feed that drops bars
// (reconnecting) or goes silent, and a resume from a cursor.
func TestSubscribeSeam(t *testing.T) {
	for _, tc := range []struct {
		name string
		// grace is SubscribeOptions.LiveGrace: an hour means only live writes (and the
		// holes they reveal) deliver live bars, never a late-bar repair.
		grace time.Duration
		run   func(t *testing.T, e *liveEnv, sub *seamless.Subscription, r *received) *seamless.Subscription
	}{
		{"steady", time.Hour, func(t *testing.T, e *liveEnv, sub *seamless.Subscription, r *received) *seamless.Subscription {
			advanceBars(t, e, sub, r, 5)
			if r.origins["live"] == 0 || r.count(seamless.EventGap) != 0 {
				t.Fatalf("live bars not delivered by the live tier: origins %v, %d gaps", r.origins, r.count(seamless.EventGap))
			}
			return sub
		}},
		{"live feed drops bars", time.Hour, func(t *testing.T, e *liveEnv, sub *seamless.Subscription, r *received) *seamless.Subscription {
			advanceBars(t, e, sub, r, 2)
			e.feed.muted.Store(true)
			before := r.next
			e.clock.Advance(3 * time.Duration(iv) * time.Second) // bars close that the feed loses
			lost := seamless.ClosedEnd(e.clock.Now().Unix(), iv) - iv
			drive(t, e.clock, sub, r, true, func() bool { return e.feed.dropped.Load() >= lost })
			if r.next != before {
				t.Fatalf("bars delivered while the feed was muted: cursor %d → %d", before, r.next)
			}
			e.feed.muted.Store(false)
			advanceBars(t, e, sub, r, 2)
			if r.count(seamless.EventGap) == 0 || r.origins[seamless.OriginRepair] == 0 {
				t.Fatalf("the hole was not announced and repaired: %d gaps, origins %v", r.count(seamless.EventGap), r.origins)
			}
			return sub
		}},
		{"live feed silent", 5 * time.Second, func(t *testing.T, e *liveEnv, sub *seamless.Subscription, r *received) *seamless.Subscription {
			e.feed.muted.Store(true)
			advanceBars(t, e, sub, r, 4)
			if r.count(seamless.EventGap) == 0 || r.origins[seamless.OriginRepair] == 0 {
				t.Fatalf("late bars not repaired: %d gaps, origins %v", r.count(seamless.EventGap), r.origins)
			}
			return sub
		}},
		{"resume from a cursor", time.Hour, func(t *testing.T, e *liveEnv, sub *seamless.Subscription, r *received) *seamless.Subscription {
			advanceBars(t, e, sub, r, 2)
			sub.Close()
			for range 3 { // closed while no one is subscribed
				e.clock.Advance(time.Duration(iv) * time.Second)
			}
			next, err := e.p.Subscribe(context.Background(), seamless.SubscribeRequest{NodeID: node, Cursor: r.cursor, Start: 1}) // the cursor wins over start
			if err != nil {
				t.Fatal(err)
			}
			r.caught = nil // the new subscription sends its own
			drive(t, e.clock, next, r, true, caughtUpTo(r, e.clock))
			advanceBars(t, e, next, r, 2)
			return next
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLiveEnv(t, seamless.SubscribeOptions{LiveGrace: tc.grace, PageBars: 10})
			e.fetch.step = 30 * time.Second // two upstream calls per bar closing
			start := e.clock.Now().Add(-time.Hour).Unix()
			first := grid.CeilAlign(start, iv)
			closedAtStart := seamless.ClosedEnd(e.clock.Now().Unix(), iv)
			sub, err := e.p.Subscribe(context.Background(), seamless.SubscribeRequest{NodeID: node, Interval: iv, Start: start})
			if err != nil {
				t.Fatal(err)
			}
			r := newReceived()
			drive(t, e.clock, sub, r, false, func() bool { return r.caught != nil })
			if r.caught.NextTS <= closedAtStart {
				t.Fatalf("no bar closed during the replay (caught up at %d, closed end %d at start)", r.caught.NextTS, closedAtStart)
			}
			if r.origins[seamless.OriginHistory] < 6 {
				t.Fatalf("history in %d pages, want at least 6 of 10 bars", r.origins[seamless.OriginHistory])
			}
			wantGrid(t, r.ts, first, r.caught.NextTS)
			sub = tc.run(t, e, sub, r)
			sub.Close()
			wantGrid(t, r.ts, first, seamless.ClosedEnd(e.clock.Now().Unix(), iv))
			if s := e.tier.Stats(); s.Subscribed != 1 {
				t.Fatalf("live tier subscribed %d times, want once: %+v", s.Subscribed, s)
			}
		})
	}
}

// TestSubscribeEnds: a subscription ends with an end event carrying its cursor and the
// reason: the subscriber's cancel, the provider's shutdown.
func TestSubscribeEnds(t *testing.T) {
	e := newLiveEnv(t, seamless.SubscribeOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := e.p.Subscribe(ctx, seamless.SubscribeRequest{NodeID: node, Start: e.clock.Now().Add(-10 * time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	r := newReceived()
	drive(t, e.clock, sub, r, false, func() bool { return r.caught != nil })
	cancel()
	drive(t, e.clock, sub, r, false, func() bool { return r.end != nil })
	if r.end.Reason != seamless.EndCanceled || r.end.Cursor != r.caught.Cursor {
		t.Fatalf("end %+v after caught_up %+v", r.end, r.caught)
	}
	if _, ok := <-sub.Events(); ok {
		t.Fatal("events after end")
	}
	sub.Close()

	sub, err = e.p.Subscribe(context.Background(), seamless.SubscribeRequest{NodeID: node})
	if err != nil {
		t.Fatal(err)
	}
	r = newReceived()
	drive(t, e.clock, sub, r, false, func() bool { return r.caught != nil })
	if got := e.p.Subscribers(seamless.Series{NodeID: node, Interval: iv}); got != 1 {
		t.Fatalf("%d subscribers, want 1", got)
	}
	e.p.Close()
	drive(t, e.clock, sub, r, false, func() bool { return r.end != nil })
	if r.end.Reason != seamless.EndShutdown || len(r.ts) != 0 {
		t.Fatalf("end %+v, %d bars (live only: none closed)", r.end, len(r.ts))
	}
	sub.Close()
	if got := e.p.Subscribers(seamless.Series{NodeID: node, Interval: iv}); got != 0 {
		t.Fatalf("%d subscribers after the end", got)
	}
	if _, err := e.p.Subscribe(context.Background(), seamless.SubscribeRequest{NodeID: node}); !errors.Is(err, seamless.ErrClosed) {
		t.Fatalf("subscribe after Close: %v", err)
	}
}

// TestSubscribeBadInput: requests that cannot be served are refused with the typed
// errors of Fetch before anything starts.
func TestSubscribeBadInput(t *testing.T) {
	e := newLiveEnv(t, seamless.SubscribeOptions{})
	now := e.clock.Now().Unix()
	for _, tc := range []struct {
		name string
		req  seamless.SubscribeRequest
		code string
	}{
		{"unknown source", seamless.SubscribeRequest{NodeID: "ohlcv:nowhere:BTC-USD:1m"}, seamless.CodeUnknownSource},
		{"malformed node", seamless.SubscribeRequest{NodeID: "btc"}, seamless.CodeBadRequest},
		{"interval mismatch", seamless.SubscribeRequest{NodeID: node, Interval: 300}, seamless.CodeBadRequest},
		{"start in the future", seamless.SubscribeRequest{NodeID: node, Start: now + 3600}, seamless.CodeBadRequest},
		{"foreign cursor", seamless.SubscribeRequest{NodeID: node, Cursor: "1717200000"}, seamless.CodeBadRequest},
		{"cursor off the grid", seamless.SubscribeRequest{NodeID: node, Cursor: stream.Cursor(now + 1)}, seamless.CodeBadRequest},
		{"unknown strategy", seamless.SubscribeRequest{NodeID: node, Strategy: "eventually"}, seamless.CodeBadRequest},
		{"unknown conformance preset", seamless.SubscribeRequest{NodeID: node, Conformance: "lax"}, seamless.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := e.p.Subscribe(context.Background(), tc.req)
			if got := seamless.ErrorCode(err); got != tc.code {
				if sub != nil {
					sub.Close()
				}
				t.Fatalf("error %v (code %q), want code %q", err, got, tc.code)
			}
		})
	}
}

// TestSubscribeFailFastHistory: under fail_fast, history that is not stored is an
// error event (not_covered) followed by end, with the cursor where it stopped.
func TestSubscribeFailFastHistory(t *testing.T) {
	e := newLiveEnv(t, seamless.SubscribeOptions{})
	start := grid.CeilAlign(e.clock.Now().Add(-time.Hour).Unix(), iv)
	sub, err := e.p.Subscribe(context.Background(), seamless.SubscribeRequest{NodeID: node, Start: start, Strategy: seamless.FailFast})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var evs []seamless.StreamEvent
	for ev := range sub.Events() {
		evs = append(evs, ev)
	}
	if len(evs) != 2 || evs[0].Type != seamless.EventError || !errors.Is(evs[0].Err, seamless.ErrNotCovered) ||
		evs[1].Type != seamless.EventEnd || evs[1].Reason != seamless.EndError || evs[1].Cursor != stream.Cursor(start) {
		t.Fatalf("events %+v", evs)
	}
}

// TestSubscribeFanOut: 200 subscribers of one series share one upstream live
// subscription; one that stops reading is dropped with slow_consumer and the cursor to
// resume from, while every other one receives every bar.
func TestSubscribeFanOut(t *testing.T) {
	const subscribers = 200
	e := newLiveEnv(t, seamless.SubscribeOptions{Buffer: 8, LiveGrace: time.Hour})
	series := seamless.Series{NodeID: node, Interval: iv}
	start := e.clock.Now().Add(-10 * time.Minute).Unix()
	first := grid.CeilAlign(start, iv)
	subs := make([]*seamless.Subscription, subscribers)
	for i := range subs {
		sub, err := e.p.Subscribe(context.Background(), seamless.SubscribeRequest{NodeID: node, Start: start})
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = sub
	}
	if n := e.p.Subscribers(series); n != subscribers {
		t.Fatalf("%d subscribers", n)
	}
	// Subscriber 0 stalls: it reads nothing. The others read in goroutines of their own.
	var mu sync.Mutex
	cursors := make([]int64, subscribers)
	got := make([][]int64, subscribers)
	// The live bars of one write reach every subscriber at the cursor as one shared
	// event (encoded once by a transport); history pages are each subscriber's own.
	shared := map[string]*stream.Shared{}
	liveEvents := 0
	var wg sync.WaitGroup
	for i := 1; i < subscribers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range subs[i].Events() {
				if ev.Type != seamless.EventBars && ev.Type != seamless.EventCaughtUp {
					continue
				}
				next, _ := stream.ParseCursor(ev.Cursor)
				mu.Lock()
				if ev.Type == seamless.EventBars {
					got[i] = append(got[i], ev.Frame.TS...)
					switch {
					case ev.Origin == seamless.OriginHistory && ev.Shared != nil:
						t.Errorf("a history page marked shared")
					case ev.Origin == string(seamless.OriginLive):
						liveEvents++
						if ev.Shared == nil {
							t.Errorf("live bars at %s not shared", ev.Cursor)
						} else if was, ok := shared[ev.Cursor]; ok && was != ev.Shared {
							t.Errorf("live bars at %s: two events for one write", ev.Cursor)
						}
						shared[ev.Cursor] = ev.Shared
					}
				}
				cursors[i] = next
				mu.Unlock()
			}
		}()
	}
	allAt := func(target int64) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range cursors[1:] {
				if c < target {
					return false
				}
			}
			return true
		}
	}
	stalled := subs[0]
	waitFor := func(cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatal("timed out")
			}
			time.Sleep(20 * time.Millisecond)
			if !cond() {
				e.clock.Advance(time.Second) // see drive
			}
		}
	}
	waitFor(allAt(seamless.ClosedEnd(e.clock.Now().Unix(), iv)))
	for range 10 {
		e.clock.Advance(time.Duration(iv) * time.Second)
		waitFor(allAt(seamless.ClosedEnd(e.clock.Now().Unix(), iv)))
	}
	end := seamless.ClosedEnd(e.clock.Now().Unix(), iv)
	// The stalled subscriber's queue holds what it was sent, then the end event.
	var last seamless.StreamEvent
	for ev := range stalled.Events() {
		last = ev
	}
	if last.Type != seamless.EventEnd || last.Reason != seamless.EndSlowConsumer {
		t.Fatalf("stalled subscriber's last event %+v", last)
	}
	if next, err := stream.ParseCursor(last.Cursor); err != nil || next <= first || next >= end {
		t.Fatalf("slow_consumer cursor %q (%v), want one inside (%d, %d)", last.Cursor, err, first, end)
	}
	for _, sub := range subs {
		sub.Close()
	}
	wg.Wait()
	for i := 1; i < subscribers; i++ {
		wantGrid(t, got[i], first, end)
	}
	if len(shared) == 0 || liveEvents < 2*len(shared) {
		t.Fatalf("%d live bars events over %d shared ones", liveEvents, len(shared))
	}
	if s := e.tier.Stats(); s.Subscribed != 1 {
		t.Fatalf("live tier subscribed %d times for %d subscribers: %+v", s.Subscribed, subscribers, s)
	}
	if e.feed.subs.Load() != 1 {
		t.Fatalf("%d upstream feed subscriptions", e.feed.subs.Load())
	}
	if n := e.p.Subscribers(series); n != 0 {
		t.Fatalf("%d subscribers after Close", n)
	}
}
