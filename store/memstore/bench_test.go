package memstore_test

import (
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/store/memstore"
	"github.com/seamless-data/seamless/store/storetest"
)

// BenchmarkReadCovered reads one million one-minute bars per iteration, for comparison
// with pebblestore's.
func BenchmarkReadCovered(b *testing.B) {
	s := memstore.New()
	storetest.BenchRead(b, s, storetest.FillBench(b, s, 1_000_000))
}

// BenchmarkIngest writes one million one-minute bars in 900-bar writes (a backfill
// chunk), in time order and newest first.
func BenchmarkIngest(b *testing.B) {
	open := func(*testing.B) seamless.Store { return memstore.New() }
	b.Run("order=forward", func(b *testing.B) { storetest.BenchIngest(b, open, 1_000_000, 900, 1) })
	b.Run("order=reverse", func(b *testing.B) { storetest.BenchIngestReversed(b, open, 1_000_000, 900) })
}
