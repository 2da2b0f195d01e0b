package seamless_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/memstore"
)

// coordLogs records the messages logged through it.
type coordLogs struct {
	mu   sync.Mutex
	msgs []string
}

func (l *coordLogs) Enabled(context.Context, slog.Level) bool { return true }
func (l *coordLogs) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *coordLogs) WithGroup(string) slog.Handler            { return l }
func (l *coordLogs) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

// count is how many times msg was logged.
func (l *coordLogs) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

const fallbackMsg = "seamless.backfill.coordinator_fallback"

// TestWrongCoordinatorURLFallsBack: a lease API URL whose server answers 404 "page not
// found" for every path is a misconfigured coordinator, not "every chunk is held
// elsewhere": the provider (with the coordinator internal/cli builds for an http://
// URL: the fallback-wrapped lease API client) backfills under the local guard and
// counts and logs the fallback.
func TestWrongCoordinatorURLFallsBack(t *testing.T) {
	var hits atomic.Int64
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r) // 404 "404 page not found", text/plain
	}))
	defer wrong.Close()
	logs := &coordLogs{}
	fb := seamless.NewFallbackCoordinator(leaseapi.NewClient(wrong.URL, nil), seamless.NewMemCoordinator(nil), time.Second, slog.New(logs))
	var counted atomic.Int64
	var lastErr atomic.Value
	fb.OnFallback = func(_ string, err error) { counted.Add(1); lastErr.Store(err) }
	src := &countingFetcher{}
	p, err := seamless.New(seamless.Config{Store: memstore.New(), Sources: seamless.Sources{"demo": src}, Coordinator: fb})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := grid.R(day(10), day(10)+3600)
	res, err := p.Fetch(ctx, req(r.Start, r.End, seamless.AutoBackfill))
	if err != nil {
		t.Fatalf("backfill with a wrong coordinator URL: %v", err)
	}
	checkFrame(t, res.Frame, r, 60)
	if len(src.Calls()) == 0 || res.Metadata.Sources.Backfill != 60 {
		t.Fatalf("no upstream fetch: calls %v, metadata %+v", src.Calls(), res.Metadata)
	}
	if fb.Fallbacks() == 0 || counted.Load() != fb.Fallbacks() || hits.Load() == 0 {
		t.Fatalf("fallbacks %d, reported %d, coordinator hits %d", fb.Fallbacks(), counted.Load(), hits.Load())
	}
	if err, _ := lastErr.Load().(error); !errors.Is(err, leaseapi.ErrNotLeaseAPI) || errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("fallback error %v: want leaseapi.ErrNotLeaseAPI", err)
	}
	if logs.count(fallbackMsg) == 0 {
		t.Fatal("the fallback was not logged")
	}
	if l, _ := fb.Inspect(ctx); len(l) != 0 {
		t.Fatalf("leases left: %v", l)
	}
}

// stubPrimary is a remote coordinator that is down (down set) or answers from a
// MemCoordinator, counting calls; a non-nil gate blocks Claim until it is closed.
type stubPrimary struct {
	mem  *seamless.MemCoordinator
	down atomic.Bool
	gate atomic.Pointer[chan struct{}]
	// entered, if set, receives one value when a Claim starts.
	entered chan struct{}

	claims, waits, renews, completes, fails atomic.Int64
}

var errRefused = errors.New("dial tcp 10.0.0.1:8081: connect: connection refused")

func (s *stubPrimary) Claim(ctx context.Context, key string, ttl time.Duration) (seamless.Lease, error) {
	s.claims.Add(1)
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if g := s.gate.Load(); g != nil {
		select {
		case <-*g:
		case <-ctx.Done():
			return seamless.Lease{}, ctx.Err()
		}
	}
	if s.down.Load() {
		return seamless.Lease{}, errRefused
	}
	l, err := s.mem.Claim(ctx, key, ttl)
	// Remote tokens differ from the local guard's, as they would across processes.
	l.Token += 1000
	return l, err
}

func (s *stubPrimary) Renew(ctx context.Context, l seamless.Lease, ttl time.Duration) (seamless.Lease, error) {
	s.renews.Add(1)
	if s.down.Load() {
		return seamless.Lease{}, errRefused
	}
	l.Token -= 1000
	l, err := s.mem.Renew(ctx, l, ttl)
	l.Token += 1000
	return l, err
}

func (s *stubPrimary) Complete(ctx context.Context, l seamless.Lease) error {
	s.completes.Add(1)
	if s.down.Load() {
		return errRefused
	}
	l.Token -= 1000
	return s.mem.Complete(ctx, l)
}

func (s *stubPrimary) Fail(ctx context.Context, l seamless.Lease, reason string) error {
	s.fails.Add(1)
	if s.down.Load() {
		return errRefused
	}
	l.Token -= 1000
	return s.mem.Fail(ctx, l, reason)
}

func (s *stubPrimary) Wait(ctx context.Context, key string) error {
	s.waits.Add(1)
	if s.down.Load() {
		return errRefused
	}
	return s.mem.Wait(ctx, key)
}

func (s *stubPrimary) Inspect(ctx context.Context) ([]seamless.LeaseInfo, error) {
	if s.down.Load() {
		return nil, errRefused
	}
	return s.mem.Inspect(ctx)
}

// TestFallbackCircuitBreaker: after the primary fails to answer, calls within the
// cool-down go straight to the local guard without touching the primary (each counted,
// logged once); after the cool-down the primary is tried again, and its answer closes
// the breaker.
func TestFallbackCircuitBreaker(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	primary := &stubPrimary{mem: seamless.NewMemCoordinator(nil)}
	primary.down.Store(true)
	logs := &coordLogs{}
	fb := seamless.NewFallbackCoordinator(primary, seamless.NewMemCoordinator(nil), time.Second, slog.New(logs),
		seamless.FallbackOptions{Cooldown: 10 * time.Second, Clock: clk})
	var reported atomic.Int64
	fb.OnFallback = func(string, error) { reported.Add(1) }

	claimEnd := func(key string) seamless.Lease {
		t.Helper()
		l, err := fb.Claim(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("claim %s: %v", key, err)
		}
		if err := fb.Complete(ctx, l); err != nil {
			t.Fatalf("complete %s: %v", key, err)
		}
		return l
	}
	claimEnd("a") // the primary fails: fallback, breaker opens
	if primary.claims.Load() != 1 || fb.Fallbacks() != 1 || logs.count(fallbackMsg) != 1 {
		t.Fatalf("first call: primary claims %d, fallbacks %d, logged %d", primary.claims.Load(), fb.Fallbacks(), logs.count(fallbackMsg))
	}
	for i, key := range []string{"b", "c", "d", "e"} {
		clk.Advance(2 * time.Second) // 2 … 8 s into the 10 s cool-down
		claimEnd(key)
		if err := fb.Wait(ctx, "elsewhere"); err != nil {
			t.Fatal(err)
		}
		if want := int64(1 + 2*(i+1)); fb.Fallbacks() != want {
			t.Fatalf("within the cool-down: fallbacks %d, want %d (each call counted)", fb.Fallbacks(), want)
		}
	}
	if primary.claims.Load() != 1 || primary.waits.Load() != 0 || primary.completes.Load() != 0 {
		t.Fatalf("the primary was called within the cool-down: claims %d, waits %d, completes %d", primary.claims.Load(), primary.waits.Load(), primary.completes.Load())
	}
	if logs.count(fallbackMsg) != 1 {
		t.Fatalf("logged %d times within one cool-down, want once", logs.count(fallbackMsg))
	}
	if reported.Load() != fb.Fallbacks() {
		t.Fatalf("OnFallback %d, fallbacks %d", reported.Load(), fb.Fallbacks())
	}

	// After the cool-down the primary is tried again; still down: a new cool-down,
	// logged once more.
	clk.Advance(3 * time.Second)
	claimEnd("f")
	if primary.claims.Load() != 2 || logs.count(fallbackMsg) != 2 {
		t.Fatalf("after the cool-down: primary claims %d, logged %d", primary.claims.Load(), logs.count(fallbackMsg))
	}
	claimEnd("g")
	if primary.claims.Load() != 2 {
		t.Fatalf("the failed retry did not start a new cool-down: primary claims %d", primary.claims.Load())
	}

	// Back up: after the next cool-down the primary answers and the breaker closes.
	primary.down.Store(false)
	clk.Advance(11 * time.Second)
	before := fb.Fallbacks()
	l := claimEnd("h")
	if primary.claims.Load() != 3 || primary.completes.Load() != 1 || l.Token < 1000 || fb.Fallbacks() != before {
		t.Fatalf("primary back: claims %d, completes %d, token %d, fallbacks %d→%d", primary.claims.Load(), primary.completes.Load(), l.Token, before, fb.Fallbacks())
	}
	claimEnd("i")
	if primary.claims.Load() != 4 || logs.count("seamless.backfill.coordinator_recovered") != 1 {
		t.Fatalf("breaker still open after a good answer: primary claims %d, recovered logged %d", primary.claims.Load(), logs.count("seamless.backfill.coordinator_recovered"))
	}
}

// TestFallbackBreakerTimeout: a coordinator that accepts but never answers costs the
// call timeout once; claims within the cool-down do not reach it and return at once;
// after the cool-down it is asked again.
func TestFallbackBreakerTimeout(t *testing.T) {
	var hits atomic.Int64
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hung.Close()
	defer close(release)
	clk := clock.NewFake(t0)
	const timeout = 200 * time.Millisecond
	fb := seamless.NewFallbackCoordinator(leaseapi.NewClient(hung.URL, nil), seamless.NewMemCoordinator(nil), timeout, nil,
		seamless.FallbackOptions{Clock: clk}) // the default cool-down, 10 s
	ctx := context.Background()
	claim := func(key string) time.Duration {
		t.Helper()
		began := time.Now()
		l, err := fb.Claim(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("claim %s: %v", key, err)
		}
		d := time.Since(began)
		if err := fb.Complete(ctx, l); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := claim("a"); d < timeout || hits.Load() != 1 {
		t.Fatalf("first claim took %v with %d hits: want the timeout, one hit", d, hits.Load())
	}
	for _, key := range []string{"b", "c", "d"} {
		clk.Advance(3 * time.Second)
		if d := claim(key); d >= timeout {
			t.Fatalf("claim %s within the cool-down took %v: it waited for the coordinator", key, d)
		}
	}
	if hits.Load() != 1 || fb.Fallbacks() != 4 {
		t.Fatalf("within the cool-down: %d hits, %d fallbacks; want 1 and 4", hits.Load(), fb.Fallbacks())
	}
	clk.Advance(2 * time.Second)
	claim("e")
	if hits.Load() != 2 || fb.Fallbacks() != 5 {
		t.Fatalf("after the cool-down: %d hits, %d fallbacks; want 2 and 5", hits.Load(), fb.Fallbacks())
	}
}

// TestFallbackBreakerHalfOpen: once the cool-down is over, one claim probes the
// primary; claims meanwhile use the local guard instead of piling onto it.
func TestFallbackBreakerHalfOpen(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	primary := &stubPrimary{mem: seamless.NewMemCoordinator(nil), entered: make(chan struct{}, 8)}
	primary.down.Store(true)
	fb := seamless.NewFallbackCoordinator(primary, seamless.NewMemCoordinator(nil), 10*time.Second, nil, seamless.FallbackOptions{Clock: clk})
	if _, err := fb.Claim(ctx, "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	<-primary.entered
	primary.down.Store(false)
	gate := make(chan struct{})
	primary.gate.Store(&gate)
	clk.Advance(seamless.DefaultFallbackCooldown)
	probe := make(chan error, 1)
	go func() {
		l, err := fb.Claim(ctx, "b", time.Minute)
		if err == nil && l.Token < 1000 {
			err = errors.New("the probe's lease is not the primary's")
		}
		probe <- err
	}()
	<-primary.entered // the probe is at the primary
	l, err := fb.Claim(ctx, "c", time.Minute)
	if err != nil || l.Token >= 1000 || primary.claims.Load() != 2 {
		t.Fatalf("claim during the probe: %+v %v, primary claims %d; want the local guard's lease", l, err, primary.claims.Load())
	}
	close(gate)
	if err := <-probe; err != nil {
		t.Fatal(err)
	}
	primary.gate.Store(nil)
	if l, err := fb.Claim(ctx, "d", time.Minute); err != nil || l.Token < 1000 || primary.claims.Load() != 3 {
		t.Fatalf("claim after a good probe: %+v %v, primary claims %d", l, err, primary.claims.Load())
	}
}

// TestFallbackLeasesEndWhereGranted: whatever the breaker's state, Renew, Complete and
// Fail go to the side that granted the lease.
func TestFallbackLeasesEndWhereGranted(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	primary := &stubPrimary{mem: seamless.NewMemCoordinator(nil)}
	local := seamless.NewMemCoordinator(nil)
	fb := seamless.NewFallbackCoordinator(primary, local, time.Second, nil, seamless.FallbackOptions{Clock: clk})

	remote1, err := fb.Claim(ctx, "r1", time.Minute) // breaker closed: the primary's
	if err != nil || remote1.Token < 1000 {
		t.Fatalf("%+v %v", remote1, err)
	}
	remote2, _ := fb.Claim(ctx, "r2", time.Minute)
	primary.down.Store(true)
	if _, err := fb.Claim(ctx, "x", time.Minute); err != nil { // trips the breaker
		t.Fatal(err)
	}
	primary.down.Store(false) // back, but the breaker is open for 10 s
	local1, err := fb.Claim(ctx, "l1", time.Minute)
	if err != nil || local1.Token >= 1000 {
		t.Fatalf("claim with the breaker open: %+v %v", local1, err)
	}
	claims := primary.claims.Load()

	// The primary's leases still go to the primary while the breaker is open.
	if remote1, err = fb.Renew(ctx, remote1, time.Minute); err != nil || primary.renews.Load() != 1 {
		t.Fatalf("renew of the primary's lease: %v, primary renews %d", err, primary.renews.Load())
	}
	if err := fb.Complete(ctx, remote1); err != nil || primary.completes.Load() != 1 {
		t.Fatalf("complete of the primary's lease: %v, primary completes %d", err, primary.completes.Load())
	}
	if err := fb.Fail(ctx, remote2, "upstream 503"); err != nil || primary.fails.Load() != 1 {
		t.Fatalf("fail of the primary's lease: %v, primary fails %d", err, primary.fails.Load())
	}
	// The local guard's leases go to the local guard, even once the breaker closed.
	clk.Advance(11 * time.Second)
	if l, err := fb.Claim(ctx, "r3", time.Minute); err != nil || l.Token < 1000 {
		t.Fatalf("claim after the cool-down: %+v %v", l, err)
	}
	if local1, err = fb.Renew(ctx, local1, time.Minute); err != nil {
		t.Fatalf("renew of the local lease: %v", err)
	}
	if err := fb.Complete(ctx, local1); err != nil {
		t.Fatalf("complete of the local lease: %v", err)
	}
	if primary.renews.Load() != 1 || primary.completes.Load() != 1 || primary.claims.Load() != claims+1 {
		t.Fatalf("the local lease reached the primary: renews %d, completes %d", primary.renews.Load(), primary.completes.Load())
	}
	if held, _ := local.Inspect(ctx); len(held) != 1 || held[0].Key != "x" {
		t.Fatalf("local guard holds %v, want only x", held)
	}
}

// TestFallbackWithoutBreaker: a negative cool-down tries the primary on every call and
// logs every fallback.
func TestFallbackWithoutBreaker(t *testing.T) {
	ctx := context.Background()
	primary := &stubPrimary{mem: seamless.NewMemCoordinator(nil)}
	primary.down.Store(true)
	logs := &coordLogs{}
	fb := seamless.NewFallbackCoordinator(primary, seamless.NewMemCoordinator(nil), time.Second, slog.New(logs), seamless.FallbackOptions{Cooldown: -1})
	for _, key := range []string{"a", "b", "c"} {
		l, err := fb.Claim(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		fb.Complete(ctx, l)
	}
	if primary.claims.Load() != 3 || fb.Fallbacks() != 3 || logs.count(fallbackMsg) != 3 {
		t.Fatalf("primary claims %d, fallbacks %d, logged %d; want 3 each", primary.claims.Load(), fb.Fallbacks(), logs.count(fallbackMsg))
	}
}

// slowEnds grants leases at once but never answers Renew, Complete or Fail.
type slowEnds struct{ *seamless.MemCoordinator }

func (slowEnds) Renew(ctx context.Context, _ seamless.Lease, _ time.Duration) (seamless.Lease, error) {
	<-ctx.Done()
	return seamless.Lease{}, ctx.Err()
}

func (slowEnds) Complete(ctx context.Context, _ seamless.Lease) error {
	<-ctx.Done()
	return ctx.Err()
}

func (slowEnds) Fail(ctx context.Context, _ seamless.Lease, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestFallbackBoundsLeaseEnds: Renew, Complete and Fail of a lease the primary granted
// give up after the call timeout instead of blocking the worker.
func TestFallbackBoundsLeaseEnds(t *testing.T) {
	const timeout = 100 * time.Millisecond
	fb := seamless.NewFallbackCoordinator(slowEnds{seamless.NewMemCoordinator(nil)}, seamless.NewMemCoordinator(nil), timeout, nil)
	ctx := context.Background()
	for name, end := range map[string]func(seamless.Lease) error{
		"renew":    func(l seamless.Lease) error { _, err := fb.Renew(ctx, l, time.Minute); return err },
		"complete": func(l seamless.Lease) error { return fb.Complete(ctx, l) },
		"fail":     func(l seamless.Lease) error { return fb.Fail(ctx, l, "x") },
	} {
		l, err := fb.Claim(ctx, "k-"+name, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		done := make(chan error, 1)
		go func() { done <- end(l) }()
		select {
		case err := <-done:
			if err == nil || time.Since(began) < timeout {
				t.Fatalf("%s: %v after %v, want a timeout error after %v", name, err, time.Since(began), timeout)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s of a primary lease blocked past its timeout", name)
		}
	}
}
