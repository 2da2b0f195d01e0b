package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/seamless-data/seamless/internal/server/wire"
)

// Token is one accepted bearer token. Name identifies its holder in logs; the secret
// itself is never logged.
type Token struct {
	Name   string
	Secret string
}

// ParseTokens reads SEAMLESS_API_TOKENS: comma-separated entries, each "token" or
// "name:token". Unnamed tokens are named token1, token2, … by position.
func ParseTokens(s string) ([]Token, error) {
	var out []Token
	for i, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		t := Token{Name: fmt.Sprintf("token%d", i+1), Secret: e}
		if name, secret, ok := strings.Cut(e, ":"); ok {
			t = Token{Name: name, Secret: secret}
		}
		if t.Name == "" || t.Secret == "" {
			return nil, fmt.Errorf("API token %d: want token or name:token, got an empty name or token", i+1)
		}
		out = append(out, t)
	}
	return out, nil
}

// authenticator checks bearer tokens in constant time.
type authenticator struct {
	names  []string
	hashes [][sha256.Size]byte
}

func newAuthenticator(tokens []Token) *authenticator {
	a := &authenticator{}
	for _, t := range tokens {
		a.names = append(a.names, t.Name)
		a.hashes = append(a.hashes, sha256.Sum256([]byte(t.Secret)))
	}
	return a
}

// check returns the name of the token r carries, or false. Comparing fixed-size hashes,
// and every one of them, keeps the time independent of the secrets' lengths and of
// which one matched.
func (a *authenticator) check(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, given, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return a.match(strings.TrimSpace(given))
}

// match returns the name of the token given, or false: the check of a bearer token
// however it arrived (a header, a WebSocket subprotocol or auth message).
func (a *authenticator) match(given string) (string, bool) {
	sum := sha256.Sum256([]byte(given))
	match := -1
	for i := range a.hashes {
		if subtle.ConstantTimeCompare(sum[:], a.hashes[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return a.names[match], true
}

// require wraps next so that it answers 401 without a valid token.
func (a *authenticator) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := a.check(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="seamless"`)
			writeError(w, wire.NewError(wire.CodeUnauthorized, "missing or invalid bearer token (Authorization: Bearer <token>)"))
			return
		}
		if info := infoOf(r); info != nil {
			info.principal = name
		}
		next.ServeHTTP(w, r)
	})
}
