package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/internal/console"
)

func serve(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	mux := http.NewServeMux()
	h := console.New()
	for _, p := range console.Patterns {
		mux.Handle(p, h)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestAssetsAndHeaders: the page and its files are served with the strict CSP, and
// the page loads scripts only from files (no inline script, no inline handler).
func TestAssetsAndHeaders(t *testing.T) {
	resp, page := serve(t, "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != console.CSP || strings.Contains(got, "unsafe") {
		t.Fatalf("CSP %q", got)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", resp.Header)
	}
	for _, bad := range []string{"<script>", " onclick=", " onload=", "javascript:", "style="} {
		if strings.Contains(page, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	for path, ctype := range map[string]string{
		"/console/app.js":                           "text/javascript",
		"/console/style.css":                        "text/css",
		"/console/vendor/lightweight-charts.js":     "text/javascript",
		"/console/vendor/lightweight-charts.NOTICE": "text/plain",
	} {
		resp, body := serve(t, path)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || body == "" {
			t.Errorf("%s: %d %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if resp.Header.Get("Content-Security-Policy") != console.CSP {
			t.Errorf("%s: no CSP", path)
		}
	}
	_, app := serve(t, "/console/app.js")
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write", "localStorage"} {
		if strings.Contains(app, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

func TestNotFoundAndTraversal(t *testing.T) {
	for _, path := range []string{"/console/nope.js", "/console/../console.go", "/console/vendor/../../console.go", "/console/", "/console/vendor"} {
		if resp, _ := serve(t, path); resp.StatusCode == 200 {
			t.Errorf("%s: 200", path)
		}
	}
}

// TestSize bounds the embedded assets (the vendored chart library is most of them).
func TestSize(t *testing.T) {
	n, err := console.Size()
	if err != nil || n > 400<<10 || n < 200<<10 {
		t.Fatalf("assets %d bytes, %v", n, err)
	}
	t.Logf("embedded assets: %d bytes", n)
}
