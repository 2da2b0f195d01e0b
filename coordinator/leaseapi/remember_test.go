package leaseapi

import (
	"strconv"
	"testing"

	"github.com/seamless-data/seamless"
)

// TestRememberIsBounded: the handler forgets the oldest keys' completion ratios past
// MaxRemembered, so a long-running coordinator does not grow with every chunk.
func TestRememberIsBounded(t *testing.T) {
	h := NewHandler(seamless.NewMemCoordinator(nil))
	for i := range MaxRemembered + 10 {
		h.remember("k"+strconv.Itoa(i), 1)
	}
	h.remember("k"+strconv.Itoa(MaxRemembered+5), 0.5) // known: updated in place
	if len(h.ended) != MaxRemembered || len(h.order) != MaxRemembered {
		t.Fatalf("%d ratios, %d keys in order; want %d", len(h.ended), len(h.order), MaxRemembered)
	}
	for i := range 10 {
		if _, ok := h.ended["k"+strconv.Itoa(i)]; ok {
			t.Fatalf("key %d, among the oldest, is still remembered", i)
		}
	}
	if r := h.ended["k"+strconv.Itoa(MaxRemembered+5)]; r != 0.5 {
		t.Fatalf("updated ratio %v", r)
	}
}
