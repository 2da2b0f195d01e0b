package stream_test

import (
	"errors"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCursorRoundTrip(t *testing.T) {
	for _, ts := range []int64{0, 60, -3600, 1717200000, 1 << 53} {
		c := stream.Cursor(ts)
		got, err := stream.ParseCursor(c)
		if err != nil || got != ts {
			t.Fatalf("ParseCursor(%q) = %d, %v; want %d", c, got, err, ts)
		}
	}
	for _, bad := range []string{"", "1717200000", "c1.", "c1.x", "c2.60", "c1.60 "} {
		if _, err := stream.ParseCursor(bad); err == nil {
			t.Fatalf("ParseCursor(%q) accepted", bad)
		}
	}
}

// TestSeamOffer: the seam's decision for each way a write can sit relative to the
// cursor (120 on a 60 s grid).
func TestSeamOffer(t *testing.T) {
	seam := stream.Seam{Next: 120, Interval: 60}
	for _, tc := range []struct {
		name string
		r    grid.Range
		ts   []int64
		want stream.Step
	}{
		{"behind the cursor", grid.R(0, 120), []int64{0, 60}, stream.Step{Action: stream.Drop}},
		{"empty range", grid.R(130, 170), nil, stream.Step{Action: stream.Drop}},
		{"the next bar", grid.R(120, 180), []int64{120}, stream.Step{Action: stream.Deliver, Lo: 0, Hi: 1, Next: 180}},
		{"overlapping the cursor", grid.R(0, 240), []int64{0, 60, 120, 180}, stream.Step{Action: stream.Deliver, Lo: 2, Hi: 4, Next: 240}},
		{"a market gap at the cursor", grid.R(120, 300), []int64{240}, stream.Step{Action: stream.Deliver, Lo: 0, Hi: 1, Next: 300}},
		{"covered but empty", grid.R(60, 240), nil, stream.Step{Action: stream.Deliver, Next: 240}},
		{"off-grid bounds", grid.R(100, 190), []int64{120, 180}, stream.Step{Action: stream.Deliver, Lo: 0, Hi: 2, Next: 240}},
		{"a hole before it", grid.R(240, 300), []int64{240}, stream.Step{Action: stream.Repair, Missing: grid.R(120, 240)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := seam.Offer(tc.r, tc.ts); got != tc.want {
				t.Fatalf("Offer(%v, %v) = %+v (%v), want %+v", tc.r, tc.ts, got, got.Action, tc.want)
			}
		})
	}
	seam.Advance(60)
	if seam.Next != 120 {
		t.Fatalf("cursor moved back to %d", seam.Next)
	}
}

// TestHub: one upstream per key however many join, closed when the last leaves; a full
// inbox drops for its subscriber alone and signals it lagged, never blocking Publish.
func TestHub(t *testing.T) {
	opened := map[string]int{}
	closed := map[string]int{}
	h := stream.NewHub[string, int](func(k string) func() {
		opened[k]++
		return func() { closed[k]++ }
	})
	a := h.Join("x", 2)
	b := h.Join("x", 8)
	c := h.Join("y", 1)
	if opened["x"] != 1 || opened["y"] != 1 || h.Keys() != 2 || h.Subscribers("x") != 2 {
		t.Fatalf("opened %v, %d keys", opened, h.Keys())
	}
	for i := range 4 {
		h.Publish("x", i)
	}
	if d, l := h.Publish("nobody", 0); d != 0 || l != 0 {
		t.Fatal("published to a key nobody joined")
	}
	if got := []int{<-a.Inbox(), <-a.Inbox()}; got[0] != 0 || got[1] != 1 || a.Dropped() != 2 {
		t.Fatalf("a got %v, dropped %d", got, a.Dropped())
	}
	select {
	case <-a.Lagged():
	default:
		t.Fatal("a not signalled lagged")
	}
	if len(b.Inbox()) != 4 || b.Dropped() != 0 || len(c.Inbox()) != 0 {
		t.Fatalf("b holds %d (dropped %d), c %d", len(b.Inbox()), b.Dropped(), len(c.Inbox()))
	}
	select {
	case <-b.Lagged():
		t.Fatal("b signalled lagged")
	default:
	}
	a.Leave()
	a.Leave()
	if closed["x"] != 0 {
		t.Fatal("closed with a subscriber left")
	}
	b.Leave()
	c.Leave()
	if closed["x"] != 1 || closed["y"] != 1 || h.Keys() != 0 {
		t.Fatalf("closed %v, %d keys", closed, h.Keys())
	}
}

// TestShared: each key is encoded once however many goroutines ask, and every caller
// gets those bytes; keys are independent.
func TestShared(t *testing.T) {
	var s stream.Shared
	calls := map[string]int{}
	var wg sync.WaitGroup
	results := make([][]byte, 64)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"json", "arrow"}[i%2]
			results[i], _ = s.Encoding(key, func() ([]byte, error) {
				calls[key]++ // under the Shared's lock
				return []byte(key), nil
			})
		}()
	}
	wg.Wait()
	if calls["json"] != 1 || calls["arrow"] != 1 {
		t.Fatalf("encoded %v times", calls)
	}
	for i, r := range results {
		if want := []string{"json", "arrow"}[i%2]; string(r) != want {
			t.Fatalf("caller %d got %q, want %q", i, r, want)
		}
	}
	wantErr := errors.New("no")
	if _, err := s.Encoding("sse", func() ([]byte, error) { return nil, wantErr }); err != wantErr {
		t.Fatal(err)
	}
	if _, err := s.Encoding("sse", func() ([]byte, error) { t.Fatal("encoded again"); return nil, nil }); err != wantErr {
		t.Fatal(err)
	}
}
