package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/source/binance"
	"github.com/seamless-data/seamless/source/binance/binancetest"
	"github.com/seamless-data/seamless/store/memstore"
)

// gatewayOverBinance serves a real provider over a fake Binance.
func gatewayOverBinance(t *testing.T) (*binancetest.Server, *httptest.Server) {
	t.Helper()
	up := binancetest.New()
	t.Cleanup(up.Close)
	src, err := binance.New(binance.Options{BaseURL: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	p, err := seamless.New(seamless.Config{Store: memstore.New(), Sources: seamless.Sources{"binance": src}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	srv, err := server.New(server.Config{Provider: p, MaxConcurrentFetches: 64})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return up, hs
}

// TestConcurrentClientsShareUpstreamPages: 50 HTTP clients ask overlapping ranges of
// a cold Binance series at once; every upstream page is fetched exactly once, every
// answer is complete, and a warm repeat makes no upstream call.
func TestConcurrentClientsShareUpstreamPages(t *testing.T) {
	up, hs := gatewayOverBinance(t)
	up.Latency = 5 * time.Millisecond
	c, err := client.New(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC).Unix()
	node := "ohlcv:binance:BTC/USDT:1m"
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := base + int64(i%10)*4*3600
			res, err := c.Fetch(context.Background(), seamless.Request{NodeID: node, Interval: 60, Start: start, End: start + 86400, Strategy: seamless.AutoBackfill})
			if err != nil {
				errs <- err
				return
			}
			if res.Frame.Len() != 1440 || !res.Frame.IsSortedUnique() || res.Metadata.CoverageRatio != 1 {
				errs <- fmt.Errorf("client %d: %d rows, ratio %v", i, res.Frame.Len(), res.Metadata.CoverageRatio)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pages := up.Pages()
	var keys []string
	for k, n := range pages {
		if n != 1 {
			t.Errorf("page %s fetched %d times", k, n)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		t.Fatal("no upstream pages")
	}
	before := len(pages)
	res, err := c.Fetch(context.Background(), seamless.Request{NodeID: node, Interval: 60, Start: base, End: base + 86400, Strategy: seamless.FailFast})
	if err != nil || res.Frame.Len() != 1440 || len(up.Pages()) != before {
		t.Fatalf("warm fetch: %v, %d rows, pages %d → %d", err, res.Frame.Len(), before, len(up.Pages()))
	}
	resp, err := http.Get(hs.URL + "/v1/series")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("series: %v", err)
	}
	resp.Body.Close()
}
