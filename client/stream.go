package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/server/wire"
	"github.com/seamless-data/seamless/stream"
)

// Reconnect backoff of Subscribe.
const (
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 10 * time.Second
)

// streamReadLimit bounds one message: a history page of 65,536 bars is 3 MiB in
// Arrow and about 7 MiB in JSON.
const streamReadLimit = 256 << 20

// SubscribeOption configures Subscribe.
type SubscribeOption func(*subscribeOptions)

type subscribeOptions struct {
	min, max time.Duration
	// reconnected, if set, is told of each reconnect (tests, logs).
	reconnected func(cursor string, cause error)
}

// WithReconnectBackoff sets the delay before the first reconnect and its cap; the
// delay doubles per failed attempt and resets once a connection delivers events.
func WithReconnectBackoff(min, max time.Duration) SubscribeOption {
	return func(o *subscribeOptions) { o.min, o.max = min, max }
}

// OnReconnect calls fn each time Subscribe reconnects, with the cursor it resumes from
// and what ended the previous connection.
func OnReconnect(fn func(cursor string, cause error)) SubscribeOption {
	return func(o *subscribeOptions) { o.reconnected = fn }
}

// Subscribe streams a subscription from the server's /v1/stream WebSocket, as
// Provider.Subscribe does locally: the history from req.Start, caught_up, then each
// bar as it closes. The connection carries bars as Arrow unless the client was made
// WithFormat(JSON).
//
// A connection that breaks, or that the server ends as a slow consumer or for its
// shutdown, is reopened from the last cursor with backoff, so the application sees
// every bar exactly once across reconnects, and caught_up once; those end events are
// not yielded. The sequence ends when ctx ends, when the loop stops, or after an
// error: a refused request (yielded with its typed error before any event), or an
// error event (yielded with its error, then its end event). Events' frames are the
// application's to keep.
func (c *Client) Subscribe(ctx context.Context, req seamless.SubscribeRequest, opts ...SubscribeOption) iter.Seq2[seamless.StreamEvent, error] {
	o := subscribeOptions{min: DefaultReconnectMin, max: DefaultReconnectMax}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(seamless.StreamEvent, error) bool) {
		st := &streamState{req: req, yield: yield}
		if req.Cursor != "" {
			next, err := stream.ParseCursor(req.Cursor)
			if err != nil {
				yield(seamless.StreamEvent{}, &seamless.RequestError{Field: "cursor", Message: err.Error()})
				return
			}
			st.next, st.haveNext = next, true
		}
		delay := o.min
		for {
			conn, err := c.dialStream(ctx, st.req) // from the last cursor once there is one
			var cause error
			if err == nil {
				var delivered bool
				delivered, cause = st.read(ctx, conn, c.format == Arrow)
				conn.CloseNow()
				if delivered {
					delay = o.min
				}
			} else {
				var perm *permanentDialError
				if errors.As(err, &perm) {
					yield(seamless.StreamEvent{}, perm.err)
					return
				}
				cause = err
			}
			if st.stop || ctx.Err() != nil {
				return
			}
			if o.reconnected != nil {
				o.reconnected(st.req.Cursor, cause)
			}
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(2*delay, o.max)
		}
	}
}

// permanentDialError is a refusal that reconnecting cannot fix (4xx but 429).
type permanentDialError struct{ err error }

func (e *permanentDialError) Error() string { return e.err.Error() }

// dialStream opens the WebSocket of one subscription.
func (c *Client) dialStream(ctx context.Context, req seamless.SubscribeRequest) (*websocket.Conn, error) {
	u := *c.base
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path += "/v1/stream"
	u.RawQuery = wire.EncodeSubscribe(req, string(c.format)).Encode()
	h := http.Header{}
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: h,
		Subprotocols: []string{wire.Subprotocol}, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if resp != nil && resp.StatusCode >= 400 {
			body := wire.ReadError(resp.StatusCode, resp.Body)
			resp.Body.Close()
			err := errorOf(resp.StatusCode, body)
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return nil, &permanentDialError{err}
			}
			return nil, err
		}
		return nil, fmt.Errorf("seamless client: GET /v1/stream: %w", err)
	}
	conn.SetReadLimit(streamReadLimit)
	return conn, nil
}

// streamState is what Subscribe carries across connections.
type streamState struct {
	req      seamless.SubscribeRequest
	yield    func(seamless.StreamEvent, error) bool
	next     int64 // the cursor's ts: bars before it were yielded
	haveNext bool
	caught   bool
	stop     bool // the application stopped, or the subscription ended for good
}

// read yields one connection's events until it ends. It reports whether any event
// arrived, and why the connection ended when Subscribe should reconnect.
func (st *streamState) read(ctx context.Context, conn *websocket.Conn, arrow bool) (bool, error) {
	delivered := false
	size := 4 << 10 // the last message's size: the next buffer is made that large at once
	for {
		typ, r, err := conn.Reader(ctx)
		if err != nil {
			return delivered, err
		}
		// A new buffer per message: the events' frames keep referring to it.
		buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
		if _, err := buf.ReadFrom(r); err != nil {
			return delivered, err
		}
		msg := buf.Bytes()
		size = max(len(msg), 4<<10)
		delivered = true
		var w wire.StreamEvent
		var ev seamless.StreamEvent
		if typ == websocket.MessageBinary && arrow {
			env, f, err := wire.ReadArrowEvent(msg)
			if err != nil {
				return delivered, err
			}
			if ev, err = env.Event(); err != nil {
				return delivered, err
			}
			w, ev.Frame = env, f
		} else {
			if err := json.Unmarshal(msg, &w); err != nil {
				return delivered, fmt.Errorf("seamless client: stream event: %w", err)
			}
			if ev, err = w.Event(); err != nil {
				return delivered, err
			}
		}
		if !st.handle(ev, w) {
			return delivered, nil
		}
	}
}

// handle yields one event, or keeps it back; false ends the connection.
func (st *streamState) handle(ev seamless.StreamEvent, w wire.StreamEvent) bool {
	switch ev.Type {
	case seamless.EventBars:
		if st.haveNext && ev.Frame != nil && ev.Frame.Len() > 0 && ev.Frame.TS[0] < st.next {
			// Defensive: a server never re-sends bars before the cursor it was given.
			ev.Frame = ev.Frame.Slice(ev.Frame.SearchTS(st.next), ev.Frame.Len())
		}
		st.setCursor(ev.Cursor)
	case seamless.EventCaughtUp:
		st.setCursor(ev.Cursor)
		if st.caught {
			return true
		}
		st.caught = true
	case seamless.EventEnd:
		st.setCursor(ev.Cursor)
		if ev.Reason == seamless.EndSlowConsumer || ev.Reason == seamless.EndShutdown {
			return false // reconnect from the cursor
		}
		st.stop = true
		st.yield(ev, nil)
		return false
	case seamless.EventError:
		err := ev.Err
		if err == nil && w.Error != nil {
			err = &Error{Code: w.Error.Code, Message: w.Error.Message}
		}
		ev.Err = err
		if !st.yield(ev, err) {
			st.stop = true
			return false
		}
		return true
	}
	if !st.yield(ev, nil) {
		st.stop = true
		return false
	}
	return true
}

func (st *streamState) setCursor(c string) {
	if c == "" {
		return
	}
	next, err := stream.ParseCursor(c)
	if err != nil || (st.haveNext && next < st.next) {
		return
	}
	st.next, st.haveNext = next, true
	st.req.Cursor = c
}
