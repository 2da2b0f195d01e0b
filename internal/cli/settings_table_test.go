package cli

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's settings table from the settings table")

// TestSettingsTableInvariants: the rules the rest of the CLI relies on.
func TestSettingsTableInvariants(t *testing.T) {
	table := settingsTable(venues)
	root := newRoot(&globals{stdout: io.Discard, stderr: io.Discard})
	keyRE := regexp.MustCompile(`^[a-z][a-z0-9_]*[a-z0-9]$`)
	seen := map[string]bool{}
	for _, s := range table {
		if seen[s.Key] {
			t.Errorf("%s appears twice", s.Key)
		}
		seen[s.Key] = true
		if !keyRE.MatchString(s.Key) {
			t.Errorf("key %q: want lower case words joined by _", s.Key)
		}
		if s.Doc == "" {
			t.Errorf("%s has no doc", s.Key)
		}
		if s.QMTL && s.NoFile {
			t.Errorf("%s has a QMTL_ alias but no configuration key", s.Env())
		}
		if strings.HasPrefix(s.Flag, "--") {
			if f := root.PersistentFlags().Lookup(strings.TrimPrefix(s.Flag, "--")); f == nil {
				t.Errorf("%s: root flag %s is not registered", s.Key, s.Flag)
			} else if !strings.Contains(f.Usage, s.Env()) {
				t.Errorf("%s: --help of %s does not name %s", s.Key, s.Flag, s.Env())
			} else if strings.Contains(f.Usage, "`") {
				// A quoted word would become the flag's value name in --help.
				t.Errorf("%s: --help of %s reads %q", s.Key, s.Flag, f.Usage)
			}
		}
	}
	// The secrets stay secret.
	for key, r := range map[string]redaction{
		"api_tokens": secretTokens, "api_token": secret, "artifacts_s3_access_key": secret, "artifacts_s3_secret_key": secret,
		"store": secretURL, "coordinator_url": secretURL,
	} {
		if i := slices.IndexFunc(table, func(s Setting) bool { return s.Key == key }); i < 0 || table[i].Secret != r {
			t.Errorf("%s is not redacted as %v", key, r)
		}
	}
}

// TestSettingErrorsNameTheirSource: a bad value is refused (exit 2) with a message
// naming the variable, the value (redacted for secrets) and the layer it came from.
func TestSettingErrorsNameTheirSource(t *testing.T) {
	runtimeEnv(t)
	unsetForTest(t, "SEAMLESS_API_TOKENS")
	dir := t.TempDir()
	coverage := []string{"coverage", "--node", node, "--interval", "60"}
	cfg := filepath.Join(t.TempDir(), "seamless.yaml")
	os.WriteFile(cfg, []byte("cache_bytes: lots\n"), 0o644)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
		hide string // must not appear
	}{
		{"env", map[string]string{"SEAMLESS_CACHE_BYTES": "x"}, coverage,
			`seamless: SEAMLESS_CACHE_BYTES="x" (env): want a byte count`, ""},
		{"QMTL_ alias", map[string]string{"QMTL_SEAMLESS_CACHE_BYTES": "x"}, coverage,
			`seamless: SEAMLESS_CACHE_BYTES="x" (env QMTL_SEAMLESS_CACHE_BYTES): want a byte count`, ""},
		{"file", nil, append([]string{"--config", cfg}, coverage...),
			`seamless: SEAMLESS_CACHE_BYTES="lots" (file ` + cfg + `): want a byte count`, ""},
		{"flag", nil, append(coverage, "--max-bars", "abc"),
			`seamless: SEAMLESS_MAX_BARS="abc" (flag --max-bars): want a whole number of bars per request, at least 1`, ""},
		{"log level", map[string]string{"SEAMLESS_LOG_LEVEL": "loud"}, coverage,
			`seamless: SEAMLESS_LOG_LEVEL="loud" (env): want debug, info, warn or error`, ""},
		{"DSN password", map[string]string{"SEAMLESS_STORE": "mysql://u:pw-9@db.internal/x"}, coverage,
			`seamless: SEAMLESS_STORE="mysql://u:xxxxx@db.internal/x" (env): want pebble or a postgres:// DSN`, "pw-9"},
		{"API tokens", map[string]string{"SEAMLESS_API_TOKENS": "alice:tok-1,:orphan-2"}, []string{"serve", "--addr", "127.0.0.1:0"},
			`seamless: SEAMLESS_API_TOKENS="alice:xxxxx,:xxxxx" (env): API token 2: want token or name:token`, "orphan-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, stderr := run(t, dir, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
			if tc.hide != "" && strings.Contains(stderr, tc.hide) {
				t.Errorf("stderr shows the secret %q: %s", tc.hide, stderr)
			}
		})
	}
}

// readmeTable is the README's settings table between these markers.
const (
	readmeBegin = "<!-- settings table: generated from internal/cli/settings.go and venues.go by `go test ./internal/cli -run TestREADMESettingsTable -update-readme`; edit those, not this -->\n"
	readmeEnd   = "<!-- end of settings table -->\n"
)

// settingsMarkdown renders the settings table as the README shows it.
func settingsMarkdown(table []Setting) string {
	var b strings.Builder
	b.WriteString("| variable | file key | flag | meaning | default |\n|---|---|---|---|---|\n")
	for _, s := range table {
		v := "`" + s.Env() + "`"
		if s.QMTL {
			v += " (alias `QMTL_" + s.Env() + "`)"
		}
		key := "`" + s.Key + "`"
		if s.NoFile {
			key = "—"
		}
		fl := ""
		if s.Flag != "" {
			fl = "`" + s.Flag + "`"
		}
		def := "empty"
		switch {
		case s.DefaultDoc != "":
			def = s.DefaultDoc
		case s.Default != "":
			def = "`" + s.Default + "`"
		}
		doc := s.Doc
		if s.Secret != public {
			doc += " (redacted in `config show`)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", v, key, fl, doc, def)
	}
	return b.String()
}

// TestREADMESettingsTable: README.md's configuration table is the settings table
// (run with -update-readme to regenerate it), and every SEAMLESS_ variable the README
// and docs/ mention is one of its settings.
func TestREADMESettingsTable(t *testing.T) {
	const path = "../../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, readmeBegin), strings.Index(readme, readmeEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the settings table markers %q … %q", readmeBegin, readmeEnd)
	}
	want := settingsMarkdown(settingsTable(venues))
	if got := readme[i+len(readmeBegin) : j]; got != want {
		if *updateREADME {
			if err := os.WriteFile(path, []byte(readme[:i+len(readmeBegin)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("README.md's settings table differs from the settings table; run go test ./internal/cli -run TestREADMESettingsTable -update-readme")
		}
	}

	envs := map[string]bool{}
	for _, s := range settingsTable(venues) {
		envs[s.Env()] = true
	}
	docs, _ := filepath.Glob("../../docs/*.md")
	mention := regexp.MustCompile(`SEAMLESS_[A-Z0-9_]+`)
	for _, p := range append(docs, path) {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mention.FindAllString(string(text), -1) {
			if envs[m] || strings.HasPrefix(m, "SEAMLESS_TEST_") {
				continue
			}
			// A prefix standing for a family (SEAMLESS_BACKFILL_*) must start some setting.
			if strings.HasSuffix(m, "_") && slices.ContainsFunc(slices.Collect(maps.Keys(envs)), func(e string) bool { return strings.HasPrefix(e, m) }) {
				continue
			}
			t.Errorf("%s mentions %s, which is not a setting", filepath.Base(p), m)
		}
	}
}
