package seamless_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
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
