package binance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
)

// fakeBinance serves GET /api/v3/klines the way Binance does — inclusive startTime and
// endTime in ms, limit 1..1000 (default 500), ascending rows of the real 12-field wire
// format, Binance's error bodies for bad parameters, X-MBX-USED-WEIGHT-1M — over a
// deterministic kline set, plus switchable faults. Its "now" is the test's clock, and
// the kline containing now is served as forming, like the real API.
type fakeBinance struct {
	srv *httptest.Server
	clk clock.Clock

	mu sync.Mutex
	// listing is the open time (s) of the first kline of every symbol.
	listing int64
	// gaps are maintenance windows (s): no klines open inside them.
	gaps []grid.Range
	// Faults, consumed in this order: hang blocks until the client gives up; failAll
	// answers every request 500; fail503 answers the next n requests 503; limits
	// answers the next requests with their status and Retry-After.
	hang    bool
	failAll bool
	fail503 int
	limits  []limitFault
	// corrupt, when set, rewrites the row opening at corruptAt (ms).
	corruptAt int64
	corrupt   func(row []any) []any
	// usedWeight is the weight charged per minute (ms/60000) on this IP, including
	// other clients'.
	usedWeight map[int64]int
	// requests records the query of every request received.
	requests []url.Values
}

type limitFault struct {
	status     int
	retryAfter string // "" sends no header
}

func newFakeBinance(t *testing.T, clk clock.Clock, listing int64) *fakeBinance {
	fb := &fakeBinance{clk: clk, listing: listing, usedWeight: map[int64]int{}}
	fb.srv = httptest.NewServer(fb)
	t.Cleanup(fb.srv.Close)
	return fb
}

// source returns a Source on this server with test-friendly options.
func (fb *fakeBinance) source(t *testing.T, opts Options) *Source {
	t.Helper()
	opts.BaseURL = fb.srv.URL
	opts.HTTPClient = fb.srv.Client()
	if opts.Clock == nil {
		opts.Clock = fb.clk
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (fb *fakeBinance) set(f func(fb *fakeBinance)) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	f(fb)
}

func (fb *fakeBinance) log() []url.Values {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return append([]url.Values(nil), fb.requests...)
}

var fakeSymbols = map[string]bool{"BTCUSDT": true, "ETHUSDT": true}

var fakeIntervals = map[string]int64{
	"1s": 1, "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
	"4h": 14400, "6h": 21600, "8h": 28800, "12h": 43200, "1d": 86400, "3d": 259200, "1w": 604800,
}

// fakeBar is the kline opening at ts (s): prices in cents, volume in thousandths, so
// that the wire decimals and the expected floats are exact.
func fakeBar(ts, iv int64) (open, high, low, close, volume int64) {
	n := ts / iv
	open = 3_000_000 + n%5000
	close = open + n%7 - 3
	return open, max(open, close) + 5, min(open, close) - 5, close, n%1000 + 1
}

// wantBar is fakeBar as the Source should decode it: open, high, low, close, volume.
func wantBar(ts, iv int64) [5]float64 {
	o, h, l, c, v := fakeBar(ts, iv)
	return [5]float64{float64(o) / 100, float64(h) / 100, float64(l) / 100, float64(c) / 100, float64(v) / 1000}
}

func cents(c int64) string       { return fmt.Sprintf("%d.%02d000000", c/100, c%100) }
func thousandths(v int64) string { return fmt.Sprintf("%d.%03d00000", v/1000, v%1000) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func binanceError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "msg": msg})
}

func (fb *fakeBinance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v3/klines" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	fb.mu.Lock()
	q := r.URL.Query()
	fb.requests = append(fb.requests, q)
	if fb.hang {
		fb.mu.Unlock()
		<-r.Context().Done()
		return
	}
	defer fb.mu.Unlock()
	now := fb.clk.Now()
	minute := now.UnixMilli() / 60000
	fb.usedWeight[minute] += 2
	w.Header().Set("X-MBX-USED-WEIGHT-1M", strconv.Itoa(fb.usedWeight[minute]))
	switch {
	case fb.failAll:
		binanceError(w, http.StatusInternalServerError, -1000, "An unknown error occurred while processing the request.")
		return
	case fb.fail503 > 0:
		fb.fail503--
		binanceError(w, http.StatusServiceUnavailable, -1001, "Internal error; unable to process your request. Please try again.")
		return
	case len(fb.limits) > 0:
		f := fb.limits[0]
		fb.limits = fb.limits[1:]
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		binanceError(w, f.status, -1003, "Too much request weight used; current limit is 6000 request weight per 1 MINUTE.")
		return
	}

	symbol := q.Get("symbol")
	if symbol == "" {
		binanceError(w, 400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
		return
	}
	if !fakeSymbols[symbol] {
		binanceError(w, 400, -1121, "Invalid symbol.")
		return
	}
	iv, ok := fakeIntervals[q.Get("interval")]
	if !ok {
		binanceError(w, 400, -1120, "Invalid interval.")
		return
	}
	param := func(name string, def int64) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			binanceError(w, 400, -1100, fmt.Sprintf("Illegal characters found in parameter '%s'; legal range is '^[0-9]{1,20}$'.", name))
			return 0, false
		}
		return n, true
	}
	limit, ok := param("limit", 500)
	if !ok {
		return
	}
	if limit < 1 || limit > 1000 {
		binanceError(w, 400, -1130, "Data sent for parameter 'limit' is not valid.")
		return
	}
	ivMs := iv * 1000
	nowMs := now.UnixMilli()
	endMs, ok := param("endTime", nowMs)
	if !ok {
		return
	}
	// Without startTime Binance serves the newest klines up to endTime.
	startMs, ok := param("startTime", max(fb.listing*1000, (endMs/ivMs-limit+1)*ivMs))
	if !ok {
		return
	}
	if q.Has("startTime") && q.Has("endTime") && startMs > endMs {
		binanceError(w, 400, -1023, "Start time is greater than end time.")
		return
	}
	rows := [][]any{}
	first := max(grid.CeilAlign(startMs, ivMs), fb.listing*1000)
	for openMs := first; openMs <= endMs && openMs <= nowMs && int64(len(rows)) < limit; openMs += ivMs {
		if fb.inGap(openMs / 1000) {
			continue
		}
		o, h, l, c, v := fakeBar(openMs/1000, iv)
		row := []any{openMs, cents(o), cents(h), cents(l), cents(c), thousandths(v), openMs + ivMs - 1,
			"1234.56780000", 42, thousandths(v / 2), "617.28390000", "0"}
		if fb.corrupt != nil && openMs == fb.corruptAt {
			row = fb.corrupt(row)
		}
		rows = append(rows, row)
	}
	writeJSON(w, http.StatusOK, rows)
}

func (fb *fakeBinance) inGap(ts int64) bool {
	for _, g := range fb.gaps {
		if g.Contains(ts) {
			return true
		}
	}
	return false
}
