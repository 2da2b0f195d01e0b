package stream

import (
	"sync"
	"sync/atomic"
)

// Hub fans values published under a key out to the subscribers of that key. The first
// subscriber of a key opens its upstream (Open), the last one to leave closes it, so
// there is one upstream per key however many subscribe. It is safe for concurrent use.
type Hub[K comparable, V any] struct {
	open func(K) (close func())

	mu     sync.RWMutex
	topics map[K]*topic[K, V]
}

type topic[K comparable, V any] struct {
	subs  map[*Sub[K, V]]struct{}
	close func()
}

// NewHub returns a hub whose upstream for a key is started by open when the key gets
// its first subscriber; the function open returns stops it when the last one leaves.
// open runs under the hub's lock and must be quick (start a goroutine, not dial).
// A nil open means there is nothing to start.
func NewHub[K comparable, V any](open func(K) (close func())) *Hub[K, V] {
	if open == nil {
		open = func(K) func() { return func() {} }
	}
	return &Hub[K, V]{open: open, topics: map[K]*topic[K, V]{}}
}

// Sub is one subscriber's view of a key: its inbox and its lag signal.
type Sub[K comparable, V any] struct {
	hub   *Hub[K, V]
	key   K
	inbox chan V
	// lag has room for one signal: set when a value did not fit the inbox.
	lag    chan struct{}
	lagged atomic.Uint64
	left   sync.Once
}

// Join subscribes to key with an inbox of the given size (at least 1).
func (h *Hub[K, V]) Join(key K, inbox int) *Sub[K, V] {
	s := &Sub[K, V]{hub: h, key: key, inbox: make(chan V, max(inbox, 1)), lag: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.topics[key]
	if !ok {
		t = &topic[K, V]{subs: map[*Sub[K, V]]struct{}{}, close: h.open(key)}
		h.topics[key] = t
	}
	t.subs[s] = struct{}{}
	return s
}

// Inbox delivers the values published under the key since Join, in order, except those
// that found it full (see Lagged).
func (s *Sub[K, V]) Inbox() <-chan V { return s.inbox }

// Lagged receives a signal after one or more values did not fit the inbox and were
// dropped for this subscriber: it must catch up from elsewhere (storage).
func (s *Sub[K, V]) Lagged() <-chan struct{} { return s.lag }

// Dropped counts the values dropped for this subscriber since Join.
func (s *Sub[K, V]) Dropped() uint64 { return s.lagged.Load() }

// Leave unsubscribes; the last subscriber of a key to leave closes its upstream. Calls
// after the first do nothing.
func (s *Sub[K, V]) Leave() {
	s.left.Do(func() {
		h := s.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		t := h.topics[s.key]
		delete(t.subs, s)
		if len(t.subs) == 0 {
			delete(h.topics, s.key)
			t.close()
		}
	})
}

// Publish offers v to every subscriber of key without blocking: a subscriber whose
// inbox is full is signalled lagged instead. It returns how many subscribers received
// v and how many lagged.
func (h *Hub[K, V]) Publish(key K, v V) (delivered, lagged int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	t, ok := h.topics[key]
	if !ok {
		return 0, 0
	}
	for s := range t.subs {
		select {
		case s.inbox <- v:
			delivered++
		default:
			lagged++
			s.lagged.Add(1)
			select {
			case s.lag <- struct{}{}:
			default: // already signalled
			}
		}
	}
	return delivered, lagged
}

// Subscribers returns the number of subscribers of key.
func (h *Hub[K, V]) Subscribers(key K) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if t, ok := h.topics[key]; ok {
		return len(t.subs)
	}
	return 0
}

// Keys returns the number of keys with at least one subscriber: the upstreams open.
func (h *Hub[K, V]) Keys() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.topics)
}
