package cli

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
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
	// The file's values were used, not written into the environment.
	for _, n := range []string{"SEAMLESS_DATA_DIR", "SEAMLESS_MAX_BARS"} {
		if v, set := os.LookupEnv(n); set {
			t.Fatalf("applying the file set %s=%q in the environment", n, v)
		}
	}
	// The environment wins over the file, and flags over both.
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

// TestConfigErrorsAsJSON: a configuration file that cannot be used is a bad request
// (exit 2) reported like every other error: with --format json also as the
// {"error":{…}} document on stdout; in text mode only on stderr. Nothing runs, and
// nothing of the file is applied.
func TestConfigErrorsAsJSON(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_DATA_DIR", "SEAMLESS_MAX_BARS")
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	data := filepath.Join(dir, "from-file")
	unknown := write("unknown.yaml", "data_dir: "+data+"\nmax_bars: 10\ndata_dri: x\n")
	badYAML := write("bad.yaml", "data_dir: [unclosed\n")
	nested := write("nested.yaml", "store:\n  url: postgres://x\n")
	missing := filepath.Join(dir, "missing.yaml")
	fetch := []string{"fetch", "--node", node, "--interval", "60", "--start", "2024-01-01T00:00:00Z", "--end", "2024-01-01T01:00:00Z"}
	for _, tc := range []struct {
		name string
		cfg  []string // how the file is named: --config flag, or nil for SEAMLESS_CONFIG
		env  string
		want string // in the message
	}{
		{"unknown key", []string{"--config", unknown}, "", `unknown key "data_dri"`},
		{"unknown key, --config=FILE", []string{"--config=" + unknown}, "", `unknown key "data_dri"`},
		{"bad YAML", []string{"--config", badYAML}, "", "bad.yaml"},
		{"not a scalar", []string{"--config", nested}, "", `key "store": want a scalar or a list`},
		{"missing --config", []string{"--config", missing}, "", "missing.yaml"},
		{"missing SEAMLESS_CONFIG", nil, missing, "missing.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("SEAMLESS_CONFIG", tc.env)
			}
			for _, cmd := range [][]string{
				append(append([]string{}, fetch...), "--format", "json"),
				{"coverage", "--node", node, "--interval", "60", "--format=json"},
				{"reports", "--node", node, "--format", "json"},
				{"schema", "list", "--format", "json"},
				{"config", "show", "--format", "json"},
			} {
				data := t.TempDir()
				args := append(append(append([]string{}, tc.cfg...), "--data-dir", data), cmd...)
				var out, errb strings.Builder
				code := Execute(args, &out, &errb)
				if code != 2 {
					t.Fatalf("%v: exit %d, want 2 (stderr %q)", cmd, code, errb.String())
				}
				var doc struct {
					Error struct{ Code, Message, Field string } `json:"error"`
				}
				if err := json.Unmarshal([]byte(out.String()), &doc); err != nil || doc.Error.Code != "bad_request" ||
					doc.Error.Field != "config" || !strings.Contains(doc.Error.Message, tc.want) {
					t.Fatalf("%v: stdout %q, want a bad_request document on field config mentioning %q", cmd, out.String(), tc.want)
				}
				if !strings.Contains(errb.String(), "seamless: "+doc.Error.Message) {
					t.Fatalf("%v: stderr %q lacks the message", cmd, errb.String())
				}
				if entries, _ := os.ReadDir(data); len(entries) != 0 {
					t.Fatalf("%v: the command ran after the configuration error (data dir holds %d entries)", cmd, len(entries))
				}
			}
			// Text output: the message on stderr only.
			var out, errb strings.Builder
			if code := Execute(append(append([]string{}, tc.cfg...), append([]string{"--data-dir", t.TempDir()}, fetch...)...), &out, &errb); code != 2 ||
				out.Len() != 0 || !strings.HasPrefix(errb.String(), "seamless: ") || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("text: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
			}
			// A command without --format (presets) fails the same way.
			out.Reset()
			errb.Reset()
			if code := Execute(append(append([]string{}, tc.cfg...), "presets"), &out, &errb); code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("presets: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
			}
		})
	}
	// The unknown key's file applied none of its valid keys.
	for _, n := range []string{"SEAMLESS_DATA_DIR", "SEAMLESS_MAX_BARS"} {
		if v, set := os.LookupEnv(n); set {
			t.Errorf("a refused file set %s=%q", n, v)
		}
	}
}

// TestConfigErrorsReachEveryCommand: the root command reports configuration errors in
// its PersistentPreRunE, which a subcommand's own PersistentPreRun would replace.
func TestConfigErrorsReachEveryCommand(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.PersistentPreRun != nil || sub.PersistentPreRunE != nil {
				t.Errorf("%q has its own PersistentPreRun: configuration errors would not be reported for it", sub.CommandPath())
			}
			walk(sub)
		}
	}
	root := newRoot(&globals{stdout: io.Discard, stderr: io.Discard})
	if root.PersistentPreRunE == nil {
		t.Fatal("the root command has no PersistentPreRunE")
	}
	walk(root)
}
