package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The reference's dashboard, recording rule and alert names (SPEC §8, REFERENCE
// "Dashboards and alerts"), plus the ones issue 6 adds.
var (
	wantDashboards = []string{"Seamless SLA Overview", "Backfill Coordinator Health", "Conformance Quality",
		"Seamless Coverage & Freshness", "Seamless Upstream & Live", "Seamless Error Budget"}
	wantRecords = []string{"seamless_sla_total_p99_seconds"}
	wantAlerts  = []string{"SeamlessSla99thDegraded", "SeamlessBackfillStuckLease", "SeamlessConformanceFlagSpike",
		"SeamlessBackfillStaleClaims", "SeamlessUpstreamRateLimited", "SeamlessLiveFeedDown", "SeamlessCoordinatorFallback",
		"SeamlessErrorBudgetBurn"}
)

const (
	rulesFile     = "prometheus/rules.yml"
	rulesTestFile = "prometheus/rules_test.yml"
	operationsDoc = "../docs/operations.md"
)

// TestRenderedDashboardsUpToDate renders the Jsonnet sources again and compares them
// with the checked-in JSON.
func TestRenderedDashboardsUpToDate(t *testing.T) {
	rendered, err := RenderDashboards(".")
	if err != nil {
		t.Fatal(err)
	}
	const fix = "run `go generate ./deploy` and commit deploy/dashboards/rendered"
	for name, want := range rendered {
		got, err := os.ReadFile(filepath.Join(RenderedDir, name))
		if errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/%s is missing: %s", RenderedDir, name, fix)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s/%s is stale (differs from its Jsonnet source): %s", RenderedDir, name, fix)
		}
	}
	old, _ := filepath.Glob(filepath.Join(RenderedDir, "*.json"))
	for _, p := range old {
		if _, ok := rendered[filepath.Base(p)]; !ok {
			t.Errorf("%s has no Jsonnet source: %s", p, fix)
		}
	}
}

// dashboard is the part of Grafana's dashboard model the tests look at.
type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		GridPos struct{ X, Y, W, H int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	rendered, err := RenderDashboards(".")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]dashboard{}
	for name, b := range rendered {
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = d
	}
	return out
}

// TestDashboardsWellFormed: the reference's titles exist, uids are unique, every
// panel has an id, a place on the grid, the ${datasource} data source and queries.
func TestDashboardsWellFormed(t *testing.T) {
	titles := map[string]bool{}
	uids := map[string]string{}
	for name, d := range loadDashboards(t) {
		titles[d.Title] = true
		if prev, dup := uids[d.UID]; dup || d.UID == "" {
			t.Errorf("%s: uid %q empty or shared with %s", name, d.UID, prev)
		}
		uids[d.UID] = name
		hasDS := false
		for _, v := range d.Templating.List {
			hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource")
		}
		if !hasDS {
			t.Errorf("%s: no ${datasource} variable", name)
		}
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("%s: panel %q has id %d (zero or duplicate)", name, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q off the grid: %+v", name, p.Title, p.GridPos)
			}
			if p.Type == "row" {
				continue
			}
			if p.Title == "" || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
				t.Errorf("%s: panel %q lacks a title, the ${datasource} data source or queries", name, p.Title)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("%s: panel %q has an empty query or a missing/duplicate refId", name, p.Title)
				}
				refs[tg.RefID] = true
			}
		}
	}
	for _, want := range wantDashboards {
		if !titles[want] {
			t.Errorf("no dashboard titled %q", want)
		}
	}
}

// ruleFile is Prometheus's rule file format.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

// anchor is the GitHub heading anchor of a markdown heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestRulesNamesAndRunbooks: the reference's rule names exist, every alert has a
// severity and a runbook link that resolves to a heading of docs/operations.md, and
// rules_test.yml has a case in which it fires.
func TestRulesNamesAndRunbooks(t *testing.T) {
	rf := loadRules(t)
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			anchors[anchor(strings.TrimLeft(line, "#"))] = true
		}
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	tb, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(tb, &tests); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	records, alerts := map[string]bool{}, map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records[r.Record] = true
				continue
			}
			alerts[r.Alert] = true
			if r.Labels["severity"] == "" {
				t.Errorf("alert %s has no severity label", r.Alert)
			}
			rb := r.Annotations["runbook"]
			if a, ok := strings.CutPrefix(rb, "docs/operations.md#"); !ok || !anchors[a] {
				t.Errorf("alert %s: runbook %q does not point at a heading of docs/operations.md", r.Alert, rb)
			}
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("alert %s: %s needs a case where it fires and one where it does not (fires %v, quiet %v)",
					r.Alert, rulesTestFile, fires[r.Alert], quiet[r.Alert])
			}
		}
	}
	for _, r := range wantRecords {
		if !records[r] {
			t.Errorf("no recording rule %s", r)
		}
	}
	for _, a := range wantAlerts {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
}

// promtool finds the promtool binary (Debian package prometheus, installed by
// .ci/run). It fails the test, never skips it, when promtool is missing.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found in PATH (%v): install it with `apt-get install -y prometheus` (Debian's package; .ci/run installs it)", err)
	}
	return p
}

func runPromtool(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPromtoolRules: the rules load, and the unit tests of rules_test.yml (each
// alert firing on its condition and staying quiet otherwise) pass.
func TestPromtoolRules(t *testing.T) {
	runPromtool(t, nil, "check", "rules", rulesFile)
	runPromtool(t, nil, "test", "rules", rulesTestFile)
}

// grafanaVars are the Grafana interval variables the dashboards use in range
// selectors; they are replaced by a duration before the PromQL is parsed. Other
// variables ($node_id) appear only inside label matcher strings, which parse as they
// are.
var grafanaVars = regexp.MustCompile(`\$__(rate_interval|interval|range)\b`)

// labelValuesQuery is Grafana's label_values(selector, label) variable query.
var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

// usedQuery is one PromQL expression found in a dashboard or rule file.
type usedQuery struct{ where, expr string }

// usedQueries lists every PromQL expression of the dashboards (targets and variable
// queries) and of rules.yml, and the names the recording rules define.
func usedQueries(t *testing.T) ([]usedQuery, map[string]bool) {
	t.Helper()
	var qs []usedQuery
	for name, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				qs = append(qs, usedQuery{fmt.Sprintf("%s panel %q", name, p.Title), grafanaVars.ReplaceAllString(tg.Expr, "5m")})
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			m := labelValuesQuery.FindStringSubmatch(v.Definition)
			if m == nil {
				t.Fatalf("%s variable %s: unsupported query %q", name, v.Name, v.Definition)
			}
			qs = append(qs, usedQuery{fmt.Sprintf("%s variable %s", name, v.Name), m[1]})
		}
	}
	records := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, usedQuery{fmt.Sprintf("%s rule %s%s", rulesFile, r.Record, r.Alert), r.Expr})
			if r.Record != "" {
				records[r.Record] = true
			}
		}
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].where < qs[j].where })
	return qs, records
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
