// Package coordtest is the contract suite every seamless.Coordinator passes: the
// in-process MemCoordinator, the etcd coordinator (single node and multi-member
// clusters) and the HTTP lease API client all run the same tests, so a behaviour the
// backfill tier relies on is checked once and holds for every implementation.
//
// The contract, as the backfill tier and the lease API use it:
//
//   - Claim takes a free key and returns a lease whose token is larger than every
//     token the coordinator handed out before (fencing); a held key is ErrLeaseHeld,
//     never a transport error, and exactly one of many concurrent claimers wins.
//   - Renew keeps the lease (same token, later deadline); Complete and Fail end it and
//     free the key. Any of them with a token that is not the current one is
//     ErrLeaseLost and leaves the current lease untouched.
//   - A lease that is neither renewed nor ended expires (a stale claim): the key is
//     free again, never before the lease's deadline, and the late holder's Renew,
//     Complete and Fail are ErrLeaseLost.
//   - Wait returns when the key is free (at once if it is), whatever ended the lease,
//     and returns the context's error when the context ends first.
//   - Inspect lists exactly the held leases, with their tokens and deadlines.
//
// Run checks one view of a coordinator; RunPeers checks two views of one backend, as
// two processes of a cluster see it.
package coordtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

// TTL is the lease time the suite claims with when a lease must not expire during a
// test.
const TTL = 30 * time.Second

// ExpiryTTL is the lease time of the expiry tests. Implementations may round it up
// (etcd grants at least its minimum lease TTL, 2 s on default timings), never down.
const ExpiryTTL = time.Second

// expiryWait bounds how long the suite waits for an expired lease to be noticed.
const expiryWait = 30 * time.Second

// deadlineSlack is how much earlier than its advertised deadline a lease may be freed:
// the deadline is computed by the claimer's clock after the coordinator granted the
// lease, so it may run late by one round trip.
const deadlineSlack = 250 * time.Millisecond

// key returns the chunk key of the n-th aligned 900-bar chunk of a series whose node id
// holds the characters lease keys must escape.
func key(n int64) string {
	s := seamless.Series{NodeID: "ohlcv:test:BTC/USDT:1m", Interval: 60}
	return seamless.ChunkKey(s, grid.R(n*54000, (n+1)*54000))
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func claim(t *testing.T, c seamless.Coordinator, k string, ttl time.Duration) seamless.Lease {
	t.Helper()
	l, err := c.Claim(ctxT(t), k, ttl)
	if err != nil {
		t.Fatalf("Claim %s: %v", k, err)
	}
	if l.Key != k || l.Token == 0 {
		t.Fatalf("Claim %s = %+v: want the key and a non-zero token", k, l)
	}
	return l
}

func wantHeld(t *testing.T, c seamless.Coordinator, k string) {
	t.Helper()
	if l, err := c.Claim(ctxT(t), k, TTL); !errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("Claim of held key %s = %+v, %v; want ErrLeaseHeld", k, l, err)
	}
}

func wantLost(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("%s: %v; want ErrLeaseLost", what, err)
	}
}

func held(t *testing.T, c seamless.Coordinator) map[string]seamless.LeaseInfo {
	t.Helper()
	infos, err := c.Inspect(ctxT(t))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	out := map[string]seamless.LeaseInfo{}
	for _, i := range infos {
		out[i.Key] = i
	}
	return out
}

// waitFree waits (bounded) for k to be free and returns when it was noticed.
func waitFree(t *testing.T, c seamless.Coordinator, k string, within time.Duration) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := c.Wait(ctx, k); err != nil {
		t.Fatalf("Wait %s: %v", k, err)
	}
	return time.Now()
}

// Run runs the contract suite. newCoordinator returns a coordinator on a fresh, empty
// backend for the test it is given (a new etcd prefix, a new lease API server…); the
// backend must outlive the test.
func Run(t *testing.T, newCoordinator func(t *testing.T) seamless.Coordinator) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, c seamless.Coordinator)
	}{
		{"ClaimHeld", testClaimHeld},
		{"TokensGrow", testTokensGrow},
		{"Renew", testRenew},
		{"RenewExtendsPastClaimTTL", testRenewExtends},
		{"Complete", testComplete},
		{"Fail", testFail},
		{"WrongTokenLeavesLease", testWrongTokenLeavesLease},
		{"Wait", testWait},
		{"Inspect", testInspect},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ContextCancelled", testContextCancelled},
		{"Expiry", testExpiry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newCoordinator(t))
		})
	}
}

func testClaimHeld(t *testing.T, c seamless.Coordinator) {
	before := time.Now().Add(TTL).UnixMilli()
	l := claim(t, c, key(1), TTL)
	if l.LeaseUntilMS < before-deadlineSlack.Milliseconds() || l.LeaseUntilMS > time.Now().Add(TTL).UnixMilli()+deadlineSlack.Milliseconds() {
		t.Errorf("LeaseUntilMS %d: want now+ttl (%d)", l.LeaseUntilMS, before)
	}
	wantHeld(t, c, key(1))
	// Another chunk of the same series is a different key.
	other := claim(t, c, key(2), TTL)
	if other.Token == l.Token {
		t.Errorf("two leases share token %d", l.Token)
	}
}

func testTokensGrow(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	var last uint64
	for i := range 6 {
		k := key(int64(i % 2)) // the same keys again and again, and interleaved
		l := claim(t, c, k, TTL)
		if l.Token <= last {
			t.Fatalf("claim %d: token %d after %d; fencing tokens must only grow", i, l.Token, last)
		}
		last = l.Token
		end := c.Complete
		if i%3 == 2 {
			end = func(ctx context.Context, l seamless.Lease) error { return c.Fail(ctx, l, "test") }
		}
		if err := end(ctx, l); err != nil {
			t.Fatalf("ending claim %d: %v", i, err)
		}
	}
}

func testRenew(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	l := claim(t, c, key(1), 5*time.Second)
	r, err := c.Renew(ctx, l, TTL)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if r.Key != l.Key || r.Token != l.Token || r.LeaseUntilMS <= l.LeaseUntilMS {
		t.Fatalf("Renew %+v = %+v: want the same key and token and a later deadline", l, r)
	}
	wantHeld(t, c, key(1))
	// Operators read deadlines from Inspect (seamless leases list): a renewed lease
	// shows its new deadline, not the claim's.
	if i := held(t, c)[key(1)]; i.LeaseUntilMS < r.LeaseUntilMS-deadlineSlack.Milliseconds() {
		t.Errorf("after Renew Inspect shows deadline %d, want the renewed %d (the claim's was %d)", i.LeaseUntilMS, r.LeaseUntilMS, l.LeaseUntilMS)
	}
	if err := c.Complete(ctx, r); err != nil {
		t.Fatalf("Complete after Renew: %v", err)
	}
	_, err = c.Renew(ctx, r, TTL)
	wantLost(t, "Renew of a completed lease", err)
}

// testRenewExtends: Renew's ttl is the lease's new lifetime, also when it is longer
// than the claim's — the returned deadline is what the holder relies on.
func testRenewExtends(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	l := claim(t, c, key(1), ExpiryTTL)
	r, err := c.Renew(ctx, l, TTL)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	// Past the claim's lifetime (and etcd's minimum lease TTL), well before the renewed one.
	time.Sleep(time.Until(time.UnixMilli(l.LeaseUntilMS)) + 3*time.Second)
	if time.Now().UnixMilli() >= r.LeaseUntilMS {
		t.Fatalf("test too slow: renewed deadline passed")
	}
	wantHeld(t, c, key(1))
	if err := c.Complete(ctx, r); err != nil {
		t.Fatalf("Complete within the renewed lifetime: %v", err)
	}
}

func testComplete(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	l := claim(t, c, key(1), TTL)
	if err := c.Complete(ctx, l); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if _, ok := held(t, c)[key(1)]; ok {
		t.Fatalf("completed lease still listed by Inspect")
	}
	wantLost(t, "Complete twice", c.Complete(ctx, l))
	wantLost(t, "Fail after Complete", c.Fail(ctx, l, "late"))
	next := claim(t, c, key(1), TTL)
	if next.Token <= l.Token {
		t.Fatalf("re-claim token %d after %d", next.Token, l.Token)
	}
	// The old lease cannot end the new one.
	wantLost(t, "Complete of the old lease", c.Complete(ctx, l))
	wantHeld(t, c, key(1))
}

func testFail(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	l := claim(t, c, key(1), TTL)
	if err := c.Fail(ctx, l, "upstream 503"); err != nil {
		t.Fatalf("Fail: %v", err)
	}
	wantLost(t, "Fail twice", c.Fail(ctx, l, "again"))
	wantLost(t, "Complete after Fail", c.Complete(ctx, l))
	// A failed chunk is retried: the key is free for the next claimer.
	if next := claim(t, c, key(1), TTL); next.Token <= l.Token {
		t.Fatalf("re-claim token %d after %d", next.Token, l.Token)
	}
}

// testWrongTokenLeavesLease: a late or confused caller (a holder whose lease expired, a
// client sending the wrong token) gets ErrLeaseLost and cannot end, or shorten, the
// current holder's lease.
func testWrongTokenLeavesLease(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	l := claim(t, c, key(1), TTL)
	wrong := []uint64{l.Token + 1000}
	if l.Token > 1 {
		wrong = append(wrong, l.Token-1) // 0 is "no token", a malformed request
	}
	for _, tok := range wrong {
		bad := seamless.Lease{Key: l.Key, Token: tok, LeaseUntilMS: l.LeaseUntilMS}
		wantLost(t, fmt.Sprintf("Complete with token %d (held: %d)", tok, l.Token), c.Complete(ctx, bad))
		wantLost(t, fmt.Sprintf("Fail with token %d (held: %d)", tok, l.Token), c.Fail(ctx, bad, "wrong token"))
		_, err := c.Renew(ctx, bad, TTL)
		wantLost(t, fmt.Sprintf("Renew with token %d (held: %d)", tok, l.Token), err)
		wantHeld(t, c, key(1))
	}
	if info, ok := held(t, c)[key(1)]; !ok || info.Token != l.Token {
		t.Fatalf("after wrong-token calls Inspect shows %+v (listed %v); want token %d", info, ok, l.Token)
	}
	if _, err := c.Renew(ctx, l, TTL); err != nil {
		t.Fatalf("the holder's Renew after wrong-token calls: %v", err)
	}
	if err := c.Complete(ctx, l); err != nil {
		t.Fatalf("the holder's Complete after wrong-token calls: %v", err)
	}
}

func testWait(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	// A free key: at once.
	waitFree(t, c, key(9), 5*time.Second)
	for _, end := range []string{"complete", "fail"} {
		l := claim(t, c, key(1), TTL)
		woken := make(chan error, 1)
		go func() { woken <- c.Wait(ctx, key(1)) }()
		select {
		case err := <-woken:
			t.Fatalf("Wait returned while the key was held: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		var err error
		if end == "complete" {
			err = c.Complete(ctx, l)
		} else {
			err = c.Fail(ctx, l, "test")
		}
		if err != nil {
			t.Fatalf("%s: %v", end, err)
		}
		select {
		case err := <-woken:
			if err != nil {
				t.Fatalf("Wait after %s: %v", end, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Wait not woken by %s", end)
		}
	}
}

func testInspect(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	if got := held(t, c); len(got) != 0 {
		t.Fatalf("fresh coordinator holds %v", got)
	}
	a, b := claim(t, c, key(1), TTL), claim(t, c, key(2), TTL)
	got := held(t, c)
	if len(got) != 2 {
		t.Fatalf("Inspect lists %d leases, want 2: %v", len(got), got)
	}
	for _, l := range []seamless.Lease{a, b} {
		i := got[l.Key]
		if i.Token != l.Token || i.LeaseUntilMS < l.LeaseUntilMS-deadlineSlack.Milliseconds() {
			t.Errorf("Inspect shows %+v for lease %+v", i, l)
		}
	}
	if err := c.Complete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := held(t, c); len(got) != 1 || got[key(2)].Token != b.Token {
		t.Fatalf("after Complete Inspect lists %v; want only %s", got, key(2))
	}
}

func testConcurrentClaims(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	const n = 16
	var won atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Claim(ctx, key(1), TTL)
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, seamless.ErrLeaseHeld):
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Claim: %v; want success or ErrLeaseHeld", err)
	}
	if won.Load() != 1 {
		t.Fatalf("%d of %d concurrent claims won; want exactly 1", won.Load(), n)
	}
}

func testContextCancelled(t *testing.T, c seamless.Coordinator) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Claim(done, key(1), TTL); err == nil || errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("Claim with a cancelled context: %v; want the context's error", err)
	}
	// The cancelled claim took nothing.
	l := claim(t, c, key(1), TTL)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := c.Wait(short, key(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a held key past its context's deadline: %v; want DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("Wait took %v to notice its context ended", d)
	}
	if err := c.Complete(ctxT(t), l); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

func testExpiry(t *testing.T, c seamless.Coordinator) {
	ctx := ctxT(t)
	dead := claim(t, c, key(1), ExpiryTTL)
	wantHeld(t, c, key(1))
	freed := waitFree(t, c, key(1), expiryWait)
	if early := time.UnixMilli(dead.LeaseUntilMS).Sub(freed); early > deadlineSlack {
		t.Fatalf("lease freed %v before its deadline", early)
	}
	if _, ok := held(t, c)[key(1)]; ok {
		t.Fatalf("expired lease still listed by Inspect")
	}
	next := claim(t, c, key(1), TTL)
	if next.Token <= dead.Token {
		t.Fatalf("token after a stale claim %d, before %d; want larger", next.Token, dead.Token)
	}
	_, err := c.Renew(ctx, dead, TTL)
	wantLost(t, "Renew of an expired lease", err)
	wantLost(t, "Complete of an expired lease", c.Complete(ctx, dead))
	wantLost(t, "Fail of an expired lease", c.Fail(ctx, dead, "late"))
	// The late holder's calls left the new lease alone.
	wantHeld(t, c, key(1))
	if err := c.Complete(ctx, next); err != nil {
		t.Fatalf("Complete of the new lease after the late holder's calls: %v", err)
	}
}

// RunPeers runs the cross-process part of the contract. newPeers returns two views of
// one fresh backend, as two processes of a cluster have (two etcd clients, two lease
// API clients); for an in-process coordinator both are the same value.
func RunPeers(t *testing.T, newPeers func(t *testing.T) (a, b seamless.Coordinator)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b seamless.Coordinator)
	}{
		{"HeldAcross", testPeersHeld},
		{"TokensGrowAcross", testPeersTokens},
		{"WaitWokenByPeer", testPeersWait},
		{"ConcurrentClaims", testPeersConcurrent},
		{"StaleClaimTakenOver", testPeersStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := newPeers(t)
			tc.fn(t, a, b)
		})
	}
}

func testPeersHeld(t *testing.T, a, b seamless.Coordinator) {
	l := claim(t, a, key(1), TTL)
	wantHeld(t, b, key(1))
	if i, ok := held(t, b)[key(1)]; !ok || i.Token != l.Token {
		t.Fatalf("peer's Inspect shows %+v (listed %v); want token %d", i, ok, l.Token)
	}
}

func testPeersTokens(t *testing.T, a, b seamless.Coordinator) {
	ctx := ctxT(t)
	var last uint64
	for i := range 6 {
		c := []seamless.Coordinator{a, b}[i%2]
		l := claim(t, c, key(1), TTL)
		if l.Token <= last {
			t.Fatalf("claim %d: token %d after %d; fencing tokens must grow across processes", i, l.Token, last)
		}
		last = l.Token
		if err := c.Complete(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
}

func testPeersWait(t *testing.T, a, b seamless.Coordinator) {
	ctx := ctxT(t)
	l := claim(t, a, key(1), TTL)
	woken := make(chan error, 1)
	go func() { woken <- b.Wait(ctx, key(1)) }()
	select {
	case err := <-woken:
		t.Fatalf("peer's Wait returned while the key was held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := a.Complete(ctx, l); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woken:
		if err != nil {
			t.Fatalf("peer's Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("peer's Wait not woken by Complete")
	}
	claim(t, b, key(1), TTL)
}

func testPeersConcurrent(t *testing.T, a, b seamless.Coordinator) {
	ctx := ctxT(t)
	const n = 16
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := []seamless.Coordinator{a, b}[i%2].Claim(ctx, key(1), TTL)
			if err == nil {
				won.Add(1)
			} else if !errors.Is(err, seamless.ErrLeaseHeld) {
				t.Errorf("concurrent Claim: %v", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d of %d concurrent claims from two processes won; want exactly 1", won.Load(), n)
	}
}

// testPeersStale: a holds a short lease and stops renewing (a crashed worker); b
// notices the expiry, takes the chunk over with a larger token, and a's late calls are
// rejected without harming b's lease.
func testPeersStale(t *testing.T, a, b seamless.Coordinator) {
	ctx := ctxT(t)
	dead := claim(t, a, key(1), ExpiryTTL)
	freed := waitFree(t, b, key(1), expiryWait)
	if early := time.UnixMilli(dead.LeaseUntilMS).Sub(freed); early > deadlineSlack {
		t.Fatalf("lease freed %v before its deadline", early)
	}
	next := claim(t, b, key(1), TTL)
	if next.Token <= dead.Token {
		t.Fatalf("take-over token %d, stale token %d; want larger", next.Token, dead.Token)
	}
	_, err := a.Renew(ctx, dead, TTL)
	wantLost(t, "the crashed holder's Renew", err)
	wantLost(t, "the crashed holder's Complete", a.Complete(ctx, dead))
	wantHeld(t, a, key(1))
	if err := b.Complete(ctx, next); err != nil {
		t.Fatalf("the new holder's Complete: %v", err)
	}
}
