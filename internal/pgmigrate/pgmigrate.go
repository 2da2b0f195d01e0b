// Package pgmigrate applies embedded SQL migrations to the PostgreSQL schema that
// search_path selects. Migrations are files NNNN_name.sql, numbered from 0001 without
// gaps; a released migration never changes (a new layout is a new file).
//
// Apply runs in one transaction under a transaction-scoped advisory lock keyed by the
// schema, so processes opening a store at once apply each migration exactly once and
// never see a half-built schema: the first applies, the others wait, then find nothing
// left to do.
package pgmigrate

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

type migration struct {
	version int
	name    string
	sql     string
}

func load(files fs.FS, dir string) ([]migration, error) {
	paths, err := fs.Glob(files, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, p := range paths {
		num, name, ok := strings.Cut(strings.TrimSuffix(path.Base(p), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", p)
		}
		body, err := fs.ReadFile(files, p)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: want version %d (versions are consecutive from 1)", m.version, m.name, i+1)
		}
	}
	return out, nil
}

// Apply brings the schema up to date with the migrations in dir of files, recording
// applied versions in table (a name chosen by the caller's code, quoted as an
// identifier). what names the component in errors and in the advisory lock.
func Apply(ctx context.Context, pool *pgxpool.Pool, files fs.FS, dir, table, what string) error {
	ms, err := load(files, dir)
	if err != nil {
		return err
	}
	tbl := pgx.Identifier{table}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1 || current_schema()))`, "seamless/"+what+" migrations "); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+tbl+` (
			version    INT         PRIMARY KEY,
			name       TEXT        NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create %s: %w", table, err)
		}
		var applied int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM `+tbl).Scan(&applied); err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		if applied > len(ms) {
			return fmt.Errorf("%s tables are at version %d, newer than this binary's %d: upgrade seamless", what, applied, len(ms))
		}
		for _, m := range ms[applied:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+tbl+` (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return fmt.Errorf("record migration %04d_%s: %w", m.version, m.name, err)
			}
		}
		return nil
	})
}
