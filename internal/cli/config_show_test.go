package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// showDoc is config show --format json's document.
type showDoc struct {
	ConfigFile string         `json:"config_file"`
	Settings   []shownSetting `json:"settings"`
}

func (d showDoc) get(t *testing.T, env string) shownSetting {
	t.Helper()
	for _, s := range d.Settings {
		if s.Env == env {
			return s
		}
	}
	t.Fatalf("config show lacks %s", env)
	return shownSetting{}
}

// TestConfigShow: config show prints every setting of the table with its effective
// value and where it came from — default, file, env (naming a QMTL_ alias that gave
// it), flag — in JSON and as a table.
func TestConfigShow(t *testing.T) {
	runtimeEnv(t)
	unsetForTest(t, "SEAMLESS_DATA_DIR", "SEAMLESS_ADDR", "SEAMLESS_API_TOKENS", "SEAMLESS_API_TOKEN", "SEAMLESS_SERVER",
		"SEAMLESS_ARTIFACTS_S3_SECRET_KEY", "QMTL_SEAMLESS_ARTIFACTS_S3_SECRET_KEY")
	cfg := filepath.Join(t.TempDir(), "seamless.yaml")
	os.WriteFile(cfg, []byte("max_bars: 1000\nlog_format: text\nbackfill_window_bars: 60\naddr: 127.0.0.1:9000\n"), 0o644)
	t.Setenv("SEAMLESS_LOG_FORMAT", "json")                             // env over file
	t.Setenv("QMTL_SEAMLESS_COORDINATOR_URL", "http://coord.invalid:1") // the reference's alias
	t.Setenv("SEAMLESS_MAX_BARS", "lots")                               // shown, not refused: the flag wins anyway
	dataDir := t.TempDir()

	var out, errb strings.Builder
	code := Execute([]string{"--config", cfg, "--max-bars", "2000", "--data-dir", dataDir, "config", "show", "--format", "json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc showDoc
	if err := json.Unmarshal([]byte(out.String()), &doc); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if doc.ConfigFile != cfg {
		t.Errorf("config_file %q, want %q", doc.ConfigFile, cfg)
	}
	if len(doc.Settings) != len(settingsTable(venues)) {
		t.Errorf("%d settings shown, the table has %d", len(doc.Settings), len(settingsTable(venues)))
	}
	for _, tc := range []struct{ env, value, source, origin string }{
		{"SEAMLESS_CONFIG", cfg, "flag", "flag --config"},
		{"SEAMLESS_MAX_BARS", "2000", "flag", "flag --max-bars"},
		{"SEAMLESS_DATA_DIR", dataDir, "flag", "flag --data-dir"},
		{"SEAMLESS_LOG_FORMAT", "json", "env", "env"},
		{"SEAMLESS_COORDINATOR_URL", "http://coord.invalid:1", "env", "env QMTL_SEAMLESS_COORDINATOR_URL"},
		{"SEAMLESS_BACKFILL_WINDOW_BARS", "60", "file", "file " + cfg},
		{"SEAMLESS_ADDR", "127.0.0.1:9000", "file", "file " + cfg},
		{"SEAMLESS_BACKFILL_MAX_ATTEMPTS", "6", "default", "default"},
		{"SEAMLESS_STORE", "pebble", "default", "default"},
		{"SEAMLESS_BINANCE_URL", "https://api.binance.com", "default", "default"},
	} {
		s := doc.get(t, tc.env)
		if s.Value != tc.value || s.Source != tc.source || s.Origin != tc.origin {
			t.Errorf("%s: %q from %s (%s), want %q from %s (%s)", tc.env, s.Value, s.Source, s.Origin, tc.value, tc.source, tc.origin)
		}
	}
	if s := doc.get(t, "SEAMLESS_LEASE_TTL"); s.Value != "" || s.Default != "120s with a distributed coordinator, 60s in-process" || s.Doc == "" {
		t.Errorf("lease TTL: %+v", s)
	}

	// The table: one line per setting, with the file's path and the alias named.
	out.Reset()
	errb.Reset()
	if code := Execute([]string{"--config", cfg, "config", "show"}, &out, &errb); code != 0 {
		t.Fatalf("table: exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1+len(settingsTable(venues)) || !strings.HasPrefix(lines[0], "SETTING") {
		t.Fatalf("table of %d lines: %s", len(lines), out.String())
	}
	for _, want := range [][]string{
		{"SEAMLESS_MAX_BARS", "lots", "env"},
		{"SEAMLESS_BACKFILL_WINDOW_BARS", "60", "file " + cfg},
		{"SEAMLESS_COORDINATOR_URL", "http://coord.invalid:1", "env QMTL_SEAMLESS_COORDINATOR_URL"},
		{"SEAMLESS_LEASE_TTL", "(120s with a distributed coordinator, 60s in-process)", "default"},
	} {
		if line := grep(out.String(), want[0]+" "); strings.Join(strings.Fields(line), " ") != strings.Join(want, " ") {
			t.Errorf("table line %q, want the fields %q", line, want)
		}
	}

	if code := Execute([]string{"config", "show", "--format", "yaml"}, &out, &errb); code != 2 {
		t.Errorf("--format yaml: exit %d, want 2", code)
	}
}

// TestConfigShowRedactsSecrets: API tokens, S3 keys and the passwords of DSNs and
// URLs never reach config show's output; what is not secret about them (token names,
// the DSN's host) does.
func TestConfigShowRedactsSecrets(t *testing.T) {
	runtimeEnv(t)
	secrets := map[string]string{
		"SEAMLESS_API_TOKENS":              "alice:tok-alice-1,tok-bare-2",
		"SEAMLESS_API_TOKEN":               "tok-client-3",
		"SEAMLESS_STORE":                   "postgres://seamless:pw-dsn-4@db.internal:5432/seamless?sslmode=disable&password=pw-query-5",
		"SEAMLESS_COORDINATOR_URL":         "http://ops:pw-coord-6@coord.internal:8090",
		"SEAMLESS_ARTIFACTS_S3_ACCESS_KEY": "key-s3-7",
		"SEAMLESS_ARTIFACTS_S3_SECRET_KEY": "secret-s3-8",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	for _, format := range []string{"json", "table"} {
		var out, errb strings.Builder
		if code := Execute([]string{"config", "show", "--format", format}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s", format, code, errb.String())
		}
		for _, leak := range []string{"tok-alice-1", "tok-bare-2", "tok-client-3", "pw-dsn-4", "pw-query-5", "pw-coord-6", "key-s3-7", "secret-s3-8"} {
			if strings.Contains(out.String()+errb.String(), leak) {
				t.Errorf("%s output shows the secret %q", format, leak)
			}
		}
		for _, kept := range []string{"alice:xxxxx,xxxxx", "seamless:xxxxx@db.internal:5432", "ops:xxxxx@coord.internal:8090"} {
			if !strings.Contains(out.String(), kept) {
				t.Errorf("%s output lacks %q: %s", format, kept, out.String())
			}
		}
	}
}
