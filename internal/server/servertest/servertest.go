// Package servertest starts a real gateway over a real Provider (memstore, the demo
// source, a fake clock) for the tests of the server, the client and the CLI.
package servertest

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

// Now is the fake clock's time: every range before it holds closed bars.
var Now = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)

// Node is a demo node with a 60 s interval.
const Node = "ohlcv:demo:BTC-USD:1m"

// Env is a running test gateway. Sources: "demo" (the demo generator), "slow" (demo
// bars once Gate lets a call through) and "down" (always fails, permanently).
type Env struct {
	Provider *seamless.Provider
	Server   *server.Server
	HTTP     *httptest.Server
	Clock    *clock.Fake
	// Gate holds calls to the slow source: each receive lets one call finish.
	// Entered receives a value when a slow call starts.
	Gate    chan struct{}
	Entered chan struct{}
}

// Start starts a gateway configured by cfg (its Provider is filled in) and stops it
// when the test ends.
func Start(t testing.TB, cfg server.Config) *Env {
	t.Helper()
	e := &Env{Clock: clock.NewFake(Now), Gate: make(chan struct{}), Entered: make(chan struct{}, 16)}
	src, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	slow := seamless.FetcherFunc(func(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
		e.Entered <- struct{}{}
		select {
		case <-e.Gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return demo.Bars(s.NodeID, s.Interval, r), nil
	})
	down := seamless.FetcherFunc(func(context.Context, seamless.Series, grid.Range) (*frame.Frame, error) {
		return nil, seamless.Permanent(errors.New("exchange is down"))
	})
	st := memstore.New()
	e.Provider, err = seamless.New(seamless.Config{
		Store: st, Sources: seamless.Sources{"demo": src, "slow": slow, "down": down},
		Clock: e.Clock, Seed: 1, MaxBars: 2_000_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Provider = e.Provider
	if cfg.Clock == nil {
		cfg.Clock = e.Clock
	}
	if e.Server, err = server.New(cfg); err != nil {
		t.Fatal(err)
	}
	e.HTTP = httptest.NewServer(e.Server.Handler())
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			e.HTTP.Close()
			e.Server.Close()
			e.Provider.Close()
			st.Close()
		})
	})
	return e
}

// Unix is Now minus d, in epoch seconds.
func Unix(d time.Duration) int64 { return Now.Add(-d).Unix() }
