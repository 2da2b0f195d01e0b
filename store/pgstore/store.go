// Package pgstore is the shared, durable seamless.Store on PostgreSQL, for a fleet of
// Seamless processes that serve and backfill the same series.
//
// # Layout
//
// Bars are stored as column blocks, one row per (series, block) in table blocks, not as
// one row per bar. A block holds a BlockBars-wide stretch of the series' grid, aligned
// from epoch 0, in the block encoding pebblestore also uses (store/internal/block): ts
// and every column as raw little-endian arrays. Why blocks rather than a bars(series_id,
// ts, …) table:
//
//   - Speed. A read of a million one-minute bars fetches ~1,100 rows and does one memmove
//     per column per block; a row layout fetches and decodes a million rows. A 900-bar
//     backfill chunk is one row to write, and the blocks are as wide as the backfill
//     tier's aligned chunks (SPEC §2, window_bars 900), so a chunk write never rewrites
//     stored bars.
//   - Schemas. A series' columns are whatever its frames hold (OHLCV, trades, quotes, or
//     any mix of float64, int64, string and bool), and strings may hold NUL bytes that
//     TEXT cannot; a block stores any schema in one BYTEA without per-series DDL.
//   - One encoding. Pebble and PostgreSQL stores share the same block format, so their
//     behaviour on awkward values (NaN, -0, NUL, non-ASCII) is identical by construction.
//
// The price is that upsert on (series, ts) is done by the store rather than by SQL: a
// write reads the stored blocks its bars fall in, merges (store/internal/merge) and
// upserts whole blocks. The migrations (migrations/*.sql) document every table.
//
// # Writes
//
// Each Write is one transaction: lock the series row (SELECT … FOR UPDATE, creating it
// if needed), which serialises writers of one series across all processes; check the
// fencing token; read and merge the touched blocks; COPY the new blocks into a
// per-connection temporary staging table and upsert them into blocks with INSERT … ON
// CONFLICT; merge the write's range into the coverage rows and record the token; commit.
// Bars and coverage therefore become visible together, and Write returns after the
// commit is durable (synchronous_commit as the server is configured, on by default).
//
// # Fencing
//
// A write with Token > 0 comes from a coordinator lease. The store keeps, per series and
// write range (the backfill chunk), the highest token applied; a write whose token is
// lower than one already applied to an overlapping range fails with *StaleTokenError
// (errors.Is(err, seamless.ErrLeaseLost)) and changes nothing. Equal tokens are allowed,
// so a lease holder may retry its own write. Token 0 is an unfenced write and is always
// applied.
//
// Node ids are data: every statement is parameterised, and node ids are stored as BYTEA
// so that any bytes round-trip. The schema lives wherever the connection's search_path
// points (add search_path=NAME to the DSN to keep several stores in one database).
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/internal/block"
	"github.com/seamless-data/seamless/store/internal/contract"
	"github.com/seamless-data/seamless/store/internal/merge"
)

// Options tune the store. The zero value is a good default.
type Options struct {
	// BlockBars is the number of grid points per block of series created by this store
	// (default 900, the backfill tier's window); existing series keep the size they were
	// created with. At most 65536.
	BlockBars int
	// MaxConns caps the connection pool (default: pgxpool's, the larger of 4 and the
	// number of CPUs). A DSN's pool_max_conns is used when MaxConns is 0.
	MaxConns int32
}

const (
	defaultBlockBars = 900
	maxBlockBars     = 1 << 16
)

// Store is a seamless.Store in a PostgreSQL database. It is safe for concurrent use,
// also by several processes sharing the database.
type Store struct {
	pool      *pgxpool.Pool
	blockBars int64

	// life guards closing: operations hold it shared, Close exclusively, so the pool is
	// never used after it is closed and late calls fail with seamless.ErrClosed.
	life contract.Lifetime

	// known caches the series rows that have a schema. Such a row never changes (id,
	// block size and a set schema are immutable), so the cache is correct even while
	// other processes write.
	mu    sync.Mutex
	known map[seamless.Series]seriesRow
}

// seriesRow is a row of table series.
type seriesRow struct {
	id        int64
	blockBars int64
	schema    frame.Schema
	hasSchema bool
}

var _ seamless.Store = (*Store)(nil)

// stagingDDL creates the per-connection staging table that writes COPY blocks into. It
// is temporary (never WAL-logged, invisible to other sessions) and emptied at every
// commit, so a connection's writes never see each other's rows.
const stagingDDL = `CREATE TEMP TABLE pgstore_staging (block BIGINT NOT NULL, data BYTEA NOT NULL) ON COMMIT DELETE ROWS;
ALTER TABLE pgstore_staging ALTER COLUMN data SET STORAGE EXTERNAL`

// Open connects to the database at dsn (a postgres:// URL or key=value string, as
// accepted by pgx), applies any pending migrations and returns the store.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if opts.BlockBars == 0 {
		opts.BlockBars = defaultBlockBars
	}
	if opts.BlockBars < 0 || opts.BlockBars > maxBlockBars {
		return nil, fmt.Errorf("pgstore: open: BlockBars %d outside [1, %d]", opts.BlockBars, maxBlockBars)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, stagingDDL)
		return err
	}
	where := fmt.Sprintf("database %q on %s:%d", cfg.ConnConfig.Database, cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open %s: %w", where, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgstore: open %s: migrate: %w", where, err)
	}
	return &Store{pool: pool, blockBars: int64(opts.BlockBars), known: map[seamless.Series]seriesRow{}}, nil
}

// Write implements seamless.Store. See the package documentation for the transaction.
func (s *Store) Write(ctx context.Context, w seamless.Write) error {
	if err := contract.CheckWrite(w); err != nil {
		return err
	}
	op := "write " + w.Series.String()
	if err := s.life.Enter(ctx, "pgstore", op); err != nil {
		return err
	}
	defer s.life.Exit()
	row, err := s.write(ctx, w)
	if err != nil {
		var we *seamless.WriteError
		var se *StaleTokenError
		if errors.As(err, &we) || errors.As(err, &se) {
			return err
		}
		return fmt.Errorf("pgstore: %s %v: %w", op, w.Range, err)
	}
	s.remember(w.Series, row)
	return nil
}

func (s *Store) write(ctx context.Context, w seamless.Write) (seriesRow, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return seriesRow{}, err
	}
	// After Commit this is a no-op; on any failure it undoes everything, including the
	// creation of the series row.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	row, err := s.lockSeries(ctx, tx, w.Series)
	if err != nil {
		return row, err
	}
	var token pgtype.Numeric
	if w.Token > 0 {
		token = pgtype.Numeric{Int: new(big.Int).SetUint64(w.Token), Valid: true}
		if err := checkFence(ctx, tx, row.id, w, token); err != nil {
			return row, err
		}
	}
	schema, hasSchema, err := contract.CheckSchema(w, row.schema, row.hasSchema)
	if err != nil {
		return row, err
	}
	blocks, err := mergeBlocks(ctx, tx, row, w, schema)
	if err != nil {
		return row, err
	}
	if len(blocks) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pgstore_staging"}, []string{"block", "data"}, pgx.CopyFromRows(blocks)); err != nil {
			return row, fmt.Errorf("copy blocks: %w", err)
		}
	}
	// The rest of the write is one round trip.
	var b pgx.Batch
	if len(blocks) > 0 {
		b.Queue(`INSERT INTO blocks (series_id, block, data) SELECT $1, block, data FROM pgstore_staging
			ON CONFLICT (series_id, block) DO UPDATE SET data = EXCLUDED.data`, row.id)
	}
	if len(blocks) > 0 {
		// Bars written into covered ranges may replace bars readers have cached: count
		// it (before the coverage below absorbs the range).
		b.Queue(`UPDATE series SET rewrites = rewrites + 1 WHERE id = $1 AND EXISTS (
			SELECT 1 FROM coverage WHERE series_id = $1 AND start_ts < $3 AND end_ts > $2)`,
			row.id, w.Range.Start, w.Range.End)
	}
	// Coverage rows are disjoint and non-adjacent: the write's range absorbs every row it
	// overlaps or touches, and the union goes back as one row.
	b.Queue(`WITH absorbed AS (
			DELETE FROM coverage WHERE series_id = $1 AND start_ts <= $3 AND end_ts >= $2
			RETURNING start_ts, end_ts)
		INSERT INTO coverage (series_id, start_ts, end_ts)
		SELECT $1, LEAST($2, min(start_ts)), GREATEST($3, max(end_ts)) FROM absorbed`,
		row.id, w.Range.Start, w.Range.End)
	if hasSchema && !row.hasSchema {
		b.Queue(`UPDATE series SET schema = $2 WHERE id = $1`, row.id, schema)
	}
	if w.Token > 0 {
		b.Queue(`INSERT INTO fences (series_id, start_ts, end_ts, token) VALUES ($1, $2, $3, $4)
			ON CONFLICT (series_id, start_ts, end_ts) DO UPDATE SET token = GREATEST(fences.token, EXCLUDED.token)`,
			row.id, w.Range.Start, w.Range.End, token)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return row, err
	}
	if err := tx.Commit(ctx); err != nil {
		return row, fmt.Errorf("commit: %w", err)
	}
	row.schema, row.hasSchema = schema, hasSchema
	return row, nil
}

// lockSeries returns the series' row, locked until tx ends, creating it if needed.
func (s *Store) lockSeries(ctx context.Context, tx pgx.Tx, ser seamless.Series) (seriesRow, error) {
	const lock = `SELECT id, block_bars, schema FROM series WHERE node_id = $1 AND interval = $2 FOR UPDATE`
	row, err := scanSeries(tx.QueryRow(ctx, lock, []byte(ser.NodeID), ser.Interval))
	if !errors.Is(err, pgx.ErrNoRows) {
		return row, err
	}
	// A concurrent creator makes this wait for its commit and then do nothing; the
	// second SELECT then finds its row.
	if _, err := tx.Exec(ctx, `INSERT INTO series (node_id, interval, block_bars) VALUES ($1, $2, $3)
		ON CONFLICT (node_id, interval) DO NOTHING`, []byte(ser.NodeID), ser.Interval, s.blockBars); err != nil {
		return row, fmt.Errorf("create series: %w", err)
	}
	return scanSeries(tx.QueryRow(ctx, lock, []byte(ser.NodeID), ser.Interval))
}

func scanSeries(r pgx.Row) (seriesRow, error) {
	var row seriesRow
	var schema *frame.Schema
	if err := r.Scan(&row.id, &row.blockBars, &schema); err != nil {
		return row, err
	}
	if row.blockBars <= 0 || row.blockBars > maxBlockBars {
		return row, fmt.Errorf("series %d: corrupt block_bars %d", row.id, row.blockBars)
	}
	if schema != nil {
		row.schema, row.hasSchema = *schema, true
	}
	return row, nil
}

// checkFence fails with *StaleTokenError when a token higher than w's was applied to a
// range overlapping w.Range.
func checkFence(ctx context.Context, tx pgx.Tx, id int64, w seamless.Write, token pgtype.Numeric) error {
	var start, end int64
	var applied pgtype.Numeric
	err := tx.QueryRow(ctx, `SELECT start_ts, end_ts, token FROM fences
		WHERE series_id = $1 AND start_ts < $3 AND end_ts > $2 AND token > $4
		ORDER BY token DESC LIMIT 1`, id, w.Range.Start, w.Range.End, token).Scan(&start, &end, &applied)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("check fencing token: %w", err)
	}
	n, err := numericUint64(applied)
	if err != nil {
		return fmt.Errorf("check fencing token: %w", err)
	}
	return &StaleTokenError{Series: w.Series, Range: w.Range, Token: w.Token, Applied: n, AppliedRange: grid.R(start, end)}
}

// numericUint64 converts a NUMERIC(20) token back to its uint64.
func numericUint64(n pgtype.Numeric) (uint64, error) {
	if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite || n.Int == nil {
		return 0, errors.New("corrupt token")
	}
	v := new(big.Int).Set(n.Int)
	switch {
	case n.Exp > 0:
		v.Mul(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n.Exp)), nil))
	case n.Exp < 0:
		var rem big.Int
		v.QuoRem(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-n.Exp)), nil), &rem)
		if rem.Sign() != 0 {
			return 0, fmt.Errorf("corrupt token %v", n)
		}
	}
	if !v.IsUint64() {
		return 0, fmt.Errorf("corrupt token %v", v)
	}
	return v.Uint64(), nil
}

// mergeBlocks returns the new value of every block w's bars fall in, as COPY rows
// (block, data): the stored block merged with the bars, the bars winning on equal ts.
// When the bars all follow a stored block's last bar — an ingest appending newer bars —
// its columns are spliced as bytes; only a write into the middle of a block decodes
// and merges it.
func mergeBlocks(ctx context.Context, tx pgx.Tx, row seriesRow, w seamless.Write, schema frame.Schema) ([][]any, error) {
	f := w.Frame
	if f.Len() == 0 {
		return nil, nil
	}
	width := block.Width(w.Series.Interval, row.blockBars)
	type group struct {
		idx    int64
		lo, hi int
	}
	var groups []group
	for i := 0; i < f.Len(); {
		idx := block.Index(f.TS[i], width)
		j := i + 1
		for j < f.Len() && block.Index(f.TS[j], width) == idx {
			j++
		}
		groups = append(groups, group{idx, i, j})
		i = j
	}
	idxs := make([]int64, len(groups))
	for i, g := range groups {
		idxs[i] = g.idx
	}
	rows, err := tx.Query(ctx, `SELECT block, data FROM blocks WHERE series_id = $1 AND block = ANY($2)`, row.id, idxs)
	if err != nil {
		return nil, fmt.Errorf("read stored blocks: %w", err)
	}
	stored := map[int64][]byte{}
	for rows.Next() {
		var idx int64
		var data []byte
		if err := rows.Scan(&idx, &data); err != nil {
			return nil, fmt.Errorf("read stored blocks: %w", err)
		}
		stored[idx] = data
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stored blocks: %w", err)
	}
	out := make([][]any, len(groups))
	for i, g := range groups {
		data, err := mergeBlock(stored[g.idx], schema, f.Slice(g.lo, g.hi))
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", g.idx, err)
		}
		out[i] = []any{g.idx, data}
	}
	return out, nil
}

// mergeBlock encodes the stored block v (nil for none) upserted with rows.
func mergeBlock(v []byte, schema frame.Schema, rows *frame.Frame) ([]byte, error) {
	if v == nil {
		return block.Encode(nil, rows), nil
	}
	old, err := block.Parse(v, schema)
	if err != nil {
		return nil, err
	}
	if old.Len() == 0 || old.TS(old.Len()-1) < rows.TS[0] {
		return block.Encode(&old, rows), nil
	}
	f := block.NewFrame(schema, old.Len())
	if err := old.CopyRows(f, 0, 0, old.Len()); err != nil {
		return nil, err
	}
	return block.Encode(nil, merge.Upsert(f, rows)), nil
}

// remember caches a series row once it has a schema (see Store.known).
func (s *Store) remember(ser seamless.Series, row seriesRow) {
	if !row.hasSchema {
		return
	}
	s.mu.Lock()
	s.known[ser] = row
	s.mu.Unlock()
}

// lookup returns the series' row; found is false for a series never written.
func (s *Store) lookup(ctx context.Context, ser seamless.Series) (row seriesRow, found bool, err error) {
	s.mu.Lock()
	row, found = s.known[ser]
	s.mu.Unlock()
	if found {
		return row, true, nil
	}
	row, err = scanSeries(s.pool.QueryRow(ctx, `SELECT id, block_bars, schema FROM series WHERE node_id = $1 AND interval = $2`,
		[]byte(ser.NodeID), ser.Interval))
	if errors.Is(err, pgx.ErrNoRows) {
		return row, false, nil
	}
	if err != nil {
		return row, false, err
	}
	s.remember(ser, row)
	return row, true, nil
}

// Read implements seamless.Store. The blocks come from one statement, hence one
// snapshot: the result is a committed state of the series even while writes land.
func (s *Store) Read(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	op := "read " + ser.String()
	if err := s.life.Enter(ctx, "pgstore", op); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	row, found, err := s.lookup(ctx, ser)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	if !found {
		return &frame.Frame{}, nil
	}
	if r.Empty() || !row.hasSchema {
		return frame.New(row.schema, 0), nil
	}
	f, err := s.readBlocks(ctx, row, block.Width(ser.Interval, row.blockBars), r)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s %v: %w", op, r, err)
	}
	return f, nil
}

// readBlocks fetches the blocks overlapping r, sums their rows in r to size the output
// exactly, then copies each block's columns into it in bulk.
func (s *Store) readBlocks(ctx context.Context, row seriesRow, width int64, r grid.Range) (*frame.Frame, error) {
	lo, hi := block.Index(r.Start, width), block.Index(r.End-1, width)
	rows, err := s.pool.Query(ctx, `SELECT block, data FROM blocks WHERE series_id = $1 AND block BETWEEN $2 AND $3 ORDER BY block`,
		row.id, lo, hi)
	if err != nil {
		return nil, err
	}
	type span struct {
		b      block.Block
		lo, hi int
	}
	var spans []span
	total := 0
	for rows.Next() {
		var idx int64
		var data []byte
		if err := rows.Scan(&idx, &data); err != nil {
			return nil, err
		}
		b, err := block.Parse(data, row.schema)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", idx, err)
		}
		a, z := b.Span(r.Start, r.End)
		spans = append(spans, span{b, a, z})
		total += z - a
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := block.NewFrame(row.schema, total)
	off := 0
	for _, sp := range spans {
		if err := sp.b.CopyRows(out, off, sp.lo, sp.hi); err != nil {
			return nil, err
		}
		off += sp.hi - sp.lo
	}
	if !out.IsSortedUnique() {
		return nil, fmt.Errorf("%w: ts out of order", block.ErrCorrupt)
	}
	return out, nil
}

// Coverage implements seamless.Store.
func (s *Store) Coverage(ctx context.Context, ser seamless.Series) (grid.Set, error) {
	cov, _, err := s.CoverageRewrites(ctx, ser)
	return cov, err
}

// CoverageRewrites implements seamless.RewriteCounter: the series' coverage and the
// number of writes that put bars into its covered ranges, from one snapshot. A series
// never written has empty coverage and no rewrites.
func (s *Store) CoverageRewrites(ctx context.Context, ser seamless.Series) (grid.Set, uint64, error) {
	op := "coverage " + ser.String()
	if err := s.life.Enter(ctx, "pgstore", op); err != nil {
		return grid.Set{}, 0, err
	}
	defer s.life.Exit()
	rows, err := s.pool.Query(ctx, `SELECT s.rewrites, c.start_ts, c.end_ts FROM series s LEFT JOIN coverage c ON c.series_id = s.id
		WHERE s.node_id = $1 AND s.interval = $2 ORDER BY c.start_ts`, []byte(ser.NodeID), ser.Interval)
	if err != nil {
		return grid.Set{}, 0, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	var rs []grid.Range
	var rewrites int64
	var start, end *int64
	if _, err := pgx.ForEachRow(rows, []any{&rewrites, &start, &end}, func() error {
		if start != nil && end != nil {
			rs = append(rs, grid.R(*start, *end))
		}
		return nil
	}); err != nil {
		return grid.Set{}, 0, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	if rewrites < 0 {
		return grid.Set{}, 0, fmt.Errorf("pgstore: %s: corrupt rewrite count %d", op, rewrites)
	}
	return grid.NewSet(rs...), uint64(rewrites), nil
}

// ListSeries implements seamless.Store. Series come sorted by node id, then interval:
// BYTEA sorts bytewise, as Go compares strings.
func (s *Store) ListSeries(ctx context.Context) ([]seamless.SeriesInfo, error) {
	const op = "list series"
	if err := s.life.Enter(ctx, "pgstore", op); err != nil {
		return nil, err
	}
	defer s.life.Exit()
	// One statement, so the series and their coverage come from one snapshot.
	rows, err := s.pool.Query(ctx, `SELECT s.node_id, s.interval, s.schema, c.start_ts, c.end_ts
		FROM series s LEFT JOIN coverage c ON c.series_id = s.id
		ORDER BY s.node_id, s.interval, c.start_ts`)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	var (
		out        []seamless.SeriesInfo
		cov        []grid.Range
		node       []byte
		interval   int64
		schema     []byte
		start, end *int64
	)
	flush := func() {
		if n := len(out); n > 0 {
			set := grid.NewSet(cov...)
			out[n-1].Coverage, out[n-1].Bounds, out[n-1].Fragments = set, set.Bounds(), set.Len()
		}
		cov = nil
	}
	if _, err := pgx.ForEachRow(rows, []any{&node, &interval, &schema, &start, &end}, func() error {
		ser := seamless.Series{NodeID: string(node), Interval: interval}
		if len(out) == 0 || out[len(out)-1].Series != ser {
			flush()
			info := seamless.SeriesInfo{Series: ser}
			if schema != nil {
				if err := json.Unmarshal(schema, &info.Schema); err != nil {
					return fmt.Errorf("%s: corrupt schema: %w", ser, err)
				}
			}
			out = append(out, info)
		}
		if start != nil && end != nil {
			cov = append(cov, grid.R(*start, *end))
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("pgstore: %s: %w", op, err)
	}
	flush()
	return out, nil
}

// Close closes the connection pool. Later calls return an error wrapping
// seamless.ErrClosed.
func (s *Store) Close() error {
	return s.life.Close("pgstore", func() error {
		s.pool.Close()
		return nil
	})
}
