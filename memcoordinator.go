package seamless

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/seamless-data/seamless/clock"
)

// MemCoordinator is the in-process Coordinator: single-flight per key within one
// process. It is the embedded default and the local guard a distributed coordinator
// falls back to.
type MemCoordinator struct {
	clock clock.Clock

	mu     sync.Mutex
	token  uint64
	held   map[string]*memLease
	failed map[string]string
	stale  int
	// unreported counts stale claims found under mu whose onStale call waits for mu to
	// be released (unlock makes them), so the hook never runs under the lock.
	unreported int
	onStale    func()
}

type memLease struct {
	lease Lease
	done  chan struct{} // closed when the lease ends by Complete, Fail or expiry
}

// NewMemCoordinator returns an empty in-memory coordinator; a nil clock means the wall
// clock.
func NewMemCoordinator(c clock.Clock) *MemCoordinator {
	if c == nil {
		c = clock.Real{}
	}
	return &MemCoordinator{clock: c, held: map[string]*memLease{}, failed: map[string]string{}}
}

// LeaseTTL implements LeaseTTLPolicy: an in-process lease only guards this process's
// waiters, so it lives for BackfillConfig.SingleFlightTTL.
func (m *MemCoordinator) LeaseTTL(cfg BackfillConfig) time.Duration { return cfg.SingleFlightTTL }

// SetOnStaleClaim sets fn to be called once for each stale claim found (a lease that
// expired without Complete or Fail), e.g. to count it in
// seamless_backfill_stale_claims_total like etcdcoord.Options.OnStaleClaim. fn runs
// outside the coordinator's lock; nil removes it.
func (m *MemCoordinator) SetOnStaleClaim(fn func()) {
	m.mu.Lock()
	defer m.unlock()
	m.onStale = fn
}

// unlock releases m.mu, then reports the stale claims found while it was held.
func (m *MemCoordinator) unlock() {
	n, fn := m.unreported, m.onStale
	m.unreported = 0
	m.mu.Unlock()
	if fn == nil {
		return
	}
	for range n {
		fn()
	}
}

func (m *MemCoordinator) nowMS() int64 { return m.clock.Now().UnixMilli() }

// current returns the live lease on key, expiring a stale one. m.mu must be held.
func (m *MemCoordinator) current(key string) *memLease {
	l, ok := m.held[key]
	if !ok {
		return nil
	}
	if m.nowMS() >= l.lease.LeaseUntilMS {
		// The holder vanished without Complete or Fail: a stale claim. Free the key so
		// the next claimer re-processes the chunk, and wake the waiters.
		m.stale++
		m.unreported++
		close(l.done)
		delete(m.held, key)
		return nil
	}
	return l
}

// Claim implements Coordinator.
func (m *MemCoordinator) Claim(ctx context.Context, key string, ttl time.Duration) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("claim %s: ttl must be positive, got %v", key, ttl)
	}
	m.mu.Lock()
	defer m.unlock()
	if l := m.current(key); l != nil {
		return Lease{}, fmt.Errorf("claim %s: %w (token %d)", key, ErrLeaseHeld, l.lease.Token)
	}
	m.token++
	l := &memLease{lease: Lease{Key: key, Token: m.token, LeaseUntilMS: m.nowMS() + ttl.Milliseconds()}, done: make(chan struct{})}
	m.held[key] = l
	return l.lease, nil
}

// Renew implements Coordinator.
func (m *MemCoordinator) Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	m.mu.Lock()
	defer m.unlock()
	cur := m.current(l.Key)
	if cur == nil || cur.lease.Token != l.Token {
		return Lease{}, fmt.Errorf("renew %s token %d: %w", l.Key, l.Token, ErrLeaseLost)
	}
	cur.lease.LeaseUntilMS = m.nowMS() + ttl.Milliseconds()
	return cur.lease, nil
}

func (m *MemCoordinator) end(l Lease, reason string, failed bool) error {
	m.mu.Lock()
	defer m.unlock()
	cur := m.current(l.Key)
	if cur == nil || cur.lease.Token != l.Token {
		return fmt.Errorf("end lease %s token %d: %w", l.Key, l.Token, ErrLeaseLost)
	}
	close(cur.done)
	delete(m.held, l.Key)
	if failed {
		m.failed[l.Key] = reason
	} else {
		delete(m.failed, l.Key)
	}
	return nil
}

// Complete implements Coordinator.
func (m *MemCoordinator) Complete(_ context.Context, l Lease) error { return m.end(l, "", false) }

// Fail implements Coordinator.
func (m *MemCoordinator) Fail(_ context.Context, l Lease, reason string) error {
	return m.end(l, reason, true)
}

// Wait implements Coordinator.
func (m *MemCoordinator) Wait(ctx context.Context, key string) error {
	for {
		m.mu.Lock()
		l := m.current(key)
		m.unlock()
		if l == nil {
			return nil
		}
		// Wake at the lease deadline too, so a stale claim is noticed without a claimer.
		m.mu.Lock()
		until := time.Duration(l.lease.LeaseUntilMS-m.nowMS()+1) * time.Millisecond
		m.unlock()
		t := time.NewTimer(max(until, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-l.done:
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Inspect implements Coordinator.
func (m *MemCoordinator) Inspect(context.Context) ([]LeaseInfo, error) {
	m.mu.Lock()
	defer m.unlock()
	out := make([]LeaseInfo, 0, len(m.held))
	for k := range m.held {
		if l := m.current(k); l != nil {
			out = append(out, LeaseInfo{Lease: l.lease, Holder: "local"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Failures returns the keys whose last lease ended in Fail, with the reasons.
func (m *MemCoordinator) Failures() map[string]string {
	m.mu.Lock()
	defer m.unlock()
	out := make(map[string]string, len(m.failed))
	for k, v := range m.failed {
		out[k] = v
	}
	return out
}

// StaleClaims is the number of leases that expired without Complete or Fail.
func (m *MemCoordinator) StaleClaims() int {
	m.mu.Lock()
	defer m.unlock()
	return m.stale
}

// Release frees a held lease whatever its token (an operator action for a stuck
// holder); the holder's later Renew, Complete or Fail see ErrLeaseLost.
func (m *MemCoordinator) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.unlock()
	l := m.current(key)
	if l == nil {
		return fmt.Errorf("release %s: not held", key)
	}
	close(l.done)
	delete(m.held, key)
	return nil
}

// FailedChunks implements FailureLister.
func (m *MemCoordinator) FailedChunks(context.Context) ([]ChunkFailure, error) {
	m.mu.Lock()
	defer m.unlock()
	out := make([]ChunkFailure, 0, len(m.failed))
	for k, r := range m.failed {
		out = append(out, ChunkFailure{Key: k, Reason: r})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// ClearFailure implements FailureLister.
func (m *MemCoordinator) ClearFailure(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.unlock()
	delete(m.failed, key)
	return nil
}
