// Package binancetest has in-process stand-ins for Binance for tests outside package
// binance. Server fakes the REST klines endpoints (spot GET /api/v3/klines and USDⓈ-M
// futures GET /fapi/v1/klines, which answer alike): it speaks the real wire format
// (arrays of 12 fields, prices as strings, startTime/endTime in ms, inclusive
// endTime, limit ≤ 1000, ≤ 1500 for futures), serves deterministic bars or the klines a test
// sets, and records every page requested. Stream fakes the combined-stream websocket endpoint (GET /stream) that
// live/binancews connects to.
package binancetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
)

var intervals = map[string]int64{"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}

// Server is a fake Binance REST API.
type Server struct {
	*httptest.Server
	// Latency is slept before answering each page.
	Latency time.Duration
	// Stall, set before the first request, makes every request hang unanswered until
	// the client gives up.
	Stall bool

	mu       sync.Mutex
	pages    map[string]int // "SYMBOL interval startTime" → requests
	requests []Request
	// markets, once SetKlines was called, holds the only klines served, by
	// "SYMBOL interval".
	markets map[string][]Row
}

// Row is one kline a test sets: its open time in epoch milliseconds and its open,
// high, low, close and volume, served as Binance's 8-decimal strings. Its close time
// is served as Binance does, one interval after the open less 1 ms, whatever the
// time: a kline still forming is served like a closed one, and only the client's
// clock tells them apart.
type Row struct {
	OpenMS int64
	Bar    [5]float64
}

// SetKlines makes the server hold exactly rows, sorted by OpenMS, for symbol (e.g.
// BTCUSDT) at interval (e.g. 1m), in place of its deterministic bars. From the first
// call on the server lists only the markets set: a symbol without klines answers
// -1121 "Invalid symbol.", as Binance answers for one it does not list.
func (s *Server) SetKlines(symbol, interval string, rows []Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.markets == nil {
		s.markets = map[string][]Row{}
	}
	s.markets[symbol+" "+interval] = slices.Clone(rows)
}

// Request is one valid klines request, as received.
type Request struct {
	Symbol, Interval string
	// StartMS and EndMS are startTime and endTime, both inclusive, in milliseconds.
	StartMS, EndMS int64
	Limit          int
}

// Overlaps reports whether the request asks for any part of [from, to) (seconds).
func (r Request) Overlaps(from, to int64) bool { return r.StartMS < to*1000 && r.EndMS >= from*1000 }

// New starts a fake Binance on loopback; Close it when done.
func New() *Server {
	s := &Server{pages: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Bars returns the bars the server holds for symbol (e.g. BTCUSDT) at interval in r:
// one at every grid point, deterministic, each value as served (8 decimals).
func Bars(symbol string, interval int64, r grid.Range) [][5]float64 {
	f := demo.Bars("binance:"+symbol, interval, r)
	out := make([][5]float64, f.Len())
	for i := range out {
		for k := range 5 {
			out[i][k], _ = strconv.ParseFloat(num(f.Cols[k].F64[i]), 64)
		}
	}
	return out
}

// Pages returns how many times each page (keyed "SYMBOL interval startTimeMs") was
// requested.
func (s *Server) Pages() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.pages))
	for k, v := range s.pages {
		out[k] = v
	}
	return out
}

// Requests returns every valid klines request received, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	fmt.Fprintf(w, `{"code":%d,"msg":%q}`, code, msg)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	maxLimit := 1000
	switch r.URL.Path {
	case "/api/v3/klines":
	case "/fapi/v1/klines": // USDⓈ-M futures: the same rows, limit up to 1500
		maxLimit = 1500
	default:
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	symbol, tf := q.Get("symbol"), q.Get("interval")
	iv, ok := intervals[tf]
	if symbol == "" || !ok {
		apiError(w, -1121, "Invalid symbol or interval.")
		return
	}
	start, err1 := strconv.ParseInt(q.Get("startTime"), 10, 64)
	end, err2 := strconv.ParseInt(q.Get("endTime"), 10, 64)
	limit, err3 := strconv.Atoi(q.Get("limit"))
	if err1 != nil || err2 != nil || err3 != nil || limit < 1 || limit > maxLimit || end < start {
		apiError(w, -1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
		return
	}
	s.mu.Lock()
	s.pages[fmt.Sprintf("%s %s %d", symbol, tf, start)]++
	s.requests = append(s.requests, Request{Symbol: symbol, Interval: tf, StartMS: start, EndMS: end, Limit: limit})
	set, scripted := s.markets[symbol+" "+tf], s.markets != nil
	listed := !scripted || s.listsSymbol(symbol)
	s.mu.Unlock()
	if s.Stall {
		<-r.Context().Done()
		return
	}
	if s.Latency > 0 {
		time.Sleep(s.Latency)
	}
	if !listed {
		apiError(w, -1121, "Invalid symbol.")
		return
	}
	if scripted {
		rows := [][]any{}
		for _, k := range set {
			if k.OpenMS >= start && k.OpenMS <= end && len(rows) < limit {
				rows = append(rows, klineRow(k.OpenMS/1000, iv, k.Bar))
			}
		}
		writeKlines(w, rows)
		return
	}
	// endTime is inclusive in milliseconds; bars open at grid points in seconds.
	from := grid.CeilAlign((start+999)/1000, iv)
	to := min(end/1000+1, from+int64(limit)*iv)
	now := time.Now().Unix()
	rows := [][]any{}
	for i, b := range Bars(symbol, iv, grid.R(from, to)) {
		ts := from + int64(i)*iv
		if ts > now {
			break
		}
		rows = append(rows, klineRow(ts, iv, b))
	}
	writeKlines(w, rows)
}

// listsSymbol reports whether SetKlines set symbol at any interval. s.mu is held.
func (s *Server) listsSymbol(symbol string) bool {
	for k := range s.markets {
		if strings.HasPrefix(k, symbol+" ") {
			return true
		}
	}
	return false
}

// klineRow is the 12-field row of the kline opening at ts (s) of interval iv (s).
func klineRow(ts, iv int64, b [5]float64) []any {
	return []any{ts * 1000, num(b[0]), num(b[1]), num(b[2]), num(b[3]), num(b[4]),
		(ts+iv)*1000 - 1, "0", 10, "0", "0", "0"}
}

func writeKlines(w http.ResponseWriter, rows [][]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-MBX-USED-WEIGHT-1M", "2")
	json.NewEncoder(w).Encode(rows)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 8, 64) }
