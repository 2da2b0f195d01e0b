package conformance

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// ErrInvalidInput is wrapped by the errors Run returns for a malformed frame or invalid
// options. Data problems are never errors: they are findings in the Report.
var ErrInvalidInput = errors.New("conformance: invalid input")

// Input is what the pipeline checks: a frame and, optionally, its ts column as raw text.
type Input struct {
	// Frame holds the value columns and, unless TSText is set, the ts column as integer
	// epochs in seconds, milliseconds, microseconds or nanoseconds.
	Frame *frame.Frame
	// TSText, when non-nil, is the ts column as text, one cell per row (integer epochs
	// or RFC 3339), e.g. straight from a CSV file; Frame.TS is then ignored.
	TSText []string
}

// Options describe what the data should look like.
type Options struct {
	// Interval is the bar width in seconds; 0 switches the grid checks off.
	Interval int64
	// Schema declares the value columns; empty keeps the input's columns unchecked.
	Schema frame.Schema
	// Optional names schema columns that may be absent without a missing_column flag
	// (they are filled all the same), e.g. the side of trades.
	Optional []string
	// Range is the expected [Start, End); rows outside are dropped and the bars between
	// its bounds and the data count as gaps. The empty Range means no range.
	Range grid.Range
	// Enums maps string columns to their allowed values.
	Enums map[string][]string
	// KnownGaps are ranges known to hold no bars (covered-but-empty: real market gaps).
	// Missing bars inside them are counted in known_gap as well as in gap.
	KnownGaps grid.Set
	// WideSpread is the quote rule's threshold on (ask − bid) ÷ mid; 0 means 0.10.
	WideSpread float64
}

// DefaultWideSpread is the reference's wide-spread threshold: 10 % of the mid price.
const DefaultWideSpread = 0.10

// TradeSides is the enumeration of the side column of trades.
var TradeSides = []string{"buy", "sell"}

// OptionsFor returns the options of a standard node kind (ohlcv, trades or quotes; see
// frame.SchemaForKind) at the given interval. For an unknown kind it returns options
// without a schema and false.
func OptionsFor(kind string, interval int64) (Options, bool) {
	s, ok := frame.SchemaForKind(kind)
	o := Options{Interval: interval, Schema: s}
	if kind == "trades" {
		o.Optional = []string{"side"}
		o.Enums = map[string][]string{"side": TradeSides}
	}
	return o, ok
}

// Run checks in against opts and returns the normalised frame (cast to the schema,
// sorted, one row per ts, on the grid, inside the range) with the report. It never
// modifies in; a clean input is returned as is. The error is non-nil only for a
// malformed frame or invalid options (ErrInvalidInput).
func Run(in Input, opts Options) (*frame.Frame, Report, error) {
	if err := validate(in, opts); err != nil {
		return nil, Empty(), err
	}
	var c collector
	ts, valid := timestamps(in, &c)
	rows, identity := selectRows(ts, valid, opts, &c)
	out, fills := project(in.Frame, ts, valid == nil, rows, identity, opts, &c)
	checkValues(out, fills, opts, &c)
	countGaps(out.TS, opts, &c)
	return out, c.report(), nil
}

func validate(in Input, o Options) error {
	if in.Frame == nil {
		return fmt.Errorf("%w: nil frame", ErrInvalidInput)
	}
	if o.Interval < 0 {
		return fmt.Errorf("%w: interval %d < 0", ErrInvalidInput, o.Interval)
	}
	if !(o.WideSpread >= 0) || math.IsInf(o.WideSpread, 0) {
		return fmt.Errorf("%w: wide-spread threshold %v is not a finite non-negative number", ErrInvalidInput, o.WideSpread)
	}
	if err := checkFields("schema", o.Schema.Fields); err != nil {
		return err
	}
	f := in.Frame
	if err := checkFields("frame", f.Schema().Fields); err != nil {
		return err
	}
	n := len(f.TS)
	if in.TSText != nil {
		n = len(in.TSText)
	}
	for i := range f.Cols {
		if l := f.Cols[i].Len(); l != n {
			return fmt.Errorf("%w: frame column %q has %d values, ts has %d", ErrInvalidInput, f.Cols[i].Name, l, n)
		}
	}
	return nil
}

func checkFields(what string, fields []frame.Field) error {
	seen := map[string]bool{"ts": true}
	for _, fd := range fields {
		if !validType(fd.Type) {
			return fmt.Errorf("%w: %s column %q has invalid type %v", ErrInvalidInput, what, fd.Name, fd.Type)
		}
		if seen[fd.Name] {
			return fmt.Errorf("%w: %s has a duplicate column %q", ErrInvalidInput, what, fd.Name)
		}
		seen[fd.Name] = true
	}
	return nil
}

func validType(t frame.Type) bool {
	switch t {
	case frame.Float64, frame.Int64, frame.String, frame.Bool:
		return true
	}
	return false
}

// selectRows picks the output rows: readable ts, inside the range, on the grid, stably
// sorted by ts, the last row in input order for each ts. identity means the output rows
// are exactly the input rows in input order (rows is then nil).
func selectRows(ts []int64, valid []bool, o Options, c *collector) (rows []int, identity bool) {
	if valid == nil && isClean(ts, o) {
		return nil, true
	}
	rows = make([]int, 0, len(ts))
	hasRange := !o.Range.Empty()
	sorted := true
	for i, t := range ts {
		switch {
		case valid != nil && !valid[i]:
			continue
		case hasRange && !o.Range.Contains(t):
			c.hit(fOutOfRangeTS, t)
			continue
		case o.Interval > 0 && t%o.Interval != 0:
			c.hit(fMisalignedTS, t)
			continue
		}
		if n := len(rows); n > 0 && t < ts[rows[n-1]] {
			c.hit(fUnsortedTS, t)
			sorted = false
		}
		rows = append(rows, i)
	}
	if !sorted {
		slices.SortStableFunc(rows, func(a, b int) int { return cmp.Compare(ts[a], ts[b]) })
	}
	// Keep the last row of each run of equal ts: re-sent data replaces earlier data.
	out := rows[:0]
	for k := 0; k < len(rows); {
		j := k + 1
		for j < len(rows) && ts[rows[j]] == ts[rows[k]] {
			j++
		}
		if j-k > 1 {
			c.add(fDuplicateTS, j-k, ts[rows[k]])
		}
		out = append(out, rows[j-1])
		k = j
	}
	if sorted && len(out) == len(ts) {
		return nil, true
	}
	return out, false
}

// isClean reports whether ts is strictly increasing, on the grid and inside the range,
// without a division per row when consecutive bars are one interval apart.
func isClean(ts []int64, o Options) bool {
	if len(ts) == 0 {
		return true
	}
	if !o.Range.Empty() && !(o.Range.Contains(ts[0]) && o.Range.Contains(ts[len(ts)-1])) {
		return false
	}
	iv := o.Interval
	if iv > 0 && ts[0]%iv != 0 {
		return false
	}
	prev := ts[0]
	for _, t := range ts[1:] {
		if t <= prev {
			return false
		}
		// t > prev, so the wrapped difference is exact as a uint64; a step of exactly
		// one interval from an aligned ts stays aligned.
		if iv > 0 && uint64(t-prev) != uint64(iv) && t%iv != 0 {
			return false
		}
		prev = t
	}
	return true
}

// fill records which cells of an output column the schema rollup made up, so that they
// are not counted again as non_finite.
type fill struct {
	all   bool   // the whole column (a missing column)
	cells []bool // per output row, or nil
}

// project builds the output frame from the selected rows, cast to the schema. tsShared
// says ts is the input's own TS slice. fills is nil when nothing was made up.
func project(f *frame.Frame, ts []int64, tsShared bool, rows []int, identity bool, o Options, c *collector) (*frame.Frame, []fill) {
	if len(o.Schema.Fields) == 0 || f.Schema().Equal(o.Schema) {
		if identity && tsShared {
			return f, nil
		}
		if identity {
			return &frame.Frame{TS: ts, Cols: slices.Clone(f.Cols)}, nil
		}
		return (&frame.Frame{TS: ts, Cols: f.Cols}).Take(rows), nil
	}

	// Gather the columns that need no cast together with ts, in one Take.
	same := &frame.Frame{TS: ts}
	for _, fd := range o.Schema.Fields {
		if src := f.Col(fd.Name); src != nil && src.Type == fd.Type {
			same.Cols = append(same.Cols, *src)
		}
	}
	if !identity {
		same = same.Take(rows)
	}
	m := len(same.TS)
	out := &frame.Frame{TS: same.TS, Cols: make([]frame.Column, len(o.Schema.Fields))}
	var fills []fill
	setFill := func(i int, fl fill) {
		if fills == nil {
			fills = make([]fill, len(out.Cols))
		}
		fills[i] = fl
	}
	for i, fd := range o.Schema.Fields {
		src := f.Col(fd.Name)
		switch {
		case src == nil:
			out.Cols[i] = filled(fd, m)
			setFill(i, fill{all: true})
			if !slices.Contains(o.Optional, fd.Name) {
				c.count(fMissingColumn, 1)
				c.warn(fmt.Sprintf("missing column %q (%s): filled with %s", fd.Name, fd.Type, zeroName(fd.Type)))
			}
		case src.Type == fd.Type:
			out.Cols[i] = *same.Col(fd.Name)
		default:
			col, bad := castColumn(src, fd, rows, m)
			out.Cols[i] = col
			if len(bad) == 0 {
				c.count(fDtypeCast, 1)
				c.warn(fmt.Sprintf("column %q: %s cast to %s", fd.Name, src.Type, fd.Type))
				break
			}
			c.count(fDtypeMismatch, 1)
			mask := make([]bool, m)
			for _, k := range bad {
				mask[k] = true
				c.sample(fDtypeMismatch, out.TS[k])
			}
			setFill(i, fill{cells: mask})
			c.warn(fmt.Sprintf("column %q: %d of %d %s value(s) cannot be cast to %s: filled with %s", fd.Name, len(bad), m, src.Type, fd.Type, zeroName(fd.Type)))
		}
	}
	for i := range f.Cols {
		if o.Schema.Index(f.Cols[i].Name) < 0 {
			c.warn(fmt.Sprintf("column %q is not in the schema: dropped", f.Cols[i].Name))
		}
	}
	return out, fills
}

// checkValues runs the per-value rules over the output rows.
func checkValues(f *frame.Frame, fills []fill, o Options, c *collector) {
	ts := f.TS
	for i := range f.Cols {
		col := &f.Cols[i]
		if col.Type != frame.Float64 {
			continue
		}
		var fl fill
		if fills != nil {
			fl = fills[i]
		}
		if fl.all {
			continue
		}
		for k, x := range col.F64 {
			// x-x is 0 for every finite x and NaN for NaN and ±Inf.
			if x-x != 0 && (fl.cells == nil || !fl.cells[k]) {
				c.hit(fNonFinite, ts[k])
			}
		}
	}
	checkEnums(f, o.Enums, c)
	checkBars(f, c)
	ws := o.WideSpread
	if ws == 0 {
		ws = DefaultWideSpread
	}
	checkTicks(f, ws, c)
}

func checkEnums(f *frame.Frame, enums map[string][]string, c *collector) {
	names := make([]string, 0, len(enums))
	for name := range enums {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		col := f.Col(name)
		if col == nil {
			continue
		}
		if col.Type != frame.String {
			c.warn(fmt.Sprintf("enumeration of column %q ignored: the column is %s, not string", name, col.Type))
			continue
		}
		allowed := enums[name]
		for k, v := range col.Str {
			if v != "" && !slices.Contains(allowed, v) {
				c.hit(fInvalidEnum, f.TS[k])
			}
		}
	}
}

// floats returns the named float64 column's values, or nil.
func floats(f *frame.Frame, name string) []float64 {
	if col := f.Col(name); col != nil && col.Type == frame.Float64 {
		return col.F64[:len(f.TS)]
	}
	return nil
}

// finite reports whether every value is finite. The rules below call it only on a
// violation, so that a non-finite value is counted once, as non_finite, and trips no
// other rule (NaN fails every comparison anyway; ±Inf would not).
func finite(vs ...float64) bool {
	for _, v := range vs {
		if v-v != 0 {
			return false
		}
	}
	return true
}

// checkBars applies bar sanity to the OHLCV columns present.
func checkBars(f *frame.Frame, c *collector) {
	ts := f.TS
	op, hi, lo, cl := floats(f, "open"), floats(f, "high"), floats(f, "low"), floats(f, "close")
	if op != nil && hi != nil && lo != nil && cl != nil {
		for k := range ts {
			o, h, l, x := op[k], hi[k], lo[k], cl[k]
			if (h < max(o, x) || l > min(o, x) || h < l) && finite(o, h, l, x) {
				c.hit(fOHLCInconsistent, ts[k])
			}
		}
	}
	if vol := floats(f, "volume"); vol != nil {
		for k, v := range vol {
			if v < 0 && finite(v) {
				c.hit(fNegativeVolume, ts[k])
			}
		}
	}
}

// checkTicks applies the tick rule (price, size) and the quote rule (bid, ask,
// bid_size, ask_size) to the columns present.
func checkTicks(f *frame.Frame, wideSpread float64, c *collector) {
	ts := f.TS
	positive := func(vs []float64, fl flag) {
		for k, v := range vs {
			if v <= 0 && finite(v) {
				c.hit(fl, ts[k])
			}
		}
	}
	positive(floats(f, "price"), fNonPositivePrice)
	positive(floats(f, "size"), fNonPositiveSize)
	bid, ask := floats(f, "bid"), floats(f, "ask")
	if bid != nil && ask != nil {
		for k := range ts {
			b, a := bid[k], ask[k]
			if !finite(a, b) {
				continue
			}
			if b <= 0 || a <= 0 {
				c.hit(fNonPositivePrice, ts[k])
			}
			if b >= a {
				c.hit(fCrossedQuote, ts[k])
			} else if mid := (a + b) / 2; mid > 0 && a-b > wideSpread*mid {
				c.hit(fWideSpread, ts[k])
			}
		}
	}
	bs, as := floats(f, "bid_size"), floats(f, "ask_size")
	if bs != nil && as != nil {
		for k := range ts {
			if (bs[k] <= 0 || as[k] <= 0) && finite(bs[k], as[k]) {
				c.hit(fNonPositiveSize, ts[k])
			}
		}
	}
}

// countGaps counts the missing grid bars of the sorted, unique, aligned ts: between
// consecutive rows and, with a range, between its bounds and the first and last row.
func countGaps(ts []int64, o Options, c *collector) {
	iv := o.Interval
	if iv <= 0 {
		return
	}
	var next int64
	switch {
	case !o.Range.Empty():
		next = o.Range.Align(iv).Start
	case len(ts) > 0:
		next = ts[0]
	default:
		return
	}
	for _, t := range ts {
		if t != next {
			missing(grid.R(next, t), o, c)
		}
		if t > math.MaxInt64-iv { // the last representable bar: nothing can follow
			return
		}
		next = t + iv
	}
	if a := o.Range.Align(iv); !a.Empty() && next < a.End {
		missing(grid.R(next, a.End), o, c)
	}
}

// missing records the gap r (grid-aligned bounds) and its part inside KnownGaps.
func missing(r grid.Range, o Options, c *collector) {
	c.add(fGap, gridBars(r, o.Interval), r.Start)
	if o.KnownGaps.Empty() {
		return
	}
	for _, k := range o.KnownGaps.IntersectRange(r).Ranges() {
		if n := gridBars(k.Align(o.Interval), o.Interval); n > 0 {
			c.add(fKnownGap, n, k.Align(o.Interval).Start)
		}
	}
}

// gridBars is the number of grid bars in the aligned range r, saturating at math.MaxInt
// (the width of a range can exceed math.MaxInt64).
func gridBars(r grid.Range, iv int64) int {
	if r.Empty() {
		return 0
	}
	// End > Start, so the wrapped difference is exact as a uint64.
	n := uint64(r.End-r.Start) / uint64(iv)
	if n > math.MaxInt {
		return math.MaxInt
	}
	return int(n)
}
