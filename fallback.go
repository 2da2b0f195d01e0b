package seamless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seamless-data/seamless/clock"
)

// FallbackCoordinator uses a primary (distributed) coordinator and, when it cannot be
// reached, the local in-process guard instead — loudly: fallbacks are logged as
// seamless.backfill.coordinator_fallback and each is counted (Fallbacks, OnFallback),
// so degraded deduplication is visible. It never turns an unreachable coordinator into
// "held elsewhere", which would silently stop all backfill (the reference's bug).
//
// A circuit breaker keeps a down coordinator from costing every claim the full call
// timeout: once a primary call fails as unreachable, Claim and Wait skip the primary
// for a cool-down (FallbackOptions.Cooldown, default 10 s) and go straight to the local
// guard — each such call still counted, the log written once per cool-down. After the
// cool-down one Claim tries the primary again (the others keep using the local guard
// while it does); its answer closes the breaker, its failure starts a new cool-down.
// The breaker never reroutes Renew, Complete or Fail: they go to the side that granted
// the lease, whatever the breaker's state.
type FallbackCoordinator struct {
	primary  Coordinator
	local    *MemCoordinator
	timeout  time.Duration
	cooldown time.Duration // <= 0: no breaker
	clock    clock.Clock
	log      *slog.Logger

	mu          sync.Mutex
	localTokens map[string]uint64 // keys held locally → token
	// localGranted is every lease the local guard granted, kept after it ends: a late
	// Renew, Complete or Fail of one (ended already, or expired and claimed again) must
	// reach the local guard, which answers ErrLeaseLost; sent to the primary it failed
	// as unreachable while the primary was down. One entry per local claim, and local
	// claims are made only while the primary is down. The two token sequences are
	// independent, so the primary may grant a key with a token the local guard gave it
	// before: that grant removes the entry, as the primary's live lease must keep
	// reaching the primary.
	localGranted map[localGrant]struct{}
	// The breaker: tripped after a primary call failed as unreachable, open (the
	// primary skipped) until openUntil, then half-open: one probe Claim at a time.
	tripped   bool
	openUntil time.Time
	probing   bool
	lastErr   error

	fallbacks atomic.Int64
	// OnFallback, if set, is called after each fallback (e.g. to bump a metric),
	// including calls that skipped the primary during a cool-down.
	OnFallback func(op string, err error)
}

// DefaultFallbackCooldown is how long a FallbackCoordinator skips an unreachable
// primary before trying it again, unless FallbackOptions.Cooldown says otherwise.
const DefaultFallbackCooldown = 10 * time.Second

// FallbackOptions tune a FallbackCoordinator. Zero fields take the defaults.
type FallbackOptions struct {
	// Cooldown is how long Claim and Wait skip the primary after a call to it failed as
	// unreachable (default DefaultFallbackCooldown; negative: never skip, every call
	// tries the primary and every fallback is logged).
	Cooldown time.Duration
	// Clock measures the cool-down (default the wall clock). Call timeouts are real
	// time whatever the clock.
	Clock clock.Clock
}

// NewFallbackCoordinator wraps primary. Each primary call gets at most timeout (default
// 5 s) before it counts as unreachable. At most one opts applies.
func NewFallbackCoordinator(primary Coordinator, local *MemCoordinator, timeout time.Duration, log *slog.Logger, opts ...FallbackOptions) *FallbackCoordinator {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var o FallbackOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Cooldown == 0 {
		o.Cooldown = DefaultFallbackCooldown
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return &FallbackCoordinator{primary: primary, local: local, timeout: timeout, cooldown: o.Cooldown, clock: o.Clock, log: log,
		localTokens: map[string]uint64{}, localGranted: map[localGrant]struct{}{}}
}

// localGrant names a lease the local guard granted.
type localGrant struct {
	key   string
	token uint64
}

// Fallbacks is how many calls fell back to the local guard.
func (f *FallbackCoordinator) Fallbacks() int64 { return f.fallbacks.Load() }

// unreachable reports whether err means the primary did not answer (as opposed to a
// real answer such as "held" or "lost", or the caller giving up).
func unreachable(parent context.Context, err error) bool {
	return err != nil && parent.Err() == nil && !errors.Is(err, ErrLeaseHeld) && !errors.Is(err, ErrLeaseLost)
}

// admit says whether a Claim may call the primary: yes while the breaker is closed; no
// while it is open, or half-open with a probe in flight (skip wraps the error that
// opened it); once the cool-down is over, yes for one caller, the probe.
func (f *FallbackCoordinator) admit() (use, probe bool, skip error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.tripped {
		return true, false, nil
	}
	if f.probing || f.clock.Now().Before(f.openUntil) {
		return false, false, fmt.Errorf("coordinator skipped until %s (cool-down) after: %w", f.openUntil.UTC().Format(time.RFC3339), f.lastErr)
	}
	f.probing = true
	return true, true, nil
}

// settle records the outcome of a primary call in the breaker and reports whether the
// call must fall back to the local guard (err means the primary did not answer). A
// fallback is counted; it is logged when it trips the breaker (once per cool-down), or
// every time without a breaker.
func (f *FallbackCoordinator) settle(ctx context.Context, op, key string, err error, probe bool) bool {
	down := unreachable(ctx, err)
	if f.cooldown <= 0 {
		if down {
			f.fellBack(op, key, err, true)
		}
		return down
	}
	f.mu.Lock()
	if probe {
		f.probing = false
	}
	var trip, recovered bool
	switch {
	case down:
		// Log when this failure opens the breaker: it was closed, or this was the
		// probe. Calls in flight when it opened are counted, not logged again.
		trip = !f.tripped || probe
		f.tripped, f.lastErr = true, err
		f.openUntil = f.clock.Now().Add(f.cooldown)
	case err == nil || errors.Is(err, ErrLeaseHeld) || errors.Is(err, ErrLeaseLost):
		// A real answer: the primary is back.
		recovered = f.tripped
		f.tripped, f.lastErr = false, nil
	}
	// Otherwise the caller gave up: nothing learned (a probe's slot is freed above).
	f.mu.Unlock()
	if recovered {
		f.log.Info("seamless.backfill.coordinator_recovered", "op", op, "lease_key", key)
	}
	if down {
		f.fellBack(op, key, err, trip)
	}
	return down
}

// fellBack counts a fallback, logging it when loud.
func (f *FallbackCoordinator) fellBack(op, key string, err error, loud bool) {
	f.fallbacks.Add(1)
	if loud {
		args := []any{"op", op, "lease_key", key, "err", err}
		if f.cooldown > 0 {
			args = append(args, "cooldown", f.cooldown.String())
		}
		f.log.Warn("seamless.backfill.coordinator_fallback", args...)
	}
	if f.OnFallback != nil {
		f.OnFallback(op, err)
	}
}

// isLocal reports whether the local guard granted l (see localGranted).
func (f *FallbackCoordinator) isLocal(l Lease) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.localGranted[localGrant{l.Key, l.Token}]
	return ok
}

// Claim implements Coordinator.
func (f *FallbackCoordinator) Claim(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	use, probe, skip := f.admit()
	if use {
		cctx, cancel := context.WithTimeout(ctx, f.timeout)
		l, err := f.primary.Claim(cctx, key, ttl)
		cancel()
		if !f.settle(ctx, "claim", key, err, probe) {
			if err == nil {
				f.mu.Lock()
				delete(f.localGranted, localGrant{key, l.Token})
				f.mu.Unlock()
			}
			return l, err
		}
	} else {
		f.fellBack("claim", key, skip, false)
	}
	l, err := f.local.Claim(ctx, key, ttl)
	if err == nil {
		f.mu.Lock()
		f.localTokens[key] = l.Token
		f.localGranted[localGrant{key, l.Token}] = struct{}{}
		f.mu.Unlock()
	}
	return l, err
}

// Renew implements Coordinator.
// A primary-granted lease's Renew, Complete and Fail are bounded by the call timeout
// too: a renewal that cannot be made in time loses the lease (its work stops, as when
// the primary says so), and an end that cannot be recorded leaves the lease to expire
// by its TTL — neither blocks the worker for the HTTP client's much longer timeout.
func (f *FallbackCoordinator) Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if f.isLocal(l) {
		return f.local.Renew(ctx, l, ttl)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return f.primary.Renew(ctx, l, ttl)
}

func (f *FallbackCoordinator) end(ctx context.Context, l Lease, do func(context.Context, Coordinator) error) error {
	if f.isLocal(l) {
		f.mu.Lock()
		// A late end of an older local lease leaves the current holder's entry.
		if f.localTokens[l.Key] == l.Token {
			delete(f.localTokens, l.Key)
		}
		f.mu.Unlock()
		return do(ctx, f.local)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return do(ctx, f.primary)
}

// Complete implements Coordinator.
func (f *FallbackCoordinator) Complete(ctx context.Context, l Lease) error {
	return f.end(ctx, l, func(ctx context.Context, c Coordinator) error { return c.Complete(ctx, l) })
}

// Fail implements Coordinator.
func (f *FallbackCoordinator) Fail(ctx context.Context, l Lease, reason string) error {
	return f.end(ctx, l, func(ctx context.Context, c Coordinator) error { return c.Fail(ctx, l, reason) })
}

// Wait implements Coordinator: it waits on the local guard for keys held locally and
// on the primary otherwise, falling back when the primary does not answer, or at once
// while the breaker is tripped (a Wait, which may block long, is never the probe).
func (f *FallbackCoordinator) Wait(ctx context.Context, key string) error {
	f.mu.Lock()
	_, local := f.localTokens[key]
	tripped, lastErr := f.tripped && f.cooldown > 0, f.lastErr
	f.mu.Unlock()
	if local {
		return f.local.Wait(ctx, key)
	}
	if tripped {
		f.fellBack("wait", key, fmt.Errorf("coordinator skipped (cool-down) after: %w", lastErr), false)
		return f.local.Wait(ctx, key)
	}
	err := f.primary.Wait(ctx, key)
	if f.settle(ctx, "wait", key, err, false) {
		return f.local.Wait(ctx, key)
	}
	return err
}

// Inspect implements Coordinator: primary leases plus those held by the local guard.
func (f *FallbackCoordinator) Inspect(ctx context.Context) ([]LeaseInfo, error) {
	local, _ := f.local.Inspect(ctx)
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	remote, err := f.primary.Inspect(cctx)
	if err != nil {
		return local, err
	}
	return append(remote, local...), nil
}

// Release frees a held lease on the coordinator that holds it (operator action).
func (f *FallbackCoordinator) Release(ctx context.Context, key string) error {
	f.mu.Lock()
	_, local := f.localTokens[key]
	delete(f.localTokens, key)
	f.mu.Unlock()
	if local {
		return f.local.Release(ctx, key)
	}
	r, ok := f.primary.(interface {
		Release(context.Context, string) error
	})
	if !ok {
		return errors.New("release: the coordinator does not support forced release")
	}
	return r.Release(ctx, key)
}

// FailedChunks implements FailureLister: the primary's recorded failures (when it
// records them) and the local guard's.
func (f *FallbackCoordinator) FailedChunks(ctx context.Context) ([]ChunkFailure, error) {
	out, _ := f.local.FailedChunks(ctx)
	if fl, ok := f.primary.(FailureLister); ok {
		remote, err := fl.FailedChunks(ctx)
		if err != nil {
			return out, err
		}
		out = append(remote, out...)
	}
	return out, nil
}

// ClearFailure implements FailureLister.
func (f *FallbackCoordinator) ClearFailure(ctx context.Context, key string) error {
	f.local.ClearFailure(ctx, key)
	if fl, ok := f.primary.(FailureLister); ok {
		return fl.ClearFailure(ctx, key)
	}
	return nil
}
