package binancetest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Stream is a fake of Binance's combined-stream websocket endpoint (GET /stream)
// speaking the real protocol: it answers SUBSCRIBE and UNSUBSCRIBE requests
// ({"method":…,"params":[…],"id":n}) with {"result":null,"id":n}, records each
// connection's requests and subscribed streams, and writes events wrapped as
// {"stream":…,"data":…}. Like Binance, it drops a connection that sends more than
// RateLimit messages within a second, counting it in RateViolations.
//
// Each handshake consumes the next Step of its script: a step either refuses the
// handshake with an HTTP status, or accepts it and writes its messages in order — a
// wrapped event once its stream is subscribed on the connection, anything else at once —
// and then drops the connection or holds it open until the client leaves. Past the
// script, handshakes are accepted and held open, answering requests; Publish pushes
// events to them.
type Stream struct {
	srv *httptest.Server

	mu         sync.Mutex
	script     []Step
	paths      []string
	conns      []*Conn // every accepted connection, in order
	open       int     // connections accepted and not yet closed
	violations int     // connections dropped for exceeding the message rate
	wg         sync.WaitGroup
}

// RateLimit is Binance's limit of incoming messages per second and connection.
const RateLimit = 5

// Step scripts one handshake.
type Step struct {
	Refuse int      // HTTP status answered instead of the upgrade (0: accept)
	Send   []string // messages written verbatim, in order (see Event)
	Drop   bool     // close the connection abruptly after Send; else hold it
	Binary bool     // send the messages as binary frames
	Fail   bool     // answer every SUBSCRIBE with an error, subscribing nothing
}

// Conn is one accepted connection.
type Conn struct {
	s    *Stream
	c    *websocket.Conn
	fail bool // from its step

	// Guarded by s.mu:
	subs     map[string]bool
	requests []string      // "METHOD stream,stream", in order received
	changed  chan struct{} // closed and replaced whenever subs change
	closed   bool          // dropped or ended
}

// NewStream starts a fake combined-stream endpoint on loopback, closed when the test
// ends (after the cleanups registered later, so close its clients in one of those).
func NewStream(t testing.TB, script ...Step) *Stream {
	s := &Stream{script: script}
	s.srv = httptest.NewServer(s)
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.wg.Wait()
	})
	return s
}

// URL is the raw-stream root a feed is configured with, ending in /ws; the
// combined-stream endpoint next to it, /stream, is the one served.
func (s *Stream) URL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/ws" }

// ServeHTTP implements http.Handler.
func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.URL.Path)
	if r.URL.Path != "/stream" {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	st := Step{}
	if len(s.script) > 0 {
		st, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	if st.Refuse != 0 {
		http.Error(w, `{"code":-1003,"msg":"Too many requests"}`, st.Refuse)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	fc := &Conn{s: s, c: c, fail: st.Fail, subs: map[string]bool{}, changed: make(chan struct{})}
	s.mu.Lock()
	s.open++
	s.conns = append(s.conns, fc)
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		fc.closed = true
		s.mu.Unlock()
		s.wg.Done()
	}()

	// The connection lives until its reader stops: the client left, broke the rate
	// limit or was dropped.
	ctx, cancel := context.WithCancel(r.Context())
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer cancel()
		fc.serve(ctx)
	}()
	defer func() {
		c.CloseNow()
		<-read
	}()

	typ := websocket.MessageText
	if st.Binary {
		typ = websocket.MessageBinary
	}
	for _, m := range st.Send {
		if !fc.await(ctx, m) || c.Write(ctx, typ, []byte(m)) != nil {
			return
		}
	}
	if !st.Drop {
		<-ctx.Done()
	}
}

// serve reads and answers the client's requests until the connection ends.
func (fc *Conn) serve(ctx context.Context) {
	s := fc.s
	var times []time.Time // arrival of each message
	for {
		_, data, err := fc.c.Read(ctx)
		if err != nil {
			return
		}
		times = append(times, time.Now())
		if n := len(times); n > RateLimit && times[n-1].Sub(times[n-1-RateLimit]) < time.Second {
			s.mu.Lock()
			s.violations++
			s.mu.Unlock()
			return
		}
		var req struct {
			Method string   `json:"method"`
			Params []string `json:"params"`
			ID     *int64   `json:"id"`
		}
		if json.Unmarshal(data, &req) != nil || req.ID == nil || (req.Method != "SUBSCRIBE" && req.Method != "UNSUBSCRIBE") {
			if fc.c.Write(ctx, websocket.MessageText, []byte(`{"error":{"code":2,"msg":"Invalid request"},"id":null}`)) != nil {
				return
			}
			continue
		}
		reply := fmt.Sprintf(`{"result":null,"id":%d}`, *req.ID)
		s.mu.Lock()
		fc.requests = append(fc.requests, req.Method+" "+strings.Join(req.Params, ","))
		if fc.fail && req.Method == "SUBSCRIBE" {
			reply = fmt.Sprintf(`{"error":{"code":2,"msg":"Invalid request: refused by the fake"},"id":%d}`, *req.ID)
		} else {
			for _, p := range req.Params {
				if req.Method == "SUBSCRIBE" {
					fc.subs[p] = true
				} else {
					delete(fc.subs, p)
				}
			}
			close(fc.changed)
			fc.changed = make(chan struct{})
		}
		s.mu.Unlock()
		if fc.c.Write(ctx, websocket.MessageText, []byte(reply)) != nil {
			return
		}
	}
}

// await waits until the stream of a wrapped event is subscribed on the connection;
// any other message needs no wait. It reports false if the connection ended first.
func (fc *Conn) await(ctx context.Context, m string) bool {
	var ev struct {
		Stream string `json:"stream"`
	}
	if json.Unmarshal([]byte(m), &ev) != nil || ev.Stream == "" {
		return true
	}
	for {
		fc.s.mu.Lock()
		ok, changed := fc.subs[ev.Stream], fc.changed
		fc.s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// Send writes m on the connection now, as a text message.
func (fc *Conn) Send(m string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return fc.c.Write(ctx, websocket.MessageText, []byte(m))
}

// Drop closes the connection abruptly.
func (fc *Conn) Drop() {
	fc.s.mu.Lock()
	fc.closed = true
	fc.s.mu.Unlock()
	fc.c.CloseNow()
}

// Subscribed returns the connection's subscribed streams, sorted.
func (fc *Conn) Subscribed() []string {
	fc.s.mu.Lock()
	defer fc.s.mu.Unlock()
	out := make([]string, 0, len(fc.subs))
	for p := range fc.subs {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Requests returns the requests received, as "METHOD stream,stream".
func (fc *Conn) Requests() []string {
	fc.s.mu.Lock()
	defer fc.s.mu.Unlock()
	return slices.Clone(fc.requests)
}

// Paths returns the path of every HTTP request received, in order.
func (s *Stream) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

// Open is the number of connections accepted and not yet closed.
func (s *Stream) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Live returns the connections neither dropped nor ended, in order of acceptance.
func (s *Stream) Live() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	var open []*Conn
	for _, fc := range s.conns {
		if !fc.closed {
			open = append(open, fc)
		}
	}
	return open
}

// Accepted returns every connection accepted so far.
func (s *Stream) Accepted() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.conns)
}

// RateViolations is the number of connections dropped for their message rate.
func (s *Stream) RateViolations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.violations
}

// SubscribedCount is the number of streams subscribed over the open connections.
func (s *Stream) SubscribedCount() int {
	n := 0
	for _, fc := range s.Live() {
		n += len(fc.Subscribed())
	}
	return n
}

// Publish writes the event data of stream (see Kline), wrapped, on every open
// connection subscribed to it and returns how many there were.
func (s *Stream) Publish(t testing.TB, stream, data string) int {
	t.Helper()
	n := 0
	for _, fc := range s.Live() {
		if !slices.Contains(fc.Subscribed(), stream) {
			continue
		}
		if err := fc.Send(Event(stream, data)); err != nil {
			t.Fatalf("publish on %s: %v", stream, err)
		}
		n++
	}
	return n
}

// Event wraps the payload data of stream as the combined-stream endpoint does. data is
// inserted verbatim, so a malformed payload makes a malformed message.
func Event(stream, data string) string { return `{"stream":"` + stream + `","data":` + data + `}` }

// Kline renders the payload of a kline event of symbol (e.g. BTCUSDT) at interval
// (e.g. 1m) in Binance's format, every field present: the kline opens at openMS and
// closes at closeMS (open + interval - 1 ms), bar holds open, high, low, close and
// volume (as Bars returns them), and closed is the "x" flag. The taker-buy volume "V"
// differs from "v" on purpose: a parser that confuses the two keys is caught.
func Kline(symbol, interval string, openMS, closeMS int64, bar [5]float64, closed bool) string {
	o, h, l, c, v := bar[0], bar[1], bar[2], bar[3], bar[4]
	ev := map[string]any{
		"e": "kline", "E": closeMS + 1, "s": symbol,
		"k": map[string]any{
			"t": openMS, "T": closeMS, "s": symbol, "i": interval, "f": 100, "L": 200,
			"o": num(o), "c": num(c), "h": num(h), "l": num(l), "v": num(v),
			"n": 100, "x": closed, "q": num(v * c), "V": num(v / 2), "Q": num(v * c / 2), "B": "0",
		},
	}
	b, _ := json.Marshal(ev) // strings, numbers and a bool: cannot fail
	return string(b)
}
