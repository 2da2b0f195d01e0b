package coordtest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless/coordinator/etcdcoord"
	"github.com/seamless-data/seamless/internal/etcdtest"
)

// BenchmarkLeaseRoundTrip3Members measures one chunk lease's life on a 3-member etcd
// cluster on loopback — Claim then Complete, as the backfill tier does per chunk (an
// etcd lease grant, the claim transaction, the release transaction and the lease
// revoke, each committed by a quorum) — and reports its p50 and p99 latency. With
// parallelism > 1, that many workers claim distinct chunks at once.
func BenchmarkLeaseRoundTrip3Members(b *testing.B) {
	cluster := etcdtest.StartCluster(b, 3)
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			c := etcdcoord.New(cluster.Client(b), etcdcoord.Options{Prefix: freshPrefix(), Holder: "bench"})
			ctx := context.Background()
			var (
				next atomic.Int64
				mu   sync.Mutex
				lat  []time.Duration
			)
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					own := make([]time.Duration, 0, b.N/workers+1)
					for next.Add(1) <= int64(b.N) {
						k := fmt.Sprintf("bench:60:%d:%d", w, len(own))
						began := time.Now()
						l, err := c.Claim(ctx, k, 30*time.Second)
						if err != nil {
							b.Error(err)
							return
						}
						if err := c.Complete(ctx, l); err != nil {
							b.Error(err)
							return
						}
						own = append(own, time.Since(began))
					}
					mu.Lock()
					lat = append(lat, own...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// reportLatency reports the p50 and p99 of lat in milliseconds.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}
