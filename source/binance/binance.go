// Package binance is a seamless.Fetcher for Binance spot candles: node ids
// ohlcv:binance:{BASE/QUOTE}:{tf}, read from the public REST endpoint
// GET /api/v3/klines.
//
// # Mapping
//
// The symbol BASE/QUOTE becomes Binance's BASEQUOTE (BTC/USDT → BTCUSDT); both parts
// must be upper-case letters and digits, so that one market has one node id. The
// timeframe must be a Binance kline interval of fixed width that opens on the Seamless
// grid (multiples of the interval from the Unix epoch): 1s 1m 3m 5m 15m 30m 1h 2h 4h
// 6h 8h 12h 1d 3d. 1M (months differ in length) and 1w (Binance weeks open on Monday,
// the epoch grid's on Thursday) are rejected as seamless.Permanent, as is any other
// kind than ohlcv. Each kline becomes one OHLCV row: ts = openTime/1000, and open,
// high, low, close and (base-asset) volume parsed from Binance's decimal strings.
//
// # Pagination
//
// A half-open range [start, end) in seconds is requested as startTime = start×1000 and
// endTime = end×1000−1 (Binance's bounds are inclusive milliseconds), at most 1000
// klines a page. The next page starts one interval after the last openTime returned;
// paging stops at the end of the range or at an empty page. Bars Binance does not
// have (a maintenance window) are simply absent; the provider records the range as
// covered anyway, so such a gap is not fetched again. Only closed klines are returned:
// a row whose closeTime is not before the injected clock's now is dropped, and paging
// stops there.
//
// # Errors
//
// HTTP 4xx other than 429 and 418 (for example code -1121 "Invalid symbol.") are
// returned as a Permanent *APIError carrying Binance's code and msg. A malformed page
// — a row of the wrong arity, a price that is not a decimal string, a row out of
// order, outside the requested window or off the grid — fails the whole fetch as a
// Permanent *RowError naming the row and the field: Seamless stores a range as
// authoritative, so skipping a garbage row would record a hole as a market gap. 5xx
// answers and network errors are retried a few times inside the Source with
// exponential backoff and jitter, then returned as ordinary (retryable) errors, so the
// provider's own backfill retries apply on top.
//
// # Rate limits
//
// Binance meters REST traffic per IP in request weight per minute. Each Source holds a
// token bucket (golang.org/x/time/rate) refilled at Options.WeightPerMinute, driven by
// the injected clock; every klines request costs Options.RequestWeight, 2 by default
// (the spot documentation's weight of /api/v3/klines for any limit up to 1000; older
// versions of the documentation charged 5 at limit 1000, so set 5 to be safe against
// such an exchange). After each answer the X-MBX-USED-WEIGHT-1M header — the IP's use
// in the current minute, including other clients — is compared with the budget: when
// one more request would pass it, the Source pauses until the minute rolls over on its
// clock. HTTP 429 and 418 pause the whole Source for Retry-After seconds (until the
// next minute when the header is missing) and then retry the same page, up to
// Options.MaxRateLimitRetries times. A pause longer than Options.MaxRateLimitWait (an
// IP ban can last days) is not slept through: requests fail at once with a retryable
// error wrapping ErrRateLimited until it ends, so no request is sent during a ban.
//
// Every wait — limiter, pause, backoff, the HTTP request itself — ends when the
// caller's context does. Stats reports request, rate-limit and retry counts.
package binance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// DefaultBaseURL is Binance's public spot REST endpoint.
const DefaultBaseURL = "https://api.binance.com"

// Defaults of Options.
const (
	// DefaultWeightPerMinute is Binance's long-standing spot floor of 1200 weight per
	// minute per IP, less a margin of 200 for other clients on the same IP. (Binance
	// now publishes 6000 in exchangeInfo; the floor is the safe assumption.)
	DefaultWeightPerMinute = 1000
	// DefaultRequestWeight is the weight of one /api/v3/klines request.
	DefaultRequestWeight       = 2
	DefaultMaxRetries          = 3
	DefaultRetryBackoff        = 250 * time.Millisecond
	DefaultMaxRateLimitRetries = 5
	DefaultMaxRateLimitWait    = 5 * time.Minute
	DefaultRequestTimeout      = 30 * time.Second
)

// pageLimit is the largest limit /api/v3/klines accepts.
const pageLimit = 1000

// jitterRatio spreads backoff delays by ±25%, as the provider's backfill does.
const jitterRatio = 0.25

// Options configure a Source. The zero value talks to DefaultBaseURL with the
// defaults above.
type Options struct {
	// BaseURL is the REST root, without /api/v3 (default DefaultBaseURL).
	BaseURL string
	// HTTPClient defaults to a client on http.DefaultTransport.
	HTTPClient *http.Client
	// WeightPerMinute is the request-weight budget of this Source per minute.
	WeightPerMinute int
	// RequestWeight is the weight charged per klines request.
	RequestWeight int
	// MaxRetries bounds the retries of a page after a 5xx or network error (negative:
	// none); RetryBackoff is the first delay, doubled each retry, ±25% jitter.
	MaxRetries   int
	RetryBackoff time.Duration
	// MaxRateLimitRetries bounds the retries of a page answered 429 or 418 (negative:
	// none); MaxRateLimitWait is the longest pause the Source sleeps through.
	MaxRateLimitRetries int
	MaxRateLimitWait    time.Duration
	// RequestTimeout bounds one HTTP request; a timeout counts as a network error.
	RequestTimeout time.Duration
	// Clock drives the limiter, pauses, backoff and the closed-kline cut-off.
	Clock clock.Clock
	// Seed seeds the backoff jitter (0: random).
	Seed uint64
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http or https URL such as https://api.binance.com")
	}
	return nil
}

// Stats are a Source's counters since New.
type Stats struct {
	// Requests is the number of HTTP requests sent.
	Requests uint64
	// RateLimited counts answers 429 or 418.
	RateLimited uint64
	// Retries counts pages requested again, after a 5xx, a network error or a rate
	// limit.
	Retries uint64
	// Throttled counts pauses started because X-MBX-USED-WEIGHT-1M neared the budget.
	Throttled uint64
}

// Source fetches klines from Binance. It implements seamless.Fetcher and is safe for
// concurrent use; its limiter and pauses are shared by all its fetches.
type Source struct {
	opts    Options
	base    string
	http    *http.Client
	clock   clock.Clock
	limiter *rate.Limiter

	mu         sync.Mutex
	pauseUntil time.Time // no request before this (429/418, used weight)
	rand       *rand.Rand

	requests, rateLimited, retries, throttled atomic.Uint64
}

// New returns a Source.
func New(opts Options) (*Source, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	if err := checkBaseURL(opts.BaseURL); err != nil {
		return nil, fmt.Errorf("binance: base URL %q: %w", opts.BaseURL, err)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	opts.WeightPerMinute = orDefault(opts.WeightPerMinute, DefaultWeightPerMinute)
	opts.RequestWeight = orDefault(opts.RequestWeight, DefaultRequestWeight)
	opts.MaxRetries = max(orDefault(opts.MaxRetries, DefaultMaxRetries), 0)
	opts.RetryBackoff = orDefault(opts.RetryBackoff, DefaultRetryBackoff)
	opts.MaxRateLimitRetries = max(orDefault(opts.MaxRateLimitRetries, DefaultMaxRateLimitRetries), 0)
	opts.MaxRateLimitWait = orDefault(opts.MaxRateLimitWait, DefaultMaxRateLimitWait)
	opts.RequestTimeout = orDefault(opts.RequestTimeout, DefaultRequestTimeout)
	if opts.WeightPerMinute < opts.RequestWeight || opts.RequestWeight < 0 {
		return nil, fmt.Errorf("binance: weight per minute %d must be at least the request weight %d", opts.WeightPerMinute, opts.RequestWeight)
	}
	if opts.RetryBackoff < 0 || opts.MaxRateLimitWait < 0 || opts.RequestTimeout < 0 {
		return nil, errors.New("binance: negative durations in Options")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	// The bucket holds ten seconds of budget: a short burst is fine, a minute's worth
	// at once would leave nothing for the rest of the minute.
	burst := max(opts.WeightPerMinute/6, opts.RequestWeight)
	return &Source{
		opts:    opts,
		base:    strings.TrimRight(opts.BaseURL, "/"),
		http:    opts.HTTPClient,
		clock:   opts.Clock,
		limiter: rate.NewLimiter(rate.Limit(float64(opts.WeightPerMinute)/60), burst),
		rand:    rand.New(rand.NewPCG(seed, ^seed)),
	}, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Stats returns a snapshot of the counters.
func (s *Source) Stats() Stats {
	return Stats{
		Requests:    s.requests.Load(),
		RateLimited: s.rateLimited.Load(),
		Retries:     s.retries.Load(),
		Throttled:   s.throttled.Load(),
	}
}

// intervals are the Binance kline intervals that have a fixed width and open on the
// epoch grid. 1M is variable; 1w opens on Mondays, off the epoch grid (Thursday).
var intervals = map[string]int64{
	"1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800,
	"1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200,
	"1d": 86400, "3d": 259200,
}

// market is a node id resolved to Binance's request parameters.
type market struct {
	symbol, interval string
	seconds          int64
}

func resolve(s seamless.Series) (market, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return market{}, fmt.Errorf("binance: %w", err)
	}
	if node.Kind != "ohlcv" {
		return market{}, fmt.Errorf("binance: node %s: only ohlcv nodes are served, not %q", s.NodeID, node.Kind)
	}
	secs, ok := intervals[node.Timeframe]
	if !ok {
		why := "not a Binance kline interval"
		if node.Timeframe == "1w" {
			why = "Binance weeks open on Monday, off the epoch-aligned Seamless grid"
		}
		return market{}, fmt.Errorf("binance: node %s: timeframe %q: %s (want one of 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d)", s.NodeID, node.Timeframe, why)
	}
	if s.Interval != secs {
		return market{}, fmt.Errorf("binance: node %s: interval %d s does not match the timeframe %q", s.NodeID, s.Interval, node.Timeframe)
	}
	base, quote, ok := strings.Cut(node.Symbol, "/")
	if !ok || !isAsset(base) || !isAsset(quote) {
		return market{}, fmt.Errorf("binance: node %s: symbol %q: want BASE/QUOTE in upper-case letters and digits, e.g. BTC/USDT", s.NodeID, node.Symbol)
	}
	return market{symbol: base + quote, interval: node.Timeframe, seconds: secs}, nil
}

// Market is a series resolved to Binance's symbol (BTCUSDT) and kline interval (1m).
type Market struct {
	Symbol, Interval string
	Seconds          int64
}

// ResolveMarket maps an ohlcv:binance:{BASE/QUOTE}:{tf} series to its Binance market,
// with the same rules for REST and websocket streams: only fixed-width intervals that
// open on the epoch grid, BASE/QUOTE in upper-case letters and digits.
func ResolveMarket(s seamless.Series) (Market, error) {
	m, err := resolve(s)
	return Market{Symbol: m.symbol, Interval: m.interval, Seconds: m.seconds}, err
}

func isAsset(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// maxEpochSeconds (year 10000) bounds ranges so that milliseconds cannot overflow.
const maxEpochSeconds = 253402300800

// Fetch implements seamless.Fetcher: the closed klines of s with open time in r.
func (s *Source) Fetch(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	m, err := resolve(ser)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	// Nothing exists before the epoch or after year 10000; clamping keeps ms in range.
	a := r.Intersect(grid.R(0, maxEpochSeconds)).Align(m.seconds)
	f := frame.New(frame.OHLCV, int(min(max(a.Bars(m.seconds), 0), pageLimit)))
	if a.Empty() {
		return f, nil
	}
	ivMs := m.seconds * 1000
	endMs := a.End*1000 - 1
	for startMs := a.Start * 1000; startMs <= endMs; {
		rows, err := s.page(ctx, m, startMs, endMs)
		if err != nil {
			return nil, fmt.Errorf("binance: %s %v: page from %s: %w", ser, r, time.UnixMilli(startMs).UTC().Format(time.RFC3339), err)
		}
		if len(rows) == 0 {
			break // nothing more in the range: the rest is a market gap
		}
		if !appendClosed(f, rows, s.clock.Now().UnixMilli()) {
			break // a forming kline: every later one is newer still
		}
		startMs = rows[len(rows)-1].openMs + ivMs
	}
	return f, nil
}

// appendClosed appends the rows closed before nowMs to f and reports whether all were.
func appendClosed(f *frame.Frame, rows []kline, nowMs int64) bool {
	for _, k := range rows {
		if k.closeMs >= nowMs {
			return false
		}
		f.TS = append(f.TS, k.openMs/1000)
		for i, v := range k.ohlcv {
			f.Cols[i].F64 = append(f.Cols[i].F64, v)
		}
	}
	return true
}
