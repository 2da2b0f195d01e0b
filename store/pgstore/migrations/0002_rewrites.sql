-- A per-series count of the writes that put bars into ranges the series already
-- covered: the only writes that can change bars a reader has seen. Readers that cache
-- covered bars (the provider's cache tier, in every process sharing the database)
-- compare it, read in the same snapshot as the coverage, with the count their cached
-- bars were read under.
ALTER TABLE series ADD COLUMN rewrites BIGINT NOT NULL DEFAULT 0;
