package seamless

import (
	"testing"

	"github.com/seamless-data/seamless/frame"
)

// TestCacheRewriteTags: a chunk is served only to fetches that read the rewrite count it
// was cached under; an older one is dropped on sight, and a fetch that read an older
// count neither sees nor replaces a newer one.
func TestCacheRewriteTags(t *testing.T) {
	c := newBarCache(1 << 20)
	k := cacheKey{Series{NodeID: "ohlcv:demo:X:1m", Interval: 60}, 0}
	f1, f2 := frame.New(frame.OHLCV, 0), frame.New(frame.OHLCV, 0)
	c.put(k, f1, 3, false)
	if got, _, ok := c.get(k, 3); !ok || got != f1 {
		t.Fatal("same count: want a hit")
	}
	if _, _, ok := c.get(k, 2); ok {
		t.Fatal("a fetch that read an older count must not see a chunk cached under a newer one")
	}
	c.put(k, f2, 2, false) // a slow fetch that read the older count
	if got, _, ok := c.get(k, 3); !ok || got != f1 {
		t.Fatal("an older fetch replaced a newer chunk")
	}
	if _, _, ok := c.get(k, 4); ok {
		t.Fatal("a chunk cached before a rewrite was served after it")
	}
	if len(c.entries) != 0 || c.lru.Len() != 0 || c.bytes != 0 {
		t.Fatalf("the stale chunk was kept: %d entries, %d bytes", len(c.entries), c.bytes)
	}
	c.put(k, f2, 4, false)
	if got, _, ok := c.get(k, 4); !ok || got != f2 {
		t.Fatal("want the chunk cached after the rewrite")
	}
}
