package cli

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sr "github.com/seamless-data/seamless/schemaregistry"
	"github.com/seamless-data/seamless/schemaregistry/registryhttp"
)

// runSchema runs `seamless schema args…` (newSchemaCmd under a bare root, until the
// lead registers it in root.go).
func runSchema(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{dataDir: dir, stdout: &out, stderr: &errb}
	root := newRoot(g)
	root.AddCommand(newSchemaCmd(g))
	root.SetArgs(append([]string{"--data-dir", dir, "schema"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.Execute()
	exit := 0
	if err != nil {
		exit = 1
		if code(err) == "bad_request" {
			exit = 2
		}
	}
	return exit, out.String(), errb.String()
}

const cliDoc = `{"fields":[{"name":"ts","dtype":"int64"},{"name":"open","dtype":"float64"},{"name":"high","dtype":"float64"},{"name":"low","dtype":"float64"},{"name":"close","dtype":"float64"},{"name":"volume","dtype":"float64"}]}`

func testSchemaCLI(t *testing.T, dir string, extra ...string) {
	file := filepath.Join(t.TempDir(), "ohlcv.json")
	os.WriteFile(file, []byte(cliDoc), 0o644)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(strings.Replace(cliDoc, `"volume","dtype":"float64"`, `"volume","dtype":"string"`, 1)), 0o644)
	subj := "ohlcv:binance:BTC/USDT:1m"
	a := func(args ...string) []string { return append(args, extra...) }
	if c, out, e := runSchema(t, dir, a("register", subj, file)...); c != 0 || !strings.Contains(out, "version 1, schema id 1") {
		t.Fatalf("register: %d %s %s", c, out, e)
	}
	if c, out, e := runSchema(t, dir, a("register", "ohlcv", file, "--format", "json")...); c != 0 || !strings.Contains(out, `"id": 1`) {
		t.Fatalf("register json: %d %s %s", c, out, e)
	}
	if c, out, _ := runSchema(t, dir, a("check", subj, bad)...); c != 1 || !strings.Contains(out, `column "volume" is string`) {
		t.Errorf("check: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("register", subj, bad, "--format", "json")...); c != 1 || !strings.Contains(out, "incompatible_schema") || !strings.Contains(out, "Schema update rejected") {
		t.Errorf("register incompatible: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("list")...); c != 0 || out != "ohlcv\nohlcv:binance:BTC/USDT:1m\n" {
		t.Errorf("list: %d %q", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("get", subj)...); c != 0 || !strings.Contains(out, "volume           float64") {
		t.Errorf("get: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("get", "--id", "1", "--format", "json")...); c != 0 || !strings.Contains(out, `"fingerprint": "sha256:`) {
		t.Errorf("get --id: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("config", subj, "full")...); c != 0 || !strings.Contains(out, "FULL") {
		t.Errorf("config: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("mode", subj)...); c != 0 || !strings.Contains(out, "canary since") || !strings.Contains(out, "not eligible") {
		t.Errorf("mode: %d %s", c, out)
	}
	if c, out, e := runSchema(t, dir, a("promote", subj, "--reason", "go")...); c != 1 || !strings.Contains(e, "refused") {
		t.Errorf("promote inside window: %d %s %s", c, out, e)
	}
	if c, _, e := runSchema(t, dir, a("promote", subj, "--force")...); c != 2 {
		t.Errorf("forced without reason: %d %s", c, e)
	}
	bdir := filepath.Dir(file)
	if c, out, e := runSchema(t, dir, a("promote", subj, "--force", "--reason", "drill", "--bundle", bdir)...); c != 0 || !strings.Contains(out, "promote (forced)") {
		t.Errorf("forced promote: %d %s %s", c, out, e)
	}
	c, out, _ := runSchema(t, dir, a("bundle", bdir, "--format", "json")...)
	var b sr.Bundle
	if c != 0 || json.Unmarshal([]byte(out), &b) != nil || len(b.Files) != 1 {
		t.Fatalf("bundle: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("audit", "--action", "promote", "--format", "json")...); c != 0 || !strings.Contains(out, b.Fingerprint) || !strings.Contains(out, `"forced": true`) {
		t.Errorf("audit: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("audit")...); c != 0 || strings.Count(out, "\n") != 4 {
		t.Errorf("audit table: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("audit", "--verify")...); c != 0 || !strings.Contains(out, "intact: 4 records") {
		t.Errorf("verify: %d %s", c, out)
	}
	if c, out, _ := runSchema(t, dir, a("mode", subj, "canary", "--reason", "rollback")...); c != 0 || !strings.Contains(out, "demote") {
		t.Errorf("demote: %d %s", c, out)
	}
}

func TestSchemaCLIEmbedded(t *testing.T) {
	testSchemaCLI(t, t.TempDir())
}

func TestSchemaCLIServer(t *testing.T) {
	reg, err := sr.Open(t.Context(), sr.NewMemStore(), sr.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registryhttp.New(reg, registryhttp.Options{}))
	defer srv.Close()
	testSchemaCLI(t, t.TempDir(), "--server", srv.URL)
}
