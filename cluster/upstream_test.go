package cluster_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless/grid"
)

// upstream is an httptest server speaking Binance's GET /api/v3/klines (inclusive
// startTime and endTime in ms, limit ≤ 1000, ascending rows of the real 12-field wire
// format; the kline set is the one of source/binance's fake, so decoded values are
// exact) for symbol BTCUSDT. Each Seamless process gets its own base URL,
// {srv}/{node}, so every request is attributed to the process that sent it.
//
// It counts requests per page — (symbol, startTime): one backfill chunk is one page —
// both as received and as answered, and sleeps latency before answering so that
// backfill is in flight long enough for a process to be killed in the middle of it.
// hang, when set, decides whether to hold a request without ever answering it (until
// the sender's connection closes): a process is killed while it waits for such a page.
type upstream struct {
	srv     *httptest.Server
	latency time.Duration

	mu       sync.Mutex
	hang     func(node string, n int) bool // n counts the node's requests, from 1
	perNode  map[string]int
	received map[page][]string // page → the nodes that asked for it, in order
	answered map[page][]string
}

// page identifies one klines request.
type page struct {
	Symbol  string
	StartMS int64
}

func newUpstream(t *testing.T, latency time.Duration) *upstream {
	u := &upstream{latency: latency, perNode: map[string]int{}, received: map[page][]string{}, answered: map[page][]string{}}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.srv.Close)
	return u
}

// baseURL is node's SEAMLESS_BINANCE_URL.
func (u *upstream) baseURL(node string) string { return u.srv.URL + "/" + node }

// snapshot returns copies of the received and answered logs.
func (u *upstream) snapshot() (received, answered map[page][]string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cp := func(m map[page][]string) map[page][]string {
		out := make(map[page][]string, len(m))
		for k, v := range m {
			out[k] = append([]string(nil), v...)
		}
		return out
	}
	return cp(u.received), cp(u.answered)
}

// klineBar is the kline opening at ts (s) — source/binance's fakeBar: prices in cents,
// volume in thousandths, so that the wire decimals and the decoded floats are exact.
func klineBar(ts, iv int64) (open, high, low, close, volume int64) {
	n := ts / iv
	open = 3_000_000 + n%5000
	close = open + n%7 - 3
	return open, max(open, close) + 5, min(open, close) - 5, close, n%1000 + 1
}

// wantClose is the close the provider decodes for the bar at ts.
func wantClose(ts, iv int64) float64 {
	_, _, _, c, _ := klineBar(ts, iv)
	return float64(c) / 100
}

func cents(c int64) string       { return fmt.Sprintf("%d.%02d000000", c/100, c%100) }
func thousandths(v int64) string { return fmt.Sprintf("%d.%03d00000", v/1000, v%1000) }

func binanceError(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "msg": msg})
}

var intervals = map[string]int64{"1m": 60, "5m": 300, "1h": 3600}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	node, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if rest != "api/v3/klines" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("symbol") != "BTCUSDT" {
		binanceError(w, 400, -1121, "Invalid symbol.")
		return
	}
	iv, ok := intervals[q.Get("interval")]
	if !ok {
		binanceError(w, 400, -1120, "Invalid interval.")
		return
	}
	startMS, err1 := strconv.ParseInt(q.Get("startTime"), 10, 64)
	endMS, err2 := strconv.ParseInt(q.Get("endTime"), 10, 64)
	limit, err3 := strconv.ParseInt(q.Get("limit"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || limit < 1 || limit > 1000 || startMS > endMS {
		binanceError(w, 400, -1100, "Illegal characters found in a parameter.")
		return
	}
	pg := page{Symbol: q.Get("symbol"), StartMS: startMS}
	u.mu.Lock()
	u.perNode[node]++
	u.received[pg] = append(u.received[pg], node)
	hang := u.hang != nil && u.hang(node, u.perNode[node])
	u.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	select {
	case <-time.After(u.latency):
	case <-r.Context().Done():
		return
	}
	ivMS := iv * 1000
	nowMS := time.Now().UnixMilli()
	rows := [][]any{}
	for openMS := grid.CeilAlign(startMS, ivMS); openMS <= endMS && openMS+ivMS <= nowMS && int64(len(rows)) < limit; openMS += ivMS {
		o, h, l, c, v := klineBar(openMS/1000, iv)
		rows = append(rows, []any{openMS, cents(o), cents(h), cents(l), cents(c), thousandths(v), openMS + ivMS - 1,
			"1234.56780000", 42, thousandths(v / 2), "617.28390000", "0"})
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("X-MBX-USED-WEIGHT-1M", "2")
	if err := json.NewEncoder(w).Encode(rows); err != nil {
		return
	}
	u.mu.Lock()
	u.answered[pg] = append(u.answered[pg], node)
	u.mu.Unlock()
}
