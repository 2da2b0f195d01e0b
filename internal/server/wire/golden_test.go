package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/csvio"
)

// update rewrites the golden files: go test ./internal/server/wire -run Golden -update
var update = flag.Bool("update", false, "rewrite testdata/golden")

// The golden wire fixtures are the contract of both clients: the Go tests below check
// that the server's encoders still produce them byte for byte, and the Python tests
// (python/tests/test_golden.py) decode them and map every error document to its
// exception. Change them only with a change of the API (and of wire.APIVersion's minor
// or major).
const golden = "testdata/golden"

// goldenResult is three one-minute bars, the last with a NaN volume (null in JSON,
// NaN in CSV and Arrow).
func goldenResult() seamless.Result {
	f := frame.New(frame.OHLCV, 3)
	f.TS = []int64{1704067200, 1704067260, 1704067320}
	vals := [][]float64{{100, 101, 102.5}, {101, 102.25, 103}, {99.5, 100.5, 101}, {100.5, 102, 102.75}, {12.5, 0.001, math.NaN()}}
	for i := range f.Cols {
		f.Cols[i].F64 = vals[i]
	}
	bounds := [2]int64{1704067200, 1704067380}
	staleness := int64(42)
	return seamless.Result{Frame: f, Metadata: seamless.Metadata{
		NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60, RequestedRange: [2]int64{1704067200, 1704067380},
		Strategy: seamless.FailFast, Rows: 3, CoverageBounds: &bounds, CoverageRatio: 1, StalenessMS: &staleness,
		Sources: seamless.TierCounts{Storage: 3}, Backfill: seamless.BackfillInfo{Scheduled: []grid.Range{}},
		ConformanceFlags: map[string]int{"non_finite": 1}, ConformanceWarnings: []string{}, ConformanceVersion: "v2",
		DatasetFingerprint: "sha256:" + string(bytes.Repeat([]byte("ab"), 32)), SLAPhases: map[string]float64{"storage_wait": 0.5, "total": 1.25},
	}}
}

// goldenErrors is one error document per code the server answers with.
func goldenErrors() []ErrorBody {
	s := seamless.Series{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60}
	var out []ErrorBody
	for _, err := range []error{
		&seamless.RequestError{Field: "start", Message: "start 1704070800 is not before end 1704067200"},
		&seamless.SourceError{NodeID: "ohlcv:nosuch:BTC-USD:1m", Source: "nosuch"},
		&seamless.NotCoveredError{Series: s, Missing: grid.NewSet(grid.R(1704067200, 1704070800))},
		&seamless.UpstreamError{Series: s, Chunk: grid.R(1704024000, 1704078000), Attempts: 6, Err: errors.New("binance: HTTP 503")},
		&seamless.SeamlessSLAExceeded{NodeID: s.NodeID, SLAViolation: seamless.SLAViolation{Phase: "total", ElapsedMS: 1500.5, BudgetMS: 1000}},
		&seamless.SeamlessDomainPolicyError{Domain: seamless.DomainBacktest, NodeID: s.NodeID, Reason: "as_of is required for backtest/dryrun domains"},
		&conformance.PipelineError{Report: conformance.Report{Warnings: []string{}, FlagsCounts: map[string]int{"ohlc_inconsistent": 1}, Samples: map[string][]int64{"ohlc_inconsistent": {1704067260}}}, Blocking: []string{"ohlc_inconsistent"}},
	} {
		out = append(out, EncodeError(err))
	}
	for code, msg := range map[string]string{
		CodeUnauthorized: "missing bearer token", CodeNotFound: "no backfill job \"x\"", CodeMethodNotAllowed: "DELETE is not allowed on /v1/bars (allowed: GET, HEAD)",
		CodeNotAcceptable: "no supported media type accepted", CodeTooLarge: "request body over the limit of 65536 bytes",
		CodeTooManyRequests: "16 fetches already in progress; retry later", CodeUnavailable: "shutting down",
		CodeMisdirected: "Host \"evil.example\" is not this server's address", "schema_violation": "payload deviates from the strict schema", seamless.CodeCanceled: "context canceled", seamless.CodeInternal: "store: disk full",
	} {
		out = append(out, NewError(code, "%s", msg))
	}
	slices.SortFunc(out, func(a, b ErrorBody) int {
		return cmpString(a.Code, b.Code)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// goldenError is one entry of errors.json: what the server sends for the code.
type goldenError struct {
	Status     int           `json:"status"`
	RetryAfter string        `json:"retry_after,omitempty"`
	Body       ErrorDocument `json:"body"`
}

func goldenFiles(t *testing.T) map[string][]byte {
	t.Helper()
	res := goldenResult()
	md, err := res.Metadata.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var js, csv, arrow bytes.Buffer
	if err := WriteBars(&js, res); err != nil {
		t.Fatal(err)
	}
	if err := csvio.Write(&csv, res.Frame); err != nil {
		t.Fatal(err)
	}
	if err := WriteArrow(&arrow, res, md); err != nil {
		t.Fatal(err)
	}
	var errs []goldenError
	for _, b := range goldenErrors() {
		e := goldenError{Status: Status(b.Code), Body: ErrorDocument{Error: b}}
		if e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests {
			e.RetryAfter = "1" // as the server's writeError sends
		}
		errs = append(errs, e)
	}
	errJSON, err := json.MarshalIndent(errs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	health, _ := json.Marshal(Health{Status: "ok", APIVersion: APIVersion})
	return map[string][]byte{
		"bars.json":         js.Bytes(),
		"bars.csv":          csv.Bytes(),
		"bars.csv.metadata": append(md, '\n'),
		"bars.arrows":       arrow.Bytes(),
		"errors.json":       append(errJSON, '\n'),
		"healthz.json":      append(health, '\n'),
	}
}

// TestGoldenWireFixtures: the encoders produce the golden files byte for byte, and
// every error code of the API has a golden document.
func TestGoldenWireFixtures(t *testing.T) {
	for name, want := range goldenFiles(t) {
		path := filepath.Join(golden, name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./internal/server/wire -run Golden -update writes it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the encoder's output differs from the golden file: an API change? Update both clients, then -update", name)
		}
	}
	have := map[string]bool{}
	for _, b := range goldenErrors() {
		have[b.Code] = true
	}
	for code := range statusOf {
		if !have[code] {
			t.Errorf("no golden error document for code %q", code)
		}
	}
}

// TestGoldenDecode: the Go side reads the golden bars back (JSON through ReadBars).
func TestGoldenDecode(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(golden, "bars.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := ReadBars(bytes.NewReader(raw))
	want := goldenResult()
	if err != nil || res.Frame.Len() != 3 || res.Frame.TS[2] != want.Frame.TS[2] || !math.IsNaN(res.Frame.Cols[4].F64[2]) || res.Metadata.Rows != 3 {
		t.Fatalf("%+v %v", res, err)
	}
}
