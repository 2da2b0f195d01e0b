package server

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// GET /v1/stream serves subscriptions (SPEC §9, docs/api.md Streaming) over WebSocket
// (several series per connection, JSON or Arrow) or Server-Sent Events (one series,
// JSON, resumable with Last-Event-ID). Each connection's events come from
// Provider.Subscribe; this file only carries them and enforces auth, limits and
// shutdown.
//
// Auth works from a browser, which can set no Authorization header on a WebSocket or
// an EventSource: a WebSocket takes the token as a subprotocol (bearer.<token> beside
// seamless.v1) or in a first auth message; SSE takes the Authorization header (read
// with fetch() streaming). Tokens never travel in the URL, which proxies log.

// StreamConfig sets the limits of /v1/stream. Zero fields take the defaults named.
type StreamConfig struct {
	// MaxConnections bounds the stream connections (WebSocket and SSE) open at once;
	// past it the server answers 429 (default 4096).
	MaxConnections int
	// MaxSubscriptions bounds the subscriptions of one WebSocket connection; past it a
	// subscribe message gets a too_many_requests error event (default 64).
	MaxSubscriptions int
	// WriteTimeout bounds one event's write: a connection that cannot take an event
	// in this time is closed (default 10 s). Its subscriptions end; a client resumes
	// from its last cursor.
	WriteTimeout time.Duration
	// AuthTimeout is how long a WebSocket that has not authenticated may take to send
	// its auth message (default 10 s).
	AuthTimeout time.Duration
	// OriginPatterns lists the other origins (host patterns, as for
	// websocket.AcceptOptions) whose pages may open a WebSocket; the server's own
	// origin always may.
	OriginPatterns []string
}

// Defaults of StreamConfig.
const (
	DefaultStreamMaxConnections   = 4096
	DefaultStreamMaxSubscriptions = 64
)

func (c StreamConfig) withDefaults() StreamConfig {
	setDefault(&c.MaxConnections, DefaultStreamMaxConnections)
	setDefault(&c.MaxSubscriptions, DefaultStreamMaxSubscriptions)
	setDefault(&c.WriteTimeout, 10*time.Second)
	setDefault(&c.AuthTimeout, 10*time.Second)
	return c
}

// streams is the server's state of /v1/stream: the connection slots, the shutdown
// signal every connection watches, and the metrics.
type streams struct {
	cfg     StreamConfig
	conns   chan struct{}
	auth    *authenticator // nil: no auth
	closing chan struct{}
	once    sync.Once
	m       *streamMetrics
}

func (s *Server) newStreams() (*streams, error) {
	cfg := s.cfg.Stream.withDefaults()
	st := &streams{cfg: cfg, conns: make(chan struct{}, cfg.MaxConnections), closing: make(chan struct{})}
	if len(s.cfg.Tokens) > 0 {
		st.auth = newAuthenticator(s.cfg.Tokens)
	}
	m, err := newStreamMetrics(s.cfg.Registry)
	if err != nil {
		return nil, err
	}
	st.m = m
	return st, nil
}

// shutdown tells every stream connection to send end events (reason shutdown, with
// their cursors) and close. http.Server.Shutdown does not wait for WebSocket
// connections (they are hijacked) and waits for SSE responses to finish, so both need
// this signal; the server's in-flight count still waits for their handlers to return.
func (st *streams) shutdown() { st.once.Do(func() { close(st.closing) }) }

// streamMetrics are the metrics of /v1/stream.
type streamMetrics struct {
	connections *prometheus.GaugeVec
	subscribers *prometheus.GaugeVec
	bars        *prometheus.CounterVec
	latency     prometheus.Histogram
	slow        prometheus.Counter
	repairs     prometheus.Counter
}

// latencyBuckets span 1 ms to 1 min: a live bar should reach its subscribers in
// milliseconds; a repaired one waits for the live grace and a backfill.
var latencyBuckets = []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newStreamMetrics(reg *prometheus.Registry) (*streamMetrics, error) {
	m := &streamMetrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seamless_stream_connections", Help: "Stream connections open, by transport (websocket, sse).",
		}, []string{"transport"}),
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seamless_stream_subscribers", Help: "Running subscriptions, by node_id.",
		}, []string{"node_id"}),
		bars: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_stream_bars_delivered_total", Help: "Closed bars written to subscribers, by origin (history, live, repair, backfill).",
		}, []string{"origin"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "seamless_stream_delivery_latency_seconds", Help: "From a bar's close to its write to a subscriber, for bars that closed while subscribed.",
			Buckets: latencyBuckets,
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seamless_stream_slow_consumer_drops_total", Help: "Subscriptions ended because their reader fell behind (slow_consumer).",
		}),
		repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seamless_stream_seam_repairs_total", Help: "Gaps the live feed left that subscriptions repaired from backfill.",
		}),
	}
	for _, c := range []prometheus.Collector{m.connections, m.subscribers, m.bars, m.latency, m.slow, m.repairs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts an event written to a subscriber.
func (st *streams) observe(ev seamless.StreamEvent, now time.Time) {
	switch ev.Type {
	case seamless.EventBars:
		n := ev.Frame.Len()
		if n == 0 {
			return
		}
		st.m.bars.WithLabelValues(ev.Origin).Add(float64(n))
		if ev.Origin != seamless.OriginHistory {
			closed := time.Unix(ev.Frame.TS[n-1]+ev.Interval, 0)
			st.m.latency.Observe(max(now.Sub(closed).Seconds(), 0))
		}
	case seamless.EventGap:
		st.m.repairs.Inc()
	case seamless.EventEnd:
		if ev.Reason == seamless.EndSlowConsumer {
			st.m.slow.Inc()
		}
	}
}

// stream serves GET /v1/stream: a WebSocket upgrade, or SSE for Accept:
// text/event-stream.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	st := s.streams
	websocketUpgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	if !websocketUpgrade && !acceptsEventStream(r.Header.Get("Accept")) {
		writeError(w, wire.NewError(wire.CodeNotAcceptable, "/v1/stream is a WebSocket (Upgrade: websocket) or Server-Sent Events (Accept: %s) endpoint", wire.MediaEventStream))
		return
	}
	select {
	case st.conns <- struct{}{}:
		defer func() { <-st.conns }()
	default:
		writeError(w, wire.NewError(wire.CodeTooManyRequests, "%d stream connections already open; retry later", cap(st.conns)))
		return
	}
	if websocketUpgrade {
		s.streamWebSocket(w, r)
		return
	}
	s.streamSSE(w, r)
}

func acceptsEventStream(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if media, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && media == wire.MediaEventStream {
			return true
		}
	}
	return false
}

// principal authenticates a request by its Authorization header: ok is false when auth
// is on and the header carries no valid token.
func (st *streams) principal(r *http.Request) (string, bool) {
	if st.auth == nil {
		return "", true
	}
	return st.auth.check(r)
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="seamless"`)
	writeError(w, wire.NewError(wire.CodeUnauthorized, "missing or invalid bearer token (Authorization: Bearer <token>)"))
}

// streamSSE serves one subscription as Server-Sent Events: every event is an SSE
// event of its type with the JSON event as data; bars, caught_up and end carry the
// cursor as the SSE id, so an EventSource (or fetch() reader) that reconnects with
// Last-Event-ID resumes where it stopped.
func (s *Server) streamSSE(w http.ResponseWriter, r *http.Request) {
	st := s.streams
	name, ok := st.principal(r)
	if !ok {
		unauthorized(w)
		return
	}
	if info := infoOf(r); info != nil {
		info.principal = name
	}
	req, format, err := wire.DecodeSubscribe(r.URL.Query(), false)
	if err != nil {
		fail(w, err)
		return
	}
	if format == wire.FormatArrow {
		fail(w, &seamless.RequestError{Field: "format", Message: "Server-Sent Events carry JSON; use a WebSocket for Arrow"})
		return
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		req.Cursor = id
	}
	sub, err := s.provider.Subscribe(r.Context(), req)
	if err != nil {
		fail(w, err)
		return
	}
	defer sub.Close()
	series := sub.Series()
	st.m.connections.WithLabelValues("sse").Inc()
	defer st.m.connections.WithLabelValues("sse").Dec()
	st.m.subscribers.WithLabelValues(series.NodeID).Inc()
	defer st.m.subscribers.WithLabelValues(series.NodeID).Dec()

	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", wire.MediaEventStream)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: pass events through as they come
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	cursor := sub.Cursor()
	write := func(ev seamless.StreamEvent) error {
		var msg []byte
		var err error
		if ev.Shared != nil { // the same for every subscriber at the live edge: encoded once
			msg, err = ev.Shared.Encoding("sse", func() ([]byte, error) { return encodeSSE(ev) })
		} else {
			msg, err = encodeSSE(ev)
		}
		if err != nil {
			return err
		}
		_ = rc.SetWriteDeadline(time.Now().Add(st.cfg.WriteTimeout))
		if _, err := w.Write(msg); err != nil {
			return err
		}
		st.observe(ev, s.cfg.Clock.Now())
		return rc.Flush()
	}
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return
			}
			if ev.Cursor != "" {
				cursor = ev.Cursor
			}
			if write(ev) != nil || ev.Type == seamless.EventEnd {
				return
			}
		case <-st.closing:
			sub.Close()
			_ = write(seamless.StreamEvent{Type: seamless.EventEnd, NodeID: series.NodeID, Interval: series.Interval,
				Cursor: cursor, Reason: seamless.EndShutdown, Time: s.cfg.Clock.Now()})
			return
		}
	}
}

// encodeSSE is the SSE event of ev: the cursor as its id, its type as the event name,
// its JSON as the data.
func encodeSSE(ev seamless.StreamEvent) ([]byte, error) {
	data, err := wire.MarshalStreamEvent(ev)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if ev.Cursor != "" {
		fmt.Fprintf(&buf, "id: %s\n", ev.Cursor)
	}
	fmt.Fprintf(&buf, "event: %s\ndata: %s\n\n", ev.Type, data)
	return buf.Bytes(), nil
}
