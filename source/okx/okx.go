// Package okx is a seamless.Fetcher for OKX candles: node ids
// ohlcv:okx:{symbol}:{tf}, read from the public REST endpoints
// GET /api/v5/market/candles (the newest 1,440 bars, 300 a request) and
// GET /api/v5/market/history-candles (all history, 100 a request).
//
// # Mapping
//
// Symbols are ccxt's unified form: BASE/QUOTE is the spot instrument BASE-QUOTE
// (BTC/USDT → BTC-USDT), BASE/QUOTE:QUOTE the linear perpetual BASE-QUOTE-SWAP
// (BTC/USDT:USDT → BTC-USDT-SWAP) and BASE/QUOTE:BASE the inverse one (BTC/USD:BTC →
// BTC-USD-SWAP). Timeframes are the OKX bars that open on the epoch grid: 1m 3m 5m 15m
// 30m 1h 2h 4h (bars 1m…4H) and 6h 12h 1d (bars 6Hutc 12Hutc 1Dutc: OKX's plain 6H,
// 12H and 1D open at Hong Kong midnight, off the grid). Weeks and months are not
// served. Volume is in the base asset: vol for spot, volCcy for swaps (whose vol
// counts contracts).
//
// # Wire format and pagination
//
// OKX answers {"code":"0","msg":"","data":[[ts,o,h,l,c,vol,volCcy,volCcyQuote,
// confirm],…]}: ts in epoch milliseconds and every value a decimal string, newest
// first; confirm is "1" for a closed bar and "0" for the bar still forming. after and
// before bound ts exclusively (ts < after, ts > before), so a half-open range [start,
// end) is asked for in windows of limit bars as before=start−1, after=end. A window
// newer than 1,439 bars before now is asked of /candles (300 bars), an older one of
// /history-candles (100), as ccxt does. Bars OKX lacks are absent, and every window of
// the range is asked. Only closed bars are returned: the range is cut at the bar
// forming at the injected clock's now, and a row with confirm "0" is dropped.
//
// # Errors
//
// A code other than "0" — in a 200 body or an HTTP 4xx — is OKX's error: 51001
// ("Instrument ID does not exist") and other 4xx are Permanent; 50011 ("Too Many
// Requests", HTTP 429) pauses the Source and retries; 50001, 50004 and 50013 (service
// unavailable, timeout, busy) and 5xx are retried with backoff (package venuehttp).
// A row that breaks the documented shape — arity, a value that is not a decimal
// string, a ts off the grid, outside the window, duplicated or out of order, OHLC
// inconsistent — fails the fetch as a Permanent *venuehttp.ShapeError.
//
// # Rate limits
//
// OKX allows 40 requests per 2 s per IP to /candles and 20 per 2 s to
// /history-candles. Each route has its own limiter (Options.CandlesPerSecond, default
// 15, and Options.HistoryPerSecond, default 8), shared by all fetches of the Source.
package okx

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

// Name is the source part of OKX node ids.
const Name = "okx"

// DefaultBaseURL is OKX's public REST endpoint.
const DefaultBaseURL = "https://www.okx.com"

// Page sizes and the reach of /candles.
const (
	CandlesLimit = 300
	HistoryLimit = 100
	// RecentBars is how far back /candles reaches, in bars before now.
	RecentBars = 1440
)

// Bars maps the timeframes OKX serves to its bar parameter.
var Bars = map[string]string{
	"1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m",
	"1h": "1H", "2h": "2H", "4h": "4H", "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc",
}

// Options configure a Source; the zero value talks to DefaultBaseURL.
type Options struct {
	BaseURL    string
	HTTPClient *http.Client
	// CandlesPerSecond and HistoryPerSecond are the request budgets of the two routes.
	CandlesPerSecond, HistoryPerSecond int
	// MaxRetries, RetryBackoff, MaxRateLimitRetries, MaxRateLimitWait and
	// RequestTimeout are venuehttp.Options' (0: its defaults).
	MaxRetries          int
	RetryBackoff        time.Duration
	MaxRateLimitRetries int
	MaxRateLimitWait    time.Duration
	RequestTimeout      time.Duration
	// Clock drives the limiters, pauses, backoff and the closed-bar cut-off.
	Clock clock.Clock
	Seed  uint64
}

// Source fetches candles from OKX; safe for concurrent use.
type Source struct {
	candles, history *venuehttp.Client
	clock            clock.Clock
}

// New returns a Source.
func New(o Options) (*Source, error) {
	if o.BaseURL == "" {
		o.BaseURL = DefaultBaseURL
	}
	if o.CandlesPerSecond == 0 {
		o.CandlesPerSecond = 15
	}
	if o.HistoryPerSecond == 0 {
		o.HistoryPerSecond = 8
	}
	if o.CandlesPerSecond < 0 || o.HistoryPerSecond < 0 {
		return nil, fmt.Errorf("okx: negative request budget")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	client := func(perSecond int) (*venuehttp.Client, error) {
		return venuehttp.New(venuehttp.Options{
			Venue: Name, BaseURL: o.BaseURL, HTTPClient: o.HTTPClient,
			PerMinute: perSecond * 60, Burst: perSecond,
			MaxRetries: o.MaxRetries, RetryBackoff: o.RetryBackoff,
			MaxRateLimitRetries: o.MaxRateLimitRetries, MaxRateLimitWait: o.MaxRateLimitWait,
			RequestTimeout: o.RequestTimeout, Clock: o.Clock, Seed: o.Seed,
			DecodeError: decodeError,
		})
	}
	candles, err := client(o.CandlesPerSecond)
	if err != nil {
		return nil, err
	}
	history, err := client(o.HistoryPerSecond)
	if err != nil {
		return nil, err
	}
	return &Source{candles: candles, history: history, clock: o.Clock}, nil
}

// RateLimited counts the rate-limit answers received (the metrics' counter).
func (s *Source) RateLimited() uint64 {
	return s.candles.Stats().RateLimited + s.history.Stats().RateLimited
}

// Stats returns the request counters of the two routes, added.
func (s *Source) Stats() venuehttp.Stats {
	a, b := s.candles.Stats(), s.history.Stats()
	return venuehttp.Stats{Requests: a.Requests + b.Requests, RateLimited: a.RateLimited + b.RateLimited,
		Retries: a.Retries + b.Retries, Throttled: a.Throttled + b.Throttled}
}

// envelope is every OKX answer.
type envelope struct {
	Code string            `json:"code"`
	Msg  string            `json:"msg"`
	Data []json.RawMessage `json:"data"`
}

func decodeError(status int, body []byte, retryAfter time.Duration) error {
	e := &venuehttp.APIError{Venue: Name, Status: status, RetryAfter: retryAfter, Limited: status == http.StatusTooManyRequests}
	var env envelope
	if json.Unmarshal(body, &env) == nil && env.Code != "" {
		e.Code, e.Msg = env.Code, env.Msg
	} else {
		e.Msg = venuehttp.Shorten(string(body))
	}
	return e
}

// checkCode classifies an error OKX reports in a 200 body.
func checkCode(body []byte) error {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return venuehttp.Shape(Name, -1, "", string(body), "not an OKX answer object")
	}
	if env.Code == "0" {
		return nil
	}
	e := &venuehttp.APIError{Venue: Name, Status: http.StatusOK, Code: env.Code, Msg: env.Msg}
	switch env.Code {
	case "50011", "50061":
		e.Limited = true
		return &venuehttp.Throttled{Err: e}
	case "50001", "50004", "50013", "50026":
		return e // transient: retried
	}
	return seamless.Permanent(e)
}

// Instrument is a series resolved to OKX's instrument id and bar.
type Instrument struct {
	ID, Bar string
	Seconds int64
	// Swap is set for perpetuals, whose base-asset volume is volCcy.
	Swap bool
}

// Resolve maps an ohlcv:okx:{symbol}:{tf} series to its instrument.
func Resolve(s seamless.Series) (Instrument, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return Instrument{}, fmt.Errorf("okx: %w", err)
	}
	if node.Kind != "ohlcv" {
		return Instrument{}, fmt.Errorf("okx: node %s: only ohlcv nodes are served, not %q", s.NodeID, node.Kind)
	}
	bar, ok := Bars[node.Timeframe]
	if !ok {
		return Instrument{}, fmt.Errorf("okx: node %s: timeframe %q is not an OKX bar on the epoch grid (want one of 1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d)", s.NodeID, node.Timeframe)
	}
	if iv, _ := seamless.ParseTimeframe(node.Timeframe); s.Interval != iv {
		return Instrument{}, fmt.Errorf("okx: node %s: interval %d s does not match the timeframe %q", s.NodeID, s.Interval, node.Timeframe)
	}
	sym, err := market.Parse(node.Symbol)
	if err != nil {
		return Instrument{}, fmt.Errorf("okx: node %s: %w", s.NodeID, err)
	}
	in := Instrument{ID: sym.Base + "-" + sym.Quote, Bar: bar, Seconds: s.Interval}
	switch sym.Settle {
	case "":
	case sym.Quote, sym.Base:
		in.ID += "-SWAP"
		in.Swap = true
	default:
		return Instrument{}, fmt.Errorf("okx: node %s: symbol %q: OKX perpetuals settle in the quote (BTC/USDT:USDT) or the base asset (BTC/USD:BTC)", s.NodeID, node.Symbol)
	}
	return in, nil
}

// maxEpochSeconds (year 10000) bounds ranges so that milliseconds cannot overflow.
const maxEpochSeconds = 253402300800

// Fetch implements seamless.Fetcher: the closed bars of ser with ts in r.
func (s *Source) Fetch(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	in, err := Resolve(ser)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	iv := in.Seconds
	now := s.clock.Now().Unix()
	closedEnd := seamless.ClosedEnd(now, iv)
	a := r.Intersect(grid.R(0, min(maxEpochSeconds, closedEnd))).Align(iv)
	f := frame.New(frame.OHLCV, int(min(max(a.Bars(iv), 0), CandlesLimit)))
	recent := closedEnd - (RecentBars-1)*iv
	for from := a.Start; from < a.End; {
		client, path, limit := s.history, "/api/v5/market/history-candles", int64(HistoryLimit)
		if from >= recent {
			client, path, limit = s.candles, "/api/v5/market/candles", CandlesLimit
		}
		to := min(from+limit*iv, a.End)
		rows, err := s.page(ctx, client, path, in, from, to, limit)
		if err != nil {
			return nil, fmt.Errorf("okx: %s %v: window from %s: %w", ser, r, time.Unix(from, 0).UTC().Format(time.RFC3339), err)
		}
		for _, row := range rows {
			f.TS = append(f.TS, row.ts)
			for i, v := range row.ohlcv {
				f.Cols[i].F64 = append(f.Cols[i].F64, v)
			}
		}
		from = to
	}
	return f, nil
}

type candle struct {
	ts    int64
	ohlcv [5]float64
}

func (s *Source) page(ctx context.Context, c *venuehttp.Client, path string, in Instrument, from, to, limit int64) ([]candle, error) {
	q := url.Values{
		"instId": {in.ID},
		"bar":    {in.Bar},
		"before": {strconv.FormatInt(from*1000-1, 10)},
		"after":  {strconv.FormatInt(to*1000, 10)},
		"limit":  {strconv.FormatInt(limit, 10)},
	}
	body, err := c.Get(ctx, path+"?"+q.Encode(), 1, checkCode)
	if err != nil {
		return nil, err
	}
	return parsePage(body, in, from, to)
}

// rowFields names the positions of a candle row, as OKX documents them.
var rowFields = [9]string{"ts", "o", "h", "l", "c", "vol", "volCcy", "volCcyQuote", "confirm"}

// parsePage parses a candles answer for the window [from, to) (seconds): rows newest
// first, strictly descending, on the grid, inside the window. Forming bars (confirm
// "0") are dropped. It returns the closed bars oldest first.
func parsePage(body []byte, in Instrument, from, to int64) ([]candle, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Data == nil {
		return nil, venuehttp.Shape(Name, -1, "data", string(body), "no data array of candle rows")
	}
	volAt := 5
	if in.Swap {
		volAt = 6
	}
	at := [5]int{1, 2, 3, 4, volAt}
	ivMs := in.Seconds * 1000
	out := make([]candle, 0, len(env.Data))
	prev := int64(-1)
	for i, raw := range env.Data {
		var fields []json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || len(fields) < len(rowFields) {
			return nil, venuehttp.Shape(Name, i, "", string(raw), fmt.Sprintf("not an array of %d fields", len(rowFields)))
		}
		var text [9]string
		for k := range rowFields {
			if json.Unmarshal(fields[k], &text[k]) != nil {
				return nil, venuehttp.Shape(Name, i, rowFields[k], string(fields[k]), "not a JSON string")
			}
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
			reason = "not before the previous row's ts (rows come newest first)"
		}
		if reason != "" {
			return nil, venuehttp.Shape(Name, i, "ts", text[0], reason)
		}
		prev = ms
		if text[8] != "0" && text[8] != "1" {
			return nil, venuehttp.Shape(Name, i, "confirm", text[8], `not "0" or "1"`)
		}
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
		if text[8] == "1" {
			out = append(out, c)
		}
	}
	slices.Reverse(out)
	return out, nil
}
