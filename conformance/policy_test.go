package conformance

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func report(warnings []string, counts map[string]int) Report {
	r := Empty()
	r.Warnings = append(r.Warnings, warnings...)
	for f, n := range counts {
		r.FlagsCounts[f] = n
	}
	return r
}

func TestPolicies(t *testing.T) {
	gapOnly := report(nil, map[string]int{Gap: 3, DuplicateTS: 2})
	corrupt := report([]string{"column \"volume\": int64 cast to float64"}, map[string]int{NonFinite: 1, Gap: 3, DtypeCast: 1})
	warnOnly := report([]string{"column \"vwap\" is not in the schema: dropped"}, nil)
	for _, tc := range []struct {
		policy Policy
		r      Report
		want   []string
	}{
		{DefaultPolicy(), Empty(), nil},
		{DefaultPolicy(), gapOnly, nil},
		{DefaultPolicy(), corrupt, []string{NonFinite}},
		{DefaultPolicy(), warnOnly, nil},
		{StrictPolicy(), gapOnly, []string{DuplicateTS, Gap}},
		{StrictPolicy(), corrupt, []string{DtypeCast, Gap, NonFinite, "warnings"}},
		{StrictPolicy(), warnOnly, []string{"warnings"}},
		{StrictPolicy(), Empty(), nil},
		{PermissivePolicy(), corrupt, nil},
		{Policy{}, corrupt, nil},
	} {
		if got := tc.policy.Blocking(tc.r); !slices.Equal(got, tc.want) {
			t.Errorf("%s.Blocking(%v) = %v, want %v", tc.policy.Name, tc.r, got, tc.want)
		}
		err := tc.policy.Check(tc.r)
		if (err != nil) != (tc.want != nil) {
			t.Errorf("%s.Check(%v) = %v", tc.policy.Name, tc.r, err)
		}
	}
}

func TestDefaultPolicyBlocksCorruptDataFlags(t *testing.T) {
	want := []string{MissingColumn, DtypeMismatch, InvalidTimestamp, NonFinite, OHLCInconsistent, NegativeVolume, InvalidEnum}
	for _, f := range Flags() {
		got := DefaultPolicy().Blocking(report(nil, map[string]int{f: 1})) != nil
		if got != slices.Contains(want, f) {
			t.Errorf("default policy blocks %s: %v", f, got)
		}
	}
}

func TestPipelineError(t *testing.T) {
	r := report([]string{"a", "b"}, map[string]int{Gap: 4, NonFinite: 1, DuplicateTS: 2})
	err := StrictPolicy().Check(r)
	const msg = "conformance pipeline blocked response (warnings=2, flags=3)"
	if err == nil || err.Error() != msg {
		t.Fatalf("err = %v, want %q", err, msg)
	}
	var pe *PipelineError
	if !errors.As(err, &pe) || pe.Code() != "conformance_blocked" || pe.Report.FlagsCounts[Gap] != 4 {
		t.Fatalf("err %#v does not carry the report and code", err)
	}
}

func TestPolicyByName(t *testing.T) {
	for name, want := range map[string]string{"": DefaultPreset, "default": DefaultPreset, "strict-blocking": StrictPreset, "permissive-dev": PermissivePreset} {
		if p, err := PolicyByName(name); err != nil || p.Name != want {
			t.Errorf("PolicyByName(%q) = %v, %v", name, p.Name, err)
		}
	}
	if _, err := PolicyByName("strict"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func TestReportJSON(t *testing.T) {
	b, err := json.Marshal(Empty())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"warnings":[],"flags_counts":{},"samples":{}}` {
		t.Fatalf("empty report = %s", b)
	}
	_, r, _ := Run(Input{Frame: floatFrame([]int64{1000, 4000, 7000}, 1, 2, 3)}, Options{Interval: 1000})
	b, _ = json.Marshal(r)
	if string(b) != `{"warnings":[],"flags_counts":{"gap":4},"samples":{"gap":[2000,5000]}}` {
		t.Fatalf("report = %s", b)
	}
}

func TestMerge(t *testing.T) {
	a := Report{Warnings: []string{"w1"}, FlagsCounts: map[string]int{Gap: 2, NonFinite: 1}, Samples: map[string][]int64{Gap: {1, 2, 3}}}
	b := Report{Warnings: []string{"w2"}, FlagsCounts: map[string]int{Gap: 3}, Samples: map[string][]int64{Gap: {3, 4, 5, 6}}}
	aCopy := Report{Warnings: slices.Clone(a.Warnings), FlagsCounts: map[string]int{Gap: 2, NonFinite: 1}, Samples: map[string][]int64{Gap: {1, 2, 3}}}
	m := Merge(a, b, Report{})
	if !slices.Equal(m.Warnings, []string{"w1", "w2"}) || m.FlagsCounts[Gap] != 5 || m.FlagsCounts[NonFinite] != 1 {
		t.Fatalf("merge = %+v", m)
	}
	if !slices.Equal(m.Samples[Gap], []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("merged samples = %v", m.Samples[Gap])
	}
	if a.FlagsCounts[Gap] != aCopy.FlagsCounts[Gap] || !slices.Equal(a.Samples[Gap], aCopy.Samples[Gap]) {
		t.Fatal("Merge modified its argument")
	}
	if e := Merge(); e.FlagsCounts == nil || !e.Clean() {
		t.Fatalf("Merge() = %+v", e)
	}
}

// TestPresetsFromYAML: the presets come from presets.yaml with the reference's
// partial_ok: strict-blocking refuses even requests with partial_ok, the others let
// partial_ok serve the normalised frame.
func TestPresetsFromYAML(t *testing.T) {
	blocking := []string{NonFinite}
	for _, tc := range []struct {
		policy                Policy
		allowPartial          bool
		refuse, refusePartial bool
	}{
		{DefaultPolicy(), true, true, false},
		{StrictPolicy(), false, true, true},
		{PermissivePolicy(), true, true, false},
	} {
		if tc.policy.AllowPartial != tc.allowPartial {
			t.Errorf("%s: partial_ok %v", tc.policy.Name, tc.policy.AllowPartial)
		}
		if got := tc.policy.Refuses(blocking, false); got != tc.refuse {
			t.Errorf("%s refuses without partial_ok: %v", tc.policy.Name, got)
		}
		if got := tc.policy.Refuses(blocking, true); got != tc.refusePartial {
			t.Errorf("%s refuses with partial_ok: %v", tc.policy.Name, got)
		}
		if tc.policy.Refuses(nil, false) {
			t.Errorf("%s refuses without findings", tc.policy.Name)
		}
	}
	// Callers get copies: changing one does not change the preset.
	p := DefaultPolicy()
	p.Block[0] = "changed"
	if DefaultPolicy().Block[0] == "changed" {
		t.Fatal("DefaultPolicy shares its flag list")
	}
	for _, bad := range []string{"default: {block: [nope]}\nstrict-blocking: {}\npermissive-dev: {}", "default: {blok: []}", "strict-blocking: {}"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("presets %q loaded", bad)
				}
			}()
			mustLoadPresets(bad)
		}()
	}
}
