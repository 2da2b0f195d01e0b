package pebblestore_test

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/store/pebblestore"
	"github.com/seamless-data/seamless/store/storetest"
)

func benchOpen(b *testing.B) seamless.Store {
	s, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// flush moves everything in the database's memtables and WAL into sstables.
func flush(b *testing.B, dir string) {
	db, err := pebble.Open(dir, rawOptions())
	if err == nil {
		err = db.Flush()
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReadCovered reads one million warm one-minute bars per iteration. The bars
// are flushed to sstables after they are written, so they are read through the block
// cache — the steady state of a long-running store — rather than from the memtable
// they were written to. With an 8 MiB cache the reads miss it and go to the operating
// system's page cache, which is where compression costs.
func BenchmarkReadCovered(b *testing.B) {
	for _, c := range []struct {
		name string
		opts pebblestore.Options
	}{
		{"cache=512MiB", pebblestore.Options{}},
		{"cache=512MiB/compress", pebblestore.Options{Compress: true}},
		{"cache=8MiB", pebblestore.Options{CacheSize: 8 << 20}},
		{"cache=8MiB/compress", pebblestore.Options{CacheSize: 8 << 20, Compress: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			dir, opts := b.TempDir(), c.opts
			s, err := pebblestore.Open(dir, opts)
			if err != nil {
				b.Fatal(err)
			}
			r := storetest.FillBench(b, s, 1_000_000)
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			flush(b, dir)
			if s, err = pebblestore.Open(dir, opts); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			storetest.BenchRead(b, s, r)
		})
	}
}

// BenchmarkIngest writes one million bars durably (each Write synced to the WAL), by
// one writer and by eight writers on separate series, whose fsyncs group-commit.
func BenchmarkIngest(b *testing.B) {
	for _, writers := range []int{1, 8} {
		for _, per := range []int{900, 10_000} {
			b.Run(fmt.Sprintf("writers=%d/bars=%d", writers, per), func(b *testing.B) {
				storetest.BenchIngest(b, benchOpen, 1_000_000, per, writers)
			})
		}
	}
}
