// Package sourcetest is the contract suite of seamless.Fetcher implementations (SPEC
// §11: every source passes one contract suite). Each venue runs it from its own tests
// against a fake of its upstream that speaks the venue's real wire format:
//
//	func TestContract(t *testing.T) {
//		sourcetest.Run(t, sourcetest.Harness{
//			Source: "binance", Symbol: "BTC/USDT", UnknownSymbol: "NOPE/USDT", PageLimit: 1000,
//			Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher { … },
//		})
//	}
//
// The suite decides what the upstream holds (Upstream) and the harness makes its fake
// serve exactly that, then the suite checks what the fetcher returns:
//
//   - Pages: a range needing more requests than one page holds returns every bar
//     exactly once, in ts order; so do ranges of exactly one page, one page and one
//     bar, one bar, none (empty, or between two grid points), and unaligned bounds
//     (the bars whose ts is inside [start, end)). Bars the venue does not hold are
//     absent, not an error.
//   - ClosedOnly: a bar still forming at the venue's now, which venues return as the
//     last row, is never returned; a bar closed exactly at now is.
//   - Context: a cancelled context, before or during a request the venue never
//     answers, returns promptly with an error wrapping ctx.Err(), and no goroutine of
//     the fetch outlives it.
//   - UnknownSymbol: a market the venue does not list is a seamless.Permanent error.
//   - Faults (venues behind HTTP): 5xx answers are retried and the fetch returns every
//     bar; a 429 with Retry-After is waited out and retried; a 400 is a
//     seamless.Permanent error after one request; a 200 whose body is cut short is a
//     seamless.Permanent error, never bars. Skipped for generated venues.
//   - Gaps: bars the venue lacks in the middle of a range (maintenance) are absent
//     from the answer, with no error, however the gap falls across pages.
//   - Window (venues serving only their newest bars): a range reaching before the
//     window is a seamless.Permanent error, never an empty answer.
//   - Timestamps: venue times become epoch seconds exactly, on the grid, at 1m, 1h and
//     1d, also past 2038 (2^31 s) and in the millisecond range of today's clocks; values
//     arrive exactly as served.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/storetest"
)

// Harness plugs a venue into the suite.
//
// Its shape is meant to stay: later clauses (rate limits answered 429 or 418 with
// Retry-After, malformed rows, maintenance gaps recorded as covered-but-empty) add
// fields to Upstream describing what the fake must do, and the harnesses learn to
// serve them; Run's signature and the fields below do not change.
type Harness struct {
	// Source is the source part of the venue's node ids ("binance"); Symbol is a
	// market its fake lists, spelled as node ids spell it ("BTC/USDT").
	Source, Symbol string
	// UnknownSymbol is a well-formed symbol the venue does not list. Empty means the
	// venue serves every symbol (a generator), and the UnknownSymbol clause is skipped.
	UnknownSymbol string
	// PageLimit is the most bars one upstream request returns; 0 means the fetcher
	// does not page (the suite still asks for ranges larger than a typical page).
	PageLimit int
	// Start starts a fake upstream in the state up describes, and returns a fetcher
	// talking to it whose clock reads up.Now. Anything it starts is stopped by
	// t.Cleanup. The series the suite fetches are ohlcv:{Source}:{Symbol}:{1m,1h,1d}
	// and, for UnknownSymbol, ohlcv:{Source}:{UnknownSymbol}:1m.
	Start func(t *testing.T, up Upstream) seamless.Fetcher
	// InProcess declares a fetcher that calls its upstream in process rather than over
	// HTTP (the suite's own reference fetcher): the Faults clause, which injects HTTP
	// faults through Upstream.Front, is skipped. A harness that neither sets it nor
	// calls Front fails that clause.
	InProcess bool
	// Window, when positive, is a venue that serves only its newest Window bars
	// (counting the one forming at now), whatever the range asked, as Kraken's OHLC
	// endpoint serves 720. The Pages clause then places the held bars inside the
	// window, and checks that a range reaching before it is a seamless.Permanent error
	// rather than an empty answer, which the provider would record as a market gap.
	Window int
	// Generated is set for a venue whose bars are a pure function of series and ts
	// (the demo generator) rather than whatever its upstream is told to hold. The
	// suite then fills Upstream.Bars from it, and skips the checks that need the venue
	// to lack a bar (before its first bar, after its last).
	Generated func(s seamless.Series, r grid.Range) *frame.Frame
}

// Upstream is what the venue's upstream holds and does in one test.
type Upstream struct {
	// Series is the market served: Harness.Symbol at the interval of the test.
	Series seamless.Series
	// Now is the venue's time, and the fetcher's: a bar is closed when ts+interval is
	// not after Now.
	Now time.Time
	// Bars are the OHLCV rows the venue answers with, ts-sorted, on the grid of
	// Series.Interval: closed bars and, when a clause wants one, the bar forming at Now
	// as the last row, since venues return it before it closes. Values are decimals
	// of at most 8 places, exact in any venue's text format.
	Bars *frame.Frame
	// Stall makes the venue accept requests and answer none until the client gives up.
	Stall bool
	// Front returns the base URL the fetcher must use for a fake listening at url:
	// url itself, or that of a proxy the suite puts in front of it to inject faults
	// (answers 5xx, 429 with Retry-After, 400, truncated bodies). Harnesses call it on
	// their fake's URL.
	Front func(t *testing.T, url string) string
}

// Run runs the contract suite.
func Run(t *testing.T, h Harness) {
	if h.Source == "" || h.Symbol == "" || h.Start == nil {
		t.Fatal("sourcetest: Harness needs Source, Symbol and Start")
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Pages", testPages},
		{"ClosedOnly", testClosedOnly},
		{"Context", testContext},
		{"UnknownSymbol", testUnknownSymbol},
		{"Timestamps", testTimestamps},
		{"Faults", testFaults},
		{"Gaps", testGaps},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// start starts the venue with the suite's defaults filled in.
func (h Harness) start(t *testing.T, up Upstream) seamless.Fetcher {
	if up.Front == nil {
		up.Front = func(_ *testing.T, url string) string { return url }
	}
	return h.Start(t, up)
}

// promptly bounds how long a fetch may take to notice its context ended.
const promptly = 5 * time.Second

// fetchTimeout bounds an ordinary fetch from a loopback fake.
const fetchTimeout = time.Minute

func (h Harness) series(tf string) seamless.Series {
	iv := map[string]int64{"1m": 60, "1h": 3600, "1d": 86400}[tf]
	return seamless.Series{NodeID: fmt.Sprintf("ohlcv:%s:%s:%s", h.Source, h.Symbol, tf), Interval: iv}
}

// bars returns what the venue holds for s in r: the generator's bars, or the suite's.
func (h Harness) bars(s seamless.Series, r grid.Range) *frame.Frame {
	if h.Generated != nil {
		return h.Generated(s, r)
	}
	return Bars(r.Start, s.Interval, int(r.Bars(s.Interval)))
}

// Bars returns n OHLCV bars at start, start+interval, …, with values that depend on
// the bar's index on the grid only and are exact decimals (prices in cents, volume in
// thousandths), so that any venue's text encoding round-trips them and a bar returned
// at the wrong ts also has the wrong values.
func Bars(start, interval int64, n int) *frame.Frame {
	f := frame.New(frame.OHLCV, n)
	for i := range n {
		ts := start + int64(i)*interval
		k := ts / interval
		open := 3_000_000 + k%5000
		closing := open + k%7 - 3
		for c, v := range []float64{float64(open) / 100, float64(max(open, closing)+5) / 100,
			float64(min(open, closing)-5) / 100, float64(closing) / 100, float64(k%1000+1) / 1000} {
			f.Cols[c].F64 = append(f.Cols[c].F64, v)
		}
		f.TS = append(f.TS, ts)
	}
	return f
}

// expect is what a fetch of r must return when the venue holds held at now: the
// closed bars with ts in r.
func expect(held *frame.Frame, iv int64, r grid.Range, now time.Time) *frame.Frame {
	return held.Normalize(func(ts int64) bool { return r.Contains(ts) && closed(ts, iv, now) })
}

func closed(ts, iv int64, now time.Time) bool { return !now.Before(time.Unix(ts+iv, 0)) }

// fetch fetches r and checks the result against want: a valid OHLCV frame holding
// want's bars, each once, in order, with want's values.
func fetch(t *testing.T, f seamless.Fetcher, s seamless.Series, r grid.Range, want *frame.Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	got, err := f.Fetch(ctx, s, r)
	if err != nil {
		t.Fatalf("Fetch %v %v: %v", s, r, err)
	}
	if got == nil {
		t.Fatalf("Fetch %v %v returned a nil frame", s, r)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("Fetch %v %v returned a malformed frame: %v", s, r, err)
	}
	if !got.IsSortedUnique() {
		t.Fatalf("Fetch %v %v: ts not strictly increasing (a bar twice, or out of order): %v", s, r, shortTS(got.TS))
	}
	if d := storetest.Diff(got, want); d != "" {
		t.Fatalf("Fetch %v %v (%d bars): %s", s, r, got.Len(), d)
	}
}

func shortTS(ts []int64) string {
	if len(ts) > 12 {
		return fmt.Sprintf("%v … %v", ts[:6], ts[len(ts)-6:])
	}
	return fmt.Sprint(ts)
}

// t0 is a minute, hour and day boundary well inside every venue's history.
var t0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Unix()

func testPages(t *testing.T, h Harness) {
	s := h.series("1m")
	iv := s.Interval
	page := h.PageLimit
	if page <= 0 {
		page = 1000
	}
	if h.Window > 0 {
		page = max(h.Window/8, 2)
	}
	// The venue holds 3 pages and a half of closed bars from first; now is a day later,
	// or, for a venue serving a window, such that the window starts a little more than
	// two pages before first.
	first := t0
	n := 3*page + page/2
	held := h.bars(s, grid.R(first, first+int64(n)*iv))
	now := time.Unix(first+int64(n)*iv+86400, 0)
	if h.Window > 0 {
		now = time.Unix(first+int64(h.Window-1-2*page-5)*iv, 0)
	}
	f := h.start(t, Upstream{Series: s, Now: now, Bars: held})
	at := func(i int) int64 { return first + int64(i)*iv }
	type rangeCase struct {
		name string
		r    grid.Range
	}
	cases := []rangeCase{
		{"ManyPages", grid.R(at(3), at(3+2*page+page/2))},
		{"OnePage", grid.R(at(7), at(7+page))},
		{"OnePageAndOneBar", grid.R(at(7), at(8+page))},
		{"OneBar", grid.R(at(5), at(6))},
		{"Empty", grid.R(at(5), at(5))},
		{"BetweenGridPoints", grid.R(at(5)+1, at(6)-1)},
		{"UnalignedBounds", grid.R(at(3)-1, at(40+page)+1)},
		{"UnalignedInsideBars", grid.R(at(3)+1, at(40+page)-1)},
	}
	if h.Generated == nil {
		cases = append(cases,
			rangeCase{"BeforeFirstBar", grid.R(at(-2*page), at(10))},
			rangeCase{"PastLastBar", grid.R(at(n-page/2), at(n+page))})
		if h.Window > 0 {
			cases = append(cases, rangeCase{"NoBarsHeld", grid.R(at(-2*page), at(-page))})
		} else {
			cases = append(cases, rangeCase{"NoBarsHeld", grid.R(at(-3*page), at(-page))})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fetch(t, f, s, tc.r, expect(held, iv, tc.r, now))
		})
	}
	if h.Window > 0 {
		t.Run("BeforeWindow", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
			defer cancel()
			r := grid.R(at(-3*page), at(10))
			got, err := f.Fetch(ctx, s, r)
			if err == nil {
				t.Fatalf("Fetch %v before the venue's %d-bar window: %d bars and no error; want a Permanent error", r, h.Window, got.Len())
			}
			if !seamless.IsPermanent(err) {
				t.Fatalf("Fetch %v before the venue's window: %v; want it marked seamless.Permanent", r, err)
			}
		})
	}
}

func testClosedOnly(t *testing.T, h Harness) {
	s := h.series("1m")
	iv := s.Interval
	forming := t0 + 500*iv // the bar open at now
	for _, tc := range []struct {
		name string
		now  time.Time
	}{
		{"NowMidBar", time.Unix(forming+iv/2, 0)},
		{"NowAtBoundary", time.Unix(forming, 0)},                         // the bar before closed just now
		{"NowJustBeforeBoundary", time.UnixMilli((forming+iv)*1000 - 1)}, // still forming
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Closed bars and, last, the one forming at now, as venues serve them.
			open := grid.FloorAlign(tc.now.Unix(), iv)
			held := h.bars(s, grid.R(t0, open+iv))
			if closed(open, iv, tc.now) {
				t.Fatalf("test bug: bar %d is closed at %v", open, tc.now)
			}
			f := h.start(t, Upstream{Series: s, Now: tc.now, Bars: held})
			for _, r := range []grid.Range{
				grid.R(open-50*iv, open+10*iv), // across now, into the future
				grid.R(open-3*iv, open+iv),     // ending with the forming bar
				grid.R(open, open+iv),          // the forming bar alone
			} {
				fetch(t, f, s, r, expect(held, iv, r, tc.now))
			}
		})
	}
}

func testContext(t *testing.T, h Harness) {
	s := h.series("1m")
	iv := s.Interval
	held := h.bars(s, grid.R(t0, t0+100*iv))
	now := time.Unix(t0+200*iv, 0)
	r := grid.R(t0, t0+100*iv)
	for _, tc := range []struct {
		name  string
		stall bool
		// cancelAfter: when the context is cancelled (negative: before Fetch).
		cancelAfter time.Duration
	}{
		{"CancelledBefore", false, -1},
		{"CancelledBeforeStalled", true, -1},
		{"CancelledDuringStalledRequest", true, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := h.start(t, Upstream{Series: s, Now: now, Bars: held, Stall: tc.stall})
			// Goroutines of the fake upstream and of earlier tests are not the fetch's.
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAfter < 0 {
				cancel()
			} else {
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			type result struct {
				f   *frame.Frame
				err error
			}
			done := make(chan result, 1)
			began := time.Now()
			go func() {
				got, err := f.Fetch(ctx, s, r)
				done <- result{got, err}
			}()
			select {
			case res := <-done:
				if !errors.Is(res.err, context.Canceled) {
					n := 0
					if res.f != nil {
						n = res.f.Len()
					}
					t.Fatalf("Fetch with a cancelled context: %d bars, error %v; want an error wrapping context.Canceled", n, res.err)
				}
			case <-time.After(max(tc.cancelAfter, 0) + promptly):
				t.Fatalf("Fetch still running %v after its context was cancelled", time.Since(began)-max(tc.cancelAfter, 0))
			}
		})
	}
}

func testUnknownSymbol(t *testing.T, h Harness) {
	if h.UnknownSymbol == "" {
		t.Skip("the venue serves every symbol")
	}
	s := h.series("1m")
	iv := s.Interval
	f := h.start(t, Upstream{Series: s, Now: time.Unix(t0+200*iv, 0), Bars: h.bars(s, grid.R(t0, t0+100*iv))})
	unknown := seamless.Series{NodeID: fmt.Sprintf("ohlcv:%s:%s:1m", h.Source, h.UnknownSymbol), Interval: iv}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	got, err := f.Fetch(ctx, unknown, grid.R(t0, t0+100*iv))
	if err == nil {
		t.Fatalf("Fetch of unknown symbol %s: %d bars and no error; want a Permanent error", h.UnknownSymbol, got.Len())
	}
	if !seamless.IsPermanent(err) {
		t.Fatalf("Fetch of unknown symbol %s: %v; want it marked seamless.Permanent (retrying cannot list the market)", h.UnknownSymbol, err)
	}
}

func testTimestamps(t *testing.T, h Harness) {
	const y2038 = int64(1) << 31 // 2038-01-19T03:14:08Z, past int32 seconds
	for _, tc := range []struct {
		tf    string
		start int64 // the first held bar, floored to the grid
	}{
		{"1m", t0 + 17*60},
		{"1h", t0 + 5*3600},
		{"1d", t0},
		{"1m", y2038 - 30*60},
		{"1h", y2038 - 10*3600},
		{"1d", y2038 - 5*86400},
	} {
		s := h.series(tc.tf)
		iv := s.Interval
		start := grid.FloorAlign(tc.start, iv)
		t.Run(fmt.Sprintf("%s@%d", tc.tf, start), func(t *testing.T) {
			held := h.bars(s, grid.R(start, start+60*iv))
			now := time.Unix(start+61*iv, 0)
			f := h.start(t, Upstream{Series: s, Now: now, Bars: held})
			r := grid.R(start, start+60*iv)
			fetch(t, f, s, r, expect(held, iv, r, now))
			if i := slices.IndexFunc(held.TS, func(ts int64) bool { return ts%iv != 0 }); i >= 0 {
				t.Fatalf("test bug: held bar %d off the grid", held.TS[i])
			}
		})
	}
}

// Fault is one answer the suite's proxy gives instead of forwarding a request.
type fault struct {
	status     int
	retryAfter string
	truncate   bool // forward, then cut the body in half
}

// faultProxy forwards to a fake, answering the first requests with faults (the last
// fault repeats when always is set).
type faultProxy struct {
	target string
	mu     sync.Mutex
	faults []fault
	always bool
	n      int
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.n++
	var f *fault
	if len(p.faults) > 0 {
		f = &p.faults[0]
		if len(p.faults) > 1 || !p.always {
			p.faults = p.faults[1:]
		}
	}
	p.mu.Unlock()
	if f != nil && !f.truncate {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		w.WriteHeader(f.status)
		fmt.Fprintf(w, `{"error":"injected %d"}`, f.status)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if f != nil {
		body = body[:len(body)/2]
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

func (p *faultProxy) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func testFaults(t *testing.T, h Harness) {
	if h.Generated != nil || h.InProcess {
		t.Skip("the venue has no HTTP upstream to fail")
	}
	s := h.series("1m")
	iv := s.Interval
	held := h.bars(s, grid.R(t0, t0+200*iv))
	now := time.Unix(t0+201*iv, 0)
	r := grid.R(t0, t0+200*iv)
	start := func(t *testing.T, faults []fault, always bool) (seamless.Fetcher, *faultProxy) {
		p := &faultProxy{faults: faults, always: always}
		f := h.start(t, Upstream{Series: s, Now: now, Bars: held, Front: func(t *testing.T, url string) string {
			p.target = url
			srv := httptest.NewServer(p)
			t.Cleanup(srv.Close)
			return srv.URL
		}})
		if p.target == "" {
			t.Fatal("the harness did not put its fake behind Upstream.Front (set Harness.InProcess for an in-process upstream)")
		}
		return f, p
	}
	fetchErr := func(t *testing.T, f seamless.Fetcher) error {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		got, err := f.Fetch(ctx, s, r)
		if err == nil {
			t.Fatalf("Fetch %v: %d bars and no error", r, got.Len())
		}
		return err
	}
	t.Run("ServerErrorsRetried", func(t *testing.T) {
		f, _ := start(t, []fault{{status: http.StatusServiceUnavailable}, {status: http.StatusBadGateway}}, false)
		fetch(t, f, s, r, expect(held, iv, r, now))
	})
	t.Run("RateLimitWaitedOut", func(t *testing.T) {
		f, p := start(t, []fault{{status: http.StatusTooManyRequests, retryAfter: "1"}}, false)
		fetch(t, f, s, r, expect(held, iv, r, now))
		if p.requests() < 2 {
			t.Fatalf("%d requests: the rate-limited one was not retried", p.requests())
		}
	})
	t.Run("ClientErrorPermanent", func(t *testing.T) {
		f, p := start(t, []fault{{status: http.StatusBadRequest}}, true)
		if err := fetchErr(t, f); !seamless.IsPermanent(err) {
			t.Fatalf("HTTP 400: %v; want a seamless.Permanent error", err)
		}
		if p.requests() != 1 {
			t.Fatalf("HTTP 400 was retried: %d requests", p.requests())
		}
	})
	t.Run("TruncatedAnswer", func(t *testing.T) {
		f, _ := start(t, []fault{{truncate: true}}, true)
		if err := fetchErr(t, f); !seamless.IsPermanent(err) {
			t.Fatalf("a body cut short: %v; want a seamless.Permanent error (a changed answer shape)", err)
		}
	})
}

func testGaps(t *testing.T, h Harness) {
	if h.Generated != nil {
		t.Skip("a generated venue has no maintenance")
	}
	s := h.series("1m")
	iv := s.Interval
	page := h.PageLimit
	if page <= 0 || h.Window > 0 {
		page = 100
	}
	n := 2*page + 50
	all := h.bars(s, grid.R(t0, t0+int64(n)*iv))
	// Two gaps: one inside the first page, one across the boundary of the second.
	gaps := []grid.Range{grid.R(t0+10*iv, t0+40*iv), grid.R(t0+int64(page-5)*iv, t0+int64(page+20)*iv)}
	held := all.Normalize(func(ts int64) bool {
		return !slices.ContainsFunc(gaps, func(g grid.Range) bool { return g.Contains(ts) })
	})
	now := time.Unix(t0+int64(n+1)*iv, 0)
	f := h.start(t, Upstream{Series: s, Now: now, Bars: held})
	for _, r := range []grid.Range{grid.R(t0, t0+int64(n)*iv), gaps[0], grid.R(gaps[1].Start-iv, gaps[1].End+iv)} {
		fetch(t, f, s, r, expect(held, iv, r, now))
	}
}
