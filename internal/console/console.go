// Package console is the web console `seamless serve` serves at `/`: series,
// coverage, gaps, conformance reports, backfill jobs, leases, schemas and health,
// read from the server's own HTTP API by plain JavaScript in the browser.
//
// The assets are embedded in the binary (embed.FS): no build step, no CDN, no
// JS toolchain for `go build`. The one third-party file, TradingView's Lightweight
// Charts (Apache-2.0), is vendored as a pinned, minified file with its licence and
// notice by vendor.sh.
//
// Security rules the assets keep, and the headers here enforce:
//   - a strict Content-Security-Policy: scripts and styles only from this origin, no
//     inline script, no eval, no framing, connections only back to the server;
//   - every string from the server reaches the page as text (textContent, never
//     innerHTML), so a hostile node id or schema field cannot inject markup;
//   - the API token is typed once and kept in sessionStorage, sent as an
//     Authorization header, never put in a URL.
//
// The console's pages are public (they hold no data); every call they make goes
// through the API's own auth.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// Patterns are the ServeMux patterns the console answers: its page at `/` and its
// files under /console/.
var Patterns = []string{"GET /{$}", "GET /console/{path...}"}

// CSP is the Content-Security-Policy of every console response.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the console.
type Handler struct {
	files fs.FS
}

// New returns the console's handler.
func New() *Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	return &Handler{files: sub}
}

// Routes lists the console's routes as api/openapi.yaml names them.
func (h *Handler) Routes() []string { return []string{"GET /", "GET /console/{path}"} }

// ServeHTTP answers `/` with the page and /console/{path} with an asset.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := "index.html"
	if r.URL.Path != "/" {
		name = strings.TrimPrefix(r.URL.Path, "/console/")
	}
	// fs.FS rejects "..", empty and rooted names; Clean keeps the check on its answer.
	if name != path.Clean(name) || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(h.files, name)
	if err != nil {
		h.notFound(w, name)
		return
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	// The page is small and changes with the binary: revalidate rather than cache.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Type", contentType(name))
	_, _ = w.Write(b)
}

func (h *Handler) notFound(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte("no console file " + name + "\n"))
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".png":
		return "image/png"
	}
	return "text/plain; charset=utf-8"
}

// Size is the total size in bytes of the embedded assets (reported in the docs).
func Size() (int64, error) {
	var n int64
	err := fs.WalkDir(assets, "assets", func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}
