package pgstore

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamless-data/seamless/internal/pgmigrate"
)

// Migrations are the files migrations/NNNN_name.sql, numbered from 0001 without gaps.
// A migration, once released, never changes: a new layout is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate brings the schema that search_path selects up to date (see pgmigrate).
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgmigrate.Apply(ctx, pool, migrationFiles, "migrations", "schema_migrations", "pgstore")
}
