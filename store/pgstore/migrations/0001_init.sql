-- Initial layout: series, their column blocks, coverage and fencing tokens.

-- One row per (node id, interval). node_id is BYTEA rather than TEXT because node ids may
-- hold any bytes, NUL included, which TEXT cannot store; read it in psql with
-- convert_from(node_id, 'UTF8'). block_bars is fixed when the series is created, so a
-- store opened with another Options.BlockBars never misreads existing blocks. schema is
-- NULL until a write with columns gives the series one. Writers lock this row (FOR
-- UPDATE) for the whole write transaction, which serialises writes of one series across
-- every process sharing the database.
CREATE TABLE series (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id    BYTEA  NOT NULL,
    interval   BIGINT NOT NULL CHECK (interval > 0),
    block_bars BIGINT NOT NULL CHECK (block_bars > 0),
    schema     JSONB,
    UNIQUE (node_id, interval)
);

-- One row per block_bars-wide stretch of a series' grid, aligned from epoch 0: block is
-- floor(ts / (interval * block_bars)). data holds the rows column by column in the
-- encoding of store/pgstore/block.go (shared with pebblestore).
CREATE TABLE blocks (
    series_id BIGINT NOT NULL REFERENCES series (id),
    block     BIGINT NOT NULL,
    data      BYTEA  NOT NULL,
    PRIMARY KEY (series_id, block)
);
-- Blocks are tens of kilobytes of raw float64s: out-of-line (TOAST) storage without
-- compression, because pglz costs CPU on every write and read and gains little on floats.
ALTER TABLE blocks ALTER COLUMN data SET STORAGE EXTERNAL;

-- A series' coverage as disjoint, non-adjacent half-open ranges [start_ts, end_ts),
-- rewritten in the same transaction as the blocks of each write.
CREATE TABLE coverage (
    series_id BIGINT NOT NULL REFERENCES series (id),
    start_ts  BIGINT NOT NULL,
    end_ts    BIGINT NOT NULL CHECK (start_ts < end_ts),
    PRIMARY KEY (series_id, start_ts)
);

-- The highest fencing token applied to each (series, write range) — the write range is
-- the backfill chunk. NUMERIC(20) holds every uint64 token.
CREATE TABLE fences (
    series_id BIGINT      NOT NULL REFERENCES series (id),
    start_ts  BIGINT      NOT NULL,
    end_ts    BIGINT      NOT NULL CHECK (start_ts < end_ts),
    token     NUMERIC(20) NOT NULL CHECK (token > 0),
    PRIMARY KEY (series_id, start_ts, end_ts)
);
