package conformance

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// fuzzValues are the cell values a fuzz byte selects from: ordinary, boundary and
// non-finite.
var fuzzValues = [8]float64{1, 2, 3, 0, -1, math.NaN(), math.Inf(1), math.Inf(-1)}

// fuzzInput decodes fuzz bytes: byte 0 picks the interval, byte 1 a range, then 3 bytes
// per row: a signed ts step (so ts repeat, go backwards and fall off the grid) and five
// 3-bit value selectors for open, high, low, close, volume.
func fuzzInput(data []byte) (*frame.Frame, Options) {
	if len(data) < 2 {
		return frame.New(frame.OHLCV, 0), Options{Schema: frame.OHLCV}
	}
	o := Options{Interval: []int64{0, 1, 60, 3600}[data[0]%4], Schema: frame.OHLCV}
	if data[1]&1 == 1 {
		o.Range = grid.R(int64(int8(data[1]))*60, int64(int8(data[1]))*60+int64(data[1])*120)
	}
	if data[1]&2 == 2 {
		o.KnownGaps = grid.NewSet(grid.R(0, 600), grid.R(-3600, -1800))
	}
	data = data[2:]
	f := frame.New(frame.OHLCV, len(data)/3)
	var ts int64
	for ; len(data) >= 3; data = data[3:] {
		ts += int64(int8(data[0])) * 30
		f.TS = append(f.TS, ts)
		sel := uint16(data[1]) | uint16(data[2])<<8
		for k := range f.Cols {
			f.Cols[k].F64 = append(f.Cols[k].F64, fuzzValues[sel>>(3*k)&7])
		}
	}
	return f, o
}

func FuzzPipeline(f *testing.F) {
	f.Add([]byte{2, 0, 2, 0, 0, 2, 0, 0})
	f.Add([]byte{2, 1, 2, 0, 0, 0, 0, 0, 1, 5, 6, 254, 7, 8})
	f.Add([]byte{1, 3, 10, 1, 2, 246, 3, 4, 0, 5, 6, 1, 0x24, 0x92})
	f.Add([]byte{3, 2, 120, 0, 0, 120, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		in, opts := fuzzInput(data)
		before := deepCopy(Input{Frame: in})
		out, rep, err := Run(Input{Frame: in}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !sameInput(Input{Frame: in}, before) {
			t.Fatal("Run modified its input")
		}
		checkInvariants(t, in, out, rep, opts)

		// Normalising is idempotent, and a normalised frame takes the fast path.
		again, rep2, err := Run(Input{Frame: out}, opts)
		if err != nil || again != out {
			t.Fatalf("second run copied the output (err %v)", err)
		}
		for _, fl := range []string{OutOfRangeTS, MisalignedTS, UnsortedTS, DuplicateTS, InvalidTimestamp, TSCast} {
			if rep2.FlagsCounts[fl] != 0 {
				t.Fatalf("second run raised %s: %v", fl, rep2.FlagsCounts)
			}
		}
		for _, fl := range []string{NonFinite, Gap, KnownGap, OHLCInconsistent, NegativeVolume} {
			if rep2.FlagsCounts[fl] != rep.FlagsCounts[fl] {
				t.Fatalf("%s: %d on the input, %d on the output", fl, rep.FlagsCounts[fl], rep2.FlagsCounts[fl])
			}
		}
	})
}

func checkInvariants(t *testing.T, in, out *frame.Frame, rep Report, o Options) {
	t.Helper()
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	if !out.Schema().Equal(o.Schema) {
		t.Fatalf("schema %v", out.Schema())
	}
	if !out.IsSortedUnique() {
		t.Fatalf("output not sorted and unique: %v", out.TS)
	}
	for _, ts := range out.TS {
		if o.Interval > 0 && ts%o.Interval != 0 {
			t.Fatalf("ts %d off the %d s grid", ts, o.Interval)
		}
		if !o.Range.Empty() && !o.Range.Contains(ts) {
			t.Fatalf("ts %d outside %v", ts, o.Range)
		}
	}
	for f, n := range rep.FlagsCounts {
		if n <= 0 {
			t.Fatalf("flag %s with count %d", f, n)
		}
	}
	for f, s := range rep.Samples {
		if len(s) == 0 || len(s) > MaxSamples || rep.FlagsCounts[f] == 0 {
			t.Fatalf("samples[%s] = %v with count %d", f, s, rep.FlagsCounts[f])
		}
	}

	// Model: the last row per ts among rows in range and on the grid.
	last := map[int64]int{}
	for i, ts := range in.TS {
		if (o.Range.Empty() || o.Range.Contains(ts)) && (o.Interval == 0 || ts%o.Interval == 0) {
			last[ts] = i
		}
	}
	if len(last) != out.Len() {
		t.Fatalf("%d rows out, want %d", out.Len(), len(last))
	}
	nonFinite := 0
	for k, ts := range out.TS {
		i, ok := last[ts]
		if !ok {
			t.Fatalf("ts %d is not from the input", ts)
		}
		for c := range out.Cols {
			x, y := out.Cols[c].F64[k], in.Cols[c].F64[i]
			if math.Float64bits(x) != math.Float64bits(y) {
				t.Fatalf("ts %d %s = %v, want the last input row's %v", ts, out.Cols[c].Name, x, y)
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				nonFinite++
			}
		}
	}
	// non_finite counts exactly the non-finite values served: none iff the flag is absent.
	if rep.FlagsCounts[NonFinite] != nonFinite {
		t.Fatalf("non_finite = %d, output holds %d", rep.FlagsCounts[NonFinite], nonFinite)
	}
	if o.Interval > 0 {
		var expected int64
		switch {
		case !o.Range.Empty():
			expected = o.Range.Bars(o.Interval)
		case out.Len() > 0:
			expected = (out.TS[out.Len()-1]-out.TS[0])/o.Interval + 1
		}
		if got := int64(rep.FlagsCounts[Gap]); got != expected-int64(out.Len()) {
			t.Fatalf("gap = %d, want %d expected bars − %d rows", got, expected, out.Len())
		}
		if rep.FlagsCounts[KnownGap] > rep.FlagsCounts[Gap] {
			t.Fatalf("known_gap %d > gap %d", rep.FlagsCounts[KnownGap], rep.FlagsCounts[Gap])
		}
	}
	dropped := rep.FlagsCounts[OutOfRangeTS] + rep.FlagsCounts[MisalignedTS]
	if in.Len()-dropped < out.Len() || (rep.FlagsCounts[DuplicateTS] == 0 && in.Len()-dropped != out.Len()) {
		t.Fatalf("%d rows in, %d dropped, %d out, duplicate_ts %d", in.Len(), dropped, out.Len(), rep.FlagsCounts[DuplicateTS])
	}
}

// FuzzTimestampsText feeds arbitrary ts text, one cell per line: the pipeline must not
// panic and must return sorted, unique rows, one per readable ts.
func FuzzTimestampsText(f *testing.F) {
	f.Add("2024-01-01T00:00:00Z\n1704067260000\n2024-01-01 00:02:00\nx\n2024-01-01T01:03:00+01:00")
	f.Add("0\n60\n-60\n9223372036854775807\n-9223372036854775808")
	f.Add("2024-01-01\n1999-12-31T23:59:60Z\n2024-13-01T00:00:00Z")
	f.Fuzz(func(t *testing.T, text string) {
		cells := strings.Split(text, "\n")
		in := floatFrame(nil, make([]float64, len(cells))...)
		out, rep, err := Run(Input{Frame: in, TSText: cells}, Options{Interval: 60})
		if err != nil {
			t.Fatal(err)
		}
		if !out.IsSortedUnique() || out.Validate() != nil {
			t.Fatalf("output ts %v", out.TS)
		}
		dropped := rep.FlagsCounts[InvalidTimestamp] + rep.FlagsCounts[MisalignedTS]
		if out.Len() > len(cells)-dropped || slices.ContainsFunc(out.TS, func(ts int64) bool { return ts%60 != 0 }) {
			t.Fatalf("%d cells, %d dropped, %d rows: %v", len(cells), dropped, out.Len(), rep.FlagsCounts)
		}
	})
}
