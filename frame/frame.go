// Package frame is Seamless's columnar table: a ts column of epoch seconds plus typed
// value columns, described by a Schema. Frames are what stores return, fetchers produce
// and the API serialises; numeric columns convert to and from Apache Arrow without
// copying (see arrow.go).
//
// Invariant: every column has exactly Len() values in the slice matching its Type.
// Frames do not enforce ordering; the provider's output is sorted and unique by ts.
package frame

import (
	"fmt"
	"slices"
	"sort"
)

// Type is a column's value type.
type Type uint8

// Column types. The zero Type is invalid so that a forgotten type is caught.
const (
	Int64 Type = iota + 1
	Float64
	String
	Bool
)

var typeNames = map[Type]string{Int64: "int64", Float64: "float64", String: "string", Bool: "bool"}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType reads a dtype name: int64, float64, string or bool.
func ParseType(s string) (Type, error) {
	for t, n := range typeNames {
		if n == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown column type %q (want int64, float64, string or bool)", s)
}

// MarshalText writes the dtype name.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a dtype name.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	*t = v
	return err
}

// Field names and types one value column.
type Field struct {
	Name string `json:"name"`
	Type Type   `json:"dtype"`
}

// Schema lists the value columns of a frame, in order. The ts column (int64 epoch
// seconds) is implied and always first.
type Schema struct {
	Fields []Field `json:"fields"`
}

// Index returns the position of the named field, or -1.
func (s Schema) Index(name string) int {
	return slices.IndexFunc(s.Fields, func(f Field) bool { return f.Name == name })
}

// Equal reports whether both schemas have the same fields in the same order.
func (s Schema) Equal(o Schema) bool { return slices.Equal(s.Fields, o.Fields) }

// Names returns "ts" followed by the field names: the header of a CSV rendering.
func (s Schema) Names() []string {
	out := []string{"ts"}
	for _, f := range s.Fields {
		out = append(out, f.Name)
	}
	return out
}

func f64(names ...string) Schema {
	s := Schema{}
	for _, n := range names {
		s.Fields = append(s.Fields, Field{Name: n, Type: Float64})
	}
	return s
}

// The standard schemas of SPEC §1.
var (
	OHLCV  = f64("open", "high", "low", "close", "volume")
	Trades = Schema{Fields: []Field{{"price", Float64}, {"size", Float64}, {"side", String}}}
	Quotes = f64("bid", "ask", "bid_size", "ask_size")
)

// SchemaForKind returns the standard schema of a node kind (the first part of a node
// id): ohlcv, trades or quotes.
func SchemaForKind(kind string) (Schema, bool) {
	switch kind {
	case "ohlcv":
		return OHLCV, true
	case "trades":
		return Trades, true
	case "quotes":
		return Quotes, true
	}
	return Schema{}, false
}

// Column holds one column's values in the slice that matches its Type; the others are nil.
type Column struct {
	Field
	F64  []float64
	I64  []int64
	Str  []string
	Bool []bool
}

// Len is the number of values in the column.
func (c *Column) Len() int {
	switch c.Type {
	case Float64:
		return len(c.F64)
	case Int64:
		return len(c.I64)
	case String:
		return len(c.Str)
	case Bool:
		return len(c.Bool)
	}
	return 0
}

func (c *Column) slice(i, j int) Column {
	out := Column{Field: c.Field}
	switch c.Type {
	case Float64:
		out.F64 = c.F64[i:j:j]
	case Int64:
		out.I64 = c.I64[i:j:j]
	case String:
		out.Str = c.Str[i:j:j]
	case Bool:
		out.Bool = c.Bool[i:j:j]
	}
	return out
}

func (c *Column) appendFrom(o *Column, i, j int) {
	switch c.Type {
	case Float64:
		c.F64 = append(c.F64, o.F64[i:j]...)
	case Int64:
		c.I64 = append(c.I64, o.I64[i:j]...)
	case String:
		c.Str = append(c.Str, o.Str[i:j]...)
	case Bool:
		c.Bool = append(c.Bool, o.Bool[i:j]...)
	}
}

func (c *Column) take(idx []int) Column {
	out := Column{Field: c.Field}
	switch c.Type {
	case Float64:
		out.F64 = gather(c.F64, idx)
	case Int64:
		out.I64 = gather(c.I64, idx)
	case String:
		out.Str = gather(c.Str, idx)
	case Bool:
		out.Bool = gather(c.Bool, idx)
	}
	return out
}

func gather[T any](v []T, idx []int) []T {
	out := make([]T, len(idx))
	for k, i := range idx {
		out[k] = v[i]
	}
	return out
}

// Frame is a columnar table: TS plus one Column per schema field.
type Frame struct {
	TS   []int64
	Cols []Column
}

// New returns an empty frame with the given schema and room for capacity rows.
func New(s Schema, capacity int) *Frame {
	return (*Pool)(nil).frame(s, capacity, 0)
}

// Len is the number of rows.
func (f *Frame) Len() int {
	if f == nil {
		return 0
	}
	return len(f.TS)
}

// Schema describes the frame's value columns.
func (f *Frame) Schema() Schema {
	s := Schema{Fields: make([]Field, len(f.Cols))}
	for i, c := range f.Cols {
		s.Fields[i] = c.Field
	}
	return s
}

// Col returns the named column, or nil.
func (f *Frame) Col(name string) *Column {
	for i := range f.Cols {
		if f.Cols[i].Name == name {
			return &f.Cols[i]
		}
	}
	return nil
}

// Validate checks that every column is typed and has Len() values.
func (f *Frame) Validate() error {
	seen := map[string]bool{"ts": true}
	for i := range f.Cols {
		c := &f.Cols[i]
		if _, ok := typeNames[c.Type]; !ok {
			return fmt.Errorf("frame: column %q has invalid type %v", c.Name, c.Type)
		}
		if seen[c.Name] {
			return fmt.Errorf("frame: duplicate column %q", c.Name)
		}
		seen[c.Name] = true
		if c.Len() != len(f.TS) {
			return fmt.Errorf("frame: column %q has %d values, ts has %d", c.Name, c.Len(), len(f.TS))
		}
	}
	return nil
}

// Slice returns rows [i, j) sharing memory with f.
func (f *Frame) Slice(i, j int) *Frame {
	out := &Frame{TS: f.TS[i:j:j], Cols: make([]Column, len(f.Cols))}
	for k := range f.Cols {
		out.Cols[k] = f.Cols[k].slice(i, j)
	}
	return out
}

// AppendRows appends rows [i, j) of o, which must have the same schema, to f.
func (f *Frame) AppendRows(o *Frame, i, j int) {
	f.TS = append(f.TS, o.TS[i:j]...)
	for k := range f.Cols {
		f.Cols[k].appendFrom(&o.Cols[k], i, j)
	}
}

// Take returns a new frame holding the rows at idx, in that order.
func (f *Frame) Take(idx []int) *Frame {
	out := &Frame{TS: gather(f.TS, idx), Cols: make([]Column, len(f.Cols))}
	for k := range f.Cols {
		out.Cols[k] = f.Cols[k].take(idx)
	}
	return out
}

// SearchTS returns the first row whose ts is >= t, assuming TS is sorted.
func (f *Frame) SearchTS(t int64) int {
	return sort.Search(len(f.TS), func(i int) bool { return f.TS[i] >= t })
}

// IsSortedUnique reports whether TS is strictly increasing.
func (f *Frame) IsSortedUnique() bool {
	for i := 1; i < len(f.TS); i++ {
		if f.TS[i] <= f.TS[i-1] {
			return false
		}
	}
	return true
}

// Normalize returns a frame sorted by ts with one row per ts (the last occurrence in
// input order wins, so re-sent data replaces earlier data) and only rows for which keep
// returns true. It returns f itself when nothing changes.
func (f *Frame) Normalize(keep func(ts int64) bool) *Frame {
	clean := true
	for i, ts := range f.TS {
		if !keep(ts) || (i > 0 && ts <= f.TS[i-1]) {
			clean = false
			break
		}
	}
	if clean {
		return f
	}
	idx := make([]int, 0, len(f.TS))
	for i, ts := range f.TS {
		if keep(ts) {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return f.TS[idx[a]] < f.TS[idx[b]] })
	out := idx[:0]
	for _, i := range idx {
		if n := len(out); n > 0 && f.TS[out[n-1]] == f.TS[i] {
			out[n-1] = i
			continue
		}
		out = append(out, i)
	}
	return f.Take(out)
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}
