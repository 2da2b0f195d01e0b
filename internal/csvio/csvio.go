// Package csvio reads and writes bar frames as CSV: a header row naming the columns,
// ts first, one bar per row.
package csvio

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// ParseError locates a problem in CSV input. Line is 1-based (the header is line 1).
type ParseError struct {
	Line   int
	Column string
	Msg    string
}

func (e *ParseError) Error() string {
	switch {
	case e.Line == 0:
		return "csv: " + e.Msg
	case e.Column == "":
		return fmt.Sprintf("csv line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("csv line %d, column %s: %s", e.Line, e.Column, e.Msg)
}

// MaxRows bounds one CSV import so that a runaway file fails clearly instead of
// exhausting memory.
const MaxRows = 50_000_000

// Read parses CSV with a header row into a frame of the given schema. The header must
// contain ts and every schema column (extra columns are an error, order is free). ts
// values may be epoch seconds, milliseconds, microseconds or nanoseconds (one unit for
// the whole file, inferred by InferUnit) or RFC 3339 strings.
// Numeric cells must parse; empty float cells are an error. Rows keep file order.
func Read(r io.Reader, schema frame.Schema) (*frame.Frame, error) {
	f, raw, err := ReadText(r, schema)
	if err != nil {
		return nil, err
	}
	ts, err := ParseTimestamps(raw)
	if err != nil {
		return nil, err
	}
	f.TS = ts
	return f, nil
}

// ReadText is Read without timestamp parsing: it returns the frame's value columns and
// the ts cells as written (TS is nil), for the conformance pipeline to normalise and
// report on (units, time zones, unreadable cells).
func ReadText(r io.Reader, schema frame.Schema) (*frame.Frame, []string, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, &ParseError{Msg: "empty file: want a header row starting with ts"}
	}
	if err != nil {
		return nil, nil, csvErr(err)
	}
	header = append([]string(nil), header...)
	pos := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := pos[h]; dup {
			return nil, nil, &ParseError{Line: 1, Msg: fmt.Sprintf("duplicate column %q", h)}
		}
		pos[h] = i
	}
	tsCol, ok := pos["ts"]
	if !ok {
		return nil, nil, &ParseError{Line: 1, Msg: fmt.Sprintf("no ts column in header %v", header)}
	}
	src := make([]int, len(schema.Fields))
	for i, f := range schema.Fields {
		p, ok := pos[f.Name]
		if !ok {
			return nil, nil, &ParseError{Line: 1, Msg: fmt.Sprintf("missing column %q (want %v)", f.Name, schema.Names())}
		}
		src[i] = p
	}
	if len(header) != len(schema.Fields)+1 {
		return nil, nil, &ParseError{Line: 1, Msg: fmt.Sprintf("header %v has columns outside the schema %v", header, schema.Names())}
	}
	f := frame.New(schema, 0)
	raw := make([]string, 0)
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, csvErr(err)
		}
		if len(raw) >= MaxRows {
			return nil, nil, &ParseError{Line: line, Msg: fmt.Sprintf("more than %d rows", MaxRows)}
		}
		raw = append(raw, strings.TrimSpace(rec[tsCol]))
		for i, fd := range schema.Fields {
			cell := strings.TrimSpace(rec[src[i]])
			if err := appendCell(&f.Cols[i], cell); err != nil {
				return nil, nil, &ParseError{Line: line, Column: fd.Name, Msg: err.Error()}
			}
		}
	}
	return f, raw, nil
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ParseError{Line: pe.Line, Msg: pe.Err.Error()}
	}
	return &ParseError{Msg: err.Error()}
}

func appendCell(c *frame.Column, cell string) error {
	switch c.Type {
	case frame.Float64:
		v, err := strconv.ParseFloat(cell, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", cell)
		}
		c.F64 = append(c.F64, v)
	case frame.Int64:
		v, err := strconv.ParseInt(cell, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", cell)
		}
		c.I64 = append(c.I64, v)
	case frame.Bool:
		v, err := strconv.ParseBool(cell)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", cell)
		}
		c.Bool = append(c.Bool, v)
	case frame.String:
		c.Str = append(c.Str, cell)
	}
	return nil
}

// ParseTimestamps converts a ts column to epoch seconds. All cells are integers (one
// inferred unit) or all RFC 3339; values that are not whole seconds are an error, since
// bar timestamps are.
func ParseTimestamps(cells []string) ([]int64, error) {
	out := make([]int64, len(cells))
	if len(cells) == 0 {
		return out, nil
	}
	if _, err := strconv.ParseInt(cells[0], 10, 64); err != nil {
		for i, c := range cells {
			t, err := time.Parse(time.RFC3339Nano, c)
			if err != nil {
				return nil, &ParseError{Line: i + 2, Column: "ts", Msg: fmt.Sprintf("%q is neither an integer epoch nor RFC 3339", c)}
			}
			if t.Nanosecond() != 0 {
				return nil, &ParseError{Line: i + 2, Column: "ts", Msg: fmt.Sprintf("%q is not a whole second", c)}
			}
			out[i] = t.Unix()
		}
		return out, nil
	}
	for i, c := range cells {
		v, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return nil, &ParseError{Line: i + 2, Column: "ts", Msg: fmt.Sprintf("%q is not an integer epoch (the first row was)", c)}
		}
		out[i] = v
	}
	unit := InferUnit(out)
	for i, v := range out {
		if v%unit != 0 {
			return nil, &ParseError{Line: i + 2, Column: "ts", Msg: fmt.Sprintf("%d is not a whole second in the inferred unit (1/%d s)", v, unit)}
		}
		out[i] = v / unit
	}
	return out, nil
}

// InferUnit returns how many ticks make a second for integer epochs (1, 1e3, 1e6 or
// 1e9) from the largest magnitude: below 1e10 seconds, below 1e13 milliseconds, below
// 1e16 microseconds, else nanoseconds. Magnitude alone is unambiguous for every date from
// 1970-04-27 to 2286; the reference's step-divisibility rule is not (a 1000-second step
// in milliseconds looks like microseconds), so it is not used.
func InferUnit(ts []int64) int64 {
	var maxAbs uint64
	for _, v := range ts {
		a := uint64(v)
		if v < 0 {
			a = uint64(-(v + 1)) + 1
		}
		maxAbs = max(maxAbs, a)
	}
	switch {
	case maxAbs < 1e10:
		return 1
	case maxAbs < 1e13:
		return 1e3
	case maxAbs < 1e16:
		return 1e6
	}
	return 1e9
}

// Write renders f as CSV with a header row.
func Write(w io.Writer, f *frame.Frame) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(f.Schema().Names()); err != nil {
		return err
	}
	row := make([]string, len(f.Cols)+1)
	buf := make([]byte, 0, 32)
	for i, ts := range f.TS {
		row[0] = strconv.FormatInt(ts, 10)
		for k := range f.Cols {
			c := &f.Cols[k]
			switch c.Type {
			case frame.Float64:
				buf = strconv.AppendFloat(buf[:0], c.F64[i], 'g', -1, 64)
				row[k+1] = string(buf)
			case frame.Int64:
				row[k+1] = strconv.FormatInt(c.I64[i], 10)
			case frame.String:
				row[k+1] = c.Str[i]
			case frame.Bool:
				row[k+1] = strconv.FormatBool(c.Bool[i])
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// CoveredRange is what an import of f covers: [first ts, last ts + interval). It
// requires f sorted and unique, every ts on the grid, and at least one row.
func CoveredRange(f *frame.Frame, interval int64) (grid.Range, error) {
	if f.Len() == 0 {
		return grid.Range{}, &ParseError{Msg: "no data rows"}
	}
	for i, ts := range f.TS {
		if ts%interval != 0 {
			return grid.Range{}, &ParseError{Line: i + 2, Column: "ts", Msg: fmt.Sprintf("ts %d is not on the %d s grid", ts, interval)}
		}
		if i > 0 && ts <= f.TS[i-1] {
			return grid.Range{}, &ParseError{Line: i + 2, Column: "ts", Msg: fmt.Sprintf("ts %d is not after the previous row's %d (rows must be sorted and unique)", ts, f.TS[i-1])}
		}
	}
	last := f.TS[f.Len()-1]
	if last > math.MaxInt64-interval {
		return grid.Range{}, &ParseError{Line: f.Len() + 1, Column: "ts", Msg: "ts out of range"}
	}
	return grid.R(f.TS[0], last+interval), nil
}
