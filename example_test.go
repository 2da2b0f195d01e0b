package seamless_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/pebblestore"
)

// The library in a few lines: an embedded Pebble store, the demo source, and one
// request that backfills what is missing and answers with the bars and their metadata.
func Example() {
	dir, _ := os.MkdirTemp("", "seamless-example")
	defer os.RemoveAll(dir)
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	src, err := demo.New(demo.Options{})
	if err != nil {
		log.Fatal(err)
	}
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close() // stops background work before the store closes

	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := p.Fetch(context.Background(), seamless.Request{
		NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60,
		Start: start.Unix(), End: start.Add(time.Hour).Unix(), // [start, end), epoch seconds
	})
	if err != nil {
		log.Fatal(err) // typed: seamless.ErrorCode(err) is "not_covered", "sla_exceeded", …
	}
	// A server that writes the answer out and drops it may hand its memory back.
	defer res.Release()
	md := res.Metadata
	fmt.Println(res.Frame.Len(), "bars, coverage", md.CoverageRatio, "backfilled", md.Sources.Backfill)
	fmt.Println("first bar at", time.Unix(res.Frame.TS[0], 0).UTC().Format(time.RFC3339), "columns", res.Frame.Schema().Names())
	// Output:
	// 60 bars, coverage 1 backfilled 60
	// first bar at 2024-01-01T00:00:00Z columns [ts open high low close volume]
}
