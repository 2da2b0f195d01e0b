package seamless

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/stream"
)

// Subscriptions (SPEC §9). Subscribe replays history through Fetch, then follows the
// bars that close, each delivered once and in ts order:
//
//	history  [start, ClosedEnd(now)) in chunk-aligned pages, each one Fetch: the
//	         request path with its backfill, conformance and SLA, so a long history is
//	         bound neither by the per-request bar maximum nor by one request's budget
//	caught_up once, with the ts of the next bar expected
//	live     the writes of the ingest step (OnIngest): a live bar as the live tier
//	         stores it, or a backfilled chunk, offered to the seam (package stream)
//
// The ingest listener is joined before the first history page is read, so a bar that
// closes while history is served is either in a page (it was stored before the page
// was read) or in the subscription's inbox (stored after), never neither; the seam
// drops what a page already delivered. A write that starts past the cursor reveals a
// hole (the live feed reconnected or skipped bars): the hole is fetched through Fetch,
// which backfills it, and delivered before the write (a gap event, then bars). A bar
// due from the live feed that has not arrived LiveGrace after its close is repaired
// the same way, so a silent feed costs latency, never a bar.
//
// Corrections: a subscription never re-sends a bar it delivered. An import that
// rewrites covered history before the cursor (the way history is corrected) is not
// delivered again; a Fetch of the range serves the corrected bars. Live bars never
// overwrite covered history (see ingest.go), so a venue's late revision of a bar
// already stored is not delivered either.

// SubscribeOptions tune subscriptions (Config.Subscriptions). Zero fields take the
// defaults named on each.
type SubscribeOptions struct {
	// Buffer is the number of events queued for each subscriber (default 1024). During
	// history the subscription waits for its reader; once live, a subscriber that lets
	// its queue fill is ended with EndSlowConsumer and its cursor, so that a stalled
	// reader costs bounded memory and delays no one.
	Buffer int
	// Inbox is the number of writes queued between the ingest step and one
	// subscription (default 256). A write that does not fit is dropped for that
	// subscription, which then catches up from storage: the writer never waits.
	Inbox int
	// Heartbeat is how long a subscription may send nothing before it sends a
	// heartbeat event (default 15 s).
	Heartbeat time.Duration
	// LiveGrace is how long after a bar closes the live tier may take to deliver it
	// before the subscription fetches it through the backfill path (default 5 s). For
	// series without a live feed it is the delay before each closed bar is fetched.
	LiveGrace time.Duration
	// PageBars bounds the bars of one history page, rounded down to whole backfill
	// chunks (default 65,536; at least one chunk; at most Config.MaxBars).
	PageBars int64
	// KeepAlive is how often a subscribed series tells the live tier it is still in
	// use, so the tier's idle timeout does not stop its feed (default 1 min).
	KeepAlive time.Duration
	// FormingEvery is how often the forming bar is polled for subscribers that asked
	// for it (default 1 s).
	FormingEvery time.Duration
}

// Defaults of SubscribeOptions.
const (
	DefaultSubscribeBuffer = 1024
	DefaultSubscribeInbox  = 256
	DefaultHeartbeat       = 15 * time.Second
	DefaultLiveGrace       = 5 * time.Second
	DefaultPageBars        = 64 << 10
	DefaultLiveKeepAlive   = time.Minute
	DefaultFormingEvery    = time.Second
)

func (o SubscribeOptions) withDefaults() SubscribeOptions {
	if o.Buffer <= 1 {
		o.Buffer = DefaultSubscribeBuffer
	}
	if o.Inbox <= 0 {
		o.Inbox = DefaultSubscribeInbox
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.LiveGrace <= 0 {
		o.LiveGrace = DefaultLiveGrace
	}
	if o.PageBars <= 0 {
		o.PageBars = DefaultPageBars
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultLiveKeepAlive
	}
	if o.FormingEvery <= 0 {
		o.FormingEvery = DefaultFormingEvery
	}
	return o
}

// SubscribeRequest asks for the closed bars of one series from Start on, then for each
// bar as it closes.
type SubscribeRequest struct {
	NodeID string
	// Interval may be 0 when the node id names the timeframe.
	Interval int64
	// Start (epoch seconds) is where history begins; 0 means no history: the first
	// bar delivered is the next one to close. A start in the future is a bad request.
	Start int64
	// Cursor, when set, resumes a subscription: delivery continues at the cursor of
	// the last bars or end event received, and Start is ignored.
	Cursor string
	// Strategy, PartialOK, SLA, MinCoverage, MaxLagSeconds and Conformance apply to
	// every history page and repair as they do to a Fetch.
	Strategy      Strategy
	PartialOK     bool
	SLA           *SLAPolicy
	MinCoverage   float64
	MaxLagSeconds float64
	Conformance   string
	// Forming opts in to forming events: the provisional bar of the current interval
	// from the live tier, never stored and never counted as delivered.
	Forming bool
}

// StreamEventType names a subscription event (the "type" of the wire protocol).
type StreamEventType string

// Subscription events (SPEC §9).
const (
	// EventBars: a frame of closed bars, with the cursor to resume after them.
	EventBars StreamEventType = "bars"
	// EventCaughtUp: history is delivered and live bars follow; NextTS is the next
	// bar expected. Sent once per subscription.
	EventCaughtUp StreamEventType = "caught_up"
	// EventForming: the provisional bar of the current interval (opt-in).
	EventForming StreamEventType = "forming"
	// EventGap: the live feed left Range undelivered (it reconnected, skipped bars or
	// went silent); the range is being fetched and is delivered before newer bars.
	EventGap StreamEventType = "gap"
	// EventHeartbeat: nothing else was sent for SubscribeOptions.Heartbeat.
	EventHeartbeat StreamEventType = "heartbeat"
	// EventError: a typed error (Err; ErrorCode gives its SPEC code). An end follows.
	EventError StreamEventType = "error"
	// EventEnd: the subscription is over (Reason), the last event; Cursor resumes it.
	EventEnd StreamEventType = "end"
)

// Reasons of an end event.
const (
	// EndCanceled: the subscriber cancelled (context or Close).
	EndCanceled = "canceled"
	// EndSlowConsumer: the subscriber let its queue fill while live.
	EndSlowConsumer = "slow_consumer"
	// EndError: an error event precedes it.
	EndError = "error"
	// EndShutdown: the provider (or the server) is shutting down.
	EndShutdown = "shutdown"
)

// Origins of bars events: how the bars reached the subscription.
const (
	// OriginHistory: a history page, served through Fetch.
	OriginHistory = "history"
	// OriginRepair: fetched through Fetch to fill a hole or catch up (after a gap, for
	// a series without a live feed, or after the subscriber's inbox overflowed).
	OriginRepair = "repair"
)

// StreamEvent is one event of a subscription. Which fields are set depends on Type.
type StreamEvent struct {
	Type     StreamEventType
	NodeID   string
	Interval int64
	// Frame holds the bars (bars) or the one provisional bar (forming). It must not be
	// modified: subscribers of the same write share it.
	Frame *frame.Frame
	// Cursor (bars, caught_up, end) resumes the subscription after this event. It is
	// opaque: pass it back as SubscribeRequest.Cursor.
	Cursor string
	// Origin (bars): OriginHistory, OriginRepair, or the Origin of the write the bars
	// were delivered from (live, backfill, import).
	Origin string
	// Metadata (bars served through Fetch: history and repairs) is the page's Fetch
	// metadata: coverage, SLA downgrades, conformance flags.
	Metadata *Metadata
	// NextTS (caught_up) is the ts of the next bar expected.
	NextTS int64
	// Range (gap) is the range the live feed left undelivered.
	Range grid.Range
	// Err (error) is the typed error.
	Err error
	// Reason (end) is why the subscription ended: EndCanceled, EndSlowConsumer,
	// EndError or EndShutdown.
	Reason string
	// Time is when the event was made, on the provider's clock.
	Time time.Time
	// Shared is set on a bars event that every subscription at the same cursor
	// received as this very event (all fields equal): the live bars of one write, at the
	// live edge. A transport may encode it once for all of them (Shared.Encoding).
	Shared *stream.Shared
}

// Subscription is a running subscription. Read its events from Events until the
// channel closes (after the end event); Close ends it early.
type Subscription struct {
	events  <-chan StreamEvent
	cancel  context.CancelFunc
	done    <-chan struct{}
	abandon func()
	series  Series
	start   string
}

// Events returns the subscription's events; the channel closes after the end event.
func (s *Subscription) Events() <-chan StreamEvent { return s.events }

// Series is the series subscribed to.
func (s *Subscription) Series() Series { return s.series }

// Cursor is the cursor the subscription started at: resuming from it repeats the
// whole subscription.
func (s *Subscription) Cursor() string { return s.start }

// Close ends the subscription and waits for it to stop. Events not read yet are
// discarded; it is safe to call more than once and concurrently with reading. A
// subscription ended through its context instead must have its events read until the
// channel closes, or be closed: its last events wait for the reader.
func (s *Subscription) Close() {
	s.cancel()
	s.abandon()
	<-s.done
}

// subscriptions is the provider's subscription state, created on first use.
type subscriptions struct {
	opts SubscribeOptions
	once sync.Once
	hub  *stream.Hub[Series, Ingested]
}

// hubOf returns the provider's hub, starting it on first use: one ingest listener for
// every subscription, and one live keep-alive per subscribed series.
func (p *Provider) hubOf() *stream.Hub[Series, Ingested] {
	p.subs.once.Do(func() {
		p.subs.opts = p.subs.opts.withDefaults()
		p.subs.hub = stream.NewHub[Series, Ingested](p.keepLive)
		hub := p.subs.hub
		p.OnIngest(func(w Ingested) {
			w.share = &writeShare{}
			hub.Publish(w.Series, w)
		})
	})
	return p.subs.hub
}

// keepLive keeps the live tier's subscription of s running while s has subscribers
// (the tier stops a series nothing asked about for its idle timeout). It is the hub's
// upstream: one per series, however many subscribe.
func (p *Provider) keepLive(s Series) func() {
	if p.live == nil || !p.live.Serves(s) {
		return func() {}
	}
	ctx, cancel, done, ok := p.life.start()
	if !ok {
		return func() {}
	}
	every := p.subs.opts.KeepAlive
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer done()
		for {
			if err := p.live.Subscribe(s); err != nil {
				p.log.Warn("seamless.subscribe.live_failed", "node_id", s.NodeID, "interval", s.Interval, "err", err)
			}
			if waitFor(ctx, p.clock, every) != nil {
				return
			}
		}
	}()
	return func() {
		cancel()
		<-stopped
	}
}

// waitFor waits d on clk (a fake clock's deadlines fire when the test moves it).
func waitFor(ctx context.Context, clk clock.Clock, d time.Duration) error {
	wctx, cancel := clk.WithDeadline(ctx, clk.Now().Add(d))
	defer cancel()
	<-wctx.Done()
	return ctx.Err()
}

// Subscribers returns the number of running subscriptions of s.
func (p *Provider) Subscribers(s Series) int { return p.hubOf().Subscribers(s) }

// Subscribe starts a subscription (SPEC §9): the closed bars of [Start, now) through
// the Fetch path, then every bar as it closes, each delivered once and in ts order.
// A request that cannot be served (malformed, unknown source, a start in the future,
// a bad cursor) is refused here with the error Fetch would give; failures later are
// error events. The subscription runs until ctx ends, Close is called, the provider
// closes, or it ends itself (an end event says why).
func (p *Provider) Subscribe(ctx context.Context, req SubscribeRequest) (*Subscription, error) {
	sub, err := p.newSubscription(req)
	if err != nil {
		return nil, err
	}
	lctx, lcancel, done, ok := p.life.start()
	if !ok {
		return nil, ErrClosed
	}
	// The subscription ends with the caller's context or with the provider's lifetime.
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(lctx, cancel)
	sctx, span := p.tracer.Start(sctx, "seamless.subscribe", trace.WithAttributes(
		attribute.String("node_id", sub.rq.series.NodeID), attribute.Int64("interval", sub.rq.series.Interval),
		attribute.Int64("cursor", sub.seam.Next)))
	sub.ctx, sub.life = sctx, lctx
	out := make(chan StreamEvent, sub.opts.Buffer)
	finished := make(chan struct{})
	abandoned := make(chan struct{})
	sub.out, sub.abandoned = out, abandoned
	// Joined before the first page is read: see the package comment above.
	sub.inbox = p.hubOf().Join(sub.rq.series, sub.opts.Inbox)
	startCursor := stream.Cursor(sub.seam.Next) // read before the goroutine owns sub
	go func() {
		defer close(finished)
		defer done()
		defer lcancel()
		defer stop()
		defer span.End()
		defer close(out)
		defer sub.inbox.Leave()
		sub.run()
		span.SetAttributes(attribute.Int64("cursor.end", sub.seam.Next), attribute.Int64("bars", sub.delivered))
	}()
	var once sync.Once
	return &Subscription{events: out, cancel: cancel, done: finished, series: sub.rq.series, start: startCursor,
		abandon: func() { once.Do(func() { close(abandoned) }) }}, nil
}

// newSubscription validates req as Fetch validates a request, before anything starts.
func (p *Provider) newSubscription(req SubscribeRequest) (*subscription, error) {
	if p.isClosed() {
		return nil, ErrClosed
	}
	p.hubOf() // the options are settled on first use
	if req.Interval == 0 {
		if node, err := p.parseNode(req.NodeID); err == nil {
			req.Interval = node.Interval
		}
	}
	strategy, err := ParseStrategy(string(req.Strategy))
	if err != nil {
		return nil, err
	}
	req.Strategy = strategy
	if _, err := requestPolicy(Request{SLA: req.SLA, MinCoverage: req.MinCoverage, MaxLagSeconds: req.MaxLagSeconds}); err != nil {
		return nil, err
	}
	if _, err := conformance.PolicyByName(req.Conformance); err != nil {
		return nil, &RequestError{Field: "conformance", Message: err.Error()}
	}
	rq, err := p.resolve(req.NodeID, req.Interval)
	if err != nil {
		return nil, err
	}
	iv := rq.series.Interval
	now := p.clock.Now().Unix()
	next := ClosedEnd(now, iv)
	switch {
	case req.Cursor != "":
		ts, err := stream.ParseCursor(req.Cursor)
		if err != nil {
			return nil, badRequest("cursor", "%v", err)
		}
		if ts%iv != 0 || ts < -MaxTimestamp || ts > MaxTimestamp {
			return nil, badRequest("cursor", "cursor %q is not on the %d s grid of %s", req.Cursor, iv, rq.series)
		}
		next = ts
	case req.Start != 0:
		if req.Start < -MaxTimestamp || req.Start > MaxTimestamp {
			return nil, badRequest("start", "%d is outside the supported timestamps, ±%d epoch seconds", req.Start, int64(MaxTimestamp))
		}
		if req.Start > now {
			return nil, badRequest("start", "start %d is in the future (now %d); omit it to receive only the bars that close from now on", req.Start, now)
		}
		next = grid.CeilAlign(req.Start, iv)
	}
	opts := p.subs.opts
	window := p.backfill.cfg.WindowBars
	pageChunks := max(min(opts.PageBars, p.maxBars)/window, 1)
	return &subscription{p: p, req: req, rq: rq, opts: opts, seam: stream.Seam{Next: next, Interval: iv},
		chunk: window * iv, pageChunks: pageChunks,
		liveFed: p.live != nil && p.live.Serves(rq.series)}, nil
}

// subscription is one subscription's state, owned by its goroutine.
type subscription struct {
	p    *Provider
	req  SubscribeRequest
	rq   resolved
	opts SubscribeOptions
	ctx  context.Context
	life context.Context // the provider's lifetime: its end is a shutdown
	out  chan StreamEvent
	// abandoned is closed when the reader gives up (Close): the last events need not
	// wait for it.
	abandoned chan struct{}
	inbox     *stream.Sub[Series, Ingested]
	seam      stream.Seam
	// chunk is the backfill chunk width in seconds; a page spans pageChunks of them.
	chunk      int64
	pageChunks int64
	liveFed    bool // a live feed serves the series
	live       bool // history is delivered: sends no longer wait for the reader
	lastSent   time.Time
	// retryAt holds back the next repair after one that could not complete.
	retryAt time.Time
	// gapFrom is the start of the gap last announced, so a gap still being repaired is
	// announced once.
	gapFrom   int64
	formingAt time.Time
	lastForm  *frame.Frame
	delivered int64
}

// errSlowConsumer ends a subscription whose reader let its queue fill.
var errSlowConsumer = errors.New("slow consumer")

// run is the subscription: history, caught_up, then live until it ends. The end event
// always fits: sends keep one slot of the queue free for it.
func (s *subscription) run() {
	err := s.replay()
	if err == nil {
		s.live = true
		err = s.send(StreamEvent{Type: EventCaughtUp, NextTS: s.seam.Next, Cursor: stream.Cursor(s.seam.Next)})
	}
	if err == nil {
		err = s.follow()
	}
	end := StreamEvent{Type: EventEnd, Cursor: stream.Cursor(s.seam.Next)}
	switch {
	case errors.Is(err, errSlowConsumer):
		end.Reason = EndSlowConsumer
		s.p.log.Warn("seamless.subscribe.slow_consumer", "node_id", s.rq.series.NodeID, "interval", s.rq.series.Interval,
			"cursor", s.seam.Next, "buffer", s.opts.Buffer)
	case s.life.Err() != nil:
		end.Reason = EndShutdown
	case s.ctx.Err() != nil:
		end.Reason = EndCanceled
	default:
		end.Reason = EndError
		s.final(StreamEvent{Type: EventError, Err: err})
	}
	s.final(end)
}

// final queues one of the last events (error, end). While live, send left room for
// them; during history the reader may not have made room, and final waits for it
// unless the reader has gone (Close).
func (s *subscription) final(ev StreamEvent) {
	select {
	case s.out <- s.stamp(ev):
	case <-s.abandoned:
	}
}

// stamp fills the fields every event carries.
func (s *subscription) stamp(ev StreamEvent) StreamEvent {
	s.event(&ev)
	return ev
}

func (s *subscription) event(ev *StreamEvent) {
	ev.NodeID, ev.Interval, ev.Time = s.rq.series.NodeID, s.rq.series.Interval, s.p.clock.Now()
}

// send queues ev for the reader. During history it waits for room (the reader sets
// the pace); once live it never waits: a queue that is full but for the two slots kept
// for the error and end events ends the subscription (errSlowConsumer).
func (s *subscription) send(ev StreamEvent) error {
	if ev.Shared == nil {
		ev = s.stamp(ev)
	}
	if s.live {
		// Only this goroutine sends, so the room seen here cannot shrink before the send.
		if len(s.out) >= cap(s.out)-2 {
			return errSlowConsumer
		}
		s.out <- ev
	} else {
		select {
		case s.out <- ev:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
	s.lastSent = s.p.clock.Now()
	if ev.Type == EventBars {
		s.delivered += int64(ev.Frame.Len())
	}
	return nil
}

// replay delivers the closed bars from the cursor to the end of the closed region in
// pages, re-reading the clock after each so that bars closing during the replay are
// part of it. It stops early, without error, when a page's newest bars are not
// published upstream yet (the live phase fetches them later).
func (s *subscription) replay() error {
	for {
		end := ClosedEnd(s.p.clock.Now().Unix(), s.rq.series.Interval)
		if s.seam.Next >= end {
			return nil
		}
		complete, err := s.page(grid.R(s.seam.Next, end), OriginHistory)
		if err != nil || !complete {
			return err
		}
	}
}

// page fetches and delivers the first page of r (from the cursor, which is r.Start, to
// at most pageChunks chunk boundaries later). It reports whether the page was
// delivered whole; a Fetch error is returned as it is.
func (s *subscription) page(r grid.Range, origin string) (bool, error) {
	first := grid.FloorAlign(r.Start, s.chunk)
	if end := first + s.pageChunks*s.chunk; end < r.End {
		r.End = end
	}
	req := s.req
	strategy := req.Strategy
	if origin == OriginRepair && strategy == Seamless {
		// A repair fetches what the live tier did not deliver in time: waiting for the
		// live tier again (Seamless's live_wait phase) would only add its budget.
		strategy = AutoBackfill
	}
	res, err := s.p.Fetch(s.ctx, Request{NodeID: req.NodeID, Interval: s.rq.series.Interval, Start: r.Start, End: r.End,
		Strategy: strategy, PartialOK: req.PartialOK, SLA: req.SLA, MinCoverage: req.MinCoverage,
		MaxLagSeconds: req.MaxLagSeconds, Conformance: req.Conformance})
	if err != nil {
		if s.ctx.Err() != nil {
			return false, s.ctx.Err()
		}
		return false, err
	}
	f, md, next := res.Frame, res.Metadata, r.End
	// Holes the caller accepted (partial results, a downgrade) are delivered as the
	// metadata describes them; otherwise the cursor moves only over what is covered,
	// and bars the source has not published yet are asked for again later.
	if md.CoverageRatio < 1 && !md.Downgraded && !req.PartialOK && req.Strategy != PartialFill {
		cov, err := s.p.Coverage(s.ctx, req.NodeID, s.rq.series.Interval)
		if err != nil {
			return false, err
		}
		next = r.Start
		for _, c := range cov.IntersectRange(r).Ranges() {
			if c.Start <= next {
				next = max(next, c.End)
			}
		}
		f = f.Slice(0, f.SearchTS(next))
	}
	if next > s.seam.Next {
		if err := s.send(StreamEvent{Type: EventBars, Frame: f, Metadata: &md, Origin: origin, Cursor: stream.Cursor(next)}); err != nil {
			return false, err
		}
		s.seam.Advance(next)
	}
	return next == r.End, nil
}

// follow is the live phase: writes from the inbox are offered to the seam; holes and
// late bars are repaired through Fetch; heartbeats and forming bars go out on time.
func (s *subscription) follow() error {
	// Writes queued during the replay are mostly behind the cursor now: the seam drops
	// them. A lag signal from the replay means some were lost: catch up from storage.
	for {
		due := s.due()
		wctx, cancel := s.p.clock.WithDeadline(s.ctx, due)
		var err error
		select {
		case w := <-s.inbox.Inbox():
			err = s.offer(w)
		case <-s.inbox.Lagged():
			err = s.catchUp(false)
		case <-wctx.Done():
			if s.ctx.Err() != nil {
				cancel()
				return s.ctx.Err()
			}
			err = s.tick()
		}
		cancel()
		if err != nil {
			return err
		}
	}
}

// due is when the live phase must next act without a write: the next heartbeat, the
// deadline of the next bar (its close plus LiveGrace, or a repair's retry), the next
// forming poll.
func (s *subscription) due() time.Time {
	due := s.lastSent.Add(s.opts.Heartbeat)
	bar := time.Unix(s.seam.Next+s.rq.series.Interval, 0).Add(s.opts.LiveGrace)
	if s.retryAt.After(bar) {
		bar = s.retryAt
	}
	if bar.Before(due) {
		due = bar
	}
	if s.req.Forming && s.liveFed {
		if f := s.formingAt.Add(s.opts.FormingEvery); f.Before(due) {
			due = f
		}
	}
	return due
}

// tick does what is due: repair bars the live feed is late with, poll the forming
// bar, send a heartbeat.
func (s *subscription) tick() error {
	now := s.p.clock.Now()
	iv := s.rq.series.Interval
	late := time.Unix(s.seam.Next+iv, 0).Add(s.opts.LiveGrace)
	if ClosedEnd(now.Unix(), iv) > s.seam.Next && !now.Before(late) && !now.Before(s.retryAt) {
		if err := s.catchUp(s.liveFed); err != nil {
			return err
		}
	}
	if s.req.Forming && s.liveFed && !now.Before(s.formingAt.Add(s.opts.FormingEvery)) {
		s.formingAt = now
		if err := s.forming(); err != nil {
			return err
		}
	}
	if !s.p.clock.Now().Before(s.lastSent.Add(s.opts.Heartbeat)) {
		return s.send(StreamEvent{Type: EventHeartbeat})
	}
	return nil
}

// offer applies one write to the seam.
func (s *subscription) offer(w Ingested) error {
	for range 2 { // a repair, then the write again
		step := s.seam.Offer(w.Range, w.Frame.TS)
		switch step.Action {
		case stream.Drop:
			return nil
		case stream.Deliver:
			if step.Hi > step.Lo {
				ev := w.share.event(step, func() StreamEvent {
					return s.stamp(StreamEvent{Type: EventBars, Frame: w.Frame.Slice(step.Lo, step.Hi), Origin: string(w.Origin),
						Cursor: stream.Cursor(step.Next), Shared: &stream.Shared{}})
				})
				if err := s.send(ev); err != nil {
					return err
				}
			}
			s.seam.Advance(step.Next)
			return nil
		case stream.Repair:
			complete, err := s.repair(step.Missing, true)
			if err != nil || !complete {
				return err // the rest is left for the next tick to fetch
			}
		}
	}
	return nil
}

// catchUp fetches from the cursor to the end of the closed region: bars the live feed
// is late with (gap: announced as a gap), or writes the inbox dropped.
func (s *subscription) catchUp(gap bool) error {
	end := ClosedEnd(s.p.clock.Now().Unix(), s.rq.series.Interval)
	if end <= s.seam.Next {
		return nil
	}
	_, err := s.repair(grid.R(s.seam.Next, end), gap)
	return err
}

// repair fetches missing (which starts at the cursor) through Fetch, page by page, and
// delivers it. A failure while live is not the end: the feed's later writes or the
// next tick try again after LiveGrace, and the gap stays announced meanwhile.
func (s *subscription) repair(missing grid.Range, gap bool) (bool, error) {
	if gap && s.gapFrom != missing.Start {
		s.gapFrom = missing.Start
		if err := s.send(StreamEvent{Type: EventGap, Range: missing}); err != nil {
			return false, err
		}
	}
	for s.seam.Next < missing.End {
		complete, err := s.page(grid.R(s.seam.Next, missing.End), OriginRepair)
		if errors.Is(err, errSlowConsumer) || s.ctx.Err() != nil {
			return false, err
		}
		if err != nil || !complete {
			if err != nil {
				s.p.log.Warn("seamless.subscribe.repair_failed", "node_id", s.rq.series.NodeID, "interval", s.rq.series.Interval,
					"range", grid.R(s.seam.Next, missing.End).String(), "err", err)
			}
			s.retryAt = s.p.clock.Now().Add(s.opts.LiveGrace)
			return false, nil
		}
	}
	return true, nil
}

// forming sends the live tier's forming bar when it changed since the last one sent.
func (s *subscription) forming() error {
	f, ok := s.p.live.Forming(s.rq.series)
	if !ok || f.Len() == 0 || f.TS[0] < s.seam.Next || sameRow(f, s.lastForm) {
		return nil
	}
	if len(s.out) >= cap(s.out)-2 {
		return nil // provisional and replaced by the next one: not worth ending the subscriber for
	}
	s.lastForm = f
	return s.send(StreamEvent{Type: EventForming, Frame: f})
}

// writeShare holds the bars events one write became, one per seam step: the
// subscriptions at the same cursor take the same step and deliver the same event
// (stamped once, its encodings shared) instead of each making its own.
type writeShare struct {
	mu    sync.Mutex
	steps []sharedStep
}

type sharedStep struct {
	step stream.Step
	ev   StreamEvent
}

// event returns the event of step, made by mk for the first subscription to take it.
// A write published before the hub set share (none is) would get a fresh event.
func (w *writeShare) event(step stream.Step, mk func() StreamEvent) StreamEvent {
	if w == nil {
		return mk()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, st := range w.steps {
		if st.step == step {
			return st.ev
		}
	}
	ev := mk()
	w.steps = append(w.steps, sharedStep{step, ev})
	return ev
}

// sameRow reports whether two forming bars are the same update (one row each).
func sameRow(a, b *frame.Frame) bool { return b != nil && reflect.DeepEqual(a, b) }
