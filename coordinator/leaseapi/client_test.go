package leaseapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
)

// answering is a server that answers every request with one status and body.
func answering(t *testing.T, status int, contentType, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestClientReadsHeldOnlyFromTheAPI: 404 and 409 mean "held elsewhere" (or "lost") only
// with the lease API's JSON error document; any other 404 or 409 — a wrong URL whose
// server answers 404 for every path, an empty body, other JSON — is ErrNotLeaseAPI,
// never ErrLeaseHeld, so a fallback coordinator falls back instead of waiting forever.
func TestClientReadsHeldOnlyFromTheAPI(t *testing.T) {
	const (
		held  = "held"
		lost  = "lost"
		not   = "not the lease API"
		other = "other error"
	)
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
	}{
		{"409 lease_held", 409, "application/json", `{"error":{"code":"lease_held","message":"claim k: held"}}`, held},
		{"409 held", 409, "application/json", `{"error":{"code":"held"}}`, held},
		{"404 lease_held", 404, "application/json", `{"error":{"code":"lease_held"}}`, held},
		{"409 lease_lost", 409, "application/json", `{"error":{"code":"lease_lost"}}`, lost},
		{"404 page not found", 404, "text/plain; charset=utf-8", "404 page not found\n", not},
		{"404 HTML", 404, "text/html", "<html><body><h1>Not Found</h1></body></html>", not},
		{"404 empty", 404, "", "", not},
		{"409 empty", 409, "", "", not},
		{"409 text", 409, "text/plain", "conflict", not},
		{"404 other JSON", 404, "application/json", `{"detail":"Not Found"}`, not},
		{"404 another API's not_found", 404, "application/json", `{"error":{"code":"not_found","message":"no route"}}`, not},
		{"409 error without a code", 409, "application/json", `{"error":{"message":"x"}}`, not},
		{"409 another code", 409, "application/json", `{"error":{"code":"not_held"}}`, other},
		{"503 of the API", 503, "application/json", `{"error":{"code":"coordinator_unavailable"}}`, other},
		{"502 HTML", 502, "text/html", "<h1>Bad Gateway</h1>", not},
		{"200 HTML", 200, "text/html", "<html></html>", not},
		{"200 other JSON", 200, "application/json", `{"ok":true}`, not},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := answering(t, tc.status, tc.contentType, tc.body)
			_, err := leaseapi.NewClient(srv.URL, nil).Claim(context.Background(), "k", time.Minute)
			got := other
			switch {
			case err == nil:
				got = "no error"
			case errors.Is(err, seamless.ErrLeaseHeld):
				got = held
			case errors.Is(err, seamless.ErrLeaseLost):
				got = lost
			case errors.Is(err, leaseapi.ErrNotLeaseAPI):
				got = not
			}
			if got != tc.want {
				t.Fatalf("claim answered HTTP %d %q: %v (%s), want %s", tc.status, tc.body, err, got, tc.want)
			}
			if got == not && !strings.Contains(err.Error(), "HTTP") {
				t.Errorf("error %q does not name the status", err)
			}
		})
	}

	// Wait and the lease-ending calls follow the same rule.
	srv := answering(t, 404, "text/plain", "404 page not found\n")
	c := leaseapi.NewClient(srv.URL, nil)
	ctx := context.Background()
	if err := c.Wait(ctx, "k"); !errors.Is(err, leaseapi.ErrNotLeaseAPI) || errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("wait on a 404 page: %v", err)
	}
	if err := c.Complete(ctx, seamless.Lease{Key: "k", Token: 1}); !errors.Is(err, leaseapi.ErrNotLeaseAPI) || errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("complete on a 404 page: %v", err)
	}
	// A 200 JSON answer without "free" is not the API's (it would poll forever).
	srv = answering(t, 200, "application/json", `{}`)
	if err := leaseapi.NewClient(srv.URL, nil).Wait(ctx, "k"); !errors.Is(err, leaseapi.ErrNotLeaseAPI) {
		t.Fatalf("wait answered {}: %v", err)
	}
}
