package server_test

import (
	"net/http"
	"testing"

	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
)

// TestHostGuard: without tokens, a request whose Host is a name the server does not
// go by (a DNS-rebinding page's) is refused with 421 on every route; the listen
// address's host, localhost, IP literals and AllowedHosts are answered. With tokens
// the check is off (the token is the protection).
func TestHostGuard(t *testing.T) {
	open := servertest.Start(t, server.Config{Addr: "seamless.internal:8080", AllowedHosts: []string{"data.example.com"}})
	for _, tc := range []struct {
		host   string
		status int
	}{
		{"127.0.0.1:8080", 200},
		{"[::1]:8080", 200},
		{"localhost:8080", 200},
		{"LOCALHOST.", 200},
		{"app.localhost", 200},
		{"10.1.2.3:8080", 200},
		{"seamless.internal:8080", 200},
		{"data.example.com", 200},
		{"evil.example:8080", 421},
		{"127.0.0.1.evil.example", 421},
		{"seamless.internal.evil.example", 421},
	} {
		for _, path := range []string{"/healthz", "/v1/series"} {
			r := do(t, open, http.MethodGet, path, nil, "Host", tc.host)
			if r.status != tc.status {
				t.Errorf("Host %q %s: %d %s, want %d", tc.host, path, r.status, r.body, tc.status)
			}
			if tc.status == 421 {
				if b := errorBody(t, r); b.Code != "misdirected_host" {
					t.Errorf("Host %q: code %q", tc.host, b.Code)
				}
			}
		}
	}
	authed := servertest.Start(t, server.Config{Tokens: []server.Token{{Name: "ci", Secret: "s3cret"}}})
	if r := do(t, authed, http.MethodGet, "/v1/series", nil, "Host", "evil.example", "Authorization", "Bearer s3cret"); r.status != 200 {
		t.Errorf("with auth, Host evil.example: %d %s", r.status, r.body)
	}
}
