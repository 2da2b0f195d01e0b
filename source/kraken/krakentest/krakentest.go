// Package krakentest fakes Kraken's public OHLC endpoint for tests: GET
// /0/public/OHLC speaking the real wire format — pair, interval in minutes (1 5 15 30
// 60 240 1440 10080 21600), since in epoch seconds (rows after it), only the newest
// 720 bars before now (the forming one included, last), the {"error":[],"result":
// {PAIRNAME:[[time,open,high,low,close,vwap,volume,count],…],"last":…}} envelope with
// decimal strings and the pair under Kraken's own name, and errors in the error array
// of a 200 answer (EQuery:Unknown asset pair, EGeneral:Invalid arguments).
package krakentest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Row is one bar: time in epoch seconds and open, high, low, close, volume.
type Row struct {
	TS  int64
	Bar [5]float64
}

// Server is a fake Kraken.
type Server struct {
	*httptest.Server
	// Now is Kraken's time: it decides the window and the forming bar (nil: the wall
	// clock).
	Now func() time.Time
	// Stall, set before the first request, makes every request hang unanswered.
	Stall bool

	mu       sync.Mutex
	pairs    map[string]pair // "XBTUSD 1" → rows
	requests int
}

type pair struct {
	key  string // Kraken's own name, the result key
	rows []Row
}

var minutes = map[string]bool{"1": true, "5": true, "15": true, "30": true, "60": true, "240": true, "1440": true, "10080": true, "21600": true}

// New starts a fake on loopback; Close it when done.
func New() *Server {
	s := &Server{pairs: map[string]pair{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetOHLC makes the server hold exactly rows (ascending) for the pair requested as
// name (XBTUSD) and answered as key (XXBTZUSD), at interval minutes.
func (s *Server) SetOHLC(name, key string, interval int64, rows []Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs[name+" "+strconv.FormatInt(interval, 10)] = pair{key: key, rows: slices.Clone(rows)}
}

// Requests returns how many OHLC requests the server received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func answer(w http.ResponseWriter, errs []string, result any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"error": errs, "result": result})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/0/public/OHLC" {
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
	name, interval := q.Get("pair"), q.Get("interval")
	if interval == "" {
		interval = "1"
	}
	since := int64(-1)
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			answer(w, []string{"EGeneral:Invalid arguments"}, map[string]any{})
			return
		}
		since = n
	}
	if name == "" || !minutes[interval] {
		answer(w, []string{"EGeneral:Invalid arguments"}, map[string]any{})
		return
	}
	s.mu.Lock()
	p, listed := s.pairs[name+" "+interval]
	if !listed {
		for k, v := range s.pairs {
			if strings.HasPrefix(k, name+" ") {
				listed, p = true, pair{key: v.key}
			}
		}
	}
	s.mu.Unlock()
	if !listed {
		answer(w, []string{"EQuery:Unknown asset pair"}, map[string]any{})
		return
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	m, _ := strconv.ParseInt(interval, 10, 64)
	iv := m * 60
	forming := now.Unix() - now.Unix()%iv
	rows := [][]any{}
	last := int64(0)
	for _, row := range p.rows {
		if row.TS < forming-719*iv || row.TS > forming || row.TS <= since {
			continue
		}
		if row.TS < forming {
			last = row.TS
		}
		b := row.Bar
		rows = append(rows, []any{row.TS, num(b[0]), num(b[1]), num(b[2]), num(b[3]), num((b[1] + b[2]) / 2), num(b[4]), 7})
	}
	answer(w, []string{}, map[string]any{p.key: rows, "last": last})
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
