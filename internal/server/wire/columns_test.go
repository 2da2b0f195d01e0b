package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
)

// referenceDecode decodes a bars document with encoding/json alone: what ReadBars must
// agree with.
func referenceDecode(t *testing.T, doc []byte, f *frame.Frame) *frame.Frame {
	t.Helper()
	var d struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	out := &frame.Frame{TS: []int64{}}
	if raw, ok := d.Data["ts"]; ok {
		if err := json.Unmarshal(raw, &out.TS); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range f.Cols {
		col := frame.Column{Field: c.Field}
		var err error
		switch c.Type {
		case frame.Float64:
			var v []*float64
			err = json.Unmarshal(d.Data[c.Name], &v)
			for _, x := range v {
				if x == nil {
					col.F64 = append(col.F64, math.NaN())
				} else {
					col.F64 = append(col.F64, *x)
				}
			}
		case frame.Int64:
			err = json.Unmarshal(d.Data[c.Name], &col.I64)
		case frame.String:
			err = json.Unmarshal(d.Data[c.Name], &col.Str)
		case frame.Bool:
			err = json.Unmarshal(d.Data[c.Name], &col.Bool)
		}
		if err != nil {
			t.Fatal(err)
		}
		out.Cols = append(out.Cols, col)
	}
	return out
}

func sameFrame(a, b *frame.Frame) bool {
	if len(a.TS) != len(b.TS) || len(a.Cols) != len(b.Cols) {
		return false
	}
	for i := range a.TS {
		if a.TS[i] != b.TS[i] {
			return false
		}
	}
	for k := range a.Cols {
		x, y := a.Cols[k], b.Cols[k]
		if x.Field != y.Field {
			return false
		}
		for i := range x.F64 {
			if math.Float64bits(x.F64[i]) != math.Float64bits(y.F64[i]) && !(math.IsNaN(x.F64[i]) && math.IsNaN(y.F64[i])) {
				return false
			}
		}
		if len(x.F64) != len(y.F64) || len(x.I64) != len(y.I64) || len(x.Str) != len(y.Str) || len(x.Bool) != len(y.Bool) {
			return false
		}
		for i := range x.I64 {
			if x.I64[i] != y.I64[i] {
				return false
			}
		}
		for i := range x.Str {
			if x.Str[i] != y.Str[i] {
				return false
			}
		}
		for i := range x.Bool {
			if x.Bool[i] != y.Bool[i] {
				return false
			}
		}
	}
	return true
}

// TestReadBarsMatchesEncodingJSON: random frames of every column type (a node without
// a standard schema, so types are inferred) decode to what encoding/json decodes.
func TestReadBarsMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 7, 3000} {
		f := frame.New(frame.Schema{Fields: []frame.Field{{Name: "price", Type: frame.Float64}, {Name: "side", Type: frame.String}, {Name: "maker", Type: frame.Bool}}}, n)
		for i := range n {
			f.TS = append(f.TS, rng.Int64()-math.MaxInt64/2+int64(i))
			x := rng.NormFloat64() * math.Pow(10, float64(rng.IntN(600)-300))
			if rng.IntN(10) == 0 {
				x = math.NaN()
			}
			f.Cols[0].F64 = append(f.Cols[0].F64, x)
			f.Cols[1].Str = append(f.Cols[1].Str, []string{"buy", "s\"e,l]l", "<&>", ""}[rng.IntN(4)])
			f.Cols[2].Bool = append(f.Cols[2].Bool, rng.IntN(2) == 0)
		}
		var doc bytes.Buffer
		if err := WriteBars(&doc, seamless.Result{Frame: f, Metadata: seamless.Metadata{NodeID: "custom:feed:X:1m", Interval: 60, Rows: n}}); err != nil {
			t.Fatal(err)
		}
		got, err := ReadBars(bytes.NewReader(doc.Bytes()))
		if err != nil {
			t.Fatalf("%d rows: %v", n, err)
		}
		// Without a schema, the type of an empty column cannot be told (float64).
		if want := referenceDecode(t, doc.Bytes(), f); n > 0 && !sameFrame(got.Frame, want) || got.Frame.Len() != n {
			t.Fatalf("%d rows: ReadBars disagrees with encoding/json", n)
		}
		if got.Metadata.Rows != n || got.Metadata.NodeID != "custom:feed:X:1m" {
			t.Fatalf("metadata %+v", got.Metadata)
		}
	}
}

// TestReadBarsRefusesMalformed: every truncation of a document, and documents JSON's
// grammar refuses, are errors, never a short frame or a panic.
func TestReadBarsRefusesMalformed(t *testing.T) {
	var doc bytes.Buffer
	if err := WriteBars(&doc, goldenResult()); err != nil {
		t.Fatal(err)
	}
	full := bytes.TrimSpace(doc.Bytes())
	for n := range len(full) {
		if _, err := ReadBars(bytes.NewReader(full[:n])); err == nil {
			t.Fatalf("truncated at %d of %d: no error", n, len(full))
		}
	}
	for _, bad := range []string{
		`{"metadata":{},"data":{"ts":[1,2],"open":[1,Infinity]}}`,
		`{"metadata":{},"data":{"ts":[1,2],"open":[1,0x10]}}`,
		`{"metadata":{},"data":{"ts":[1,2],"open":[1,01]}}`,
		`{"metadata":{},"data":{"ts":[1,2],"open":[1,1_0]}}`,
		`{"metadata":{},"data":{"ts":[1,2],"open":[1,]}}`,
		`{"metadata":{},"data":{"ts":[1,2.5]}}`,
		`{"metadata":{},"data":{"ts":[1,null]}}`,
		`{"metadata":{},"data":{"ts":[1,2],"open":[1]}}`,
		`{"metadata":{},"data":{"ts":[1]}} x`,
		`{"metadata":{}}`,
		`{"data":{"ts":[]}}`,
		`[]`,
	} {
		if _, err := ReadBars(bytes.NewReader([]byte(bad))); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// FuzzReadBars: whatever ReadBars accepts is valid JSON whose columns encoding/json
// reads the same; nothing panics.
func FuzzReadBars(f *testing.F) {
	var doc bytes.Buffer
	_ = WriteBars(&doc, goldenResult())
	f.Add(doc.Bytes())
	f.Add([]byte(`{"metadata":{"rows":1},"data":{"ts":[1],"side":["a"],"x":[true],"p":[null]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := ReadBars(bytes.NewReader(b))
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if want := referenceDecode(t, b, res.Frame); !sameFrame(res.Frame, want) {
			t.Fatalf("%q: disagrees with encoding/json", b)
		}
	})
}
