-- The schema registry's audit log and validation statistics (package schemaregistry).

-- One row per audit record. record is the record's JSON exactly as the registry wrote
-- it (TEXT, not JSONB, which would reorder keys), so the hash chain can be recomputed
-- from what is stored; seq, subject, action and time repeat fields of it for queries.
CREATE TABLE schemaregistry_log (
    seq     BIGINT      PRIMARY KEY CHECK (seq > 0),
    time    TIMESTAMPTZ NOT NULL,
    subject TEXT        NOT NULL,
    action  TEXT        NOT NULL,
    record  TEXT        NOT NULL
);
CREATE INDEX schemaregistry_log_subject ON schemaregistry_log (subject, seq);

-- Validation counts per subject, merged from every process (schemaregistry.Stats).
CREATE TABLE schemaregistry_stats (
    subject           TEXT        PRIMARY KEY,
    validations       BIGINT      NOT NULL,
    failures          BIGINT      NOT NULL,
    last_failure      TIMESTAMPTZ,
    clean_validations BIGINT      NOT NULL,
    last_validation   TIMESTAMPTZ
);
