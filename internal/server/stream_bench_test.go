package server_test

import (
	"context"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

// BenchmarkStreamReplay replays 1,000,000 stored one-minute bars through a WebSocket
// subscription with the Go client (decoding every bar), from start to caught_up, and
// reports bars/s for the Arrow and the JSON transport.
func BenchmarkStreamReplay(b *testing.B) {
	e := servertest.Start(b, server.Config{})
	start := seamless.ClosedEnd(servertest.Now.Unix(), 60) - benchBars*60
	if _, err := e.Provider.Backfill(context.Background(), seamless.BackfillRequest{NodeID: servertest.Node, Interval: 60,
		Start: start, End: start + benchBars*60}); err != nil {
		b.Fatal(err)
	}
	for _, f := range []client.Format{client.Arrow, client.JSON} {
		b.Run(string(f), func(b *testing.B) {
			c, err := client.New(e.HTTP.URL, client.WithFormat(f))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				ctx, cancel := context.WithCancel(context.Background())
				n := 0
				for ev, err := range c.Subscribe(ctx, seamless.SubscribeRequest{NodeID: servertest.Node, Start: start}) {
					if err != nil {
						b.Fatal(err)
					}
					if ev.Type == seamless.EventBars {
						n += ev.Frame.Len()
					}
					if ev.Type == seamless.EventCaughtUp {
						break
					}
				}
				cancel()
				if n != benchBars {
					b.Fatalf("%d bars", n)
				}
			}
			b.ReportMetric(float64(benchBars*b.N)/b.Elapsed().Seconds(), "bars/s")
		})
	}
}

// BenchmarkStreamLatency1000 runs 1,000 WebSocket subscribers (JSON) of one demo series
// of 1-second bars on the wall clock, in the same process as the server, and reports
// the close→delivery latency of live bars as the clients see it (p50, p99, max over
// b.N bar closes × 1,000 subscribers), and the memory per idle subscriber (heap, both
// ends of the connection, measured before any bar closes).
func BenchmarkStreamLatency1000(b *testing.B) {
	const subscribers = 1000
	const nodeID = "ohlcv:demo:BTC-USD:1s"
	src, err := demo.New(demo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"demo": demolive.New(demolive.Options{})}})
	if err != nil {
		b.Fatal(err)
	}
	st := memstore.New()
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}, Live: tier, Seed: 1,
		Subscriptions: seamless.SubscribeOptions{Buffer: 64}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{Provider: p})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer func() {
		srv.Close()
		hs.Close()
		tier.Close()
		p.Close()
		st.Close()
	}()
	c, err := client.New(hs.URL, client.WithFormat(client.JSON))
	if err != nil {
		b.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var caught, wg sync.WaitGroup
	caught.Add(subscribers)
	for range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			once := sync.OnceFunc(caught.Done)
			defer once()
			for ev, err := range c.Subscribe(ctx, seamless.SubscribeRequest{NodeID: nodeID}) {
				if err != nil {
					return
				}
				switch ev.Type {
				case seamless.EventCaughtUp:
					once()
				case seamless.EventBars:
					if ev.Origin == string(seamless.OriginLive) {
						d := time.Since(time.Unix(ev.Frame.TS[ev.Frame.Len()-1]+1, 0))
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				}
			}
		}()
	}
	caught.Wait()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSub := float64(after.HeapInuse-before.HeapInuse) / subscribers

	b.ResetTimer()
	for b.Loop() {
		// One bar closes per second: wait for the next one to reach everyone.
		mu.Lock()
		want := len(lat) + subscribers
		mu.Unlock()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := len(lat)
			mu.Unlock()
			if n >= want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d deliveries", n, want)
			}
		}
	}
	b.StopTimer()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(perSub/1024, "KiB/idle-sub")
}
