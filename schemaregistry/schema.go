package schemaregistry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
)

// Dtype is a column type of a schema document, always held in its normalised name.
type Dtype string

// The dtypes of schema documents. Timestamp is epoch seconds: physically an int64 column
// of a frame, kept distinct in the registry so that documents can say what they mean.
const (
	Int64     Dtype = "int64"
	Float64   Dtype = "float64"
	String    Dtype = "string"
	Bool      Dtype = "bool"
	Timestamp Dtype = "timestamp"
)

// dtypeAliases maps every accepted spelling (lower-cased) to its normalised dtype. The
// aliases are the names other schema languages use for the same physical type (Avro
// long/double, SQL bigint/double precision/text, pandas int64/float64/object excluded).
var dtypeAliases = map[string]Dtype{
	"int64": Int64, "int": Int64, "integer": Int64, "long": Int64, "bigint": Int64,
	"float64": Float64, "float": Float64, "double": Float64, "double precision": Float64, "number": Float64,
	"string": String, "str": String, "text": String, "utf8": String,
	"bool": Bool, "boolean": Bool,
	"timestamp": Timestamp, "datetime": Timestamp, "timestamp[s]": Timestamp,
}

// ParseDtype normalises a dtype name: case-insensitive, surrounding spaces ignored,
// aliases mapped (long → int64, double → float64, boolean → bool, text → string,
// datetime → timestamp; see the package doc).
func ParseDtype(s string) (Dtype, error) {
	if d, ok := dtypeAliases[strings.ToLower(strings.TrimSpace(s))]; ok {
		return d, nil
	}
	return "", fmt.Errorf("unknown dtype %q (want int64, float64, string, bool or timestamp)", s)
}

// frameType is the frame column type that holds values of d.
func (d Dtype) frameType() frame.Type {
	switch d {
	case Int64, Timestamp:
		return frame.Int64
	case Float64:
		return frame.Float64
	case String:
		return frame.String
	case Bool:
		return frame.Bool
	}
	return 0
}

// Field is one column of a schema document.
type Field struct {
	Name  string `json:"name"`
	Dtype Dtype  `json:"dtype"`
	// Enum, for string columns only, lists the allowed values (sorted, unique); nil
	// means unconstrained.
	Enum []string `json:"enum,omitempty"`
	// Optional columns may be absent from a payload. Documents say "required": false;
	// a column is required unless they do.
	Optional bool `json:"-"`
}

// Schema is a parsed, normalised schema document: its fields sorted by name, dtypes
// normalised, enumerations sorted and deduplicated. Two documents that differ only in
// field order, dtype spelling or enum order parse to equal Schemas.
type Schema struct {
	Fields []Field
}

// ParseError says why a schema document is invalid. Field is the offending column's
// name or index ("fields[2]"), empty for document-level problems.
type ParseError struct {
	Field   string
	Message string
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return "invalid schema: " + e.Message
	}
	return fmt.Sprintf("invalid schema: %s: %s", e.Field, e.Message)
}

// Code is the stable error code, "invalid_schema".
func (e *ParseError) Code() string { return CodeInvalidSchema }

// document is the wire form of a schema.
type document struct {
	Fields []docField `json:"fields"`
}

type docField struct {
	Name     string   `json:"name"`
	Dtype    string   `json:"dtype"`
	Enum     []string `json:"enum,omitempty"`
	Required *bool    `json:"required,omitempty"`
}

// Parse reads a schema document: {"fields":[{"name","dtype","enum"?,"required"?}]}.
// Unknown keys, duplicate or empty column names, unknown dtypes, enumerations on
// non-string columns and a ts column that is not int64/timestamp are *ParseError.
func Parse(data []byte) (Schema, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc document
	if err := dec.Decode(&doc); err != nil {
		return Schema{}, &ParseError{Message: err.Error()}
	}
	if dec.More() {
		return Schema{}, &ParseError{Message: "trailing data after the document"}
	}
	if doc.Fields == nil {
		return Schema{}, &ParseError{Message: `missing "fields"`}
	}
	fields := make([]Field, 0, len(doc.Fields))
	for i, df := range doc.Fields {
		f := Field{Name: df.Name, Enum: df.Enum, Optional: df.Required != nil && !*df.Required}
		where := fmt.Sprintf("fields[%d]", i)
		if df.Name != "" {
			where = fmt.Sprintf("column %q", df.Name)
		}
		d, err := ParseDtype(df.Dtype)
		if err != nil {
			return Schema{}, &ParseError{Field: where, Message: err.Error()}
		}
		f.Dtype = d
		fields = append(fields, f)
	}
	s, err := New(fields...)
	if err != nil {
		return Schema{}, err
	}
	return s, nil
}

// MustParse is Parse for documents known to be valid (tests, built-in schemas); it
// panics on error.
func MustParse(doc string) Schema {
	s, err := Parse([]byte(doc))
	if err != nil {
		panic(err)
	}
	return s
}

// New builds a normalised Schema from fields, checking them as Parse does.
func New(fields ...Field) (Schema, error) {
	if len(fields) == 0 {
		return Schema{}, &ParseError{Message: "no fields: a schema needs at least one column"}
	}
	out := make([]Field, len(fields))
	seen := map[string]bool{}
	for i, f := range fields {
		where := fmt.Sprintf("fields[%d]", i)
		if f.Name == "" {
			return Schema{}, &ParseError{Field: where, Message: "empty column name"}
		}
		where = fmt.Sprintf("column %q", f.Name)
		if seen[f.Name] {
			return Schema{}, &ParseError{Field: where, Message: "duplicate column"}
		}
		seen[f.Name] = true
		d, err := ParseDtype(string(f.Dtype))
		if err != nil {
			return Schema{}, &ParseError{Field: where, Message: err.Error()}
		}
		f.Dtype = d
		if f.Name == "ts" {
			if d != Int64 && d != Timestamp {
				return Schema{}, &ParseError{Field: where, Message: fmt.Sprintf("the ts column holds epoch seconds: dtype %s, want int64 or timestamp", d)}
			}
			if f.Optional {
				return Schema{}, &ParseError{Field: where, Message: "the ts column cannot be optional"}
			}
		}
		if f.Enum != nil {
			if d != String {
				return Schema{}, &ParseError{Field: where, Message: fmt.Sprintf("enum on a %s column (enumerations are for string columns)", d)}
			}
			if len(f.Enum) == 0 {
				return Schema{}, &ParseError{Field: where, Message: "empty enum (omit it for an unconstrained column)"}
			}
			f.Enum = slices.Compact(slices.Sorted(slices.Values(f.Enum)))
		}
		out[i] = f
	}
	slices.SortFunc(out, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	return Schema{Fields: out}, nil
}

// Field returns the named column and whether the schema has it.
func (s Schema) Field(name string) (Field, bool) {
	i, ok := slices.BinarySearchFunc(s.Fields, name, func(f Field, n string) int { return strings.Compare(f.Name, n) })
	if !ok {
		return Field{}, false
	}
	return s.Fields[i], true
}

// MarshalJSON writes the canonical document (see Canonical).
func (s Schema) MarshalJSON() ([]byte, error) { return s.Canonical(), nil }

// UnmarshalJSON parses a schema document.
func (s *Schema) UnmarshalJSON(b []byte) error {
	v, err := Parse(b)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Canonical is the schema's canonical document: compact JSON, fields sorted by name,
// normalised dtypes, sorted unique enums, and "required" written on every field. It is
// what Fingerprint hashes and what the registry stores and serves.
func (s Schema) Canonical() []byte {
	doc := document{Fields: make([]docField, len(s.Fields))}
	for i, f := range s.Fields {
		req := !f.Optional
		doc.Fields[i] = docField{Name: f.Name, Dtype: string(f.Dtype), Enum: f.Enum, Required: &req}
	}
	b, err := json.Marshal(doc)
	if err != nil { // strings and bools only: cannot happen
		panic(err)
	}
	return b
}

// Fingerprint is "sha256:" + the hex SHA-256 of Canonical(). Equal schemas — whatever
// their field order, dtype spelling or enum order — have equal fingerprints, and the
// registry gives them one id.
func (s Schema) Fingerprint() string {
	sum := sha256.Sum256(s.Canonical())
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Equal reports whether both schemas are the same after normalisation.
func (s Schema) Equal(o Schema) bool { return bytes.Equal(s.Canonical(), o.Canonical()) }

// FromFrame describes a frame schema as a registry schema: ts int64 plus the frame's
// columns, all required.
func FromFrame(fs frame.Schema) (Schema, error) {
	fields := []Field{{Name: "ts", Dtype: Int64}}
	for _, f := range fs.Fields {
		var d Dtype
		switch f.Type {
		case frame.Int64:
			d = Int64
		case frame.Float64:
			d = Float64
		case frame.String:
			d = String
		case frame.Bool:
			d = Bool
		default:
			return Schema{}, &ParseError{Field: fmt.Sprintf("column %q", f.Name), Message: fmt.Sprintf("frame type %v has no dtype", f.Type)}
		}
		fields = append(fields, Field{Name: f.Name, Dtype: d})
	}
	return New(fields...)
}

// frameOrder puts the standard schemas' columns in their usual order (open, high, low,
// close, volume…) and the rest by name after them, so frames built from a registry
// schema look like the ones sources produce.
var frameOrder = func() map[string]int {
	m := map[string]int{}
	for _, s := range []frame.Schema{frame.OHLCV, frame.Trades, frame.Quotes} {
		for _, f := range s.Fields {
			if _, ok := m[f.Name]; !ok {
				m[f.Name] = len(m)
			}
		}
	}
	return m
}()

// Frame is the frame schema of s: every column but ts (frames imply it), timestamp
// columns as int64, the standard columns first in their usual order, the rest by name.
func (s Schema) Frame() frame.Schema {
	var out frame.Schema
	for _, f := range s.Fields {
		if f.Name != "ts" {
			out.Fields = append(out.Fields, frame.Field{Name: f.Name, Type: f.Dtype.frameType()})
		}
	}
	rank := func(n string) int {
		if r, ok := frameOrder[n]; ok {
			return r
		}
		return len(frameOrder)
	}
	slices.SortStableFunc(out.Fields, func(a, b frame.Field) int {
		if c := rank(a.Name) - rank(b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Enums maps the schema's enumerated columns to their allowed values, the form of
// conformance.Options.Enums. It is nil when no column is enumerated.
func (s Schema) Enums() map[string][]string {
	var m map[string][]string
	for _, f := range s.Fields {
		if f.Enum != nil {
			if m == nil {
				m = map[string][]string{}
			}
			m[f.Name] = slices.Clone(f.Enum)
		}
	}
	return m
}

// Optional lists the optional columns, the form of conformance.Options.Optional.
func (s Schema) Optional() []string {
	var out []string
	for _, f := range s.Fields {
		if f.Optional {
			out = append(out, f.Name)
		}
	}
	return out
}

// ConformanceOptions returns base with its Schema, Optional and Enums replaced by this
// schema's, so the conformance pipeline checks frames against it.
func (s Schema) ConformanceOptions(base conformance.Options) conformance.Options {
	base.Schema = s.Frame()
	base.Optional = s.Optional()
	base.Enums = s.Enums()
	return base
}
