package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
)

const benchBars = 1_000_000

// BenchmarkGatewayFetch serves 1,000,000 stored one-minute bars over loopback, warm
// (in the memstore), and reports end-to-end bars/s for each transport: "client" rows
// include decoding into a frame with package client, "http" rows only read the body.
func BenchmarkGatewayFetch(b *testing.B) {
	e := servertest.Start(b, server.Config{})
	req := seamless.Request{NodeID: servertest.Node, Interval: 60, Strategy: seamless.FailFast,
		Start: servertest.Unix(1000 * 24 * time.Hour)}
	req.End = req.Start + benchBars*60
	if _, err := e.Provider.Backfill(context.Background(), seamless.BackfillRequest{NodeID: req.NodeID, Interval: 60, Start: req.Start, End: req.End}); err != nil {
		b.Fatal(err)
	}
	for _, f := range []client.Format{client.Arrow, client.JSON} {
		b.Run("client/"+string(f), func(b *testing.B) {
			c, err := client.New(e.HTTP.URL, client.WithFormat(f))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				res, err := c.Fetch(context.Background(), req)
				if err != nil || res.Frame.Len() != benchBars {
					b.Fatalf("%v, %d rows", err, res.Frame.Len())
				}
			}
			b.ReportMetric(float64(benchBars*b.N)/b.Elapsed().Seconds(), "bars/s")
		})
	}
	for _, f := range []string{"arrow", "json", "csv"} {
		b.Run("http/"+f, func(b *testing.B) {
			q := url.Values{"node_id": {req.NodeID}, "interval": {"60"}, "start": {strconv.FormatInt(req.Start, 10)},
				"end": {strconv.FormatInt(req.End, 10)}, "strategy": {"fail_fast"}, "format": {f}}
			var n int64
			for b.Loop() {
				resp, err := http.Get(e.HTTP.URL + "/v1/bars?" + q.Encode())
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err, resp)
				}
				n, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchBars*b.N)/b.Elapsed().Seconds(), "bars/s")
			b.ReportMetric(float64(n)/benchBars, "B/bar")
		})
	}
	http.DefaultClient.CloseIdleConnections()
}

// BenchmarkGatewayCovered1000Concurrent50 is the serving-latency target: 50 clients at
// once, each asking for a covered 1,000-bar range (Arrow transport, varying offsets),
// over loopback. It reports the p50 and p99 request latency in milliseconds; b.N is
// the total number of requests, so -benchtime bounds the run.
func BenchmarkGatewayCovered1000Concurrent50(b *testing.B) {
	e := servertest.Start(b, server.Config{MaxConcurrentFetches: 64})
	start := servertest.Unix(1000 * 24 * time.Hour)
	const span = 100_000
	if _, err := e.Provider.Backfill(context.Background(), seamless.BackfillRequest{NodeID: servertest.Node, Interval: 60, Start: start, End: start + span*60}); err != nil {
		b.Fatal(err)
	}
	c, err := client.New(e.HTTP.URL, client.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}))
	if err != nil {
		b.Fatal(err)
	}
	const clients = 50
	lat := make([][]time.Duration, clients)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				s := start + (i*7919%(span-1000))*60
				t := time.Now()
				res, err := c.Fetch(context.Background(), seamless.Request{NodeID: servertest.Node, Interval: 60, Start: s, End: s + 1000*60, Strategy: seamless.FailFast})
				lat[w] = append(lat[w], time.Since(t))
				if err != nil || res.Frame.Len() != 1000 {
					b.Errorf("%v, %d rows", err, res.Frame.Len())
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "bars/s")
}
