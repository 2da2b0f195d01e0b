package pgstore_test

import (
	"fmt"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/store/pgstore"
	"github.com/seamless-data/seamless/store/storetest"
)

// benchOptions give each of up to eight writers its own connection.
var benchOptions = pgstore.Options{MaxConns: 8}

// BenchmarkReadCovered reads one million warm one-minute bars per iteration: one query
// returning ~1,100 blocks over a loopback connection, decoded into one frame.
func BenchmarkReadCovered(b *testing.B) {
	s := openStore(b, freshSchema(b), benchOptions)
	storetest.BenchRead(b, s, storetest.FillBench(b, s, 1_000_000))
}

// BenchmarkIngest writes one million bars durably (each Write is a committed
// transaction, synced to the WAL), by one writer and by eight writers on separate
// series, whose commits the server group-commits.
func BenchmarkIngest(b *testing.B) {
	for _, writers := range []int{1, 8} {
		for _, per := range []int{900, 10_000} {
			b.Run(fmt.Sprintf("writers=%d/bars=%d", writers, per), func(b *testing.B) {
				storetest.BenchIngest(b, func(b *testing.B) seamless.Store {
					return openStore(b, freshSchema(b), benchOptions)
				}, 1_000_000, per, writers)
			})
		}
	}
}
