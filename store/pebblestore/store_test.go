package pebblestore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/pebblestore"
	"github.com/seamless-data/seamless/store/storetest"
)

// testOptions keep the cache small: the suite opens many stores.
var testOptions = pebblestore.Options{CacheSize: 8 << 20, MemTableSize: 4 << 20}

func open(t *testing.T, dir string) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(dir, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) seamless.Store { return open(t, t.TempDir()) })
}

// TestContractSmallBlocks runs the suite with blocks of 7 bars, so that every test's
// writes and reads cross many block boundaries.
func TestContractSmallBlocks(t *testing.T) {
	storetest.Run(t, func(t *testing.T) seamless.Store {
		opts := testOptions
		opts.BlockBars = 7
		s, err := pebblestore.Open(t.TempDir(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestRestart writes, closes, reopens with a different BlockBars (which must not apply
// to existing series) and reads the same frames and coverage back.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	a := seamless.Series{NodeID: "ohlcv:demo:BTC/USD:1m", Interval: 60}
	b := seamless.Series{NodeID: "ohlcv:demo:BTC/USD:1h", Interval: 3600}
	writes := []seamless.Write{
		{Series: a, Range: grid.R(-3000*60, 5000*60), Frame: storetest.OHLCV(-3000*60, 60, 8000)},
		{Series: a, Range: grid.R(9000*60, 9500*60), Frame: storetest.OHLCV(9100*60, 60, 100)},
		{Series: b, Range: grid.R(0, 3600*24), Frame: &frame.Frame{}},
	}
	for _, w := range writes {
		if err := s.Write(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	type state struct {
		f   *frame.Frame
		cov grid.Set
	}
	snapshot := func(s *pebblestore.Store) map[seamless.Series]state {
		out := map[seamless.Series]state{}
		for _, ser := range []seamless.Series{a, b} {
			f, err := s.Read(ctx, ser, grid.R(-1<<62, 1<<62))
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.Coverage(ctx, ser)
			if err != nil {
				t.Fatal(err)
			}
			out[ser] = state{f, c}
		}
		return out
	}
	before := snapshot(s)
	if before[a].f.Len() != 8100 || before[a].cov.Len() != 2 {
		t.Fatalf("before restart: %d bars, coverage %v", before[a].f.Len(), before[a].cov)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	reopened := testOptions
	reopened.BlockBars = 100
	s, err := pebblestore.Open(dir, reopened)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after := snapshot(s)
	for ser, want := range before {
		got := after[ser]
		if d := storetest.Diff(got.f, want.f); d != "" {
			t.Errorf("%v after restart: %s", ser, d)
		}
		if !got.cov.Equal(want.cov) {
			t.Errorf("%v coverage after restart = %v, want %v", ser, got.cov, want.cov)
		}
	}
	l, err := s.ListSeries(ctx)
	if err != nil || len(l) != 2 {
		t.Fatalf("ListSeries after restart = %+v, %v", l, err)
	}
	// The store keeps working after a restart: a write merges with reopened blocks.
	w := seamless.Write{Series: a, Range: grid.R(5000*60, 9000*60), Frame: storetest.OHLCV(5000*60, 60, 4000)}
	if err := s.Write(ctx, w); err != nil {
		t.Fatal(err)
	}
	f, err := s.Read(ctx, a, grid.R(-3000*60, 9500*60))
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.OHLCV(-3000*60, 60, 12000)
	tail := storetest.OHLCV(9100*60, 60, 100)
	want.AppendRows(tail, 0, tail.Len())
	if d := storetest.Diff(f, want); d != "" {
		t.Fatalf("after a write following restart: %s", d)
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)         {}
func (quiet) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

// rawOptions open the store's database directly, to damage it.
func rawOptions() *pebble.Options { return &pebble.Options{Logger: quiet{}} }

// TestCorruptValues checks that damaged stored values surface as errors, never panics.
func TestCorruptValues(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	ser := seamless.Series{NodeID: "ohlcv:demo:BTC/USD:1m", Interval: 60}
	if err := s.Write(ctx, seamless.Write{Series: ser, Range: grid.R(0, 3000*60), Frame: storetest.OHLCV(0, 60, 3000)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Damage every value in a copy of the database in several ways, one at a time.
	db, err := pebble.Open(dir, rawOptions())
	if err != nil {
		t.Fatal(err)
	}
	var keys, vals [][]byte
	it, _ := db.NewIter(nil)
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
		vals = append(vals, append([]byte(nil), it.Value()...))
	}
	it.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	damages := map[string]func([]byte) []byte{
		"empty":     func(v []byte) []byte { return nil },
		"truncated": func(v []byte) []byte { return v[:len(v)/2] },
		"extended":  func(v []byte) []byte { return append(v, 1, 2, 3) },
		"version":   func(v []byte) []byte { v[0] = 99; return v },
		"count":     func(v []byte) []byte { v[1], v[2], v[3], v[4] = 0xff, 0xff, 0xff, 0x7f; return v },
		"byte 5":    func(v []byte) []byte { v[5] ^= 0xff; return v },
	}
	for i, k := range keys {
		for name, damage := range damages {
			db, err := pebble.Open(dir, rawOptions())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Set(k, damage(append([]byte(nil), vals[i]...)), pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			s := open(t, dir)
			_, rerr := s.Read(ctx, ser, grid.R(0, 3000*60))
			_, cerr := s.Coverage(ctx, ser)
			werr := s.Write(ctx, seamless.Write{Series: ser, Range: grid.R(0, 60), Frame: storetest.OHLCV(0, 60, 1)})
			if rerr == nil && cerr == nil && werr == nil {
				t.Errorf("key %x damaged (%s): no operation failed", k, name)
			}
			var we *seamless.WriteError
			if errors.As(werr, &we) {
				t.Errorf("key %x damaged (%s): corruption reported as a rejected write: %v", k, name, werr)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// Restore the value for the next damage.
			db, err = pebble.Open(dir, rawOptions())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Set(k, vals[i], pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
