package frame

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
)

// jsonChunk is how much of a JSON rendering WriteJSON holds before writing it out: the
// memory of a JSON answer is this, whatever the number of bars.
const jsonChunk = 32 << 10

// WriteJSON writes the frame column-wise in schema order, ts first —
// {"ts":[…],"open":[…],…} — as MarshalJSON renders it, but in pieces of about 32 KiB,
// so encoding a million bars holds 32 KiB rather than the whole 60 MB text. Non-finite
// floats, which JSON cannot carry, are written as null.
func (f *Frame) WriteJSON(w io.Writer) error {
	jw := jsonWriter{w: w, b: make([]byte, 0, jsonChunk+64)}
	jw.b = append(jw.b, `{"ts":[`...)
	for i, t := range f.TS {
		if i > 0 {
			jw.b = append(jw.b, ',')
		}
		jw.b = strconv.AppendInt(jw.b, t, 10)
		if jw.spill() != nil {
			return jw.err
		}
	}
	jw.b = append(jw.b, ']')
	for i := range f.Cols {
		c := &f.Cols[i]
		name, err := json.Marshal(c.Name)
		if err != nil {
			return err
		}
		jw.b = append(append(append(jw.b, ','), name...), ':', '[')
		switch c.Type {
		case Float64:
			for k, x := range c.F64 {
				if k > 0 {
					jw.b = append(jw.b, ',')
				}
				if math.IsNaN(x) || math.IsInf(x, 0) {
					jw.b = append(jw.b, "null"...)
				} else {
					jw.b = strconv.AppendFloat(jw.b, x, 'g', -1, 64)
				}
				if jw.spill() != nil {
					return jw.err
				}
			}
		case Int64:
			for k, x := range c.I64 {
				if k > 0 {
					jw.b = append(jw.b, ',')
				}
				jw.b = strconv.AppendInt(jw.b, x, 10)
				if jw.spill() != nil {
					return jw.err
				}
			}
		case String:
			for k, x := range c.Str {
				if k > 0 {
					jw.b = append(jw.b, ',')
				}
				// encoding/json's escaping (HTML-safe, invalid UTF-8 replaced), as before.
				s, err := json.Marshal(x)
				if err != nil {
					return err
				}
				jw.b = append(jw.b, s...)
				if jw.spill() != nil {
					return jw.err
				}
			}
		case Bool:
			for k, x := range c.Bool {
				if k > 0 {
					jw.b = append(jw.b, ',')
				}
				jw.b = strconv.AppendBool(jw.b, x)
				if jw.spill() != nil {
					return jw.err
				}
			}
		}
		jw.b = append(jw.b, ']')
	}
	jw.b = append(jw.b, '}')
	return jw.flush()
}

// jsonWriter accumulates a rendering in b and writes it out whenever it passes
// jsonChunk; the first write error sticks and stops further writes.
type jsonWriter struct {
	w   io.Writer
	b   []byte
	err error
}

func (jw *jsonWriter) spill() error {
	if len(jw.b) >= jsonChunk {
		return jw.flush()
	}
	return nil
}

func (jw *jsonWriter) flush() error {
	if jw.err == nil && len(jw.b) > 0 {
		_, jw.err = jw.w.Write(jw.b)
	}
	jw.b = jw.b[:0]
	return jw.err
}

// MarshalJSON renders the frame as WriteJSON writes it.
func (f *Frame) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(16 + f.Len()*(8+len(f.Cols)*12))
	if err := f.WriteJSON(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
