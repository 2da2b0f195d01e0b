// Package bybittest fakes Bybit's v5 kline endpoint for tests: GET /v5/market/kline
// speaking the real wire format — category spot, linear or inverse, interval 1 3 5 15
// 30 60 120 240 360 720 D, start and end inclusive in epoch ms, limit 1..1000 (default
// 200), the {"retCode":0,"retMsg":"OK","result":{…,"list":[…]}} envelope with rows
// [startTime,open,high,low,close,volume,turnover] of strings newest first (the newest
// limit rows of the window), and retCode 10001 in a 200 answer for a symbol or
// parameter it does not accept — over the klines a test sets.
package bybittest

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
)

// Row is one kline: ts in epoch seconds, and open, high, low, close and base-asset
// volume (served as volume, or as turnover for inverse contracts).
type Row struct {
	TS  int64
	Bar [5]float64
}

// Server is a fake Bybit.
type Server struct {
	*httptest.Server
	// Stall, set before the first request, makes every request hang unanswered.
	Stall bool

	mu       sync.Mutex
	markets  map[string][]Row // "linear BTCUSDT 1" → rows, ascending
	requests int
}

var intervals = map[string]bool{"1": true, "3": true, "5": true, "15": true, "30": true, "60": true, "120": true,
	"240": true, "360": true, "720": true, "D": true, "W": true, "M": true}

// New starts a fake on loopback; Close it when done.
func New() *Server {
	s := &Server{markets: map[string][]Row{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetKlines makes the server hold exactly rows (ascending) for symbol in category at
// interval (Bybit's: 1, 60, D…). Symbols never set are not listed.
func (s *Server) SetKlines(category, symbol, interval string, rows []Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markets[category+" "+symbol+" "+interval] = slices.Clone(rows)
}

// Requests returns how many kline requests the server received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func retError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"retCode":%d,"retMsg":%q,"result":{},"retExtInfo":{},"time":%d}`, code, msg, time.Now().UnixMilli())
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v5/market/kline" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if s.Stall {
		<-r.Context().Done()
		return
	}
	q := r.URL.Query()
	cat, sym, iv := q.Get("category"), q.Get("symbol"), q.Get("interval")
	if (cat != "spot" && cat != "linear" && cat != "inverse") || sym == "" || !intervals[iv] {
		retError(w, 10001, "params error: category, symbol or interval invalid")
		return
	}
	limit := 200
	if v := q.Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			retError(w, 10001, "params error: limit")
			return
		}
	}
	start, end := int64(0), int64(1<<62)
	for name, p := range map[string]*int64{"start": &start, "end": &end} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				retError(w, 10001, "params error: "+name)
				return
			}
			*p = n
		}
	}
	s.mu.Lock()
	rows, listed := s.markets[cat+" "+sym+" "+iv]
	if !listed {
		for k := range s.markets {
			listed = listed || strings.HasPrefix(k, cat+" "+sym+" ")
		}
	}
	s.mu.Unlock()
	if !listed {
		retError(w, 10001, "Not supported symbols")
		return
	}
	list := [][]string{}
	for i := len(rows) - 1; i >= 0 && len(list) < limit; i-- { // newest first
		row := rows[i]
		ms := row.TS * 1000
		if ms < start || ms > end {
			continue
		}
		vol, turnover := num(row.Bar[4]), num(row.Bar[4]*row.Bar[3])
		if cat == "inverse" {
			vol, turnover = num(row.Bar[4]*row.Bar[3]), num(row.Bar[4])
		}
		list = append(list, []string{strconv.FormatInt(ms, 10), num(row.Bar[0]), num(row.Bar[1]), num(row.Bar[2]), num(row.Bar[3]), vol, turnover})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"retCode": 0, "retMsg": "OK",
		"result": map[string]any{"category": cat, "symbol": sym, "list": list}, "retExtInfo": map[string]any{}, "time": time.Now().UnixMilli()})
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
