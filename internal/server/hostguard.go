package server

import (
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/seamless-data/seamless/internal/server/wire"
)

// hostGuard protects a server running without auth from DNS rebinding: a hostile web
// page whose name an attacker re-points at 127.0.0.1 makes the victim's browser send
// it requests with the attacker's name in the Host header. Without tokens the server
// therefore answers only requests addressed to it by a name it knows:
//
//   - localhost (and *.localhost) and any IP literal — a browser on another origin
//     cannot make a page's origin be an IP address it did not load, so an IP Host
//     is the address the client really dialled;
//   - the host of the listen address as configured (Config.Addr, e.g. "seamless:8080")
//     and the names in Config.AllowedHosts.
//
// With tokens the check is off: a rebound page holds no token.
type hostGuard struct {
	mu    sync.RWMutex
	names []string
}

func newHostGuard(addr string, allowed []string) *hostGuard {
	g := &hostGuard{}
	g.add(addr)
	for _, a := range allowed {
		g.add(a)
	}
	return g
}

// add allows a host name, given alone or as host:port.
func (g *hostGuard) add(hostport string) {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Contains(g.names, h) {
		g.names = append(g.names, h)
	}
}

// allows reports whether a request with this Host header may be answered.
func (g *hostGuard) allows(hostHeader string) bool {
	h := hostHeader
	if host, _, err := net.SplitHostPort(hostHeader); err == nil {
		h = host
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	if h == "" {
		return false
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || net.ParseIP(h) != nil {
		return true
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return slices.Contains(g.names, h)
}

// rejectHost answers a request whose Host the guard refuses: 421 Misdirected Request.
func rejectHost(w http.ResponseWriter, host string) {
	writeError(w, wire.NewError(wire.CodeMisdirected, "Host %q is not this server's address: without API tokens only its listen "+
		"address, localhost, IP addresses and SEAMLESS_ALLOWED_HOSTS are answered (DNS-rebinding protection)", host))
}
