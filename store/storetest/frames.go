package storetest

import (
	"fmt"
	"math"

	"github.com/seamless-data/seamless/frame"
)

// OHLCV returns n deterministic OHLCV bars at start, start+interval, …. A bar's values
// depend only on its ts, so writes that overlap agree on the bars they share.
func OHLCV(start, interval int64, n int) *frame.Frame {
	return ohlcvAt(gridTS(start, interval, n), 0)
}

// gridTS returns n grid timestamps from start.
func gridTS(start, interval int64, n int) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = start + int64(i)*interval
	}
	return ts
}

// ohlcvAt builds OHLCV bars at the given timestamps. Different salts give different
// values at the same ts, which is how the tests tell an upsert from a no-op.
func ohlcvAt(ts []int64, salt float64) *frame.Frame {
	f := frame.New(frame.OHLCV, len(ts))
	f.TS = append(f.TS, ts...)
	for _, t := range ts {
		open := 100 + float64(t%100_003)/1000 + salt
		f.Cols[0].F64 = append(f.Cols[0].F64, open)
		f.Cols[1].F64 = append(f.Cols[1].F64, open+1.25)
		f.Cols[2].F64 = append(f.Cols[2].F64, open-0.75)
		f.Cols[3].F64 = append(f.Cols[3].F64, open+0.5)
		f.Cols[4].F64 = append(f.Cols[4].F64, float64((t/60)%977)+salt*10)
	}
	return f
}

// mixedSchema has a column of every type; frame.Trades supplies price, size and side.
var mixedSchema = frame.Schema{Fields: append(append([]frame.Field{}, frame.Trades.Fields...),
	frame.Field{Name: "count", Type: frame.Int64},
	frame.Field{Name: "maker", Type: frame.Bool},
)}

// mixedAt builds frames of mixedSchema with awkward values: NaN, ±Inf, -0, extreme
// integers, empty, NUL-bearing and non-ASCII strings.
func mixedAt(ts []int64) *frame.Frame {
	floats := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1.5, -2.25e300}
	ints := []int64{math.MinInt64, math.MaxInt64, 0, -1, 42}
	strs := []string{"", "buy", "sell", "ünïcödé ₿", "nul\x00inside", "a:b/c"}
	f := frame.New(mixedSchema, len(ts))
	f.TS = append(f.TS, ts...)
	for i := range ts {
		f.Cols[0].F64 = append(f.Cols[0].F64, floats[i%len(floats)])
		f.Cols[1].F64 = append(f.Cols[1].F64, float64(i)/3)
		f.Cols[2].Str = append(f.Cols[2].Str, strs[i%len(strs)])
		f.Cols[3].I64 = append(f.Cols[3].I64, ints[i%len(ints)])
		f.Cols[4].Bool = append(f.Cols[4].Bool, i%3 == 0)
	}
	return f
}

// Diff describes the first difference between two frames, or returns "" when they have
// the same schema and the same rows. Floats compare bit for bit, except that any NaN
// equals any NaN.
func Diff(got, want *frame.Frame) string {
	if got == nil || want == nil {
		if got == want {
			return ""
		}
		return fmt.Sprintf("got frame %v, want %v", got, want)
	}
	if gs, ws := got.Schema(), want.Schema(); !gs.Equal(ws) {
		return fmt.Sprintf("schema %v, want %v", gs.Fields, ws.Fields)
	}
	if got.Len() != want.Len() {
		return fmt.Sprintf("%d rows, want %d%s", got.Len(), want.Len(), firstTSDiff(got.TS, want.TS))
	}
	for i := range want.TS {
		if got.TS[i] != want.TS[i] {
			return fmt.Sprintf("row %d: ts %d, want %d", i, got.TS[i], want.TS[i])
		}
	}
	for k := range want.Cols {
		g, w := &got.Cols[k], &want.Cols[k]
		if g.Len() != w.Len() {
			return fmt.Sprintf("column %q: %d values, want %d", w.Name, g.Len(), w.Len())
		}
		for i := 0; i < w.Len(); i++ {
			var same bool
			var gv, wv any
			switch w.Type {
			case frame.Float64:
				a, b := g.F64[i], w.F64[i]
				same = math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
				gv, wv = a, b
			case frame.Int64:
				same, gv, wv = g.I64[i] == w.I64[i], g.I64[i], w.I64[i]
			case frame.String:
				same, gv, wv = g.Str[i] == w.Str[i], g.Str[i], w.Str[i]
			case frame.Bool:
				same, gv, wv = g.Bool[i] == w.Bool[i], g.Bool[i], w.Bool[i]
			}
			if !same {
				return fmt.Sprintf("column %q row %d (ts %d): %#v, want %#v", w.Name, i, want.TS[i], gv, wv)
			}
		}
	}
	return ""
}

func firstTSDiff(got, want []int64) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf(" (first difference at row %d: ts %d, want %d)", i, got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf(" (extra ts %d)", got[len(want)])
	}
	if len(want) > len(got) {
		return fmt.Sprintf(" (missing ts %d)", want[len(got)])
	}
	return ""
}
