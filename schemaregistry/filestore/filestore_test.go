package filestore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless/schemaregistry"
	"github.com/seamless-data/seamless/schemaregistry/filestore"
	"github.com/seamless-data/seamless/schemaregistry/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dir := t.TempDir()
		return func() schemaregistry.Store {
			s, err := filestore.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}

const doc = `{"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"}]}`

func openRegistry(t *testing.T, dir string) (*schemaregistry.Registry, *filestore.Store) {
	t.Helper()
	st, err := filestore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := schemaregistry.Open(ctx, st, schemaregistry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		reg.Close()
		st.Close()
	})
	return reg, st
}

// TestEditedRecordDetected edits a record in the file, as someone with access to the
// disk might, and checks that VerifyAudit names it.
func TestEditedRecordDetected(t *testing.T) {
	dir := t.TempDir()
	reg, _ := openRegistry(t, dir)
	for _, s := range []string{"ohlcv:a:X/Y:1m", "ohlcv:b:X/Y:1m", "ohlcv:c:X/Y:1m"} {
		if _, err := reg.Register(schemaregistry.WithActor(ctx, "alice"), s, schemaregistry.MustParse(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := reg.VerifyAudit(ctx); err != nil || n != 3 {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
	path := filepath.Join(dir, filestore.LogFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(b, []byte(`"actor":"alice","action":"register","subject":"ohlcv:b`), []byte(`"actor":"mallory","action":"register","subject":"ohlcv:b`), 1)
	if bytes.Equal(edited, b) {
		t.Fatal("test did not edit the log")
	}
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	reg2, _ := openRegistry(t, dir)
	_, err = reg2.VerifyAudit(ctx)
	var ce *schemaregistry.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 {
		t.Errorf("VerifyAudit after the edit = %v, want a break at record 2", err)
	}
}

// TestTornAppend: a line left without its newline by a crash is cut off by the next
// append, and the records before it survive.
func TestTornAppend(t *testing.T) {
	dir := t.TempDir()
	reg, st := openRegistry(t, dir)
	if _, err := reg.Register(ctx, "s1", schemaregistry.MustParse(doc)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	f, err := os.OpenFile(filepath.Join(dir, filestore.LogFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":2,"time":"2024-`)
	f.Close()
	reg2, _ := openRegistry(t, dir)
	if _, err := reg2.Register(ctx, "s2", schemaregistry.MustParse(doc)); err != nil {
		t.Fatal(err)
	}
	if n, err := reg2.VerifyAudit(ctx); err != nil || n != 2 {
		t.Errorf("after a torn append: %d records, %v", n, err)
	}
}
