package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/source/binance/binancetest"
	"github.com/seamless-data/seamless/source/bybit/bybittest"
	"github.com/seamless-data/seamless/source/coinbase/coinbasetest"
	"github.com/seamless-data/seamless/source/kraken/krakentest"
	"github.com/seamless-data/seamless/source/okx/okxtest"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// venueFake is one venue's fake for TestVenuesThroughServe: its start serves bars for
// the test's node and returns the base URL to give SEAMLESS_{VENUE}_URL. The bars are
// historyBars unless bars says otherwise.
type venueFake struct {
	env, node string
	start     func(t *testing.T, bars *frame.Frame) string
	bars      func() *frame.Frame
}

// historyBars are 2,000 minutes from 2024-03-01: more than a page of every venue.
func historyBars() *frame.Frame { return sourcetest.Bars(1709251200, 60, 2000) }

// venueFakes are the fakes of every venue served over REST.
var venueFakes = []venueFake{
	{"SEAMLESS_BINANCE_URL", "ohlcv:binance:BTC/USDT:1m", func(t *testing.T, bars *frame.Frame) string {
		srv := binancetest.New()
		t.Cleanup(srv.Close)
		srv.SetKlines("BTCUSDT", "1m", binanceRows(bars))
		return srv.URL
	}, nil},
	{"SEAMLESS_BINANCE_FUTURES_URL", "ohlcv:binance-futures:BTC/USDT:USDT:1m", func(t *testing.T, bars *frame.Frame) string {
		srv := binancetest.New()
		t.Cleanup(srv.Close)
		srv.SetKlines("BTCUSDT", "1m", binanceRows(bars))
		return srv.URL
	}, nil},
	{"SEAMLESS_COINBASE_URL", "ohlcv:coinbase:BTC/USD:1m", func(t *testing.T, bars *frame.Frame) string {
		srv := coinbasetest.New()
		t.Cleanup(srv.Close)
		rows := make([]coinbasetest.Row, bars.Len())
		for i, ts := range bars.TS {
			rows[i] = coinbasetest.Row{TS: ts, Bar: barAt(bars, i)}
		}
		srv.SetCandles("BTC-USD", 60, rows)
		return srv.URL
	}, nil},
	{"SEAMLESS_OKX_URL", "ohlcv:okx:BTC/USDT:USDT:1m", func(t *testing.T, bars *frame.Frame) string {
		srv := okxtest.New()
		t.Cleanup(srv.Close)
		rows := make([]okxtest.Row, bars.Len())
		for i, ts := range bars.TS {
			rows[i] = okxtest.Row{TS: ts, Bar: barAt(bars, i)}
		}
		srv.SetCandles("BTC-USDT-SWAP", "1m", rows)
		return srv.URL
	}, nil},
	{"SEAMLESS_BYBIT_URL", "ohlcv:bybit:BTC/USDT:USDT:1m", func(t *testing.T, bars *frame.Frame) string {
		srv := bybittest.New()
		t.Cleanup(srv.Close)
		rows := make([]bybittest.Row, bars.Len())
		for i, ts := range bars.TS {
			rows[i] = bybittest.Row{TS: ts, Bar: barAt(bars, i)}
		}
		srv.SetKlines("linear", "BTCUSDT", "1", rows)
		return srv.URL
	}, nil},
	// Kraken serves only its newest 720 bars: 600 hours ending an hour ago, on the wall
	// clock as serve's is.
	{"SEAMLESS_KRAKEN_URL", "ohlcv:kraken:BTC/USD:1h", func(t *testing.T, bars *frame.Frame) string {
		srv := krakentest.New()
		t.Cleanup(srv.Close)
		rows := make([]krakentest.Row, bars.Len())
		for i, ts := range bars.TS {
			rows[i] = krakentest.Row{TS: ts, Bar: barAt(bars, i)}
		}
		srv.SetOHLC("XBTUSD", "XXBTZUSD", 60, rows)
		return srv.URL
	}, func() *frame.Frame {
		end := time.Now().Unix()/3600*3600 - 3600
		return sourcetest.Bars(end-600*3600, 3600, 600)
	}},
}

func barAt(f *frame.Frame, i int) [5]float64 {
	var b [5]float64
	for c := range b {
		b[c] = f.Cols[c].F64[i]
	}
	return b
}

func binanceRows(bars *frame.Frame) []binancetest.Row {
	rows := make([]binancetest.Row, bars.Len())
	for i, ts := range bars.TS {
		rows[i] = binancetest.Row{OpenMS: ts * 1000, Bar: barAt(bars, i)}
	}
	return rows
}

// TestVenuesThroughServe: `seamless serve`, each venue's SEAMLESS_{VENUE}_URL pointing
// at its fake, answers GET /v1/bars for the venue's node with exactly the bars the
// fake holds — several of the venue's pages, backfilled through the real source.
func TestVenuesThroughServe(t *testing.T) {
	runtimeEnv(t)
	held := make([]*frame.Frame, len(venueFakes))
	for i, v := range venueFakes {
		held[i] = historyBars()
		if v.bars != nil {
			held[i] = v.bars()
		}
		t.Setenv(v.env, v.start(t, held[i]))
	}
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Execute([]string{"--data-dir", t.TempDir(), "serve", "--addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	addrRE := regexp.MustCompile(`"msg":"seamless.http.serving","addr":"([^"]+)"`)
	var addr string
	for i := 0; addr == ""; i++ {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		if i > 1000 {
			t.Fatalf("no serving log line: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, v := range venueFakes {
		t.Run(v.env, func(t *testing.T) {
			bars := held[i]
			n := bars.Len()
			iv := bars.TS[1] - bars.TS[0]
			start := bars.TS[0]
			q := url.Values{"node_id": {v.node}, "interval": {fmt.Sprint(iv)}, "start": {fmt.Sprint(start)}, "end": {fmt.Sprint(start + int64(n)*iv)},
				"strategy": {"auto_backfill"}, "format": {"json"}}
			resp, err := http.Get("http://" + addr + "/v1/bars?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			var doc struct {
				Data map[string][]float64 `json:"data"`
			}
			if err != nil || resp.StatusCode != 200 || json.Unmarshal(body, &doc) != nil {
				t.Fatalf("GET /v1/bars %s: %d %v %.500s", v.node, resp.StatusCode, err, body)
			}
			if got := doc.Data["ts"]; len(got) != n || int64(got[0]) != start || int64(got[n-1]) != start+int64(n-1)*iv {
				t.Fatalf("%s: %d bars, want %d from %d", v.node, len(got), n, start)
			}
			for c, name := range []string{"open", "high", "low", "close", "volume"} {
				for i, x := range doc.Data[name] {
					if x != bars.Cols[c].F64[i] {
						t.Fatalf("%s: bar %d %s = %v, want %v", v.node, i, name, x, bars.Cols[c].F64[i])
					}
				}
			}
		})
	}
	http.DefaultClient.CloseIdleConnections()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
}
