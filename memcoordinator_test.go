package seamless_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
)

func TestMemCoordinatorLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	c := seamless.NewMemCoordinator(clk)
	l1, err := c.Claim(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Claim(ctx, "k", time.Minute); !errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("second claim: %v", err)
	}
	clk.Advance(50 * time.Second)
	l1, err = c.Renew(ctx, l1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(50 * time.Second) // still held thanks to the renewal
	if _, err := c.Claim(ctx, "k", time.Minute); !errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("claim after renewal: %v", err)
	}
	if err := c.Complete(ctx, l1); err != nil {
		t.Fatal(err)
	}
	if err := c.Complete(ctx, l1); !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("double complete: %v", err)
	}
	l2, err := c.Claim(ctx, "k", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l2.Token <= l1.Token {
		t.Fatalf("fencing token did not grow: %d then %d", l1.Token, l2.Token)
	}
	if err := c.Fail(ctx, l2, "upstream 503"); err != nil {
		t.Fatal(err)
	}
	if c.Failures()["k"] != "upstream 503" {
		t.Fatalf("failure not recorded: %v", c.Failures())
	}
}

func TestMemCoordinatorStaleClaim(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	c := seamless.NewMemCoordinator(clk)
	dead, err := c.Claim(ctx, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait(ctx, "k") }()
	clk.Advance(2 * time.Second) // the holder vanished without Complete or Fail
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not notice the expired lease")
	}
	l, err := c.Claim(ctx, "k", time.Second)
	if err != nil {
		t.Fatalf("stale lease not re-claimable: %v", err)
	}
	if c.StaleClaims() != 1 {
		t.Fatalf("stale claims = %d", c.StaleClaims())
	}
	if _, err := c.Renew(ctx, dead, time.Second); !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("renewing a stale lease: %v", err)
	}
	if err := c.Complete(ctx, dead); !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("completing a stale lease: %v", err)
	}
	if infos, _ := c.Inspect(ctx); len(infos) != 1 || infos[0].Token != l.Token {
		t.Fatalf("Inspect = %v", infos)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Wait(cctx, "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with cancelled ctx: %v", err)
	}
}

// TestMemCoordinatorStaleClaimHook: a stale claim (an expired lease whose holder
// vanished) is reported once to the hook set with SetOnStaleClaim, as etcdcoord reports
// its own, and the hook runs outside the coordinator's lock.
func TestMemCoordinatorStaleClaimHook(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	c := seamless.NewMemCoordinator(clk)
	var calls int
	c.SetOnStaleClaim(func() {
		calls++
		c.StaleClaims() // would deadlock under the lock
	})
	l, err := c.Claim(ctx, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Complete(ctx, l); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatalf("a completed lease was reported stale %d times", calls)
	}
	if _, err := c.Claim(ctx, "k", time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second) // the holder vanished without Complete or Fail
	if _, err := c.Claim(ctx, "k", time.Minute); err != nil {
		t.Fatalf("stale lease not re-claimable: %v", err)
	}
	if _, err := c.Claim(ctx, "k", time.Minute); !errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("claim of the new lease: %v", err)
	}
	c.Inspect(ctx)
	c.Wait(ctx, "other")
	if calls != 1 || c.StaleClaims() != 1 {
		t.Fatalf("hook called %d times, StaleClaims %d; want 1 and 1", calls, c.StaleClaims())
	}
	c.SetOnStaleClaim(nil)
	c.Claim(ctx, "j", time.Second)
	clk.Advance(2 * time.Second)
	c.Inspect(ctx)
	if calls != 1 || c.StaleClaims() != 2 {
		t.Fatalf("after removing the hook: called %d times, StaleClaims %d", calls, c.StaleClaims())
	}
}
