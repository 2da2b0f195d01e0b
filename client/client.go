// Package client is the Go client of the Seamless HTTP API (`seamless serve`). It
// mirrors the library: Fetch takes a seamless.Request and returns a seamless.Result,
// and a failed request returns the library's own typed errors (*seamless.RequestError,
// *seamless.NotCoveredError matching seamless.ErrNotCovered, *seamless.SourceError,
// *seamless.UpstreamError), so code written against a local Provider handles a remote
// one unchanged. Errors the HTTP layer adds (auth, rate limits, …) are *Error.
//
// Bars travel as an Arrow IPC stream by default: columns arrive as they are laid out
// in memory, with no text parsing.
//
//	c, err := client.New("http://127.0.0.1:8080", client.WithToken(os.Getenv("SEAMLESS_API_TOKEN")))
//	res, err := c.Fetch(ctx, seamless.Request{NodeID: "ohlcv:demo:BTC-USD:1m", Interval: 60, Start: a, End: b})
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// Format is the transport of Fetch responses.
type Format string

// Formats Fetch can use.
const (
	// Arrow is an Arrow IPC stream (the default).
	Arrow Format = wire.FormatArrow
	// JSON is the bars document of `seamless fetch --format json`: slower and larger,
	// useful through proxies that inspect bodies.
	JSON Format = wire.FormatJSON
)

// Client talks to one Seamless server. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	http   *http.Client
	token  string
	format Format
	poll   time.Duration

	// checked is set once the server's api_version has been found compatible; until
	// then every /v1 request checks it first (a failed check is not remembered, so a
	// server that was down is checked again).
	mu      sync.Mutex
	checked bool
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends Authorization: Bearer token with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient uses h instead of http.DefaultClient (for timeouts, TLS, proxies).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithFormat picks the Fetch transport (Arrow by default).
func WithFormat(f Format) Option { return func(c *Client) { c.format = f } }

// WithPollInterval sets how often Backfill polls its job (default 500 ms).
func WithPollInterval(d time.Duration) Option { return func(c *Client) { c.poll = d } }

// New returns a client of the server at baseURL, such as "http://127.0.0.1:8080".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("seamless client: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("seamless client: base URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, http: http.DefaultClient, format: Arrow, poll: 500 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	if c.format != Arrow && c.format != JSON {
		return nil, fmt.Errorf("seamless client: unknown format %q (want arrow or json)", c.format)
	}
	return c, nil
}

// Sentinels matched by errors.Is on an *Error.
var (
	// ErrUnauthorized: the server requires a token and none or a wrong one was sent.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: no such route or backfill job.
	ErrNotFound = errors.New("not found")
	// ErrTooManyRequests: the server is at its fetch or job limit; retry later.
	ErrTooManyRequests = errors.New("too many requests")
	// ErrIncompatibleServer: the server's /healthz reports an api_version whose major
	// version is not wire.APIMajor (or none at all: a server older than API 1.0).
	ErrIncompatibleServer = errors.New("incompatible server API version")
)

// Health returns the server's /healthz document.
func (c *Client) Health(ctx context.Context) (wire.Health, error) {
	var h wire.Health
	err := c.getJSON(ctx, "/healthz", nil, &h)
	return h, err
}

// checkVersion makes sure, once per client, that the server speaks this client's API
// major version: a client talking to an incompatible server would misread its
// documents rather than fail.
func (c *Client) checkVersion(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checked {
		return nil
	}
	h, err := c.Health(ctx)
	if err != nil {
		return err
	}
	if !wire.CompatibleVersion(h.APIVersion) {
		return fmt.Errorf("seamless client: %s/healthz reports api_version %q, this client speaks %s.x: %w",
			c.base, h.APIVersion, wire.APIMajor, ErrIncompatibleServer)
	}
	c.checked = true
	return nil
}

// Error is an error response whose code has no typed error in package seamless.
type Error struct {
	// StatusCode is the HTTP status; Code the error code of the body (SPEC §2).
	StatusCode int
	Code       string
	Message    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("seamless server: %s (HTTP %d): %s", e.Code, e.StatusCode, e.Message)
}

// Unwrap makes errors.Is match ErrUnauthorized, ErrNotFound and ErrTooManyRequests.
func (e *Error) Unwrap() error {
	switch e.Code {
	case wire.CodeUnauthorized:
		return ErrUnauthorized
	case wire.CodeNotFound:
		return ErrNotFound
	case wire.CodeTooManyRequests:
		return ErrTooManyRequests
	}
	return nil
}

// errorOf turns an error body into the library's typed error, or an *Error.
func errorOf(status int, body wire.ErrorBody) error {
	if err := body.LibraryErr(); err != nil {
		return err
	}
	return &Error{StatusCode: status, Code: body.Code, Message: body.Message}
}

// do sends a request and returns the response when its status is wantStatus; any
// other status is decoded as an error document.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body io.Reader, accept string, wantStatus int) (*http.Response, error) {
	if strings.HasPrefix(path, "/v1/") {
		if err := c.checkVersion(ctx); err != nil {
			return nil, err
		}
	}
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("seamless client: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if body != nil {
		req.Header.Set("Content-Type", wire.MediaJSON)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("seamless client: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != wantStatus {
		defer resp.Body.Close()
		return nil, errorOf(resp.StatusCode, wire.ReadError(resp.StatusCode, resp.Body))
	}
	return resp, nil
}

// getJSON GETs path and decodes its JSON document into v.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, query, nil, wire.MediaJSON, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("seamless client: GET %s: decode: %w", path, err)
	}
	return nil
}

// Coverage returns the stored coverage of a series, as Provider.Coverage.
func (c *Client) Coverage(ctx context.Context, nodeID string, interval int64) (grid.Set, error) {
	var doc wire.Coverage
	if err := c.getJSON(ctx, "/v1/coverage", wire.EncodeSeries(seamless.Series{NodeID: nodeID, Interval: interval}), &doc); err != nil {
		return grid.Set{}, err
	}
	return grid.NewSet(doc.Ranges...), nil
}

// Series lists the stored series with their coverage bounds and fragment counts. The
// Coverage field of each is left empty; call Coverage for the ranges.
func (c *Client) Series(ctx context.Context) ([]seamless.SeriesInfo, error) {
	var doc wire.SeriesList
	if err := c.getJSON(ctx, "/v1/series", nil, &doc); err != nil {
		return nil, err
	}
	return doc.Series, nil
}

// Ready returns nil when the server answers /readyz with 200: its store and
// coordinator are reachable and it is not shutting down.
func (c *Client) Ready(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, wire.MediaJSON, http.StatusOK)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
