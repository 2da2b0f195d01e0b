package block

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/seamless-data/seamless/frame"
)

var schema = frame.Schema{Fields: []frame.Field{
	{Name: "f", Type: frame.Float64},
	{Name: "i", Type: frame.Int64},
	{Name: "s", Type: frame.String},
	{Name: "b", Type: frame.Bool},
}}

// sample returns a frame of the schema with ts start, start+step, … holding awkward
// values: NaN, -0 and infinities, extreme ints, empty and NUL-bearing strings.
func sample(start, step int64, n int) *frame.Frame {
	floats := []float64{math.NaN(), math.Copysign(0, -1), math.Inf(1), math.Inf(-1), 1.5, -2.25}
	ints := []int64{math.MinInt64, -1, 0, 1, math.MaxInt64}
	strs := []string{"", "a\x00b", "héllo", "x", "\x00"}
	f := frame.New(schema, n)
	for k := range n {
		f.TS = append(f.TS, start+int64(k)*step)
		f.Cols[0].F64 = append(f.Cols[0].F64, floats[k%len(floats)])
		f.Cols[1].I64 = append(f.Cols[1].I64, ints[k%len(ints)])
		f.Cols[2].Str = append(f.Cols[2].Str, strs[k%len(strs)])
		f.Cols[3].Bool = append(f.Cols[3].Bool, k%3 == 0)
	}
	return f
}

// sameFrame compares frames bit for bit, so NaN equals NaN and -0 differs from 0.
func sameFrame(t *testing.T, got, want *frame.Frame) {
	t.Helper()
	eqBits := func(a, b []float64) bool {
		return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
	}
	ok := slices.Equal(got.TS, want.TS) && len(got.Cols) == len(want.Cols)
	for i := 0; ok && i < len(got.Cols); i++ {
		g, w := &got.Cols[i], &want.Cols[i]
		ok = g.Field == w.Field && eqBits(g.F64, w.F64) && slices.Equal(g.I64, w.I64) &&
			slices.Equal(g.Str, w.Str) && slices.Equal(g.Bool, w.Bool)
	}
	if !ok {
		t.Fatalf("frames differ:\n got %+v\nwant %+v", got, want)
	}
}

func decode(t *testing.T, v []byte) *frame.Frame {
	t.Helper()
	b, err := Parse(v, schema)
	if err != nil {
		t.Fatal(err)
	}
	f := NewFrame(schema, b.Len())
	if err := b.CopyRows(f, 0, 0, b.Len()); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestGolden pins the encoding byte for byte: stores persist these bytes, so any change
// here breaks existing data.
func TestGolden(t *testing.T) {
	f := frame.New(schema, 2)
	f.TS = []int64{-60, 0x0102030405060708}
	f.Cols[0].F64 = []float64{1, math.Copysign(0, -1)}
	f.Cols[1].I64 = []int64{-2, 3}
	f.Cols[2].Str = []string{"ab", "\x00"}
	f.Cols[3].Bool = []bool{true, false}
	want := []byte{
		1,          // version
		2, 0, 0, 0, // rows
		4,          // columns
		2, 1, 3, 4, // float64, int64, string, bool
		0xc4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // ts -60
		8, 7, 6, 5, 4, 3, 2, 1, // ts 0x0102030405060708
		0, 0, 0, 0, 0, 0, 0xf0, 0x3f, // 1.0
		0, 0, 0, 0, 0, 0, 0, 0x80, // -0.0
		0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // -2
		3, 0, 0, 0, 0, 0, 0, 0, // 3
		2, 0, 0, 0, 3, 0, 0, 0, // string end offsets
		'a', 'b', 0, // string bytes
		1, 0, // bools
	}
	if got := Encode(nil, f); !bytes.Equal(got, want) {
		t.Fatalf("Encode:\n got % x\nwant % x", got, want)
	}
	if Size(nil, f) != len(want) {
		t.Fatalf("Size = %d, want %d", Size(nil, f), len(want))
	}
	sameFrame(t, decode(t, want), f)
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 900} {
		f := sample(-1000, 60, n)
		v := Encode(nil, f)
		if len(v) != Size(nil, f) {
			t.Fatalf("n=%d: %d bytes, Size says %d", n, len(v), Size(nil, f))
		}
		sameFrame(t, decode(t, v), f)
	}
}

// TestAppend checks that encoding a parsed block followed by newer rows, which splices
// its columns as bytes, equals encoding all the rows afresh.
func TestAppend(t *testing.T) {
	for _, n := range [][2]int{{0, 0}, {0, 3}, {3, 0}, {5, 7}, {1, 900}} {
		a, b := sample(0, 60, n[0]), sample(int64(n[0])*60, 60, n[1])
		old, err := Parse(Encode(nil, a), schema)
		if err != nil {
			t.Fatal(err)
		}
		all := frame.New(schema, n[0]+n[1])
		all.AppendRows(a, 0, a.Len())
		all.AppendRows(b, 0, b.Len())
		want := Encode(nil, all)
		if Size(&old, b) != len(want) {
			t.Fatalf("%v: Size = %d, want %d", n, Size(&old, b), len(want))
		}
		got := make([]byte, Size(&old, b))
		EncodeInto(got, &old, b)
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: spliced encoding differs from a fresh one", n)
		}
		if !bytes.Equal(Encode(&old, b), want) {
			t.Fatalf("%v: Encode differs from EncodeInto", n)
		}
	}
}

func TestSpanAndCopyRows(t *testing.T) {
	f := sample(100, 10, 10) // ts 100, 110, …, 190
	b, err := Parse(Encode(nil, f), schema)
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 10 || b.TS(0) != 100 || b.TS(9) != 190 {
		t.Fatalf("Len %d, TS(0) %d, TS(9) %d", b.Len(), b.TS(0), b.TS(9))
	}
	for _, c := range []struct {
		start, end int64
		lo, hi     int
	}{
		{math.MinInt64, math.MaxInt64, 0, 10},
		{100, 200, 0, 10},
		{101, 190, 1, 9},
		{110, 111, 1, 2},
		{0, 100, 0, 0},
		{191, 300, 10, 10},
		{150, 150, 5, 5},
	} {
		lo, hi := b.Span(c.start, c.end)
		if lo != c.lo || hi != c.hi {
			t.Errorf("Span(%d, %d) = %d, %d, want %d, %d", c.start, c.end, lo, hi, c.lo, c.hi)
		}
	}
	// Copy rows [3, 7) to offset 2 of a larger frame.
	dst := NewFrame(schema, 6)
	if err := b.CopyRows(dst, 2, 3, 7); err != nil {
		t.Fatal(err)
	}
	want := NewFrame(schema, 2)
	want.AppendRows(f, 3, 7)
	sameFrame(t, dst, want)

	var empty Block
	if lo, hi := empty.Span(math.MinInt64, math.MaxInt64); lo != 0 || hi != 0 {
		t.Errorf("empty Span = %d, %d", lo, hi)
	}
}

// TestCorrupt checks that damaged bytes fail with ErrCorrupt and never panic.
func TestCorrupt(t *testing.T) {
	v := Encode(nil, sample(0, 60, 5))
	for k := range len(v) {
		if _, err := Parse(v[:k], schema); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Parse of %d of %d bytes: %v", k, len(v), err)
		}
	}
	bad := func(what string, v []byte, s frame.Schema) {
		t.Helper()
		if _, err := Parse(v, s); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Parse error %v, want ErrCorrupt", what, err)
		}
	}
	bad("trailing byte", append(slices.Clone(v), 0), schema)
	bad("other schema", v, frame.Schema{Fields: schema.Fields[:3]})
	other := slices.Clone(schema.Fields)
	other[0].Type = frame.Int64
	bad("other column type", v, frame.Schema{Fields: other})
	ver := slices.Clone(v)
	ver[0] = Version + 1
	bad("unknown version", ver, schema)
	rows := slices.Clone(v)
	rows[1] = 0xff
	bad("row count", rows, schema)

	// String offsets that decrease pass Parse, which reads only the last, and fail in
	// CopyRows.
	s := frame.Schema{Fields: []frame.Field{{Name: "s", Type: frame.String}}}
	f := frame.New(s, 2)
	f.TS, f.Cols[0].Str = []int64{1, 2}, []string{"abc", "d"}
	w := Encode(nil, f)
	off := 6 + 1 + 8*2
	w[off] = 5 // first end offset 5 > last 4
	b, err := Parse(w, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CopyRows(NewFrame(s, 2), 0, 0, 2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("CopyRows of bad offsets: %v, want ErrCorrupt", err)
	}
}

func TestWidthAndIndex(t *testing.T) {
	for _, c := range []struct{ interval, bars, want int64 }{
		{60, 900, 54000},
		{1, 1, 1},
		{math.MaxInt64 / 2, 3, math.MaxInt64 / 2}, // overflow: one grid point
		{math.MaxInt64 / 3, 3, math.MaxInt64 / 3 * 3},
	} {
		if got := Width(c.interval, c.bars); got != c.want {
			t.Errorf("Width(%d, %d) = %d, want %d", c.interval, c.bars, got, c.want)
		}
	}
	for _, c := range []struct{ ts, width, want int64 }{
		{0, 60, 0},
		{59, 60, 0},
		{60, 60, 1},
		{-1, 60, -1},
		{-60, 60, -1},
		{-61, 60, -2},
		{math.MaxInt64, 60, math.MaxInt64 / 60},
		{math.MinInt64, 60, math.MinInt64/60 - 1},
		{math.MinInt64, math.MaxInt64, -2},
	} {
		if got := Index(c.ts, c.width); got != c.want {
			t.Errorf("Index(%d, %d) = %d, want %d", c.ts, c.width, got, c.want)
		}
	}
}

func TestBoolByte(t *testing.T) {
	if BoolByte(true) != 1 || BoolByte(false) != 0 {
		t.Fatal("BoolByte")
	}
}
