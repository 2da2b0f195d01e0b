package fingerprint

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/frame"
)

// golden returns the REFERENCE.md golden-vector frame.
func golden() (*frame.Frame, Meta) {
	f := frame.New(frame.Schema{Fields: []frame.Field{{Name: "close", Type: frame.Float64}, {Name: "volume", Type: frame.Float64}}}, 2)
	f.TS = append(f.TS, 0, 10)
	f.Cols[0].F64 = append(f.Cols[0].F64, 1.0, 2.5)
	f.Cols[1].F64 = append(f.Cols[1].F64, 100.0, 1e-7)
	return f, Meta{NodeID: "node", Interval: 10, CoverageBounds: &[2]int64{0, 10}}
}

func encode(t *testing.T, f *frame.Frame, m Meta) string {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, f, m); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGoldenVector(t *testing.T) {
	f, m := golden()
	const wantJSON = `{"frame":[{"close":1.0,"ts":0,"volume":100.0},{"close":2.5,"ts":10,"volume":1e-07}],"metadata":{"conformance_version":"v2","coverage_bounds":[0,10],"interval":10,"node_id":"node"}}`
	const wantFP = "sha256:1ebe7775f68a35e17f6597772deca43c3a022d54896ad5b35ed75cec131cf7b9"
	if got := encode(t, f, m); got != wantJSON {
		t.Errorf("canonical encoding\n got %s\nwant %s", got, wantJSON)
	}
	if got := Dataset(f, m); got != wantFP {
		t.Errorf("Dataset = %s, want %s", got, wantFP)
	}
}

// mixedFrame has every column type, a key sorting before ts and one after it (non-ASCII),
// non-finite floats, strings needing escapes, and rows out of ts order.
func mixedFrame() *frame.Frame {
	s := frame.Schema{Fields: []frame.Field{
		{Name: "price", Type: frame.Float64}, {Name: "n", Type: frame.Int64},
		{Name: "side", Type: frame.String}, {Name: "maker", Type: frame.Bool},
		{Name: "é", Type: frame.Float64}, {Name: "a", Type: frame.Float64},
	}}
	f := frame.New(s, 3)
	f.TS = append(f.TS, 120, 0, 60)
	f.Cols[0].F64 = append(f.Cols[0].F64, math.Copysign(0, -1), 1.5, math.NaN())
	f.Cols[1].I64 = append(f.Cols[1].I64, -9, 7, 8)
	f.Cols[2].Str = append(f.Cols[2].Str, "sell \"q\"\n", "buy", "€😀/\\")
	f.Cols[3].Bool = append(f.Cols[3].Bool, false, true, true)
	f.Cols[4].F64 = append(f.Cols[4].F64, 1e16, 0.0001, 123456789012345.0)
	f.Cols[5].F64 = append(f.Cols[5].F64, math.Inf(1), 1e-5, math.Inf(-1))
	return f
}

// The expectations below were produced by json.dumps(doc, sort_keys=True,
// separators=(",", ":")) in CPython 3 over the same rows, sorted by ts, with NaN/±Inf
// replaced by None.
func TestMatchesPythonReference(t *testing.T) {
	cases := []struct {
		name     string
		f        *frame.Frame
		meta     Meta
		wantJSON string
		wantFP   string
	}{
		{
			name: "mixed types, unsorted, null coverage",
			f:    mixedFrame(),
			meta: Meta{NodeID: "trades:x/../é:1", Interval: 60},
			wantJSON: `{"frame":[{"a":1e-05,"maker":true,"n":7,"price":1.5,"side":"buy","ts":0,"\u00e9":0.0001},` +
				`{"a":null,"maker":true,"n":8,"price":null,"side":"\u20ac\ud83d\ude00/\\","ts":60,"\u00e9":123456789012345.0},` +
				`{"a":null,"maker":false,"n":-9,"price":-0.0,"side":"sell \"q\"\n","ts":120,"\u00e9":1e+16}],` +
				`"metadata":{"conformance_version":"v2","coverage_bounds":null,"interval":60,"node_id":"trades:x/../\u00e9:1"}}`,
			wantFP: "sha256:93244e27ebbd5a856c697369f8bb36aa8747617ed1e6d91d53371bc7ebf22622",
		},
		{
			name:     "nil frame",
			meta:     Meta{NodeID: "n", Interval: 1},
			wantJSON: `{"frame":[],"metadata":{"conformance_version":"v2","coverage_bounds":null,"interval":1,"node_id":"n"}}`,
			wantFP:   "sha256:ce34bbb0b579ea14cdc7aaf8f28a262c71cb45aed6cacc983d9826b2215a1b31",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := encode(t, c.f, c.meta); got != c.wantJSON {
				t.Errorf("canonical encoding\n got %s\nwant %s", got, c.wantJSON)
			}
			if got := Dataset(c.f, c.meta); got != c.wantFP {
				t.Errorf("Dataset = %s, want %s", got, c.wantFP)
			}
		})
	}
}

func TestInvariants(t *testing.T) {
	f := mixedFrame()
	m := Meta{NodeID: "trades:x", Interval: 60, CoverageBounds: &[2]int64{0, 180}}
	fp := Dataset(f, m)

	sorted := f.Take([]int{1, 2, 0})
	if got := Dataset(sorted, m); got != fp {
		t.Errorf("row order changed the fingerprint: %s vs %s", got, fp)
	}
	if !bytes.Equal([]byte(Dataset(f, m)), []byte(fp)) {
		t.Error("Dataset is not deterministic")
	}
	if f.TS[0] != 120 {
		t.Error("Dataset reordered the caller's frame")
	}

	// Column order in the schema does not matter (keys are sorted); every metadata
	// field and every value does.
	rev := &frame.Frame{TS: f.TS}
	for i := len(f.Cols) - 1; i >= 0; i-- {
		rev.Cols = append(rev.Cols, f.Cols[i])
	}
	if got := Dataset(rev, m); got != fp {
		t.Errorf("column order changed the fingerprint")
	}
	changed := map[string]string{
		"node":     Dataset(f, Meta{NodeID: "trades:y", Interval: m.Interval, CoverageBounds: m.CoverageBounds}),
		"interval": Dataset(f, Meta{NodeID: m.NodeID, Interval: 61, CoverageBounds: m.CoverageBounds}),
		"coverage": Dataset(f, Meta{NodeID: m.NodeID, Interval: m.Interval}),
	}
	g := f.Clone()
	g.Cols[0].F64[1] = 1.5000000000000002
	changed["value"] = Dataset(g, m)
	for what, got := range changed {
		if got == fp {
			t.Errorf("changing the %s kept the fingerprint", what)
		}
	}
	if !strings.HasPrefix(fp, Prefix) || len(fp) != len(Prefix)+64 {
		t.Errorf("malformed fingerprint %q", fp)
	}
}

func TestDuplicateTSKeepInputOrder(t *testing.T) {
	f := frame.New(frame.Schema{Fields: []frame.Field{{Name: "v", Type: frame.Int64}}}, 3)
	f.TS = append(f.TS, 5, 1, 5)
	f.Cols[0].I64 = append(f.Cols[0].I64, 1, 2, 3)
	got := encode(t, f, Meta{NodeID: "n", Interval: 1})
	want := `{"frame":[{"ts":1,"v":2},{"ts":5,"v":1},{"ts":5,"v":3}],`
	if !strings.HasPrefix(got, want) {
		t.Errorf("got %s, want prefix %s", got, want)
	}
}

type failWriter struct{}

var errWrite = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestEncodeErrors(t *testing.T) {
	f, m := golden()
	if err := Encode(failWriter{}, f, m); !errors.Is(err, errWrite) {
		t.Errorf("Encode into a failing writer: %v", err)
	}
	bad := f.Clone()
	bad.Cols[1].F64 = bad.Cols[1].F64[:1]
	if err := Encode(&bytes.Buffer{}, bad, m); err == nil {
		t.Error("Encode accepted a frame with a short column")
	}
	defer func() {
		if recover() == nil {
			t.Error("Dataset of an invalid frame did not panic")
		}
	}()
	Dataset(bad, m)
}

// TestLargeFrameStreams checks a frame far larger than the encoder's buffer: the
// streamed encoding equals the concatenation of its rows.
func TestLargeFrameStreams(t *testing.T) {
	n := 3 * bufSize / 20
	f := frame.New(frame.Schema{Fields: []frame.Field{{Name: "x", Type: frame.Float64}}}, n)
	var want strings.Builder
	want.WriteString(`{"frame":[`)
	for i := range n {
		f.TS = append(f.TS, int64(i))
		f.Cols[0].F64 = append(f.Cols[0].F64, float64(i)/4)
		if i > 0 {
			want.WriteByte(',')
		}
		want.WriteString(`{"ts":` + strconv.Itoa(i) + `,"x":` + string(appendFloat(nil, float64(i)/4)) + `}`)
	}
	want.WriteString(`],"metadata":{"conformance_version":"v2","coverage_bounds":null,"interval":1,"node_id":"n"}}`)
	if got := encode(t, f, Meta{NodeID: "n", Interval: 1}); got != want.String() {
		t.Errorf("streamed encoding differs (len %d vs %d)", len(got), want.Len())
	}
}
