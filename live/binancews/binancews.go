// Package binancews is a seamless.LiveFeed for Binance spot candles: node ids
// ohlcv:binance:{BASE/QUOTE}:{tf}, streamed as {symbol}@kline_{tf} (symbol lower-case:
// BTC/USDT → btcusdt) over Binance's combined-stream endpoint.
//
// # Messages
//
// The combined-stream endpoint wraps each event with its stream name,
// {"stream":"btcusdt@kline_1m","data":…}; the name routes it to the subscriptions of
// that stream. Each kline event {"e":"kline","E":…,"s":"BTCUSDT","k":{"t":openMs,
// "T":closeMs,"i":"1m","o":"…","h":"…","l":"…","c":"…","v":"…","x":closed,…}} becomes a
// one-bar LiveUpdate: ts = t/1000, prices and (base-asset) volume parsed from the
// decimal strings, Closed = x. A message that is not such an event for a subscribed
// stream — bad JSON, a stream nobody subscribed, another symbol or interval than its
// stream's, an off-grid or inconsistent open or close time, a price that is not a finite
// decimal — is counted in Stats.Malformed, logged and skipped; the connection stays up.
// Replies to the feed's own requests ({"result":null,"id":n}) are consumed. An error
// reply ({"error":{"code":…,"msg":…},"id":n}) is logged (seamless.live.request_failed)
// and counted in Stats.RequestErrors; its streams are requested again on the next
// connection, not at once.
//
// # Connections
//
// Binance accepts 300 new connections per 5 minutes per IP and closes every connection
// after 24 h, so subscriptions share connections ("shards") rather than opening one
// each. A subscription joins the shard already carrying its stream, else the first shard
// with fewer than Options.MaxStreamsPerConn streams (Binance allows 1024), else it
// starts a new shard. Subscriptions of the same series share the stream, and each
// receives every update. A shard dials {base}/stream and sends its streams in SUBSCRIBE
// requests ({"method":"SUBSCRIBE","params":[…],"id":n}); streams that join or leave
// while it is connected are sent in further SUBSCRIBE and UNSUBSCRIBE requests. Binance
// drops a connection that sends more than 5 messages a second (requests and the pongs
// answering its pings every 20 s), so a shard sends at most one request per 250 ms of
// wall time, each carrying every change pending by then. When a shard's last
// subscription ends, its connection closes and its goroutines exit.
//
// The library answers the server's pings. A connection that fails, is closed by the
// server or stays silent for Options.ReadTimeout is replaced after a backoff: MinBackoff
// doubled per consecutive failure up to MaxBackoff, ±25% jitter, slept on the injected
// clock. The failure count resets once a connection has delivered a valid kline. Every
// new attempt after a shard's first connection counts in Stats.Reconnects and calls
// Options.OnReconnect; the new connection subscribes all the shard's current streams
// again. Bars that closed while disconnected are not replayed by Binance; the live tier
// leaves that hole for REST backfill.
//
// # Base URL
//
// Options.BaseURL (SEAMLESS_BINANCE_WS_URL) names either the raw-stream endpoint, ending
// in /ws like DefaultBaseURL, or the combined-stream endpoint, ending in /stream. The
// feed connects to the combined one: a trailing /ws is replaced by /stream, a trailing
// /stream is kept, and any other path is rejected.
//
// # Slow subscribers
//
// A shard's reader never waits for a subscriber. It puts each update in the
// subscription's channel (buffered, 16 updates) when there is room and nothing queued
// before it, else in the subscription's queue, which a forwarding goroutine moves to the
// channel as room frees up. The queue holds closed bars in order, then at most one
// forming update, the newest: a later update replaces a queued forming one, counted in
// Stats.Dropped, so a subscriber that falls behind skips provisional values only. Closed
// bars are not dropped for slowness (the queue grows by one bar per interval), except
// beyond 4096 of them, when the oldest goes (also counted) and becomes a hole the live
// tier backfills as after a reconnect. Everything of a subscription stops when its
// context ends; its channel is closed after its forwarder has exited and, when it was
// the last subscription of its shard, after the shard's connection and goroutines.
package binancews

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/source/binance"
)

// DefaultBaseURL is Binance's public raw-stream endpoint; the feed connects to the
// combined-stream endpoint next to it, wss://stream.binance.com:9443/stream.
const DefaultBaseURL = "wss://stream.binance.com:9443/ws"

// Defaults of Options.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// DefaultReadTimeout: Binance pushes a kline update every one or two seconds and
	// pings every 20 s, so a minute of silence means a dead connection.
	DefaultReadTimeout = time.Minute
	DefaultDialTimeout = 10 * time.Second
	// DefaultMaxStreamsPerConn, well under Binance's 1024, keeps small the series hit
	// by one lost connection and the SUBSCRIBE that restores them.
	DefaultMaxStreamsPerConn = 200
	// DefaultSource labels reconnects for OnReconnect.
	DefaultSource = "binance"
)

// Binance's limits and the pacing that respects them.
const (
	// maxStreamsPerConn is the most streams Binance allows on one connection.
	maxStreamsPerConn = 1024
	// requestInterval spaces a connection's requests: 4 a second, under Binance's 5
	// incoming messages a second, which also count the pongs answering its pings.
	requestInterval = 250 * time.Millisecond
)

// maxBacklog bounds the closed bars queued for a subscriber that does not drain its
// channel: almost three days of 1-minute bars.
const maxBacklog = 4096

// jitterRatio spreads backoff delays by ±25%, as the REST source does.
const jitterRatio = 0.25

// readLimit bounds one message; a kline event is about 400 bytes.
const readLimit = 64 << 10

// Options configure a Feed. The zero value streams from DefaultBaseURL.
type Options struct {
	// BaseURL is Binance's raw-stream endpoint, ending in /ws, or its combined-stream
	// endpoint, ending in /stream; the feed connects to the latter, replacing a
	// trailing /ws by /stream. Any other path is rejected.
	BaseURL string
	// HTTPClient makes the websocket handshakes. The default has a transport of its own
	// that keeps no idle connections: a handshake is never reused, and net/http pools
	// the connection of a dial its request stopped waiting for (a subscription that
	// ended while its shard dialed), which would stay open, idle, for 90 s.
	HTTPClient *http.Client
	// Clock drives backoff and read timeouts (default clock.Real). Requests on a
	// connection are paced on wall time, as Binance counts them.
	Clock clock.Clock
	// Seed seeds the backoff jitter (0: random).
	Seed uint64
	// MinBackoff and MaxBackoff bound the reconnect delay before jitter.
	MinBackoff, MaxBackoff time.Duration
	// ReadTimeout drops a connection silent for this long (negative: never).
	ReadTimeout time.Duration
	// DialTimeout bounds one websocket handshake.
	DialTimeout time.Duration
	// MaxStreamsPerConn bounds the streams one connection carries, 1 to 1024 (default
	// DefaultMaxStreamsPerConn).
	MaxStreamsPerConn int
	// Source is passed to OnReconnect (default DefaultSource).
	Source string
	// OnReconnect, when set, is called before each reconnect attempt, for the
	// seamless_live_reconnects_total{source} counter. It must not block.
	OnReconnect func(source string)
	// Logger receives seamless.live.* events (default: discarded).
	Logger *slog.Logger
}

// endpoint derives the combined-stream endpoint from a base URL (see Options.BaseURL).
func endpoint(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
		return "", errors.New("want a ws or wss URL such as " + DefaultBaseURL)
	}
	p := strings.TrimRight(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/stream"):
	case strings.HasSuffix(p, "/ws"):
		p = strings.TrimSuffix(p, "/ws") + "/stream"
	default:
		return "", errors.New("want a path ending in /ws or /stream, as in " + DefaultBaseURL)
	}
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

// Stats are a Feed's counters since New, over all its connections and subscriptions.
type Stats struct {
	// Dials counts handshakes attempted, Connects those that succeeded, Disconnects
	// connections lost (not counting those closed when their last subscription ended).
	Dials, Connects, Disconnects uint64
	// Reconnects counts the attempts after each shard's first.
	Reconnects uint64
	// Messages counts messages read; Malformed those skipped as neither a valid kline
	// of a subscribed stream nor a reply to a request.
	Messages, Malformed uint64
	// RequestErrors counts SUBSCRIBE and UNSUBSCRIBE requests answered with an error.
	RequestErrors uint64
	// Dropped counts updates a slow subscriber never received: forming updates
	// replaced in its queue, and closed bars beyond 4096 queued.
	Dropped uint64
}

// Feed streams Binance klines. It implements seamless.LiveFeed and is safe for
// concurrent use.
type Feed struct {
	opts     Options
	endpoint string // the combined-stream URL
	clock    clock.Clock
	log      *slog.Logger

	randMu sync.Mutex
	rand   *rand.Rand

	// mu guards shards and lastShard, and, with each shard's mu, the shards' streams.
	mu        sync.Mutex
	shards    []*shard
	lastShard int

	dials, connects, disconnects, reconnects, messages, malformed atomic.Uint64
	requestErrors, dropped                                        atomic.Uint64
}

var _ seamless.LiveFeed = (*Feed)(nil)

// New returns a Feed.
func New(opts Options) (*Feed, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	ep, err := endpoint(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("binancews: base URL %q: %w", opts.BaseURL, err)
	}
	if opts.HTTPClient == nil {
		tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			tr = dt.Clone() // its proxy, dial and TLS settings
		}
		tr.MaxIdleConnsPerHost = -1 // close, never pool, a connection left idle
		opts.HTTPClient = &http.Client{Transport: tr}
	}
	if opts.MinBackoff == 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.MinBackoff < 0 || opts.MaxBackoff < opts.MinBackoff || opts.DialTimeout < 0 {
		return nil, errors.New("binancews: want 0 < MinBackoff <= MaxBackoff and DialTimeout >= 0")
	}
	if opts.MaxStreamsPerConn == 0 {
		opts.MaxStreamsPerConn = DefaultMaxStreamsPerConn
	}
	if opts.MaxStreamsPerConn < 1 || opts.MaxStreamsPerConn > maxStreamsPerConn {
		return nil, fmt.Errorf("binancews: MaxStreamsPerConn %d: want 1 to %d", opts.MaxStreamsPerConn, maxStreamsPerConn)
	}
	if opts.Source == "" {
		opts.Source = DefaultSource
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Feed{opts: opts, endpoint: ep, clock: opts.Clock, log: opts.Logger,
		rand: rand.New(rand.NewPCG(seed, ^seed))}, nil
}

// Stats returns a snapshot of the counters.
func (f *Feed) Stats() Stats {
	return Stats{
		Dials: f.dials.Load(), Connects: f.connects.Load(), Disconnects: f.disconnects.Load(),
		Reconnects: f.reconnects.Load(), Messages: f.messages.Load(), Malformed: f.malformed.Load(),
		RequestErrors: f.requestErrors.Load(), Dropped: f.dropped.Load(),
	}
}

// Subscribe implements seamless.LiveFeed. A node id Binance cannot stream is a
// Permanent error.
func (f *Feed) Subscribe(ctx context.Context, s seamless.Series) (<-chan seamless.LiveUpdate, error) {
	m, err := resolve(s)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	sb := &sub{m: m, stream: strings.ToLower(m.Symbol) + "@kline_" + m.Interval,
		out: make(chan seamless.LiveUpdate, 16), wake: make(chan struct{}, 1)}
	f.join(sb)
	go f.forward(ctx, sb)
	return sb.out, nil
}

// sub is one subscription: its stream, its channel and the queue its forwarder drains.
type sub struct {
	m      binance.Market
	stream string
	shard  *shard // set by join
	out    chan seamless.LiveUpdate
	wake   chan struct{} // (1) signals an update queued

	mu      sync.Mutex
	closed  []seamless.LiveUpdate // closed bars waiting for room in out, oldest first
	forming seamless.LiveUpdate   // the newest forming update waiting, received after closed (nil Bars: none)
	moving  bool                  // the forwarder holds an update on its way to out
}

// push puts u in the channel if it has room and nothing waits before u, else queues it,
// without blocking. It returns how many updates it dropped: a queued forming update that
// u supersedes, and the oldest closed bar beyond maxBacklog.
func (sb *sub) push(u seamless.LiveUpdate) (dropped uint64) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if !sb.moving && len(sb.closed) == 0 && sb.forming.Bars == nil {
		select {
		case sb.out <- u:
			return 0
		default:
		}
	}
	if sb.forming.Bars != nil {
		sb.forming = seamless.LiveUpdate{}
		dropped++
	}
	if u.Closed {
		if len(sb.closed) == maxBacklog {
			sb.closed[0] = seamless.LiveUpdate{}
			sb.closed = sb.closed[1:]
			dropped++
		}
		sb.closed = append(sb.closed, u)
	} else {
		sb.forming = u
	}
	select {
	case sb.wake <- struct{}{}:
	default:
	}
	return dropped
}

// next takes the oldest queued update for the forwarder, which has delivered the
// previous one.
func (sb *sub) next() (seamless.LiveUpdate, bool) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	var u seamless.LiveUpdate
	if len(sb.closed) > 0 {
		u = sb.closed[0]
		sb.closed[0] = seamless.LiveUpdate{}
		sb.closed = sb.closed[1:]
	} else {
		u, sb.forming = sb.forming, seamless.LiveUpdate{}
	}
	sb.moving = u.Bars != nil
	return u, sb.moving
}

// forward moves sb's queue to its channel until ctx ends, then leaves the shard and
// closes the channel.
func (f *Feed) forward(ctx context.Context, sb *sub) {
	defer close(sb.out)
	defer f.leave(sb)
	for {
		u, ok := sb.next()
		if !ok {
			select {
			case <-sb.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case sb.out <- u:
		case <-ctx.Done():
			return
		}
	}
}

// shard is one shared connection and the streams it carries.
type shard struct {
	f    *Feed
	id   int
	ctx  context.Context // ends when the last subscription leaves
	stop context.CancelFunc
	done chan struct{} // closed when run returns
	wake chan struct{} // (1) signals a change of streams to the control loop

	mu sync.Mutex
	// streams maps each stream name to its subscriptions (never none). It is written
	// with both Feed.mu and mu held, so either lock suffices to read it.
	streams map[string][]*sub
	// onConn is what the current connection was asked for: true for streams in a
	// SUBSCRIBE, false for streams whose UNSUBSCRIBE is not answered yet (their
	// events may still arrive).
	onConn map[string]bool
	// pending holds the unanswered requests of the current connection by id.
	pending map[uint64]request
	lastID  uint64
}

// request is a SUBSCRIBE or UNSUBSCRIBE message.
type request struct {
	Method string   `json:"method"`
	Params []string `json:"params"`
	ID     uint64   `json:"id"`
}

const (
	subscribe   = "SUBSCRIBE"
	unsubscribe = "UNSUBSCRIBE"
)

// join adds sb to the shard carrying its stream, else to the first with room, else to
// a new shard.
func (f *Feed) join(sb *sub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sh := f.pick(sb.stream)
	start := sh == nil
	if start {
		f.lastShard++
		ctx, stop := context.WithCancel(context.Background())
		sh = &shard{f: f, id: f.lastShard, ctx: ctx, stop: stop, done: make(chan struct{}),
			wake: make(chan struct{}, 1), streams: map[string][]*sub{}}
		f.shards = append(f.shards, sh)
	}
	sh.mu.Lock()
	sh.streams[sb.stream] = append(sh.streams[sb.stream], sb)
	sh.mu.Unlock()
	sb.shard = sh
	if start {
		go sh.run()
	} else {
		sh.poke()
	}
}

// pick returns the shard for stream, or nil if a new one is needed. f.mu must be held.
func (f *Feed) pick(stream string) *shard {
	for _, sh := range f.shards {
		if _, ok := sh.streams[stream]; ok {
			return sh
		}
	}
	for _, sh := range f.shards {
		if len(sh.streams) < f.opts.MaxStreamsPerConn {
			return sh
		}
	}
	return nil
}

// leave removes sb from its shard. The shard's last subscription stops it and waits
// until its connection is closed and its goroutines have exited.
func (f *Feed) leave(sb *sub) {
	sh := sb.shard
	f.mu.Lock()
	sh.mu.Lock()
	if subs := slices.DeleteFunc(sh.streams[sb.stream], func(o *sub) bool { return o == sb }); len(subs) > 0 {
		sh.streams[sb.stream] = subs
	} else {
		delete(sh.streams, sb.stream)
	}
	empty := len(sh.streams) == 0
	sh.mu.Unlock()
	if empty {
		f.shards = slices.DeleteFunc(f.shards, func(o *shard) bool { return o == sh })
	}
	f.mu.Unlock()
	if !empty {
		sh.poke()
		return
	}
	sh.stop()
	<-sh.done
}

// poke tells the control loop that the streams changed.
func (sh *shard) poke() {
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

// run keeps a connection for the shard, reconnecting until its last subscription leaves.
func (sh *shard) run() {
	defer close(sh.done)
	f := sh.f
	failures := 0
	for {
		healthy, err := sh.session()
		if sh.ctx.Err() != nil {
			return
		}
		if healthy {
			failures = 0
		}
		delay := f.backoff(failures)
		failures++
		sh.mu.Lock()
		streams := len(sh.streams)
		sh.mu.Unlock()
		f.log.Warn("seamless.live.disconnected", "source", f.opts.Source, "shard", sh.id, "streams", streams,
			"error", err.Error(), "retry_in_ms", delay.Milliseconds(), "failures", failures)
		if f.clock.Sleep(sh.ctx, delay) != nil {
			return
		}
		f.reconnects.Add(1)
		if f.opts.OnReconnect != nil {
			f.opts.OnReconnect(f.opts.Source)
		}
	}
}

// backoff is the delay before reconnect attempt n+1 after n consecutive failures.
func (f *Feed) backoff(failures int) time.Duration {
	d := f.opts.MinBackoff
	for range failures {
		if d >= f.opts.MaxBackoff/2 {
			d = f.opts.MaxBackoff
			break
		}
		d *= 2
	}
	f.randMu.Lock()
	u := f.rand.Float64()
	f.randMu.Unlock()
	return time.Duration(float64(d) * (1 + jitterRatio*(2*u-1)))
}

// session runs one connection until it fails or the shard stops: the control loop
// subscribes the shard's streams while the reader routes messages. healthy reports
// whether the connection delivered at least one valid kline.
func (sh *shard) session() (healthy bool, err error) {
	f := sh.f
	f.dials.Add(1)
	dctx, cancel := f.clock.WithDeadline(sh.ctx, f.clock.Now().Add(f.opts.DialTimeout))
	conn, _, err := websocket.Dial(dctx, f.endpoint, &websocket.DialOptions{HTTPClient: f.opts.HTTPClient})
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.CloseNow()
	f.connects.Add(1)
	conn.SetReadLimit(readLimit)

	sh.mu.Lock()
	sh.onConn, sh.pending = map[string]bool{}, map[uint64]request{}
	sh.mu.Unlock()
	ctx, fail := context.WithCancelCause(sh.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { sh.control(ctx, conn, fail) })
	defer func() {
		fail(nil)
		wg.Wait()
	}()

	for {
		rctx, rcancel := ctx, context.CancelFunc(func() {})
		if f.opts.ReadTimeout > 0 {
			rctx, rcancel = f.clock.WithDeadline(ctx, f.clock.Now().Add(f.opts.ReadTimeout))
		}
		typ, data, err := conn.Read(rctx)
		timedOut := rctx.Err() != nil && ctx.Err() == nil
		rcancel()
		if err != nil {
			if sh.ctx.Err() != nil {
				return healthy, err
			}
			f.disconnects.Add(1)
			switch {
			case timedOut:
				err = fmt.Errorf("no message for %v: %w", f.opts.ReadTimeout, err)
			case ctx.Err() != nil:
				err = context.Cause(ctx) // the control loop failed to send
			}
			return healthy, err
		}
		f.messages.Add(1)
		if typ != websocket.MessageText {
			f.reject("", data, errors.New("binary message"))
			continue
		}
		if sh.route(data) {
			healthy = true
		}
	}
}

// control sends the requests the current connection needs, one per requestInterval,
// until ctx ends; a failed write ends the session with its error. The pacing is on wall
// time, the time Binance counts in, not on the injected clock.
func (sh *shard) control(ctx context.Context, conn *websocket.Conn, fail context.CancelCauseFunc) {
	for {
		req, ok := sh.nextRequest()
		if !ok {
			select {
			case <-sh.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		msg, _ := json.Marshal(req) // strings and a number: cannot fail
		if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
			fail(fmt.Errorf("send %s: %w", req.Method, err))
			return
		}
		if (clock.Real{}).Sleep(ctx, requestInterval) != nil {
			return
		}
	}
}

// nextRequest takes the next request the current connection needs, if any, and records
// it as sent: an UNSUBSCRIBE of every stream no longer wanted, which frees room first,
// else a SUBSCRIBE of every stream not yet asked for.
func (sh *shard) nextRequest() (request, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	req := request{Method: unsubscribe}
	for s, on := range sh.onConn {
		if on && len(sh.streams[s]) == 0 {
			req.Params = append(req.Params, s)
		}
	}
	if len(req.Params) == 0 {
		req.Method = subscribe
		for s := range sh.streams {
			if !sh.onConn[s] {
				req.Params = append(req.Params, s)
			}
		}
	}
	if len(req.Params) == 0 {
		return req, false
	}
	slices.Sort(req.Params)
	for _, s := range req.Params {
		sh.onConn[s] = req.Method == subscribe
	}
	sh.lastID++
	req.ID = sh.lastID
	sh.pending[req.ID] = req
	return req, true
}

// envelope is a message of the combined-stream endpoint: an event wrapped with its
// stream name, or the reply to a request.
type envelope struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
	ID     *uint64         `json:"id"`
	Error  *replyError     `json:"error"`
}

type replyError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

// route hands a text message to the subscriptions of its stream, or consumes the reply
// to a request. It reports whether the message was a valid kline.
func (sh *shard) route(data []byte) bool {
	f := sh.f
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		f.reject("", data, fmt.Errorf("not a combined-stream message: %w", err))
		return false
	}
	if env.Stream == "" {
		if env.ID == nil {
			f.reject("", data, errors.New("neither a stream event nor a reply"))
		} else {
			sh.reply(*env.ID, env.Error, data)
		}
		return false
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	subs := sh.streams[env.Stream]
	if len(subs) == 0 {
		// Events of a stream just left keep coming until its UNSUBSCRIBE is answered.
		if _, asked := sh.onConn[env.Stream]; !asked {
			f.reject(env.Stream, data, errors.New("no subscription to this stream"))
		}
		return false
	}
	u, err := parse(env.Data, subs[0].m)
	if err != nil {
		f.reject(env.Stream, data, err)
		return false
	}
	for i, sb := range subs {
		if i > 0 {
			u.Bars = u.Bars.Clone() // each subscriber owns its frame
		}
		f.dropped.Add(sb.push(u))
	}
	return true
}

// reply consumes the answer to request id; rerr is its error member, if any.
func (sh *shard) reply(id uint64, rerr *replyError, data []byte) {
	f := sh.f
	sh.mu.Lock()
	req, ok := sh.pending[id]
	delete(sh.pending, id)
	if ok && rerr == nil && req.Method == unsubscribe {
		for _, s := range req.Params {
			if !sh.onConn[s] { // not subscribed again meanwhile
				delete(sh.onConn, s)
			}
		}
	}
	sh.mu.Unlock()
	switch {
	case !ok:
		f.reject("", data, fmt.Errorf("reply to no pending request (id %d)", id))
	case rerr != nil:
		// Not retried on this connection, which would spin: the next one asks again.
		f.requestErrors.Add(1)
		f.log.Warn("seamless.live.request_failed", "source", f.opts.Source, "shard", sh.id, "method", req.Method,
			"streams", req.Params, "code", rerr.Code, "error", rerr.Msg)
	}
}

func (f *Feed) reject(stream string, data []byte, err error) {
	f.malformed.Add(1)
	const show = 200
	if len(data) > show {
		data = data[:show]
	}
	f.log.Warn("seamless.live.malformed", "source", f.opts.Source, "stream", stream,
		"error", err.Error(), "message", string(data))
}

// klineEvent is Binance's kline stream payload. Every key is declared: encoding/json
// matches keys case-insensitively when no field matches exactly, so an undeclared "V"
// (taker buy volume) would overwrite "v" (volume).
type klineEvent struct {
	Event     string `json:"e"`
	EventTime int64  `json:"E"`
	Symbol    string `json:"s"`
	K         *struct {
		Open        int64  `json:"t"`
		Close       int64  `json:"T"`
		Symbol      string `json:"s"`
		Interval    string `json:"i"`
		FirstTrade  int64  `json:"f"`
		LastTrade   int64  `json:"L"`
		O           string `json:"o"`
		C           string `json:"c"`
		H           string `json:"h"`
		Lo          string `json:"l"`
		V           string `json:"v"`
		Trades      int64  `json:"n"`
		Final       *bool  `json:"x"`
		QuoteVolume string `json:"q"`
		TakerBase   string `json:"V"`
		TakerQuote  string `json:"Q"`
		Ignore      any    `json:"B"`
	} `json:"k"`
}

// parse turns one message into a one-bar update, or says why it is not a kline of m.
func parse(data []byte, m binance.Market) (seamless.LiveUpdate, error) {
	var ev klineEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return seamless.LiveUpdate{}, fmt.Errorf("not a kline event: %w", err)
	}
	k := ev.K
	switch {
	case ev.Event != "kline" || k == nil:
		return seamless.LiveUpdate{}, fmt.Errorf("event %q is not a kline", ev.Event)
	case ev.Symbol != m.Symbol || k.Symbol != m.Symbol:
		return seamless.LiveUpdate{}, fmt.Errorf("symbol %q/%q, subscribed to %q", ev.Symbol, k.Symbol, m.Symbol)
	case k.Interval != m.Interval:
		return seamless.LiveUpdate{}, fmt.Errorf("interval %q, subscribed to %q", k.Interval, m.Interval)
	case k.Final == nil:
		return seamless.LiveUpdate{}, errors.New("kline without x (closed flag)")
	}
	ivMS := m.Seconds * 1000
	if k.Open < 0 || k.Open%ivMS != 0 || k.Close != k.Open+ivMS-1 {
		return seamless.LiveUpdate{}, fmt.Errorf("open time %d / close time %d: not a %s kline on the grid", k.Open, k.Close, m.Interval)
	}
	f := frame.New(frame.OHLCV, 1)
	f.TS = append(f.TS, k.Open/1000)
	for i, v := range [...]struct{ name, s string }{{"o", k.O}, {"h", k.H}, {"l", k.Lo}, {"c", k.C}, {"v", k.V}} {
		x, err := strconv.ParseFloat(v.s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return seamless.LiveUpdate{}, fmt.Errorf("field %s %q: want a non-negative decimal string", v.name, v.s)
		}
		f.Cols[i].F64 = append(f.Cols[i].F64, x)
	}
	return seamless.LiveUpdate{Bars: f, Closed: *k.Final}, nil
}

// resolve maps a series to its stream: the REST source's rules, so that a node is
// streamable exactly when it can be backfilled.
func resolve(s seamless.Series) (binance.Market, error) {
	m, err := binance.ResolveMarket(s)
	if err != nil {
		return m, fmt.Errorf("binancews: %w", err)
	}
	return m, nil
}
