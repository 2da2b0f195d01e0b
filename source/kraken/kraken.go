// Package kraken is a seamless.Fetcher for Kraken spot OHLC: node ids
// ohlcv:kraken:{BASE/QUOTE}:{tf}, read from the public REST endpoint
// GET /0/public/OHLC.
//
// # Mapping
//
// The symbol BASE/QUOTE becomes Kraken's pair BASEQUOTE in Kraken's asset names: BTC
// is XBT and DOGE is XDG (BTC/USD → XBTUSD, ETH/BTC → ETHXBT). Kraken answers under
// its own name for the pair (XXBTZUSD), which the Source accepts whatever it is.
// Timeframes are the Kraken intervals that open on the epoch grid: 1m 5m 15m 30m 1h
// 4h 1d (interval 1 5 15 30 60 240 1440 minutes); Kraken's week opens on Monday and its
// 15-day bar off the grid, so neither is served.
//
// # Wire format and the 720-bar window
//
// Kraken answers {"error":[],"result":{"XXBTZUSD":[[time,open,high,low,close,vwap,
// volume,count],…],"last":…}}: time in epoch seconds, values decimal strings, count
// an integer, oldest first, the last row the bar still forming. Kraken serves only
// its newest 720 bars, whatever since asks: older history is not on this endpoint at
// any page. One request (since = start−1) therefore answers any range inside the
// window, and a range reaching before the window is refused with a Permanent
// *WindowError before anything is sent — an empty answer would be recorded by the
// provider as a market gap. The Source is a seamless.HistoryLimiter, so the
// provider's backfill asks only for the window and leaves older bars a gap. The window is reckoned from the injected clock with one
// bar of margin. Only closed bars are returned: the range is cut at the bar forming at
// now, and later rows are dropped.
//
// # Errors
//
// Kraken reports errors in the error array of a 200 answer: EQuery:Unknown asset pair
// and EGeneral:Invalid arguments are Permanent; EAPI:Rate limit exceeded pauses the
// Source (a second) and retries; EService:Unavailable, EService:Busy and
// EGeneral:Internal error are retried with backoff, as are HTTP 5xx (package
// venuehttp). Malformed rows are Permanent *venuehttp.ShapeError.
//
// # Rate limits
//
// Kraken's public endpoints allow about one request per second per IP; each Source
// holds a limiter of Options.RequestsPerSecond (default 1) shared by all its fetches.
package kraken

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/internal/market"
	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

// Name is the source part of Kraken node ids.
const Name = "kraken"

// DefaultBaseURL is Kraken's public REST endpoint.
const DefaultBaseURL = "https://api.kraken.com"

// Window is how many bars, the forming one included, Kraken's OHLC endpoint serves.
const Window = 720

// Intervals maps the timeframes Kraken serves to its interval in minutes.
var Intervals = map[string]int64{"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}

// assets are the assets Kraken names differently from ccxt's unified codes.
var assets = map[string]string{"BTC": "XBT", "DOGE": "XDG"}

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
	// Clock drives the limiter, pauses, backoff, the window and the closed-bar cut-off.
	Clock clock.Clock
	Seed  uint64
}

// Source fetches OHLC from Kraken; safe for concurrent use.
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
		o.RequestsPerSecond = 1
	}
	if o.RequestsPerSecond < 0 {
		return nil, fmt.Errorf("kraken: requests per second %d must be positive", o.RequestsPerSecond)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	c, err := venuehttp.New(venuehttp.Options{
		Venue: Name, BaseURL: o.BaseURL, HTTPClient: o.HTTPClient,
		PerMinute: o.RequestsPerSecond * 60, Burst: max(o.RequestsPerSecond, 2),
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
func (s *Source) RateLimited() uint64 { return s.client.Stats().RateLimited }

// Stats returns the Source's request counters.
func (s *Source) Stats() venuehttp.Stats { return s.client.Stats() }

type envelope struct {
	Error  []string                   `json:"error"`
	Result map[string]json.RawMessage `json:"result"`
}

func decodeError(status int, body []byte, retryAfter time.Duration) error {
	e := &venuehttp.APIError{Venue: Name, Status: status, RetryAfter: retryAfter, Limited: status == http.StatusTooManyRequests}
	var env envelope
	if json.Unmarshal(body, &env) == nil && len(env.Error) > 0 {
		e.Msg = strings.Join(env.Error, "; ")
	} else {
		e.Msg = venuehttp.Shorten(string(body))
	}
	return e
}

// checkErrors classifies the error array of a 200 answer.
func checkErrors(body []byte) error {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		return venuehttp.Shape(Name, -1, "error", string(body), "not a Kraken answer with an error array")
	}
	if len(env.Error) == 0 {
		return nil
	}
	e := &venuehttp.APIError{Venue: Name, Status: http.StatusOK, Code: env.Error[0], Msg: strings.Join(env.Error, "; ")}
	switch {
	case strings.HasPrefix(env.Error[0], "EAPI:Rate limit"):
		e.Limited = true
		return &venuehttp.Throttled{Err: e}
	case strings.HasPrefix(env.Error[0], "EService:"), env.Error[0] == "EGeneral:Internal error":
		return e // transient: retried
	}
	return seamless.Permanent(e)
}

// Pair is a series resolved to Kraken's pair and interval.
type Pair struct {
	Name    string
	Minutes int64
}

// Resolve maps an ohlcv:kraken:{BASE/QUOTE}:{tf} series to its pair.
func Resolve(s seamless.Series) (Pair, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return Pair{}, fmt.Errorf("kraken: %w", err)
	}
	if node.Kind != "ohlcv" {
		return Pair{}, fmt.Errorf("kraken: node %s: only ohlcv nodes are served, not %q", s.NodeID, node.Kind)
	}
	m, ok := Intervals[node.Timeframe]
	if !ok {
		return Pair{}, fmt.Errorf("kraken: node %s: timeframe %q is not a Kraken interval on the epoch grid (want one of 1m 5m 15m 30m 1h 4h 1d)", s.NodeID, node.Timeframe)
	}
	if s.Interval != m*60 {
		return Pair{}, fmt.Errorf("kraken: node %s: interval %d s does not match the timeframe %q", s.NodeID, s.Interval, node.Timeframe)
	}
	sym, err := market.Parse(node.Symbol)
	if err != nil {
		return Pair{}, fmt.Errorf("kraken: node %s: %w", s.NodeID, err)
	}
	if !sym.Spot() {
		return Pair{}, fmt.Errorf("kraken: node %s: symbol %q: Kraken's OHLC endpoint serves spot pairs only (BASE/QUOTE such as BTC/USD)", s.NodeID, node.Symbol)
	}
	return Pair{Name: krakenAsset(sym.Base) + krakenAsset(sym.Quote), Minutes: m}, nil
}

func krakenAsset(a string) string {
	if k, ok := assets[a]; ok {
		return k
	}
	return a
}

// WindowError reports a range reaching before the bars Kraken serves.
type WindowError struct {
	Series seamless.Series
	Range  grid.Range
	// Oldest is the oldest bar (epoch seconds) the Source asks Kraken for.
	Oldest int64
}

func (e *WindowError) Error() string {
	return fmt.Sprintf("kraken: %s %v: Kraken's OHLC endpoint serves only its newest %d bars, from %s now; older %s bars are not available from it (use a coarser timeframe or another venue)",
		e.Series, e.Range, Window, time.Unix(e.Oldest, 0).UTC().Format(time.RFC3339), e.Series.NodeID[strings.LastIndexByte(e.Series.NodeID, ':')+1:])
}

// Oldest implements seamless.HistoryLimiter: the oldest bar the Source asks Kraken
// for at now (0 for a series it does not serve, which Fetch refuses).
func (s *Source) Oldest(ser seamless.Series, now time.Time) int64 {
	p, err := Resolve(ser)
	if err != nil {
		return 0
	}
	return oldest(now, p.Minutes*60)
}

// oldest is the window's oldest bar at now: the forming bar is the window's newest,
// and one bar of margin allows for clock skew.
func oldest(now time.Time, iv int64) int64 {
	return seamless.ClosedEnd(now.Unix(), iv) - (Window-2)*iv
}

// Fetch implements seamless.Fetcher: the closed bars of ser with time in r.
func (s *Source) Fetch(ctx context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	p, err := Resolve(ser)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	iv := p.Minutes * 60
	closedEnd := seamless.ClosedEnd(s.clock.Now().Unix(), iv)
	a := r.Intersect(grid.R(0, closedEnd)).Align(iv)
	f := frame.New(frame.OHLCV, int(min(max(a.Bars(iv), 0), Window)))
	if a.Empty() {
		return f, nil
	}
	if first := oldest(s.clock.Now(), iv); a.Start < first {
		return nil, seamless.Permanent(&WindowError{Series: ser, Range: r, Oldest: first})
	}
	since := a.Start - 1
	q := url.Values{"pair": {p.Name}, "interval": {strconv.FormatInt(p.Minutes, 10)}, "since": {strconv.FormatInt(since, 10)}}
	body, err := s.client.Get(ctx, "/0/public/OHLC?"+q.Encode(), 1, checkErrors)
	if err != nil {
		return nil, fmt.Errorf("kraken: %s %v: %w", ser, r, err)
	}
	if err := parseInto(f, body, since, iv, a); err != nil {
		return nil, fmt.Errorf("kraken: %s %v: %w", ser, r, err)
	}
	return f, nil
}

// rowFields names the positions of an OHLC row, as Kraken documents them.
var rowFields = [8]string{"time", "open", "high", "low", "close", "vwap", "volume", "count"}

// ohlcvAt maps frame.OHLCV's order to row positions.
var ohlcvAt = [5]int{1, 2, 3, 4, 6}

// parseInto parses an OHLC answer asked with since and appends its bars inside a to
// f. Rows must be ascending, after since and on the grid.
func parseInto(f *frame.Frame, body []byte, since, iv int64, a grid.Range) error {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return venuehttp.Shape(Name, -1, "result", string(body), "not a Kraken answer")
	}
	var rowsRaw json.RawMessage
	for k, v := range env.Result {
		if k == "last" {
			continue
		}
		if rowsRaw != nil {
			return venuehttp.Shape(Name, -1, "result", k, "more than one pair in the answer")
		}
		rowsRaw = v
	}
	var rows []json.RawMessage
	if rowsRaw == nil || json.Unmarshal(rowsRaw, &rows) != nil {
		return venuehttp.Shape(Name, -1, "result", venuehttp.Shorten(string(body)), "no array of OHLC rows")
	}
	prev := since
	for i, raw := range rows {
		var fields []json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || len(fields) < len(rowFields) {
			return venuehttp.Shape(Name, i, "", string(raw), fmt.Sprintf("not an array of %d fields", len(rowFields)))
		}
		ts, err := strconv.ParseInt(string(fields[0]), 10, 64)
		var reason string
		switch {
		case err != nil:
			reason = "not an integer of epoch seconds"
		case ts <= prev && i == 0:
			reason = fmt.Sprintf("not after since %d", since)
		case ts <= prev:
			reason = "not after the previous row's time"
		case ts%iv != 0:
			reason = fmt.Sprintf("not on the epoch grid of %d s", iv)
		}
		if reason != "" {
			return venuehttp.Shape(Name, i, "time", string(fields[0]), reason)
		}
		prev = ts
		var bar [5]float64
		for k, at := range ohlcvAt {
			var text string
			if json.Unmarshal(fields[at], &text) != nil {
				return venuehttp.Shape(Name, i, rowFields[at], string(fields[at]), "not a JSON string")
			}
			v, why := venuehttp.ParseDecimal(text)
			if why != "" {
				return venuehttp.Shape(Name, i, rowFields[at], text, why)
			}
			bar[k] = v
		}
		if k, why := venuehttp.CheckBar(bar); k >= 0 {
			return venuehttp.Shape(Name, i, venuehttp.BarFields[k], string(fields[ohlcvAt[k]]), why)
		}
		if !a.Contains(ts) {
			continue // the newer rows of the window, and the bar forming
		}
		f.TS = append(f.TS, ts)
		for k, v := range bar {
			f.Cols[k].F64 = append(f.Cols[k].F64, v)
		}
	}
	return nil
}
