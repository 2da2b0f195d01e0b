// Package venuehttp is the HTTP client the venue sources (source/binance,
// source/coinbase, source/okx, source/bybit, source/kraken) share, so that each venue
// package holds only what is its own: URLs, parameters, row formats, error bodies.
//
// A Client talks to one venue. Everything that protects the venue from us and us from
// the venue lives here, once:
//
//   - One limiter per Client, shared by every request to the venue: a token bucket
//     (golang.org/x/time/rate) refilled at Options.PerMinute units per minute, each
//     request costing its own units (Binance meters weight, others count requests),
//     driven by the injected clock.
//   - Rate-limit answers (HTTP 429 by default; Options.RateLimitStatus adds a venue's
//     own, e.g. Binance's 418) pause the whole Client for Retry-After seconds, or for
//     Options.DefaultPause when the venue sends none, then retry the same request, up to
//     Options.MaxRateLimitRetries times. A pause longer than Options.MaxRateLimitWait (an
//     IP ban) is not slept through: requests fail at once with a retryable error
//     wrapping ErrRateLimited until it ends, so nothing is sent during a ban. A venue that
//     reports a rate limit inside a 200 body (Kraken's "EAPI:Rate limit exceeded",
//     Bybit's retCode 10006) returns a *Throttled from its Check and gets the same
//     treatment.
//   - 5xx answers and network errors (including Options.RequestTimeout) are retried with
//     exponential backoff and ±25% jitter, up to Options.MaxRetries times, then returned
//     as ordinary (retryable) errors so that the provider's backfill retries apply on top.
//   - Other 4xx answers (an unknown symbol, a bad parameter) are returned at once,
//     marked seamless.Permanent: retrying cannot fix them.
//   - A 200 answer whose body does not have the shape the venue documents is a
//     *ShapeError naming the venue and the field, marked seamless.Permanent; the
//     provider reports it as upstream_failed, and nothing of the page is stored.
//
// Every wait — limiter, pause, backoff, the request itself — ends when the caller's
// context does.
package venuehttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
)

// Defaults of Options.
const (
	DefaultMaxRetries          = 3
	DefaultRetryBackoff        = 250 * time.Millisecond
	DefaultMaxRateLimitRetries = 5
	DefaultMaxRateLimitWait    = 5 * time.Minute
	DefaultRequestTimeout      = 30 * time.Second
	// DefaultMaxBodyBytes bounds one answer; a page of any venue is well below.
	DefaultMaxBodyBytes = 8 << 20
)

// maxErrorBytes bounds what is read of an error answer.
const maxErrorBytes = 64 << 10

// jitterRatio spreads backoff delays by ±25%, as the provider's backfill does.
const jitterRatio = 0.25

// ErrRateLimited matches (errors.Is) a rate-limit answer, and a request refused
// locally because the venue asked for a pause longer than Options.MaxRateLimitWait.
// It is retryable: the provider's backfill may try again later.
var ErrRateLimited = errors.New("rate limited")

// Options configure a Client.
type Options struct {
	// Venue names the venue in errors ("coinbase").
	Venue string
	// BaseURL is the REST root every path is relative to; required, http or https.
	BaseURL string
	// HTTPClient defaults to a client on http.DefaultTransport.
	HTTPClient *http.Client
	// PerMinute is the budget of the limiter in units per minute (required); Burst the
	// bucket's size (default: ten seconds of budget, at least one request's cost).
	PerMinute int
	Burst     int
	// MaxRetries bounds the retries of a request after a 5xx or network error (negative:
	// none); RetryBackoff is the first delay, doubled each retry, ±25% jitter.
	MaxRetries   int
	RetryBackoff time.Duration
	// MaxRateLimitRetries bounds the retries of a request answered with a rate limit
	// (negative: none); MaxRateLimitWait is the longest pause the Client sleeps through.
	MaxRateLimitRetries int
	MaxRateLimitWait    time.Duration
	// RequestTimeout bounds one HTTP request; a timeout counts as a network error.
	RequestTimeout time.Duration
	// MaxBodyBytes bounds one answer (default DefaultMaxBodyBytes).
	MaxBodyBytes int
	// Clock drives the limiter, pauses and backoff.
	Clock clock.Clock
	// Seed seeds the backoff jitter (0: random).
	Seed uint64

	// RateLimitStatus reports whether an HTTP status is a rate-limit answer (default:
	// 429 only).
	RateLimitStatus func(status int) bool
	// DefaultPause is the pause after a rate-limit answer without a usable Retry-After
	// (default: one second).
	DefaultPause func(now time.Time) time.Duration
	// DecodeError turns a non-2xx answer's body into the error returned for it
	// (default: an *APIError with the body as message). retryAfter is the pause for
	// rate-limit answers, 0 otherwise. The Client marks it Permanent for 4xx other than
	// rate limits.
	DecodeError func(status int, body []byte, retryAfter time.Duration) error
	// Observe is called with every answer's headers, before its body is read; a
	// non-zero time pauses the Client until then (Binance's used-weight header).
	Observe func(h http.Header, now time.Time) time.Time
}

// Stats are a Client's counters since New.
type Stats struct {
	// Requests is the number of HTTP requests sent.
	Requests uint64
	// RateLimited counts rate-limit answers.
	RateLimited uint64
	// Retries counts requests sent again, after a 5xx, a network error or a rate limit.
	Retries uint64
	// Throttled counts pauses started by Observe.
	Throttled uint64
}

// Client sends the GET requests of one venue. It is safe for concurrent use; its
// limiter and pauses are shared by all requests.
type Client struct {
	opts    Options
	base    string
	http    *http.Client
	clock   clock.Clock
	limiter *rate.Limiter

	mu         sync.Mutex
	pauseUntil time.Time // no request before this
	rand       *rand.Rand

	requests, rateLimited, retries, throttled atomic.Uint64
}

// CheckBaseURL reports whether s is an http or https URL with a host.
func CheckBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http or https URL such as https://api.example.com")
	}
	return nil
}

// New returns a Client.
func New(opts Options) (*Client, error) {
	if opts.Venue == "" {
		return nil, errors.New("venuehttp: Options.Venue is required")
	}
	if err := CheckBaseURL(opts.BaseURL); err != nil {
		return nil, fmt.Errorf("%s: base URL %q: %w", opts.Venue, opts.BaseURL, err)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.PerMinute <= 0 {
		return nil, fmt.Errorf("%s: the request budget per minute must be positive, not %d", opts.Venue, opts.PerMinute)
	}
	opts.MaxRetries = max(orDefault(opts.MaxRetries, DefaultMaxRetries), 0)
	opts.RetryBackoff = orDefault(opts.RetryBackoff, DefaultRetryBackoff)
	opts.MaxRateLimitRetries = max(orDefault(opts.MaxRateLimitRetries, DefaultMaxRateLimitRetries), 0)
	opts.MaxRateLimitWait = orDefault(opts.MaxRateLimitWait, DefaultMaxRateLimitWait)
	opts.RequestTimeout = orDefault(opts.RequestTimeout, DefaultRequestTimeout)
	opts.MaxBodyBytes = orDefault(opts.MaxBodyBytes, DefaultMaxBodyBytes)
	if opts.RetryBackoff < 0 || opts.MaxRateLimitWait < 0 || opts.RequestTimeout < 0 {
		return nil, fmt.Errorf("%s: negative durations in Options", opts.Venue)
	}
	if opts.Burst <= 0 {
		opts.Burst = max(opts.PerMinute/6, 1)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.RateLimitStatus == nil {
		opts.RateLimitStatus = func(status int) bool { return status == http.StatusTooManyRequests }
	}
	if opts.DefaultPause == nil {
		opts.DefaultPause = func(time.Time) time.Duration { return time.Second }
	}
	if opts.DecodeError == nil {
		venue := opts.Venue
		opts.DecodeError = func(status int, body []byte, retryAfter time.Duration) error {
			return &APIError{Venue: venue, Status: status, Msg: Shorten(strings.TrimSpace(string(body))), RetryAfter: retryAfter}
		}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Client{
		opts:    opts,
		base:    strings.TrimRight(opts.BaseURL, "/"),
		http:    opts.HTTPClient,
		clock:   opts.Clock,
		limiter: rate.NewLimiter(rate.Limit(float64(opts.PerMinute)/60), opts.Burst),
		rand:    rand.New(rand.NewPCG(seed, ^seed)),
	}, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Base returns the base URL without a trailing slash.
func (c *Client) Base() string { return c.base }

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	return Stats{
		Requests:    c.requests.Load(),
		RateLimited: c.rateLimited.Load(),
		Retries:     c.retries.Load(),
		Throttled:   c.throttled.Load(),
	}
}

// APIError is a non-2xx answer, or an error a venue reports in a 200 body.
type APIError struct {
	Venue  string
	Status int
	// Code is the venue's error code when it sent one ("51001", "10001").
	Code string
	Msg  string
	// RetryAfter is the pause the venue asked for (rate limits only).
	RetryAfter time.Duration
	// Limited marks a rate-limit answer.
	Limited bool
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Venue, e.Status)
	if e.Code != "" {
		s += " code " + e.Code
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Is makes errors.Is(err, ErrRateLimited) true for rate-limit answers.
func (e *APIError) Is(target error) bool { return target == ErrRateLimited && e.Limited }

// Throttled is what a Check returns for a rate limit the venue reports inside a 200
// body: the Client pauses for After (0: Options.DefaultPause) and retries.
type Throttled struct {
	Err   error
	After time.Duration
}

func (e *Throttled) Error() string { return e.Err.Error() }
func (e *Throttled) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *Throttled) Is(target error) bool { return target == ErrRateLimited }

// ShapeError reports an answer that does not have the shape the venue documents: a
// missing or mistyped field, a malformed number, a row breaking the page's order.
// Retrying cannot fix it, so it is returned marked seamless.Permanent, and the
// provider reports upstream_failed naming the venue and the field.
type ShapeError struct {
	Venue string
	// Row is the row's index in its page (-1 when the answer as a whole is at fault);
	// Field is the venue's name for the field ("" for a whole row).
	Row   int
	Field string
	// Value is the offending JSON text, shortened.
	Value  string
	Reason string
}

func (e *ShapeError) Error() string {
	s := e.Venue + ": malformed answer"
	if e.Row >= 0 {
		s += fmt.Sprintf(", row %d", e.Row)
	}
	if e.Field != "" {
		s += ", field " + e.Field
	}
	return s + ": " + e.Reason + ": " + e.Value
}

// Shape returns a Permanent *ShapeError.
func Shape(venue string, row int, field, value, reason string) error {
	return seamless.Permanent(&ShapeError{Venue: venue, Row: row, Field: field, Value: Shorten(value), Reason: reason})
}

// Get sends GET base+path (path includes the query) and returns the body of the 200
// answer that check accepts, after the limiter, pauses and retries described in the
// package doc. cost is the request's units of the limiter's budget. check (nil: accept)
// inspects a 200 body for errors the venue reports inside it: a *Throttled is a rate
// limit, a Permanent error is returned as is, any other error is retried like a 5xx.
func (c *Client) Get(ctx context.Context, path string, cost int, check func(body []byte) error) ([]byte, error) {
	u := c.base + path
	transient, limited := 0, 0
	for attempt := 0; ; attempt++ {
		if err := c.awaitTurn(ctx, cost); err != nil {
			return nil, err
		}
		if attempt > 0 {
			c.retries.Add(1)
		}
		body, err := c.get(ctx, u)
		if err == nil && check != nil {
			if err = check(body); err != nil {
				var th *Throttled
				if errors.As(err, &th) {
					c.rateLimited.Add(1)
					d := th.After
					if d <= 0 {
						d = c.opts.DefaultPause(c.clock.Now())
					}
					c.pause(c.clock.Now().Add(d))
				}
			}
		}
		if err == nil {
			return body, nil
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case seamless.IsPermanent(err):
			return nil, err
		case errors.Is(err, ErrRateLimited):
			// The pause is set; awaitTurn sleeps through it.
			if limited++; limited > c.opts.MaxRateLimitRetries {
				return nil, err
			}
		default:
			if transient++; transient > c.opts.MaxRetries {
				return nil, fmt.Errorf("after %d attempts: %w", transient, err)
			}
			if err := c.clock.Sleep(ctx, c.backoff(transient)); err != nil {
				return nil, err
			}
		}
	}
}

// awaitTurn blocks until the Client may send a request: after any pause the venue
// asked for, then with cost tokens of the budget.
func (c *Client) awaitTurn(ctx context.Context, cost int) error {
	for {
		c.mu.Lock()
		until := c.pauseUntil
		c.mu.Unlock()
		wait := until.Sub(c.clock.Now())
		if wait <= 0 {
			break
		}
		if wait > c.opts.MaxRateLimitWait {
			return fmt.Errorf("%s: %w until %s, longer than the %s the source waits; not sending requests meanwhile",
				c.opts.Venue, ErrRateLimited, until.UTC().Format(time.RFC3339), c.opts.MaxRateLimitWait)
		}
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	now := c.clock.Now()
	res := c.limiter.ReserveN(now, min(cost, c.opts.Burst))
	if d := res.DelayFrom(now); d > 0 {
		if err := c.clock.Sleep(ctx, d); err != nil {
			res.CancelAt(c.clock.Now()) // give the unused tokens back
			return err
		}
	}
	return nil
}

// pause stops all requests of the Client until t (a later pause wins).
func (c *Client) pause(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.pauseUntil) {
		c.pauseUntil = t
	}
}

// get sends one request and returns the body of a 200 answer.
func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	req.Header.Set("Accept", "application/json")
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		resp.Body.Close()
	}()
	if c.opts.Observe != nil {
		if t := c.opts.Observe(resp.Header, c.clock.Now()); !t.IsZero() {
			c.throttled.Add(1)
			c.pause(t)
		}
	}
	if resp.StatusCode == http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, int64(c.opts.MaxBodyBytes)+1))
		if err != nil {
			return nil, fmt.Errorf("%s: reading the answer: %w", c.opts.Venue, err)
		}
		if len(body) > c.opts.MaxBodyBytes {
			return nil, seamless.Permanent(fmt.Errorf("%s: answer over %d bytes", c.opts.Venue, c.opts.MaxBodyBytes))
		}
		return body, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if c.opts.RateLimitStatus(resp.StatusCode) {
		c.rateLimited.Add(1)
		d := c.RetryAfter(resp.Header)
		c.pause(c.clock.Now().Add(d))
		return nil, rateLimited{c.opts.DecodeError(resp.StatusCode, body, d)}
	}
	err = c.opts.DecodeError(resp.StatusCode, body, 0)
	if resp.StatusCode >= 500 {
		return nil, err
	}
	return nil, seamless.Permanent(err)
}

// rateLimited makes any venue's error for a rate-limit answer match ErrRateLimited.
type rateLimited struct{ err error }

func (e rateLimited) Error() string        { return e.err.Error() }
func (e rateLimited) Unwrap() error        { return e.err }
func (e rateLimited) Is(target error) bool { return target == ErrRateLimited }

// RetryAfter reads Retry-After in seconds (or as an HTTP date); without a usable
// header it is Options.DefaultPause.
func (c *Client) RetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(min(n, int64(time.Duration(1<<62)/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(c.clock.Now()), 0)
	}
	return c.opts.DefaultPause(c.clock.Now())
}

// backoff is RetryBackoff × 2^(attempt−1), scaled by a random factor in [0.75, 1.25].
func (c *Client) backoff(attempt int) time.Duration {
	d := float64(c.opts.RetryBackoff) * float64(uint64(1)<<min(attempt-1, 20))
	c.mu.Lock()
	u := c.rand.Float64()
	c.mu.Unlock()
	return time.Duration(d * (1 + jitterRatio*(2*u-1)))
}

// Shorten keeps error messages readable when a venue sends something large.
func Shorten(s string) string {
	const maxLen = 120
	if len(s) <= maxLen {
		return s
	}
	return s[:maxLen] + "…"
}
