package schemaregistry_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	sr "github.com/seamless-data/seamless/schemaregistry"
)

// base is the schema every change in the matrix starts from.
var base = []sr.Field{
	{Name: "ts", Dtype: sr.Int64},
	{Name: "close", Dtype: sr.Float64},
	{Name: "volume", Dtype: sr.Float64, Optional: true},
	{Name: "count", Dtype: sr.Int64},
	{Name: "open_time", Dtype: sr.Timestamp},
	{Name: "side", Dtype: sr.String, Enum: []string{"buy", "sell"}},
}

// change returns base edited by edit.
func change(t *testing.T, edit func(fs []sr.Field) []sr.Field) sr.Schema {
	t.Helper()
	fs := slices.Clone(base)
	for i := range fs {
		fs[i].Enum = slices.Clone(fs[i].Enum)
	}
	s, err := sr.New(edit(fs)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func set(name string, f func(*sr.Field)) func([]sr.Field) []sr.Field {
	return func(fs []sr.Field) []sr.Field {
		for i := range fs {
			if fs[i].Name == name {
				f(&fs[i])
			}
		}
		return fs
	}
}

func without(name string) func([]sr.Field) []sr.Field {
	return func(fs []sr.Field) []sr.Field {
		return slices.DeleteFunc(fs, func(f sr.Field) bool { return f.Name == name })
	}
}

func with(f sr.Field) func([]sr.Field) []sr.Field {
	return func(fs []sr.Field) []sr.Field { return append(fs, f) }
}

// TestCompatibilityMatrix checks each level against each kind of change between two
// versions. backward: the new schema reads data written under the old; forward: the
// old reads the new's.
func TestCompatibilityMatrix(t *testing.T) {
	changes := []struct {
		name              string
		column            string // named in every message
		edit              func([]sr.Field) []sr.Field
		backward, forward bool
	}{
		{"add optional column", "", with(sr.Field{Name: "vwap", Dtype: sr.Float64, Optional: true}), true, true},
		{"add required column", "vwap", with(sr.Field{Name: "vwap", Dtype: sr.Float64}), false, true},
		{"remove optional column", "", without("volume"), true, true},
		{"remove required column", "close", without("close"), true, false},
		{"make optional column required", "volume", set("volume", func(f *sr.Field) { f.Optional = false }), false, true},
		{"make required column optional", "close", set("close", func(f *sr.Field) { f.Optional = true }), true, false},
		{"widen int64 to float64", "count", set("count", func(f *sr.Field) { f.Dtype = sr.Float64 }), true, false},
		{"narrow float64 to int64", "close", set("close", func(f *sr.Field) { f.Dtype = sr.Int64 }), false, true},
		{"timestamp to int64", "open_time", set("open_time", func(f *sr.Field) { f.Dtype = sr.Int64 }), true, false},
		{"int64 to timestamp", "count", set("count", func(f *sr.Field) { f.Dtype = sr.Timestamp }), false, true},
		{"float64 to string", "close", set("close", func(f *sr.Field) { f.Dtype = sr.String }), false, false},
		{"narrow enumeration", "side", set("side", func(f *sr.Field) { f.Enum = []string{"buy"} }), false, true},
		{"widen enumeration", "side", set("side", func(f *sr.Field) { f.Enum = []string{"buy", "sell", "auction"} }), true, false},
		{"drop enumeration", "side", set("side", func(f *sr.Field) { f.Enum = nil }), true, false},
		{"rename column", "", func(fs []sr.Field) []sr.Field {
			return set("close", func(f *sr.Field) { f.Name = "last" })(fs)
		}, false, false},
		{"no change but field order and dtype spelling", "", func(fs []sr.Field) []sr.Field {
			slices.Reverse(fs)
			fs[0].Dtype = "TEXT"
			return fs
		}, true, true},
	}
	old, err := sr.New(base...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		next := change(t, c.edit)
		for _, level := range sr.Levels {
			t.Run(fmt.Sprintf("%s/%s", c.name, level), func(t *testing.T) {
				want := true
				switch level {
				case sr.Backward, sr.BackwardTransitive:
					want = c.backward
				case sr.Forward, sr.ForwardTransitive:
					want = c.forward
				case sr.Full, sr.FullTransitive:
					want = c.backward && c.forward
				}
				msgs := sr.Check(level, next, []sr.Schema{old})
				if got := len(msgs) == 0; got != want {
					t.Fatalf("compatible = %v, want %v; messages %q", got, want, msgs)
				}
				for _, m := range msgs {
					if !strings.HasPrefix(m, "version 1:") || c.column != "" && !strings.Contains(m, fmt.Sprintf("%q", c.column)) {
						t.Errorf("message %q does not name version 1 and column %q", m, c.column)
					}
				}
			})
		}
	}
}

// TestCompatibilityTransitive: over three versions, v3 is compatible with v2 in both
// directions but not with v1, so every level accepts v3 and every transitive level
// rejects it, naming version 1.
func TestCompatibilityTransitive(t *testing.T) {
	v1 := sr.MustParse(`{"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"},{"name":"x","dtype":"string","required":false}]}`)
	v2 := sr.MustParse(`{"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"}]}`)
	v3 := sr.MustParse(`{"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"},{"name":"x","dtype":"float64","required":false}]}`)
	history := []sr.Schema{v1, v2}
	for _, level := range sr.Levels {
		msgs := sr.Check(level, v3, history)
		transitive := strings.HasSuffix(string(level), "_TRANSITIVE")
		if got := len(msgs) > 0; got != transitive {
			t.Errorf("%s: incompatible = %v, want %v (%q)", level, got, transitive, msgs)
		}
		for _, m := range msgs {
			if !strings.HasPrefix(m, "version 1:") || !strings.Contains(m, `"x"`) {
				t.Errorf("%s: message %q does not blame version 1's column x", level, m)
			}
		}
	}
	// FULL_TRANSITIVE finds both directions' problems.
	if msgs := sr.Check(sr.FullTransitive, v3, history); len(msgs) != 2 {
		t.Errorf("FULL_TRANSITIVE messages = %q, want 2 (string→float64 both ways)", msgs)
	}
}

func TestParseLevel(t *testing.T) {
	if l, err := sr.ParseLevel(" full_transitive "); err != nil || l != sr.FullTransitive {
		t.Errorf("ParseLevel = %v, %v", l, err)
	}
	if _, err := sr.ParseLevel("SIDEWAYS"); sr.ErrorCode(err) != sr.CodeBadRequest {
		t.Errorf("ParseLevel(SIDEWAYS) = %v", err)
	}
}
