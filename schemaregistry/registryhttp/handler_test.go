package registryhttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	sr "github.com/seamless-data/seamless/schemaregistry"
	"github.com/seamless-data/seamless/schemaregistry/registryhttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

const (
	ohlcvDoc = `{"fields":[{"name":"ts","dtype":"int64"},{"name":"open","dtype":"float64"},{"name":"high","dtype":"float64"},{"name":"low","dtype":"float64"},{"name":"close","dtype":"float64"},{"name":"volume","dtype":"float64"}]}`
	node     = "ohlcv:binance:BTC/USDT:1m"
	escaped  = "ohlcv:binance:BTC%2FUSDT:1m"
)

type server struct {
	*httptest.Server
	reg     *sr.Registry
	clock   *clock.Fake
	metrics *prometheus.Registry
}

// newServer serves a registry whose actor is the X-Test-Actor header: a stand-in for
// the auth middleware that puts the token's name in the context.
func newServer(t *testing.T, bundleRoot string) server {
	t.Helper()
	metrics := prometheus.NewRegistry()
	hook, err := sr.FailureCounter(metrics)
	if err != nil {
		t.Fatal(err)
	}
	fake := clock.NewFake(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	reg, err := sr.Open(ctx, sr.NewMemStore(), sr.Options{Clock: fake, OnValidationFailure: hook})
	if err != nil {
		t.Fatal(err)
	}
	h := registryhttp.New(reg, registryhttp.Options{
		Actor:      func(r *http.Request) string { return r.Header.Get("X-Test-Actor") },
		BundleRoot: bundleRoot,
	})
	s := httptest.NewServer(h)
	t.Cleanup(func() {
		s.Close()
		reg.Close()
	})
	return server{Server: s, reg: reg, clock: fake, metrics: metrics}
}

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	req.Header.Set("X-Test-Actor", "ops-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, url, b, err)
		}
	} else {
		out = map[string]any{"raw": string(b)}
	}
	return resp.StatusCode, out
}

func schemaBody(doc string) string {
	b, _ := json.Marshal(map[string]string{"schema": doc})
	return string(b)
}

// TestReferenceClientRoutes speaks the reference client's three routes as it does:
// POST versions with the document as a JSON string, GET latest, GET schemas/ids.
func TestReferenceClientRoutes(t *testing.T) {
	s := newServer(t, "")
	code, body := call(t, "POST", s.URL+"/subjects/"+escaped+"/versions", schemaBody(ohlcvDoc))
	if code != 200 || body["id"] != float64(1) {
		t.Fatalf("POST versions = %d %v", code, body)
	}
	code, body = call(t, "GET", s.URL+"/subjects/"+escaped+"/versions/latest", "")
	if code != 200 || body["id"] != float64(1) || body["version"] != float64(1) || body["subject"] != node {
		t.Fatalf("GET latest = %d %v", code, body)
	}
	got, err := sr.Parse([]byte(body["schema"].(string)))
	if err != nil || !got.Equal(sr.MustParse(ohlcvDoc)) {
		t.Errorf("latest schema = %v, %v", body["schema"], err)
	}
	code, body = call(t, "GET", s.URL+"/schemas/ids/1", "")
	if code != 200 || body["schema"] != string(got.Canonical()) {
		t.Errorf("GET schemas/ids/1 = %d %v", code, body)
	}
	// Another subject, same schema: same id.
	code, body = call(t, "POST", s.URL+"/subjects/ohlcv:demo:ETH-USD:5m/versions", schemaBody(ohlcvDoc))
	if code != 200 || body["id"] != float64(1) {
		t.Errorf("same schema, other subject = %d %v", code, body)
	}
	code, body = call(t, "GET", s.URL+"/subjects", "")
	if code != 200 || body["raw"] != `["ohlcv:binance:BTC/USDT:1m","ohlcv:demo:ETH-USD:5m"]`+"\n" {
		t.Errorf("GET subjects = %d %v", code, body)
	}
	code, body = call(t, "GET", s.URL+"/subjects/"+escaped+"/versions", "")
	if code != 200 || body["raw"] != "[1]\n" {
		t.Errorf("GET versions = %d %v", code, body)
	}
}

func TestIncompatibleAndErrors(t *testing.T) {
	s := newServer(t, "")
	call(t, "POST", s.URL+"/subjects/"+escaped+"/versions", schemaBody(ohlcvDoc))
	noVolume := strings.Replace(ohlcvDoc, `,{"name":"volume","dtype":"float64"}`, `,{"name":"volume","dtype":"string"},{"name":"vwap","dtype":"float64"}`, 1)
	code, body := call(t, "POST", s.URL+"/compatibility/subjects/"+escaped+"/versions/latest?verbose=true", schemaBody(noVolume))
	msgs, _ := body["messages"].([]any)
	if code != 200 || body["is_compatible"] != false || len(msgs) != 2 {
		t.Fatalf("compatibility = %d %v", code, body)
	}
	code, body = call(t, "POST", s.URL+"/subjects/"+escaped+"/versions", schemaBody(noVolume))
	e, _ := body["error"].(map[string]any)
	if code != 409 || body["error_code"] != float64(409) || e["code"] != sr.CodeIncompatible ||
		!strings.HasPrefix(body["message"].(string), "Schema update rejected: incompatible with previous version 1") ||
		len(e["messages"].([]any)) != 2 {
		t.Errorf("incompatible POST = %d %v", code, body)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"POST", "/subjects/x/versions", `{"schema":"{\"fields\":[{\"name\":\"a\",\"dtype\":\"decimal\"}]}"}`, 422, sr.CodeInvalidSchema},
		{"POST", "/subjects/x/versions", `not json`, 400, sr.CodeBadRequest},
		{"GET", "/subjects/nobody/versions/latest", "", 404, sr.CodeNotFound},
		{"GET", "/subjects/" + escaped + "/versions/7", "", 404, sr.CodeNotFound},
		{"GET", "/subjects/" + escaped + "/versions/zero", "", 400, sr.CodeBadRequest},
		{"GET", "/schemas/ids/99", "", 404, sr.CodeNotFound},
		{"PUT", "/config/" + escaped, `{"compatibility":"SIDEWAYS"}`, 400, sr.CodeBadRequest},
		{"POST", "/v1/schema/promote/" + escaped, `{"reason":"now"}`, 409, sr.CodePromotionRefused},
		{"POST", "/v1/schema/promote/" + escaped, `{"force":true}`, 400, sr.CodeBadRequest},
		{"POST", "/v1/schema/promote/" + escaped, `{"force":true,"reason":"r","bundle_dir":"b"}`, 400, sr.CodeBadRequest},
		{"GET", "/nowhere", "", 404, "not_found"},
	} {
		code, body := call(t, c.method, s.URL+c.path, c.body)
		e, _ := body["error"].(map[string]any)
		if code != c.status || e["code"] != c.code || body["message"] == "" {
			t.Errorf("%s %s = %d %v, want %d %s", c.method, c.path, code, body, c.status, c.code)
		}
	}
}

// TestGovernanceFlow runs the operator story over HTTP: register, canary with
// violations on the metric, a refused then allowed promotion with a bundle, a rejected
// payload in strict, and the audit trail.
func TestGovernanceFlow(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bundle"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bundle", "ohlcv.json"), []byte(ohlcvDoc), 0o644)
	bundle, err := sr.BundleDir(filepath.Join(root, "bundle"))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, root)
	c, err := registryhttp.NewClient(s.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, node, sr.MustParse(ohlcvDoc)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetCompatibility(ctx, node, sr.FullTransitive); err != nil {
		t.Fatal(err)
	}
	if l, err := c.Compatibility(ctx, node); err != nil || l != sr.FullTransitive {
		t.Errorf("Compatibility = %s, %v", l, err)
	}
	if v, err := c.Version(ctx, node, -1); err != nil || v.ID != 1 || !v.Schema.Equal(sr.MustParse(ohlcvDoc)) {
		t.Errorf("Version = %+v, %v", v, err)
	}

	// Canary: a deviating payload passes and is counted.
	deviating := frame.Schema{Fields: frame.OHLCV.Fields[1:]}
	if res, err := s.reg.ValidateSchema(ctx, node, deviating); err != nil || res.OK() {
		t.Fatalf("canary: %+v, %v", res, err)
	}
	if n := failuresMetric(t, s, node, "canary"); n != 1 {
		t.Errorf("canary failures metric = %v", n)
	}
	if _, err := c.Promote(ctx, node, sr.PromoteRequest{Reason: "clean"}); sr.ErrorCode(err) != sr.CodePromotionRefused {
		t.Fatalf("promotion inside the window: %v", err)
	}
	s.clock.Advance(49 * time.Hour)
	if _, err := s.reg.ValidateSchema(ctx, node, frame.OHLCV); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx, node)
	if err != nil || !st.Eligible || st.Mode != sr.Canary {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	code, body := call(t, "POST", s.URL+"/v1/schema/promote/"+escaped, `{"reason":"48h clean","bundle_dir":"bundle"}`)
	if code != 200 {
		t.Fatalf("promote = %d %v", code, body)
	}
	// Strict: the same payload is rejected, and counted.
	if _, err := s.reg.ValidateSchema(ctx, node, deviating); sr.ErrorCode(err) != sr.CodeSchemaViolation {
		t.Errorf("strict: %v", err)
	}
	if n := failuresMetric(t, s, node, "strict"); n != 1 {
		t.Errorf("strict failures metric = %v", n)
	}
	if _, err := c.SetMode(ctx, node, sr.Canary, sr.PromoteRequest{Reason: "rollback drill"}); err != nil {
		t.Fatal(err)
	}

	recs, err := c.Audit(ctx, sr.AuditQuery{Subject: node})
	if err != nil || len(recs) != 4 {
		t.Fatalf("Audit = %d records, %v", len(recs), err)
	}
	p := recs[2]
	if p.Action != sr.ActionPromote || p.Actor != "ops-token" || p.Bundle != bundle.Fingerprint || p.Forced || p.Reason != "48h clean" || p.CleanSeconds != 49*3600 {
		t.Errorf("promotion record = %+v (bundle %s)", p, bundle.Fingerprint)
	}
	if recs[3].Action != sr.ActionDemote || recs[0].Actor != "" && recs[0].Actor != "anonymous" {
		t.Errorf("records = %+v", recs)
	}
	if got, err := c.Audit(ctx, sr.AuditQuery{Action: sr.ActionPromote, Limit: 5}); err != nil || len(got) != 1 {
		t.Errorf("Audit by action = %+v, %v", got, err)
	}
	if n, err := c.VerifyAudit(ctx); err != nil || n != 4 {
		t.Errorf("VerifyAudit = %d, %v", n, err)
	}
	if _, err := c.Version(ctx, "nobody", -1); !errors.Is(err, sr.ErrNotFound) {
		t.Errorf("missing subject: %v", err)
	}
}

// failuresMetric reads seamless_schema_validation_failures_total{subject,mode}.
func failuresMetric(t *testing.T, s server, subject, mode string) float64 {
	t.Helper()
	mfs, err := s.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != sr.FailureMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["subject"] == subject && labels["mode"] == mode {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
