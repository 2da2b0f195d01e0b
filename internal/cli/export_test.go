package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// TestFetchParquet: fetch --format parquet --output F writes one Parquet file with the
// bars and the metadata in its footer; without --output it is a bad request (exit 2).
func TestFetchParquet(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "bars.parquet")
	args := []string{"fetch", "--node", node, "--interval", "60", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-01T01:00:00Z", "--format", "parquet"}
	if code, _, stderr := run(t, dir, args...); code != exitBadRequest || !strings.Contains(stderr, "--output") {
		t.Fatalf("without --output: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, dir, append(args, "--output", out)...); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := parquet.Read[struct {
		TS int64 `parquet:"ts"`
	}](strings.NewReader(string(data)), int64(len(data)))
	if err != nil || len(rows) != 60 || rows[0].TS != 1704067200 {
		t.Fatalf("%d rows: %v", len(rows), err)
	}
	pf, err := parquet.OpenFile(strings.NewReader(string(data)), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := pf.Lookup(wire.ParquetMetadataKey)
	var md seamless.Metadata
	if json.Unmarshal([]byte(raw), &md) != nil || md.Rows != 60 {
		t.Fatalf("footer metadata %q", raw)
	}
}

// TestExportCommand: the dataset layout on disk, the summary line, and the refusal
// of a non-empty directory without --overwrite (exit 2).
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	ds := filepath.Join(dir, "ds")
	args := []string{"export", "--node", "ohlcv:demo:ETH-USD:1h", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-03T00:00:00Z", "--output", ds}
	code, out, stderr := run(t, dir, args...)
	if code != 0 || !strings.Contains(out, "exported 48 bars") || !strings.Contains(out, "in 2 files") {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	for _, day := range []string{"2024-01-01", "2024-01-02"} {
		if _, err := os.Stat(filepath.Join(ds, "node=ohlcv%3Ademo%3AETH-USD%3A1h", "date="+day, "part-0.parquet")); err != nil {
			t.Error(err)
		}
	}
	if code, _, stderr := run(t, dir, args...); code != exitBadRequest || !strings.Contains(stderr, "--overwrite") {
		t.Fatalf("second export without --overwrite: exit %d: %s", code, stderr)
	}
	if code, _, stderr := run(t, dir, append(args, "--overwrite")...); code != 0 {
		t.Fatalf("with --overwrite: exit %d: %s", code, stderr)
	}
	if code, _, _ := run(t, dir, "export", "--node", "ohlcv:demo:ETH-USD:1h", "--interval", "60", "--start", "0", "--end", "60", "--output", ds+"2"); code != exitBadRequest {
		t.Errorf("interval mismatch: exit %d", code)
	}
}
