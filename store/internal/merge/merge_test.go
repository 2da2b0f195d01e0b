package merge

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/seamless-data/seamless/frame"
)

func frameOf(ts []int64, tag float64) *frame.Frame {
	s := frame.Schema{Fields: []frame.Field{{Name: "v", Type: frame.Float64}}}
	f := frame.New(s, len(ts))
	for _, t := range ts {
		f.TS = append(f.TS, t)
		f.Cols[0].F64 = append(f.Cols[0].F64, float64(t)+tag)
	}
	return f
}

func randomTS(rng *rand.Rand) []int64 {
	var ts []int64
	for t := int64(0); t < 40; t++ {
		if rng.IntN(3) == 0 {
			ts = append(ts, t)
		}
	}
	return ts
}

func TestUpsertMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		oldTS, addTS := randomTS(rng), randomTS(rng)
		want := map[int64]float64{}
		for _, x := range oldTS {
			want[x] = float64(x)
		}
		for _, x := range addTS {
			want[x] = float64(x) + 0.5
		}
		var old *frame.Frame
		if rng.IntN(5) > 0 {
			old = frameOf(oldTS, 0)
		}
		if old == nil {
			want = map[int64]float64{}
			for _, x := range addTS {
				want[x] = float64(x) + 0.5
			}
		}
		got := Upsert(old, frameOf(addTS, 0.5))
		if !got.IsSortedUnique() || got.Len() != len(want) {
			t.Fatalf("Upsert(%v, %v) = ts %v", oldTS, addTS, got.TS)
		}
		keys := slices.Sorted(maps.Keys(want))
		for i, k := range keys {
			if got.TS[i] != k || got.Cols[0].F64[i] != want[k] {
				t.Fatalf("Upsert(%v, %v) row %d = (%d, %v), want (%d, %v)", oldTS, addTS, i, got.TS[i], got.Cols[0].F64[i], k, want[k])
			}
		}
	}
}
