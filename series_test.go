package seamless_test

import (
	"strings"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

func TestParseNodeID(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		kind, src, sym, tf string
		interval           int64
		ok                 bool
	}{
		{"ohlcv:binance:BTC/USDT:1m", "ohlcv", "binance", "BTC/USDT", "1m", 60, true},
		{"ohlcv:demo:ETH-USD:5m", "ohlcv", "demo", "ETH-USD", "5m", 300, true},
		{"trades:x:A:B:C:1h", "trades", "x", "A:B:C", "1h", 3600, true},
		{"ohlcv:demo:X:1d", "ohlcv", "demo", "X", "1d", 86400, true},
		{"ohlcv:demo:X:1w", "ohlcv", "demo", "X", "1w", 604800, true},
		{"ohlcv:demo:1m", "", "", "", "", 0, false},
		{"ohlcv::X:1m", "", "", "", "", 0, false},
		{"ohlcv:demo:X:0m", "", "", "", "", 0, false},
		{"ohlcv:demo:X:-1m", "", "", "", "", 0, false},
		{"ohlcv:demo:X:1y", "", "", "", "", 0, false},
		{"ohlcv:demo:X Y:1m", "", "", "", "", 0, false},
		{"ohlcv:demo:a.b_c-d/E:F:1m", "ohlcv", "demo", "a.b_c-d/E:F", "1m", 60, true},
		{"ohlcv:demo:" + strings.Repeat("X", 256-len("ohlcv:demo::1m")) + ":1m", "ohlcv", "demo", strings.Repeat("X", 256-len("ohlcv:demo::1m")), "1m", 60, true},
		{"ohlcv:demo:" + strings.Repeat("X", 257-len("ohlcv:demo::1m")) + ":1m", "", "", "", "", 0, false},
		{"ohlcv:demo:" + strings.Repeat("X", 30000) + ":1m", "", "", "", "", 0, false},
		{"ohlcv:demo:BTC%2FUSDT:1m", "", "", "", "", 0, false},
		{"ohlcv:demo:BTC<script>:1m", "", "", "", "", 0, false},
		{"ohlcv:demo:BTC\"x:1m", "", "", "", "", 0, false},
		{"ohlcv:demo:ÄPFEL:1m", "", "", "", "", 0, false},
		{"", "", "", "", "", 0, false},
	} {
		n, err := seamless.ParseNodeID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseNodeID(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && (n.Kind != tc.kind || n.Source != tc.src || n.Symbol != tc.sym || n.Timeframe != tc.tf || n.Interval != tc.interval || n.String() != tc.in) {
			t.Errorf("ParseNodeID(%q) = %+v", tc.in, n)
		}
	}
}

func FuzzParseNodeID(f *testing.F) {
	f.Add("ohlcv:binance:BTC/USDT:1m")
	f.Add("a:b:c:d:99999999999999999w")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := seamless.ParseNodeID(s)
		if err != nil {
			return
		}
		if n.String() != s || n.Interval <= 0 || strings.Contains(n.Kind, ":") || strings.Contains(n.Source, ":") {
			t.Fatalf("ParseNodeID(%q) = %+v", s, n)
		}
		if len(s) > seamless.MaxNodeIDBytes {
			t.Fatalf("ParseNodeID accepted a %d-byte id", len(s))
		}
		for _, c := range []byte(n.Symbol) {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:._-", rune(c)) {
				t.Fatalf("ParseNodeID(%q) accepted symbol byte %q", s, c)
			}
		}
	})
}

func TestChunkKeyEscapesNodeID(t *testing.T) {
	a := seamless.ChunkKey(seamless.Series{NodeID: "ohlcv:x:A:1m", Interval: 60}, grid.R(0, 54000))
	b := seamless.ChunkKey(seamless.Series{NodeID: "ohlcv:x:A:1m:60", Interval: 0}, grid.R(0, 54000))
	if a == b || strings.Count(a, ":") != 3 {
		t.Fatalf("chunk keys %q and %q", a, b)
	}
	s, r, err := seamless.ParseChunkKey(a)
	if err != nil || s != (seamless.Series{NodeID: "ohlcv:x:A:1m", Interval: 60}) || r != grid.R(0, 54000) {
		t.Fatalf("ParseChunkKey(%q) = %v %v %v", a, s, r, err)
	}
	for _, bad := range []string{"", "a:1:2", "a:x:0:1", "a:60:5:5", "%zz:60:0:1"} {
		if _, _, err := seamless.ParseChunkKey(bad); err == nil {
			t.Errorf("ParseChunkKey(%q) accepted", bad)
		}
	}
}
