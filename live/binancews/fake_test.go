package binancews_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// fakeStream is a Binance raw-stream server (GET /ws/{symbol}@kline_{tf}) speaking the
// real kline event format. Each handshake consumes the next step of its script: a
// step either refuses the handshake with an HTTP status, or accepts it and runs a
// session that writes messages and then drops the connection or holds it open until
// the client leaves. Past the script, handshakes are accepted and held silent.
type fakeStream struct {
	srv *httptest.Server

	mu     sync.Mutex
	script []step
	paths  []string
	open   int // connections currently accepted and not yet closed
	wg     sync.WaitGroup
}

type step struct {
	refuse int      // HTTP status answered instead of the upgrade (0: accept)
	send   []string // messages written in order after the upgrade
	drop   bool     // close the connection abruptly after send; else hold it
	binary bool     // send the messages as binary frames
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

func (fs *fakeStream) url() string { return "ws" + strings.TrimPrefix(fs.srv.URL, "http") + "/ws" }

func (fs *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	fs.paths = append(fs.paths, r.URL.Path)
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
	defer c.CloseNow()
	fs.mu.Lock()
	fs.open++
	fs.wg.Add(1)
	fs.mu.Unlock()
	defer func() {
		fs.mu.Lock()
		fs.open--
		fs.mu.Unlock()
		fs.wg.Done()
	}()
	ctx := r.Context()
	typ := websocket.MessageText
	if st.binary {
		typ = websocket.MessageBinary
	}
	for _, m := range st.send {
		if c.Write(ctx, typ, []byte(m)) != nil {
			return
		}
	}
	if st.drop {
		return
	}
	// Hold: reading serves the client's close and returns when it leaves.
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

func (fs *fakeStream) state() (paths []string, open int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.paths...), fs.open
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
