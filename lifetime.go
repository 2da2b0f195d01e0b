package seamless

import (
	"context"
	"sync"
)

// lifetime tracks the work that outlives the requests that started it (partial_fill's
// background chunks, a backfill detached when its budget ran out), so that Close
// cancels it and waits for it: no goroutine or lease outlives the provider.
type lifetime struct {
	mu     sync.Mutex
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newLifetime() *lifetime {
	l := &lifetime{}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l
}

// start registers one piece of background work and returns its context (cancelled by
// cancel or by close) and done, which the work must call when it ends. ok is false once
// closed: the work must not start.
func (l *lifetime) start() (ctx context.Context, cancel context.CancelFunc, done func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, nil, nil, false
	}
	l.wg.Add(1)
	ctx, cancel = context.WithCancel(l.ctx)
	return ctx, cancel, l.wg.Done, true
}

func (l *lifetime) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// close cancels the background work and waits for it. It reports false when already
// closed.
func (l *lifetime) close() bool {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	return true
}
