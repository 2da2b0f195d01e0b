package binancetest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/seamless-data/seamless/source/binance/binancetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, s *binancetest.Stream) (context.Context, *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	c, _, err := websocket.Dial(ctx, strings.TrimSuffix(s.URL(), "/ws")+"/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return ctx, c
}

func TestStreamSpeaksTheCombinedStreamProtocol(t *testing.T) {
	s := binancetest.NewStream(t)
	ctx, c := dial(t, s)
	roundTrip := func(req, want string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || string(got) != want {
			t.Fatalf("%s: got %s (%v), want %s", req, got, err, want)
		}
	}
	roundTrip(`{"method":"SUBSCRIBE","params":["btcusdt@kline_1m","ethusdt@kline_1m"],"id":1}`, `{"result":null,"id":1}`)
	roundTrip(`{"method":"UNSUBSCRIBE","params":["ethusdt@kline_1m"],"id":2}`, `{"result":null,"id":2}`)
	roundTrip(`{"method":"LIST_SUBSCRIPTIONS","id":3}`, `{"error":{"code":2,"msg":"Invalid request"},"id":null}`)

	payload := binancetest.Kline("BTCUSDT", "1m", 60_000, 119_999, [5]float64{1, 2, 0.5, 1.5, 10}, true)
	if n := s.Publish(t, "btcusdt@kline_1m", payload); n != 1 {
		t.Fatalf("published on %d connections", n)
	}
	if n := s.Publish(t, "ethusdt@kline_1m", payload); n != 0 {
		t.Fatalf("an unsubscribed stream published on %d connections", n)
	}
	if _, got, err := c.Read(ctx); err != nil || string(got) != binancetest.Event("btcusdt@kline_1m", payload) {
		t.Fatalf("event %s (%v)", got, err)
	}
	conn := s.Live()[0]
	want := []string{"SUBSCRIBE btcusdt@kline_1m,ethusdt@kline_1m", "UNSUBSCRIBE ethusdt@kline_1m"}
	if got := conn.Requests(); !slices.Equal(got, want) || !slices.Equal(conn.Subscribed(), []string{"btcusdt@kline_1m"}) {
		t.Fatalf("requests %q, subscribed %q", got, conn.Subscribed())
	}
	if !strings.Contains(payload, `"v":"10.00000000"`) || !strings.Contains(payload, `"V":"5.00000000"`) || !strings.Contains(payload, `"x":true`) {
		t.Fatalf("kline payload %s", payload)
	}
}

func TestStreamDropsFastClients(t *testing.T) {
	s := binancetest.NewStream(t)
	ctx, c := dial(t, s)
	for i := range binancetest.RateLimit + 1 {
		if c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"method":"SUBSCRIBE","params":["s%d"],"id":%d}`, i, i)) != nil {
			break
		}
	}
	for {
		if _, _, err := c.Read(ctx); err != nil {
			break
		}
	}
	if v := s.RateViolations(); v != 1 {
		t.Fatalf("%d violations, want the connection dropped", v)
	}
}
