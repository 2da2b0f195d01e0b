package conformance

import (
	"math"
	"strconv"
	"strings"

	"github.com/seamless-data/seamless/frame"
)

// castColumn converts the rows of src (rows[k], or k when rows is nil, for k < m) to
// the type of fd. bad lists the output rows whose value could not be converted; they
// hold NaN (float64) or the zero value.
func castColumn(src *frame.Column, fd frame.Field, rows []int, m int) (col frame.Column, bad []int) {
	row := func(k int) int {
		if rows == nil {
			return k
		}
		return rows[k]
	}
	col = frame.Column{Field: fd}
	switch fd.Type {
	case frame.Float64:
		col.F64 = make([]float64, m)
		for k := range m {
			v, ok := toFloat(src, row(k))
			if !ok {
				v, bad = math.NaN(), append(bad, k)
			}
			col.F64[k] = v
		}
	case frame.Int64:
		col.I64 = make([]int64, m)
		for k := range m {
			v, ok := toInt(src, row(k))
			if !ok {
				bad = append(bad, k)
			}
			col.I64[k] = v
		}
	case frame.Bool:
		col.Bool = make([]bool, m)
		for k := range m {
			v, ok := toBool(src, row(k))
			if !ok {
				bad = append(bad, k)
			}
			col.Bool[k] = v
		}
	case frame.String:
		col.Str = make([]string, m)
		for k := range m {
			col.Str[k] = toString(src, row(k))
		}
	}
	return col, bad
}

// filled returns a column of m made-up values: NaN for float64, else the zero value.
func filled(fd frame.Field, m int) frame.Column {
	col := frame.Column{Field: fd}
	switch fd.Type {
	case frame.Float64:
		col.F64 = make([]float64, m)
		for k := range col.F64 {
			col.F64[k] = math.NaN()
		}
	case frame.Int64:
		col.I64 = make([]int64, m)
	case frame.Bool:
		col.Bool = make([]bool, m)
	case frame.String:
		col.Str = make([]string, m)
	}
	return col
}

// zeroName names what filled puts in a column of type t, for warnings.
func zeroName(t frame.Type) string {
	switch t {
	case frame.Float64:
		return "NaN"
	case frame.Int64:
		return "0"
	case frame.Bool:
		return "false"
	}
	return `""`
}

// toFloat converts one value. An empty string is a missing value: NaN, which the
// non-finite scan then counts.
func toFloat(c *frame.Column, i int) (float64, bool) {
	switch c.Type {
	case frame.Int64:
		return float64(c.I64[i]), true
	case frame.Bool:
		return b2f(c.Bool[i]), true
	case frame.String:
		s := strings.TrimSpace(c.Str[i])
		if s == "" {
			return math.NaN(), true
		}
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	return c.F64[i], true
}

func toInt(c *frame.Column, i int) (int64, bool) {
	switch c.Type {
	case frame.Float64:
		return floatToInt(c.F64[i])
	case frame.Bool:
		return int64(b2f(c.Bool[i])), true
	case frame.String:
		s := strings.TrimSpace(c.Str[i])
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return v, true
		}
		if v, err := strconv.ParseFloat(s, 64); err == nil {
			return floatToInt(v)
		}
		return 0, false
	}
	return c.I64[i], true
}

// floatToInt converts integral floats inside the int64 range; 2^63 itself is outside.
func floatToInt(v float64) (int64, bool) {
	if v != math.Trunc(v) || v < -(1<<63) || v >= 1<<63 {
		return 0, false
	}
	return int64(v), true
}

func toBool(c *frame.Column, i int) (bool, bool) {
	switch c.Type {
	case frame.Float64:
		v := c.F64[i]
		return v == 1, v == 0 || v == 1
	case frame.Int64:
		v := c.I64[i]
		return v == 1, v == 0 || v == 1
	case frame.String:
		v, err := strconv.ParseBool(strings.TrimSpace(c.Str[i]))
		return v, err == nil
	}
	return c.Bool[i], true
}

func toString(c *frame.Column, i int) string {
	switch c.Type {
	case frame.Float64:
		return strconv.FormatFloat(c.F64[i], 'g', -1, 64)
	case frame.Int64:
		return strconv.FormatInt(c.I64[i], 10)
	case frame.Bool:
		return strconv.FormatBool(c.Bool[i])
	}
	return c.Str[i]
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
