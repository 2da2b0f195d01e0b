// Package bybit is a seamless.Fetcher for Bybit klines (API v5): node ids
// ohlcv:bybit:{symbol}:{tf}, read from the public REST endpoint GET /v5/market/kline.
//
// # Mapping
//
// Symbols are ccxt's unified form: BASE/QUOTE is the spot market BASEQUOTE (category
// spot), BASE/QUOTE:QUOTE the linear perpetual (category linear; BTCUSDT, and
// BASEPERP for USDC-settled ones such as BTC/USDC:USDC → BTCPERP), BASE/USD:BASE the
// inverse perpetual BASEUSD (category inverse). Timeframes are the Bybit intervals
// that open on the epoch grid: 1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d (intervals 1 3 5 15
// 30 60 120 240 360 720 D); W opens on Monday and M varies, so neither is served.
// Volume is in the base asset: volume for spot and linear, turnover for inverse
// (whose volume counts USD contracts).
//
// # Wire format and pagination
//
// Bybit answers {"retCode":0,"retMsg":"OK","result":{"category":…,"symbol":…,"list":
// [[startTime,open,high,low,close,volume,turnover],…]},"time":…}: startTime in epoch
// milliseconds, every value a decimal string, newest first, for start ≤ startTime ≤
// end, at most limit (≤ 1000) rows. A half-open range [start, end) is asked for in
// windows of 1,000 bars, each an exact start..end with a limit equal to its bars, so
// that no window is truncated. The newest row may be the bar still forming; the range
// is cut at the bar forming at the injected clock's now, and a later row is refused.
//
// # Errors
//
// A retCode other than 0 in a 200 body is Bybit's error: 10001 (unsupported symbol
// or bad parameter) and other codes are Permanent; 10006 ("Too many visits") pauses
// the Source until X-Bapi-Limit-Reset-Timestamp, or a second, and retries; 10000 and
// 10016 (server timeout, server error) are retried with backoff. HTTP 403 ("access
// too frequent", Bybit's IP ban) and 429 are rate limits: without a Retry-After the
// Source pauses ten minutes, as Bybit asks, which is longer than the default
// MaxRateLimitWait, so the fetch fails at once as retryable and no request is sent
// until the ban ends. Malformed rows are Permanent *venuehttp.ShapeError.
//
// # Rate limits
//
// Bybit allows 600 requests per 5 s per IP across its API; each Source holds a
// limiter of Options.RequestsPerSecond (default 20) shared by all its fetches.
package bybit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/internal/market"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

// Name is the source part of Bybit node ids.
const Name = "bybit"

// DefaultBaseURL is Bybit's public REST endpoint.
const DefaultBaseURL = "https://api.bybit.com"

// PageLimit is the most klines one request returns.
const PageLimit = 1000

// banPause is how long Bybit asks clients to stop after HTTP 403.
const banPause = 10 * time.Minute

// Intervals maps the timeframes Bybit serves to its interval parameter.
var Intervals = map[string]string{
	"1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120",
	"4h": "240", "6h": "360", "12h": "720", "1d": "D",
}

// Options configure a Source; the zero value talks to DefaultBaseURL.
type Options struct {
	BaseURL    string
	HTTPClient *http.Client
	// RequestsPerSecond is the Source's request budget.
	RequestsPerSecond int
	// MaxRetries, RetryBackoff, MaxRateLimitRetries, MaxRateLimitWait and
	// RequestTimeout are venuehttp.Options' (0: its defaults).
	MaxRetries          int
	RetryBackoff        time.Duration
	MaxRateLimitRetries int
	MaxRateLimitWait    time.Duration
	RequestTimeout      time.Duration
	// Clock drives the limiter, pauses, backoff and the closed-bar cut-off.
	Clock clock.Clock
	Seed  uint64
}

// Source fetches klines from Bybit; safe for concurrent use.
type Source struct {
	client *venuehttp.Client
	clock  clock.Clock

	mu    sync.Mutex
	reset time.Time // X-Bapi-Limit-Reset-Timestamp of the latest answer
}

// New returns a Source.
func New(o Options) (*Source, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.RequestsPerSecond == 0 {
		o.RequestsPerSecond = 20
	}
	if o.RequestsPerSecond < 0 {
		return nil, fmt.Errorf("bybit: requests per second %d must be positive", o.RequestsPerSecond)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	s := &Source{clock: o.Clock}
	c, err := venuehttp.New(venuehttp.Options{
		Venue: Name, BaseURL: o.BaseURL, HTTPClient: o.HTTPClient,
		PerMinute: o.RequestsPerSecond * 60, Burst: o.RequestsPerSecond,
		MaxRetries: o.MaxRetries, RetryBackoff: o.RetryBackoff,
		MaxRateLimitRetries: o.MaxRateLimitRetries, MaxRateLimitWait: o.MaxRateLimitWait,
		RequestTimeout: o.RequestTimeout, Clock: o.Clock, Seed: o.Seed,
		RateLimitStatus: func(status int) bool {
			return status == http.StatusForbidden || status == http.StatusTooManyRequests
		},
		DefaultPause: func(time.Time) time.Duration { return banPause },
		DecodeError:  decodeError,
		Observe: func(h http.Header, _ time.Time) time.Time {
			if ms, err := strconv.ParseInt(h.Get("X-Bapi-Limit-Reset-Timestamp"), 10, 64); err == nil {
				s.mu.Lock()
				s.reset = time.UnixMilli(ms)
				s.mu.Unlock()
			}
			return time.Time{}
		},
	})
	if err != nil {
		return nil, err
	}
	s.client = c
	return s, nil
}

// RateLimited counts the rate-limit answers received (the metrics' counter).
func (s *Source) RateLimited() uint64 { return s.client.Stats().RateLimited }

// Stats returns the Source's request counters.
func (s *Source) Stats() venuehttp.Stats { return s.client.Stats() }

// envelope is every v5 answer.
type envelope struct {
	RetCode *int   `json:"retCode"`
	RetMsg  string `json:"retMsg"`
	Result  struct {
		List []json.RawMessage `json:"list"`
	} `json:"result"`
}

func decodeError(status int, body []byte, retryAfter time.Duration) error {
	e := &venuehttp.APIError{Venue: Name, Status: status, RetryAfter: retryAfter,
		Limited: status == http.StatusForbidden || status == http.StatusTooManyRequests}
	var env envelope
	if json.Unmarshal(body, &env) == nil && env.RetCode != nil {
		e.Code, e.Msg = strconv.Itoa(*env.RetCode), env.RetMsg
	} else {
		e.Msg = venuehttp.Shorten(string(body))
	}
	return e
}

// checkCode classifies an error Bybit reports in a 200 body.
func (s *Source) checkCode(body []byte) error {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.RetCode == nil {
		return venuehttp.Shape(Name, -1, "retCode", string(body), "not a Bybit v5 answer")
	}
	code := *env.RetCode
	if code == 0 {
		return nil
	}
	e := &venuehttp.APIError{Venue: Name, Status: http.StatusOK, Code: strconv.Itoa(code), Msg: env.RetMsg}
	switch code {
	case 10006, 10018:
		e.Limited = true
		s.mu.Lock()
		wait := s.reset.Sub(s.clock.Now())
		s.mu.Unlock()
		return &venuehttp.Throttled{Err: e, After: max(wait, 0)}
	case 10000, 10016:
		return e // transient: retried
	}
	return seamless.Permanent(e)
}

// Instrument is a series resolved to Bybit's category, symbol and interval.
type Instrument struct {
	Category, Symbol, Interval string
	Seconds                    int64
}

// Resolve maps an ohlcv:bybit:{symbol}:{tf} series to its instrument.
func Resolve(s seamless.Series) (Instrument, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return Instrument{}, fmt.Errorf("bybit: %w", err)
	}
	if node.Kind != "ohlcv" {
		return Instrument{}, fmt.Errorf("bybit: node %s: only ohlcv nodes are served, not %q", s.NodeID, node.Kind)
	}
	iv, ok := Intervals[node.Timeframe]
	if !ok {
		return Instrument{}, fmt.Errorf("bybit: node %s: timeframe %q is not a Bybit interval on the epoch grid (want one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d)", s.NodeID, node.Timeframe)
	}
	if secs, _ := seamless.ParseTimeframe(node.Timeframe); s.Interval != secs {
		return Instrument{}, fmt.Errorf("bybit: node %s: interval %d s does not match the timeframe %q", s.NodeID, s.Interval, node.Timeframe)
	}
	sym, err := market.Parse(node.Symbol)
	if err != nil {
		return Instrument{}, fmt.Errorf("bybit: node %s: %w", s.NodeID, err)
	}
	in := Instrument{Symbol: sym.Base + sym.Quote, Interval: iv, Seconds: s.Interval}
	switch {
	case sym.Spot():
		in.Category = "spot"
	case sym.Linear():
		in.Category = "linear"
		if sym.Quote == "USDC" {
			in.Symbol = sym.Base + "PERP"
		}
	case sym.Settle == sym.Base && sym.Quote == "USD":
		in.Category = "inverse"
	default:
		return Instrument{}, fmt.Errorf("bybit: node %s: symbol %q: Bybit perpetuals are BASE/QUOTE:QUOTE (linear) or BASE/USD:BASE (inverse)", s.NodeID, node.Symbol)
	}
	return in, nil
}

// maxEpochSeconds (year 10000) bounds ranges so that milliseconds cannot overflow.
const maxEpochSeconds = 253402300800

// Fetch implements seamless.Fetcher: the closed klines of ser with ts in r.
func (s *Source) Fetch(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	in, err := Resolve(ser)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	iv := in.Seconds
	closedEnd := seamless.ClosedEnd(s.clock.Now().Unix(), iv)
	a := r.Intersect(grid.R(0, min(maxEpochSeconds, closedEnd))).Align(iv)
	f := frame.New(frame.OHLCV, int(min(max(a.Bars(iv), 0), PageLimit)))
	for from := a.Start; from < a.End; from += PageLimit * iv {
		to := min(from+PageLimit*iv, a.End)
		rows, err := s.page(ctx, in, from, to)
		if err != nil {
			return nil, fmt.Errorf("bybit: %s %v: window from %s: %w", ser, r, time.Unix(from, 0).UTC().Format(time.RFC3339), err)
		}
		for _, row := range rows {
			f.TS = append(f.TS, row.ts)
			for i, v := range row.ohlcv {
				f.Cols[i].F64 = append(f.Cols[i].F64, v)
			}
		}
	}
	return f, nil
}

type candle struct {
	ts    int64
	ohlcv [5]float64
}

func (s *Source) page(ctx context.Context, in Instrument, from, to int64) ([]candle, error) {
	q := url.Values{
		"category": {in.Category},
		"symbol":   {in.Symbol},
		"interval": {in.Interval},
		"start":    {strconv.FormatInt(from*1000, 10)},
		"end":      {strconv.FormatInt((to-in.Seconds)*1000, 10)},
		"limit":    {strconv.FormatInt((to-from)/in.Seconds, 10)},
	}
	body, err := s.client.Get(ctx, "/v5/market/kline?"+q.Encode(), 1, s.checkCode)
	if err != nil {
		return nil, err
	}
	return parsePage(body, in, from, to)
}

// rowFields names the positions of a kline row, as Bybit documents them.
var rowFields = [7]string{"startTime", "openPrice", "highPrice", "lowPrice", "closePrice", "volume", "turnover"}

// parsePage parses a kline answer for the window [from, to) (seconds): rows newest
// first, strictly descending, on the grid, inside the window, OHLC consistent. It
// returns them oldest first.
func parsePage(body []byte, in Instrument, from, to int64) ([]candle, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Result.List == nil {
		return nil, venuehttp.Shape(Name, -1, "result.list", string(body), "no list of kline rows")
	}
	volAt := 5
	if in.Category == "inverse" {
		volAt = 6
	}
	at := [5]int{1, 2, 3, 4, volAt}
	ivMs := in.Seconds * 1000
	out := make([]candle, 0, len(env.Result.List))
	prev := int64(-1)
	for i, raw := range env.Result.List {
		var text []string
		if err := json.Unmarshal(raw, &text); err != nil || len(text) < len(rowFields) {
			return nil, venuehttp.Shape(Name, i, "", string(raw), fmt.Sprintf("not an array of %d strings", len(rowFields)))
		}
		ms, err := strconv.ParseInt(text[0], 10, 64)
		var reason string
		switch {
		case err != nil || ms < 0:
			reason = "not a non-negative integer of milliseconds"
		case ms < from*1000 || ms >= to*1000:
			reason = fmt.Sprintf("outside the requested window [%d, %d) ms", from*1000, to*1000)
		case ms%ivMs != 0:
			reason = fmt.Sprintf("not on the epoch grid of %d ms", ivMs)
		case prev >= 0 && ms >= prev:
			reason = "not before the previous row's startTime (rows come newest first)"
		}
		if reason != "" {
			return nil, venuehttp.Shape(Name, i, "startTime", text[0], reason)
		}
		prev = ms
		c := candle{ts: ms / 1000}
		for k, p := range at {
			v, why := venuehttp.ParseDecimal(text[p])
			if why != "" {
				return nil, venuehttp.Shape(Name, i, rowFields[p], text[p], why)
			}
			c.ohlcv[k] = v
		}
		if k, why := venuehttp.CheckBar(c.ohlcv); k >= 0 {
			return nil, venuehttp.Shape(Name, i, rowFields[at[k]], text[at[k]], why)
		}
		out = append(out, c)
	}
	slices.Reverse(out)
	return out, nil
}
