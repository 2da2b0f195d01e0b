package schemaregistry

import (
	"fmt"
	"slices"
	"strings"
)

// Level is a subject's compatibility level.
type Level string

// Compatibility levels, as in Confluent's registry. See the package doc for what each
// checks against which versions.
const (
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
	None               Level = "NONE"
)

// Levels lists every level.
var Levels = []Level{Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive, None}

// ParseLevel reads a level name, case-insensitively.
func ParseLevel(s string) (Level, error) {
	l := Level(strings.ToUpper(strings.TrimSpace(s)))
	if slices.Contains(Levels, l) {
		return l, nil
	}
	return "", &RequestError{Message: fmt.Sprintf("unknown compatibility level %q (want one of %s)", s, joinLevels())}
}

func joinLevels() string {
	names := make([]string, len(Levels))
	for i, l := range Levels {
		names[i] = string(l)
	}
	return strings.Join(names, ", ")
}

func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}
func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}
func (l Level) transitive() bool { return strings.HasSuffix(string(l), "_TRANSITIVE") }

// Check returns every incompatibility of candidate with the subject's history
// (history[i] is version i+1) under level; none means compatible. Each message names
// the version it concerns and the column.
func Check(level Level, candidate Schema, history []Schema) []string {
	if len(history) == 0 || level == None {
		return nil
	}
	first := len(history) - 1
	if level.transitive() {
		first = 0
	}
	var out []string
	for i := len(history) - 1; i >= first; i-- {
		old := fmt.Sprintf("version %d", i+1)
		if level.backward() {
			out = append(out, readable(old, candidate, "the new schema", history[i], old)...)
		}
		if level.forward() {
			out = append(out, readable(old, history[i], old, candidate, "the new schema")...)
		}
	}
	return out
}

// widenings are the dtype changes a reader accepts: a reader of the key reads data
// written with any of the listed dtypes.
var widenings = map[Dtype][]Dtype{
	// Every int64 up to 2^53 is exactly a float64; beyond it the nearest one is read.
	Float64: {Int64},
	// A timestamp is an int64 of epoch seconds; the reverse is not implied, since an
	// arbitrary integer is not a time.
	Int64: {Timestamp},
}

func canRead(reader, writer Dtype) bool {
	return reader == writer || slices.Contains(widenings[reader], writer)
}

// readable lists why data written under writer cannot be read under reader, each
// message starting with prefix (the old version concerned). Columns the writer has and
// the reader lacks are fine: a reader ignores them.
func readable(prefix string, reader Schema, readerName string, writer Schema, writerName string) []string {
	var out []string
	for _, r := range reader.Fields {
		w, ok := writer.Field(r.Name)
		switch {
		case !ok && !r.Optional:
			out = append(out, fmt.Sprintf("%s: column %q is required by %s but absent from %s", prefix, r.Name, readerName, writerName))
			continue
		case !ok:
			continue
		}
		if !canRead(r.Dtype, w.Dtype) {
			out = append(out, fmt.Sprintf("%s: column %q is %s in %s but %s in %s, and %s data cannot be read as %s",
				prefix, r.Name, r.Dtype, readerName, w.Dtype, writerName, w.Dtype, r.Dtype))
		}
		if !r.Optional && w.Optional {
			out = append(out, fmt.Sprintf("%s: column %q is required by %s but optional in %s, whose data may lack it",
				prefix, r.Name, readerName, writerName))
		}
		if r.Enum == nil {
			continue
		}
		if w.Enum == nil {
			out = append(out, fmt.Sprintf("%s: column %q is restricted to %v by %s but unconstrained in %s",
				prefix, r.Name, r.Enum, readerName, writerName))
			continue
		}
		var extra []string
		for _, v := range w.Enum {
			if _, found := slices.BinarySearch(r.Enum, v); !found {
				extra = append(extra, v)
			}
		}
		if extra != nil {
			out = append(out, fmt.Sprintf("%s: column %q allows %q in %s, outside the enumeration %v of %s",
				prefix, r.Name, extra, writerName, r.Enum, readerName))
		}
	}
	return out
}
