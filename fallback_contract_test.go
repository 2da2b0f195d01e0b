package seamless_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/coordinator/coordtest"
)

// TestFallbackCoordinatorContract runs the Coordinator contract suite on a
// FallbackCoordinator in both of its steady states: every call answered by a healthy
// primary, and every call falling back to the local guard because the primary never
// answers. The backfill tier cannot tell which one it has, so both must keep the
// contract. (The transitions between them are TestFallback* in
// coordinator_fallback_test.go.)
func TestFallbackCoordinatorContract(t *testing.T) {
	t.Parallel()
	t.Run("PrimaryUp", func(t *testing.T) {
		coordtest.Run(t, func(*testing.T) seamless.Coordinator {
			return seamless.NewFallbackCoordinator(seamless.NewMemCoordinator(nil), seamless.NewMemCoordinator(nil), time.Second, nil)
		})
		// Two processes of a cluster: one primary, a local guard each.
		coordtest.RunPeers(t, func(*testing.T) (a, b seamless.Coordinator) {
			primary := seamless.NewMemCoordinator(nil)
			return seamless.NewFallbackCoordinator(primary, seamless.NewMemCoordinator(nil), time.Second, nil),
				seamless.NewFallbackCoordinator(primary, seamless.NewMemCoordinator(nil), time.Second, nil)
		})
	})
	t.Run("PrimaryDown", func(t *testing.T) {
		// No RunPeers: without the primary, two processes cannot see each other's
		// leases; that degraded deduplication is what the fallback logs and counts.
		coordtest.Run(t, func(*testing.T) seamless.Coordinator {
			return seamless.NewFallbackCoordinator(newClaimsDown(), seamless.NewMemCoordinator(nil), time.Second, nil)
		})
	})
}

// claimsDown is a distributed coordinator that cannot be reached for Claim and Wait,
// the calls that route work to the local guard: they fail as a refused connection
// would, without waiting. It answers the other calls as a coordinator that granted
// nothing: Inspect lists no lease, and Renew, Complete and Fail are ErrLeaseLost. Those
// need a reachable primary in the suite's clauses (a token nobody granted is lost;
// Inspect lists what is held), and FallbackCoordinator rightly returns the primary's
// error for them when it is down: a lease it did not grant locally may be the
// primary's, and Provider.Ready reports the coordinator down through Inspect.
type claimsDown struct{ granted *seamless.MemCoordinator }

func newClaimsDown() claimsDown { return claimsDown{seamless.NewMemCoordinator(nil)} }

var errPrimaryDown = errors.New("dial tcp 10.0.0.1:2379: connect: connection refused")

func (claimsDown) Claim(context.Context, string, time.Duration) (seamless.Lease, error) {
	return seamless.Lease{}, errPrimaryDown
}

func (claimsDown) Wait(context.Context, string) error { return errPrimaryDown }

func (c claimsDown) Renew(ctx context.Context, l seamless.Lease, ttl time.Duration) (seamless.Lease, error) {
	return c.granted.Renew(ctx, l, ttl)
}

func (c claimsDown) Complete(ctx context.Context, l seamless.Lease) error {
	return c.granted.Complete(ctx, l)
}

func (c claimsDown) Fail(ctx context.Context, l seamless.Lease, reason string) error {
	return c.granted.Fail(ctx, l, reason)
}

func (c claimsDown) Inspect(ctx context.Context) ([]seamless.LeaseInfo, error) {
	return c.granted.Inspect(ctx)
}

// switchable is a primary that is down (every call refused) while down is set, else a
// MemCoordinator. Its tokens count from 1 like the local guard's, as a fresh etcd's
// revisions do, so the two sequences meet.
type switchable struct {
	mem  *seamless.MemCoordinator
	down atomic.Bool
}

func (s *switchable) Claim(ctx context.Context, key string, ttl time.Duration) (seamless.Lease, error) {
	if s.down.Load() {
		return seamless.Lease{}, errPrimaryDown
	}
	return s.mem.Claim(ctx, key, ttl)
}

func (s *switchable) Renew(ctx context.Context, l seamless.Lease, ttl time.Duration) (seamless.Lease, error) {
	if s.down.Load() {
		return seamless.Lease{}, errPrimaryDown
	}
	return s.mem.Renew(ctx, l, ttl)
}

func (s *switchable) Complete(ctx context.Context, l seamless.Lease) error {
	if s.down.Load() {
		return errPrimaryDown
	}
	return s.mem.Complete(ctx, l)
}

func (s *switchable) Fail(ctx context.Context, l seamless.Lease, reason string) error {
	if s.down.Load() {
		return errPrimaryDown
	}
	return s.mem.Fail(ctx, l, reason)
}

func (s *switchable) Wait(ctx context.Context, key string) error {
	if s.down.Load() {
		return errPrimaryDown
	}
	return s.mem.Wait(ctx, key)
}

func (s *switchable) Inspect(ctx context.Context) ([]seamless.LeaseInfo, error) {
	if s.down.Load() {
		return nil, errPrimaryDown
	}
	return s.mem.Inspect(ctx)
}

// TestFallbackLateCallsOfLocalLeases: Renew, Complete and Fail of a lease the local
// guard granted reach the local guard after the lease ended or expired, so the late
// holder gets ErrLeaseLost. Once the lease was no longer the key's current local one
// they used to go to the primary, and fail as unreachable while it was down. A lease
// the primary grants later with the same key and token (the sequences are independent)
// is the primary's.
func TestFallbackLateCallsOfLocalLeases(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	primary := &switchable{mem: seamless.NewMemCoordinator(clk)}
	primary.down.Store(true)
	fb := seamless.NewFallbackCoordinator(primary, seamless.NewMemCoordinator(clk), time.Second, nil, seamless.FallbackOptions{Cooldown: -1})
	lateCalls := func(what string, l seamless.Lease) {
		t.Helper()
		if _, err := fb.Renew(ctx, l, time.Minute); !errors.Is(err, seamless.ErrLeaseLost) {
			t.Errorf("Renew of %s: %v; want ErrLeaseLost", what, err)
		}
		if err := fb.Complete(ctx, l); !errors.Is(err, seamless.ErrLeaseLost) {
			t.Errorf("Complete of %s: %v; want ErrLeaseLost", what, err)
		}
		if err := fb.Fail(ctx, l, "late"); !errors.Is(err, seamless.ErrLeaseLost) {
			t.Errorf("Fail of %s: %v; want ErrLeaseLost", what, err)
		}
	}
	claim := func(key string) seamless.Lease {
		t.Helper()
		l, err := fb.Claim(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Claim %s: %v", key, err)
		}
		return l
	}

	ended := claim("a")
	if err := fb.Complete(ctx, ended); err != nil {
		t.Fatal(err)
	}
	lateCalls("a completed local lease", ended)

	expired := claim("b")
	clk.Advance(2 * time.Minute)
	current := claim("b") // the local guard again: the primary is still down
	lateCalls("an expired local lease", expired)
	if err := fb.Complete(ctx, current); err != nil {
		t.Fatalf("Complete of the current local lease after the late calls: %v", err)
	}

	// The primary is back and grants "a" with the token the local guard gave it.
	primary.down.Store(false)
	remote := claim("a")
	if remote.Token != ended.Token {
		t.Fatalf("primary token %d, local token %d: the test needs them equal", remote.Token, ended.Token)
	}
	if _, err := fb.Renew(ctx, remote, time.Minute); err != nil {
		t.Fatalf("Renew of the primary's lease: %v", err)
	}
	if err := fb.Complete(ctx, remote); err != nil {
		t.Fatalf("Complete of the primary's lease: %v", err)
	}
	if held, _ := primary.mem.Inspect(ctx); len(held) != 0 {
		t.Fatalf("the primary still holds %+v", held)
	}
}
