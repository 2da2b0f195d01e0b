package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// maxCommandBytes bounds a client's WebSocket message: commands are small.
const maxCommandBytes = 64 << 10

// arrowWriters pools the buffers Arrow messages are written through.
var arrowWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// streamWebSocket serves a WebSocket stream connection: subscribe and unsubscribe
// commands in, events out (JSON text messages; with format=arrow, bars as binary Arrow
// IPC messages). The URL may name a first subscription.
func (s *Server) streamWebSocket(w http.ResponseWriter, r *http.Request) {
	st := s.streams
	first, format, err := wire.DecodeSubscribe(r.URL.Query(), true)
	if err != nil {
		fail(w, err) // before the upgrade: a plain 400
		return
	}
	// A non-browser client may authenticate with the Authorization header; a browser
	// offers bearer.<token> as a subprotocol, or sends an auth message first.
	principal, authed := st.principal(r)
	offered := websocketProtocols(r)
	if !authed {
		for _, p := range offered {
			if tok, ok := strings.CutPrefix(p, wire.BearerPrefix); ok {
				if principal, authed = st.auth.match(tok); !authed {
					unauthorized(w) // a wrong token is refused before the upgrade
					return
				}
			}
		}
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.Subprotocol},
		OriginPatterns: st.cfg.OriginPatterns, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return // Accept answered the request
	}
	conn.SetReadLimit(maxCommandBytes)
	st.m.connections.WithLabelValues("websocket").Inc()
	defer st.m.connections.WithLabelValues("websocket").Dec()
	ws := &wsSession{s: s, conn: conn, arrow: format == wire.FormatArrow, subs: map[seamless.Series]*wsSub{},
		ended: make(chan seamless.Series, st.cfg.MaxSubscriptions)}
	// The request's values (its trace) without its cancellation, which a hijacked
	// connection no longer drives: the session ends when run returns.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	reason := ws.run(ctx, principal, authed, first)
	ws.closeAll(reason)
	if reason == seamless.EndShutdown {
		conn.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	conn.CloseNow()
}

// websocketProtocols lists the subprotocols a client offered.
func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// wsSession is one WebSocket connection's subscriptions.
type wsSession struct {
	s     *Server
	conn  *websocket.Conn
	arrow bool
	// writeMu orders writes: coder/websocket allows concurrent writers, but an Arrow
	// message is written in several frames of one message.
	writeMu sync.Mutex
	subs    map[seamless.Series]*wsSub
	ended   chan seamless.Series
	wg      sync.WaitGroup
}

// wsSub is one subscription of a connection, forwarded by its own goroutine.
type wsSub struct {
	sub  *seamless.Subscription
	stop chan struct{}
	done chan struct{}
	// cursor is the cursor of the last event written (its goroutine's; read after done).
	cursor string
}

type wsMessage struct {
	data []byte
	err  error
}

// run reads commands until the client leaves or the server shuts down, and returns the
// end reason for the subscriptions still running.
func (ws *wsSession) run(ctx context.Context, principal string, authed bool, first seamless.SubscribeRequest) string {
	st := ws.s.streams
	msgs := make(chan wsMessage)
	go func() { // the reader: conn.Read may be called by one goroutine only
		for {
			typ, data, err := ws.conn.Read(ctx)
			if err == nil && typ != websocket.MessageText {
				ws.sendError(ctx, seamless.Series{}, &seamless.RequestError{Field: "message", Message: "commands are JSON text messages"})
				continue
			}
			select {
			case msgs <- wsMessage{data, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var authDeadline <-chan time.Time
	if !authed {
		t := time.NewTimer(st.cfg.AuthTimeout)
		defer t.Stop()
		authDeadline = t.C
	} else if first.NodeID != "" {
		ws.subscribe(ctx, first)
	}
	for {
		select {
		case <-st.closing:
			return seamless.EndShutdown
		case <-authDeadline:
			ws.sendError(ctx, seamless.Series{}, errUnauthorized)
			return seamless.EndCanceled
		case series := <-ws.ended:
			ws.reap(series)
		case m := <-msgs:
			if m.err != nil {
				return seamless.EndCanceled // the client closed or the connection broke
			}
			cmd, err := wire.DecodeCommand(m.data)
			if err != nil {
				ws.sendError(ctx, seamless.Series{}, err)
				continue
			}
			if !authed {
				if cmd.Type != wire.CommandAuth {
					ws.sendError(ctx, seamless.Series{}, errUnauthorized)
					return seamless.EndCanceled
				}
				if principal, authed = st.auth.match(cmd.Token); !authed {
					ws.sendError(ctx, seamless.Series{}, errUnauthorized)
					return seamless.EndCanceled
				}
				authDeadline = nil
				ws.s.cfg.Logger.Info("seamless.stream.authenticated", "principal", principal)
				if first.NodeID != "" {
					ws.subscribe(ctx, first)
				}
				continue
			}
			switch cmd.Type {
			case wire.CommandAuth: // already authenticated: harmless
			case wire.CommandSubscribe:
				ws.subscribe(ctx, cmd.Subscribe)
			case wire.CommandUnsubscribe:
				ws.unsubscribe(ctx, cmd.Subscribe)
			}
		}
	}
}

// errUnauthorized is the error event of a WebSocket that did not authenticate.
var errUnauthorized = &codedError{code: wire.CodeUnauthorized, msg: `missing or invalid token: offer the subprotocol bearer.<token> beside seamless.v1, or send {"type":"auth","token":"…"} first`}

// codedError is an HTTP-layer error carried in an error event.
type codedError struct{ code, msg string }

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Code() string  { return e.code }

// subscribe starts a subscription of the connection, or answers an error event.
func (ws *wsSession) subscribe(ctx context.Context, req seamless.SubscribeRequest) {
	st := ws.s.streams
	series := seamless.Series{NodeID: req.NodeID, Interval: req.Interval}
	if series.Interval == 0 {
		if node, err := seamless.ParseNodeID(req.NodeID); err == nil {
			series.Interval = node.Interval
		}
	}
	if _, dup := ws.subs[series]; dup {
		ws.sendError(ctx, series, &seamless.RequestError{Field: "node_id", Message: "already subscribed on this connection"})
		return
	}
	if len(ws.subs) >= st.cfg.MaxSubscriptions {
		ws.sendError(ctx, series, &codedError{code: wire.CodeTooManyRequests, msg: "too many subscriptions on one connection"})
		return
	}
	sub, err := ws.s.provider.Subscribe(ctx, req)
	if err != nil {
		ws.sendError(ctx, series, err)
		return
	}
	series = sub.Series()
	w := &wsSub{sub: sub, stop: make(chan struct{}), done: make(chan struct{}), cursor: sub.Cursor()}
	ws.subs[series] = w
	st.m.subscribers.WithLabelValues(series.NodeID).Inc()
	ws.wg.Add(1)
	go ws.forward(ctx, series, w)
}

// forward writes one subscription's events until it ends, the connection fails, or
// stop is closed.
func (ws *wsSession) forward(ctx context.Context, series seamless.Series, w *wsSub) {
	defer ws.wg.Done()
	defer close(w.done)
	defer func() { ws.ended <- series }()
	for {
		select {
		case ev, ok := <-w.sub.Events():
			if !ok {
				return
			}
			if err := ws.write(ctx, ev); err != nil {
				// The connection cannot take events: end it; the client resumes from
				// its cursor elsewhere or later.
				ws.conn.CloseNow()
				return
			}
			if ev.Cursor != "" {
				w.cursor = ev.Cursor
			}
			if ev.Type == seamless.EventEnd {
				return
			}
		case <-w.stop:
			return
		}
	}
}

// reap forgets a subscription whose forwarder ended.
func (ws *wsSession) reap(series seamless.Series) {
	w, ok := ws.subs[series]
	if !ok {
		return
	}
	<-w.done
	w.sub.Close()
	delete(ws.subs, series)
	ws.s.streams.m.subscribers.WithLabelValues(series.NodeID).Dec()
}

// unsubscribe ends one subscription with an end event (reason canceled, its cursor).
func (ws *wsSession) unsubscribe(ctx context.Context, req seamless.SubscribeRequest) {
	series := seamless.Series{NodeID: req.NodeID, Interval: req.Interval}
	if series.Interval == 0 {
		if node, err := seamless.ParseNodeID(req.NodeID); err == nil {
			series.Interval = node.Interval
		}
	}
	w, ok := ws.subs[series]
	if !ok {
		ws.sendError(ctx, series, &seamless.RequestError{Field: "node_id", Message: "not subscribed on this connection"})
		return
	}
	ws.end(ctx, series, w, seamless.EndCanceled)
}

// end stops a subscription's forwarder and writes its end event.
func (ws *wsSession) end(ctx context.Context, series seamless.Series, w *wsSub, reason string) {
	close(w.stop)
	<-w.done
	w.sub.Close()
	delete(ws.subs, series)
	ws.s.streams.m.subscribers.WithLabelValues(series.NodeID).Dec()
	_ = ws.write(ctx, seamless.StreamEvent{Type: seamless.EventEnd, NodeID: series.NodeID, Interval: series.Interval,
		Cursor: w.cursor, Reason: reason, Time: ws.s.cfg.Clock.Now()})
	for { // its forwarder may have queued its own end
		select {
		case s := <-ws.ended:
			if s != series {
				ws.reap(s)
			}
		default:
			return
		}
	}
}

// closeAll ends every subscription still running, writing their end events when the
// connection still takes them (on shutdown), then waits for the forwarders.
func (ws *wsSession) closeAll(reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), ws.s.streams.cfg.WriteTimeout)
	defer cancel()
	for series, w := range ws.subs {
		if reason == seamless.EndShutdown {
			ws.end(ctx, series, w, reason)
			continue
		}
		close(w.stop)
		<-w.done
		w.sub.Close()
		delete(ws.subs, series)
		ws.s.streams.m.subscribers.WithLabelValues(series.NodeID).Dec()
	}
	ws.wg.Wait()
}

// sendError writes an error event for series (zero: the connection's).
func (ws *wsSession) sendError(ctx context.Context, series seamless.Series, err error) {
	_ = ws.write(ctx, seamless.StreamEvent{Type: seamless.EventError, NodeID: series.NodeID, Interval: series.Interval,
		Err: err, Time: ws.s.cfg.Clock.Now()})
}

// write sends one event: a text JSON message, or for bars on an Arrow connection a
// binary Arrow IPC message. It fails when the connection does not take it within
// WriteTimeout.
func (ws *wsSession) write(ctx context.Context, ev seamless.StreamEvent) error {
	st := ws.s.streams
	ctx, cancel := context.WithTimeout(ctx, st.cfg.WriteTimeout)
	defer cancel()
	ws.writeMu.Lock()
	defer ws.writeMu.Unlock()
	var err error
	switch {
	case ev.Shared != nil:
		// The same event goes to every subscriber of the series at the live edge:
		// encoded once (per format) for all of them, written as it is to each.
		typ, key := websocket.MessageText, "websocket/json"
		if ws.arrow {
			typ, key = websocket.MessageBinary, "websocket/arrow"
		}
		var data []byte
		if data, err = ev.Shared.Encoding(key, func() ([]byte, error) { return encodeWS(ev, ws.arrow) }); err == nil {
			err = ws.conn.Write(ctx, typ, data)
		}
	case ws.arrow && ev.Type == seamless.EventBars:
		// Streamed into the message through a buffer: a 65,536-bar page is 3 MiB, which
		// is not worth assembling before the first frame goes out.
		var mw io.WriteCloser
		if mw, err = ws.conn.Writer(ctx, websocket.MessageBinary); err == nil {
			bw := arrowWriters.Get().(*bufio.Writer)
			bw.Reset(mw)
			if err = wire.WriteArrowEvent(bw, ev); err == nil {
				err = bw.Flush()
			}
			bw.Reset(nil)
			arrowWriters.Put(bw)
			err = errors.Join(err, mw.Close())
		}
	default:
		var data []byte
		if data, err = wire.MarshalStreamEvent(ev); err == nil {
			err = ws.conn.Write(ctx, websocket.MessageText, data)
		}
	}
	if err == nil {
		st.observe(ev, ws.s.cfg.Clock.Now())
	}
	return err
}

// encodeWS is the message of ev: its Arrow IPC stream for bars on an Arrow
// connection, else its JSON.
func encodeWS(ev seamless.StreamEvent, arrow bool) ([]byte, error) {
	if !arrow || ev.Type != seamless.EventBars {
		return wire.MarshalStreamEvent(ev)
	}
	var buf bytes.Buffer
	if err := wire.WriteArrowEvent(&buf, ev); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
