// Package deploy holds what operators deploy next to Seamless: Grafana dashboards
// (Jsonnet sources in dashboards/, rendered JSON in dashboards/rendered/) and
// Prometheus recording and alerting rules (prometheus/rules.yml, unit-tested by
// prometheus/rules_test.yml). docs/operations.md explains how to load them.
//
// After editing a dashboard source, run
//
//	go generate ./deploy
//
// and commit the rendered JSON; go test ./deploy fails while it is stale.
package deploy

//go:generate go run ./internal/render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-jsonnet"
)

// DashboardsDir and RenderedDir are relative to this package's directory.
const (
	DashboardsDir = "dashboards"
	RenderedDir   = "dashboards/rendered"
)

// RenderDashboards evaluates every dashboards/*.jsonnet under dir (the deploy
// directory) and returns the Grafana JSON keyed by output file name
// ("sla_overview.json"): two-space indented, keys sorted, ending in a newline, so
// renders are byte-for-byte reproducible.
func RenderDashboards(dir string) (map[string][]byte, error) {
	src := filepath.Join(dir, DashboardsDir)
	paths, err := filepath.Glob(filepath.Join(src, "*.jsonnet"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no Jsonnet dashboards in %s", src)
	}
	sort.Strings(paths)
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		code, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		vm := jsonnet.MakeVM()
		vm.Importer(&jsonnet.FileImporter{JPaths: []string{src}})
		// The file's base name keeps error messages and import resolution stable
		// wherever the repository is checked out.
		text, err := vm.EvaluateAnonymousSnippet(filepath.Join(src, filepath.Base(p)), string(code))
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", filepath.Base(p), err)
		}
		var v any
		if err := json.Unmarshal([]byte(text), &v); err != nil {
			return nil, fmt.Errorf("render %s: %w", filepath.Base(p), err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(filepath.Base(p), ".jsonnet")+".json"] = buf.Bytes()
	}
	return out, nil
}

// WriteDashboards renders the dashboards under dir and replaces the contents of
// dashboards/rendered with them (removing renders whose source is gone).
func WriteDashboards(dir string) error {
	rendered, err := RenderDashboards(dir)
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, RenderedDir)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dst, "*.json"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, ok := rendered[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, b := range rendered {
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
