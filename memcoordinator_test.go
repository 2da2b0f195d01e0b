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
