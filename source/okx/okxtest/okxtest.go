// Package okxtest fakes OKX's public candle endpoints for tests: GET
// /api/v5/market/candles (limit ≤ 300, only the newest 1,440 bars before now) and GET
// /api/v5/market/history-candles (limit ≤ 100, all history), speaking the real wire
// format — instId, bar, after and before exclusive bounds in epoch ms, the
// {"code":"0","msg":"","data":[…]} envelope, rows [ts,o,h,l,c,vol,volCcy,volCcyQuote,
// confirm] of strings newest first, confirm "0" for the bar forming at now, code
// 51001 "Instrument ID does not exist" for an instrument it does not list, 51000 for a
// bad parameter.
package okxtest

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

// Row is one candle: ts in epoch seconds, and open, high, low, close and base-asset
// volume (served as vol for spot and volCcy for swaps).
type Row struct {
	TS  int64
	Bar [5]float64
}

// Server is a fake OKX.
type Server struct {
	*httptest.Server
	// Now is OKX's time: it decides confirm and what /candles reaches (nil: the wall
	// clock).
	Now func() time.Time
	// Stall, set before the first request, makes every request hang unanswered.
	Stall bool

	mu       sync.Mutex
	insts    map[string][]Row // "BTC-USDT 1m" → rows, ascending
	requests []string         // paths
}

var barSeconds = map[string]int64{"1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1H": 3600, "2H": 7200,
	"4H": 14400, "6Hutc": 21600, "12Hutc": 43200, "1Dutc": 86400}

// New starts a fake on loopback; Close it when done.
func New() *Server {
	s := &Server{insts: map[string][]Row{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// SetCandles makes the server hold exactly rows (ascending) for instId at bar (an OKX
// bar such as 1m or 1Dutc). Instruments never set are not listed.
func (s *Server) SetCandles(instID, bar string, rows []Row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.insts[instID+" "+bar] = slices.Clone(rows)
}

// Paths returns the path of every candle request received, in order.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%q,"msg":%q,"data":[]}`, code, msg)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	maxLimit, recentOnly := 0, false
	switch r.URL.Path {
	case "/api/v5/market/candles":
		maxLimit, recentOnly = 300, true
	case "/api/v5/market/history-candles":
		maxLimit = 100
	default:
		fail(w, http.StatusNotFound, "404", "Not Found")
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.Path)
	s.mu.Unlock()
	if s.Stall {
		<-r.Context().Done()
		return
	}
	q := r.URL.Query()
	iv, ok := barSeconds[q.Get("bar")]
	inst := q.Get("instId")
	if inst == "" || !ok {
		fail(w, http.StatusBadRequest, "51000", "Parameter bar error")
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			fail(w, http.StatusBadRequest, "51000", "Parameter limit error")
			return
		}
	}
	after, before := int64(1<<62), int64(-1)
	for name, p := range map[string]*int64{"after": &after, "before": &before} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				fail(w, http.StatusBadRequest, "51000", "Parameter "+name+" error")
				return
			}
			*p = n
		}
	}
	s.mu.Lock()
	rows, listed := s.insts[inst+" "+q.Get("bar")]
	if !listed {
		for k := range s.insts {
			listed = listed || strings.HasPrefix(k, inst+" ")
		}
	}
	s.mu.Unlock()
	if !listed {
		fail(w, http.StatusOK, "51001", "Instrument ID does not exist")
		return
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	forming := now.Unix() - now.Unix()%iv
	data := [][]string{}
	for i := len(rows) - 1; i >= 0 && len(data) < limit; i-- { // newest first
		row := rows[i]
		ms := row.TS * 1000
		if ms >= after || ms <= before || (recentOnly && row.TS < forming-(1440-1)*iv) {
			continue
		}
		confirm := "1"
		if row.TS+iv > now.Unix() {
			confirm = "0"
		}
		vol, volCcy := num(row.Bar[4]), num(row.Bar[4]*row.Bar[3])
		if strings.HasSuffix(inst, "-SWAP") {
			vol, volCcy = num(row.Bar[4]*100), num(row.Bar[4]) // contracts of 0.01
		}
		data = append(data, []string{strconv.FormatInt(ms, 10), num(row.Bar[0]), num(row.Bar[1]), num(row.Bar[2]), num(row.Bar[3]),
			vol, volCcy, num(row.Bar[4] * row.Bar[3]), confirm})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"code": "0", "msg": "", "data": data})
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
