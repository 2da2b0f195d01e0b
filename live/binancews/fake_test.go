package binancews_test

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

// fakeStream is a Binance combined-stream server (GET /stream) speaking the real
// protocol: it answers SUBSCRIBE and UNSUBSCRIBE requests with {"result":null,"id":n},
// records each connection's requests and subscribed streams, and writes events wrapped
// as {"stream":…,"data":…}. Like Binance, it drops a connection that sends more than
// fakeRateLimit messages within a second, counting it in violations.
//
// Each handshake consumes the next step of its script: a step either refuses the
// handshake with an HTTP status, or accepts it and writes its messages in order — a
// wrapped event once its stream is subscribed on the connection, anything else at once —
// and then drops the connection or holds it open until the client leaves. Past the
// script, handshakes are accepted and held open, answering requests.
type fakeStream struct {
	srv *httptest.Server

	mu         sync.Mutex
	script     []step
	paths      []string
	conns      []*fakeConn // every accepted connection, in order
	open       int         // connections accepted and not yet closed
	violations int         // connections dropped for exceeding the message rate
	wg         sync.WaitGroup
}

// fakeRateLimit is Binance's limit of incoming messages per second and connection.
const fakeRateLimit = 5

type step struct {
	refuse int      // HTTP status answered instead of the upgrade (0: accept)
	send   []string // messages written verbatim, in order (see event)
	drop   bool     // close the connection abruptly after send; else hold it
	binary bool     // send the messages as binary frames
	fail   bool     // answer every SUBSCRIBE with an error, subscribing nothing
}

// fakeConn is one accepted connection.
type fakeConn struct {
	fs   *fakeStream
	c    *websocket.Conn
	fail bool // from its step

	// Guarded by fs.mu:
	subs     map[string]bool
	requests []string      // "METHOD stream,stream", in order received
	changed  chan struct{} // closed and replaced whenever subs change
	closed   bool          // dropped or ended
}

func newFakeStream(t *testing.T, script ...step) *fakeStream {
	fs := &fakeStream{script: script}
	fs.srv = httptest.NewServer(fs)
	t.Cleanup(func() {
		fs.srv.CloseClientConnections()
		fs.srv.Close()
		fs.wg.Wait()
	})
	return fs
}

// url is the raw-stream root the feed is configured with; it connects to /stream.
func (fs *fakeStream) url() string { return "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/ws" }

func (fs *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	fs.paths = append(fs.paths, r.URL.Path)
	if r.URL.Path != "/stream" {
		fs.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	st := step{}
	if len(fs.script) > 0 {
		st, fs.script = fs.script[0], fs.script[1:]
	}
	fs.mu.Unlock()
	if st.refuse != 0 {
		http.Error(w, `{"code":-1003,"msg":"Too many requests"}`, st.refuse)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	fc := &fakeConn{fs: fs, c: c, fail: st.fail, subs: map[string]bool{}, changed: make(chan struct{})}
	fs.mu.Lock()
	fs.open++
	fs.conns = append(fs.conns, fc)
	fs.wg.Add(1)
	fs.mu.Unlock()
	defer func() {
		fs.mu.Lock()
		fs.open--
		fc.closed = true
		fs.mu.Unlock()
		fs.wg.Done()
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
	if st.binary {
		typ = websocket.MessageBinary
	}
	for _, m := range st.send {
		if !fc.await(ctx, m) || c.Write(ctx, typ, []byte(m)) != nil {
			return
		}
	}
	if !st.drop {
		<-ctx.Done()
	}
}

// serve reads and answers the client's requests until the connection ends.
func (fc *fakeConn) serve(ctx context.Context) {
	fs := fc.fs
	var times []time.Time // arrival of each message
	for {
		_, data, err := fc.c.Read(ctx)
		if err != nil {
			return
		}
		times = append(times, time.Now())
		if n := len(times); n > fakeRateLimit && times[n-1].Sub(times[n-1-fakeRateLimit]) < time.Second {
			fs.mu.Lock()
			fs.violations++
			fs.mu.Unlock()
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
		fs.mu.Lock()
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
		fs.mu.Unlock()
		if fc.c.Write(ctx, websocket.MessageText, []byte(reply)) != nil {
			return
		}
	}
}

// await waits until the stream of a wrapped event is subscribed on the connection;
// any other message needs no wait. It reports false if the connection ended first.
func (fc *fakeConn) await(ctx context.Context, m string) bool {
	var ev struct {
		Stream string `json:"stream"`
	}
	if json.Unmarshal([]byte(m), &ev) != nil || ev.Stream == "" {
		return true
	}
	for {
		fc.fs.mu.Lock()
		ok, changed := fc.subs[ev.Stream], fc.changed
		fc.fs.mu.Unlock()
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

// send writes m on the connection now.
func (fc *fakeConn) send(m string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return fc.c.Write(ctx, websocket.MessageText, []byte(m))
}

// drop closes the connection abruptly.
func (fc *fakeConn) drop() {
	fc.fs.mu.Lock()
	fc.closed = true
	fc.fs.mu.Unlock()
	fc.c.CloseNow()
}

// subscribed returns the connection's subscribed streams, sorted.
func (fc *fakeConn) subscribed() []string {
	fc.fs.mu.Lock()
	defer fc.fs.mu.Unlock()
	s := make([]string, 0, len(fc.subs))
	for p := range fc.subs {
		s = append(s, p)
	}
	slices.Sort(s)
	return s
}

// log returns the requests received, as "METHOD stream,stream".
func (fc *fakeConn) log() []string {
	fc.fs.mu.Lock()
	defer fc.fs.mu.Unlock()
	return slices.Clone(fc.requests)
}

func (fs *fakeStream) state() (paths []string, open int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.paths), fs.open
}

// live returns the connections neither dropped nor ended, in order of acceptance.
func (fs *fakeStream) live() []*fakeConn {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var open []*fakeConn
	for _, fc := range fs.conns {
		if !fc.closed {
			open = append(open, fc)
		}
	}
	return open
}

// accepted returns every connection accepted so far.
func (fs *fakeStream) accepted() []*fakeConn {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.conns)
}

func (fs *fakeStream) rateViolations() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.violations
}

// subscribedCount is the number of streams subscribed over the open connections.
func (fs *fakeStream) subscribedCount() int {
	n := 0
	for _, fc := range fs.live() {
		n += len(fc.subscribed())
	}
	return n
}

// publish writes the event data of stream on every open connection subscribed to it
// and returns how many there were.
func (fs *fakeStream) publish(t *testing.T, stream, data string) int {
	t.Helper()
	n := 0
	for _, fc := range fs.live() {
		if !slices.Contains(fc.subscribed(), stream) {
			continue
		}
		if err := fc.send(event(stream, data)); err != nil {
			t.Fatalf("publish on %s: %v", stream, err)
		}
		n++
	}
	return n
}

const btcStream = "btcusdt@kline_1m"

// event wraps the payload data of stream as the combined-stream endpoint does. data is
// inserted verbatim, so a malformed payload makes a malformed message.
func event(stream, data string) string { return `{"stream":"` + stream + `","data":` + data + `}` }

// btcEvents wraps payloads of the BTCUSDT 1m stream.
func btcEvents(data ...string) []string {
	evs := make([]string, len(data))
	for i, d := range data {
		evs[i] = event(btcStream, d)
	}
	return evs
}

// kline renders a kline event of BTCUSDT 1m opening at ts (s) in Binance's format,
// every field present. Prices derive from n: close 100+n, volume n/10; the taker-buy
// volume "V" differs from "v" on purpose.
func kline(ts int64, n float64, closed bool) string {
	return klineFor("BTCUSDT", "1m", ts*1000, ts*1000+59_999, n, closed)
}

func klineFor(symbol, tf string, openMS, closeMS int64, n float64, closed bool) string {
	ev := map[string]any{
		"e": "kline", "E": closeMS + 1, "s": symbol,
		"k": map[string]any{
			"t": openMS, "T": closeMS, "s": symbol, "i": tf, "f": 100, "L": 200,
			"o": dec(n + 99), "c": dec(n + 100), "h": dec(n + 102), "l": dec(n + 98), "v": dec(n / 10),
			"n": 100, "x": closed, "q": dec(n * n / 10), "V": dec(n / 20), "Q": dec(n * n / 20), "B": "0",
		},
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func dec(x float64) string { return fmt.Sprintf("%.8f", x) }

// bar is what kline(ts, n, …) decodes to: open, high, low, close, volume.
func barOf(n float64) [5]float64 { return [5]float64{n + 99, n + 102, n + 98, n + 100, n / 10} }

func itoa(v int64) string { return fmt.Sprint(v) }
