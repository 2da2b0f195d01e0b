package contract

import (
	"context"
	"fmt"
	"sync"

	"github.com/seamless-data/seamless"
)

// Lifetime gates a store's operations on its lifetime, so that the underlying database
// is never used after it is closed (Pebble panics; a closed pool fails obscurely) and
// late calls fail with seamless.ErrClosed instead. Operations hold it shared, Close
// exclusively. The zero value is an open store.
type Lifetime struct {
	mu     sync.RWMutex
	closed bool
}

// Enter starts an operation named op of store: it fails if ctx is done or the store is
// closed. A nil error must be paired with Exit.
func (l *Lifetime) Enter(ctx context.Context, store, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return fmt.Errorf("%s: %s: %w", store, op, seamless.ErrClosed)
	}
	return nil
}

// Exit ends an operation started by Enter.
func (l *Lifetime) Exit() { l.mu.RUnlock() }

// Close waits for operations in flight, marks the store closed and runs release once;
// later calls return an error wrapping seamless.ErrClosed.
func (l *Lifetime) Close(store string, release func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("%s: close: %w", store, seamless.ErrClosed)
	}
	l.closed = true
	if err := release(); err != nil {
		return fmt.Errorf("%s: close: %w", store, err)
	}
	return nil
}
