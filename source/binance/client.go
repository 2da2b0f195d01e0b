package binance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

// ErrRateLimited matches (errors.Is) an answer 429 or 418, and a request refused
// locally because Binance asked for a pause longer than Options.MaxRateLimitWait.
// It is retryable: the provider's backfill may try again later.
var ErrRateLimited = venuehttp.ErrRateLimited

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

// maxErrorBytes bounds what is read of an error answer.
const maxErrorBytes = 64 << 10

// newClient is the venuehttp client of a Source: Binance's weight budget, 418 as a
// rate limit, a missing Retry-After meaning the next minute (when the weight window
// resets), the used-weight header, and Binance's error bodies.
func newClient(venue, path string, opts Options) (*venuehttp.Client, error) {
	weight := opts.RequestWeight
	return venuehttp.New(venuehttp.Options{
		Venue: venue, BaseURL: opts.BaseURL, HTTPClient: opts.HTTPClient,
		PerMinute: opts.WeightPerMinute,
		// The bucket holds ten seconds of budget: a short burst is fine, a minute's
		// worth at once would leave nothing for the rest of the minute.
		Burst:               max(opts.WeightPerMinute/6, opts.RequestWeight),
		MaxRetries:          opts.MaxRetries,
		RetryBackoff:        opts.RetryBackoff,
		MaxRateLimitRetries: opts.MaxRateLimitRetries,
		MaxRateLimitWait:    opts.MaxRateLimitWait,
		RequestTimeout:      opts.RequestTimeout,
		Clock:               opts.Clock,
		Seed:                opts.Seed,
		RateLimitStatus:     isRateLimitStatus,
		DefaultPause:        untilNextMinute,
		DecodeError: func(status int, body []byte, retryAfter time.Duration) error {
			e := decodeAPIError(status, body)
			e.RetryAfter = retryAfter
			return e
		},
		// When the IP's used weight (other clients' included) leaves no room for
		// another request in this minute's budget, pause until the minute rolls over.
		Observe: func(h http.Header, now time.Time) time.Time {
			used, err := strconv.Atoi(h.Get("X-MBX-USED-WEIGHT-1M"))
			if err != nil || used+weight <= opts.WeightPerMinute {
				return time.Time{}
			}
			return now.Add(untilNextMinute(now))
		},
	})
}

func readAPIError(resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	return decodeAPIError(resp.StatusCode, body)
}

func decodeAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
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

func untilNextMinute(now time.Time) time.Duration {
	return now.Truncate(time.Minute).Add(time.Minute).Sub(now)
}

// page fetches the klines of m with openTime in [startMs, endMs].
func (s *Source) page(ctx context.Context, m instrument, startMs, endMs int64) ([]kline, error) {
	ivMs := m.seconds * 1000
	q := url.Values{
		"symbol":    {m.symbol},
		"interval":  {m.interval},
		"startTime": {strconv.FormatInt(startMs, 10)},
		"endTime":   {strconv.FormatInt(endMs, 10)},
		"limit":     {strconv.FormatInt(min(int64(s.pageLimit), (endMs-startMs)/ivMs+1), 10)},
	}
	body, err := s.client.Get(ctx, s.path+"?"+q.Encode(), s.opts.RequestWeight, nil)
	if err != nil {
		return nil, err
	}
	rows, err := parsePage(body, startMs, endMs, ivMs)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	return rows, nil
}
