package binance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless"
)

// ErrRateLimited matches (errors.Is) an answer 429 or 418, and a request refused
// locally because Binance asked for a pause longer than Options.MaxRateLimitWait.
// It is retryable: the provider's backfill may try again later.
var ErrRateLimited = errors.New("binance: rate limited")

// APIError is a non-2xx answer from Binance. Code and Msg are Binance's error body
// ({"code":-1121,"msg":"Invalid symbol."}) when it sent one.
type APIError struct {
	Status int
	Code   int
	Msg    string
	// RetryAfter is the pause Binance asked for (429 and 418 only).
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != 0 {
		s += fmt.Sprintf(" code %d", e.Code)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return s
}

// Is makes errors.Is(err, ErrRateLimited) true for 429 and 418.
func (e *APIError) Is(target error) bool {
	return target == ErrRateLimited && isRateLimitStatus(e.Status)
}

func isRateLimitStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusTeapot
}

// Bounds on what one answer may hold: a full page of 1000 klines is about 200 KB.
const (
	maxPageBytes  = 8 << 20
	maxErrorBytes = 64 << 10
)

// page fetches the klines of m with openTime in [startMs, endMs], retrying 5xx and
// network errors with backoff and rate-limit answers after the pause Binance asked
// for.
func (s *Source) page(ctx context.Context, m market, startMs, endMs int64) ([]kline, error) {
	ivMs := m.seconds * 1000
	q := url.Values{
		"symbol":    {m.symbol},
		"interval":  {m.interval},
		"startTime": {strconv.FormatInt(startMs, 10)},
		"endTime":   {strconv.FormatInt(endMs, 10)},
		"limit":     {strconv.FormatInt(min(pageLimit, (endMs-startMs)/ivMs+1), 10)},
	}
	u := s.base + "/api/v3/klines?" + q.Encode()
	transient, limited := 0, 0
	for attempt := 0; ; attempt++ {
		if err := s.awaitTurn(ctx); err != nil {
			return nil, err
		}
		if attempt > 0 {
			s.retries.Add(1)
		}
		body, err := s.get(ctx, u)
		if err == nil {
			rows, err := parsePage(body, startMs, endMs, ivMs)
			if err != nil {
				return nil, seamless.Permanent(err)
			}
			return rows, nil
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case seamless.IsPermanent(err):
			return nil, err
		case errors.Is(err, ErrRateLimited):
			// get has set the pause; awaitTurn sleeps through it.
			if limited++; limited > s.opts.MaxRateLimitRetries {
				return nil, err
			}
		default:
			if transient++; transient > s.opts.MaxRetries {
				return nil, fmt.Errorf("after %d attempts: %w", transient, err)
			}
			if err := s.clock.Sleep(ctx, s.backoff(transient)); err != nil {
				return nil, err
			}
		}
	}
}

// awaitTurn blocks until the Source may send a request: after any pause Binance asked
// for, then with a token of the weight budget.
func (s *Source) awaitTurn(ctx context.Context) error {
	for {
		s.mu.Lock()
		until := s.pauseUntil
		s.mu.Unlock()
		wait := until.Sub(s.clock.Now())
		if wait <= 0 {
			break
		}
		if wait > s.opts.MaxRateLimitWait {
			return fmt.Errorf("%w until %s, longer than the %s the Source waits; not sending requests meanwhile",
				ErrRateLimited, until.UTC().Format(time.RFC3339), s.opts.MaxRateLimitWait)
		}
		if err := s.clock.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	now := s.clock.Now()
	res := s.limiter.ReserveN(now, s.opts.RequestWeight)
	if d := res.DelayFrom(now); d > 0 {
		if err := s.clock.Sleep(ctx, d); err != nil {
			res.CancelAt(s.clock.Now()) // give the unused token back
			return err
		}
	}
	return nil
}

// pause stops all requests of the Source until t (a later pause wins).
func (s *Source) pause(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.After(s.pauseUntil) {
		s.pauseUntil = t
	}
}

// get sends one request and returns the body of a 200 answer. Other answers become
// an *APIError: Permanent for 4xx other than 429/418, retryable otherwise.
func (s *Source) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	req.Header.Set("Accept", "application/json")
	s.requests.Add(1)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
		resp.Body.Close()
	}()
	s.noteUsedWeight(resp.Header)
	if resp.StatusCode == http.StatusOK {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
		if err != nil {
			return nil, fmt.Errorf("reading klines: %w", err)
		}
		if len(body) > maxPageBytes {
			return nil, seamless.Permanent(fmt.Errorf("klines response over %d bytes", maxPageBytes))
		}
		return body, nil
	}
	apiErr := readAPIError(resp)
	switch {
	case isRateLimitStatus(resp.StatusCode):
		s.rateLimited.Add(1)
		apiErr.RetryAfter = s.retryAfter(resp.Header)
		s.pause(s.clock.Now().Add(apiErr.RetryAfter))
		return nil, apiErr
	case resp.StatusCode >= 500:
		return nil, apiErr
	}
	return nil, seamless.Permanent(apiErr)
}

func readAPIError(resp *http.Response) *APIError {
	e := &APIError{Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	var b struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	}
	if json.Unmarshal(body, &b) == nil && (b.Code != 0 || b.Msg != "") {
		e.Code, e.Msg = b.Code, b.Msg
	} else {
		e.Msg = shorten(strings.TrimSpace(string(body)))
	}
	return e
}

// retryAfter reads Retry-After in seconds, as Binance sends it. Without a usable
// header the Source waits for the next minute, when Binance's weight window resets.
func (s *Source) retryAfter(h http.Header) time.Duration {
	if n, err := strconv.ParseInt(strings.TrimSpace(h.Get("Retry-After")), 10, 64); err == nil && n >= 0 {
		return time.Duration(min(n, int64(time.Duration(1<<62)/time.Second))) * time.Second
	}
	return untilNextMinute(s.clock.Now())
}

func untilNextMinute(now time.Time) time.Duration {
	return now.Truncate(time.Minute).Add(time.Minute).Sub(now)
}

// noteUsedWeight pauses the Source until the next minute when the IP's used weight
// leaves no room for another request in this minute's budget.
func (s *Source) noteUsedWeight(h http.Header) {
	used, err := strconv.Atoi(h.Get("X-MBX-USED-WEIGHT-1M"))
	if err != nil || used+s.opts.RequestWeight <= s.opts.WeightPerMinute {
		return
	}
	s.throttled.Add(1)
	now := s.clock.Now()
	s.pause(now.Add(untilNextMinute(now)))
}

// backoff is RetryBackoff × 2^(attempt−1), scaled by a random factor in [0.75, 1.25].
func (s *Source) backoff(attempt int) time.Duration {
	d := float64(s.opts.RetryBackoff) * float64(uint64(1)<<min(attempt-1, 20))
	s.mu.Lock()
	u := s.rand.Float64()
	s.mu.Unlock()
	return time.Duration(d * (1 + jitterRatio*(2*u-1)))
}
