package conformance

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

var (
	nan  = math.NaN()
	inf  = math.Inf(1)
	t0   = int64(1704067200) // 2024-01-01T00:00:00Z
	ohlc = Options{Interval: 60, Schema: frame.OHLCV}
)

// bars returns clean OHLCV bars at ts; bar i has close = i+1 so rows can be told apart.
func bars(ts ...int64) *frame.Frame {
	f := frame.New(frame.OHLCV, len(ts))
	for i, t := range ts {
		v := float64(i + 1)
		f.TS = append(f.TS, t)
		for k, x := range []float64{v, v + 1, v - 1, v, 10} {
			f.Cols[k].F64 = append(f.Cols[k].F64, x)
		}
	}
	return f
}

// with returns f after fn modified it, for building a table entry in one expression.
func with(f *frame.Frame, fn func(f *frame.Frame)) *frame.Frame {
	fn(f)
	return f
}

// floatFrame is a frame with one float64 column x.
func floatFrame(ts []int64, x ...float64) *frame.Frame {
	return &frame.Frame{TS: ts, Cols: []frame.Column{{Field: frame.Field{Name: "x", Type: frame.Float64}, F64: x}}}
}

func trades(ts []int64, price, size []float64, side []string) *frame.Frame {
	f := frame.New(frame.Trades, 0)
	f.TS, f.Cols[0].F64, f.Cols[1].F64, f.Cols[2].Str = ts, price, size, side
	return f
}

func quotes(ts []int64, bid, ask, bs, as []float64) *frame.Frame {
	f := frame.New(frame.Quotes, 0)
	f.TS = ts
	f.Cols[0].F64, f.Cols[1].F64, f.Cols[2].F64, f.Cols[3].F64 = bid, ask, bs, as
	return f
}

func seq(start, step int64, n int) []int64 {
	ts := make([]int64, n)
	for i := range ts {
		ts[i] = start + int64(i)*step
	}
	return ts
}

func TestRunFlags(t *testing.T) {
	tradeOpts, _ := OptionsFor("trades", 0)
	quoteOpts, _ := OptionsFor("quotes", 0)
	for _, tc := range []struct {
		name    string
		in      Input
		opts    Options
		want    map[string]int
		samples map[string][]int64
		wantTS  []int64
		warn    string // a substring of one warning
	}{
		{
			name:   "clean",
			in:     Input{Frame: bars(0, 60, 120)},
			opts:   ohlc,
			want:   map[string]int{},
			wantTS: []int64{0, 60, 120},
		},
		{
			// Reference worked example: [1.0, inf, nan] → non_finite 2.
			name:    "non_finite reference example",
			in:      Input{Frame: floatFrame([]int64{0, 1, 2}, 1.0, inf, nan)},
			opts:    Options{Interval: 1},
			want:    map[string]int{NonFinite: 2},
			samples: map[string][]int64{NonFinite: {1, 2}},
			wantTS:  []int64{0, 1, 2},
		},
		{
			name:   "non_finite counts values, -inf included",
			in:     Input{Frame: with(bars(0, 60), func(f *frame.Frame) { f.Cols[0].F64[0], f.Cols[4].F64[0], f.Cols[4].F64[1] = nan, -inf, nan })},
			opts:   ohlc,
			want:   map[string]int{NonFinite: 3}, // -inf volume is not also negative_volume
			wantTS: []int64{0, 60},
		},
		{
			// Reference worked example: [1,2,2,3] → duplicate_ts 2.
			name:    "duplicate_ts reference example",
			in:      Input{Frame: floatFrame([]int64{1, 2, 2, 3}, 1, 2, 3, 4)},
			opts:    Options{Interval: 1},
			want:    map[string]int{DuplicateTS: 2},
			samples: map[string][]int64{DuplicateTS: {2}},
			wantTS:  []int64{1, 2, 3},
		},
		{
			name:    "duplicate_ts counts every row of a run",
			in:      Input{Frame: floatFrame([]int64{5, 5, 5, 7, 7}, 1, 2, 3, 4, 5)},
			opts:    Options{},
			want:    map[string]int{DuplicateTS: 5},
			samples: map[string][]int64{DuplicateTS: {5, 7}},
			wantTS:  []int64{5, 7},
		},
		{
			// Reference worked example: 1000/4000/7000 at interval 1000 → gap 4.
			name:    "gap reference example",
			in:      Input{Frame: floatFrame([]int64{1000, 4000, 7000}, 1, 2, 3)},
			opts:    Options{Interval: 1000},
			want:    map[string]int{Gap: 4},
			samples: map[string][]int64{Gap: {2000, 5000}},
			wantTS:  []int64{1000, 4000, 7000},
		},
		{
			name:    "gap at the range bounds (half-open end)",
			in:      Input{Frame: floatFrame([]int64{2000, 3000}, 1, 2)},
			opts:    Options{Interval: 1000, Range: grid.R(1, 9001)}, // grid points 1000…9000
			want:    map[string]int{Gap: 7},
			samples: map[string][]int64{Gap: {1000, 4000}},
			wantTS:  []int64{2000, 3000},
		},
		{
			name:    "single missing last bar is a gap",
			in:      Input{Frame: bars(0, 60)},
			opts:    Options{Interval: 60, Schema: frame.OHLCV, Range: grid.R(0, 180)},
			want:    map[string]int{Gap: 1},
			samples: map[string][]int64{Gap: {120}},
			wantTS:  []int64{0, 60},
		},
		{
			name:    "empty frame with a range is all gap",
			in:      Input{Frame: bars()},
			opts:    Options{Interval: 60, Schema: frame.OHLCV, Range: grid.R(0, 600)},
			want:    map[string]int{Gap: 10},
			samples: map[string][]int64{Gap: {0}},
			wantTS:  []int64{},
		},
		{
			name:    "known gaps are counted twice",
			in:      Input{Frame: floatFrame([]int64{0, 5000, 9000}, 1, 2, 3)},
			opts:    Options{Interval: 1000, KnownGaps: grid.NewSet(grid.R(1500, 4000), grid.R(7000, 8000))},
			want:    map[string]int{Gap: 7, KnownGap: 3},
			samples: map[string][]int64{Gap: {1000, 6000}, KnownGap: {2000, 7000}},
			wantTS:  []int64{0, 5000, 9000},
		},
		{
			name:    "misaligned_ts dropped",
			in:      Input{Frame: bars(0, 30, 60, -30)},
			opts:    ohlc,
			want:    map[string]int{MisalignedTS: 2},
			samples: map[string][]int64{MisalignedTS: {30, -30}},
			wantTS:  []int64{0, 60},
		},
		{
			name:    "out_of_range_ts dropped",
			in:      Input{Frame: bars(0, 60, 120, 180)},
			opts:    Options{Interval: 60, Schema: frame.OHLCV, Range: grid.R(60, 180)},
			want:    map[string]int{OutOfRangeTS: 2},
			samples: map[string][]int64{OutOfRangeTS: {0, 180}},
			wantTS:  []int64{60, 120},
		},
		{
			name:    "unsorted_ts sorted",
			in:      Input{Frame: bars(120, 0, 60)},
			opts:    ohlc,
			want:    map[string]int{UnsortedTS: 1},
			samples: map[string][]int64{UnsortedTS: {0}},
			wantTS:  []int64{0, 60, 120},
		},
		{
			name:    "ts_cast from milliseconds",
			in:      Input{Frame: bars(t0*1000, (t0+60)*1000)},
			opts:    ohlc,
			want:    map[string]int{TSCast: 2},
			samples: map[string][]int64{TSCast: {t0, t0 + 60}},
			wantTS:  []int64{t0, t0 + 60},
		},
		{
			name:   "ts_cast from nanoseconds",
			in:     Input{Frame: bars(t0*1e9, (t0+60)*1e9)},
			opts:   ohlc,
			want:   map[string]int{TSCast: 2},
			wantTS: []int64{t0, t0 + 60},
		},
		{
			name:    "milliseconds that are not whole seconds",
			in:      Input{Frame: bars(t0*1000, t0*1000+500)},
			opts:    ohlc,
			want:    map[string]int{TSCast: 1, InvalidTimestamp: 1},
			samples: map[string][]int64{InvalidTimestamp: {t0*1000 + 500}},
			wantTS:  []int64{t0},
		},
		{
			name: "textual timestamps",
			in: Input{Frame: with(bars(0, 0, 0, 0, 0, 0), func(f *frame.Frame) { f.TS = nil }), TSText: []string{
				"2024-01-01T00:00:00Z",
				"2024-01-01 00:01:00",       // no zone: UTC assumed
				"2024-01-01T02:02:00+02:00", // offset normalised
				"garbage",
				"2024-01-01T00:03:00.5Z", // not a whole second
				" 2024-01-01T00:04:00+00:00 ",
			}},
			opts:    ohlc,
			want:    map[string]int{TSTimezoneNormalized: 2, InvalidTimestamp: 2, Gap: 1},
			samples: map[string][]int64{TSTimezoneNormalized: {t0 + 60, t0 + 120}, Gap: {t0 + 180}},
			wantTS:  []int64{t0, t0 + 60, t0 + 120, t0 + 240},
			warn:    `"garbage", "2024-01-01T00:03:00.5Z"`,
		},
		{
			name:   "textual integer milliseconds",
			in:     Input{Frame: with(bars(0, 0), func(f *frame.Frame) { f.TS = nil }), TSText: []string{"1704067200000", "1704067260000"}},
			opts:   ohlc,
			want:   map[string]int{TSCast: 2},
			wantTS: []int64{t0, t0 + 60},
		},
		{
			name:   "textual integer seconds are no cast",
			in:     Input{Frame: with(bars(0, 0), func(f *frame.Frame) { f.TS = nil }), TSText: []string{"1704067200", "1704067260"}},
			opts:   ohlc,
			want:   map[string]int{},
			wantTS: []int64{t0, t0 + 60},
		},
		{
			name: "missing_column filled with NaN, not non_finite",
			in: Input{Frame: with(bars(0, 60), func(f *frame.Frame) {
				f.Cols = f.Cols[:4]
			})},
			opts:   ohlc,
			want:   map[string]int{MissingColumn: 1},
			wantTS: []int64{0, 60},
			warn:   `missing column "volume"`,
		},
		{
			name: "dtype_cast int64 to float64",
			in: Input{Frame: with(bars(0, 60), func(f *frame.Frame) {
				f.Cols[4] = frame.Column{Field: frame.Field{Name: "volume", Type: frame.Int64}, I64: []int64{5, 6}}
			})},
			opts:   ohlc,
			want:   map[string]int{DtypeCast: 1},
			wantTS: []int64{0, 60},
			warn:   `column "volume": int64 cast to float64`,
		},
		{
			name: "dtype_cast of a numeric string column; empty cells are non_finite",
			in: Input{Frame: with(bars(0, 60, 120), func(f *frame.Frame) {
				f.Cols[4] = frame.Column{Field: frame.Field{Name: "volume", Type: frame.String}, Str: []string{"1.5", " 2 ", ""}}
			})},
			opts:    ohlc,
			want:    map[string]int{DtypeCast: 1, NonFinite: 1},
			samples: map[string][]int64{NonFinite: {120}},
			wantTS:  []int64{0, 60, 120},
		},
		{
			name: "dtype_mismatch: a string column of non-numbers",
			in: Input{Frame: with(bars(0, 60, 120), func(f *frame.Frame) {
				f.Cols[4] = frame.Column{Field: frame.Field{Name: "volume", Type: frame.String}, Str: []string{"1", "abc", "n/a"}}
			})},
			opts:    ohlc,
			want:    map[string]int{DtypeMismatch: 1},
			samples: map[string][]int64{DtypeMismatch: {60, 120}},
			wantTS:  []int64{0, 60, 120},
			warn:    "2 of 3 string value(s) cannot be cast to float64",
		},
		{
			name: "dtype_mismatch: fractional floats declared int64",
			in:   Input{Frame: floatFrame([]int64{0, 1}, 1, 1.5)},
			opts: Options{Schema: frame.Schema{Fields: []frame.Field{{Name: "x", Type: frame.Int64}}}},
			want: map[string]int{DtypeMismatch: 1}, samples: map[string][]int64{DtypeMismatch: {1}},
			wantTS: []int64{0, 1},
		},
		{
			name: "extra column dropped with a warning",
			in: Input{Frame: with(bars(0), func(f *frame.Frame) {
				f.Cols = append(f.Cols, frame.Column{Field: frame.Field{Name: "vwap", Type: frame.Float64}, F64: []float64{1}})
			})},
			opts:   ohlc,
			want:   map[string]int{},
			wantTS: []int64{0},
			warn:   `column "vwap" is not in the schema`,
		},
		{
			name:    "invalid_enum",
			in:      Input{Frame: trades([]int64{1, 2, 3, 4, 5}, []float64{1, 1, 1, 1, 1}, []float64{1, 1, 1, 1, 1}, []string{"buy", "SELL", "hold", "", "sell"})},
			opts:    tradeOpts,
			want:    map[string]int{InvalidEnum: 2},
			samples: map[string][]int64{InvalidEnum: {2, 3}},
			wantTS:  []int64{1, 2, 3, 4, 5},
		},
		{
			name:   "enumeration of a non-string column is ignored with a warning",
			in:     Input{Frame: bars(0)},
			opts:   Options{Schema: frame.OHLCV, Enums: map[string][]string{"open": {"1"}}},
			want:   map[string]int{},
			wantTS: []int64{0},
			warn:   `enumeration of column "open" ignored`,
		},
		{
			name: "trades without side: optional column, no flag",
			in: Input{Frame: with(trades([]int64{1}, []float64{1}, []float64{1}, []string{"buy"}), func(f *frame.Frame) {
				f.Cols = f.Cols[:2]
			})},
			opts:   tradeOpts,
			want:   map[string]int{},
			wantTS: []int64{1},
		},
		{
			name: "ohlc_inconsistent",
			in: Input{Frame: with(bars(0, 60, 120, 180, 240), func(f *frame.Frame) {
				f.Cols[1].F64[1] = 0.5              // high below open/close
				f.Cols[2].F64[2] = 10               // low above open/close, and above high
				f.Cols[1].F64[3] = nan              // NaN: non_finite only
				f.Cols[1].F64[4] = f.Cols[0].F64[4] // high == open == close: fine
			})},
			opts:    ohlc,
			want:    map[string]int{OHLCInconsistent: 2, NonFinite: 1},
			samples: map[string][]int64{OHLCInconsistent: {60, 120}, NonFinite: {180}},
			wantTS:  []int64{0, 60, 120, 180, 240},
		},
		{
			name:    "negative_volume",
			in:      Input{Frame: with(bars(0, 60), func(f *frame.Frame) { f.Cols[4].F64[1] = -1 })},
			opts:    ohlc,
			want:    map[string]int{NegativeVolume: 1},
			samples: map[string][]int64{NegativeVolume: {60}},
			wantTS:  []int64{0, 60},
		},
		{
			name:    "tick rule",
			in:      Input{Frame: trades([]int64{3, 1, 2, 2}, []float64{1, 0, -1, 5}, []float64{0, 1, 1, 2}, []string{"buy", "buy", "sell", "sell"})},
			opts:    tradeOpts,
			want:    map[string]int{NonPositivePrice: 1, NonPositiveSize: 1, UnsortedTS: 1, DuplicateTS: 2},
			samples: map[string][]int64{NonPositivePrice: {1}, NonPositiveSize: {3}},
			wantTS:  []int64{1, 2, 3},
		},
		{
			name: "quote rule",
			in: Input{Frame: quotes([]int64{1, 2, 3, 4, 5},
				[]float64{10, 10, 9, 9.9, 0},
				[]float64{9, 10, 11, 10.1, 1},
				[]float64{1, 1, 1, 0, 1},
				[]float64{1, 1, 1, 1, 1})},
			opts:    quoteOpts,
			want:    map[string]int{CrossedQuote: 2, WideSpread: 2, NonPositiveSize: 1, NonPositivePrice: 1},
			samples: map[string][]int64{CrossedQuote: {1, 2}, WideSpread: {3, 5}, NonPositiveSize: {4}, NonPositivePrice: {5}},
			wantTS:  []int64{1, 2, 3, 4, 5},
		},
		{
			name:   "quote rule threshold",
			in:     Input{Frame: quotes([]int64{1}, []float64{9}, []float64{11}, []float64{1}, []float64{1})},
			opts:   Options{WideSpread: 0.25},
			want:   map[string]int{},
			wantTS: []int64{1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := deepCopy(tc.in)
			out, rep, err := Run(tc.in, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(rep.FlagsCounts, tc.want) {
				t.Errorf("flags = %v, want %v", rep.FlagsCounts, tc.want)
			}
			for f, want := range tc.samples {
				if got := rep.Samples[f]; !slices.Equal(got, want) {
					t.Errorf("samples[%s] = %v, want %v", f, got, want)
				}
			}
			if !slices.Equal(out.TS, tc.wantTS) && !(len(out.TS) == 0 && len(tc.wantTS) == 0) {
				t.Errorf("ts = %v, want %v", out.TS, tc.wantTS)
			}
			if tc.warn != "" && !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, tc.warn) }) {
				t.Errorf("warnings %q lack %q", rep.Warnings, tc.warn)
			}
			if len(tc.opts.Schema.Fields) > 0 && !out.Schema().Equal(tc.opts.Schema) {
				t.Errorf("output schema %v, want %v", out.Schema(), tc.opts.Schema)
			}
			if err := out.Validate(); err != nil {
				t.Error(err)
			}
			if !sameInput(tc.in, before) {
				t.Error("Run modified its input")
			}
		})
	}
}

func TestDuplicateKeepsLastRow(t *testing.T) {
	f := bars(60, 0, 60, 120, 60) // closes 1…5; ts 60 last at row 4 (close 5)
	out, _, err := Run(Input{Frame: f}, ohlc)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Col("close").F64; !slices.Equal(got, []float64{2, 5, 4}) {
		t.Fatalf("close = %v, want [2 5 4]", got)
	}
}

func TestCleanInputIsNotCopied(t *testing.T) {
	f := bars(0, 60, 120)
	out, rep, err := Run(Input{Frame: f}, Options{Interval: 60, Schema: frame.OHLCV, Range: grid.R(0, 180)})
	if err != nil {
		t.Fatal(err)
	}
	if out != f {
		t.Fatal("clean input was copied")
	}
	if !rep.Clean() || rep.FlagsCounts == nil || rep.Samples == nil || rep.Warnings == nil {
		t.Fatalf("report %+v, want empty non-nil", rep)
	}
}

func TestOutputDoesNotAliasInputColumns(t *testing.T) {
	// Converted ts, clean rows: columns are shared but the column list is not.
	f := bars(t0*1000, (t0+60)*1000)
	out, _, _ := Run(Input{Frame: f}, ohlc)
	out.Cols[0].Name = "changed"
	if f.Cols[0].Name != "open" {
		t.Fatal("renaming an output column renamed the input's")
	}
}

func TestRunInvalidInput(t *testing.T) {
	short := bars(0, 60)
	short.Cols[2].F64 = short.Cols[2].F64[:1]
	dup := bars(0)
	dup.Cols[1].Name = "open"
	for name, tc := range map[string]struct {
		in   Input
		opts Options
	}{
		"nil frame":         {Input{}, ohlc},
		"negative interval": {Input{Frame: bars(0)}, Options{Interval: -1}},
		"NaN spread":        {Input{Frame: bars(0)}, Options{WideSpread: nan}},
		"short column":      {Input{Frame: short}, ohlc},
		"duplicate column":  {Input{Frame: dup}, ohlc},
		"ts text length":    {Input{Frame: bars(0, 60), TSText: []string{"0"}}, ohlc},
		"schema with ts":    {Input{Frame: bars(0)}, Options{Schema: frame.Schema{Fields: []frame.Field{{Name: "ts", Type: frame.Int64}}}}},
		"schema bad type":   {Input{Frame: bars(0)}, Options{Schema: frame.Schema{Fields: []frame.Field{{Name: "x"}}}}},
	} {
		if _, _, err := Run(tc.in, tc.opts); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
}

func TestCasts(t *testing.T) {
	col := func(c frame.Column) *frame.Frame {
		return &frame.Frame{TS: seq(0, 1, c.Len()), Cols: []frame.Column{c}}
	}
	schema := func(ty frame.Type) Options {
		return Options{Schema: frame.Schema{Fields: []frame.Field{{Name: "c", Type: ty}}}}
	}
	for _, tc := range []struct {
		name string
		in   frame.Column
		to   frame.Type
		want string // the output column rendered with toString
		flag string
	}{
		{"float to int", frame.Column{Field: frame.Field{Name: "c", Type: frame.Float64}, F64: []float64{1, -2, 0}}, frame.Int64, "1,-2,0", DtypeCast},
		{"float 2^63 to int", frame.Column{Field: frame.Field{Name: "c", Type: frame.Float64}, F64: []float64{1 << 63}}, frame.Int64, "0", DtypeMismatch},
		{"NaN to int", frame.Column{Field: frame.Field{Name: "c", Type: frame.Float64}, F64: []float64{nan}}, frame.Int64, "0", DtypeMismatch},
		{"string to int", frame.Column{Field: frame.Field{Name: "c", Type: frame.String}, Str: []string{"7", "3.0"}}, frame.Int64, "7,3", DtypeCast},
		{"bool to float", frame.Column{Field: frame.Field{Name: "c", Type: frame.Bool}, Bool: []bool{true, false}}, frame.Float64, "1,0", DtypeCast},
		{"int to bool", frame.Column{Field: frame.Field{Name: "c", Type: frame.Int64}, I64: []int64{1, 0, 2}}, frame.Bool, "true,false,false", DtypeMismatch},
		{"string to bool", frame.Column{Field: frame.Field{Name: "c", Type: frame.String}, Str: []string{"true", "0"}}, frame.Bool, "true,false", DtypeCast},
		{"float to string", frame.Column{Field: frame.Field{Name: "c", Type: frame.Float64}, F64: []float64{1.5, inf}}, frame.String, "1.5,+Inf", DtypeCast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, rep, err := Run(Input{Frame: col(tc.in)}, schema(tc.to))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := range out.TS {
				got = append(got, toString(&out.Cols[0], i))
			}
			if strings.Join(got, ",") != tc.want || rep.FlagsCounts[tc.flag] != 1 {
				t.Fatalf("got %v %v, want %s and %s", got, rep.FlagsCounts, tc.want, tc.flag)
			}
		})
	}
}

func TestGapCountsSaturate(t *testing.T) {
	all := grid.R(math.MinInt64, math.MaxInt64)
	_, rep, err := Run(Input{Frame: floatFrame(nil)}, Options{Interval: 1, Range: all, KnownGaps: grid.NewSet(all)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FlagsCounts[Gap] != math.MaxInt || rep.FlagsCounts[KnownGap] != math.MaxInt {
		t.Fatalf("flags = %v, want gap and known_gap MaxInt", rep.FlagsCounts)
	}
}

func TestOptionsFor(t *testing.T) {
	o, ok := OptionsFor("ohlcv", 60)
	if !ok || !o.Schema.Equal(frame.OHLCV) || o.Interval != 60 {
		t.Fatalf("ohlcv: %+v %v", o, ok)
	}
	if o, ok := OptionsFor("trades", 60); !ok || !slices.Equal(o.Enums["side"], TradeSides) {
		t.Fatalf("trades: %+v %v", o, ok)
	}
	if _, ok := OptionsFor("weather", 60); ok {
		t.Fatal("unknown kind accepted")
	}
}

// deepCopy copies everything Run could reach in an Input.
func deepCopy(in Input) Input {
	out := Input{TSText: slices.Clone(in.TSText)}
	if in.Frame == nil {
		return out
	}
	f := &frame.Frame{TS: slices.Clone(in.Frame.TS), Cols: slices.Clone(in.Frame.Cols)}
	for i := range f.Cols {
		c := &f.Cols[i]
		c.F64, c.I64, c.Str, c.Bool = slices.Clone(c.F64), slices.Clone(c.I64), slices.Clone(c.Str), slices.Clone(c.Bool)
	}
	out.Frame = f
	return out
}

// sameInput compares two inputs value by value, NaN equal to NaN bit for bit.
func sameInput(a, b Input) bool {
	if !slices.Equal(a.TSText, b.TSText) || (a.Frame == nil) != (b.Frame == nil) {
		return false
	}
	if a.Frame == nil {
		return true
	}
	return sameFrame(a.Frame, b.Frame)
}

func sameFrame(a, b *frame.Frame) bool {
	if !slices.Equal(a.TS, b.TS) || len(a.Cols) != len(b.Cols) {
		return false
	}
	for i := range a.Cols {
		x, y := &a.Cols[i], &b.Cols[i]
		if x.Field != y.Field || !slices.Equal(x.I64, y.I64) || !slices.Equal(x.Str, y.Str) || !slices.Equal(x.Bool, y.Bool) ||
			!slices.EqualFunc(x.F64, y.F64, func(p, q float64) bool { return math.Float64bits(p) == math.Float64bits(q) }) {
			return false
		}
	}
	return true
}
