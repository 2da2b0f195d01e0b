package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unsafe"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
)

// The bars document's columns are long arrays of numbers, which encoding/json decodes
// at about 0.3 M bars/s (through a Decoder, a RawMessage per column and a reflective
// Unmarshal: three passes). This file reads the known shape in one pass: a scanner over
// the document finds "metadata" (decoded by encoding/json, it is small) and "data",
// whose number columns are parsed in place with strconv, exactly as encoding/json would
// round them; string and bool columns, rare, still go through encoding/json.

// ReadBars decodes a bars document. Column types come from the standard schema of the
// node's kind where there is one (so an all-null float column stays float), else they
// are inferred from the values; null in a float column is NaN.
func ReadBars(r io.Reader) (seamless.Result, error) {
	doc, err := readAll(r)
	if err != nil {
		return seamless.Result{}, fmt.Errorf("bars document: %w", err)
	}
	res, err := decodeBars(doc)
	if err != nil {
		return seamless.Result{}, fmt.Errorf("bars document: %w", err)
	}
	return res, nil
}

// readAll reads r to its end in pieces of up to 4 MiB and joins them once: io.ReadAll
// grows one buffer by doubling, which for a 100 MB document allocates (and zeroes)
// about three times that.
func readAll(r io.Reader) ([]byte, error) {
	if br, ok := r.(*bytes.Reader); ok {
		b := make([]byte, br.Len())
		_, err := io.ReadFull(br, b)
		return b, err
	}
	var parts [][]byte
	total := 0
	size := 64 << 10
	for {
		p := make([]byte, size)
		n, err := io.ReadFull(r, p)
		parts, total = append(parts, p[:n]), total+n
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		size = min(2*size, 4<<20)
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	out := make([]byte, 0, total)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out, nil
}

func decodeBars(doc []byte) (seamless.Result, error) {
	var res seamless.Result
	s := scanner{b: doc}
	if err := s.expect('{'); err != nil {
		return res, err
	}
	var meta, data []byte
	for first := true; ; first = false {
		s.space()
		if s.peek() == '}' && first {
			s.i++
			break
		}
		if !first {
			if s.peek() == '}' {
				s.i++
				break
			}
			if err := s.expect(','); err != nil {
				return res, err
			}
		}
		key, err := s.key()
		if err != nil {
			return res, err
		}
		start := s.i
		if err := s.skipValue(); err != nil {
			return res, fmt.Errorf("%s: %w", key, err)
		}
		switch key {
		case "metadata":
			meta = doc[start:s.i]
		case "data":
			data = doc[start:s.i]
		}
	}
	s.space()
	if s.i != len(s.b) {
		return res, fmt.Errorf("unexpected %q after the document", s.b[s.i])
	}
	if meta == nil || data == nil {
		return res, errors.New("want an object with metadata and data")
	}
	if err := json.Unmarshal(meta, &res.Metadata); err != nil {
		return res, fmt.Errorf("metadata: %w", err)
	}
	f, err := decodeColumns(data, schemaOf(res.Metadata.NodeID))
	if err != nil {
		return res, err
	}
	res.Frame = f
	return res, nil
}

// decodeColumns reads {"ts":[…],"name":[…],…} keeping the column order.
func decodeColumns(data []byte, schema *frame.Schema) (*frame.Frame, error) {
	s := scanner{b: data}
	if err := s.expect('{'); err != nil {
		return nil, fmt.Errorf("data: want an object of columns")
	}
	f := &frame.Frame{}
	for first := true; ; first = false {
		s.space()
		if s.peek() == '}' {
			s.i++
			break
		}
		if !first {
			if err := s.expect(','); err != nil {
				return nil, fmt.Errorf("data: %w", err)
			}
		}
		name, err := s.key()
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		if name == "ts" {
			if f.TS, err = s.ints(); err != nil {
				return nil, fmt.Errorf("data.ts: %w", err)
			}
			continue
		}
		typ := frame.Type(0)
		if schema != nil {
			if i := schema.Index(name); i >= 0 {
				typ = schema.Fields[i].Type
			}
		}
		if typ == 0 {
			typ = s.inferType()
		}
		c := frame.Column{Field: frame.Field{Name: name, Type: typ}}
		switch typ {
		case frame.Float64:
			c.F64, err = s.floats()
		case frame.Int64:
			c.I64, err = s.ints()
		default:
			start := s.i
			if err = s.skipValue(); err == nil {
				if typ == frame.String {
					err = json.Unmarshal(data[start:s.i], &c.Str)
				} else {
					err = json.Unmarshal(data[start:s.i], &c.Bool)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("data.%s: %w", name, err)
		}
		f.Cols = append(f.Cols, c)
	}
	s.space()
	if s.i != len(s.b) {
		return nil, fmt.Errorf("data: unexpected %q after the columns", s.b[s.i])
	}
	if f.TS == nil {
		f.TS = []int64{}
	}
	return f, f.Validate()
}

var nan = math.NaN()

// scanner reads JSON from b at i.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.space()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if got := s.peek(); got != c {
		if s.i >= len(s.b) {
			return fmt.Errorf("want %q, the document ends (truncated?)", c)
		}
		return fmt.Errorf("want %q at offset %d, found %q", c, s.i, got)
	}
	s.i++
	return nil
}

// key reads an object key and its colon.
func (s *scanner) key() (string, error) {
	if s.peek() != '"' {
		return "", fmt.Errorf("want a key at offset %d", s.i)
	}
	start := s.i
	if err := s.skipString(); err != nil {
		return "", err
	}
	var k string
	if err := json.Unmarshal(s.b[start:s.i], &k); err != nil {
		return "", err
	}
	return k, s.expect(':')
}

func (s *scanner) skipString() error {
	for s.i++; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case '\\':
			s.i++
		case '"':
			s.i++
			return nil
		}
	}
	return errors.New("unterminated string (truncated?)")
}

// skipValue moves past one value, tracking nesting and strings only; the skipped bytes
// are validated by whoever decodes them.
func (s *scanner) skipValue() error {
	depth := 0
	s.space()
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case '"':
			if err := s.skipString(); err != nil {
				return err
			}
			if depth == 0 {
				return nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return fmt.Errorf("unexpected %q at offset %d", c, s.i)
			}
			if depth == 0 {
				s.i++
				return nil
			}
		case ',':
			if depth == 0 {
				return fmt.Errorf("missing value at offset %d", s.i)
			}
		default:
			if depth == 0 {
				// A scalar: up to the next delimiter.
				start := s.i
				for s.i < len(s.b) && !isDelim(s.b[s.i]) {
					s.i++
				}
				if s.i == start {
					return fmt.Errorf("missing value at offset %d", s.i)
				}
				return nil
			}
		}
		s.i++
	}
	return errors.New("the document ends inside a value (truncated?)")
}

func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// inferType looks at an array's first non-null element.
func (s *scanner) inferType() frame.Type {
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '[' || c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r':
		case c == 'n' && bytes.HasPrefix(s.b[j:], []byte("null")):
			j += 3
		case c == '"':
			return frame.String
		case c == 't' || c == 'f':
			return frame.Bool
		default:
			return frame.Float64
		}
	}
	return frame.Float64
}

// elements calls each with every element's bytes of the array at i (null as "null").
func (s *scanner) elements(each func(tok []byte) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		s.space()
		start := s.i
		for s.i < len(s.b) && !isDelim(s.b[s.i]) {
			s.i++
		}
		if s.i == start {
			if s.i >= len(s.b) {
				return errors.New("the array ends early (truncated?)")
			}
			return fmt.Errorf("want a number at offset %d, found %q", s.i, s.b[s.i])
		}
		if err := each(s.b[start:s.i]); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		case 0:
			return errors.New("the array ends early (truncated?)")
		default:
			return fmt.Errorf("want ',' or ']' at offset %d, found %q", s.i, s.b[s.i])
		}
	}
}

// count estimates an array's length from its commas, for one allocation.
func (s *scanner) count() int {
	end := bytes.IndexByte(s.b[s.i:], ']')
	if end < 0 {
		return 0
	}
	return bytes.Count(s.b[s.i:s.i+end], []byte{','}) + 1
}

func (s *scanner) floats() ([]float64, error) {
	out := make([]float64, 0, s.count())
	err := s.elements(func(tok []byte) error {
		if string(tok) == "null" { // JSON cannot carry NaN or ±Inf: the server sends null
			out = append(out, nan)
			return nil
		}
		if !jsonNumber(tok) {
			return fmt.Errorf("%q is not a number", tok)
		}
		v, err := strconv.ParseFloat(unsafe.String(&tok[0], len(tok)), 64)
		if err != nil {
			return fmt.Errorf("%q: %w", tok, err)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

func (s *scanner) ints() ([]int64, error) {
	out := make([]int64, 0, s.count())
	err := s.elements(func(tok []byte) error {
		v, err := strconv.ParseInt(unsafe.String(&tok[0], len(tok)), 10, 64)
		if err != nil || !jsonNumber(tok) {
			return fmt.Errorf("%q is not an integer", tok)
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// jsonNumber reports whether tok is a number in JSON's grammar (strconv also takes
// "Inf", hex, underscores and leading zeros, which JSON does not).
func jsonNumber(tok []byte) bool {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	switch {
	case i < len(tok) && tok[i] == '0':
		i++
	case i < len(tok) && tok[i] >= '1' && tok[i] <= '9':
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(tok) && tok[i] == '.' {
		i++
		d := i
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		d := i
		for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(tok)
}
