// Package pebblestore is the embedded, durable seamless.Store, built on Pebble (the
// LSM key-value engine of CockroachDB).
//
// Bars are stored column-wise in blocks: one key per Options.BlockBars-wide stretch of a
// series' grid, aligned from epoch 0, whose value holds the rows' ts and columns as raw
// little-endian arrays (see store/internal/block). A read of a million bars is then a
// thousand iterator steps and bulk copies, not a million key decodes. A series' schema
// and coverage live under its meta key. Write updates the touched blocks (read, merge,
// write back) and the meta key in one Pebble batch, synced to the write-ahead log
// before Write returns, so bars and coverage are atomic and survive a crash.
package pebblestore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/internal/block"
	"github.com/seamless-data/seamless/store/internal/contract"
	"github.com/seamless-data/seamless/store/internal/merge"
)

// Options tune the store. The zero value is a good default.
type Options struct {
	// CacheSize is the block cache size in bytes (default 512 MiB). Reads of data in the
	// cache cost a memmove; reads of data outside it go to the page cache or the disk.
	CacheSize int64
	// MemTableSize is the size in bytes of each memtable (default 64 MiB). Larger
	// memtables absorb more block rewrites of an ingest before they are flushed.
	MemTableSize uint64
	// BlockBars is the number of grid points per block of series created by this
	// store (default 900); existing series keep the size they were created with. The
	// default equals the backfill tier's default window (SPEC §2: window_bars 900,
	// chunks aligned from epoch 0), so each backfilled chunk fills exactly one block and
	// is written without rewriting stored bars. At most 65536.
	BlockBars int
	// Compress enables Snappy compression of sstable blocks. It is off by default
	// because it bought nothing when measured (docs/benchmarks.md): the block cache
	// holds decompressed blocks, and float columns compress too little to make cache
	// misses cheaper, while compressing costs CPU on every flush and compaction.
	Compress bool
}

const (
	defaultCacheSize    = 512 << 20
	defaultMemTableSize = 64 << 20
	defaultBlockBars    = 900
	maxBlockBars        = 1 << 16
)

// Store is a seamless.Store in a Pebble database directory. It is safe for concurrent
// use.
type Store struct {
	db *pebble.DB

	// life guards closing: every operation holds it shared, Close exclusively, so Pebble
	// is never used after it is closed (which would panic).
	life contract.Lifetime

	// writeMu serialises the read-modify-write of blocks and meta keys. metas caches
	// the meta of every series written since Open; only writers, holding writeMu, use
	// it.
	writeMu sync.Mutex
	metas   map[string]seriesMeta

	blockBars int64
}

var _ seamless.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.CacheSize <= 0 {
		opts.CacheSize = defaultCacheSize
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = defaultMemTableSize
	}
	if opts.BlockBars == 0 {
		opts.BlockBars = defaultBlockBars
	}
	if opts.BlockBars < 0 || opts.BlockBars > maxBlockBars {
		return nil, fmt.Errorf("pebblestore: open %s: BlockBars %d outside [1, %d]", dir, opts.BlockBars, maxBlockBars)
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	compression := pebble.NoCompression
	if opts.Compress {
		compression = pebble.SnappyCompression
	}
	popts := &pebble.Options{
		Cache:        cache,
		MemTableSize: opts.MemTableSize,
		Levels:       make([]pebble.LevelOptions, 7),
		Logger:       quietLogger{},
	}
	for i := range popts.Levels {
		// Writes look up the blocks they touch; the bloom filter answers "no such block"
		// for the new blocks of an append without reading sstables.
		popts.Levels[i] = pebble.LevelOptions{Compression: compression, FilterPolicy: bloom.FilterPolicy(10)}
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	return &Store{db: db, metas: map[string]seriesMeta{}, blockBars: int64(opts.BlockBars)}, nil
}

// quietLogger drops Pebble's informational messages (WAL recycling, compactions) and
// keeps its fatal ones fatal.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	pebble.DefaultLogger.Fatalf(format, args...)
}

// Write implements seamless.Store.
//
// Durability without serialised fsyncs: the batch is applied under writeMu with
// ApplyNoSyncWait(Sync), which appends it to the WAL and the memtable and returns
// without waiting for the fsync; Write then waits for the fsync (Batch.SyncWait) after
// releasing writeMu. Pebble's WAL writer syncs everything written so far in one fsync,
// so concurrent writers' batches share fsyncs (group commit) while their
// read-modify-writes stay serialised. A later batch can never be durable without an
// earlier one, because the WAL is one sequential file synced in order. Other readers may
// see a write before its fsync completes — the same is true of Pebble's plain
// Apply(Sync) — but Write never returns success before it is durable.
//
// (Applying with NoSync and then syncing the WAL with DB.LogData(nil, Sync), which also
// works in Pebble v1.1.5 because a LogData record makes the batch non-empty, would add a
// record to the WAL per write for the same effect.)
func (s *Store) Write(ctx context.Context, w seamless.Write) error {
	if err := contract.CheckWrite(w); err != nil {
		return err
	}
	op := "write " + w.Series.String()
	if err := s.life.Enter(ctx, "pebblestore", op); err != nil {
		return err
	}
	defer s.life.Exit()
	b, err := s.apply(ctx, w)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.SyncWait(); err != nil {
		return fmt.Errorf("pebblestore: %s: sync: %w", op, err)
	}
	return nil
}

// apply builds and applies the write's batch under writeMu and returns it, applied but
// maybe not yet synced.
func (s *Store) apply(ctx context.Context, w seamless.Write) (*pebble.Batch, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	// The wait for writeMu may have been long.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sk := seriesKey(w.Series)
	meta, err := s.loadMeta(sk)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: write %s: %w", w.Series, err)
	}
	schema, hasSchema, err := contract.CheckSchema(w, meta.schema, meta.hasSchema)
	if err != nil {
		return nil, err
	}
	if meta.blockBars == 0 {
		meta.blockBars = s.blockBars
	}
	// Size the batch for the bars and a block's worth of stored rows, sparing most of
	// the regrowth of a batch that starts small.
	b := s.db.NewBatchWithSize(64 + 2*w.Frame.Len()*8*(1+len(schema.Fields)))
	if err := s.putBlocks(b, sk, w, schema, block.Width(w.Series.Interval, meta.blockBars)); err != nil {
		b.Close()
		return nil, fmt.Errorf("pebblestore: write %s %v: %w", w.Series, w.Range, err)
	}
	next := seriesMeta{blockBars: meta.blockBars, schema: schema, hasSchema: hasSchema, cov: meta.cov.Add(w.Range)}
	mv, err := encodeMeta(next)
	if err == nil {
		err = b.Set(metaKey(sk), mv, nil)
	}
	if err == nil {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	}
	if err != nil {
		b.Close()
		// The batch's fate is unknown; make the next write reload the meta.
		delete(s.metas, string(sk))
		return nil, fmt.Errorf("pebblestore: write %s %v: %w", w.Series, w.Range, err)
	}
	s.metas[string(sk)] = next
	return b, nil
}

// loadMeta returns the series' meta from the cache or the database. A series never
// written has the zero meta. Callers hold writeMu.
func (s *Store) loadMeta(sk []byte) (seriesMeta, error) {
	if m, ok := s.metas[string(sk)]; ok {
		return m, nil
	}
	m, _, err := getMeta(s.db, sk)
	if err != nil {
		return m, err
	}
	s.metas[string(sk)] = m
	return m, nil
}

type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// getMeta reads a series' meta; found is false for a series never written.
func getMeta(g getter, sk []byte) (m seriesMeta, found bool, err error) {
	v, closer, err := g.Get(metaKey(sk))
	if errors.Is(err, pebble.ErrNotFound) {
		return m, false, nil
	}
	if err != nil {
		return m, false, err
	}
	defer closer.Close()
	if m, err = decodeMeta(v); err != nil {
		return m, false, fmt.Errorf("corrupt series meta: %w", err)
	}
	return m, true, nil
}

// putBlocks adds to b the new value of every block the write's bars fall in: the stored
// block merged with the bars, the bars winning on equal ts. Values are encoded straight
// into the batch. When the bars all follow the stored block's last bar — an ingest
// appending newer bars — the stored columns are spliced as bytes; only a write into the
// middle of a block decodes and merges it.
func (s *Store) putBlocks(b *pebble.Batch, sk []byte, w seamless.Write, schema frame.Schema, width int64) error {
	f := w.Frame
	for i := 0; i < f.Len(); {
		idx := block.Index(f.TS[i], width)
		j := i + 1
		for j < f.Len() && block.Index(f.TS[j], width) == idx {
			j++
		}
		if err := s.putBlock(b, blockKey(sk, idx), schema, f.Slice(i, j)); err != nil {
			return fmt.Errorf("block %d: %w", idx, err)
		}
		i = j
	}
	return nil
}

func (s *Store) putBlock(b *pebble.Batch, key []byte, schema frame.Schema, rows *frame.Frame) error {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return setBlock(b, key, nil, rows)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	old, err := block.Parse(v, schema)
	if err != nil {
		return err
	}
	if old.Len() == 0 || old.TS(old.Len()-1) < rows.TS[0] {
		return setBlock(b, key, &old, rows)
	}
	f := block.NewFrame(schema, old.Len())
	if err := old.CopyRows(f, 0, 0, old.Len()); err != nil {
		return err
	}
	return setBlock(b, key, nil, merge.Upsert(f, rows))
}

// setBlock adds key = (old's rows followed by rows) to b, encoding in place.
func setBlock(b *pebble.Batch, key []byte, old *block.Block, rows *frame.Frame) error {
	op := b.SetDeferred(len(key), block.Size(old, rows))
	copy(op.Key, key)
	block.EncodeInto(op.Value, old, rows)
	return op.Finish()
}

// Read implements seamless.Store. It reads from one Pebble snapshot, so the result is
// a consistent state of the series even while writes land.
func (s *Store) Read(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	op := "read " + ser.String()
	if err := s.life.Enter(ctx, "pebblestore", op); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	sk := seriesKey(ser)
	meta, found, err := getMeta(snap, sk)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	if !found {
		return &frame.Frame{}, nil
	}
	if r.Empty() || !meta.hasSchema || ser.Interval <= 0 {
		return frame.New(meta.schema, 0), nil
	}
	f, err := readBlocks(snap, sk, block.Width(ser.Interval, meta.blockBars), r, meta.schema)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %s %v: %w", op, r, err)
	}
	return f, nil
}

// readBlocks reads the rows of r in two passes over the same iterator: the first sums
// the rows to size the output exactly, the second copies each block's columns into it
// in bulk. Iterator values stay in the block cache between the passes, so the first
// pass costs little next to one grow-and-copy of the output.
func readBlocks(snap *pebble.Snapshot, sk []byte, width int64, r grid.Range, schema frame.Schema) (*frame.Frame, error) {
	lo, hi := block.Index(r.Start, width), block.Index(r.End-1, width)
	// Every block key of a series has the same length, so the key just after hi's is
	// hi's with a zero byte appended.
	iter, err := snap.NewIter(&pebble.IterOptions{LowerBound: blockKey(sk, lo), UpperBound: append(blockKey(sk, hi), 0)})
	if err != nil {
		return nil, err
	}
	defer iter.Close()
	type span struct{ lo, hi int }
	var spans []span
	total := 0
	for ok := iter.First(); ok; ok = iter.Next() {
		b, err := block.Parse(iter.Value(), schema)
		if err != nil {
			return nil, fmt.Errorf("key %x: %w", iter.Key(), err)
		}
		a, z := b.Span(r.Start, r.End)
		spans = append(spans, span{a, z})
		total += z - a
	}
	if err := iter.Error(); err != nil {
		return nil, err
	}
	out := block.NewFrame(schema, total)
	off, k := 0, 0
	for ok := iter.First(); ok; ok = iter.Next() {
		b, err := block.Parse(iter.Value(), schema)
		if err != nil {
			return nil, fmt.Errorf("key %x: %w", iter.Key(), err)
		}
		if k == len(spans) {
			return nil, errors.New("iterator changed between passes")
		}
		sp := spans[k]
		if err := b.CopyRows(out, off, sp.lo, sp.hi); err != nil {
			return nil, fmt.Errorf("key %x: %w", iter.Key(), err)
		}
		off += sp.hi - sp.lo
		k++
	}
	if err := iter.Error(); err != nil {
		return nil, err
	}
	if k != len(spans) {
		return nil, errors.New("iterator changed between passes")
	}
	if !out.IsSortedUnique() {
		return nil, fmt.Errorf("%w: ts out of order", block.ErrCorrupt)
	}
	return out, nil
}

// Coverage implements seamless.Store.
func (s *Store) Coverage(ctx context.Context, ser seamless.Series) (grid.Set, error) {
	op := "coverage " + ser.String()
	if err := s.life.Enter(ctx, "pebblestore", op); err != nil {
		return grid.Set{}, err
	}
	defer s.life.Exit()
	m, _, err := getMeta(s.db, seriesKey(ser))
	if err != nil {
		return grid.Set{}, fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	return m.cov, nil
}

// ListSeries implements seamless.Store. Series come sorted by node id, then interval.
func (s *Store) ListSeries(ctx context.Context) ([]seamless.SeriesInfo, error) {
	const op = "list series"
	if err := s.life.Enter(ctx, "pebblestore", op); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	iter, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kindMeta}, UpperBound: []byte{kindMeta + 1}})
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	defer iter.Close()
	var out []seamless.SeriesInfo
	for ok := iter.First(); ok; ok = iter.Next() {
		ser, err := parseMetaKey(iter.Key())
		if err != nil {
			return nil, fmt.Errorf("pebblestore: %s: key %x: %w", op, iter.Key(), err)
		}
		m, err := decodeMeta(iter.Value())
		if err != nil {
			return nil, fmt.Errorf("pebblestore: %s: %s: corrupt series meta: %w", op, ser, err)
		}
		out = append(out, seamless.SeriesInfo{
			Series: ser, Schema: m.schema, Coverage: m.cov,
			Bounds: m.cov.Bounds(), Fragments: m.cov.Len(),
		})
	}
	if err := iter.Error(); err != nil {
		return nil, fmt.Errorf("pebblestore: %s: %w", op, err)
	}
	// Key order is by node id length first; callers expect node id order.
	slices.SortFunc(out, func(a, b seamless.SeriesInfo) int {
		if c := strings.Compare(a.NodeID, b.NodeID); c != 0 {
			return c
		}
		return cmp.Compare(a.Interval, b.Interval)
	})
	return out, nil
}

// Close waits for running operations and closes the database. Later calls return an
// error wrapping seamless.ErrClosed.
func (s *Store) Close() error {
	return s.life.Close("pebblestore", s.db.Close)
}
