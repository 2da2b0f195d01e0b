// Package binancews is a seamless.LiveFeed for Binance spot candles: node ids
// ohlcv:binance:{BASE/QUOTE}:{tf}, streamed from the raw kline stream
// {base}/{symbol}@kline_{tf} (symbol lower-case: BTC/USDT → btcusdt).
//
// # Messages
//
// Each kline event {"e":"kline","E":…,"s":"BTCUSDT","k":{"t":openMs,"T":closeMs,
// "i":"1m","o":"…","h":"…","l":"…","c":"…","v":"…","x":closed,…}} becomes a
// one-bar LiveUpdate: ts = t/1000, prices and (base-asset) volume parsed from the
// decimal strings, Closed = x. A message that is not such an event for the subscribed
// symbol and interval — bad JSON, another symbol, an off-grid or inconsistent open or
// close time, a price that is not a finite decimal — is counted in Stats.Malformed,
// logged and skipped; the connection stays up.
//
// # Connections
//
// One websocket per subscription. The library answers the server's pings. A connection
// that fails, is closed by the server (Binance closes every connection after 24 h) or
// stays silent for Options.ReadTimeout is replaced after a backoff: MinBackoff doubled
// per consecutive failure up to MaxBackoff, ±25% jitter, slept on the injected clock.
// The failure count resets once a connection has delivered a valid kline. Every new
// attempt after the first connection counts in Stats.Reconnects and calls
// Options.OnReconnect. Bars that closed while disconnected are not replayed by
// Binance; the live tier leaves that hole for REST backfill. Everything stops when the
// subscription's context ends, and the channel is closed after the connection.
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
	"os"
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

// DefaultBaseURL is Binance's public raw-stream endpoint.
const DefaultBaseURL = "wss://stream.binance.com:9443/ws"

// Defaults of Options.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// DefaultReadTimeout: Binance pushes a kline update every one or two seconds and
	// pings every 20 s, so a minute of silence means a dead connection.
	DefaultReadTimeout = time.Minute
	DefaultDialTimeout = 10 * time.Second
	// DefaultSource labels reconnects for OnReconnect.
	DefaultSource = "binance"
)

// jitterRatio spreads backoff delays by ±25%, as the REST source does.
const jitterRatio = 0.25

// readLimit bounds one message; a kline event is about 400 bytes.
const readLimit = 64 << 10

// Options configure a Feed. The zero value streams from DefaultBaseURL.
type Options struct {
	// BaseURL is the raw-stream root; streams are BaseURL/{symbol}@kline_{tf}.
	BaseURL    string
	HTTPClient *http.Client
	// Clock drives backoff and read timeouts (default clock.Real).
	Clock clock.Clock
	// Seed seeds the backoff jitter (0: random).
	Seed uint64
	// MinBackoff and MaxBackoff bound the reconnect delay before jitter.
	MinBackoff, MaxBackoff time.Duration
	// ReadTimeout drops a connection silent for this long (negative: never).
	ReadTimeout time.Duration
	// DialTimeout bounds one websocket handshake.
	DialTimeout time.Duration
	// Source is passed to OnReconnect (default DefaultSource).
	Source string
	// OnReconnect, when set, is called before each reconnect attempt, for the
	// seamless_live_reconnects_total{source} counter. It must not block.
	OnReconnect func(source string)
	// Logger receives seamless.live.* events (default: discarded).
	Logger *slog.Logger
}

// OptionsFromEnv reads SEAMLESS_BINANCE_WS_URL into BaseURL.
func OptionsFromEnv() (Options, error) {
	var o Options
	if v := os.Getenv("SEAMLESS_BINANCE_WS_URL"); v != "" {
		if err := checkBaseURL(v); err != nil {
			return o, fmt.Errorf("SEAMLESS_BINANCE_WS_URL=%q: %w", v, err)
		}
		o.BaseURL = v
	}
	return o, nil
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
		return errors.New("want a ws or wss URL such as " + DefaultBaseURL)
	}
	return nil
}

// Stats are a Feed's counters since New, over all its subscriptions.
type Stats struct {
	// Dials counts handshakes attempted, Connects those that succeeded, Disconnects
	// connections lost (not counting those ended by their subscription).
	Dials, Connects, Disconnects uint64
	// Reconnects counts attempts after the first of a subscription.
	Reconnects uint64
	// Messages counts messages read; Malformed those skipped as not a valid kline.
	Messages, Malformed uint64
}

// Feed streams Binance klines. It implements seamless.LiveFeed and is safe for
// concurrent use.
type Feed struct {
	opts  Options
	base  string
	clock clock.Clock
	log   *slog.Logger

	mu   sync.Mutex
	rand *rand.Rand

	dials, connects, disconnects, reconnects, messages, malformed atomic.Uint64
}

var _ seamless.LiveFeed = (*Feed)(nil)

// New returns a Feed.
func New(opts Options) (*Feed, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	if err := checkBaseURL(opts.BaseURL); err != nil {
		return nil, fmt.Errorf("binancews: base URL %q: %w", opts.BaseURL, err)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
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
	return &Feed{opts: opts, base: strings.TrimRight(opts.BaseURL, "/"), clock: opts.Clock, log: opts.Logger,
		rand: rand.New(rand.NewPCG(seed, ^seed))}, nil
}

// Stats returns a snapshot of the counters.
func (f *Feed) Stats() Stats {
	return Stats{
		Dials: f.dials.Load(), Connects: f.connects.Load(), Disconnects: f.disconnects.Load(),
		Reconnects: f.reconnects.Load(), Messages: f.messages.Load(), Malformed: f.malformed.Load(),
	}
}

// Subscribe implements seamless.LiveFeed. A node id Binance cannot stream is a
// Permanent error.
func (f *Feed) Subscribe(ctx context.Context, s seamless.Series) (<-chan seamless.LiveUpdate, error) {
	m, err := resolve(s)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	ch := make(chan seamless.LiveUpdate, 16)
	go f.stream(ctx, m, s, ch)
	return ch, nil
}

// stream keeps one connection for the subscription, reconnecting until ctx ends.
func (f *Feed) stream(ctx context.Context, m binance.Market, s seamless.Series, ch chan<- seamless.LiveUpdate) {
	defer close(ch)
	streamURL := f.base + "/" + strings.ToLower(m.Symbol) + "@kline_" + m.Interval
	failures := 0
	for {
		healthy, err := f.session(ctx, streamURL, m, ch)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			failures = 0
		}
		delay := f.backoff(failures)
		failures++
		f.log.Warn("seamless.live.disconnected", "source", f.opts.Source, "node_id", s.NodeID,
			"error", err.Error(), "retry_in_ms", delay.Milliseconds(), "failures", failures)
		if f.clock.Sleep(ctx, delay) != nil {
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
	f.mu.Lock()
	u := f.rand.Float64()
	f.mu.Unlock()
	return time.Duration(float64(d) * (1 + jitterRatio*(2*u-1)))
}

// session runs one connection until it fails or ctx ends. healthy reports whether it
// delivered at least one valid kline.
func (f *Feed) session(ctx context.Context, streamURL string, m binance.Market, ch chan<- seamless.LiveUpdate) (healthy bool, err error) {
	f.dials.Add(1)
	dctx, cancel := f.clock.WithDeadline(ctx, f.clock.Now().Add(f.opts.DialTimeout))
	conn, _, err := websocket.Dial(dctx, streamURL, &websocket.DialOptions{HTTPClient: f.opts.HTTPClient})
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.CloseNow()
	f.connects.Add(1)
	conn.SetReadLimit(readLimit)
	for {
		rctx, rcancel := ctx, context.CancelFunc(func() {})
		if f.opts.ReadTimeout > 0 {
			rctx, rcancel = f.clock.WithDeadline(ctx, f.clock.Now().Add(f.opts.ReadTimeout))
		}
		typ, data, err := conn.Read(rctx)
		timedOut := rctx.Err() != nil && ctx.Err() == nil
		rcancel()
		if err != nil {
			if ctx.Err() == nil {
				f.disconnects.Add(1)
			}
			if timedOut {
				err = fmt.Errorf("no message for %v: %w", f.opts.ReadTimeout, err)
			}
			return healthy, err
		}
		f.messages.Add(1)
		if typ != websocket.MessageText {
			f.reject(m, data, errors.New("binary message"))
			continue
		}
		u, err := parse(data, m)
		if err != nil {
			f.reject(m, data, err)
			continue
		}
		healthy = true
		select {
		case ch <- u:
		case <-ctx.Done():
			return healthy, ctx.Err()
		}
	}
}

func (f *Feed) reject(m binance.Market, data []byte, err error) {
	f.malformed.Add(1)
	const show = 200
	if len(data) > show {
		data = data[:show]
	}
	f.log.Warn("seamless.live.malformed", "source", f.opts.Source, "symbol", m.Symbol, "interval", m.Interval,
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
