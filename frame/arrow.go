package frame

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// bytesOf views a numeric slice's backing array as bytes without copying. The returned
// slice keeps the array alive for the garbage collector.
func bytesOf[T int64 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*8)
}

func numericArray[T int64 | float64](dt arrow.DataType, v []T) arrow.Array {
	data := array.NewData(dt, len(v), []*memory.Buffer{nil, memory.NewBufferBytes(bytesOf(v))}, nil, 0, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// ArrowSchema returns the Arrow schema of frames with schema s: ts int64 first.
func ArrowSchema(s Schema, meta *arrow.Metadata) *arrow.Schema {
	fields := []arrow.Field{{Name: "ts", Type: arrow.PrimitiveTypes.Int64}}
	for _, f := range s.Fields {
		fields = append(fields, arrow.Field{Name: f.Name, Type: arrowType(f.Type)})
	}
	return arrow.NewSchema(fields, meta)
}

func arrowType(t Type) arrow.DataType {
	switch t {
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case String:
		return arrow.BinaryTypes.String
	}
	return arrow.FixedWidthTypes.Boolean
}

// ToArrow converts f to an Arrow record. ts, int64 and float64 columns share memory with
// f (no copy), so f must not be modified while the record is in use; string and bool
// columns are copied because Arrow lays them out differently from Go. meta, if non-nil,
// becomes the schema metadata. The caller releases the record.
func (f *Frame) ToArrow(mem memory.Allocator, meta *arrow.Metadata) (arrow.RecordBatch, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	cols := make([]arrow.Array, 0, len(f.Cols)+1)
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	cols = append(cols, numericArray(arrow.PrimitiveTypes.Int64, f.TS))
	for i := range f.Cols {
		c := &f.Cols[i]
		switch c.Type {
		case Int64:
			cols = append(cols, numericArray(arrow.PrimitiveTypes.Int64, c.I64))
		case Float64:
			cols = append(cols, numericArray(arrow.PrimitiveTypes.Float64, c.F64))
		case String:
			b := array.NewStringBuilder(mem)
			b.AppendValues(c.Str, nil)
			cols = append(cols, b.NewArray())
			b.Release()
		case Bool:
			b := array.NewBooleanBuilder(mem)
			b.AppendValues(c.Bool, nil)
			cols = append(cols, b.NewArray())
			b.Release()
		}
	}
	return array.NewRecordBatch(ArrowSchema(f.Schema(), meta), cols, int64(len(f.TS))), nil
}

// FromArrow converts an Arrow record to a frame. The record needs an int64 (or
// timestamp[s]) column named "ts"; other columns must be int64, float64, string or bool.
// Numeric columns without nulls share the record's memory (no copy): keep the record
// alive (do not Release it) while the frame is in use, or Clone the frame. Nulls in
// float64 columns become NaN; nulls elsewhere are an error.
func FromArrow(rec arrow.RecordBatch) (*Frame, error) {
	sc := rec.Schema()
	tsIdx := sc.FieldIndices("ts")
	if len(tsIdx) != 1 {
		return nil, fmt.Errorf("frame: arrow record needs exactly one ts column, has %d", len(tsIdx))
	}
	f := &Frame{}
	for i, fd := range sc.Fields() {
		col := rec.Column(i)
		if i == tsIdx[0] {
			ts, err := int64Values(fd.Name, col)
			if err != nil {
				return nil, err
			}
			f.TS = ts
			continue
		}
		c := Column{Field: Field{Name: fd.Name}}
		switch a := col.(type) {
		case *array.Int64:
			v, err := int64Values(fd.Name, a)
			if err != nil {
				return nil, err
			}
			c.Type, c.I64 = Int64, v
		case *array.Float64:
			c.Type, c.F64 = Float64, a.Float64Values()
			if a.NullN() > 0 {
				c.F64 = append([]float64(nil), c.F64...)
				for j := range c.F64 {
					if a.IsNull(j) {
						c.F64[j] = math.NaN()
					}
				}
			}
		case *array.String:
			if a.NullN() > 0 {
				return nil, fmt.Errorf("frame: string column %q has %d nulls", fd.Name, a.NullN())
			}
			c.Type, c.Str = String, make([]string, a.Len())
			for j := range c.Str {
				c.Str[j] = a.Value(j)
			}
		case *array.Boolean:
			if a.NullN() > 0 {
				return nil, fmt.Errorf("frame: bool column %q has %d nulls", fd.Name, a.NullN())
			}
			c.Type, c.Bool = Bool, make([]bool, a.Len())
			for j := range c.Bool {
				c.Bool[j] = a.Value(j)
			}
		default:
			return nil, fmt.Errorf("frame: column %q has unsupported arrow type %s", fd.Name, fd.Type)
		}
		f.Cols = append(f.Cols, c)
	}
	return f, f.Validate()
}

func int64Values(name string, col arrow.Array) ([]int64, error) {
	if col.NullN() > 0 {
		return nil, fmt.Errorf("frame: column %q has %d nulls", name, col.NullN())
	}
	switch a := col.(type) {
	case *array.Int64:
		return a.Int64Values(), nil
	case *array.Timestamp:
		if u := a.DataType().(*arrow.TimestampType).Unit; u != arrow.Second {
			return nil, fmt.Errorf("frame: column %q is timestamp[%s], want seconds", name, u)
		}
		v := a.TimestampValues()
		return unsafe.Slice((*int64)(unsafe.Pointer(unsafe.SliceData(v))), len(v)), nil
	}
	return nil, fmt.Errorf("frame: column %q has arrow type %s, want int64", name, col.DataType())
}

// Clone returns a deep copy of f that shares no memory with it.
func (f *Frame) Clone() *Frame {
	out := &Frame{TS: append([]int64(nil), f.TS...), Cols: make([]Column, len(f.Cols))}
	for i := range f.Cols {
		out.Cols[i] = f.Cols[i].slice(0, 0)
		out.Cols[i].appendFrom(&f.Cols[i], 0, f.Cols[i].Len())
	}
	return out
}
