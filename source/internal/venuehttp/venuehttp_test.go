package venuehttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
)

// script answers requests in order with the statuses and headers it holds, then 200.
type script struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	n       int
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var a func(w http.ResponseWriter)
	if s.n < len(s.answers) {
		a = s.answers[s.n]
	}
	s.n++
	s.mu.Unlock()
	if a == nil {
		fmt.Fprint(w, `{"ok":true}`)
		return
	}
	a(w)
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"message":"status %d"}`, code)
	}
}

func newClient(t *testing.T, sc *script, o Options) (*Client, *clock.Fake) {
	t.Helper()
	srv := httptest.NewServer(sc)
	t.Cleanup(srv.Close)
	clk := clock.NewFake(time.Date(2024, 3, 1, 0, 0, 30, 0, time.UTC))
	o.Venue, o.BaseURL, o.HTTPClient, o.Clock, o.Seed = "testvenue", srv.URL, srv.Client(), clk, 1
	if o.PerMinute == 0 {
		o.PerMinute = 6000
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func TestRetryAfterHonoured(t *testing.T) {
	sc := &script{answers: []func(http.ResponseWriter){status(429, "Retry-After", "7"), status(429)}}
	c, clk := newClient(t, sc, Options{})
	if _, err := c.Get(context.Background(), "/x", 1, nil); err != nil {
		t.Fatal(err)
	}
	// 7 s as asked, then the default pause of a second for the answer without a header.
	if s := clk.Sleeps(); len(s) != 2 || s[0] != 7*time.Second || s[1] != time.Second {
		t.Fatalf("sleeps %v", s)
	}
	if st := c.Stats(); st != (Stats{Requests: 3, RateLimited: 2, Retries: 2}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestBanNotSleptThrough(t *testing.T) {
	sc := &script{answers: []func(http.ResponseWriter){status(429, "Retry-After", "86400")}}
	c, clk := newClient(t, sc, Options{})
	for range 2 {
		_, err := c.Get(context.Background(), "/x", 1, nil)
		if !errors.Is(err, ErrRateLimited) || seamless.IsPermanent(err) {
			t.Fatalf("%v: want a retryable ErrRateLimited", err)
		}
	}
	if sc.n != 1 || len(clk.Sleeps()) != 0 {
		t.Fatalf("%d requests during the ban, sleeps %v", sc.n, clk.Sleeps())
	}
}

func TestServerErrorsRetriedThenReturned(t *testing.T) {
	sc := &script{answers: []func(http.ResponseWriter){status(502), status(503)}}
	c, clk := newClient(t, sc, Options{})
	if _, err := c.Get(context.Background(), "/x", 1, nil); err != nil {
		t.Fatal(err)
	}
	for i, d := range clk.Sleeps() {
		if base := DefaultRetryBackoff << i; d < base*3/4 || d > base*5/4 {
			t.Fatalf("backoff %d = %v, want %v ±25%%", i, d, base)
		}
	}
	sc2 := &script{}
	for range 10 {
		sc2.answers = append(sc2.answers, status(500))
	}
	c2, _ := newClient(t, sc2, Options{MaxRetries: 2})
	_, err := c2.Get(context.Background(), "/x", 1, nil)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 || ae.Venue != "testvenue" || seamless.IsPermanent(err) || sc2.n != 3 {
		t.Fatalf("%v after %d requests: want a retryable HTTP 500 after 3", err, sc2.n)
	}
}

func TestClientErrorIsPermanent(t *testing.T) {
	sc := &script{answers: []func(http.ResponseWriter){status(404)}}
	c, _ := newClient(t, sc, Options{})
	_, err := c.Get(context.Background(), "/x", 1, nil)
	if !seamless.IsPermanent(err) || sc.n != 1 {
		t.Fatalf("%v after %d requests: want a permanent error at once", err, sc.n)
	}
}

func TestTimeoutRetried(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	sc := &script{answers: []func(http.ResponseWriter){func(http.ResponseWriter) { <-block }}}
	c, _ := newClient(t, sc, Options{RequestTimeout: 50 * time.Millisecond})
	if _, err := c.Get(context.Background(), "/x", 1, nil); err != nil || sc.n != 2 {
		t.Fatalf("%v after %d requests: want the timed-out request retried", err, sc.n)
	}
}

func TestCheckClassifies(t *testing.T) {
	sc := &script{}
	c, clk := newClient(t, sc, Options{})
	calls := 0
	_, err := c.Get(context.Background(), "/x", 1, func([]byte) error {
		calls++
		switch calls {
		case 1:
			return &Throttled{Err: errors.New("EAPI:Rate limit exceeded"), After: 3 * time.Second}
		case 2:
			return errors.New("EService:Busy")
		}
		return nil
	})
	if err != nil || calls != 3 || len(clk.Sleeps()) != 2 || clk.Sleeps()[0] != 3*time.Second {
		t.Fatalf("%v, %d checks, sleeps %v", err, calls, clk.Sleeps())
	}
	_, err = c.Get(context.Background(), "/x", 1, func([]byte) error { return Shape("testvenue", 2, "close", `"x"`, "not a decimal number") })
	var se *ShapeError
	if !seamless.IsPermanent(err) || !errors.As(err, &se) || se.Field != "close" || err.Error() != `testvenue: malformed answer, row 2, field close: not a decimal number: "x"` {
		t.Fatalf("%v", err)
	}
}

// TestLimiterShared: the budget is the Client's, across concurrent callers.
func TestLimiterShared(t *testing.T) {
	sc := &script{}
	c, clk := newClient(t, sc, Options{PerMinute: 60, Burst: 1})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), "/x", 1, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// One request a second with a bucket of one: three of four callers waited a
	// second each on the fake clock (a sleep advances it).
	var total time.Duration
	for _, d := range clk.Sleeps() {
		total += d
	}
	if len(clk.Sleeps()) != 3 || total < 3*time.Second-time.Millisecond {
		t.Fatalf("sleeps %v: want three waits of a second", clk.Sleeps())
	}
}

func TestParseDecimalAndCheckBar(t *testing.T) {
	for s, ok := range map[string]bool{"1": true, "-2.5": true, "0.00000001": true, "": false, "1e3": false, "NaN": false,
		"Inf": false, ".5": false, "1.": false, "+1": false, "0x10": false, "1.2.3": false} {
		if _, why := ParseDecimal(s); (why == "") != ok {
			t.Errorf("ParseDecimal(%q): %q", s, why)
		}
	}
	for _, tc := range []struct {
		bar   [5]float64
		field int
	}{
		{[5]float64{10, 12, 9, 11, 1}, -1},
		{[5]float64{10, 10, 10, 10, 0}, -1},
		{[5]float64{10, 9, 8, 9.5, 1}, 1},
		{[5]float64{10, 12, 10.5, 11, 1}, 2},
		{[5]float64{10, 12, 9, 11, -1}, 4},
		{[5]float64{-1, 12, -2, 11, 1}, 2},
	} {
		if f, _ := CheckBar(tc.bar); f != tc.field {
			t.Errorf("CheckBar(%v) = %d, want %d", tc.bar, f, tc.field)
		}
	}
}
