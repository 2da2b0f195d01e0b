package seamless_test

import (
	"context"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/demolive"
)

// TestLiveBarsFlowIntoResponses: with the demo live feed, the newest closed bars are
// stored by the live tier as they close and served without a REST call; the forming
// bar is appended on request and flagged.
func TestLiveBarsFlowIntoResponses(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.clock.Advance(30 * time.Second) // mid-bar: the bar at t0 is forming
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"demo": demolive.New(demolive.Options{Clock: e.clock})}, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	src, _ := seamless.New(seamless.Config{Store: e.store, Sources: seamless.Sources{"demo": e.fetch}, Coordinator: e.coord, Clock: e.clock, Live: tier, Seed: 1})
	defer src.Close()
	ctx := context.Background()
	now := t0.Unix()
	r := req(now-3600, now+60, seamless.Seamless)
	r.IncludeForming = true
	res, err := src.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	md := res.Metadata
	if res.Frame.Len() != 61 || !md.Forming || res.Frame.TS[60] != now || md.Sources.Live != 1 {
		t.Fatalf("first fetch: %d rows, metadata %+v", res.Frame.Len(), md)
	}
	calls := len(e.fetch.Calls())
	// The bar at t0 closes; the live tier stores it.
	e.clock.Advance(60 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		cov, _ := src.Coverage(ctx, node, iv)
		if cov.Contains(now) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed live bar never stored; coverage %v", cov)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r = req(now-3600, now+60, seamless.Seamless)
	res, err = src.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.fetch.Calls()) != calls {
		t.Fatal("the newest bar went to REST instead of the live tier")
	}
	if n := res.Frame.Len(); n != 61 || res.Frame.TS[n-1] != now || res.Metadata.Sources.Live == 0 || res.Metadata.Forming {
		t.Fatalf("second fetch: %d rows, metadata %+v", n, res.Metadata)
	}
	checkFrame(t, res.Frame, r.Range(), 61)
}

// silentFeed subscribes and never delivers anything, like a dead websocket.
type silentFeed struct{}

func (silentFeed) Subscribe(ctx context.Context, _ seamless.Series) (<-chan seamless.LiveUpdate, error) {
	ch := make(chan seamless.LiveUpdate)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// TestLiveWaitPhase: waiting for the newest bar from a live feed is the live_wait phase,
// bounded by max_wait_live_ms (a violation under hold returns the data downgraded,
// the bar from REST); once the feed has been silent past its threshold, requests stop
// waiting for it at all.
func TestLiveWaitPhase(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.clock.Advance(30 * time.Second)
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"demo": silentFeed{}}, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	p, _ := seamless.New(seamless.Config{Store: e.store, Sources: seamless.Sources{"demo": e.fetch}, Coordinator: e.coord, Clock: e.clock, Live: tier, Seed: 1})
	defer p.Close()
	// fetch asks for the hour before now; tick moves the fake clock while it runs (for
	// a request that has to wait out its live budget).
	fetch := func(now int64, tick bool) seamless.Result {
		t.Helper()
		r := req(now-3600, now, seamless.Seamless)
		r.SLA = &seamless.SLAPolicy{MaxWaitLiveMS: 300, OnViolation: seamless.ViolationHold}
		out := make(chan fetchOutcome, 1)
		go func() {
			res, err := p.Fetch(context.Background(), r)
			out <- fetchOutcome{res, err}
		}()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			select {
			case o := <-out:
				if o.err != nil {
					t.Fatal(o.err)
				}
				checkFrame(t, o.res.Frame, r.Range(), 60)
				return o.res
			case <-time.After(time.Millisecond):
				if tick {
					e.clock.Advance(50 * time.Millisecond)
				}
			}
		}
		t.Fatal("fetch did not return")
		return seamless.Result{}
	}
	now := t0.Unix()
	md := fetch(now, true).Metadata
	if v := md.SLAViolation; v == nil || v.Phase != seamless.PhaseLive || md.DowngradeMode != seamless.ViolationHold || md.SLAPhases[seamless.PhaseLive] < 300 {
		t.Fatalf("a fresh feed that delivers nothing: metadata %+v", md)
	}
	// Two minutes later the feed has been silent past its threshold: no waiting (the
	// clock stands still, so a wait would never end).
	e.clock.Advance(2 * time.Minute)
	now = t0.Add(2 * time.Minute).Unix()
	md = fetch(now, false).Metadata
	if md.SLAViolation != nil || md.Downgraded || md.SLAPhases[seamless.PhaseLive] >= 300 {
		t.Fatalf("a silent feed was waited for: metadata %+v", md)
	}
}
