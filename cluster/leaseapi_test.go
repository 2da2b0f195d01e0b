package cluster_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless/internal/etcdtest"
)

// call sends one request the way the reference's Python client does (requests.post
// with json=…) and decodes the JSON answer.
func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: status %d, body %q is not JSON: %v", method, url, resp.StatusCode, b, err)
	}
	return resp.StatusCode, m
}

// TestReferenceLeaseProtocolOnServe points the reference's coordinator wire protocol
// at the lease API of real `seamless serve` processes on a 3-member etcd cluster:
// claim → 200 with a token; a second claim, from any process of the cluster → 409;
// complete or fail with a wrong token → 409, leaving the lease alone; complete → ratio
// 1; fail → ratio 0; the next claim returns the ratio the key last ended with.
func TestReferenceLeaseProtocolOnServe(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.StartCluster(t, 3)
	var urls []string
	for _, name := range []string{"a", "b"} {
		n := serve(t, name, map[string]string{
			"SEAMLESS_COORDINATOR_URL": etcd.URL(),
			"SEAMLESS_DATA_DIR":        t.TempDir(),
			"SEAMLESS_LOG_LEVEL":       "info",
		})
		urls = append(urls, n.url())
	}
	a, b := urls[0], urls[1]
	// A key as the reference builds it: {node_id}:{interval}:{start}:{end}:{world_id}:{as_of}.
	const key = "ohlcv:binance:BTC/USDT:1m:60:1700000000:1700054000:world-1:"
	claimBody := `{"key":"` + key + `","lease_ms":60000}`

	before := time.Now().UnixMilli()
	code, m := call(t, "POST", a+"/v1/leases/claim", claimBody)
	if code != 200 {
		t.Fatalf("claim: %d %v", code, m)
	}
	lease, _ := m["lease"].(map[string]any)
	token, _ := lease["token"].(string)
	until, _ := lease["lease_until_ms"].(float64)
	if token == "" || int64(until) < before+60000-1000 || int64(until) > time.Now().UnixMilli()+60000+1000 {
		t.Fatalf("claim body %v: want lease.token and lease_until_ms ≈ now + lease_ms", m)
	}
	if _, ok := m["completion_ratio"]; ok {
		t.Fatalf("a key never ended has a completion_ratio: %v", m)
	}
	for _, u := range []string{a, b} {
		if code, m = call(t, "POST", u+"/v1/leases/claim", claimBody); code != 409 {
			t.Fatalf("second claim at %s: %d %v, want 409", u, code, m)
		}
	}

	for _, end := range []string{
		`{"key":"` + key + `","token":"1"}`,
		`{"key":"` + key + `","token":"` + token + `0"}`,
		`{"key":"` + key + `","token":1,"reason":"wrong"}`,
	} {
		for _, path := range []string{"/v1/leases/complete", "/v1/leases/fail"} {
			if code, m = call(t, "POST", a+path, end); code != 409 {
				t.Fatalf("%s with a wrong token %s: %d %v, want 409", path, end, code, m)
			}
		}
	}
	// The wrong tokens left the lease with its holder.
	if code, m = call(t, "POST", b+"/v1/leases/claim", claimBody); code != 409 {
		t.Fatalf("claim after wrong-token complete/fail: %d %v, want 409 (the lease must still be held)", code, m)
	}
	code, m = call(t, "GET", b+"/v1/leases", "")
	listed, _ := m["leases"].([]any)
	found := false
	for _, l := range listed {
		if l, _ := l.(map[string]any); l["key"] == key && l["token"] == token {
			found = true
		}
	}
	if code != 200 || !found {
		t.Fatalf("GET /v1/leases on another process: %d %v; want the lease with token %s", code, m, token)
	}

	// Tokens may come back as JSON numbers.
	if code, m = call(t, "POST", a+"/v1/leases/complete", `{"key":"`+key+`","token":`+token+`}`); code != 200 || m["completion_ratio"] != 1.0 {
		t.Fatalf("complete: %d %v, want 200 with completion_ratio 1", code, m)
	}
	code, m = call(t, "POST", a+"/v1/leases/claim", claimBody)
	if code != 200 || m["completion_ratio"] != 1.0 {
		t.Fatalf("claim after complete: %d %v, want 200 with completion_ratio 1", code, m)
	}
	tok2, _ := m["lease"].(map[string]any)["token"].(string)
	if len(tok2) < len(token) || (len(tok2) == len(token) && tok2 <= token) {
		t.Fatalf("token after re-claim %s, before %s: fencing tokens must grow", tok2, token)
	}
	if code, m = call(t, "POST", a+"/v1/leases/fail", `{"key":"`+key+`","token":"`+tok2+`","reason":"upstream 503"}`); code != 200 || m["completion_ratio"] != 0.0 {
		t.Fatalf("fail: %d %v, want 200 with completion_ratio 0", code, m)
	}
	code, m = call(t, "POST", a+"/v1/leases/claim", claimBody)
	if code != 200 || m["completion_ratio"] != 0.0 {
		t.Fatalf("claim after fail: %d %v, want 200 with completion_ratio 0", code, m)
	}
	for _, u := range []string{a, b} {
		if code, m = call(t, "GET", u+"/healthz", ""); code != 200 || m["status"] != "ok" {
			t.Fatalf("GET /healthz at %s: %d %v", u, code, m)
		}
	}
}
