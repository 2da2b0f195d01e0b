package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// unsetForTest clears variables for the test and restores them after it.
func unsetForTest(t *testing.T, names ...string) {
	for _, n := range names {
		t.Setenv(n, "")
		os.Unsetenv(n)
	}
}

func TestConfigFile(t *testing.T) {
	unsetForTest(t, "SEAMLESS_MAX_BARS", "SEAMLESS_DATA_DIR", "SEAMLESS_CONFIG")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "seamless.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\nmax_bars: 1000\n"), 0o644)
	fetch := []string{"--config", cfg, "fetch", "--node", node, "--interval", "60", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-02T00:00:00Z"}
	var out, errb strings.Builder
	if code := Execute(fetch, &out, &errb); code != 2 || !strings.Contains(errb.String(), "maximum of 1000") {
		t.Fatalf("max_bars from the file: exit %d %s", code, errb.String())
	}
	// The environment wins over the file, and flags over both. (Execute put the file's
	// values into the environment; clear data_dir so the file provides it again.)
	unsetForTest(t, "SEAMLESS_DATA_DIR")
	t.Setenv("SEAMLESS_MAX_BARS", "100000")
	out.Reset()
	errb.Reset()
	if code := Execute(fetch, &out, &errb); code != 0 {
		t.Fatalf("env over file: exit %d %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "CURRENT")); err != nil {
		t.Fatalf("data_dir from the file not used: %v", err)
	}
	if code := Execute(append(fetch, "--max-bars", "10"), &out, &errb); code != 2 {
		t.Fatalf("flag over env: exit %d", code)
	}
	os.WriteFile(cfg, []byte("data_dri: x\n"), 0o644)
	errb.Reset()
	if code := Execute(fetch, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown key "data_dri"`) {
		t.Fatalf("unknown key: exit %d %s", code, errb.String())
	}
	if code := Execute([]string{"--config", filepath.Join(dir, "missing.yaml"), "presets"}, &out, &errb); code != 2 {
		t.Fatalf("missing explicit config: exit %d", code)
	}
}
