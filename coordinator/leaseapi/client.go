package leaseapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/jsonhttp"
)

// Client is a seamless.Coordinator backed by a remote lease API.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the lease API at base (http://host:port).
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{base: strings.TrimSuffix(base, "/"), http: hc}
}

var _ seamless.Coordinator = (*Client)(nil)

// wireError is an error answer of the API.
type wireError struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// ErrNotLeaseAPI is wrapped by the error of an answer that is not the lease API's: an
// HTML or plain-text page, an empty body, JSON of another shape. The URL most likely
// points at something else (a wrong host, port or path prefix). It is neither
// seamless.ErrLeaseHeld nor seamless.ErrLeaseLost, so a FallbackCoordinator treats the
// coordinator as unreachable and backfills under its local guard, loudly.
var ErrNotLeaseAPI = errors.New("the answer is not the lease API's (check the coordinator URL)")

// Error codes of the lease API's JSON error document that mean "held elsewhere"
// (lease_held is this package's server's; held is accepted as the same) and "lost".
var (
	heldCodes = map[string]bool{"lease_held": true, "held": true}
	lostCodes = map[string]bool{"lease_lost": true}
)

// do sends one call. Its answer is judged by this rule:
//
//   - 200: success, decoded into out (a body that does not decode is ErrNotLeaseAPI).
//   - 409 or 404 with the API's JSON error document {"error":{"code":…}} whose code is
//     lease_held (or held): seamless.ErrLeaseHeld; lease_lost: seamless.ErrLeaseLost.
//   - 409 or 404 whose body is not such a document (an HTML or text "404 page not
//     found", an empty body, other JSON), and 404 with another code (seamless serve's
//     not_found for a route it lacks): ErrNotLeaseAPI.
//   - Any other answer: an error naming the status and the API's error code (409
//     not_held of release, 503 coordinator_unavailable, …), or ErrNotLeaseAPI when the
//     body is not the API's error document.
//
// The reference's Python client reads every 404 and 409 as "held elsewhere". The
// protocol as documented above (and served by Handler) answers held with 409 and the
// JSON error document, which this rule accepts; no server of the protocol is known to
// answer held with a bare 404 or 409. Reading a bare one as held would turn a wrong URL
// (a server answering 404 for every path) into "every chunk is held elsewhere" — no
// fallback, no upstream fetch, requests failing — so it is an error instead, on which
// a FallbackCoordinator falls back to its local guard, loudly.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	status, b, err := jsonhttp.Do(ctx, c.http, jsonhttp.Request{Method: method, URL: c.base + path, Body: body, Limit: 1 << 20})
	if err != nil {
		return fmt.Errorf("lease API %s: %w", path, err)
	}
	if status == http.StatusOK {
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("lease API %s: HTTP 200 with %s: %w: %v", path, snippet(b), ErrNotLeaseAPI, err)
			}
		}
		return nil
	}
	var we wireError
	if json.Unmarshal(b, &we) != nil || we.Error == nil || we.Error.Code == "" {
		return fmt.Errorf("lease API %s: HTTP %d with %s: %w", path, status, snippet(b), ErrNotLeaseAPI)
	}
	code, msg := we.Error.Code, we.Error.Message
	if status == http.StatusConflict || status == http.StatusNotFound {
		switch {
		case heldCodes[code]:
			return fmt.Errorf("lease API %s: %w: %s", path, seamless.ErrLeaseHeld, msg)
		case lostCodes[code]:
			return fmt.Errorf("lease API %s: %w: %s", path, seamless.ErrLeaseLost, msg)
		case status == http.StatusNotFound:
			// Another API's "not found" (e.g. seamless serve's not_found for a route it
			// does not have): the URL is wrong.
			return fmt.Errorf("lease API %s: HTTP 404 %s: %s: %w", path, code, msg, ErrNotLeaseAPI)
		}
	}
	return fmt.Errorf("lease API %s: HTTP %d %s: %s", path, status, code, msg)
}

// snippet describes an answer body for an error message: empty, or its start quoted.
func snippet(b []byte) string {
	if len(bytes.TrimSpace(b)) == 0 {
		return "an empty body"
	}
	const limit = 80
	if len(b) > limit {
		return fmt.Sprintf("body %q…", b[:limit])
	}
	return fmt.Sprintf("body %q", b)
}

func lease(w WireLease) seamless.Lease {
	return seamless.Lease{Key: w.Key, Token: uint64(w.Token), LeaseUntilMS: w.LeaseUntilMS}
}

// checked returns the lease of a claim or renew answer, which must name key and carry
// a token: a 200 JSON answer without them (another service that answers every path)
// is ErrNotLeaseAPI, never a lease with token 0.
func checked(path, key string, out claimResp) (seamless.Lease, error) {
	if out.Lease.Key != key || out.Lease.Token == 0 {
		return seamless.Lease{}, fmt.Errorf("lease API %s: HTTP 200 without a lease on %q: %w", path, key, ErrNotLeaseAPI)
	}
	return lease(out.Lease), nil
}

// Claim implements seamless.Coordinator.
func (c *Client) Claim(ctx context.Context, key string, ttl time.Duration) (seamless.Lease, error) {
	var out claimResp
	if err := c.do(ctx, http.MethodPost, "/v1/leases/claim", claimReq{Key: key, LeaseMS: ttl.Milliseconds()}, &out); err != nil {
		return seamless.Lease{}, err
	}
	return checked("/v1/leases/claim", key, out)
}

// Renew implements seamless.Coordinator.
func (c *Client) Renew(ctx context.Context, l seamless.Lease, ttl time.Duration) (seamless.Lease, error) {
	var out claimResp
	if err := c.do(ctx, http.MethodPost, "/v1/leases/renew", claimReq{Key: l.Key, Token: Token(l.Token), LeaseMS: ttl.Milliseconds()}, &out); err != nil {
		return seamless.Lease{}, err
	}
	return checked("/v1/leases/renew", l.Key, out)
}

// Complete implements seamless.Coordinator.
func (c *Client) Complete(ctx context.Context, l seamless.Lease) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/complete", claimReq{Key: l.Key, Token: Token(l.Token)}, nil)
}

// Fail implements seamless.Coordinator.
func (c *Client) Fail(ctx context.Context, l seamless.Lease, reason string) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/fail", claimReq{Key: l.Key, Token: Token(l.Token), Reason: reason}, nil)
}

// Wait implements seamless.Coordinator by long-polling until the key is free.
func (c *Client) Wait(ctx context.Context, key string) error {
	for {
		var out struct {
			Free *bool `json:"free"`
		}
		path := "/v1/leases/wait?key=" + url.QueryEscape(key) + "&timeout_ms=" + strconv.Itoa(int(maxWait/time.Millisecond))
		if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if out.Free == nil {
			return fmt.Errorf("lease API %s: HTTP 200 without \"free\": %w", path, ErrNotLeaseAPI)
		}
		if *out.Free {
			return nil
		}
	}
}

// Inspect implements seamless.Coordinator.
func (c *Client) Inspect(ctx context.Context) ([]seamless.LeaseInfo, error) {
	var out struct {
		Leases []LeaseView `json:"leases"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/leases", nil, &out); err != nil {
		return nil, err
	}
	infos := make([]seamless.LeaseInfo, len(out.Leases))
	for i, v := range out.Leases {
		infos[i] = seamless.LeaseInfo{Lease: seamless.Lease{Key: v.Key, Token: uint64(v.Token), LeaseUntilMS: v.LeaseUntilMS}, Holder: v.Holder}
	}
	return infos, nil
}

// Release asks the server to free a held lease (operator action).
func (c *Client) Release(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodPost, "/v1/leases/release", claimReq{Key: key}, nil)
}
