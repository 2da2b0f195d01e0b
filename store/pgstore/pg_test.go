package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/seamless-data/seamless/store/pgstore"
)

// dsnEnv names the variable holding the DSN of the PostgreSQL server the tests use.
// .ci/run starts a server and sets it.
const dsnEnv = "SEAMLESS_TEST_POSTGRES_DSN"

// serverDSN returns the test server's DSN, failing the test when there is none: a store
// test that cannot reach PostgreSQL has not passed.
func serverDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		tb.Fatalf("%s is not set: the pgstore tests need a real PostgreSQL server.\n"+
			"Run `bash .ci/run` (it installs and starts one on 127.0.0.1 and sets the variable), or start one yourself:\n"+
			"  apt-get install -y postgresql && pg_ctlcluster <version> main start\n"+
			"  su postgres -c \"psql -c \\\"CREATE ROLE seamless LOGIN SUPERUSER PASSWORD 'seamless'\\\"\"\n"+
			"  export %s='postgres://seamless:seamless@127.0.0.1:5432/postgres?sslmode=disable'",
			dsnEnv, dsnEnv)
	}
	return dsn
}

// freshSchema creates a uniquely named schema on the test server, drops it (with
// everything in it) when the test ends, and returns a DSN whose search_path selects it.
// Tests thus run in parallel and rerun without interfering. Stores opened on the DSN
// must be closed before the test ends (t.Cleanup runs last-registered first).
func freshSchema(tb testing.TB) string {
	tb.Helper()
	dsn := serverDSN(tb)
	ctx := context.Background()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "pgstore_test_" + hex.EncodeToString(rnd[:])
	ident := pgx.Identifier{name}.Sanitize()
	admin := func(sql string) {
		tb.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Fatalf("connect to the test server (%s): %v", dsnEnv, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			tb.Fatalf("%s: %v", sql, err)
		}
	}
	admin("CREATE SCHEMA " + ident)
	tb.Cleanup(func() { admin("DROP SCHEMA " + ident + " CASCADE") })
	return withSearchPath(tb, dsn, name)
}

// withSearchPath adds search_path=schema to a URL or key=value DSN.
func withSearchPath(tb testing.TB, dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("%s: %v", dsnEnv, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// openStore opens a store on dsn and closes it when the test ends.
func openStore(tb testing.TB, dsn string, opts pgstore.Options) *pgstore.Store {
	tb.Helper()
	s, err := pgstore.Open(context.Background(), dsn, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
