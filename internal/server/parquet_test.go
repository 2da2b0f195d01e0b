package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// TestBarsParquet: format=parquet (and Accept: application/vnd.apache.parquet) answers
// one zstd Parquet file that an independent reader (parquet-go) opens, holding the
// Provider's bars and, in its footer, the response metadata.
func TestBarsParquet(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	want := warm(t, e)
	for _, r := range []response{
		get(t, e, barsQuery("strategy", "fail_fast", "format", "parquet")),
		get(t, e, barsQuery("strategy", "fail_fast"), "Accept", wire.MediaParquet),
	} {
		if r.status != http.StatusOK || r.header.Get("Content-Type") != wire.MediaParquet {
			t.Fatalf("status %d %q: %.200s", r.status, r.header.Get("Content-Type"), r.body)
		}
		pf, err := parquet.OpenFile(bytes.NewReader(r.body), int64(len(r.body)))
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := pf.Lookup(wire.ParquetMetadataKey)
		var md seamless.Metadata
		if !ok || json.Unmarshal([]byte(raw), &md) != nil {
			t.Fatalf("footer metadata %q %v", raw, ok)
		}
		if md.Rows != want.Metadata.Rows || md.NodeID != node || md.CoverageRatio != 1 {
			t.Errorf("metadata %+v", md)
		}
		if c := pf.Metadata().RowGroups[0].Columns[0].MetaData.Codec; c != format.Zstd {
			t.Errorf("codec %v", c)
		}
		rows, err := parquet.Read[struct {
			TS    int64   `parquet:"ts"`
			Close float64 `parquet:"close"`
		}](bytes.NewReader(r.body), int64(len(r.body)))
		if err != nil || len(rows) != want.Frame.Len() {
			t.Fatalf("%d rows: %v", len(rows), err)
		}
		for i, row := range rows {
			if row.TS != want.Frame.TS[i] || row.Close != want.Frame.Col("close").F64[i] {
				t.Fatalf("row %d: %+v", i, row)
			}
		}
	}
}
