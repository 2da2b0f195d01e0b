package grid

import "testing"

// BenchmarkPlanMissing10kFragments is the planner's arithmetic against a fragmented
// coverage set: missing = request − coverage, then aligned chunks of the missing ranges.
func BenchmarkPlanMissing10kFragments(b *testing.B) {
	const iv = 60
	rs := make([]Range, 10_000)
	for i := range rs {
		s := int64(i) * 100 * iv // 60 bars covered, 40 missing, repeated
		rs[i] = R(s, s+60*iv)
	}
	cov := NewSet(rs...)
	req := R(0, 10_000*100*iv)
	b.ReportAllocs()
	for b.Loop() {
		missing := cov.Missing(req)
		n := 0
		for _, r := range missing.Ranges() {
			for range r.ChunkSeq(900 * iv) {
				n++
			}
		}
		if missing.Len() != 10_000 || n < 10_000 {
			b.Fatalf("missing %d fragments, %d chunks", missing.Len(), n)
		}
	}
}
