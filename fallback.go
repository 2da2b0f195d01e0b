package seamless

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// FallbackCoordinator uses a primary (distributed) coordinator and, when it cannot be
// reached, the local in-process guard instead — loudly: every fallback is logged as
// seamless.backfill.coordinator_fallback and counted (Fallbacks), so degraded
// deduplication is visible. It never turns an unreachable coordinator into "held
// elsewhere", which would silently stop all backfill (the reference's bug).
type FallbackCoordinator struct {
	primary Coordinator
	local   *MemCoordinator
	timeout time.Duration
	log     *slog.Logger

	mu          sync.Mutex
	localTokens map[string]uint64 // keys claimed locally → token

	fallbacks atomic.Int64
	// OnFallback, if set, is called after each fallback (e.g. to bump a metric).
	OnFallback func(op string, err error)
}

// NewFallbackCoordinator wraps primary. Each primary call gets at most timeout (default
// 5 s) before it counts as unreachable.
func NewFallbackCoordinator(primary Coordinator, local *MemCoordinator, timeout time.Duration, log *slog.Logger) *FallbackCoordinator {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FallbackCoordinator{primary: primary, local: local, timeout: timeout, log: log, localTokens: map[string]uint64{}}
}

// Fallbacks is how many calls fell back to the local guard.
func (f *FallbackCoordinator) Fallbacks() int64 { return f.fallbacks.Load() }

// unreachable reports whether err means the primary did not answer (as opposed to a
// real answer such as "held" or "lost", or the caller giving up).
func unreachable(parent context.Context, err error) bool {
	return err != nil && parent.Err() == nil && !errors.Is(err, ErrLeaseHeld) && !errors.Is(err, ErrLeaseLost)
}

func (f *FallbackCoordinator) fellBack(op, key string, err error) {
	f.fallbacks.Add(1)
	f.log.Warn("seamless.backfill.coordinator_fallback", "op", op, "lease_key", key, "err", err)
	if f.OnFallback != nil {
		f.OnFallback(op, err)
	}
}

func (f *FallbackCoordinator) isLocal(l Lease) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, ok := f.localTokens[l.Key]
	return ok && tok == l.Token
}

// Claim implements Coordinator.
func (f *FallbackCoordinator) Claim(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	cctx, cancel := context.WithTimeout(ctx, f.timeout)
	l, err := f.primary.Claim(cctx, key, ttl)
	cancel()
	if !unreachable(ctx, err) {
		return l, err
	}
	f.fellBack("claim", key, err)
	l, err = f.local.Claim(ctx, key, ttl)
	if err == nil {
		f.mu.Lock()
		f.localTokens[key] = l.Token
		f.mu.Unlock()
	}
	return l, err
}

// Renew implements Coordinator.
func (f *FallbackCoordinator) Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if f.isLocal(l) {
		return f.local.Renew(ctx, l, ttl)
	}
	return f.primary.Renew(ctx, l, ttl)
}

func (f *FallbackCoordinator) end(ctx context.Context, l Lease, do func(Coordinator) error) error {
	if f.isLocal(l) {
		f.mu.Lock()
		delete(f.localTokens, l.Key)
		f.mu.Unlock()
		return do(f.local)
	}
	return do(f.primary)
}

// Complete implements Coordinator.
func (f *FallbackCoordinator) Complete(ctx context.Context, l Lease) error {
	return f.end(ctx, l, func(c Coordinator) error { return c.Complete(ctx, l) })
}

// Fail implements Coordinator.
func (f *FallbackCoordinator) Fail(ctx context.Context, l Lease, reason string) error {
	return f.end(ctx, l, func(c Coordinator) error { return c.Fail(ctx, l, reason) })
}

// Wait implements Coordinator: it waits on the local guard for keys held locally and
// on the primary otherwise, falling back when the primary does not answer.
func (f *FallbackCoordinator) Wait(ctx context.Context, key string) error {
	f.mu.Lock()
	_, local := f.localTokens[key]
	f.mu.Unlock()
	if local {
		return f.local.Wait(ctx, key)
	}
	err := f.primary.Wait(ctx, key)
	if unreachable(ctx, err) {
		f.fellBack("wait", key, err)
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
