package jsonhttp

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDo(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Accept") != "application/json" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if len(b) > 0 && r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		w.WriteHeader(http.StatusTeapot)
		w.Write(append([]byte(r.Method+" "), b...))
	}))
	defer srv.Close()
	ctx := context.Background()
	status, body, err := Do(ctx, srv.Client(), Request{Method: http.MethodPost, URL: srv.URL, Body: map[string]int{"a": 1}, Token: "tok", Limit: 1 << 10})
	if err != nil || status != http.StatusTeapot || string(body) != `POST {"a":1}` {
		t.Fatalf("%d %q %v", status, body, err)
	}
	if status, _, err := Do(ctx, srv.Client(), Request{Method: http.MethodGet, URL: srv.URL, Limit: 1 << 10}); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("no token: %d %v", status, err)
	}
	if _, _, err := Do(ctx, srv.Client(), Request{Method: http.MethodGet, URL: srv.URL, Token: "tok", Limit: 3}); err == nil || !strings.Contains(err.Error(), "over 3 bytes") {
		t.Fatalf("over the limit: %v", err)
	}
	if _, _, err := Do(ctx, srv.Client(), Request{Method: http.MethodPost, URL: srv.URL, Body: math.NaN(), Limit: 10}); err == nil {
		t.Fatal("a body JSON cannot encode was sent")
	}
	if _, _, err := Do(ctx, srv.Client(), Request{Method: "BAD METHOD", URL: srv.URL, Limit: 10}); err == nil {
		t.Fatal("a malformed request was sent")
	}
}
