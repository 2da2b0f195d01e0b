package binance

import (
	"context"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/memstore"
)

// TestThroughProvider runs the Source behind the real provider: a cold fetch backfills
// whole aligned chunks (one page each), records a maintenance window as covered, and
// a warm fail_fast fetch is served from storage without any HTTP request.
func TestThroughProvider(t *testing.T) {
	fb, clk := newTest(t)
	start, end := t0-2*86400, t0-86400
	gap := grid.R(start+3600, start+3600+600)
	fb.set(func(fb *fakeBinance) { fb.gaps = []grid.Range{gap} })
	src := fb.source(t, Options{})
	store := memstore.New()
	p, err := seamless.New(seamless.Config{Store: store, Sources: seamless.Sources{"binance": src}, Clock: clk, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		store.Close()
	})
	ctx := context.Background()
	req := seamless.Request{NodeID: btc1m, Interval: 60, Start: start, End: end}

	cold, err := p.Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := gridTS(start, end, 60, gap)
	checkBars(t, cold.Frame, 60, want)
	md := cold.Metadata
	chunks := len(grid.R(start, end).Chunks(900 * 60))
	if md.CoverageRatio != 1 || md.Sources.Backfill != len(want) || md.Backfill.Chunks != chunks {
		t.Fatalf("cold metadata %+v", md)
	}
	if st := src.Stats(); st != (Stats{Requests: uint64(chunks)}) {
		t.Fatalf("stats %+v, want one page per %d chunks", st, chunks)
	}

	req.Strategy = seamless.FailFast
	warm, err := p.Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	checkBars(t, warm.Frame, 60, want)
	if src := warm.Metadata.Sources; src.Storage+src.Cache != len(want) || src.Backfill != 0 || warm.Metadata.CoverageRatio != 1 {
		t.Fatalf("warm metadata %+v", warm.Metadata)
	}
	if n := src.Stats().Requests; n != uint64(chunks) {
		t.Fatalf("warm fetch sent %d HTTP requests", n-uint64(chunks))
	}

	// An invalid symbol fails the backfill at once: no provider retries of a 400.
	bad := seamless.Request{NodeID: "ohlcv:binance:DOGE/USDT:1m", Interval: 60, Start: start, End: start + 3600}
	before := src.Stats().Requests
	if _, err := p.Fetch(ctx, bad); seamless.ErrorCode(err) != seamless.CodeUpstreamFailed || !seamless.IsPermanent(err) {
		t.Fatalf("invalid symbol: %v", err)
	}
	if n := src.Stats().Requests - before; n != 1 {
		t.Fatalf("invalid symbol cost %d requests, want 1", n)
	}
}
