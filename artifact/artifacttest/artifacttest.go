// Package artifacttest is the contract every artifact.Registrar passes: round trips
// that preserve the frame bit for bit and its fingerprint, idempotent first-writer-wins
// publication, node isolation for hostile node ids, and the typed errors.
package artifacttest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/fingerprint"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Epoch is the fake clock's start in every contract test.
var Epoch = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// Open returns a new, empty registrar whose created_at comes from clk.
type Open func(t *testing.T, clk clock.Clock) artifact.Registrar

// Run runs the contract against registrars from open.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"RoundTripOHLCV", testRoundTripOHLCV},
		{"RoundTripMixedTypes", testRoundTripMixed},
		{"RoundTripEmpty", testRoundTripEmpty},
		{"Idempotent", testIdempotent},
		{"ConcurrentPublishFirstWins", testConcurrentPublish},
		{"ListOrderAndIsolation", testListOrderAndIsolation},
		{"HostileNodeIDs", testHostileNodeIDs},
		{"Errors", testErrors},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// OHLCV returns n bars of interval seconds from start with awkward values: NaN, ±Inf,
// -0, subnormals and values whose repr needs all 17 digits.
func OHLCV(start, interval int64, n int) *frame.Frame {
	f := frame.New(frame.OHLCV, n)
	special := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 5e-324, math.Nextafter(0.3, 1), 1e16, 1e-7}
	for i := range n {
		f.TS = append(f.TS, start+int64(i)*interval)
		p := 100 + float64(i%1000)/100
		for c := range f.Cols {
			v := p + float64(c)/4
			if i%97 == 0 {
				v = special[(i/97+c)%len(special)]
			}
			f.Cols[c].F64 = append(f.Cols[c].F64, v)
		}
	}
	return f
}

// Equal reports how a and b differ (schema, ts, or a value compared bit for bit, so
// NaN equals NaN and -0 differs from 0), or "" when they are identical.
func Equal(a, b *frame.Frame) string {
	if !a.Schema().Equal(b.Schema()) {
		return fmt.Sprintf("schema %v vs %v", a.Schema(), b.Schema())
	}
	if a.Len() != b.Len() {
		return fmt.Sprintf("%d vs %d rows", a.Len(), b.Len())
	}
	for i := range a.TS {
		if a.TS[i] != b.TS[i] {
			return fmt.Sprintf("row %d: ts %d vs %d", i, a.TS[i], b.TS[i])
		}
	}
	for c := range a.Cols {
		x, y := &a.Cols[c], &b.Cols[c]
		for i := range a.TS {
			var same bool
			switch x.Type {
			case frame.Float64:
				same = math.Float64bits(x.F64[i]) == math.Float64bits(y.F64[i])
			case frame.Int64:
				same = x.I64[i] == y.I64[i]
			case frame.String:
				same = x.Str[i] == y.Str[i]
			case frame.Bool:
				same = x.Bool[i] == y.Bool[i]
			}
			if !same {
				return fmt.Sprintf("row %d column %s differs", i, x.Name)
			}
		}
	}
	return ""
}

func publishGet(t *testing.T, r artifact.Registrar, a artifact.Artifact) (artifact.Manifest, *frame.Frame) {
	t.Helper()
	ctx := context.Background()
	m, err := r.Publish(ctx, a)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	gm, f, err := r.Get(ctx, a.NodeID, m.DatasetFingerprint)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(gm, m) {
		t.Errorf("Get manifest differs from Publish's:\n got %+v\nwant %+v", gm, m)
	}
	if d := Equal(f, a.Frame); d != "" {
		t.Errorf("frame read back differs: %s", d)
	}
	meta := fingerprint.Meta{NodeID: gm.NodeID, Interval: gm.Interval, CoverageBounds: gm.CoverageBounds}
	if fp := fingerprint.Dataset(f, meta); fp != m.DatasetFingerprint {
		t.Errorf("fingerprint recomputed from the read frame %s, manifest %s", fp, m.DatasetFingerprint)
	}
	return m, f
}

func testRoundTripOHLCV(t *testing.T, open Open) {
	clk := clock.NewFake(Epoch)
	r := open(t, clk)
	const iv, n = 60, 20_000
	start := int64(1_700_000_040)
	a := artifact.Artifact{
		NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: iv,
		Range:            grid.R(start-iv, start+n*iv+30),
		Frame:            OHLCV(start, iv, n),
		AsOf:             time.Date(2024, 3, 1, 0, 0, 0, 0, time.FixedZone("KST", 9*3600)),
		ConformanceFlags: map[string]int{"gap": 2, "non_finite": 3},
		Producer:         "artifacttest",
	}
	m, _ := publishGet(t, r, a)
	bounds := [2]int64{start, start + n*iv}
	want := artifact.Manifest{
		NodeID: a.NodeID, Interval: iv, Range: [2]int64{a.Range.Start, a.Range.End}, Rows: n,
		CoverageBounds:     &bounds,
		DatasetFingerprint: fingerprint.Dataset(a.Frame, fingerprint.Meta{NodeID: a.NodeID, Interval: iv, CoverageBounds: &bounds}),
		ConformanceVersion: "v2",
		AsOf:               a.AsOf.UTC(),
		ConformanceFlags:   a.ConformanceFlags,
		Producer:           "artifacttest",
		CreatedAt:          Epoch,
		Files:              artifact.Files{Data: "data.parquet"},
		URI:                m.URI,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("manifest\n got %+v\nwant %+v", m, want)
	}
	if !strings.HasSuffix(m.URI, "/manifest.json") {
		t.Errorf("manifest URI %q", m.URI)
	}
}

func testRoundTripMixed(t *testing.T, open Open) {
	r := open(t, clock.NewFake(Epoch))
	s := frame.Schema{Fields: []frame.Field{
		{Name: "price", Type: frame.Float64}, {Name: "size", Type: frame.Float64},
		{Name: "side", Type: frame.String}, {Name: "seq", Type: frame.Int64}, {Name: "maker", Type: frame.Bool},
	}}
	f := frame.New(s, 4)
	f.TS = append(f.TS, 10, 11, 12, 13)
	f.Cols[0].F64 = append(f.Cols[0].F64, 1.5, math.NaN(), 2.25, 1e300)
	f.Cols[1].F64 = append(f.Cols[1].F64, 0.001, 2, math.Inf(1), 3)
	f.Cols[2].Str = append(f.Cols[2].Str, "buy", "", "sell \"é€😀\"\n", "\x00")
	f.Cols[3].I64 = append(f.Cols[3].I64, math.MinInt64, -1, 0, math.MaxInt64)
	f.Cols[4].Bool = append(f.Cols[4].Bool, true, false, false, true)
	m, _ := publishGet(t, r, artifact.Artifact{NodeID: "trades:x:é", Interval: 1, Range: grid.R(10, 14), Frame: f})
	if m.AsOf != Epoch {
		t.Errorf("zero as_of should default to the publication time, got %v", m.AsOf)
	}
	if m.ConformanceFlags == nil {
		t.Error("conformance_flags should be an empty object, not null")
	}
}

func testRoundTripEmpty(t *testing.T, open Open) {
	r := open(t, clock.NewFake(Epoch))
	m, f := publishGet(t, r, artifact.Artifact{NodeID: "ohlcv:x:y:1m", Interval: 60, Range: grid.R(0, 600), Frame: frame.New(frame.OHLCV, 0)})
	if m.Rows != 0 || m.CoverageBounds != nil {
		t.Errorf("empty artifact: rows %d, coverage_bounds %v", m.Rows, m.CoverageBounds)
	}
	if !f.Schema().Equal(frame.OHLCV) {
		t.Errorf("empty artifact lost its schema: %v", f.Schema())
	}
}

func testIdempotent(t *testing.T, open Open) {
	ctx := context.Background()
	clk := clock.NewFake(Epoch)
	r := open(t, clk)
	a := artifact.Artifact{NodeID: "ohlcv:x:y:1m", Interval: 60, Range: grid.R(0, 6000), Frame: OHLCV(0, 60, 100), Producer: "first"}
	first, err := r.Publish(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	a.Producer = "second"
	a.Frame = a.Frame.Clone() // equal data, different memory
	again, err := r.Publish(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, first) {
		t.Errorf("republishing returned\n%+v\nwant the stored\n%+v", again, first)
	}
	list, err := r.List(ctx, a.NodeID)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], first) {
		t.Errorf("List after republishing = %+v, %v", list, err)
	}
}

func testConcurrentPublish(t *testing.T, open Open) {
	ctx := context.Background()
	r := open(t, clock.NewFake(Epoch))
	const n = 8
	var wg sync.WaitGroup
	ms := make([]artifact.Manifest, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			a := artifact.Artifact{NodeID: "ohlcv:race:y:1m", Interval: 60, Range: grid.R(0, 60_000), Frame: OHLCV(0, 60, 1000), Producer: fmt.Sprint("p", i)}
			ms[i], errs[i] = r.Publish(ctx, a)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("publisher %d: %v", i, errs[i])
		}
	}
	list, err := r.List(ctx, "ohlcv:race:y:1m")
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %d manifests, %v", len(list), err)
	}
	// Publishers that lost the race see the winner's manifest, not their own.
	losers := 0
	for i := range n {
		if ms[i].Producer != list[0].Producer {
			t.Errorf("publisher %d returned producer %s, stored is %s", i, ms[i].Producer, list[0].Producer)
		}
		if ms[i].Producer != fmt.Sprint("p", i) {
			losers++
		}
	}
	if losers != n-1 {
		t.Errorf("%d publishers lost, want %d", losers, n-1)
	}
}

func testListOrderAndIsolation(t *testing.T, open Open) {
	ctx := context.Background()
	r := open(t, clock.NewFake(Epoch))
	node := "ohlcv:x:y:1m"
	var want []string
	for _, start := range []int64{6000, 0, 3000} {
		m, err := r.Publish(ctx, artifact.Artifact{NodeID: node, Interval: 60, Range: grid.R(start, start+3000), Frame: OHLCV(start, 60, 50)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m.DatasetFingerprint)
	}
	want[0], want[1], want[2] = want[1], want[2], want[0]
	// Same rows under another node: a different fingerprint, listed only there.
	other, err := r.Publish(ctx, artifact.Artifact{NodeID: node + "x", Interval: 60, Range: grid.R(0, 3000), Frame: OHLCV(0, 60, 50)})
	if err != nil {
		t.Fatal(err)
	}
	list, err := r.List(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range list {
		got = append(got, m.DatasetFingerprint)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List order %v, want %v (by range start)", got, want)
	}
	if _, _, err := r.Get(ctx, node, other.DatasetFingerprint); !errors.Is(err, artifact.ErrNotFound) {
		t.Errorf("another node's artifact: %v, want ErrNotFound", err)
	}
	if list, err := r.List(ctx, "ohlcv:none:y:1m"); err != nil || list == nil || len(list) != 0 {
		t.Errorf("List of an unknown node = %#v, %v; want an empty list", list, err)
	}
}

// HostileNodeIDs are node ids that would escape or collide as raw path components.
var HostileNodeIDs = []string{"..", ".", "../..", "../../etc/passwd", "a/../../b", "/abs", "a/b", "a%2Fb", "a:b", "a\x00b", "", " ", "é"}

func testHostileNodeIDs(t *testing.T, open Open) {
	ctx := context.Background()
	r := open(t, clock.NewFake(Epoch))
	fps := map[string]string{}
	for i, node := range HostileNodeIDs {
		if node == "" {
			continue
		}
		// Distinct rows per node, so a collision would show as a wrong List.
		m, err := r.Publish(ctx, artifact.Artifact{NodeID: node, Interval: 60, Range: grid.R(0, 60_000), Frame: OHLCV(int64(i)*60, 60, 5)})
		if err != nil {
			t.Fatalf("Publish %q: %v", node, err)
		}
		fps[node] = m.DatasetFingerprint
	}
	for node, fp := range fps {
		list, err := r.List(ctx, node)
		if err != nil || len(list) != 1 || list[0].DatasetFingerprint != fp || list[0].NodeID != node {
			t.Errorf("List %q = %+v, %v", node, list, err)
		}
		if _, f, err := r.Get(ctx, node, fp); err != nil || f.Len() != 5 {
			t.Errorf("Get %q: %v", node, err)
		}
	}
}

func testErrors(t *testing.T, open Open) {
	ctx := context.Background()
	r := open(t, clock.NewFake(Epoch))
	node := "ohlcv:x:y:1m"
	valid := artifact.Artifact{NodeID: node, Interval: 60, Range: grid.R(0, 600), Frame: OHLCV(0, 60, 10)}
	unsorted := valid.Frame.Take([]int{1, 0, 2})
	invalid := map[string]artifact.Artifact{
		"empty node":      {NodeID: "", Interval: 60, Range: valid.Range, Frame: valid.Frame},
		"zero interval":   {NodeID: node, Interval: 0, Range: valid.Range, Frame: valid.Frame},
		"empty range":     {NodeID: node, Interval: 60, Range: grid.R(600, 600), Frame: valid.Frame},
		"unsorted rows":   {NodeID: node, Interval: 60, Range: valid.Range, Frame: unsorted},
		"rows past range": {NodeID: node, Interval: 60, Range: grid.R(0, 540), Frame: valid.Frame},
		"node too long":   {NodeID: strings.Repeat(":", 100), Interval: 60, Range: valid.Range, Frame: valid.Frame},
	}
	for name, a := range invalid {
		if _, err := r.Publish(ctx, a); !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("Publish with %s: %v, want ErrInvalid", name, err)
		}
	}
	m, err := r.Publish(ctx, valid)
	if err != nil {
		t.Fatal(err)
	}
	hex := strings.TrimPrefix(m.DatasetFingerprint, "sha256:")
	for _, fp := range []string{"", hex, "sha256:" + strings.ToUpper(hex), "sha256:../../" + hex[6:], "sha256:" + hex + "0", "md5:" + hex} {
		if _, _, err := r.Get(ctx, node, fp); !errors.Is(err, artifact.ErrInvalid) {
			t.Errorf("Get %q: %v, want ErrInvalid", fp, err)
		}
	}
	missing := "sha256:" + strings.Repeat("0", 64)
	if _, _, err := r.Get(ctx, node, missing); !errors.Is(err, artifact.ErrNotFound) || !strings.Contains(err.Error(), node) {
		t.Errorf("Get of a missing fingerprint: %v, want ErrNotFound naming the node", err)
	}
	if _, err := r.List(ctx, ""); !errors.Is(err, artifact.ErrInvalid) {
		t.Errorf("List of an empty node id: %v, want ErrInvalid", err)
	}
}
