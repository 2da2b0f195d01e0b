package demolive_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const iv = 60

var ser = seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: iv}

// start is 30 s into the bar opening at c0.
const c0 = int64(1_700_000_040)

func TestThreeIntervalsGiveThreeClosedDemoBars(t *testing.T) {
	clk := clock.NewFake(time.Unix(c0+30, 0))
	st := memstore.New()
	defer st.Close()
	sink, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{}, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"demo": demolive.New(demolive.Options{Clock: clk})},
		Sink: sink, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	if err := tier.Subscribe(ser); err != nil {
		t.Fatal(err)
	}
	// The feed starts with the bar forming at subscription; time moves only after.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := tier.Forming(ser); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no forming bar")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range int64(3) {
		clk.Advance(iv * time.Second)
		if err := tier.WaitClosed(ctx, ser, c0+i*iv); err != nil {
			t.Fatalf("bar %d: %v", i, err)
		}
	}
	want := demo.Bars(ser.NodeID, iv, grid.R(c0, c0+3*iv))
	got, err := st.Read(ctx, ser, grid.R(c0-10*iv, c0+10*iv))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.TS, want.TS) {
		t.Fatalf("stored ts %v, want %v", got.TS, want.TS)
	}
	for c := range want.Cols {
		if !reflect.DeepEqual(got.Cols[c].F64, want.Cols[c].F64) {
			t.Fatalf("column %s = %v, want %v", want.Cols[c].Name, got.Cols[c].F64, want.Cols[c].F64)
		}
	}
	cov, _ := st.Coverage(ctx, ser)
	if w := grid.NewSet(grid.R(c0, c0+3*iv)); !cov.Equal(w) {
		t.Fatalf("coverage %v, want %v", cov, w)
	}
	if s := tier.Stats(); s.ClosedBars != 3 || s.StoredBars != 3 || s.Duplicates != 0 {
		t.Fatalf("tier %+v", s)
	}
	// The forming bar follows the closed ones in a separate update.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if f, ok := tier.Forming(ser); ok && f.TS[0] == c0+3*iv {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no forming bar after the third close")
		}
	}
}

func TestFeedUpdates(t *testing.T) {
	clk := clock.NewFake(time.Unix(c0+15, 0))
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := demolive.New(demolive.Options{Clock: clk, Tick: 5 * time.Second}).Subscribe(ctx, ser)
	if err != nil {
		t.Fatal(err)
	}
	final := demo.Bars(ser.NodeID, iv, grid.R(c0, c0+iv))
	first := <-ch
	if first.Closed || first.Bars.TS[0] != c0 {
		t.Fatalf("first update %+v", first)
	}
	o, h, l, c, v := first.Bars.Cols[0].F64[0], first.Bars.Cols[1].F64[0], first.Bars.Cols[2].F64[0],
		first.Bars.Cols[3].F64[0], first.Bars.Cols[4].F64[0]
	if o != final.Cols[0].F64[0] || h < max(o, c) || l > min(o, c) || v <= 0 || v >= final.Cols[4].F64[0] {
		t.Fatalf("forming bar %v %v %v %v %v: want the demo open, sane OHLC, a part of the volume", o, h, l, c, v)
	}

	clk.Advance(5 * time.Second) // one tick: a new forming update
	if u := <-ch; u.Closed || u.Bars.TS[0] != c0 || u.Bars.Col("volume").F64[0] <= first.Bars.Col("volume").F64[0] {
		t.Fatalf("tick update %+v", u)
	}
	clk.Advance(200 * time.Second) // three boundaries at once
	u := <-ch
	if !u.Closed || !reflect.DeepEqual(u.Bars.TS, []int64{c0, c0 + iv, c0 + 2*iv}) {
		t.Fatalf("closed update %+v", u)
	}
	if u := <-ch; u.Closed || u.Bars.TS[0] != c0+3*iv {
		t.Fatalf("forming after the jump %+v", u)
	}
	cancel()
	for range ch {
	}
	if _, err := demolive.New(demolive.Options{}).Subscribe(context.Background(), seamless.Series{NodeID: "ohlcv:demo:X:1m", Interval: 300}); !seamless.IsPermanent(err) {
		t.Fatalf("mismatched interval: %v", err)
	}
}
