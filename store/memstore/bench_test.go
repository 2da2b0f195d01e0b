package memstore_test

import (
	"testing"

	"github.com/seamless-data/seamless/store/memstore"
	"github.com/seamless-data/seamless/store/storetest"
)

// BenchmarkReadCovered reads one million one-minute bars per iteration, for comparison
// with pebblestore's.
func BenchmarkReadCovered(b *testing.B) {
	s := memstore.New()
	storetest.BenchRead(b, s, storetest.FillBench(b, s, 1_000_000))
}
