// Package coinbasetest fakes Coinbase Exchange's candles endpoint for tests: GET
// /products/{product_id}/candles speaking the real wire format — granularity one of
// 60 300 900 3600 21600 86400, start and end in ISO 8601, both inclusive, at most 300
// candles a window (a wider one is HTTP 400), rows [time, low, high, open, close,
// volume] of JSON numbers newest first, {"message":"NotFound"} (404) for a product
// it does not list — over the candles a test sets.
package coinbasetest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Row is one candle: its time in epoch seconds and open, high, low, close, volume.
// The fake serves the rows it holds whatever the time, so a candle still forming is
// served like a closed one, as Coinbase does.
type Row struct {
	TS  int64
	Bar [5]float64
}

// Server is a fake Coinbase Exchange.
type Server struct {
	*httptest.Server
	// Stall, set before the first request, makes every request hang unanswered until
	// the client gives up.
	Stall bool

	mu       sync.Mutex
	products map[string][]Row // "BTC-USD 60" → rows, ascending
	requests int
}

// New starts a fake on loopback; Close it when done.
func New() *Server {
	s := &Server{products: map[string][]Row{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetCandles makes the server hold exactly rows (ascending by TS) for product (e.g.
// BTC-USD) at granularity seconds. Products never set are not listed.
func (s *Server) SetCandles(product string, granularity int64, rows []Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.products[fmt.Sprintf("%s %d", product, granularity)] = slices.Clone(rows)
}

// Requests returns how many candle requests the server received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func message(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`, msg)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	product, ok := strings.CutPrefix(r.URL.Path, "/products/")
	product, ok2 := strings.CutSuffix(product, "/candles")
	if !ok || !ok2 || product == "" {
		message(w, http.StatusNotFound, "route not found")
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
	g, err := strconv.ParseInt(q.Get("granularity"), 10, 64)
	if err != nil || !slices.Contains([]int64{60, 300, 900, 3600, 21600, 86400}, g) {
		message(w, http.StatusBadRequest, "Unsupported granularity")
		return
	}
	start, err1 := time.Parse(time.RFC3339, q.Get("start"))
	end, err2 := time.Parse(time.RFC3339, q.Get("end"))
	if err1 != nil || err2 != nil || end.Before(start) {
		message(w, http.StatusBadRequest, "Invalid start or end")
		return
	}
	if (end.Unix()-start.Unix())/g+1 > 300 {
		message(w, http.StatusBadRequest, "granularity too small for the requested time range. Count of aggregations requested exceeds 300")
		return
	}
	s.mu.Lock()
	rows, listed := s.products[fmt.Sprintf("%s %d", product, g)]
	if !listed {
		for k := range s.products {
			listed = listed || strings.HasPrefix(k, product+" ")
		}
	}
	s.mu.Unlock()
	if !listed {
		message(w, http.StatusNotFound, "NotFound")
		return
	}
	var b strings.Builder
	b.WriteByte('[')
	n := 0
	for i := len(rows) - 1; i >= 0; i-- { // newest first
		row := rows[i]
		if row.TS < start.Unix() || row.TS > end.Unix() {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		o, h, l, c, v := row.Bar[0], row.Bar[1], row.Bar[2], row.Bar[3], row.Bar[4]
		fmt.Fprintf(&b, "[%d,%s,%s,%s,%s,%s]", row.TS, num(l), num(h), num(o), num(c), num(v))
	}
	b.WriteByte(']')
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, b.String())
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
