// Package live is the live tier: it turns seamless.LiveFeed streams into recent closed
// bars the provider can serve, durable bars in the Store, and the forming bar.
//
// # Subscriptions
//
// A series is subscribed on demand, the first time any method asks about it, and
// unsubscribed once nothing has asked for Options.IdleTimeout (measured on the injected
// clock) or when the Tier closes. One goroutine per subscription reads the feed, so all
// updates of a series are applied in order.
//
// # Dedupe and durability
//
// Updates are deduped by ts. A closed bar replaces the forming bar of the same ts; a
// closed bar already buffered is ignored (feeds replay their last closed bar after a
// reconnect); a forming update older than the newest closed bar or the current forming
// bar is ignored. Each accepted closed bar goes into a bounded, ts-sorted buffer of the
// newest Options.BufferBars closed bars and is written with coverage [ts, ts+interval),
// contiguous runs in one write, so stored coverage grows bar by bar. Writes go through a
// seamless.LiveSink — the provider's ingest step, the one write path, which normalises
// the bars, never overwrites covered history, drops the cache's copies and notifies
// listeners; seamless.New binds the tier it is given (BindSink). A failed write is
// retried with the next update; WaitClosed reports a bar only once it is stored.
// Forming bars are never written (SPEC §1).
//
// # Holes
//
// A feed that reconnects does not deliver the bars that closed while it was away. The
// tier never invents them and never covers them: when a closed bar arrives more than
// one interval after the newest buffered one, the missing range is counted, logged
// (seamless.live.gap) and passed to Options.OnGap, and stays uncovered in the Store, so
// the provider's ordinary planning backfills it from REST on the next request. Recent
// returns only a contiguous run of closed bars, and WaitClosed answers ErrMissed for a
// bar the feed went past, so the caller backfills it instead of waiting.
package live

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Defaults of Options.
const (
	// DefaultBufferBars keeps a day of 1-minute bars per series.
	DefaultBufferBars  = 1440
	DefaultIdleTimeout = 10 * time.Minute
)

var (
	// ErrNoFeed: no live feed serves the series' source.
	ErrNoFeed = errors.New("live: no feed for this source")
	// ErrMissed: the feed went past the bar without delivering it (it closed before the
	// subscription started or during a reconnect), or it left the buffer. Read it from
	// storage or backfill it.
	ErrMissed = fmt.Errorf("live: bar not delivered by the live feed: %w", seamless.ErrLiveMissed)
)

// Options configure a Tier.
type Options struct {
	// Feeds maps the source part of standard node ids ("binance", "demo") to its feed.
	Feeds map[string]seamless.LiveFeed
	// Sink receives closed bars with their coverage. Nil: the provider the tier is
	// given to binds itself (BindSink); until then closed bars stay in the buffer only.
	Sink seamless.LiveSink
	// Clock drives the idle timeout and the end of the forming bar (default clock.Real).
	Clock clock.Clock
	// BufferBars is the number of closed bars kept per series (default DefaultBufferBars).
	BufferBars int
	// IdleTimeout stops a subscription nobody asked about for this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Logger receives seamless.live.* events (default: discarded).
	Logger *slog.Logger
	// SilentAfter: a subscription whose feed has delivered nothing for this long
	// (counted from its start) is silent, and WaitClosed reports the bars it waits for
	// as missed at once, so that requests fall back to REST instead of each spending
	// its live budget on a dead feed. Zero means twice the series' interval, at least
	// 30 s.
	SilentAfter time.Duration
	// OnGap, when set, is called from the subscription's goroutine with each hole
	// [first missing ts, next delivered ts) the feed left. It must not block.
	OnGap func(s seamless.Series, missing grid.Range)
}

// Stats are a Tier's counters since New.
type Stats struct {
	// Active is the number of running subscriptions.
	Active int
	// Subscribed and Unsubscribed count subscriptions started and ended; IdleStops is
	// the part of Unsubscribed ended by the idle timeout.
	Subscribed, Unsubscribed, IdleStops uint64
	// ClosedBars counts closed bars accepted into a buffer; StoredBars those written.
	ClosedBars, StoredBars uint64
	// FormingUpdates counts forming updates accepted.
	FormingUpdates uint64
	// Duplicates counts closed bars already buffered (replays); Stale counts updates
	// older than what the buffer already holds; Invalid counts off-grid bars.
	Duplicates, Stale, Invalid uint64
	// Gaps counts holes the feed left; WriteErrors failed Store writes; Dropped closed
	// bars that left the buffer before they could be stored.
	Gaps, WriteErrors, Dropped uint64
}

// Tier is the live tier. It is safe for concurrent use.
type Tier struct {
	opts   Options
	clock  clock.Clock
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	sink atomic.Pointer[sinkRef]

	mu     sync.Mutex
	closed bool
	subs   map[seamless.Series]*sub

	subscribed, unsubscribed, idleStops                 atomic.Uint64
	closedBars, storedBars, formingUpdates              atomic.Uint64
	duplicates, stale, invalid, gaps, writeErr, dropped atomic.Uint64
}

// New returns a Tier. Close it before closing the provider it writes through (and
// that provider's Store): its last writes need both.
func New(opts Options) (*Tier, error) {
	if opts.BufferBars == 0 {
		opts.BufferBars = DefaultBufferBars
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.BufferBars < 0 || opts.IdleTimeout < 0 {
		return nil, errors.New("live: negative buffer size or idle timeout")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Tier{opts: opts, clock: opts.Clock, log: opts.Logger, ctx: ctx, cancel: cancel,
		subs: map[seamless.Series]*sub{}}
	if opts.Sink != nil {
		t.BindSink(opts.Sink)
	}
	return t, nil
}

type sinkRef struct{ sink seamless.LiveSink }

var _ seamless.SinkBinder = (*Tier)(nil)

// BindSink implements seamless.SinkBinder: closed bars are written to s from now on.
// seamless.New calls it with the provider, before any request can subscribe a series.
func (t *Tier) BindSink(s seamless.LiveSink) { t.sink.Store(&sinkRef{s}) }

// sinkOf returns the bound sink, or nil.
func (t *Tier) sinkOf() seamless.LiveSink {
	if r := t.sink.Load(); r != nil {
		return r.sink
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (t *Tier) Stats() Stats {
	t.mu.Lock()
	active := len(t.subs)
	t.mu.Unlock()
	return Stats{
		Active: active, Subscribed: t.subscribed.Load(), Unsubscribed: t.unsubscribed.Load(),
		IdleStops: t.idleStops.Load(), ClosedBars: t.closedBars.Load(), StoredBars: t.storedBars.Load(),
		FormingUpdates: t.formingUpdates.Load(), Duplicates: t.duplicates.Load(), Stale: t.stale.Load(),
		Invalid: t.invalid.Load(), Gaps: t.gaps.Load(), WriteErrors: t.writeErr.Load(), Dropped: t.dropped.Load(),
	}
}

// SeriesStatus describes one running subscription, for metrics such as
// live_staleness_seconds.
type SeriesStatus struct {
	seamless.Series
	// LastUpdate is when the feed last delivered an update (zero: never).
	LastUpdate time.Time
	// Buffered is the number of closed bars in the buffer, ClosedEnd the end
	// (ts+interval) of the newest of them (0 without any).
	Buffered  int
	ClosedEnd int64
	// Forming reports whether a forming bar is held.
	Forming bool
}

// Statuses describes the running subscriptions, sorted by node id and interval. It
// subscribes nothing.
func (t *Tier) Statuses() []SeriesStatus {
	t.mu.Lock()
	subs := make([]*sub, 0, len(t.subs))
	for _, sb := range t.subs {
		subs = append(subs, sb)
	}
	t.mu.Unlock()
	out := make([]SeriesStatus, 0, len(subs))
	for _, sb := range subs {
		sb.mu.Lock()
		st := SeriesStatus{Series: sb.series, LastUpdate: sb.lastUpdate, Buffered: len(sb.bars), Forming: sb.forming != nil}
		if n := len(sb.bars); n > 0 {
			st.ClosedEnd = sb.bars[n-1].ts + sb.series.Interval
		}
		sb.mu.Unlock()
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SeriesStatus) int {
		if c := strings.Compare(a.NodeID, b.NodeID); c != 0 {
			return c
		}
		return cmp.Compare(a.Interval, b.Interval)
	})
	return out
}

// Serves reports whether a feed exists for the series (its source has a feed and its
// interval matches its timeframe). It starts nothing.
func (t *Tier) Serves(s seamless.Series) bool {
	_, err := t.feed(s)
	return err == nil
}

// Subscribe starts the series' subscription, or keeps a running one from going idle.
func (t *Tier) Subscribe(s seamless.Series) error {
	_, err := t.acquire(s)
	return err
}

// Recent returns the newest contiguous run of buffered closed bars with ts in r, and
// the range [first ts, last ts+interval) it covers (empty with no bars). The frame is
// a copy. Asking subscribes the series, so a first call returns nothing yet.
func (t *Tier) Recent(s seamless.Series, r grid.Range) (*frame.Frame, grid.Range) {
	sb, err := t.acquire(s)
	if err != nil {
		return emptyFrame(s), grid.Range{}
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	a := r.Align(s.Interval)
	lo := sb.search(a.Start)
	hi := sb.search(a.End)
	if lo == hi {
		return emptyFrame(s), grid.Range{}
	}
	first := hi - 1
	for first > lo && sb.bars[first-1].ts == sb.bars[first].ts-s.Interval {
		first--
	}
	out := frame.New(sb.bars[first].row.Schema(), hi-first)
	for _, b := range sb.bars[first:hi] {
		out.AppendRows(b.row, 0, 1)
	}
	return out, grid.R(sb.bars[first].ts, sb.bars[hi-1].ts+s.Interval)
}

// Forming returns a copy of the series' forming bar: the newest update that is not
// closed, while the clock is still inside its interval. Asking subscribes the series.
func (t *Tier) Forming(s seamless.Series) (*frame.Frame, bool) {
	sb, err := t.acquire(s)
	if err != nil {
		return nil, false
	}
	now := t.clock.Now().Unix()
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.forming == nil || now >= sb.forming.TS[0]+s.Interval {
		return nil, false
	}
	return sb.forming.Clone(), true
}

// WaitClosed blocks until the bar of s at ts has closed, is in the buffer and is
// stored, or until ctx ends (the caller bounds it with the live_wait budget). It
// returns an error wrapping ErrMissed when the feed will not deliver that bar, so the
// caller can backfill it at once, and ctx.Err() when ctx ends first.
func (t *Tier) WaitClosed(ctx context.Context, s seamless.Series, ts int64) error {
	if s.Interval <= 0 || ts%s.Interval != 0 {
		return fmt.Errorf("live: %s: ts %d is not on the interval grid", s, ts)
	}
	for {
		sb, err := t.acquire(s)
		if err != nil {
			return err
		}
		sb.mu.Lock()
		i, found := sb.find(ts)
		stored := found && sb.bars[i].stored
		missed := !found && ((sb.received && sb.since > ts) || (len(sb.bars) > 0 && sb.bars[len(sb.bars)-1].ts > ts))
		last := sb.lastUpdate
		if last.IsZero() {
			last = sb.started
		}
		changed, ended := sb.changed, sb.ended
		sb.mu.Unlock()
		silent := t.clock.Now().Sub(last)
		switch {
		case stored:
			return nil
		case missed:
			return fmt.Errorf("%w: %s at ts %d", ErrMissed, s, ts)
		case !found && silent >= t.silentAfter(s):
			return fmt.Errorf("%w: %s at ts %d: the feed has been silent for %v", ErrMissed, s, ts, silent)
		case ended:
			continue // stopped while idle between our calls: subscribe again
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// silentAfter is how long the feed of s may deliver nothing before it counts as silent.
func (t *Tier) silentAfter(s seamless.Series) time.Duration {
	if t.opts.SilentAfter > 0 {
		return t.opts.SilentAfter
	}
	return max(2*time.Duration(s.Interval)*time.Second, 30*time.Second)
}

// Close stops every subscription and waits for their goroutines and feeds to end.
func (t *Tier) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.cancel()
	t.wg.Wait()
	return nil
}

func emptyFrame(s seamless.Series) *frame.Frame {
	if node, err := seamless.ParseNodeID(s.NodeID); err == nil {
		if schema, ok := node.Schema(); ok {
			return frame.New(schema, 0)
		}
	}
	return &frame.Frame{}
}

func (t *Tier) feed(s seamless.Series) (seamless.LiveFeed, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	if node.Interval != s.Interval {
		return nil, fmt.Errorf("live: %s: interval %d s does not match the timeframe %q", s, s.Interval, node.Timeframe)
	}
	f, ok := t.opts.Feeds[node.Source]
	if !ok {
		return nil, fmt.Errorf("%w: %s (source %q)", ErrNoFeed, s, node.Source)
	}
	return f, nil
}

// sub is one series' subscription. Only its run goroutine changes bars, forming and
// since; readers hold mu.
type sub struct {
	series seamless.Series
	cancel context.CancelFunc

	mu       sync.Mutex
	lastUsed time.Time
	bars     []bar // closed bars, sorted by ts, at most BufferBars
	forming  *frame.Frame
	// since is the ts of the first bar this subscription received: the feed never
	// delivers older bars.
	since    int64
	received bool
	// changed is closed and replaced whenever bars or forming change.
	changed    chan struct{}
	ended      bool
	writeErr   error
	lastUpdate time.Time
	started    time.Time // when the subscription began
}

type bar struct {
	ts     int64
	row    *frame.Frame
	stored bool
}

// search returns the index of the first buffered bar with ts >= t. mu must be held.
func (sb *sub) search(t int64) int {
	i, _ := slices.BinarySearchFunc(sb.bars, t, func(b bar, t int64) int { return cmp.Compare(b.ts, t) })
	return i
}

func (sb *sub) find(t int64) (int, bool) {
	return slices.BinarySearchFunc(sb.bars, t, func(b bar, t int64) int { return cmp.Compare(b.ts, t) })
}

// broadcast wakes every WaitClosed. mu must be held.
func (sb *sub) broadcast() {
	close(sb.changed)
	sb.changed = make(chan struct{})
}

// acquire returns the running subscription of s, starting it if needed, and marks it
// used now.
func (t *Tier) acquire(s seamless.Series) (*sub, error) {
	f, err := t.feed(s)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("live: %s: %w", s, seamless.ErrClosed)
	}
	now := t.clock.Now()
	if sb, ok := t.subs[s]; ok {
		sb.mu.Lock()
		sb.lastUsed = now
		sb.mu.Unlock()
		return sb, nil
	}
	ctx, cancel := context.WithCancel(t.ctx)
	ch, err := f.Subscribe(ctx, s)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("live: subscribe %s: %w", s, err)
	}
	sb := &sub{series: s, cancel: cancel, lastUsed: now, started: now, changed: make(chan struct{})}
	t.subs[s] = sb
	t.subscribed.Add(1)
	t.log.Info("seamless.live.subscribed", "node_id", s.NodeID, "interval", s.Interval)
	t.wg.Add(1)
	go t.run(ctx, sb, ch)
	return sb, nil
}

// run applies the feed's updates to sb until the feed ends, the Tier closes or the
// subscription goes idle.
func (t *Tier) run(ctx context.Context, sb *sub, ch <-chan seamless.LiveUpdate) {
	defer t.wg.Done()
	defer t.end(sb, ch)
	for {
		sb.mu.Lock()
		idleAt := sb.lastUsed.Add(t.opts.IdleTimeout)
		sb.mu.Unlock()
		ictx, icancel := t.clock.WithDeadline(ctx, idleAt)
		select {
		case u, ok := <-ch:
			icancel()
			if !ok {
				return
			}
			t.apply(sb, u)
			t.flush(sb)
		case <-ictx.Done():
			icancel()
			if ctx.Err() != nil || t.idle(sb) {
				return
			}
		}
	}
}

// idle removes sb from the Tier if nothing used it for IdleTimeout. Holding t.mu keeps
// acquire from handing sb out while it stops.
func (t *Tier) idle(sb *sub) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if t.clock.Now().Before(sb.lastUsed.Add(t.opts.IdleTimeout)) {
		return false
	}
	t.idleStops.Add(1)
	t.log.Info("seamless.live.idle", "node_id", sb.series.NodeID, "interval", sb.series.Interval)
	t.detach(sb)
	return true
}

// detach removes sb from the map and marks it ended. t.mu and sb.mu must be held.
func (t *Tier) detach(sb *sub) {
	if t.subs[sb.series] == sb {
		delete(t.subs, sb.series)
	}
	if !sb.ended {
		sb.ended = true
		sb.broadcast()
	}
}

// end stops the feed and waits for it to close its channel, so no feed goroutine
// outlives the subscription.
func (t *Tier) end(sb *sub, ch <-chan seamless.LiveUpdate) {
	sb.cancel()
	for range ch { // a feed closes its channel once its goroutines are done
	}
	t.mu.Lock()
	sb.mu.Lock()
	t.detach(sb)
	sb.mu.Unlock()
	t.mu.Unlock()
	t.unsubscribed.Add(1)
}

// apply dedupes one update into the buffer and the forming bar.
func (t *Tier) apply(sb *sub, u seamless.LiveUpdate) {
	f := u.Bars
	if f.Len() == 0 {
		return
	}
	if err := f.Validate(); err != nil {
		t.invalid.Add(uint64(f.Len()))
		return
	}
	iv := sb.series.Interval
	var holes []grid.Range
	sb.mu.Lock()
	sb.lastUpdate = t.clock.Now()
	for i, ts := range f.TS {
		if grid.FloorAlign(ts, iv) != ts {
			t.invalid.Add(1)
			continue
		}
		if !sb.received {
			sb.since, sb.received = ts, true
		}
		row := f.Slice(i, i+1).Clone()
		if u.Closed {
			if hole, ok := t.addClosed(sb, ts, row); ok {
				holes = append(holes, hole)
			}
			continue
		}
		newest := int64(math.MinInt64)
		if n := len(sb.bars); n > 0 {
			newest = sb.bars[n-1].ts
		}
		if ts <= newest || (sb.forming != nil && ts < sb.forming.TS[0]) {
			t.stale.Add(1)
			continue
		}
		sb.forming = row
		t.formingUpdates.Add(1)
	}
	sb.broadcast()
	sb.mu.Unlock()
	for _, h := range holes {
		t.gaps.Add(1)
		t.log.Warn("seamless.live.gap", "node_id", sb.series.NodeID, "interval", iv, "range", h.String(),
			"missing_bars", h.Bars(iv))
		if t.opts.OnGap != nil {
			t.opts.OnGap(sb.series, h)
		}
	}
}

// addClosed buffers one closed bar, reporting the hole it leaves behind the newest
// buffered bar, if any. sb.mu must be held.
func (t *Tier) addClosed(sb *sub, ts int64, row *frame.Frame) (grid.Range, bool) {
	iv := sb.series.Interval
	i, found := sb.find(ts)
	switch {
	case found:
		t.duplicates.Add(1)
		return grid.Range{}, false
	case i == 0 && len(sb.bars) > 0:
		// Older than the whole buffer: stored long ago or never ours to cover.
		t.stale.Add(1)
		return grid.Range{}, false
	}
	var hole grid.Range
	if i == len(sb.bars) && i > 0 && sb.bars[i-1].ts+iv < ts {
		hole = grid.R(sb.bars[i-1].ts+iv, ts)
	}
	unsunk := t.sinkOf() == nil
	sb.bars = slices.Insert(sb.bars, i, bar{ts: ts, row: row, stored: unsunk})
	t.closedBars.Add(1)
	if unsunk {
		t.storedBars.Add(1)
	}
	if over := len(sb.bars) - t.opts.BufferBars; over > 0 {
		for _, b := range sb.bars[:over] {
			if !b.stored {
				t.dropped.Add(1)
			}
		}
		sb.bars = slices.Delete(sb.bars, 0, over)
	}
	if sb.forming != nil && sb.forming.TS[0] <= ts {
		sb.forming = nil
	}
	return hole, !hole.Empty()
}

// flush writes the buffered closed bars not yet stored, one write per contiguous run.
// Only sb's run goroutine changes sb.bars, so the runs read here stay valid.
func (t *Tier) flush(sb *sub) {
	sink := t.sinkOf()
	if sink == nil {
		return
	}
	iv := sb.series.Interval
	sb.mu.Lock()
	var runs [][]bar
	for i, b := range sb.bars {
		if b.stored {
			continue
		}
		if n := len(runs); n > 0 && i > 0 && !sb.bars[i-1].stored && sb.bars[i-1].ts+iv == b.ts {
			runs[n-1] = append(runs[n-1], b)
			continue
		}
		runs = append(runs, []bar{b})
	}
	sb.mu.Unlock()
	for _, run := range runs {
		f := frame.New(run[0].row.Schema(), len(run))
		for _, b := range run {
			f.AppendRows(b.row, 0, 1)
		}
		r := grid.R(run[0].ts, run[len(run)-1].ts+iv)
		err := sink.IngestLive(t.ctx, sb.series, r, f)
		sb.mu.Lock()
		if err != nil {
			t.writeErr.Add(1)
			if sb.writeErr == nil || sb.writeErr.Error() != err.Error() {
				t.log.Error("seamless.live.write_failed", "node_id", sb.series.NodeID, "interval", iv,
					"range", r.String(), "error", err.Error())
			}
			sb.writeErr = err
			sb.mu.Unlock()
			continue
		}
		sb.writeErr = nil
		for _, b := range run {
			if i, ok := sb.find(b.ts); ok {
				sb.bars[i].stored = true
			}
		}
		t.storedBars.Add(uint64(len(run)))
		sb.broadcast()
		sb.mu.Unlock()
	}
}
