package artifact_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/artifact/artifacttest"
)

// bar is an OHLCV row as an independent Parquet implementation (parquet-go, not
// arrow-go's writer that produced the file) reads it.
type bar struct {
	TS     int64   `parquet:"ts"`
	Open   float64 `parquet:"open"`
	High   float64 `parquet:"high"`
	Low    float64 `parquet:"low"`
	Close  float64 `parquet:"close"`
	Volume float64 `parquet:"volume"`
}

// TestWriteParquetIndependentReader: every codec's file is read back by parquet-go
// with the SPEC column types, the exact values (NaN included), the requested codec on
// every column chunk and the key-value metadata in the footer.
func TestWriteParquetIndependentReader(t *testing.T) {
	const start, iv, n = 1_700_000_040, 60, 5000
	f := artifacttest.OHLCV(start, iv, n)
	f.Cols[3].F64[7] = math.NaN() // close of row 7: NaN stays NaN, not null
	meta := map[string]string{"seamless.dataset_fingerprint": "sha256:abc", "seamless.coverage": `[[1700000040,1700300040]]`}
	for codec, want := range map[artifact.Codec]format.CompressionCodec{
		artifact.Zstd: format.Zstd, artifact.Snappy: format.Snappy, artifact.Uncompressed: format.Uncompressed,
	} {
		var buf bytes.Buffer
		if err := artifact.WriteParquet(&buf, f, artifact.ParquetOptions{Codec: codec, Metadata: meta}); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		r := bytes.NewReader(buf.Bytes())
		pf, err := parquet.OpenFile(r, int64(buf.Len()))
		if err != nil {
			t.Fatalf("%s: parquet-go cannot open the file: %v", codec, err)
		}
		for k, v := range meta {
			if got, ok := pf.Lookup(k); !ok || got != v {
				t.Errorf("%s: footer %s = %q, %v; want %q", codec, k, got, ok, v)
			}
		}
		types := map[string]parquet.Kind{}
		for _, col := range pf.Schema().Fields() {
			types[col.Name()] = col.Type().Kind()
			if col.Optional() {
				t.Errorf("%s: column %s is optional; frames have no nulls", codec, col.Name())
			}
		}
		if types["ts"] != parquet.Int64 || types["open"] != parquet.Double || types["volume"] != parquet.Double || len(types) != 6 {
			t.Errorf("%s: column types %v", codec, types)
		}
		for _, rg := range pf.Metadata().RowGroups {
			for _, cc := range rg.Columns {
				if cc.MetaData.Codec != want {
					t.Errorf("%s: column %v compressed with %v", codec, cc.MetaData.PathInSchema, cc.MetaData.Codec)
				}
			}
		}
		rows, err := parquet.Read[bar](r, int64(buf.Len()))
		if err != nil || len(rows) != n {
			t.Fatalf("%s: read %d rows: %v", codec, len(rows), err)
		}
		for i, row := range rows {
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			if row.TS != f.TS[i] || !same(row.Open, f.Cols[0].F64[i]) || !same(row.High, f.Cols[1].F64[i]) ||
				!same(row.Low, f.Cols[2].F64[i]) || !same(row.Close, f.Cols[3].F64[i]) || !same(row.Volume, f.Cols[4].F64[i]) {
				t.Fatalf("%s: row %d = %+v", codec, i, row)
			}
		}
	}
	if err := artifact.WriteParquet(&bytes.Buffer{}, f, artifact.ParquetOptions{Codec: "lz5"}); err == nil {
		t.Error("an unknown codec was accepted")
	}
}
