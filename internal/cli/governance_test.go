package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/internal/server"
)

// TestSchemaGovernanceOverHTTP is the operator's story on a real runtime and server:
// register a schema for a node, serve in canary (responses carry schema_id and the
// violation metric counts), promote to strict with an audit record naming the API
// token, and see a deviating payload rejected with schema_violation.
func TestSchemaGovernanceOverHTTP(t *testing.T) {
	t.Setenv("SEAMLESS_STORE", "")
	t.Setenv("SEAMLESS_COORDINATOR_URL", "")
	g := &globals{dataDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	rt, err := g.openRuntime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	tokens, _ := server.ParseTokens("alice:s3cret")
	srv, err := server.New(server.Config{Provider: rt.provider, Registry: rt.registry, Logger: rt.log, Mounts: rt.mounts(), Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	subject := url.PathEscape(node)
	// An approved schema without volume: the demo payload deviates from it.
	schema := `{"fields":[{"name":"ts","dtype":"int64"},{"name":"open","dtype":"float64"},{"name":"high","dtype":"float64"},{"name":"low","dtype":"float64"},{"name":"close","dtype":"float64"}]}`
	body, _ := json.Marshal(map[string]string{"schema": schema})
	if code, out := do("POST", "/subjects/"+subject+"/versions", string(body)); code != 200 || !strings.Contains(out, `"id"`) {
		t.Fatalf("register: %d %s", code, out)
	}
	bars := "/v1/bars?node_id=" + url.QueryEscape(node) + "&interval=60&start=2024-03-01T00:00:00Z&end=2024-03-01T01:00:00Z&format=json"
	code, out := do("GET", bars, "")
	if code != 200 || !strings.Contains(out, `"schema_id":`) || !strings.Contains(out, `"schema_version":1`) {
		t.Fatalf("canary fetch: %d %.300s", code, out)
	}
	_, metrics := do("GET", "/metrics", "")
	if !strings.Contains(metrics, `seamless_schema_validation_failures_total{mode="canary",subject="`+node+`"}`) {
		t.Fatalf("canary violation not counted:\n%s", grep(metrics, "schema_validation"))
	}
	if code, out = do("POST", "/v1/schema/promote/"+subject, `{"force":true,"reason":"validated by hand"}`); code != 200 {
		t.Fatalf("promote: %d %s", code, out)
	}
	if code, out = do("GET", "/v1/schema/audit", ""); code != 200 || !strings.Contains(out, "alice") || !strings.Contains(out, "validated by hand") {
		t.Fatalf("audit: %d %.400s", code, out)
	}
	if code, out = do("GET", bars, ""); code != 422 || !strings.Contains(out, `"code":"schema_violation"`) {
		t.Fatalf("strict fetch: %d %.300s", code, out)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
