// Package pgstore is the PostgreSQL schemaregistry.Store, on pgx. Its tables
// (schemaregistry_log, schemaregistry_stats) live in the schema search_path selects and
// are created by the embedded migrations (migrations/NNNN_name.sql, tracked in
// schemaregistry_migrations, apart from the bar store's own migrations table) when the
// store opens. Every statement is parameterised.
//
// An append inserts the next sequence number only if it is the next one: two
// registries racing to append record n both try, the primary key lets one win, and
// the other gets schemaregistry.ErrConflict, catches up and retries. Statistics are
// merged under a row lock (SELECT … FOR UPDATE), with the same Stats.Merge as the other
// stores.
package pgstore

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamless-data/seamless/internal/pgmigrate"
	"github.com/seamless-data/seamless/schemaregistry"
)

// Migrations are numbered from 0001 without gaps; a released one never changes.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune a Store.
type Options struct {
	// MaxConns caps the connection pool (default: pgxpool's).
	MaxConns int32
}

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

var _ schemaregistry.Store = (*Store)(nil)

// Open connects to dsn and migrates the schema search_path selects.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("schemaregistry pgstore: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("schemaregistry pgstore: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("schemaregistry pgstore: migrate: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Append implements schemaregistry.Store.
func (s *Store) Append(ctx context.Context, rec schemaregistry.Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("schemaregistry pgstore: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO schemaregistry_log (seq, time, subject, action, record)
		SELECT $1::bigint, $2, $3, $4, $5
		WHERE $1::bigint = (SELECT COALESCE(max(seq), 0) + 1 FROM schemaregistry_log)`,
		rec.Seq, rec.Time, rec.Subject, string(rec.Action), string(b))
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation: lost the race
		return fmt.Errorf("%w: record %d already exists", schemaregistry.ErrConflict, rec.Seq)
	case err != nil:
		return fmt.Errorf("schemaregistry pgstore: append record %d: %w", rec.Seq, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("%w: record %d is not the next one", schemaregistry.ErrConflict, rec.Seq)
	}
	return nil
}

// Records implements schemaregistry.Store.
func (s *Store) Records(ctx context.Context, after int64) ([]schemaregistry.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, record FROM schemaregistry_log WHERE seq > $1 ORDER BY seq`, after)
	if err != nil {
		return nil, fmt.Errorf("schemaregistry pgstore: %w", err)
	}
	var out []schemaregistry.Record
	var seq int64
	var text string
	_, err = pgx.ForEachRow(rows, []any{&seq, &text}, func() error {
		var rec schemaregistry.Record
		if err := json.Unmarshal([]byte(text), &rec); err != nil {
			return fmt.Errorf("log record %d does not parse: %w", seq, err)
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("schemaregistry pgstore: %w", err)
	}
	return out, nil
}

// AddStats implements schemaregistry.Store.
func (s *Store) AddStats(ctx context.Context, subject string, d schemaregistry.StatsDelta) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO schemaregistry_stats (subject, validations, failures, clean_validations)
			VALUES ($1, 0, 0, 0) ON CONFLICT (subject) DO NOTHING`, subject); err != nil {
			return err
		}
		st, err := readStats(ctx, tx, subject, " FOR UPDATE")
		if err != nil {
			return err
		}
		st = st.Merge(d)
		_, err = tx.Exec(ctx, `
			UPDATE schemaregistry_stats
			SET validations = $2, failures = $3, last_failure = $4, clean_validations = $5, last_validation = $6
			WHERE subject = $1`,
			subject, st.Validations, st.Failures, nullTime(st.LastFailure), st.CleanValidations, nullTime(st.LastValidation))
		return err
	})
	if err != nil {
		return fmt.Errorf("schemaregistry pgstore: statistics of %q: %w", subject, err)
	}
	return nil
}

// Stats implements schemaregistry.Store.
func (s *Store) Stats(ctx context.Context, subject string) (schemaregistry.Stats, error) {
	st, err := readStats(ctx, s.pool, subject, "")
	if err != nil {
		return schemaregistry.Stats{}, fmt.Errorf("schemaregistry pgstore: statistics of %q: %w", subject, err)
	}
	return st, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readStats reads a subject's row; lock is "" or " FOR UPDATE" (a constant, never input).
func readStats(ctx context.Context, q querier, subject, lock string) (schemaregistry.Stats, error) {
	var st schemaregistry.Stats
	var lastFailure, lastValidation *time.Time
	err := q.QueryRow(ctx, `
		SELECT validations, failures, last_failure, clean_validations, last_validation
		FROM schemaregistry_stats WHERE subject = $1`+lock, subject).
		Scan(&st.Validations, &st.Failures, &lastFailure, &st.CleanValidations, &lastValidation)
	if errors.Is(err, pgx.ErrNoRows) {
		return schemaregistry.Stats{}, nil
	}
	if err != nil {
		return schemaregistry.Stats{}, err
	}
	if lastFailure != nil {
		st.LastFailure = lastFailure.UTC()
	}
	if lastValidation != nil {
		st.LastValidation = lastValidation.UTC()
	}
	return st, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// migrate brings the registry's tables in the schema that search_path selects up to
// date (see pgmigrate).
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgmigrate.Apply(ctx, pool, migrationFiles, "migrations", "schemaregistry_migrations", "schemaregistry")
}
