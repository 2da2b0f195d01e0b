package seamless

import "testing"

func TestMergeDecisions(t *testing.T) {
	for _, tc := range []struct {
		in   []decision
		want decision
		ok   bool
	}{
		{nil, decision{}, false},
		{[]decision{{ViolationPartialFill, ReasonSLAViolation}}, decision{ViolationPartialFill, ReasonSLAViolation}, true},
		{[]decision{{ViolationPartialFill, ReasonSLAViolation}, {ViolationHold, ReasonCoverageBreach}}, decision{ViolationHold, ReasonCoverageBreach}, true},
		{[]decision{{ViolationHold, ReasonSLAViolation}, {ViolationHold, ReasonFreshness}}, decision{ViolationHold, ReasonSLAViolation}, true},
	} {
		got, ok := merge(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("merge(%v) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
