package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/seamless-data/seamless/schemaregistry"
	"github.com/seamless-data/seamless/schemaregistry/pgstore"
	"github.com/seamless-data/seamless/schemaregistry/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

// dsnEnv names the variable holding the test server's DSN (.ci/run sets it).
const dsnEnv = "SEAMLESS_TEST_POSTGRES_DSN"

// freshSchema creates a uniquely named schema, drops it when the test ends, and
// returns a DSN whose search_path selects it. It fails, never skips, without a server.
func freshSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Fatalf("%s is not set: these tests need a real PostgreSQL server (bash .ci/run starts one)", dsnEnv)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "schemaregistry_test_" + hex.EncodeToString(rnd[:])
	admin := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect (%s): %v", dsnEnv, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	ident := pgx.Identifier{name}.Sanitize()
	admin("CREATE SCHEMA " + ident)
	t.Cleanup(func() { admin("DROP SCHEMA " + ident + " CASCADE") })
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + name
}

func open(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(ctx, dsn, pgstore.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := freshSchema(t)
		return func() schemaregistry.Store { return open(t, dsn) }
	})
}

// TestEditedRecordDetected edits a stored record with SQL and checks that VerifyAudit
// names it.
func TestEditedRecordDetected(t *testing.T) {
	dsn := freshSchema(t)
	st := open(t, dsn)
	defer st.Close()
	reg, err := schemaregistry.Open(ctx, st, schemaregistry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	doc := schemaregistry.MustParse(`{"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"}]}`)
	for _, s := range []string{"ohlcv:a:X/Y:1m", "ohlcv:b:X/Y:1m"} {
		if _, err := reg.Register(ctx, s, doc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.SetCompatibility(ctx, "ohlcv:b:X/Y:1m", schemaregistry.Full); err != nil {
		t.Fatal(err)
	}
	if n, err := reg.VerifyAudit(ctx); err != nil || n != 3 {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE schemaregistry_log SET record = replace(record, '"FULL"', '"NONE"') WHERE seq = $1`, 3); err != nil {
		t.Fatal(err)
	}
	_, err = reg.VerifyAudit(ctx)
	var ce *schemaregistry.ChainError
	if !errors.As(err, &ce) || ce.Seq != 3 {
		t.Errorf("VerifyAudit after the edit = %v, want a break at record 3", err)
	}
}
