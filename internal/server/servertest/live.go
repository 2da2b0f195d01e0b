package servertest

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

// LiveEnv is a running gateway whose Provider has the demo source and the demo live
// feed on a fake clock, for the streaming tests. The clock starts mid-bar, 30 s after
// Now.
type LiveEnv struct {
	Provider *seamless.Provider
	Server   *server.Server
	HTTP     *httptest.Server
	Clock    *clock.Fake
	Tier     *live.Tier
}

// StartLive starts a LiveEnv with the server configured by cfg and the provider's
// subscriptions by opts, and stops it when the test ends.
func StartLive(t testing.TB, cfg server.Config, opts seamless.SubscribeOptions) *LiveEnv {
	t.Helper()
	e := &LiveEnv{Clock: clock.NewFake(Now.Add(30 * time.Second))}
	src, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"demo": demolive.New(demolive.Options{Clock: e.Clock})}, Clock: e.Clock})
	if err != nil {
		t.Fatal(err)
	}
	e.Tier = tier
	st := memstore.New()
	e.Provider, err = seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}, Clock: e.Clock,
		Seed: 1, Live: tier, Subscriptions: opts})
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
			// Streams end first: httptest's Close waits for the SSE responses.
			e.Server.Close()
			e.HTTP.Close()
			tier.Close()
			e.Provider.Close()
			st.Close()
		})
	})
	return e
}

// Bar is the bar interval of Node in seconds.
const Bar = 60 * time.Second
