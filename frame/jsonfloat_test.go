package frame

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// referenceJSON renders f through encoding/json, column by column: the output the
// streaming writer must match byte for byte (floats as strconv 'g', non-finite as null).
func referenceJSON(t *testing.T, f *Frame) []byte {
	t.Helper()
	out := []byte(`{"ts":`)
	ts, _ := json.Marshal(nonNil(f.TS))
	out = append(out, ts...)
	for _, c := range f.Cols {
		name, _ := json.Marshal(c.Name)
		out = append(append(append(out, ','), name...), ':')
		var v []byte
		switch c.Type {
		case Float64:
			v = []byte{'['}
			for k, x := range c.F64 {
				if k > 0 {
					v = append(v, ',')
				}
				if math.IsNaN(x) || math.IsInf(x, 0) {
					v = append(v, "null"...)
				} else {
					v = strconv.AppendFloat(v, x, 'g', -1, 64)
				}
			}
			v = append(v, ']')
		case Int64:
			v, _ = json.Marshal(nonNil(c.I64))
		case String:
			v, _ = json.Marshal(nonNil(c.Str))
		case Bool:
			v, _ = json.Marshal(nonNil(c.Bool))
		}
		out = append(out, v...)
	}
	return append(out, '}')
}

// TestWriteJSONMatchesReference: random frames of every column type, large enough to
// cross many 32 KiB pieces, with NaN, ±Inf, HTML-unsafe and invalid UTF-8 strings.
func TestWriteJSONMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"buy", "", "<script>&", "\xff\xfe", "é\"\\\n"}
	for _, n := range []int{0, 1, 3, 5000, 40000} {
		f := New(Schema{Fields: []Field{{"price", Float64}, {"n", Int64}, {"side", String}, {"maker", Bool}}}, n)
		for i := range n {
			f.TS = append(f.TS, int64(i)*60-int64(n)*30)
			x := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
			switch rng.IntN(20) {
			case 0:
				x = math.NaN()
			case 1:
				x = math.Inf(1 - 2*rng.IntN(2))
			}
			f.Cols[0].F64 = append(f.Cols[0].F64, x)
			f.Cols[1].I64 = append(f.Cols[1].I64, rng.Int64()-math.MaxInt64/2)
			f.Cols[2].Str = append(f.Cols[2].Str, strs[rng.IntN(len(strs))])
			f.Cols[3].Bool = append(f.Cols[3].Bool, rng.IntN(2) == 0)
		}
		var buf bytes.Buffer
		if err := f.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		if want := referenceJSON(t, f); !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("%d rows: streamed JSON differs from encoding/json's (%d vs %d bytes)", n, buf.Len(), len(want))
		}
		if !json.Valid(buf.Bytes()) {
			t.Fatalf("%d rows: invalid JSON", n)
		}
		if m, _ := f.MarshalJSON(); !bytes.Equal(m, buf.Bytes()) {
			t.Fatalf("%d rows: MarshalJSON differs from WriteJSON", n)
		}
	}
}

type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("client went away")
}

// TestWriteJSONStopsAtTheFirstError: a writer that fails (a client gone) ends the
// encoding at once, not after rendering the rest of a million bars.
func TestWriteJSONStopsAtTheFirstError(t *testing.T) {
	f := New(Schema{Fields: []Field{{"close", Float64}}}, 100000)
	for i := range 100000 {
		f.TS = append(f.TS, int64(i))
		f.Cols[0].F64 = append(f.Cols[0].F64, float64(i)/3)
	}
	w := &failingWriter{}
	if err := f.WriteJSON(w); err == nil || w.writes != 1 {
		t.Fatalf("err %v after %d writes", err, w.writes)
	}
}
