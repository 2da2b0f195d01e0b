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
	"fmt"
	"net/http"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/internal/market"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

// DefaultBaseURL is Binance's public spot REST endpoint.
const DefaultBaseURL = "https://api.binance.com"

// DefaultFuturesBaseURL is Binance's public USDⓈ-M futures REST endpoint.
const DefaultFuturesBaseURL = "https://fapi.binance.com"

// Defaults of Options.
const (
	// DefaultWeightPerMinute is Binance's long-standing spot floor of 1200 weight per
	// minute per IP, less a margin of 200 for other clients on the same IP. (Binance
	// now publishes 6000 in exchangeInfo; the floor is the safe assumption.)
	DefaultWeightPerMinute = 1000
	// DefaultRequestWeight is the weight of one /api/v3/klines request.
	DefaultRequestWeight = 2
	// DefaultFuturesWeightPerMinute is USDⓈ-M futures' 2400 per minute per IP, less
	// a margin of 400 for other clients on the same IP.
	DefaultFuturesWeightPerMinute = 2000
	// DefaultFuturesRequestWeight is the weight of one /fapi/v1/klines request with a
	// limit from 500 to 1000 (1 below 100, 2 below 500, 10 above 1000).
	DefaultFuturesRequestWeight = 5
	DefaultMaxRetries           = venuehttp.DefaultMaxRetries
	DefaultRetryBackoff         = venuehttp.DefaultRetryBackoff
	DefaultMaxRateLimitRetries  = venuehttp.DefaultMaxRateLimitRetries
	DefaultMaxRateLimitWait     = venuehttp.DefaultMaxRateLimitWait
	DefaultRequestTimeout       = venuehttp.DefaultRequestTimeout
)

// pageLimit is the limit of one klines request: the most /api/v3/klines accepts, and
// the largest at /fapi/v1/klines before its weight doubles.
const pageLimit = 1000

// Options configure a Source. The zero value talks to DefaultBaseURL with the
// defaults above.
type Options struct {
	// BaseURL is the REST root, without /api/v3 (default DefaultBaseURL, or
	// DefaultFuturesBaseURL for NewFutures).
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

// Stats are a Source's counters since New: Requests sent, RateLimited answers (429 or
// 418), Retries of a page (after a 5xx, a network error or a rate limit), and
// Throttled pauses started because X-MBX-USED-WEIGHT-1M neared the budget.
type Stats = venuehttp.Stats

// Source fetches klines from Binance. It implements seamless.Fetcher and is safe for
// concurrent use; its limiter and pauses are shared by all its fetches.
type Source struct {
	opts      Options
	base      string
	clock     clock.Clock
	client    *venuehttp.Client
	name      string // the source part of node ids
	path      string // the klines route
	pageLimit int
	futures   bool
}

// New returns a Source for Binance spot (source name binance, /api/v3/klines).
func New(opts Options) (*Source, error) {
	return newSource("binance", "/api/v3/klines", false, DefaultBaseURL, DefaultWeightPerMinute, DefaultRequestWeight, opts)
}

// NewFutures returns a Source for Binance USDⓈ-M futures (source name
// binance-futures, /fapi/v1/klines): linear perpetuals, symbols BASE/QUOTE:QUOTE such
// as BTC/USDT:USDT.
func NewFutures(opts Options) (*Source, error) {
	return newSource("binance-futures", "/fapi/v1/klines", true, DefaultFuturesBaseURL, DefaultFuturesWeightPerMinute, DefaultFuturesRequestWeight, opts)
}

func newSource(name, path string, futures bool, base string, perMinute, weight int, opts Options) (*Source, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = base
	}
	if err := venuehttp.CheckBaseURL(opts.BaseURL); err != nil {
		return nil, fmt.Errorf("%s: base URL %q: %w", name, opts.BaseURL, fmt.Errorf("want an http or https URL such as %s", base))
	}
	opts.WeightPerMinute = orDefault(opts.WeightPerMinute, perMinute)
	opts.RequestWeight = orDefault(opts.RequestWeight, weight)
	if opts.WeightPerMinute < opts.RequestWeight || opts.RequestWeight < 0 {
		return nil, fmt.Errorf("%s: weight per minute %d must be at least the request weight %d", name, opts.WeightPerMinute, opts.RequestWeight)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	c, err := newClient(name, path, opts)
	if err != nil {
		return nil, err
	}
	return &Source{opts: opts, base: c.Base(), clock: opts.Clock, client: c, name: name, path: path, pageLimit: pageLimit, futures: futures}, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Name is the source part of the node ids the Source serves.
func (s *Source) Name() string { return s.name }

// RateLimited counts the rate-limit answers received (the metrics' counter).
func (s *Source) RateLimited() uint64 { return s.Stats().RateLimited }

// Stats returns a snapshot of the counters.
func (s *Source) Stats() Stats { return s.client.Stats() }

// intervals are the Binance kline intervals that have a fixed width and open on the
// epoch grid. 1M is variable; 1w opens on Mondays, off the epoch grid (Thursday).
var intervals = map[string]int64{
	"1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800,
	"1h": 3600, "2h": 7200, "4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200,
	"1d": 86400, "3d": 259200,
}

// instrument is a node id resolved to Binance's request parameters.
type instrument struct {
	symbol, interval string
	seconds          int64
}

func resolve(s seamless.Series, name string, futures bool) (instrument, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return instrument{}, fmt.Errorf("%s: %w", name, err)
	}
	if node.Kind != "ohlcv" {
		return instrument{}, fmt.Errorf("%s: node %s: only ohlcv nodes are served, not %q", name, s.NodeID, node.Kind)
	}
	secs, ok := intervals[node.Timeframe]
	if futures && node.Timeframe == "1s" {
		ok = false
	}
	if !ok {
		why := "not a Binance kline interval"
		if node.Timeframe == "1w" {
			why = "Binance weeks open on Monday, off the epoch-aligned Seamless grid"
		}
		want := "1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d"
		if futures {
			want = want[3:]
		}
		return instrument{}, fmt.Errorf("%s: node %s: timeframe %q: %s (want one of %s)", name, s.NodeID, node.Timeframe, why, want)
	}
	if s.Interval != secs {
		return instrument{}, fmt.Errorf("%s: node %s: interval %d s does not match the timeframe %q", name, s.NodeID, s.Interval, node.Timeframe)
	}
	sym, err := market.Parse(node.Symbol)
	switch {
	case err != nil:
		return instrument{}, fmt.Errorf("%s: node %s: %w", name, s.NodeID, err)
	case futures && !sym.Linear():
		return instrument{}, fmt.Errorf("%s: node %s: symbol %q: USDⓈ-M futures are linear perpetuals, BASE/QUOTE:QUOTE such as BTC/USDT:USDT", name, s.NodeID, node.Symbol)
	case !futures && !sym.Spot():
		return instrument{}, fmt.Errorf("%s: node %s: symbol %q: Binance spot markets are BASE/QUOTE such as BTC/USDT (perpetuals are served by binance-futures)", name, s.NodeID, node.Symbol)
	}
	return instrument{symbol: sym.Base + sym.Quote, interval: node.Timeframe, seconds: secs}, nil
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
	m, err := resolve(s, "binance", false)
	return Market{Symbol: m.symbol, Interval: m.interval, Seconds: m.seconds}, err
}

// ResolveFuturesMarket maps an ohlcv:binance-futures:{BASE/QUOTE:QUOTE}:{tf} series
// to its USDⓈ-M market (BTC/USDT:USDT → BTCUSDT).
func ResolveFuturesMarket(s seamless.Series) (Market, error) {
	m, err := resolve(s, "binance-futures", true)
	return Market{Symbol: m.symbol, Interval: m.interval, Seconds: m.seconds}, err
}

// maxEpochSeconds (year 10000) bounds ranges so that milliseconds cannot overflow.
const maxEpochSeconds = 253402300800

// Fetch implements seamless.Fetcher: the closed klines of s with open time in r.
func (s *Source) Fetch(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	m, err := resolve(ser, s.name, s.futures)
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
			return nil, fmt.Errorf("%s: %s %v: page from %s: %w", s.name, ser, r, time.UnixMilli(startMs).UTC().Format(time.RFC3339), err)
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
