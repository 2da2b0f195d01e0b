package grid

import (
	"math"
	"testing"
)

func TestAlign(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Range
		step int64
		want Range
		bars int64
	}{
		{"aligned", R(0, 300), 60, R(0, 300), 5},
		{"unaligned start rounds up", R(1, 300), 60, R(60, 300), 4},
		{"unaligned end keeps grid points before it", R(0, 301), 60, R(0, 360), 6},
		{"no grid point inside", R(1, 59), 60, Range{}, 0},
		{"single point", R(59, 61), 60, R(60, 120), 1},
		{"negative", R(-121, -60), 60, R(-120, -60), 1},
		{"empty", R(10, 10), 60, Range{}, 0},
		{"inverted", R(10, 0), 60, Range{}, 0},
		{"whole int64 line", R(math.MinInt64, math.MaxInt64), 1 << 62, R(-(1 << 63), 1<<62), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Align(tc.step); got != tc.want {
				t.Fatalf("Align(%v, %d) = %v, want %v", tc.r, tc.step, got, tc.want)
			}
			if got := tc.r.Bars(tc.step); got != tc.bars {
				t.Fatalf("Bars(%v, %d) = %d, want %d", tc.r, tc.step, got, tc.bars)
			}
		})
	}
}

func TestChunks(t *testing.T) {
	got := R(50, 250).Chunks(100)
	want := []Range{R(0, 100), R(100, 200), R(200, 300)}
	if len(got) != len(want) {
		t.Fatalf("Chunks = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Chunks = %v, want %v", got, want)
		}
	}
	if c := R(-150, -50).Chunks(100); len(c) != 2 || c[0] != R(-200, -100) || c[1] != R(-100, 0) {
		t.Fatalf("negative Chunks = %v", c)
	}
	if c := R(math.MaxInt64-5, math.MaxInt64).Chunks(100); len(c) != 1 || c[0].End != math.MaxInt64 {
		t.Fatalf("Chunks at end of time = %v", c)
	}
}

func TestSetAlgebra(t *testing.T) {
	s := NewSet(R(0, 10), R(20, 30), R(10, 15), R(40, 40), R(25, 35))
	if want := NewSet(R(0, 15), R(20, 35)); !s.Equal(want) {
		t.Fatalf("NewSet normalised to %v, want %v", s, want)
	}
	for _, tc := range []struct {
		name string
		got  Set
		want Set
	}{
		{"add bridging", s.Add(R(15, 20)), NewSet(R(0, 35))},
		{"add touching end", s.Add(R(35, 36)), NewSet(R(0, 15), R(20, 36))},
		{"add disjoint", s.Add(R(50, 60)), NewSet(R(0, 15), R(20, 35), R(50, 60))},
		{"add inside", s.Add(R(1, 2)), s},
		{"subtract middle", s.Subtract(NewSet(R(5, 25))), NewSet(R(0, 5), R(25, 35))},
		{"subtract all", s.Subtract(NewSet(R(-1, 100))), Set{}},
		{"subtract nothing", s.Subtract(Set{}), s},
		{"intersect", s.Intersect(NewSet(R(10, 22), R(30, 50))), NewSet(R(10, 15), R(20, 22), R(30, 35))},
		{"intersect range", s.IntersectRange(R(10, 22)), NewSet(R(10, 15), R(20, 22))},
		{"missing", s.Missing(R(-5, 40)), NewSet(R(-5, 0), R(15, 20), R(35, 40))},
		{"missing covered", s.Missing(R(1, 14)), Set{}},
		{"union", s.Union(NewSet(R(14, 21))), NewSet(R(0, 35))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.got.Equal(tc.want) {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	if !s.Covers(R(20, 35)) || s.Covers(R(14, 21)) || !s.Covers(R(3, 3)) {
		t.Fatal("Covers wrong")
	}
	if !s.Contains(0) || s.Contains(15) || !s.Contains(34) || s.Contains(35) {
		t.Fatal("Contains wrong")
	}
	if s.Seconds() != 30 || s.Bounds() != R(0, 35) || s.Len() != 2 {
		t.Fatalf("Seconds/Bounds/Len = %d %v %d", s.Seconds(), s.Bounds(), s.Len())
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1700000000", 1700000000, true},
		{"-60", -60, true},
		{"2024-01-01T00:00:00Z", 1704067200, true},
		{"2024-01-01T01:00:00+01:00", 1704067200, true},
		{"1969-12-31T23:59:59.5Z", -1, true},
		{"yesterday", 0, false},
		{"", 0, false},
		{"2024-13-01T00:00:00Z", 0, false},
	} {
		got, err := ParseTime(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseTime(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// fuzzSet builds a Set from fuzz bytes: pairs of small signed offsets, so fragments
// collide, touch and nest often.
func fuzzSet(data []byte) Set {
	var rs []Range
	for i := 0; i+1 < len(data); i += 2 {
		a := int64(int8(data[i]))
		rs = append(rs, R(a, a+int64(data[i+1]%32)))
	}
	return NewSet(rs...)
}

func checkNormal(t *testing.T, name string, s Set) {
	t.Helper()
	for i, r := range s.rs {
		if r.Empty() {
			t.Fatalf("%s: empty fragment %v in %v", name, r, s)
		}
		if i > 0 && s.rs[i-1].End >= r.Start {
			t.Fatalf("%s: fragments overlap or touch in %v", name, s)
		}
	}
}

func FuzzSetAlgebra(f *testing.F) {
	f.Add([]byte{0, 10, 20, 5}, []byte{5, 20}, int64(-10), int64(40))
	f.Add([]byte{}, []byte{1, 1}, int64(0), int64(0))
	f.Add([]byte{250, 31, 3, 3, 3, 7}, []byte{0, 31, 40, 2}, int64(-128), int64(200))
	f.Fuzz(func(t *testing.T, a, b []byte, rs, re int64) {
		s, o := fuzzSet(a), fuzzSet(b)
		req := R(rs%300, re%300)
		for name, x := range map[string]Set{
			"s": s, "union": s.Union(o), "intersect": s.Intersect(o),
			"subtract": s.Subtract(o), "missing": s.Missing(req), "add": s.Add(req),
		} {
			checkNormal(t, name, x)
		}
		// covered ∪ missing == request, and the two are disjoint.
		reqSet := NewSet(req)
		covered, missing := s.IntersectRange(req), s.Missing(req)
		if !covered.Union(missing).Equal(reqSet) {
			t.Fatalf("covered %v ∪ missing %v != request %v", covered, missing, req)
		}
		if !covered.Intersect(missing).Empty() {
			t.Fatalf("covered %v and missing %v overlap", covered, missing)
		}
		if !covered.Equal(s.Intersect(reqSet)) {
			t.Fatalf("IntersectRange %v != Intersect %v", covered, s.Intersect(reqSet))
		}
		// Idempotence and absorption.
		if !s.Union(s).Equal(s) || !s.Intersect(s).Equal(s) || !s.Subtract(s).Empty() {
			t.Fatalf("idempotence broken for %v", s)
		}
		if !s.Add(req).Equal(s.Union(reqSet)) {
			t.Fatalf("Add %v != Union for %v", req, s)
		}
		// (s − o) ∪ (s ∩ o) == s, pieces disjoint.
		d, i := s.Subtract(o), s.Intersect(o)
		if !d.Union(i).Equal(s) || !d.Intersect(i).Empty() {
			t.Fatalf("s−o=%v, s∩o=%v do not partition s=%v", d, i, s)
		}
		// Seconds agree with a point count on the small domain the fuzz sets live in.
		u := s.Union(o)
		var n int64
		for p := int64(-200); p < 300; p++ {
			if u.Contains(p) != (s.Contains(p) || o.Contains(p)) {
				t.Fatalf("Contains(%d) disagrees for union %v of %v and %v", p, u, s, o)
			}
			if u.Contains(p) {
				n++
			}
		}
		if n != u.Seconds() {
			t.Fatalf("Seconds %d != counted %d for %v", u.Seconds(), n, u)
		}
	})
}

func FuzzChunksAlign(f *testing.F) {
	f.Add(int64(50), int64(250), int64(100), int64(60))
	f.Add(int64(-1), int64(1), int64(7), int64(3))
	f.Add(int64(math.MinInt64), int64(math.MaxInt64), int64(54000), int64(60))
	f.Add(int64(math.MinInt64+5), int64(math.MinInt64+200), int64(900), int64(60))
	f.Fuzz(func(t *testing.T, s, e, width, step int64) {
		if width <= 0 || step <= 0 {
			return
		}
		r := R(s, e)
		if uint64(r.Len())/uint64(width) <= 10000 { // else too many chunks to check
			chunks := r.Chunks(width)
			if r.Empty() != (len(chunks) == 0) {
				t.Fatalf("Chunks(%v, %d) = %v", r, width, chunks)
			}
			var parts []Range
			for i, c := range chunks {
				if c.Start%width != 0 && c.Start != math.MinInt64 {
					t.Fatalf("chunk %v not aligned to %d", c, width)
				}
				if i > 0 && chunks[i-1].End != c.Start {
					t.Fatalf("chunks not contiguous: %v", chunks)
				}
				parts = append(parts, c.Intersect(r))
			}
			if !r.Empty() && !NewSet(parts...).Equal(NewSet(r)) {
				t.Fatalf("chunks of %v reassemble to %v", r, NewSet(parts...))
			}
		}
		if n := r.Bars(step); n < 0 || (n > 0) != !r.Align(step).Empty() {
			t.Fatalf("Bars(%v, %d) = %d", r, step, n)
		}
		if r.Len() < 0 {
			t.Fatalf("Len(%v) = %d", r, r.Len())
		}
		a := r.Align(step)
		if !a.Empty() && (a.Start%step != 0 || a.End%step != 0 && a.End != math.MaxInt64 || a.Start < r.Start) {
			t.Fatalf("Align(%v, %d) = %v", r, step, a)
		}
		// A range as long as a step holds a grid point (up to the top of int64, where
		// CeilAlign saturates).
		if uint64(r.Len()) >= uint64(step) && r.End < math.MaxInt64-step && r.Bars(step) < 1 {
			t.Fatalf("Bars(%v, %d) = %d for a range of %d", r, step, r.Bars(step), r.Len())
		}
		minInt := int64(math.MinInt64)
		for _, x := range []int64{s, e} {
			fl, cl := FloorAlign(x, step), CeilAlign(x, step)
			if fl%step != 0 || cl%step != 0 && cl < math.MaxInt64-step {
				t.Fatalf("FloorAlign/CeilAlign(%d, %d) = %d, %d: not multiples", x, step, fl, cl)
			}
			if fl > x && uint64(x)-uint64(minInt) >= uint64(step) {
				t.Fatalf("FloorAlign(%d, %d) = %d above t with a multiple below it", x, step, fl)
			}
			if d := uint64(fl) - uint64(x); fl > x && d >= uint64(step) || fl <= x && uint64(x)-uint64(fl) >= uint64(step) {
				t.Fatalf("FloorAlign(%d, %d) = %d: a step or more away", x, step, fl)
			}
			if cl < x && x <= math.MaxInt64-step {
				t.Fatalf("CeilAlign(%d, %d) = %d below t", x, step, cl)
			}
		}
	})
}

func TestSetBars(t *testing.T) {
	for _, tc := range []struct {
		s    Set
		step int64
		want int64
	}{
		{Set{}, 60, 0},
		{NewSet(R(0, 600)), 60, 10},
		{NewSet(R(0, 600), R(1200, 1290)), 60, 12}, // [1200, 1290) holds 1200 and 1260
		{NewSet(R(30, 90)), 60, 1},
		{NewSet(R(math.MinInt64, 0), R(1, math.MaxInt64)), 1, math.MaxInt64},
	} {
		if got := tc.s.Bars(tc.step); got != tc.want {
			t.Errorf("%v.Bars(%d) = %d, want %d", tc.s, tc.step, got, tc.want)
		}
	}
}
