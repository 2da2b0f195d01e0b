package frame

import (
	"encoding/json"
	"math"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func mixed() *Frame {
	s := Schema{Fields: []Field{{"price", Float64}, {"n", Int64}, {"side", String}, {"maker", Bool}}}
	f := New(s, 3)
	f.TS = append(f.TS, 0, 60, 120)
	f.Cols[0].F64 = append(f.Cols[0].F64, 1.5, math.NaN(), 3)
	f.Cols[1].I64 = append(f.Cols[1].I64, 7, 8, 9)
	f.Cols[2].Str = append(f.Cols[2].Str, "buy", "sell", "")
	f.Cols[3].Bool = append(f.Cols[3].Bool, true, false, true)
	return f
}

func TestArrowRoundTripZeroCopy(t *testing.T) {
	f := mixed()
	rec, err := f.ToArrow(memory.DefaultAllocator, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if rec.NumRows() != 3 || rec.NumCols() != 5 {
		t.Fatalf("record %d×%d", rec.NumRows(), rec.NumCols())
	}
	// Numeric columns share memory with the frame in both directions.
	tsArr := rec.Column(0).(*array.Int64).Int64Values()
	if unsafe.SliceData(tsArr) != unsafe.SliceData(f.TS) {
		t.Fatal("ToArrow copied the ts column")
	}
	g, err := FromArrow(rec)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(g.Cols[0].F64) != unsafe.SliceData(f.Cols[0].F64) {
		t.Fatal("FromArrow copied a float column")
	}
	if !g.Schema().Equal(f.Schema()) {
		t.Fatalf("schema %v != %v", g.Schema(), f.Schema())
	}
	for i := range f.TS {
		if g.TS[i] != f.TS[i] || g.Cols[1].I64[i] != f.Cols[1].I64[i] || g.Cols[2].Str[i] != f.Cols[2].Str[i] || g.Cols[3].Bool[i] != f.Cols[3].Bool[i] {
			t.Fatalf("row %d differs", i)
		}
	}
	if !math.IsNaN(g.Cols[0].F64[1]) || g.Cols[0].F64[2] != 3 {
		t.Fatalf("floats %v", g.Cols[0].F64)
	}
}

func TestFromArrowRejects(t *testing.T) {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{1}, nil)
	col := b.NewArray()
	defer col.Release()
	sc := arrow.NewSchema([]arrow.Field{{Name: "close", Type: arrow.PrimitiveTypes.Float64}}, nil)
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 1)
	defer rec.Release()
	if _, err := FromArrow(rec); err == nil {
		t.Fatal("record without ts accepted")
	}
	sc2 := arrow.NewSchema([]arrow.Field{{Name: "ts", Type: arrow.PrimitiveTypes.Float64}}, nil)
	rec2 := array.NewRecordBatch(sc2, []arrow.Array{col}, 1)
	defer rec2.Release()
	if _, err := FromArrow(rec2); err == nil {
		t.Fatal("float ts accepted")
	}
}

func TestNormalizeKeepsLastDuplicate(t *testing.T) {
	f := New(OHLCV, 4)
	f.TS = append(f.TS, 120, 60, 120, 61, 0)
	for i := range f.Cols {
		f.Cols[i].F64 = append(f.Cols[i].F64, 1, 2, 3, 4, 5)
	}
	g := f.Normalize(func(ts int64) bool { return ts%60 == 0 })
	want := []int64{0, 60, 120}
	wantClose := []float64{5, 2, 3}
	for i := range want {
		if g.TS[i] != want[i] || g.Col("close").F64[i] != wantClose[i] {
			t.Fatalf("Normalize = %v %v", g.TS, g.Col("close").F64)
		}
	}
	if clean := g.Normalize(func(int64) bool { return true }); clean != g {
		t.Fatal("Normalize copied an already clean frame")
	}
}

func TestValidateAndJSON(t *testing.T) {
	f := mixed()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if string(m["price"]) != "[1.5,null,3]" || string(m["ts"]) != "[0,60,120]" {
		t.Fatalf("json = %s", b)
	}
	f.Cols[1].I64 = f.Cols[1].I64[:2]
	if f.Validate() == nil {
		t.Fatal("ragged frame validated")
	}
}
