package seamless

import (
	"sync"
	"time"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
)

// tailMemo remembers, by chunk key, when a fetch last left the chunk's newest bars
// uncovered because the source had not published them yet (see backfiller.settled), so
// that requests waiting on that fetch, or right behind it, do not ask again at once.
// Entries older than the settle window are swept at most once per window, so the memo
// holds only chunks near now.
type tailMemo struct {
	clock  clock.Clock
	settle time.Duration // BackfillConfig.SettleWindow

	mu    sync.Mutex
	tails map[string]time.Time
	swept time.Time // when tails was last cleared of old entries
}

func newTailMemo(c clock.Clock, settle time.Duration) *tailMemo {
	return &tailMemo{clock: c, settle: settle, tails: map[string]time.Time{}}
}

// unsettledFrom is the first bar of the interval's grid that closed within the settle
// window (ts + interval > now - settle_window): bars from there on may not be
// published upstream yet.
func (m *tailMemo) unsettledFrom(interval int64) int64 {
	return grid.FloorAlign(m.clock.Now().Add(-m.settle).Unix(), interval)
}

// retry is how soon a chunk whose unpublished tail a fetch just left uncovered is asked
// for again: often enough to catch the bars as they appear, rarely enough that a burst
// of requests (or the waiters of that fetch) cost one upstream call.
func (m *tailMemo) retry() time.Duration { return min(m.settle/10, 10*time.Second) }

// note records that a fetch of the chunk just left its unsettled tail uncovered.
func (m *tailMemo) note(key string) {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.swept) > m.settle {
		for k, t := range m.tails {
			if now.Sub(t) > m.settle {
				delete(m.tails, k)
			}
		}
		m.swept = now
	}
	m.tails[key] = now
}

// forget drops the chunk's entry (it is fully covered now).
func (m *tailMemo) forget(key string) {
	m.mu.Lock()
	delete(m.tails, key)
	m.mu.Unlock()
}

// pending reports whether all that is missing of a chunk is its unsettled tail and a
// fetch asked for it less than retry ago.
func (m *tailMemo) pending(key string, interval int64, missing grid.Set) bool {
	if rs := missing.Ranges(); len(rs) == 0 || rs[0].Start < m.unsettledFrom(interval) {
		return false
	}
	m.mu.Lock()
	at, ok := m.tails[key]
	m.mu.Unlock()
	return ok && m.clock.Now().Sub(at) < m.retry()
}

// len is the number of chunks remembered.
func (m *tailMemo) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tails)
}
