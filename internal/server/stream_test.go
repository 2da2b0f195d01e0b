package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
	"github.com/seamless-data/seamless/internal/server/wire"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/stream"
)

const iv = int64(60)

// events is a stream of decoded events that a test reads with the clock's help.
type events struct {
	ch  chan streamed
	clk *clock.Fake
}

type streamed struct {
	ev seamless.StreamEvent
	id string // the SSE id line, if any
}

// next returns the next event. While none comes it moves the fake clock a second on
// now and then (a live feed may have armed its timer after the clock last moved); it
// fails the test after 20 s.
func (e *events) next(t *testing.T) streamed {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case s, ok := <-e.ch:
			if !ok {
				t.Fatal("stream ended")
			}
			return s
		case <-time.After(20 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting for an event")
			}
			if e.clk != nil {
				e.clk.Advance(time.Second)
			}
		}
	}
}

// until reads events into bars until one of type typ, which it returns.
func (e *events) until(t *testing.T, typ seamless.StreamEventType, bars *[]int64) streamed {
	t.Helper()
	for {
		s := e.next(t)
		if s.ev.Type == seamless.EventError {
			t.Fatalf("error event: %v", s.ev.Err)
		}
		if s.ev.Type == seamless.EventBars {
			checkDemo(t, s.ev)
			*bars = append(*bars, s.ev.Frame.TS...)
		}
		if s.ev.Type == typ {
			return s
		}
	}
}

// barsUntil reads bars until the cursor reaches the clock's closed end.
func (e *events) barsUntil(t *testing.T, clk *clock.Fake, bars *[]int64) string {
	t.Helper()
	for {
		s := e.next(t)
		switch s.ev.Type {
		case seamless.EventError, seamless.EventEnd:
			t.Fatalf("%s event: %+v", s.ev.Type, s.ev)
		case seamless.EventBars:
			checkDemo(t, s.ev)
			*bars = append(*bars, s.ev.Frame.TS...)
			if next, _ := stream.ParseCursor(s.ev.Cursor); next >= seamless.ClosedEnd(clk.Now().Unix(), iv) {
				return s.ev.Cursor
			}
		}
	}
}

// checkDemo asserts a bars event holds the demo source's bars.
func checkDemo(t *testing.T, ev seamless.StreamEvent) {
	t.Helper()
	f := ev.Frame
	if f == nil || f.Len() == 0 || !f.IsSortedUnique() || ev.NodeID != servertest.Node {
		t.Fatalf("bars event %+v", ev)
	}
	want := demo.Bars(ev.NodeID, iv, grid.R(f.TS[0], f.TS[f.Len()-1]+iv))
	if !slices.Equal(f.TS, want.TS) || !slices.Equal(f.Col("close").F64, want.Col("close").F64) {
		t.Fatalf("bars %v differ from the demo source's", f.TS)
	}
}

func wantGrid(t *testing.T, ts []int64, start, end int64) {
	t.Helper()
	var want []int64
	for x := start; x < end; x += iv {
		want = append(want, x)
	}
	if !slices.Equal(ts, want) {
		t.Fatalf("received %d bars, want the %d of [%d, %d):\n got %v\nwant %v", len(ts), len(want), start, end, ts, want)
	}
}

// sse opens an SSE stream and decodes its events.
func sse(t *testing.T, e *servertest.LiveEnv, q url.Values, header http.Header) (*http.Response, *events) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.HTTP.URL+"/v1/stream?"+q.Encode(), nil)
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", wire.MediaEventStream)
	resp, err := e.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp, nil
	}
	if ct := resp.Header.Get("Content-Type"); ct != wire.MediaEventStream {
		t.Fatalf("Content-Type %q", ct)
	}
	ch := make(chan streamed, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 64<<20)
		var cur streamed
		var typ string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				cur.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var w wire.StreamEvent
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &w); err != nil {
					t.Errorf("data line: %v", err)
					return
				}
				ev, err := w.Event()
				if err != nil {
					t.Errorf("event: %v", err)
					return
				}
				if string(ev.Type) != typ {
					t.Errorf("SSE event %q carries a %q event", typ, ev.Type)
				}
				cur.ev = ev
			case line == "":
				ch <- cur
				cur, typ = streamed{}, ""
			}
		}
	}()
	return resp, &events{ch: ch, clk: e.Clock}
}

// TestStreamSSEResume: an SSE stream replays history, announces caught_up, then sends
// each bar as it closes, every id being the cursor; a client that reconnects with
// Last-Event-ID continues from there, with no gap and no duplicate.
func TestStreamSSEResume(t *testing.T) {
	e := servertest.StartLive(t, server.Config{}, seamless.SubscribeOptions{LiveGrace: time.Hour})
	start := grid.CeilAlign(e.Clock.Now().Add(-time.Hour).Unix(), iv)
	q := url.Values{"node_id": {servertest.Node}, "interval": {"60"}, "start": {time.Unix(start, 0).UTC().Format(time.RFC3339)}}
	resp, evs := sse(t, e, q, nil)
	if evs == nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var bars []int64
	caught := evs.until(t, seamless.EventCaughtUp, &bars)
	if caught.id != caught.ev.Cursor || caught.ev.NextTS != seamless.ClosedEnd(e.Clock.Now().Unix(), iv) {
		t.Fatalf("caught_up %+v (id %q)", caught.ev, caught.id)
	}
	e.Clock.Advance(servertest.Bar)
	last := evs.barsUntil(t, e.Clock, &bars)
	resp.Body.Close() // the connection drops

	for range 3 { // bars close while disconnected
		e.Clock.Advance(servertest.Bar)
	}
	resp, evs = sse(t, e, q, http.Header{"Last-Event-Id": {last}})
	if evs == nil {
		t.Fatalf("status %d on resume", resp.StatusCode)
	}
	defer resp.Body.Close()
	evs.until(t, seamless.EventCaughtUp, &bars)
	e.Clock.Advance(servertest.Bar)
	evs.barsUntil(t, e.Clock, &bars)
	wantGrid(t, bars, start, seamless.ClosedEnd(e.Clock.Now().Unix(), iv))
}

// subscribe runs client.Subscribe in a goroutine and hands its events over.
func subscribe(t *testing.T, e *servertest.LiveEnv, c *client.Client, req seamless.SubscribeRequest, opts ...client.SubscribeOption) (*events, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan streamed, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for ev, err := range c.Subscribe(ctx, req, opts...) {
			if err != nil && ctx.Err() == nil {
				t.Errorf("subscribe: %v", err)
				return
			}
			select {
			case ch <- streamed{ev: ev}:
			case <-ctx.Done():
				return
			}
		}
	}()
	var clk *clock.Fake
	if e != nil {
		clk = e.Clock
	}
	return &events{ch: ch, clk: clk}, func() { cancel(); <-done }
}

// TestStreamWebSocketClient: the Go client's subscription over WebSocket, in Arrow and
// in JSON, delivers the grid from start to the newest closed bar and each bar as it
// closes.
func TestStreamWebSocketClient(t *testing.T) {
	for _, format := range []client.Format{client.Arrow, client.JSON} {
		t.Run(string(format), func(t *testing.T) {
			e := servertest.StartLive(t, server.Config{}, seamless.SubscribeOptions{LiveGrace: time.Hour, PageBars: 100})
			c, err := client.New(e.HTTP.URL, client.WithFormat(format))
			if err != nil {
				t.Fatal(err)
			}
			start := grid.CeilAlign(e.Clock.Now().Add(-24*time.Hour).Unix(), iv)
			evs, stop := subscribe(t, e, c, seamless.SubscribeRequest{NodeID: servertest.Node, Start: start})
			defer stop()
			var bars []int64
			evs.until(t, seamless.EventCaughtUp, &bars)
			for range 3 {
				e.Clock.Advance(servertest.Bar)
				evs.barsUntil(t, e.Clock, &bars)
			}
			wantGrid(t, bars, start, seamless.ClosedEnd(e.Clock.Now().Unix(), iv))
		})
	}
}

// proxy forwards TCP connections to target until cut: a network that drops.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(out, in); out.Close() }()
			go func() { defer p.wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

// cut drops every connection.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestStreamClientReconnects: when the network drops, the client reconnects from its
// last cursor with backoff; the application sees every bar once and caught_up once.
func TestStreamClientReconnects(t *testing.T) {
	e := servertest.StartLive(t, server.Config{}, seamless.SubscribeOptions{LiveGrace: time.Hour})
	px := newProxy(t, e.HTTP.Listener.Addr().String())
	c, err := client.New("http://" + px.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var resumed []string
	start := grid.CeilAlign(e.Clock.Now().Add(-time.Hour).Unix(), iv)
	evs, stop := subscribe(t, e, c, seamless.SubscribeRequest{NodeID: servertest.Node, Start: start},
		client.WithReconnectBackoff(time.Millisecond, 10*time.Millisecond),
		client.OnReconnect(func(cursor string, _ error) { mu.Lock(); resumed = append(resumed, cursor); mu.Unlock() }))
	defer stop()
	var bars []int64
	evs.until(t, seamless.EventCaughtUp, &bars)
	for range 2 {
		e.Clock.Advance(servertest.Bar)
		last := evs.barsUntil(t, e.Clock, &bars)
		px.cut()
		e.Clock.Advance(2 * servertest.Bar) // closed while the client is away
		evs.barsUntil(t, e.Clock, &bars)
		mu.Lock()
		if len(resumed) == 0 || !slices.Contains(resumed, last) {
			t.Fatalf("reconnects resumed from %v, want from %q", resumed, last)
		}
		mu.Unlock()
	}
	wantGrid(t, bars, start, seamless.ClosedEnd(e.Clock.Now().Unix(), iv))
}

// wsDial opens a WebSocket on /v1/stream with query q and subprotocols.
func wsDial(t *testing.T, e *servertest.LiveEnv, q url.Values, protocols ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.HTTP.URL, "http") + "/v1/stream?" + q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: e.HTTP.Client(), Subprotocols: protocols})
	if resp != nil && resp.Body != nil && err != nil {
		resp.Body.Close()
	}
	return conn, resp, err
}

// wsEvents decodes a WebSocket's JSON events.
func wsEvents(t *testing.T, e *servertest.LiveEnv, conn *websocket.Conn) *events {
	ch := make(chan streamed, 1024)
	go func() {
		defer close(ch)
		for {
			_, msg, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			var w wire.StreamEvent
			if err := json.Unmarshal(msg, &w); err != nil {
				t.Errorf("message %s: %v", msg, err)
				return
			}
			ev, err := w.Event()
			if err != nil {
				t.Errorf("event: %v", err)
				return
			}
			if ev.Err == nil && w.Error != nil {
				ev.Err = errors.New(w.Error.Code)
			}
			ch <- streamed{ev: ev}
		}
	}()
	return &events{ch: ch, clk: e.Clock}
}

func send(t *testing.T, conn *websocket.Conn, msg string) {
	t.Helper()
	if err := conn.Write(context.Background(), websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// TestStreamAuth: with tokens on, SSE needs the Authorization header; a WebSocket
// authenticates with the bearer.<token> subprotocol or a first auth message (what a
// browser can do), and is refused or closed otherwise.
func TestStreamAuth(t *testing.T) {
	e := servertest.StartLive(t, server.Config{Tokens: []server.Token{{Name: "alice", Secret: "s3cret"}}}, seamless.SubscribeOptions{})
	q := url.Values{"node_id": {servertest.Node}}
	resp, _ := sse(t, e, q, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("SSE without a token: %d", resp.StatusCode)
	}
	resp, evs := sse(t, e, q, http.Header{"Authorization": {"Bearer s3cret"}})
	if evs == nil {
		t.Fatalf("SSE with the token: %d", resp.StatusCode)
	}
	var bars []int64
	evs.until(t, seamless.EventCaughtUp, &bars)
	resp.Body.Close()

	if _, resp, err := wsDial(t, e, q, wire.Subprotocol, wire.BearerPrefix+"wrong"); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("WebSocket with a wrong token: %v", err)
	}
	conn, _, err := wsDial(t, e, q, wire.Subprotocol, wire.BearerPrefix+"s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if conn.Subprotocol() != wire.Subprotocol {
		t.Fatalf("subprotocol %q: the token must not be echoed", conn.Subprotocol())
	}
	wsEvents(t, e, conn).until(t, seamless.EventCaughtUp, &bars)
	conn.CloseNow()

	conn, _, err = wsDial(t, e, q, wire.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	evs = wsEvents(t, e, conn)
	send(t, conn, `{"type":"auth","token":"s3cret"}`)
	evs.until(t, seamless.EventCaughtUp, &bars)
	conn.CloseNow()

	conn, _, err = wsDial(t, e, q, wire.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	evs = wsEvents(t, e, conn)
	send(t, conn, `{"type":"subscribe","node_id":"`+servertest.Node+`"}`)
	if s := evs.next(t); s.ev.Type != seamless.EventError || s.ev.Err.Error() != wire.CodeUnauthorized {
		t.Fatalf("unauthenticated subscribe: %+v", s.ev)
	}
	if _, ok := <-evs.ch; ok {
		t.Fatal("connection kept without auth")
	}
	conn.CloseNow()
}

// TestStreamBadInput: refused subscriptions are HTTP errors before a stream starts,
// and error events on a WebSocket, which stays open for the next command.
func TestStreamBadInput(t *testing.T) {
	e := servertest.StartLive(t, server.Config{Stream: server.StreamConfig{MaxSubscriptions: 2}}, seamless.SubscribeOptions{})
	future := e.Clock.Now().Add(time.Hour).Unix()
	for _, tc := range []struct {
		q      url.Values
		status int
		code   string
	}{
		{url.Values{"node_id": {"ohlcv:nowhere:BTC-USD:1m"}}, http.StatusNotFound, seamless.CodeUnknownSource},
		{url.Values{"node_id": {servertest.Node}, "interval": {"300"}}, http.StatusBadRequest, seamless.CodeBadRequest},
		{url.Values{"node_id": {servertest.Node}, "start": {time.Unix(future, 0).UTC().Format(time.RFC3339)}}, http.StatusBadRequest, seamless.CodeBadRequest},
		{url.Values{"node_id": {servertest.Node}, "token": {"s3cret"}}, http.StatusBadRequest, seamless.CodeBadRequest},
		{url.Values{"node_id": {servertest.Node}, "format": {"arrow"}}, http.StatusBadRequest, seamless.CodeBadRequest},
		{url.Values{}, http.StatusBadRequest, seamless.CodeBadRequest},
	} {
		resp, evs := sse(t, e, tc.q, nil)
		if evs != nil {
			resp.Body.Close()
			t.Fatalf("%v: a stream", tc.q)
		}
		body := wire.ReadError(resp.StatusCode, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || body.Code != tc.code {
			t.Fatalf("%v: %d %+v, want %d %s", tc.q, resp.StatusCode, body, tc.status, tc.code)
		}
	}
	resp, err := e.HTTP.Client().Get(e.HTTP.URL + "/v1/stream?node_id=" + url.QueryEscape(servertest.Node))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotAcceptable {
		t.Fatalf("a plain GET: %d", resp.StatusCode)
	}

	conn, _, err := wsDial(t, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	evs := wsEvents(t, e, conn)
	for _, tc := range []struct{ msg, code string }{
		{`not json`, seamless.CodeBadRequest},
		{`{"type":"subscribe"}`, seamless.CodeBadRequest},
		{`{"type":"subscribe","node_id":"ohlcv:nowhere:X:1m"}`, seamless.CodeUnknownSource},
		{`{"type":"subscribe","node_id":"` + servertest.Node + `","start":` + time.Unix(future, 0).Format("\"2006-01-02T15:04:05Z07:00\"") + `}`, seamless.CodeBadRequest},
		{`{"type":"subscribe","node_id":"` + servertest.Node + `","colour":"red"}`, seamless.CodeBadRequest},
		{`{"type":"unsubscribe","node_id":"` + servertest.Node + `"}`, seamless.CodeBadRequest},
		{`{"type":"dance"}`, seamless.CodeBadRequest},
	} {
		send(t, conn, tc.msg)
		if s := evs.next(t); s.ev.Type != seamless.EventError || seamless.ErrorCode(s.ev.Err) != tc.code && s.ev.Err.Error() != tc.code {
			t.Fatalf("%s: %+v, want an error event %s", tc.msg, s.ev, tc.code)
		}
	}
	// The connection is still usable: two subscriptions, a duplicate and a third refused.
	var bars []int64
	send(t, conn, `{"type":"subscribe","node_id":"`+servertest.Node+`"}`)
	evs.until(t, seamless.EventCaughtUp, &bars)
	send(t, conn, `{"type":"subscribe","node_id":"`+servertest.Node+`","interval":60}`)
	if s := evs.next(t); s.ev.Type != seamless.EventError || seamless.ErrorCode(s.ev.Err) != seamless.CodeBadRequest {
		t.Fatalf("duplicate subscribe: %+v", s.ev)
	}
	send(t, conn, `{"type":"subscribe","node_id":"ohlcv:demo:ETH-USD:1m"}`)
	for s := evs.next(t); s.ev.Type != seamless.EventCaughtUp; s = evs.next(t) {
		if s.ev.Type == seamless.EventError {
			t.Fatalf("second subscription: %v", s.ev.Err)
		}
	}
	send(t, conn, `{"type":"subscribe","node_id":"ohlcv:demo:SOL-USD:1m"}`)
	for s := evs.next(t); ; s = evs.next(t) {
		if s.ev.Type == seamless.EventError {
			if s.ev.Err.Error() != wire.CodeTooManyRequests {
				t.Fatalf("third subscription: %v", s.ev.Err)
			}
			break
		}
	}
	send(t, conn, `{"type":"unsubscribe","node_id":"ohlcv:demo:ETH-USD:1m"}`)
	for s := evs.next(t); ; s = evs.next(t) {
		if s.ev.Type == seamless.EventEnd {
			if s.ev.NodeID != "ohlcv:demo:ETH-USD:1m" || s.ev.Reason != seamless.EndCanceled || s.ev.Cursor == "" {
				t.Fatalf("unsubscribe: %+v", s.ev)
			}
			break
		}
	}
}

// TestStreamShutdown: a server shutting down ends every stream with an end event that
// carries the cursor to resume from.
func TestStreamShutdown(t *testing.T) {
	e := servertest.StartLive(t, server.Config{}, seamless.SubscribeOptions{})
	q := url.Values{"node_id": {servertest.Node}, "start": {"" + time.Unix(e.Clock.Now().Add(-time.Hour).Unix(), 0).UTC().Format(time.RFC3339)}}
	resp, sseEvs := sse(t, e, q, nil)
	if sseEvs == nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
	defer resp.Body.Close()
	conn, _, err := wsDial(t, e, q)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	wsEvs := wsEvents(t, e, conn)
	var bars []int64
	sseCaught := sseEvs.until(t, seamless.EventCaughtUp, &bars)
	wsCaught := wsEvs.until(t, seamless.EventCaughtUp, &bars)
	e.Server.Close()
	for name, tc := range map[string]struct {
		evs    *events
		caught streamed
	}{"sse": {sseEvs, sseCaught}, "websocket": {wsEvs, wsCaught}} {
		tc.evs.clk = nil // nothing more closes
		end := tc.evs.until(t, seamless.EventEnd, &bars)
		if end.ev.Reason != seamless.EndShutdown || end.ev.Cursor != tc.caught.ev.Cursor {
			t.Fatalf("%s: end %+v after caught_up %+v", name, end.ev, tc.caught.ev)
		}
		if _, ok := <-tc.evs.ch; ok {
			t.Fatalf("%s: events after end", name)
		}
	}
}
