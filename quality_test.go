package seamless_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
	"github.com/seamless-data/seamless/store/pebblestore"
)

// dirtySource returns demo bars with defects: a NaN close, an off-grid row and a
// duplicated bar (the later copy is the one to keep).
type dirtySource struct{}

func (dirtySource) Fetch(_ context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	f := demo.Bars(s.NodeID, s.Interval, r).Clone()
	at := func(ts int64) int {
		if i := f.SearchTS(ts); i < f.Len() && f.TS[i] == ts {
			return i
		}
		return -1
	}
	if i := at(day(1) + 180); i >= 0 {
		f.Col("close").F64[i] = math.NaN()
	}
	if i := at(day(1) + 300); i >= 0 {
		dup := f.Slice(i, i+1).Clone()
		dup.Col("volume").F64[0] = 42
		f.AppendRows(dup, 0, 1)
	}
	if i := at(day(1) + 420); i >= 0 {
		off := f.Slice(i, i+1).Clone()
		off.TS[0]++
		f.AppendRows(off, 0, 1)
	}
	return f, nil
}

func TestConformanceBlocksCorruptData(t *testing.T) {
	e := newEnv(t, seamless.Config{Sources: seamless.Sources{"demo": dirtySource{}}})
	ctx := context.Background()
	r := req(day(1), day(1)+3600, seamless.AutoBackfill)
	_, err := e.p.Fetch(ctx, r)
	var pe *conformance.PipelineError
	if !errors.As(err, &pe) || seamless.ErrorCode(err) != "conformance_blocked" || pe.Report.FlagsCounts["non_finite"] == 0 {
		t.Fatalf("err = %v, want conformance_blocked on non_finite", err)
	}
	if last, ok := e.p.LastConformanceReport(); !ok || last.FlagsCounts["non_finite"] == 0 {
		t.Fatalf("LastConformanceReport = %+v", last)
	}
	// Stored data is normalised: the off-grid row is gone and the duplicate kept last.
	stored, _ := e.store.Read(ctx, seamless.Series{NodeID: node, Interval: iv}, grid.R(day(1), day(1)+3600))
	if !stored.IsSortedUnique() || stored.Len() != 60 {
		t.Fatalf("stored %d rows, sorted/unique %v", stored.Len(), stored.IsSortedUnique())
	}
	if v := stored.Col("volume").F64[stored.SearchTS(day(1)+300)]; v != 42 {
		t.Fatalf("duplicate ts kept volume %v, want the last row's 42", v)
	}
	r.PartialOK = true
	res, err := e.p.Fetch(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	md := res.Metadata
	if md.ConformanceVersion != "v2" || md.ConformanceFlags["non_finite"] == 0 || res.Frame.Len() != 60 {
		t.Fatalf("partial_ok metadata %+v", md)
	}
	r.PartialOK = false
	r.Conformance = "permissive-dev"
	if _, err := e.p.Fetch(ctx, r); err != nil {
		t.Fatalf("permissive-dev blocked: %v", err)
	}
	r.Conformance = "paranoid"
	if _, err := e.p.Fetch(ctx, r); seamless.ErrorCode(err) != "bad_request" {
		t.Fatalf("unknown conformance preset: %v", err)
	}
}

func TestMarketGapsAreKnownGaps(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	e.fetch.gap = grid.R(day(1)+600, day(1)+1200)
	ctx := context.Background()
	res, err := e.p.Fetch(ctx, req(day(1), day(1)+3600, seamless.AutoBackfill))
	if err != nil {
		t.Fatal(err)
	}
	md := res.Metadata
	if md.ConformanceFlags["gap"] != 10 || md.ConformanceFlags["known_gap"] != 10 || md.CoverageRatio != 1 {
		t.Fatalf("market gap: %+v", md)
	}
	r := req(day(1), day(1)+3600, seamless.FailFast)
	r.Conformance = "strict-blocking" // blocks on every finding, as the reference does
	if _, err := e.p.Fetch(ctx, r); seamless.ErrorCode(err) != "conformance_blocked" {
		t.Fatalf("strict-blocking let a gap through: %v", err)
	}
	// Its partial_ok: false (presets.yaml) refuses even a request with partial_ok; the
	// default preset lets such a request have the normalised bars.
	r.PartialOK = true
	if _, err := e.p.Fetch(ctx, r); seamless.ErrorCode(err) != "conformance_blocked" {
		t.Fatalf("strict-blocking with partial_ok let a gap through: %v", err)
	}
	r.Conformance = "permissive-dev"
	if _, err := e.p.Fetch(ctx, r); err != nil {
		t.Fatalf("permissive-dev: %v", err)
	}
}

// TestFingerprintSameAcrossStores: the same data served from the memory store and the
// embedded store has the same dataset fingerprint.
func TestFingerprintSameAcrossStores(t *testing.T) {
	ctx := context.Background()
	pb, err := pebblestore.Open(t.TempDir(), pebblestore.Options{CacheSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	var fps []string
	for _, st := range []seamless.Store{memstore.New(), pb} {
		src, _ := demo.New(demo.Options{})
		p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}})
		if err != nil {
			t.Fatal(err)
		}
		r := req(day(3), day(1), seamless.Seamless)
		r.Fingerprint = true
		res, err := p.Fetch(ctx, r)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		fps = append(fps, res.Metadata.DatasetFingerprint)
	}
	if fps[0] == "" || fps[0] != fps[1] {
		t.Fatalf("fingerprints differ across stores: %v", fps)
	}
}
