package cli

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// TestOpenAPIMatchesTheServedRoutes: api/openapi.yaml describes exactly the routes
// `seamless serve` answers — its own, the lease API's and the schema registry's, and
// the report archive — no more, no fewer. A new route fails this test until it is
// described there (and in docs/api.md).
func TestOpenAPIMatchesTheServedRoutes(t *testing.T) {
	g := &globals{dataDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	rt, err := g.open()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	srv, err := server.New(server.Config{Provider: rt.provider, Registry: rt.registry, Mounts: append(rt.mounts(), consoleMounts()...)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	served := srv.Routes()

	raw, err := os.ReadFile(filepath.Join("..", "..", "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Info    map[string]any            `yaml:"info"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info["version"] != wire.APIVersion {
		t.Fatalf("api/openapi.yaml: openapi %q, info.version %v (want the api_version of /healthz, %s)", doc.OpenAPI, doc.Info["version"], wire.APIVersion)
	}
	methods := []string{"get", "put", "post", "delete", "patch", "head", "options"}
	var described []string
	for path, ops := range doc.Paths {
		for m := range ops {
			if slices.Contains(methods, m) {
				described = append(described, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(described)
	for _, r := range served {
		if !slices.Contains(described, r) {
			t.Errorf("served but not in api/openapi.yaml: %s", r)
		}
	}
	for _, r := range described {
		if !slices.Contains(served, r) {
			t.Errorf("in api/openapi.yaml but not served: %s", r)
		}
	}
	if len(served) < 20 {
		t.Errorf("only %d routes served: %v", len(served), served)
	}
}
