package frame

import (
	"math"
	"strconv"
)

// jsonFloats marshals a float column with null for NaN and ±Inf.
type jsonFloats []float64

func (v jsonFloats) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(v)*12)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, x, 'g', -1, 64)
	}
	return append(b, ']'), nil
}
