package binance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the start of a minute; tests run at now = t0+30s, so the kline opening at t0
// is forming and everything before it is closed.
var (
	t0      = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	listing = t0 - 30*86400
)

const btc1m = "ohlcv:binance:BTC/USDT:1m"

var btc = seamless.Series{NodeID: btc1m, Interval: 60}

func newTest(t *testing.T) (*fakeBinance, *clock.Fake) {
	clk := clock.NewFake(time.Unix(t0+30, 0))
	return newFakeBinance(t, clk, listing), clk
}

// checkBars asserts that f holds exactly the fake bars opening at want, in order.
func checkBars(t *testing.T, f *frame.Frame, iv int64, want []int64) {
	t.Helper()
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	if !f.Schema().Equal(frame.OHLCV) {
		t.Fatalf("schema %v, want OHLCV", f.Schema().Names())
	}
	if f.Len() != len(want) {
		t.Fatalf("%d bars, want %d", f.Len(), len(want))
	}
	for i, ts := range want {
		if f.TS[i] != ts {
			t.Fatalf("bar %d: ts %d, want %d", i, f.TS[i], ts)
		}
		wb := wantBar(ts, iv)
		for k := range f.Cols {
			if got := f.Cols[k].F64[i]; got != wb[k] {
				t.Fatalf("bar %d (ts %d) %s = %v, want %v", i, ts, f.Cols[k].Name, got, wb[k])
			}
		}
	}
}

// gridTS returns the open times start, start+iv, … before end, minus those in gaps.
func gridTS(start, end, iv int64, gaps ...grid.Range) []int64 {
	var out []int64
next:
	for ts := start; ts < end; ts += iv {
		for _, g := range gaps {
			if g.Contains(ts) {
				continue next
			}
		}
		out = append(out, ts)
	}
	return out
}

func TestFetchPaginates(t *testing.T) {
	fb, clk := newTest(t)
	src := fb.source(t, Options{})
	start, end := t0-2500*60, t0
	// Unaligned bounds mean the grid points inside them.
	f, err := src.Fetch(context.Background(), btc, grid.R(start-59, end-1))
	if err != nil {
		t.Fatal(err)
	}
	checkBars(t, f, 60, gridTS(start, end, 60))

	reqs := fb.log()
	wantStarts := []int64{start, start + 1000*60, start + 2000*60}
	wantLimits := []string{"1000", "1000", "500"}
	if len(reqs) != len(wantStarts) {
		t.Fatalf("%d page requests, want %d: %v", len(reqs), len(wantStarts), reqs)
	}
	for i, q := range reqs {
		if q.Get("symbol") != "BTCUSDT" || q.Get("interval") != "1m" ||
			q.Get("startTime") != strconv.FormatInt(wantStarts[i]*1000, 10) ||
			q.Get("endTime") != strconv.FormatInt(end*1000-1, 10) || q.Get("limit") != wantLimits[i] {
			t.Fatalf("page %d: query %v", i, q)
		}
	}
	if st := src.Stats(); st != (Stats{Requests: 3}) {
		t.Fatalf("stats %+v", st)
	}
	if s := clk.Sleeps(); len(s) != 0 {
		t.Fatalf("slept %v within the weight budget", s)
	}
}

func TestFormingKlineExcluded(t *testing.T) {
	fb, _ := newTest(t)
	src := fb.source(t, Options{})
	// The range reaches past now (t0+30s): the kline opening at t0 is still forming.
	f, err := src.Fetch(context.Background(), btc, grid.R(t0-600, t0+600))
	if err != nil {
		t.Fatal(err)
	}
	checkBars(t, f, 60, gridTS(t0-600, t0, 60))
	if n := len(fb.log()); n != 1 {
		t.Fatalf("%d requests, want 1 (stop at the forming kline)", n)
	}
}

func TestMaintenanceGapIsAbsentNotAnError(t *testing.T) {
	fb, _ := newTest(t)
	start, end := t0-2*86400, t0-2*86400+1500*60
	gaps := []grid.Range{grid.R(start+100*60, start+200*60), grid.R(end-50*60, end+3600)}
	fb.set(func(fb *fakeBinance) { fb.gaps = gaps })
	src := fb.source(t, Options{})
	f, err := src.Fetch(context.Background(), btc, grid.R(start, end))
	if err != nil {
		t.Fatal(err)
	}
	checkBars(t, f, 60, gridTS(start, end, 60, gaps...))
	// Page 1: 1000 klines skipping the first gap; page 2: up to the second gap; page 3:
	// empty, which ends the fetch.
	reqs := fb.log()
	if len(reqs) != 3 || reqs[1].Get("startTime") != strconv.FormatInt((start+1100*60)*1000, 10) {
		t.Fatalf("requests %v", reqs)
	}
}

func TestRateLimitedHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     limitFault
		wantSleep time.Duration
	}{
		{"429", limitFault{http.StatusTooManyRequests, "7"}, 7 * time.Second},
		{"418", limitFault{http.StatusTeapot, "120"}, 120 * time.Second},
		// No header: wait for the weight window to roll over (now is t0+30s).
		{"429 without Retry-After", limitFault{http.StatusTooManyRequests, ""}, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb, clk := newTest(t)
			fb.set(func(fb *fakeBinance) { fb.limits = []limitFault{tc.fault} })
			src := fb.source(t, Options{})
			f, err := src.Fetch(context.Background(), btc, grid.R(t0-3600, t0))
			if err != nil {
				t.Fatal(err)
			}
			checkBars(t, f, 60, gridTS(t0-3600, t0, 60))
			if s := clk.Sleeps(); len(s) != 1 || s[0] != tc.wantSleep {
				t.Fatalf("sleeps %v, want [%v]", s, tc.wantSleep)
			}
			if st := src.Stats(); st != (Stats{Requests: 2, RateLimited: 1, Retries: 1}) {
				t.Fatalf("stats %+v", st)
			}
			reqs := fb.log()
			if reqs[0].Encode() != reqs[1].Encode() {
				t.Fatalf("retry asked for another page: %v then %v", reqs[0], reqs[1])
			}
		})
	}
}

func TestLongBanIsNotSleptThrough(t *testing.T) {
	fb, clk := newTest(t)
	fb.set(func(fb *fakeBinance) { fb.limits = []limitFault{{http.StatusTeapot, "259200"}} })
	src := fb.source(t, Options{})
	for i := range 2 {
		_, err := src.Fetch(context.Background(), btc, grid.R(t0-3600, t0))
		if !errors.Is(err, ErrRateLimited) || seamless.IsPermanent(err) {
			t.Fatalf("fetch %d: %v, want a retryable ErrRateLimited", i, err)
		}
	}
	// The second fetch did not hit the banned IP again.
	if n := len(fb.log()); n != 1 || len(clk.Sleeps()) != 0 {
		t.Fatalf("%d requests, sleeps %v", n, clk.Sleeps())
	}
	var apiErr *APIError
	src2 := fb.source(t, Options{MaxRateLimitWait: 24 * time.Hour})
	fb.set(func(fb *fakeBinance) { fb.limits = []limitFault{{http.StatusTeapot, "1"}, {http.StatusTeapot, "1"}} })
	// A longer allowance sleeps through shorter bans, one per answer.
	if _, err := src2.Fetch(context.Background(), btc, grid.R(t0-3600, t0)); err != nil {
		t.Fatal(err)
	}
	if s := clk.Sleeps(); len(s) != 2 || s[0] != time.Second || s[1] != time.Second {
		t.Fatalf("sleeps %v, want [1s 1s]", s)
	}
	src3 := fb.source(t, Options{MaxRateLimitRetries: -1})
	fb.set(func(fb *fakeBinance) { fb.limits = []limitFault{{http.StatusTooManyRequests, "1"}} })
	_, err := src3.Fetch(context.Background(), btc, grid.R(t0-3600, t0))
	if !errors.As(err, &apiErr) || apiErr.Status != 429 || apiErr.Code != -1003 || apiErr.RetryAfter != time.Second {
		t.Fatalf("no rate-limit retries: %v", err)
	}
}

func TestTransient5xxRetriedWithBackoff(t *testing.T) {
	fb, clk := newTest(t)
	fb.set(func(fb *fakeBinance) { fb.fail503 = 2 })
	src := fb.source(t, Options{})
	f, err := src.Fetch(context.Background(), btc, grid.R(t0-3600, t0))
	if err != nil {
		t.Fatal(err)
	}
	checkBars(t, f, 60, gridTS(t0-3600, t0, 60))
	sleeps := clk.Sleeps()
	if len(sleeps) != 2 {
		t.Fatalf("sleeps %v, want 2 backoffs", sleeps)
	}
	for i, d := range sleeps {
		base := DefaultRetryBackoff << i
		if d < base*3/4 || d > base*5/4 {
			t.Fatalf("backoff %d = %v, want %v ±25%%", i, d, base)
		}
	}
	if st := src.Stats(); st != (Stats{Requests: 3, Retries: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestEndless5xxIsRetryable(t *testing.T) {
	fb, clk := newTest(t)
	fb.set(func(fb *fakeBinance) { fb.failAll = true })
	src := fb.source(t, Options{})
	_, err := src.Fetch(context.Background(), btc, grid.R(t0-3600, t0))
	var apiErr *APIError
	if err == nil || seamless.IsPermanent(err) || !errors.As(err, &apiErr) || apiErr.Status != 500 || apiErr.Code != -1000 {
		t.Fatalf("err = %v, want a retryable HTTP 500", err)
	}
	if n := len(fb.log()); n != 1+DefaultMaxRetries || len(clk.Sleeps()) != DefaultMaxRetries {
		t.Fatalf("%d requests, sleeps %v", n, clk.Sleeps())
	}
	if !strings.Contains(err.Error(), btc1m) {
		t.Fatalf("error does not name the node: %v", err)
	}
}

func TestInvalidSymbolIsPermanent(t *testing.T) {
	fb, _ := newTest(t)
	src := fb.source(t, Options{})
	_, err := src.Fetch(context.Background(), seamless.Series{NodeID: "ohlcv:binance:DOGE/USDT:1m", Interval: 60}, grid.R(t0-3600, t0))
	var apiErr *APIError
	if !seamless.IsPermanent(err) || !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != -1121 {
		t.Fatalf("err = %v, want a permanent -1121", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "-1121") || !strings.Contains(msg, "Invalid symbol.") {
		t.Fatalf("message lacks Binance's code and msg: %s", msg)
	}
	if st := src.Stats(); st != (Stats{Requests: 1}) {
		t.Fatalf("stats %+v: a 400 must not be retried", st)
	}
}

func TestMalformedRowFailsThePage(t *testing.T) {
	fb, _ := newTest(t)
	start := t0 - 3600
	fb.set(func(fb *fakeBinance) {
		fb.corruptAt = (start + 5*60) * 1000
		fb.corrupt = func(row []any) []any { row[2] = 42.5; return row } // high as a JSON number
	})
	src := fb.source(t, Options{})
	_, err := src.Fetch(context.Background(), btc, grid.R(start, t0))
	var rowErr *RowError
	if !seamless.IsPermanent(err) || !errors.As(err, &rowErr) || rowErr.Row != 5 || rowErr.Field != "high" {
		t.Fatalf("err = %v, want a permanent RowError at row 5, field high", err)
	}
	if !strings.Contains(err.Error(), "row 5, field high") || src.Stats().Retries != 0 {
		t.Fatalf("message %q, stats %+v", err, src.Stats())
	}
}

func TestUsedWeightNearLimitWaitsForNextMinute(t *testing.T) {
	fb, clk := newTest(t)
	// Other clients on the IP used 997 this minute; after our first page the header
	// says 999, and one more request (weight 2) would pass the budget of 1000.
	fb.set(func(fb *fakeBinance) { fb.usedWeight[(t0+30)/60] = 997 })
	src := fb.source(t, Options{WeightPerMinute: 1000})
	start := t0 - 1500*60
	f, err := src.Fetch(context.Background(), btc, grid.R(start, t0))
	if err != nil {
		t.Fatal(err)
	}
	checkBars(t, f, 60, gridTS(start, t0, 60))
	if s := clk.Sleeps(); len(s) != 1 || s[0] != 30*time.Second {
		t.Fatalf("sleeps %v, want [30s] to the next minute", s)
	}
	if st := src.Stats(); st != (Stats{Requests: 2, Throttled: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestLimiterSpacesRequests(t *testing.T) {
	fb, clk := newTest(t)
	// 60 weight a minute at weight 2 a request: one request every 2 s after a burst of
	// 10 s of budget (5 requests).
	src := fb.source(t, Options{WeightPerMinute: 60})
	start := t0 - 8000*60
	if _, err := src.Fetch(context.Background(), btc, grid.R(start, t0)); err != nil {
		t.Fatal(err)
	}
	sleeps := clk.Sleeps()
	if len(fb.log()) != 8 || len(sleeps) != 3 {
		t.Fatalf("%d requests, sleeps %v", len(fb.log()), sleeps)
	}
	for _, d := range sleeps {
		if d != 2*time.Second {
			t.Fatalf("limiter sleeps %v, want 2s each", sleeps)
		}
	}
}

func TestNodeValidation(t *testing.T) {
	fb, _ := newTest(t)
	src := fb.source(t, Options{})
	for _, s := range []seamless.Series{
		{NodeID: "ohlcv:binance:BTC/USDT:1M", Interval: 2592000}, // months are not fixed width
		{NodeID: "ohlcv:binance:BTC/USDT:1w", Interval: 604800},  // Monday weeks, off the grid
		{NodeID: "ohlcv:binance:BTC/USDT:60m", Interval: 3600},   // not Binance's name for 1h
		{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 300},     // interval mismatch
		{NodeID: "ohlcv:binance:BTCUSDT:1m", Interval: 60},       // no BASE/QUOTE
		{NodeID: "ohlcv:binance:btc/usdt:1m", Interval: 60},      // lower case
		{NodeID: "ohlcv:binance:BTC/US-DT:1m", Interval: 60},
		{NodeID: "ohlcv:binance:BTC/USDT/X:1m", Interval: 60},
		{NodeID: "trades:binance:BTC/USDT:1m", Interval: 60},
		{NodeID: "nonsense", Interval: 60},
	} {
		if _, err := src.Fetch(context.Background(), s, grid.R(t0-3600, t0)); !seamless.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", s, err)
		}
	}
	if n := len(fb.log()); n != 0 {
		t.Fatalf("%d requests for invalid nodes", n)
	}
	f, err := src.Fetch(context.Background(), seamless.Series{NodeID: "ohlcv:binance:ETH/USDT:4h", Interval: 14400}, grid.R(t0-86400, t0))
	if err != nil {
		t.Fatal(err)
	}
	checkBars(t, f, 14400, gridTS(t0-86400, t0, 14400))
	if f, err := src.Fetch(context.Background(), btc, grid.R(-1e12, -1e11)); err != nil || f.Len() != 0 {
		t.Fatalf("range before the epoch: %v, %d bars", err, f.Len())
	}
}

func TestContextCancellation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(fb *fakeBinance)
		opts  Options
	}{
		{"in the HTTP request", func(fb *fakeBinance) { fb.hang = true }, Options{}},
		{"in the Retry-After wait", func(fb *fakeBinance) { fb.limits = []limitFault{{http.StatusTooManyRequests, "60"}} }, Options{}},
		{"in the retry backoff", func(fb *fakeBinance) { fb.failAll = true }, Options{RetryBackoff: time.Minute}},
		// A burst of one request, then a token every 10 s: the second page waits.
		{"in the limiter", func(*fakeBinance) {}, Options{WeightPerMinute: 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fb, _ := newTest(t)
			fb.set(tc.fault)
			tc.opts.Clock = wallAt(time.Unix(t0+30, 0))
			src := fb.source(t, tc.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			began := time.Now()
			_, err := src.Fetch(ctx, btc, grid.R(t0-1500*60, t0))
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the context's deadline", err)
			}
			if d := time.Since(began); d > 5*time.Second {
				t.Fatalf("returned after %v", d)
			}
		})
	}
}

// wallClock is the real clock shifted to a chosen time, so that the fake server's
// klines before t0 are closed while sleeps are real and contexts interrupt them.
type wallClock struct {
	clock.Real
	offset time.Duration
}

func wallAt(now time.Time) wallClock { return wallClock{offset: time.Until(now)} }

func (c wallClock) Now() time.Time { return time.Now().Add(c.offset) }

// TestNewDefaults: the zero Options talk to Binance's public API; a budget below one request is refused.
func TestNewDefaults(t *testing.T) {
	s, err := New(Options{})
	if err != nil || s.base != DefaultBaseURL {
		t.Fatalf("default base URL: %v", err)
	}
	if _, err := New(Options{WeightPerMinute: 1, RequestWeight: 2}); err == nil {
		t.Fatal("a budget below one request was accepted")
	}
}

// TestFakeServerIsFaithful checks the fake's validation against Binance's documented
// answers, so that the Source is tested against the real contract.
func TestFakeServerIsFaithful(t *testing.T) {
	fb, _ := newTest(t)
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"symbol=BTCUSDT&interval=1m&limit=1001", -1130},
		{"symbol=BTCUSDT&interval=1m&limit=0", -1130},
		{"symbol=BTCUSDT&interval=7m", -1120},
		{"symbol=BTCUSDT&interval=1m&startTime=2&endTime=1", -1023},
		{"symbol=BTCUSDT&interval=1m&startTime=x", -1100},
		{"symbol=XXX&interval=1m", -1121},
		{"interval=1m", -1102},
	} {
		resp, err := fb.srv.Client().Get(fb.srv.URL + "/api/v3/klines?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		e := readAPIError(resp)
		resp.Body.Close()
		if e.Status != 400 || e.Code != tc.code {
			t.Errorf("%s: %+v, want 400 code %d", tc.query, e, tc.code)
		}
	}
	// Inclusive bounds: a window of exactly one open time returns that kline.
	ms := strconv.FormatInt((t0-600)*1000, 10)
	resp, err := fb.srv.Client().Get(fb.srv.URL + "/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=" + ms + "&endTime=" + ms)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows [][]any
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil || len(rows) != 1 || len(rows[0]) != 12 {
		t.Fatalf("inclusive window: %v, %v", rows, err)
	}
}
