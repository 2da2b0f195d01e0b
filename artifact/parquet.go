package artifact

import (
	"bytes"
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/seamless-data/seamless/frame"
)

// encodeParquet writes f as one Parquet file: ts then the frame's columns, all
// required (no nulls; NaN stays NaN), Snappy-compressed as pandas and pyarrow write by
// default, so the files open anywhere.
func encodeParquet(f *frame.Frame) ([]byte, error) {
	mem := memory.DefaultAllocator
	rec, err := f.ToArrow(mem, nil)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithAllocator(mem))
	w, err := pqarrow.NewFileWriter(rec.Schema(), &buf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, err
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
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
