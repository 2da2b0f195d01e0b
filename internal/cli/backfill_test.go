package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/etcdcoord"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/etcdtest"
)

// TestBackfillFailedRetriesRecordedFailures: chunks that fail are recorded by the
// coordinator (etcd, which outlives the process that failed them); backfill --failed
// retries each, keeps the records of those that still fail (exit 1), and once the
// upstream answers, covers every chunk and clears its record.
func TestBackfillFailedRetriesRecordedFailures(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_STORE", "QMTL_SEAMLESS_STORE", "QMTL_SEAMLESS_COORDINATOR_URL", "SEAMLESS_PROFILE",
		"QMTL_SEAMLESS_PROFILE", "SEAMLESS_DEMO_ERROR_RATE", "SEAMLESS_DEMO_LATENCY", "SEAMLESS_MAX_BARS", "SEAMLESS_METRICS_ADDR",
		"SEAMLESS_NODE_ALIASES", "QMTL_SEAMLESS_NODE_ALIASES")
	unsetBackfillVars(t)
	srv := etcdtest.Start(t)
	t.Setenv("SEAMLESS_COORDINATOR_URL", "etcd://"+srv.Endpoint)
	t.Setenv("SEAMLESS_BACKFILL_WINDOW_BARS", "30") // one hour of 1m bars: two chunks
	t.Setenv("SEAMLESS_BACKFILL_MAX_ATTEMPTS", "1")
	t.Setenv("SEAMLESS_DEMO_ERROR_RATE", "1") // every upstream call fails
	ctx := context.Background()
	failures := func() []seamless.ChunkFailure {
		t.Helper()
		fs, err := etcdcoord.New(srv.Client(t), etcdcoord.Options{}).FailedChunks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	series := seamless.Series{NodeID: node, Interval: 60}
	const start = 1709251200 // 2024-03-01T00:00:00Z
	keys := []string{seamless.ChunkKey(series, grid.R(start, start+1800)), seamless.ChunkKey(series, grid.R(start+1800, start+3600))}

	dir := t.TempDir()
	code, out, stderr := run(t, dir, "backfill", "--node", node, "--interval", "60", "--start", strconv.Itoa(start), "--end", strconv.Itoa(start+3600))
	if code != 1 || !strings.Contains(out, "2 missing chunk(s)") || !strings.Contains(out, "2 failed;") {
		t.Fatalf("backfill with a failing upstream: exit %d %s %s", code, out, stderr)
	}
	fs := failures()
	if len(fs) != 2 || fs[0].Key != keys[0] || fs[1].Key != keys[1] || fs[0].Reason == "" {
		t.Fatalf("failure records %+v, want %v with reasons", fs, keys)
	}

	// The first chunk gets covered without a lease (imported), the second still fails:
	// the first's record is cleared (nothing left to fetch), the second's kept (exit 1).
	var csv strings.Builder
	csv.WriteString("ts,open,high,low,close,volume\n")
	for ts := start; ts < start+1800; ts += 60 {
		fmt.Fprintf(&csv, "%d,1,2,0.5,1.5,10\n", ts)
	}
	file := filepath.Join(dir, "chunk0.csv")
	os.WriteFile(file, []byte(csv.String()), 0o644)
	if code, out, stderr = run(t, dir, "import", "--node", node, "--interval", "60", file); code != 0 || !strings.Contains(out, "imported 30 bars") {
		t.Fatalf("import: exit %d %s %s", code, out, stderr)
	}
	code, out, stderr = run(t, dir, "backfill", "--failed")
	if code != 1 || !strings.Contains(out, "retried "+keys[0]+": 0 bars") || !strings.Contains(out, "2 failed chunk(s) retried, 1 still failing") ||
		!strings.Contains(stderr, "chunk "+keys[1]+" still fails") {
		t.Fatalf("--failed, upstream still down: exit %d %s %s", code, out, stderr)
	}
	if fs := failures(); len(fs) != 1 || fs[0].Key != keys[1] {
		t.Fatalf("records after a partly failed retry: %+v, want only %s", fs, keys[1])
	}

	// The upstream answers again: the second chunk is fetched and its record cleared.
	unsetForTest(t, "SEAMLESS_DEMO_ERROR_RATE")
	code, out, stderr = run(t, dir, "backfill", "--failed")
	if code != 0 || !strings.Contains(out, "retried "+keys[1]+": 30 bars") || !strings.Contains(out, "1 failed chunk(s) retried, 0 still failing") {
		t.Fatalf("--failed: exit %d %s %s", code, out, stderr)
	}
	if fs := failures(); len(fs) != 0 {
		t.Fatalf("failure records left after the retry: %+v", fs)
	}
	code, out, _ = run(t, dir, "coverage", "--node", node, "--interval", "60", "--format", "json")
	var cov struct {
		Ranges []struct{ Start, End int64 }
	}
	if code != 0 || json.Unmarshal([]byte(out), &cov) != nil || len(cov.Ranges) != 1 || cov.Ranges[0].Start != start || cov.Ranges[0].End != start+3600 {
		t.Fatalf("coverage after --failed: exit %d %s", code, out)
	}
	// The bars are served from storage alone.
	code, out, stderr = run(t, dir, "fetch", "--node", node, "--interval", "60", "--start", strconv.Itoa(start), "--end", strconv.Itoa(start+3600),
		"--strategy", "fail_fast", "--format", "csv")
	if code != 0 || strings.Count(out, "\n") != 61 {
		t.Fatalf("fail_fast fetch after --failed: exit %d %s", code, stderr)
	}
	// Nothing left to retry.
	if code, out, stderr = run(t, dir, "backfill", "--failed"); code != 0 || !strings.Contains(out, "0 failed chunk(s) retried, 0 still failing") {
		t.Fatalf("--failed with no records: exit %d %s %s", code, out, stderr)
	}
}
