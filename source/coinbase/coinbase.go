// Package coinbase is a seamless.Fetcher for Coinbase Exchange candles: node ids
// ohlcv:coinbase:{BASE/QUOTE}:{tf}, read from the public REST endpoint
// GET /products/{product_id}/candles.
//
// # Mapping
//
// The symbol BASE/QUOTE becomes Coinbase's product id BASE-QUOTE (BTC/USD → BTC-USD);
// Coinbase Exchange lists spot products only. The timeframe must be one of Coinbase's
// granularities, all of which open on the epoch grid: 1m 5m 15m 1h 6h 1d (60, 300,
// 900, 3600, 21600, 86400 s). Any other timeframe or kind is seamless.Permanent.
//
// # Wire format and pagination
//
// Coinbase answers a JSON array of rows [time, low, high, open, close, volume] — time
// in epoch seconds, the rest JSON numbers — newest first, for the candles whose time
// is in [start, end], both inclusive (ISO 8601), at most 300 per request; a wider
// window is refused with HTTP 400. A half-open range [start, end) is therefore
// requested in windows of 300 candles, start to start+299×granularity. Candles
// without trades are absent (Coinbase sends no empty candles), so a window may return
// fewer rows, or none, without the range being over; every window of the range is
// asked. Only closed candles are returned: the range is cut at the start of the
// candle forming at the injected clock's now, and a row at or after it is dropped.
//
// # Errors
//
// Coinbase's error body is {"message": "..."}: an unknown product is HTTP 404
// "NotFound", a bad parameter 400; both are Permanent. 429 ("Public rate limit
// exceeded") pauses the Source (Retry-After, else one second) and retries; 5xx and
// network errors are retried with backoff (package venuehttp). A row of the wrong
// arity or types, a row off the grid, outside the window, duplicated or out of order,
// or with inconsistent OHLC fails the fetch as a Permanent *venuehttp.ShapeError.
//
// # Rate limits
//
// Coinbase allows 10 public requests per second per IP, bursts of 15. Each Source
// holds a limiter of Options.RequestsPerSecond (default 8, a margin for other
// clients) shared by all its fetches.
package coinbase

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/internal/market"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

// Name is the source part of Coinbase node ids.
const Name = "coinbase"

// DefaultBaseURL is Coinbase Exchange's public REST endpoint.
const DefaultBaseURL = "https://api.exchange.coinbase.com"

// DefaultRequestsPerSecond is Coinbase's public limit of 10 per second, less a margin.
const DefaultRequestsPerSecond = 8

// PageLimit is the most candles one request may ask for.
const PageLimit = 300

// Granularities maps the timeframes Coinbase serves to its granularity in seconds.
var Granularities = map[string]int64{"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400}

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
	// Clock drives the limiter, pauses, backoff and the closed-candle cut-off.
	Clock clock.Clock
	Seed  uint64
}

// Source fetches candles from Coinbase Exchange; safe for concurrent use.
type Source struct {
	client *venuehttp.Client
	clock  clock.Clock
}

// New returns a Source.
func New(o Options) (*Source, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.RequestsPerSecond == 0 {
		o.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if o.RequestsPerSecond < 0 {
		return nil, fmt.Errorf("coinbase: requests per second %d must be positive", o.RequestsPerSecond)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	c, err := venuehttp.New(venuehttp.Options{
		Venue: Name, BaseURL: o.BaseURL, HTTPClient: o.HTTPClient,
		PerMinute: o.RequestsPerSecond * 60, Burst: o.RequestsPerSecond,
		MaxRetries: o.MaxRetries, RetryBackoff: o.RetryBackoff,
		MaxRateLimitRetries: o.MaxRateLimitRetries, MaxRateLimitWait: o.MaxRateLimitWait,
		RequestTimeout: o.RequestTimeout, Clock: o.Clock, Seed: o.Seed,
		DecodeError: decodeError,
	})
	if err != nil {
		return nil, err
	}
	return &Source{client: c, clock: o.Clock}, nil
}

// RateLimited counts the rate-limit answers received (the metrics' counter).
func (s *Source) RateLimited() uint64 { return s.Stats().RateLimited }

// Stats returns the Source's request counters.
func (s *Source) Stats() venuehttp.Stats { return s.client.Stats() }

func decodeError(status int, body []byte, retryAfter time.Duration) error {
	e := &venuehttp.APIError{Venue: Name, Status: status, RetryAfter: retryAfter, Limited: status == http.StatusTooManyRequests}
	var b struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &b) == nil && b.Message != "" {
		e.Msg = b.Message
	} else {
		e.Msg = venuehttp.Shorten(string(body))
	}
	return e
}

// Product is a series resolved to Coinbase's product id and granularity.
type Product struct {
	ID          string
	Granularity int64
}

// Resolve maps an ohlcv:coinbase:{BASE/QUOTE}:{tf} series to its product.
func Resolve(s seamless.Series) (Product, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return Product{}, fmt.Errorf("coinbase: %w", err)
	}
	if node.Kind != "ohlcv" {
		return Product{}, fmt.Errorf("coinbase: node %s: only ohlcv nodes are served, not %q", s.NodeID, node.Kind)
	}
	g, ok := Granularities[node.Timeframe]
	if !ok {
		return Product{}, fmt.Errorf("coinbase: node %s: timeframe %q is not a Coinbase granularity (want one of 1m 5m 15m 1h 6h 1d)", s.NodeID, node.Timeframe)
	}
	if s.Interval != g {
		return Product{}, fmt.Errorf("coinbase: node %s: interval %d s does not match the timeframe %q", s.NodeID, s.Interval, node.Timeframe)
	}
	sym, err := market.Parse(node.Symbol)
	if err != nil {
		return Product{}, fmt.Errorf("coinbase: node %s: %w", s.NodeID, err)
	}
	if !sym.Spot() {
		return Product{}, fmt.Errorf("coinbase: node %s: symbol %q: Coinbase Exchange lists spot products only (BASE/QUOTE such as BTC/USD)", s.NodeID, node.Symbol)
	}
	return Product{ID: sym.Base + "-" + sym.Quote, Granularity: g}, nil
}

// maxEpochSeconds (year 10000) bounds ranges.
const maxEpochSeconds = 253402300800

// Fetch implements seamless.Fetcher: the closed candles of ser with time in r.
func (s *Source) Fetch(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	p, err := Resolve(ser)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	iv := p.Granularity
	// Candles open at or after the one forming now are not closed: never ask for them.
	closedEnd := seamless.ClosedEnd(s.clock.Now().Unix(), iv)
	a := r.Intersect(grid.R(0, min(maxEpochSeconds, closedEnd))).Align(iv)
	f := frame.New(frame.OHLCV, int(min(max(a.Bars(iv), 0), PageLimit)))
	for from := a.Start; from < a.End; from += PageLimit * iv {
		to := min(from+PageLimit*iv, a.End) // exclusive
		rows, err := s.page(ctx, p, from, to)
		if err != nil {
			return nil, fmt.Errorf("coinbase: %s %v: window from %s: %w", ser, r, time.Unix(from, 0).UTC().Format(time.RFC3339), err)
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

// page asks for the candles with time in [from, to) and returns them oldest first.
func (s *Source) page(ctx context.Context, p Product, from, to int64) ([]candle, error) {
	q := url.Values{
		"granularity": {strconv.FormatInt(p.Granularity, 10)},
		"start":       {time.Unix(from, 0).UTC().Format(time.RFC3339)},
		"end":         {time.Unix(to-p.Granularity, 0).UTC().Format(time.RFC3339)},
	}
	body, err := s.client.Get(ctx, "/products/"+url.PathEscape(p.ID)+"/candles?"+q.Encode(), 1, nil)
	if err != nil {
		return nil, err
	}
	return parsePage(body, from, to, p.Granularity)
}

// rowFields names the positions of a candle row, as Coinbase documents them.
var rowFields = [6]string{"time", "low", "high", "open", "close", "volume"}

// ohlcvAt maps frame.OHLCV's order (open, high, low, close, volume) to row positions.
var ohlcvAt = [5]int{3, 2, 1, 4, 5}

// parsePage parses a candles answer for the window [from, to): rows newest first,
// strictly descending, on the grid, inside the window, with consistent OHLC.
func parsePage(body []byte, from, to, iv int64) ([]candle, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, venuehttp.Shape(Name, -1, "", string(body), "not a JSON array of candle rows")
	}
	out := make([]candle, 0, len(rows))
	for i, raw := range rows {
		var fields []json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || len(fields) != len(rowFields) {
			return nil, venuehttp.Shape(Name, i, "", string(raw), fmt.Sprintf("not an array of %d fields", len(rowFields)))
		}
		ts, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return nil, venuehttp.Shape(Name, i, "time", string(fields[0]), "not an integer of epoch seconds")
		}
		var c candle
		c.ts = ts
		for k, at := range ohlcvAt {
			v, why := number(fields[at])
			if why != "" {
				return nil, venuehttp.Shape(Name, i, rowFields[at], string(fields[at]), why)
			}
			c.ohlcv[k] = v
		}
		var reason string
		switch {
		case ts < from || ts >= to:
			reason = fmt.Sprintf("outside the requested window [%d, %d)", from, to)
		case ts%iv != 0:
			reason = fmt.Sprintf("not on the epoch grid of %d s", iv)
		case len(out) > 0 && ts >= out[len(out)-1].ts:
			reason = "not before the previous row's time (rows come newest first)"
		}
		if reason != "" {
			return nil, venuehttp.Shape(Name, i, "time", string(fields[0]), reason)
		}
		if k, why := venuehttp.CheckBar(c.ohlcv); k >= 0 {
			return nil, venuehttp.Shape(Name, i, venuehttp.BarFields[k], string(fields[ohlcvAt[k]]), why)
		}
		out = append(out, c)
	}
	slices.Reverse(out)
	return out, nil
}

// number parses a JSON number (Coinbase sends prices and volume as numbers).
func number(raw json.RawMessage) (float64, string) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, "not a JSON number"
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, "not a finite JSON number"
	}
	return v, ""
}
