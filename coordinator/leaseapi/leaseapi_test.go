package leaseapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %s", err, b)
	}
	return resp.StatusCode, m
}

// TestReferenceWireProtocol speaks the reference's JSON exactly as its Python client
// does.
func TestReferenceWireProtocol(t *testing.T) {
	srv := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
	defer srv.Close()
	key := "ohlcv%3Abinance%3ABTC%2FUSDT%3A1m:60:0:54000"
	code, m := post(t, srv.URL+"/v1/leases/claim", `{"key":"`+key+`","lease_ms":60000}`)
	if code != 200 {
		t.Fatalf("claim %d %v", code, m)
	}
	l := m["lease"].(map[string]any)
	token, ok := l["token"].(string)
	if !ok || token == "" || l["lease_until_ms"].(float64) <= 0 {
		t.Fatalf("claim body %v", m)
	}
	if _, has := m["completion_ratio"]; has {
		t.Fatalf("fresh key has a completion_ratio: %v", m)
	}
	if code, m = post(t, srv.URL+"/v1/leases/claim", `{"key":"`+key+`","lease_ms":60000}`); code != 409 {
		t.Fatalf("second claim %d %v, want 409", code, m)
	}
	if code, m = post(t, srv.URL+"/v1/leases/renew", `{"key":"`+key+`","token":"`+token+`","lease_ms":60000}`); code != 200 {
		t.Fatalf("renew %d %v", code, m)
	}
	resp, _ := http.Get(srv.URL + "/v1/leases")
	var list struct{ Leases []leaseapi.LeaseView }
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Leases) != 1 || list.Leases[0].Key != key {
		t.Fatalf("list %+v", list)
	}
	// Tokens may come back as numbers too.
	if code, m = post(t, srv.URL+"/v1/leases/complete", `{"key":"`+key+`","token":`+token+`}`); code != 200 || m["completion_ratio"].(float64) != 1 {
		t.Fatalf("complete %d %v", code, m)
	}
	if code, m = post(t, srv.URL+"/v1/leases/complete", `{"key":"`+key+`","token":"`+token+`"}`); code != 409 {
		t.Fatalf("complete twice %d %v, want 409", code, m)
	}
	code, m = post(t, srv.URL+"/v1/leases/claim", `{"key":"`+key+`","lease_ms":60000}`)
	if code != 200 || m["completion_ratio"].(float64) != 1 {
		t.Fatalf("reclaim %d %v", code, m)
	}
	tok2 := m["lease"].(map[string]any)["token"].(string)
	if code, m = post(t, srv.URL+"/v1/leases/fail", `{"key":"`+key+`","token":"`+tok2+`","reason":"upstream 503"}`); code != 200 || m["completion_ratio"].(float64) != 0 {
		t.Fatalf("fail %d %v", code, m)
	}
	for _, bad := range []string{`{`, `{"lease_ms":1}`, `{"key":"k","token":"x"}`} {
		if code, _ = post(t, srv.URL+"/v1/leases/complete", bad); code != 400 {
			t.Errorf("body %s: %d, want 400", bad, code)
		}
	}
	resp, _ = http.Get(srv.URL + "/healthz")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
}

func TestClientIsACoordinator(t *testing.T) {
	srv := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
	defer srv.Close()
	ctx := context.Background()
	a, b := leaseapi.NewClient(srv.URL, nil), leaseapi.NewClient(srv.URL, nil)
	l, err := a.Claim(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "k", time.Minute); !errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("held: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx, "k") }()
	time.Sleep(20 * time.Millisecond)
	if err := a.Complete(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := a.Complete(ctx, l); !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("lost: %v", err)
	}
	if _, err := leaseapi.NewClient("http://127.0.0.1:1", nil).Claim(ctx, "k", time.Second); err == nil || errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("unreachable coordinator must not look held: %v", err)
	}
}

type counting struct {
	mu    sync.Mutex
	calls map[grid.Range]int
}

func (c *counting) Fetch(_ context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	c.mu.Lock()
	c.calls[r]++
	c.mu.Unlock()
	time.Sleep(3 * time.Millisecond)
	return demo.Bars(s.NodeID, s.Interval, r), nil
}

// TestThinWorkersShareARemoteCoordinator: two providers coordinating through the HTTP
// lease API fetch each chunk once.
func TestThinWorkersShareARemoteCoordinator(t *testing.T) {
	srv := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
	defer srv.Close()
	st, src := memstore.New(), &counting{calls: map[grid.Range]int{}}
	var ps []*seamless.Provider
	for range 2 {
		p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}, Coordinator: leaseapi.NewClient(srv.URL, nil)})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		ps = append(ps, p)
	}
	base := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC).Unix()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := base + int64(i%3)*7200
			if _, err := ps[i%2].Fetch(context.Background(), seamless.Request{NodeID: "ohlcv:demo:A:1m", Interval: 60, Start: s, End: s + 86400, Strategy: seamless.AutoBackfill}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for r, n := range src.calls {
		if n != 1 {
			t.Errorf("%v fetched %d times", r, n)
		}
	}
}

// FuzzTokenJSON: token decoding never panics, and accepted tokens round-trip.
func FuzzTokenJSON(f *testing.F) {
	for _, s := range []string{`"12"`, `12`, `"18446744073709551615"`, `""`, `"-1"`, `1e3`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var tok leaseapi.Token
		if err := json.Unmarshal(b, &tok); err != nil {
			return
		}
		out, err := json.Marshal(tok)
		if err != nil {
			t.Fatal(err)
		}
		var back leaseapi.Token
		if err := json.Unmarshal(out, &back); err != nil || back != tok {
			t.Fatalf("%s → %d → %s → %d, %v", b, tok, out, back, err)
		}
	})
}

// TestCompletionRatio: a complete may say how much of the chunk it did (the reference's
// optional completion_ratio), which the next claim of the key returns; a fail is 0
// whatever it says; a ratio outside [0, 1] is a bad request.
func TestCompletionRatio(t *testing.T) {
	srv := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
	defer srv.Close()
	claim := func(key string) (string, map[string]any) {
		t.Helper()
		code, m := post(t, srv.URL+"/v1/leases/claim", `{"key":"`+key+`","lease_ms":60000}`)
		if code != 200 {
			t.Fatalf("claim %s: %d %v", key, code, m)
		}
		return m["lease"].(map[string]any)["token"].(string), m
	}
	tok, _ := claim("k")
	if code, m := post(t, srv.URL+"/v1/leases/complete", `{"key":"k","token":"`+tok+`","completion_ratio":1.5}`); code != 400 || m["error"].(map[string]any)["code"] != "bad_request" {
		t.Fatalf("ratio 1.5: %d %v", code, m)
	}
	if code, m := post(t, srv.URL+"/v1/leases/complete", `{"key":"k","token":"`+tok+`","completion_ratio":0.25}`); code != 200 || m["completion_ratio"].(float64) != 0.25 {
		t.Fatalf("complete with 0.25: %d %v", code, m)
	}
	tok, m := claim("k")
	if m["completion_ratio"].(float64) != 0.25 {
		t.Fatalf("claim after a partial complete: %v", m)
	}
	if code, m := post(t, srv.URL+"/v1/leases/fail", `{"key":"k","token":"`+tok+`","reason":"x","completion_ratio":0.9}`); code != 200 || m["completion_ratio"].(float64) != 0 {
		t.Fatalf("fail: %d %v", code, m)
	}
}

// TestBadRequestsAreTypedJSON: lease_ms out of range is 400 naming the field (not the
// default TTL, not an overflowed duration), an oversized body 413, an unknown route
// 404 and a wrong method 405, each a JSON error document.
func TestBadRequestsAreTypedJSON(t *testing.T) {
	srv := httptest.NewServer(leaseapi.NewHandler(seamless.NewMemCoordinator(nil)))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"negative lease_ms", "POST", "/v1/leases/claim", `{"key":"k","lease_ms":-1}`, 400, "bad_request"},
		{"lease_ms 2^62", "POST", "/v1/leases/claim", `{"key":"k","lease_ms":4611686018427387904}`, 400, "bad_request"},
		{"negative renew", "POST", "/v1/leases/renew", `{"key":"k","token":"1","lease_ms":-5}`, 400, "bad_request"},
		{"oversized body", "POST", "/v1/leases/claim", `{"key":"` + strings.Repeat("k", leaseapi.MaxBody) + `"}`, 413, "too_large"},
		{"unknown route", "POST", "/v1/leases/steal", `{"key":"k"}`, 404, "not_found"},
		{"unknown nested route", "GET", "/v1/leases/a/b", ``, 404, "not_found"},
		{"wrong method", "GET", "/v1/leases/claim", ``, 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var doc struct {
				Error struct{ Code, Field, Message string }
			}
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &doc); err != nil || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s %q: not a JSON document (%v)", resp.StatusCode, resp.Header.Get("Content-Type"), b, err)
			}
			if resp.StatusCode != tc.status || doc.Error.Code != tc.code || doc.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, doc.Error, tc.status, tc.code)
			}
			if strings.Contains(tc.name, "lease_ms") && doc.Error.Field != "lease_ms" {
				t.Fatalf("field %q, want lease_ms", doc.Error.Field)
			}
		})
	}
}
