package feedtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live/feedtest"
)

// venue is the suite's own reference upstream, in-process: it pushes, to each
// subscriber, the close of every bar that ends as its time advances and then the bar
// forming, as an exchange's kline stream does.
type venue struct {
	mu   sync.Mutex
	now  time.Time
	subs []*sub
}

type sub struct {
	s      seamless.Series
	events chan seamless.LiveUpdate // what the venue pushed, unread
}

func bar(ts int64, vol float64) *frame.Frame {
	f := frame.New(frame.OHLCV, 1)
	f.TS = append(f.TS, ts)
	for c, v := range []float64{100, 101, 99, 100.5, vol} {
		f.Cols[c].F64 = append(f.Cols[c].F64, v)
	}
	return f
}

func (v *venue) Serving(*testing.T, seamless.Series) {}

func (v *venue) Advance(_ *testing.T, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, sb := range v.subs {
		iv := sb.s.Interval
		for ts := grid.FloorAlign(v.now.Unix(), iv); ts+iv <= now.Unix(); ts += iv {
			sb.events <- seamless.LiveUpdate{Bars: bar(ts, 10), Closed: true}
		}
		sb.events <- seamless.LiveUpdate{Bars: bar(grid.FloorAlign(now.Unix(), iv), 5)}
	}
	v.now = now
}

// feed is a reference LiveFeed of venue; broken names one way to get it wrong.
type feed struct {
	v      *venue
	broken string
}

func (f *feed) Subscribe(ctx context.Context, s seamless.Series) (<-chan seamless.LiveUpdate, error) {
	sb := &sub{s: s, events: make(chan seamless.LiveUpdate, 1024)}
	f.v.mu.Lock()
	f.v.subs = append(f.v.subs, sb)
	f.v.mu.Unlock()
	out := make(chan seamless.LiveUpdate)
	if f.broken == "leaks" {
		go func() { select {} }() // a helper that does not watch ctx
	}
	go func() {
		if f.broken != "neverCloses" {
			defer close(out)
		}
		var pending []seamless.LiveUpdate // closed bars held back by "reversesCatchUp"
		for {
			var u seamless.LiveUpdate
			select {
			case u = <-sb.events:
			case <-ctx.Done():
				return
			}
			var send []seamless.LiveUpdate
			switch {
			case f.broken == "formingAsClosed":
				u.Closed = true
			case f.broken == "offGrid" && !u.Closed:
				u.Bars.TS[0]++
			case f.broken == "reversesCatchUp" && u.Closed:
				pending = append([]seamless.LiveUpdate{u}, pending...)
				continue
			case f.broken == "reversesCatchUp":
				send = pending
				pending = nil
			case f.broken == "reopensClosed" && u.Closed:
				reopened := bar(u.Bars.TS[0], 7)
				send = append(send, u, seamless.LiveUpdate{Bars: reopened})
				u = seamless.LiveUpdate{}
			case f.broken == "dropsClosed" && u.Closed && u.Bars.TS[0]%300 == 120:
				continue
			}
			if u.Bars != nil {
				send = append(send, u)
			}
			for _, u := range send {
				select {
				case out <- u:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func harness(broken string) feedtest.Harness {
	return feedtest.Harness{
		Source: "ref", Symbol: "BTC/USDT",
		Start: func(t *testing.T, now time.Time) (seamless.LiveFeed, feedtest.Upstream) {
			v := &venue{now: now}
			return &feed{v: v, broken: broken}, v
		},
	}
}

func TestReferenceFeed(t *testing.T) {
	feedtest.Run(t, harness(""))
}

// brokenEnv names the broken feed TestBrokenFeed runs; unset, it is skipped.
const brokenEnv = "FEEDTEST_BROKEN"

// TestBrokenFeed runs the suite on one broken feed, in a child process of
// TestSuiteCatches.
func TestBrokenFeed(t *testing.T) {
	broken := os.Getenv(brokenEnv)
	if broken == "" {
		t.Skip("run by TestSuiteCatches")
	}
	feedtest.Run(t, harness(broken))
}

// TestSuiteCatches: each flaw of the reference feed fails the clause meant to catch it.
func TestSuiteCatches(t *testing.T) {
	for _, tc := range []struct{ broken, clause string }{
		{"neverCloses", "Cancel/WhileReading"},
		{"leaks", "Cancel/WhileReading"},
		{"formingAsClosed", "Stream"},
		{"offGrid", "Stream"},
		{"reversesCatchUp", "Stream"},
		{"reopensClosed", "Stream"},
		{"dropsClosed", "Stream"},
	} {
		t.Run(tc.broken, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenFeed$", "-test.count=1", "-test.v", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.broken)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a feed that is broken (%s):\n%s", tc.broken, out)
			}
			if want := "--- FAIL: TestBrokenFeed/" + tc.clause; !strings.Contains(string(out), want) {
				t.Fatalf("the suite failed, but not with %q:\n%s", want, out)
			}
		})
	}
}
