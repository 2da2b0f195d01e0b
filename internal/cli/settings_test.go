package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
	"github.com/seamless-data/seamless/internal/testaddr"
)

// backfillVars are the SEAMLESS_BACKFILL_* variables (and the lease TTL), with their
// QMTL_ aliases.
var backfillVars = []string{
	"SEAMLESS_LEASE_TTL", "SEAMLESS_BACKFILL_WINDOW_BARS", "SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS",
	"SEAMLESS_BACKFILL_MAX_ATTEMPTS", "SEAMLESS_BACKFILL_RETRY_BACKOFF_MS", "SEAMLESS_BACKFILL_JITTER_RATIO",
	"SEAMLESS_BACKFILL_ATTEMPT_TIMEOUT", "SEAMLESS_BACKFILL_SETTLE_WINDOW",
}

func unsetBackfillVars(t *testing.T) {
	t.Helper()
	for _, n := range backfillVars {
		unsetForTest(t, n, "QMTL_"+n)
	}
}

// deadURL is the http:// address of a port nothing listens on.
func deadURL(t *testing.T) string { return "http://" + testaddr.Dead(t) }

// TestProdProbesLeaseAPI: SEAMLESS_PROFILE=prod with an http:// coordinator starts only
// when the lease API answers GET /healthz; other profiles start regardless and fall back.
func TestProdProbesLeaseAPI(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_STORE", "QMTL_SEAMLESS_STORE", "QMTL_SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_PROFILE")
	dir := t.TempDir()
	coverage := []string{"coverage", "--node", node, "--interval", "60"}

	healthy := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
	defer healthy.Close()
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	dead := deadURL(t)

	for _, tc := range []struct {
		name, profile, url string
		exit               int
		want               []string // in stderr
	}{
		{"prod, lease API up", "prod", healthy.URL, 0, nil},
		{"prod, lease API up, trailing slash", "prod", healthy.URL + "/", 0, nil},
		{"prod, lease API dead", "prod", dead, 1, []string{"profile prod", dead, "unreachable", "refusing to start"}},
		{"prod, healthz 503", "prod", sick.URL, 1, []string{"profile prod", sick.URL, "HTTP 503"}},
		{"no profile, lease API dead", "", dead, 0, nil},
		{"staging, lease API dead", "staging", dead, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SEAMLESS_PROFILE", tc.profile)
			t.Setenv("SEAMLESS_COORDINATOR_URL", tc.url)
			code, _, stderr := run(t, dir, coverage...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d: %s", code, tc.exit, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, stderr)
				}
			}
		})
	}

	// The reference's variable names select prod and the coordinator just the same.
	unsetForTest(t, "SEAMLESS_PROFILE", "SEAMLESS_COORDINATOR_URL")
	t.Setenv("QMTL_SEAMLESS_PROFILE", "prod")
	t.Setenv("QMTL_SEAMLESS_COORDINATOR_URL", dead)
	if code, _, stderr := run(t, dir, coverage...); code != 1 || !strings.Contains(stderr, "profile prod") {
		t.Fatalf("QMTL_ names, dead coordinator: exit %d %s", code, stderr)
	}
}

// TestProbeLeaseAPITimeout: a coordinator that accepts but never answers fails the
// probe within its timeout.
func TestProbeLeaseAPITimeout(t *testing.T) {
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hung.Close()
	defer close(release)
	began := time.Now()
	err := probeLeaseAPI(context.Background(), hung.URL, 100*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("probe of a hung coordinator: %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("probe took %v", d)
	}
}

// envConfig is the settings table resolved over the environment alone.
func envConfig() *config { return newConfig(settingsTable(venues), "", nil, os.LookupEnv) }

// fileKeys are the keys whose value c took from the configuration file, sorted.
func fileKeys(c *config) []string {
	var keys []string
	for _, s := range c.table {
		if c.value(s.Key).source == fromFile {
			keys = append(keys, s.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestBackfillSettingsParse(t *testing.T) {
	unsetBackfillVars(t)
	bf, err := backfillOptions(envConfig())
	if err != nil || bf != (seamless.BackfillConfig{}) {
		t.Fatalf("nothing set: %+v %v; want the zero config (provider defaults)", bf, err)
	}

	for _, tc := range []struct {
		name, value string
		want        seamless.BackfillConfig
	}{
		{"SEAMLESS_BACKFILL_WINDOW_BARS", "60", seamless.BackfillConfig{WindowBars: 60}},
		{"SEAMLESS_BACKFILL_WINDOW_BARS", "1", seamless.BackfillConfig{WindowBars: 1}},
		{"SEAMLESS_BACKFILL_WINDOW_BARS", "1000000", seamless.BackfillConfig{WindowBars: 1_000_000}},
		{"SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS", "2", seamless.BackfillConfig{MaxConcurrentRequests: 2}},
		{"SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS", "1024", seamless.BackfillConfig{MaxConcurrentRequests: 1024}},
		{"SEAMLESS_BACKFILL_MAX_ATTEMPTS", "1", seamless.BackfillConfig{MaxAttempts: 1}},
		{"SEAMLESS_BACKFILL_MAX_ATTEMPTS", " 10 ", seamless.BackfillConfig{MaxAttempts: 10}},
		{"SEAMLESS_BACKFILL_RETRY_BACKOFF_MS", "2000", seamless.BackfillConfig{RetryBackoff: 2 * time.Second}},
		{"SEAMLESS_BACKFILL_RETRY_BACKOFF_MS", "1", seamless.BackfillConfig{RetryBackoff: time.Millisecond}},
		{"SEAMLESS_BACKFILL_JITTER_RATIO", "0.1", seamless.BackfillConfig{JitterRatio: 0.1}},
		{"SEAMLESS_BACKFILL_JITTER_RATIO", "1", seamless.BackfillConfig{JitterRatio: 1}},
		{"SEAMLESS_BACKFILL_ATTEMPT_TIMEOUT", "90s", seamless.BackfillConfig{AttemptTimeout: 90 * time.Second}},
		{"SEAMLESS_BACKFILL_SETTLE_WINDOW", "10m", seamless.BackfillConfig{SettleWindow: 10 * time.Minute}},
		{"SEAMLESS_LEASE_TTL", "30s", seamless.BackfillConfig{SingleFlightTTL: 30 * time.Second, DistributedLeaseTTL: 30 * time.Second}},
		// The reference's QMTL_ names are read too.
		{"QMTL_SEAMLESS_BACKFILL_WINDOW_BARS", "120", seamless.BackfillConfig{WindowBars: 120}},
	} {
		unsetBackfillVars(t)
		t.Setenv(tc.name, tc.value)
		if bf, err := backfillOptions(envConfig()); err != nil || bf != tc.want {
			t.Errorf("%s=%q: %+v %v; want %+v", tc.name, tc.value, bf, err, tc.want)
		}
	}

	for name, bad := range map[string][]string{
		"SEAMLESS_BACKFILL_WINDOW_BARS":             {"0", "-5", "1000001", "ten", "1.5", "9e99"},
		"SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS": {"0", "-1", "1025", "many"},
		"SEAMLESS_BACKFILL_MAX_ATTEMPTS":            {"0", "-1", "101", "3x"},
		"SEAMLESS_BACKFILL_RETRY_BACKOFF_MS":        {"0", "-1", "600001", "500ms", "0.5"},
		"SEAMLESS_BACKFILL_JITTER_RATIO":            {"0", "-0.1", "1.01", "NaN", "Inf", "quarter"},
		"SEAMLESS_BACKFILL_ATTEMPT_TIMEOUT":         {"0", "500ms", "-1m", "90"},
		"SEAMLESS_BACKFILL_SETTLE_WINDOW":           {"0", "500ms", "25h", "5"},
		"SEAMLESS_LEASE_TTL":                        {"500ms", "30"},
	} {
		for _, v := range bad {
			unsetBackfillVars(t)
			t.Setenv(name, v)
			_, err := backfillOptions(envConfig())
			var re *seamless.RequestError
			if !errors.As(err, &re) || re.Field != name {
				t.Errorf("%s=%q: %v; want a RequestError on that field", name, v, err)
				continue
			}
			if name != "SEAMLESS_LEASE_TTL" && (!strings.Contains(re.Message, `"`+v+`"`) || !strings.Contains(re.Message, "default")) {
				t.Errorf("%s=%q: message %q should quote the value and give the default", name, v, re.Message)
			}
		}
	}
}

// TestBackfillSettingsPrecedence: the file's backfill_* keys fill in what the
// environment leaves unset; the environment (SEAMLESS_ or QMTL_ name) wins.
func TestBackfillSettingsPrecedence(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG")
	unsetBackfillVars(t)
	cfg := filepath.Join(t.TempDir(), "seamless.yaml")
	os.WriteFile(cfg, []byte(`backfill_window_bars: 10
backfill_max_concurrent_requests: 3
backfill_max_attempts: 2
backfill_retry_backoff_ms: 20
backfill_jitter_ratio: 0.5
lease_ttl: 45s
`), 0o644)
	t.Setenv("SEAMLESS_BACKFILL_MAX_ATTEMPTS", "4")
	t.Setenv("QMTL_SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS", "5")
	c, err := loadConfig(settingsTable(venues), []string{"--config", cfg}, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"backfill_jitter_ratio", "backfill_retry_backoff_ms", "backfill_window_bars", "lease_ttl"}
	if applied := fileKeys(c); !slices.Equal(applied, want) {
		t.Errorf("applied %v, want %v", applied, want)
	}
	bf, err := backfillOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	if bf != (seamless.BackfillConfig{
		WindowBars: 10, MaxConcurrentRequests: 5, MaxAttempts: 4, RetryBackoff: 20 * time.Millisecond,
		JitterRatio: 0.5, SingleFlightTTL: 45 * time.Second, DistributedLeaseTTL: 45 * time.Second,
	}) {
		t.Errorf("file < env: %+v", bf)
	}

	// A bad value in the file is reported under the variable it sets.
	unsetBackfillVars(t)
	os.WriteFile(cfg, []byte("backfill_window_bars: -3\n"), 0o644)
	code, _, stderr := run(t, t.TempDir(), "--config", cfg, "coverage", "--node", node, "--interval", "60")
	if code != 2 || !strings.Contains(stderr, "SEAMLESS_BACKFILL_WINDOW_BARS") {
		t.Fatalf("bad file value: exit %d %s", code, stderr)
	}
}

// TestBackfillSettingsReachProvider: the settings are the runtime's provider
// configuration and change what a backfill does.
func TestBackfillSettingsReachProvider(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_STORE", "SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_COORDINATOR_URL",
		"SEAMLESS_PROFILE", "QMTL_SEAMLESS_PROFILE", "SEAMLESS_DEMO_ERROR_RATE")
	unsetBackfillVars(t)
	t.Setenv("SEAMLESS_BACKFILL_WINDOW_BARS", "10")
	t.Setenv("SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS", "2")
	t.Setenv("SEAMLESS_BACKFILL_MAX_ATTEMPTS", "2")
	t.Setenv("SEAMLESS_BACKFILL_RETRY_BACKOFF_MS", "1")
	t.Setenv("SEAMLESS_BACKFILL_JITTER_RATIO", "0.5")
	g := &globals{dataDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	rt, err := g.openRuntime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := rt.backfill
	rt.Close()
	if got != (seamless.BackfillConfig{WindowBars: 10, MaxConcurrentRequests: 2, MaxAttempts: 2, RetryBackoff: time.Millisecond, JitterRatio: 0.5}) {
		t.Fatalf("runtime backfill config %+v", got)
	}

	// window_bars 10: one hour of 1m bars is 6 aligned chunks (one with the default 900).
	dir := t.TempDir()
	backfill := []string{"backfill", "--node", node, "--interval", "60", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-01T01:00:00Z"}
	if code, out, stderr := run(t, dir, backfill...); code != 0 || !strings.Contains(out, "6 missing chunk(s), 6 fetched") {
		t.Fatalf("window_bars 10: exit %d %s %s", code, out, stderr)
	}
	// max_attempts 2 (retry_backoff_ms 1): an upstream that always fails gives up after 2.
	t.Setenv("SEAMLESS_DEMO_ERROR_RATE", "1")
	backfill = []string{"backfill", "--node", node, "--interval", "60", "--start", "2024-02-01T00:00:00Z", "--end", "2024-02-01T00:10:00Z"}
	if code, out, stderr := run(t, dir, backfill...); code != 1 || !strings.Contains(stderr, "after 2 attempt(s)") {
		t.Fatalf("max_attempts 2: exit %d %s %s", code, out, stderr)
	}
	// A bad value refuses to start, naming the variable (exit 2: bad request).
	t.Setenv("SEAMLESS_BACKFILL_MAX_ATTEMPTS", "0")
	if code, _, stderr := run(t, dir, backfill...); code != 2 || !strings.Contains(stderr, "SEAMLESS_BACKFILL_MAX_ATTEMPTS") {
		t.Fatalf("bad max_attempts: exit %d %s", code, stderr)
	}
}

// TestConfigQMTLAliasPrecedence: a QMTL_ alias in the environment wins over the file
// like its SEAMLESS_ name; a QMTL_ variable nothing reads does not hide the file's value.
func TestConfigQMTLAliasPrecedence(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_COORDINATOR_URL",
		"SEAMLESS_DATA_DIR", "QMTL_SEAMLESS_DATA_DIR", "SEAMLESS_LOG_FORMAT", "QMTL_SEAMLESS_LOG_FORMAT")
	cfg := filepath.Join(t.TempDir(), "seamless.yaml")
	os.WriteFile(cfg, []byte("coordinator_url: http://file.invalid:1\ndata_dir: /from/file\nlog_format: text\n"), 0o644)
	t.Setenv("QMTL_SEAMLESS_COORDINATOR_URL", "http://env.invalid:1")
	t.Setenv("QMTL_SEAMLESS_DATA_DIR", "/from/qmtl") // not an alias: SEAMLESS_DATA_DIR only
	c, err := loadConfig(settingsTable(venues), []string{"--config", cfg}, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	if applied := fileKeys(c); !slices.Equal(applied, []string{"data_dir", "log_format"}) {
		t.Errorf("applied %v", applied)
	}
	if v := c.value("coordinator_url"); v.source != fromEnv || v.origin != "env QMTL_SEAMLESS_COORDINATOR_URL" {
		t.Errorf("coordinator URL from %s (%s), want the QMTL_ environment's", v.source, v.origin)
	}
	if got := c.raw("coordinator_url"); got != "http://env.invalid:1" {
		t.Errorf("coordinator URL %q, want the QMTL_ environment's", got)
	}
	if got := c.text("data_dir"); got != "/from/file" {
		t.Errorf("data dir %q, want the file's", got)
	}
	if got := c.text("log_format"); got != "text" {
		t.Errorf("log format %q, want the file's", got)
	}

	// Every aliased setting is a configuration key.
	for _, s := range c.table {
		if s.QMTL && s.NoFile {
			t.Errorf("%s has a QMTL_ alias but no configuration key", s.Env())
		}
	}
}

// TestNodeAliases: SEAMLESS_NODE_ALIASES serves node ids outside the standard grammar;
// malformed entries refuse to start, naming the variable.
func TestNodeAliases(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_STORE", "SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_COORDINATOR_URL",
		"SEAMLESS_PROFILE", "QMTL_SEAMLESS_PROFILE", "SEAMLESS_DEMO_ERROR_RATE", "QMTL_SEAMLESS_NODE_ALIASES")
	unsetBackfillVars(t)
	t.Setenv("SEAMLESS_NODE_ALIASES", " btc-1m = "+node+" ,eth-5m=ohlcv:demo:ETH-USD:5m")
	dir := t.TempDir()
	code, out, stderr := run(t, dir, "fetch", "--node", "btc-1m", "--interval", "60", "--start", "2024-01-01T00:00:00Z",
		"--end", "2024-01-01T01:00:00Z", "--format", "json")
	if code != 0 || !strings.Contains(out, `"node_id":"btc-1m"`) || !strings.Contains(out, `"rows":60`) {
		t.Fatalf("fetch of an alias: exit %d %s %s", code, out, stderr)
	}
	for _, bad := range []string{"btc-1m", "=" + node, "x=not-a-node", node + "=" + node, "a=" + node + ",a=" + node} {
		t.Setenv("SEAMLESS_NODE_ALIASES", bad)
		if code, _, stderr := run(t, dir, "coverage", "--node", node, "--interval", "60"); code != 2 || !strings.Contains(stderr, "SEAMLESS_NODE_ALIASES") {
			t.Errorf("SEAMLESS_NODE_ALIASES=%q: exit %d %s", bad, code, stderr)
		}
	}
}

// TestLeaseAPIProbedOutsideProd: outside SEAMLESS_PROFILE=prod an http:// coordinator
// is probed once at start too; when it does not answer (or is not a lease API) the
// process logs seamless.backfill.coordinator_unreachable with the URL and the error,
// and starts anyway (the fallback covers it).
func TestLeaseAPIProbedOutsideProd(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_STORE", "QMTL_SEAMLESS_STORE", "QMTL_SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_PROFILE",
		"SEAMLESS_LOG_LEVEL", "SEAMLESS_LOG_FORMAT")
	dir := t.TempDir()
	coverage := []string{"coverage", "--node", node, "--interval", "60"}
	healthy := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
	defer healthy.Close()
	wrong := httptest.NewServer(http.NotFoundHandler())
	defer wrong.Close()
	dead := deadURL(t)
	const warning = `"level":"WARN","msg":"seamless.backfill.coordinator_unreachable"`
	for _, tc := range []struct {
		name, profile, url string
		want               []string // in the warning line; nil: no warning
	}{
		{"no profile, lease API up", "", healthy.URL, nil},
		{"no profile, lease API dead", "", dead, []string{`"url":"` + dead + `"`, "connection refused"}},
		{"staging, lease API dead", "staging", dead, []string{`"url":"` + dead + `"`, "connection refused"}},
		{"no profile, not a lease API", "", wrong.URL, []string{`"url":"` + wrong.URL + `"`, "HTTP 404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SEAMLESS_PROFILE", tc.profile)
			t.Setenv("SEAMLESS_COORDINATOR_URL", tc.url)
			code, _, stderr := run(t, dir, coverage...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			line := grep(stderr, warning)
			if tc.want == nil {
				if line != "" {
					t.Fatalf("warning with the coordinator up: %s", line)
				}
				return
			}
			if line == "" {
				t.Fatalf("no %s line: %s", warning, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("warning lacks %q: %s", w, line)
				}
			}
		})
	}
}

// TestMaxBarsSetting: SEAMLESS_MAX_BARS (file key max_bars) is validated like the other
// settings: a value that is not a whole number of at least 1 refuses to start with a
// bad request naming the variable (exit 2, and the JSON error document with --format
// json), unless --max-bars overrides it (file < env < flags).
func TestMaxBarsSetting(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_MAX_BARS", "SEAMLESS_STORE", "QMTL_SEAMLESS_STORE", "SEAMLESS_COORDINATOR_URL",
		"QMTL_SEAMLESS_COORDINATOR_URL", "SEAMLESS_PROFILE", "QMTL_SEAMLESS_PROFILE", "SEAMLESS_DEMO_ERROR_RATE")
	unsetBackfillVars(t)
	dir := t.TempDir()
	// One day of 1m bars: 1,440.
	fetch := []string{"fetch", "--node", node, "--interval", "60", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-02T00:00:00Z", "--format", "json"}
	type errDoc struct {
		Error struct{ Code, Message, Field string } `json:"error"`
	}
	for _, bad := range []string{"abc", "0", "-5", "1.5", "1e6", " "} {
		t.Setenv("SEAMLESS_MAX_BARS", bad)
		g := &globals{dataDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
		var re *seamless.RequestError
		if rt, err := g.openRuntime(context.Background()); !errors.As(err, &re) || re.Field != "SEAMLESS_MAX_BARS" || !strings.Contains(re.Message, `"`+bad+`"`) {
			if rt != nil {
				rt.Close()
			}
			t.Errorf("SEAMLESS_MAX_BARS=%q: %v; want a RequestError on that field quoting the value", bad, err)
			continue
		}
		code, out, stderr := run(t, dir, fetch...)
		var doc errDoc
		if code != 2 || json.Unmarshal([]byte(out), &doc) != nil || doc.Error.Code != "bad_request" || doc.Error.Field != "SEAMLESS_MAX_BARS" ||
			!strings.Contains(stderr, "SEAMLESS_MAX_BARS") {
			t.Errorf("fetch with SEAMLESS_MAX_BARS=%q: exit %d, stdout %s, stderr %s", bad, code, clip(out), stderr)
		}
		// --max-bars wins over the environment: the bad value is not used, so not refused.
		if code, out, stderr := run(t, dir, append(fetch, "--max-bars", "1000")...); code != 2 || !strings.Contains(out, "maximum of 1000") {
			t.Errorf("--max-bars 1000 over SEAMLESS_MAX_BARS=%q: exit %d %s %s", bad, code, clip(out), stderr)
		}
		if code, _, stderr := run(t, dir, append(fetch, "--max-bars=2000")...); code != 0 {
			t.Errorf("--max-bars=2000 over SEAMLESS_MAX_BARS=%q: exit %d %s", bad, code, stderr)
		}
	}
	// Good values apply; the flag still overrides them.
	t.Setenv("SEAMLESS_MAX_BARS", " 1000 ")
	if code, out, _ := run(t, dir, fetch...); code != 2 || !strings.Contains(out, "maximum of 1000") {
		t.Fatalf("SEAMLESS_MAX_BARS=1000: exit %d %s", code, clip(out))
	}
	if code, _, stderr := run(t, dir, append(fetch, "--max-bars", "1440")...); code != 0 {
		t.Fatalf("--max-bars 1440 over SEAMLESS_MAX_BARS=1000: exit %d %s", code, stderr)
	}
	// A bad value from the file is reported under the variable it sets.
	unsetForTest(t, "SEAMLESS_MAX_BARS")
	cfg := filepath.Join(t.TempDir(), "seamless.yaml")
	os.WriteFile(cfg, []byte("max_bars: lots\n"), 0o644)
	code, out, stderr := run(t, dir, append([]string{"--config", cfg}, fetch...)...)
	var doc errDoc
	if code != 2 || json.Unmarshal([]byte(out), &doc) != nil || doc.Error.Field != "SEAMLESS_MAX_BARS" || !strings.Contains(stderr, `"lots"`) {
		t.Fatalf("max_bars: lots in the file: exit %d %s %s", code, clip(out), stderr)
	}
}

// clip shortens s for a failure message.
func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// TestStreamSettings: the stream_* settings reach the provider's subscriptions and the
// server's stream limits; unset they stay zero (the defaults), out of range they are
// refused with the setting named.
func TestStreamSettings(t *testing.T) {
	keys := []string{"SEAMLESS_STREAM_BUFFER_EVENTS", "SEAMLESS_STREAM_HEARTBEAT", "SEAMLESS_STREAM_LIVE_GRACE",
		"SEAMLESS_STREAM_MAX_CONNECTIONS", "SEAMLESS_STREAM_MAX_SUBSCRIPTIONS"}
	for _, k := range keys {
		t.Setenv(k, "")
	}
	if o, err := subscribeOptions(envConfig()); err != nil || o != (seamless.SubscribeOptions{}) {
		t.Fatalf("nothing set: %+v %v", o, err)
	}
	if sc, err := streamConfig(envConfig()); err != nil || sc.MaxConnections != 0 || sc.MaxSubscriptions != 0 {
		t.Fatalf("nothing set: %+v %v", sc, err)
	}
	t.Setenv("SEAMLESS_STREAM_BUFFER_EVENTS", "64")
	t.Setenv("SEAMLESS_STREAM_HEARTBEAT", "30s")
	t.Setenv("SEAMLESS_STREAM_LIVE_GRACE", "2s")
	t.Setenv("SEAMLESS_STREAM_MAX_CONNECTIONS", "100")
	t.Setenv("SEAMLESS_STREAM_MAX_SUBSCRIPTIONS", "8")
	o, err := subscribeOptions(envConfig())
	if want := (seamless.SubscribeOptions{Buffer: 64, Heartbeat: 30 * time.Second, LiveGrace: 2 * time.Second}); err != nil || o != want {
		t.Fatalf("set: %+v %v; want %+v", o, err, want)
	}
	if sc, err := streamConfig(envConfig()); err != nil || sc.MaxConnections != 100 || sc.MaxSubscriptions != 8 {
		t.Fatalf("set: %+v %v", sc, err)
	}
	for name, bad := range map[string][]string{
		"SEAMLESS_STREAM_BUFFER_EVENTS":     {"1", "0", "1000001", "many"},
		"SEAMLESS_STREAM_HEARTBEAT":         {"500ms", "2h", "15"},
		"SEAMLESS_STREAM_LIVE_GRACE":        {"10ms", "2h", "5"},
		"SEAMLESS_STREAM_MAX_CONNECTIONS":   {"0", "-1", "lots"},
		"SEAMLESS_STREAM_MAX_SUBSCRIPTIONS": {"0", "10001"},
	} {
		for _, v := range bad {
			t.Setenv(name, v)
			_, err1 := subscribeOptions(envConfig())
			_, err2 := streamConfig(envConfig())
			var re *seamless.RequestError
			if err := errors.Join(err1, err2); !errors.As(err, &re) || re.Field != name {
				t.Errorf("%s=%q: %v; want a RequestError on that field", name, v, err)
			}
		}
		t.Setenv(name, "")
	}
}
