package demo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
)

func TestBarsDeterministicAndValid(t *testing.T) {
	r := grid.R(1_700_000_000, 1_700_000_000+86400)
	a := Bars("ohlcv:demo:BTC-USD:1m", 60, r)
	b := Bars("ohlcv:demo:BTC-USD:1m", 60, grid.R(r.Start+3600, r.End))
	if a.Len() != 1440 || b.Len() != 1380 {
		t.Fatalf("lens %d %d", a.Len(), b.Len())
	}
	// Same node and ts give the same bar whatever range it was generated in.
	for i := range b.TS {
		for k := range b.Cols {
			if b.Cols[k].F64[i] != a.Cols[k].F64[i+60] {
				t.Fatalf("bar at %d differs between ranges", b.TS[i])
			}
		}
	}
	o, h, l, c, v := a.Col("open").F64, a.Col("high").F64, a.Col("low").F64, a.Col("close").F64, a.Col("volume").F64
	for i := range a.TS {
		if h[i] < max(o[i], c[i]) || l[i] > min(o[i], c[i]) || v[i] <= 0 || l[i] <= 0 {
			t.Fatalf("bar %d invalid: o=%v h=%v l=%v c=%v v=%v", i, o[i], h[i], l[i], c[i], v[i])
		}
		if i > 0 && o[i] != c[i-1] {
			t.Fatalf("bar %d does not open at the previous close", i)
		}
	}
	other := Bars("ohlcv:demo:ETH-USD:1m", 60, r)
	if other.Col("close").F64[0] == c[0] {
		t.Fatal("different nodes give the same prices")
	}
}

func TestErrorRateAndLatency(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	s, err := New(Options{ErrorRate: 0.5, Latency: 200 * time.Millisecond, Seed: 3, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	series := seamless.Series{NodeID: "ohlcv:demo:X:1m", Interval: 60}
	fails := 0
	for range 200 {
		if _, err := s.Fetch(context.Background(), series, grid.R(0, 600)); err != nil {
			if !errors.Is(err, ErrInjected) {
				t.Fatal(err)
			}
			fails++
		}
	}
	if fails < 60 || fails > 140 {
		t.Fatalf("%d of 200 calls failed at rate 0.5", fails)
	}
	if n := len(clk.Sleeps()); n != 200 || clk.Sleeps()[0] != 200*time.Millisecond {
		t.Fatalf("latency sleeps: %d", n)
	}
	if _, err := New(Options{ErrorRate: 1.5}); err == nil {
		t.Fatal("error rate 1.5 accepted")
	}
	if _, err := s.Fetch(context.Background(), seamless.Series{NodeID: "trades:demo:X:1m", Interval: 60}, grid.R(0, 60)); !seamless.IsPermanent(err) {
		t.Fatalf("trades node: %v", err)
	}
}

// TestFetchClosedBarsOnly: Fetch serves the bars closed at the clock's now, never the
// one forming or later ones, and answers a cancelled context with its error. It used to
// generate every grid point of the range whatever the time, and to ignore ctx.
func TestFetchClosedBarsOnly(t *testing.T) {
	const base = 1_700_000_040   // a minute boundary
	now := time.Unix(base+90, 0) // 30 s into the bar opening at base+60
	s, err := New(Options{Clock: clock.NewFake(now), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	series := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	f, err := s.Fetch(context.Background(), series, grid.R(base-600, base+600))
	if err != nil {
		t.Fatal(err)
	}
	if n := f.Len(); n != 11 || f.TS[n-1] != base {
		t.Fatalf("bars %v: want the 11 closed by now, the last opening at %d", f.TS, base)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Fetch(ctx, series, grid.R(0, 600)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch with a cancelled context: %v", err)
	}
}
