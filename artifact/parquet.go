package artifact

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/seamless-data/seamless/frame"
)

// Codec is the compression of the column chunks of a Parquet file.
type Codec string

// Codecs WriteParquet knows.
const (
	// Snappy is what pandas and pyarrow write by default: fast, opens anywhere. The
	// artifacts of SPEC §5 use it.
	Snappy Codec = "snappy"
	// Zstd is smaller at a similar decode speed; every current Parquet reader (DuckDB,
	// Polars, Spark, pyarrow) reads it. Exports and format=parquet use it.
	Zstd Codec = "zstd"
	// Uncompressed stores the pages as they are.
	Uncompressed Codec = "none"
)

// ParquetOptions tunes WriteParquet. The zero value is Snappy without metadata.
type ParquetOptions struct {
	Codec Codec
	// Metadata becomes the file's key-value metadata (the footer), in key order.
	Metadata map[string]string
}

func (c Codec) compression() (compress.Compression, error) {
	switch c {
	case Snappy, "":
		return compress.Codecs.Snappy, nil
	case Zstd:
		return compress.Codecs.Zstd, nil
	case Uncompressed:
		return compress.Codecs.Uncompressed, nil
	}
	return 0, fmt.Errorf("parquet codec %q: want snappy, zstd or none", string(c))
}

// WriteParquet writes f as one Parquet file: ts then the frame's columns in their
// SPEC types (ts int64 epoch seconds, OHLCV float64, …), all required (no nulls; NaN
// stays NaN), compressed with opts.Codec, with opts.Metadata in the footer. It is the
// project's one Parquet writer: artifacts, /v1/bars?format=parquet and seamless export
// all go through it. A Parquet file is only readable once its footer is written, so the
// whole file is produced here; w sees it as it is written.
func WriteParquet(w io.Writer, f *frame.Frame, opts ParquetOptions) error {
	codec, err := opts.Codec.compression()
	if err != nil {
		return err
	}
	mem := memory.DefaultAllocator
	var meta *arrow.Metadata
	if len(opts.Metadata) > 0 {
		keys := slices.Sorted(maps.Keys(opts.Metadata))
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = opts.Metadata[k]
		}
		m := arrow.NewMetadata(keys, vals)
		meta = &m
	}
	rec, err := f.ToArrow(mem, meta)
	if err != nil {
		return err
	}
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithAllocator(mem))
	pw, err := pqarrow.NewFileWriter(rec.Schema(), w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return err
	}
	if err := pw.Write(rec); err != nil {
		pw.Close()
		return err
	}
	return pw.Close()
}

// encodeParquet is an artifact's data file: Snappy, as pandas and pyarrow write by
// default, so the files open anywhere.
func encodeParquet(f *frame.Frame) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteParquet(&buf, f, ParquetOptions{Codec: Snappy}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeParquet reads a Parquet file written by encodeParquet (or any file whose
// columns frame.FromArrow accepts) into a frame that owns its memory.
func decodeParquet(data []byte) (*frame.Frame, error) {
	mem := memory.DefaultAllocator
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), parquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, max(tbl.NumRows(), 1))
	defer tr.Release()
	var out *frame.Frame
	for tr.Next() {
		part, err := frame.FromArrow(tr.RecordBatch())
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = frame.New(part.Schema(), int(tbl.NumRows()))
		}
		// Copies, so the frame outlives the table.
		out.AppendRows(part, 0, part.Len())
	}
	if err := tr.Err(); err != nil {
		return nil, err
	}
	if out == nil {
		// No rows: the schema still comes from the file.
		cols := emptyColumns(tbl, mem)
		rec := array.NewRecordBatch(tbl.Schema(), cols, 0)
		for _, c := range cols {
			c.Release()
		}
		defer rec.Release()
		part, err := frame.FromArrow(rec)
		if err != nil {
			return nil, err
		}
		out = part.Clone()
	}
	return out, nil
}

// emptyColumns returns a zero-length array per column of tbl; the caller releases them.
func emptyColumns(tbl arrow.Table, mem memory.Allocator) []arrow.Array {
	cols := make([]arrow.Array, tbl.NumCols())
	for i, fd := range tbl.Schema().Fields() {
		cols[i] = array.MakeArrayOfNull(mem, fd.Type, 0)
	}
	return cols
}
