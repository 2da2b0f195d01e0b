// Package clock injects time so that deadlines, lease expiry and retry backoff are
// tested deterministically: production code takes a Clock, tests pass a Fake.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and sleeps.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, returning ctx.Err() in the latter case.
	Sleep(ctx context.Context, d time.Duration) error
	// WithDeadline returns a context cancelled when the clock reaches t (or when ctx
	// ends). Budgets use it, so a fake clock can expire them in tests.
	WithDeadline(ctx context.Context, t time.Time) (context.Context, context.CancelFunc)
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Sleep waits for d or ctx.
func (Real) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// WithDeadline is context.WithDeadline.
func (Real) WithDeadline(ctx context.Context, t time.Time) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, t)
}

// Fake is a manual clock: Sleep returns at once, advancing the time by d and recording
// d, so tests can assert on backoff schedules without waiting.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	timers map[*fakeTimer]struct{}
}

type fakeTimer struct {
	at     time.Time
	cancel context.CancelCauseFunc
}

// NewFake returns a Fake clock set to now.
func NewFake(now time.Time) *Fake { return &Fake{now: now} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the fake time forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advance(d)
}

// advance moves time and fires the deadlines it passes. f.mu must be held.
func (f *Fake) advance(d time.Duration) {
	f.now = f.now.Add(d)
	for t := range f.timers {
		if !f.now.Before(t.at) {
			t.cancel(context.DeadlineExceeded)
			delete(f.timers, t)
		}
	}
}

// WithDeadline returns a context cancelled, with cause context.DeadlineExceeded, once
// Advance or Sleep moves the fake time to t.
func (f *Fake) WithDeadline(ctx context.Context, t time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.now.Before(t) {
		cancel(context.DeadlineExceeded)
		return ctx, func() { cancel(context.Canceled) }
	}
	if f.timers == nil {
		f.timers = map[*fakeTimer]struct{}{}
	}
	ft := &fakeTimer{at: t, cancel: cancel}
	f.timers[ft] = struct{}{}
	return ctx, func() {
		f.mu.Lock()
		delete(f.timers, ft)
		f.mu.Unlock()
		cancel(context.Canceled)
	}
}

// Sleep records d, advances the clock by d and returns immediately (or ctx.Err()).
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.advance(d)
	return nil
}

// Sleeps returns the durations passed to Sleep so far.
func (f *Fake) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}
