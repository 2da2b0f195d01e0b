package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const node = "ohlcv:demo:BTC-USD:1m"

func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(append([]string{"--data-dir", dir}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestFetchJSONAndCSV(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := run(t, dir, "fetch", "--node", node, "--interval", "60",
		"--start", "2024-01-01T00:00:00Z", "--end", "2024-01-01T01:00:00Z", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Metadata map[string]any       `json:"metadata"`
		Data     map[string][]float64 `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if doc.Metadata["rows"].(float64) != 60 || doc.Metadata["coverage_ratio"].(float64) != 1 || len(doc.Data["ts"]) != 60 || len(doc.Data["close"]) != 60 {
		t.Fatalf("json document: %s", out)
	}
	for _, k := range []string{"node_id", "interval", "requested_range", "coverage_bounds", "staleness_ms", "sources", "backfill"} {
		if _, ok := doc.Metadata[k]; !ok {
			t.Errorf("metadata lacks %q", k)
		}
	}
	// Now covered: fail_fast serves it from the store as CSV.
	code, out, stderr = run(t, dir, "fetch", "--node", node, "--interval", "60",
		"--start", "1704067200", "--end", "1704070800", "--strategy", "fail_fast", "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "ts,open,high,low,close,volume" || len(lines) != 61 || !strings.HasPrefix(lines[1], "1704067200,") {
		t.Fatalf("csv: %q…", lines[:2])
	}
	outFile := filepath.Join(dir, "bars.txt")
	if code, _, stderr = run(t, dir, "fetch", "--node", node, "--interval", "60",
		"--start", "1704067200", "--end", "1704070800", "--output", outFile); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(outFile); err != nil || !strings.Contains(string(b), "2024-01-01 00:59:00") {
		t.Fatalf("table output file: %v %q", err, b)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	dir := t.TempDir()
	base := []string{"fetch", "--node", node, "--interval", "60"}
	for _, tc := range []struct {
		name string
		args []string
		exit int
		code string
	}{
		{"start after end", append(base, "--start", "1704070800", "--end", "1704067200"), 2, "bad_request"},
		{"unparseable time", append(base, "--start", "noon", "--end", "1704067200"), 2, "bad_request"},
		{"interval mismatch", []string{"fetch", "--node", node, "--interval", "300", "--start", "0", "--end", "600"}, 2, "bad_request"},
		{"unknown strategy", append(base, "--start", "0", "--end", "600", "--strategy", "yolo"), 2, "bad_request"},
		{"too many bars", append(base, "--start", "0", "--end", "1704067200", "--max-bars", "1000"), 2, "bad_request"},
		{"unknown source", []string{"fetch", "--node", "ohlcv:nasdaq:AAPL:1m", "--interval", "60", "--start", "0", "--end", "600"}, 1, "unknown_source"},
		{"not covered", append(base, "--start", "0", "--end", "600", "--strategy", "fail_fast"), 1, "not_covered"},
		{"missing node", []string{"fetch", "--interval", "60", "--start", "0", "--end", "600"}, 2, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, stderr := run(t, dir, append(tc.args, "--format", "json")...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.exit, stderr)
			}
			var doc struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Error.Code != tc.code || doc.Error.Message == "" {
				t.Fatalf("stdout %q, want error code %s", out, tc.code)
			}
			if !strings.Contains(stderr, doc.Error.Message) {
				t.Fatalf("stderr %q lacks the message", stderr)
			}
		})
	}
	if code, _, _ := run(t, dir, "fetch", "--bogus"); code != 2 {
		t.Fatalf("unknown flag exit %d, want 2", code)
	}
	// Nothing was stored by any of the failures.
	_, out, _ := run(t, dir, "coverage", "--node", node, "--interval", "60", "--format", "json")
	if !strings.Contains(out, `"ranges":[]`) {
		t.Fatalf("coverage after failures: %s", out)
	}
}

func TestBackfillAndCoverage(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := run(t, dir, "backfill", "--node", "ohlcv:demo:ETH-USD:5m", "--interval", "300",
		"--start", "2024-01-01T00:00:00Z", "--end", "2024-01-08T00:00:00Z")
	if code != 0 || !strings.Contains(out, "3 missing chunk(s), 3 fetched") {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	code, out, _ = run(t, dir, "coverage", "--node", "ohlcv:demo:ETH-USD:5m", "--interval", "300", "--format", "json")
	var doc struct {
		NodeID   string `json:"node_id"`
		Interval int64  `json:"interval"`
		Ranges   []struct{ Start, End int64 }
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Ranges) != 1 || doc.Ranges[0].Start > 1704067200 || doc.Ranges[0].End < 1704672000 {
		t.Fatalf("coverage: %s", out)
	}
	if code, out, _ = run(t, dir, "coverage", "--node", "ohlcv:demo:ETH-USD:5m", "--interval", "300"); code != 0 || !strings.Contains(out, "1 range(s)") {
		t.Fatalf("coverage table: %s", out)
	}
}

func TestImport(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.csv")
	os.WriteFile(good, []byte("ts,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,10\n1704070800000,1.5,2,1,1.75,12\n"), 0o644)
	code, out, stderr := run(t, dir, "import", "--node", "ohlcv:demo:MY-FEED:1h", "--interval", "3600", good)
	if code != 0 || !strings.Contains(out, "imported 2 bars") {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	code, out, _ = run(t, dir, "fetch", "--node", "ohlcv:demo:MY-FEED:1h", "--interval", "3600",
		"--start", "1704067200", "--end", "1704074400", "--strategy", "fail_fast", "--format", "csv")
	if code != 0 || !strings.Contains(out, "1704070800,1.5,2,1,1.75,12") {
		t.Fatalf("imported bars not served: %s", out)
	}
	for name, body := range map[string]string{
		"corrupt.csv": "ts,open,high,low,close,volume\n1704160800,1,2,0.5,oops,10\n",
		"offgrid.csv": "ts,open,high,low,close,volume\n1704160801,1,2,0.5,1,10\n",

		"nocolumns.csv": "ts,price\n1704160800,1\n",
		"empty.csv":     "",
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		code, _, stderr := run(t, dir, "import", "--node", "ohlcv:demo:OTHER:1h", "--interval", "3600", p)
		if code != 2 || !strings.Contains(stderr, name) {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr)
		}
	}
	// Blocking findings (a NaN close) refuse the import with the report...
	nan := filepath.Join(dir, "nan.csv")
	os.WriteFile(nan, []byte("ts,open,high,low,close,volume\n1704160800,1,2,0.5,nan,10\n1704164400,1,2,0.5,1,10\n"), 0o644)
	code, _, stderr = run(t, dir, "import", "--node", "ohlcv:demo:OTHER:1h", "--interval", "3600", nan)
	if code != 1 || !strings.Contains(stderr, "non_finite") || !strings.Contains(stderr, "nothing stored") {
		t.Fatalf("nan import: exit %d, stderr %q", code, stderr)
	}
	_, out, _ = run(t, dir, "coverage", "--node", "ohlcv:demo:OTHER:1h", "--interval", "3600", "--format", "json")
	if !strings.Contains(out, `"ranges":[]`) {
		t.Fatalf("bad imports wrote data: %s", out)
	}
	// The refused import's report is archived.
	code, out, _ = run(t, dir, "reports", "--node", "ohlcv:demo:OTHER:1h", "--format", "json")
	var reps struct {
		Reports []struct {
			Report struct {
				FlagsCounts map[string]int `json:"flags_counts"`
			} `json:"report"`
			Digest struct {
				NewFlags []string `json:"new_flags"`
			} `json:"digest"`
		} `json:"reports"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &reps) != nil || len(reps.Reports) != 1 || reps.Reports[0].Report.FlagsCounts["non_finite"] != 1 || len(reps.Reports[0].Digest.NewFlags) == 0 {
		t.Fatalf("reports: exit %d %s", code, out)
	}
	// ...unless partial results are fine.
	if code, _, stderr = run(t, dir, "import", "--node", "ohlcv:demo:OTHER:1h", "--interval", "3600", "--partial-ok", nan); code != 0 {
		t.Fatalf("partial-ok import: exit %d %s", code, stderr)
	}
	// Unsorted millisecond timestamps are normalised, reported, and stored.
	unsorted := filepath.Join(dir, "unsorted.csv")
	os.WriteFile(unsorted, []byte("ts,open,high,low,close,volume\n1704254400000,1,2,0.5,1,10\n1704250800000,1,2,0.5,1,10\n"), 0o644)
	code, out, stderr = run(t, dir, "import", "--node", "ohlcv:demo:THIRD:1h", "--interval", "3600", unsorted)
	if code != 0 || !strings.Contains(stderr, "unsorted_ts") || !strings.Contains(stderr, "ts_cast") || !strings.Contains(out, "imported 2 bars") {
		t.Fatalf("unsorted import: exit %d, %s %s", code, out, stderr)
	}
	if code, _, _ := run(t, dir, "import", "--node", node, "--interval", "60", filepath.Join(dir, "missing.csv")); code != 1 {
		t.Fatalf("missing file exit %d", code)
	}
}

func TestSLAAndDomainFlags(t *testing.T) {
	dir := t.TempDir()
	base := []string{"fetch", "--node", node, "--interval", "60", "--start", "2024-02-01T00:00:00Z", "--end", "2024-02-02T00:00:00Z", "--format", "json"}
	code, out, _ := run(t, dir, append(base, "--max-sync-gap-bars", "100")...)
	var doc struct {
		Error struct {
			Code      string  `json:"code"`
			Phase     string  `json:"phase"`
			ElapsedMS float64 `json:"elapsed_ms"`
			BudgetMS  int64   `json:"budget_ms"`
		} `json:"error"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &doc) != nil || doc.Error.Code != "sla_exceeded" || doc.Error.Phase != "sync_gap" {
		t.Fatalf("sync gap: exit %d %s", code, out)
	}
	code, out, _ = run(t, dir, append(base, "--sla", "tolerant-partial", "--max-sync-gap-bars", "100")...)
	// The violation says partial_fill, but coverage below min_coverage holds, and hold
	// outranks partial_fill.
	if code != 0 || !strings.Contains(out, `"downgrade_mode":"hold"`) || !strings.Contains(out, `"downgrade_reason":"coverage_breach"`) || !strings.Contains(out, `"phase":"sync_gap"`) {
		t.Fatalf("tolerant-partial: exit %d %s", code, out)
	}
	if code, _, _ = run(t, dir, append(base, "--sla", "gold")...); code != 2 {
		t.Fatalf("unknown preset exit %d", code)
	}
	if code, _, _ = run(t, dir, append(base, "--on-violation", "explode")...); code != 2 {
		t.Fatalf("bad on-violation exit %d", code)
	}
	// Backtests need as_of, and their answers are published as artifacts.
	code, out, _ = run(t, dir, append(base, "--execution-domain", "backtest")...)
	if code != 1 || !strings.Contains(out, `"code":"domain_policy"`) {
		t.Fatalf("backtest without as_of: exit %d %s", code, out)
	}
	code, out, _ = run(t, dir, append(base, "--execution-domain", "backtest", "--as-of", "2024-02-01T12:00:00Z")...)
	if code != 0 || !strings.Contains(out, `"manifest_uri":"file://`) || !strings.Contains(out, `"dataset_fingerprint":"sha256:`) || !strings.Contains(out, `"rows":720`) {
		t.Fatalf("backtest: exit %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "artifacts")); err != nil {
		t.Fatalf("no artifacts under the data dir: %v", err)
	}
	code, out, _ = run(t, dir, "presets")
	if code != 0 || !strings.Contains(out, "baseline") || !strings.Contains(out, "tolerant-partial") {
		t.Fatalf("presets: %s", out)
	}
}
