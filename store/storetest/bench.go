package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

// benchStart is a minute-aligned instant (2023-11-14), so benchmark bars look real.
const benchStart = 1_699_920_000

// BenchSeries is the series that FillBench writes and BenchRead reads.
var BenchSeries = seamless.Series{NodeID: "ohlcv:bench:BTC/USDT:1m", Interval: 60}

// FillBench writes bars one-minute OHLCV bars of BenchSeries to s, in writes of 10,000
// bars, and returns their range.
func FillBench(b *testing.B, s seamless.Store, bars int) grid.Range {
	ctx := context.Background()
	const chunk = 10_000
	for lo := 0; lo < bars; lo += chunk {
		n := min(chunk, bars-lo)
		start := benchStart + int64(lo)*60
		w := seamless.Write{Series: BenchSeries, Range: grid.R(start, start+int64(n)*60), Frame: OHLCV(start, 60, n)}
		if err := s.Write(ctx, w); err != nil {
			b.Fatal(err)
		}
	}
	return grid.R(benchStart, benchStart+int64(bars)*60)
}

// BenchRead measures a Read of the bars of BenchSeries in r, which FillBench wrote to s.
// The first Read, before the timer starts, warms caches. It reports bars/s.
func BenchRead(b *testing.B, s seamless.Store, r grid.Range) {
	ctx := context.Background()
	bars := int(r.Bars(BenchSeries.Interval))
	if f, err := s.Read(ctx, BenchSeries, r); err != nil || f.Len() != bars {
		b.Fatalf("warm-up Read: %d bars, %v", f.Len(), err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f, err := s.Read(ctx, BenchSeries, r)
		if err != nil || f.Len() != bars {
			b.Fatalf("Read: %d bars, %v", f.Len(), err)
		}
	}
	b.ReportMetric(float64(bars)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}

// BenchIngest measures writing bars one-minute OHLCV bars into a fresh store from open,
// in writes of perWrite bars, spread over writers goroutines each filling its own series.
// Each iteration opens a new store (outside the timer) and closes it after the last
// write returns. It reports bars/s.
func BenchIngest(b *testing.B, open func(b *testing.B) seamless.Store, bars, perWrite, writers int) {
	benchIngest(b, open, bars, perWrite, writers, false)
}

// BenchIngestReversed is BenchIngest with each series' writes made newest first, the
// order of a backfill that walks back in time (or of chunks completing out of order):
// every write lands before what the store already holds.
func BenchIngestReversed(b *testing.B, open func(b *testing.B) seamless.Store, bars, perWrite int) {
	benchIngest(b, open, bars, perWrite, 1, true)
}

func benchIngest(b *testing.B, open func(b *testing.B) seamless.Store, bars, perWrite, writers int, reverse bool) {
	ctx := context.Background()
	per := bars / writers
	// Frames are built before the timer starts: the benchmark measures the store.
	work := make([][]seamless.Write, writers)
	for g := range writers {
		ser := seamless.Series{NodeID: fmt.Sprintf("ohlcv:bench:PAIR%d/USDT:1m", g), Interval: 60}
		for lo := 0; lo < per; lo += perWrite {
			n := min(perWrite, per-lo)
			start := benchStart + int64(lo)*60
			work[g] = append(work[g], seamless.Write{Series: ser, Range: grid.R(start, start+int64(n)*60), Frame: OHLCV(start, 60, n)})
		}
		if reverse {
			slices.Reverse(work[g])
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s := open(b)
		b.StartTimer()
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, w := range work[g] {
					if err := s.Write(ctx, w); err != nil {
						errs[g] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(per*writers)*float64(b.N)/b.Elapsed().Seconds(), "bars/s")
}
