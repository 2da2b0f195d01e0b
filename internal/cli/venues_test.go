package cli

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/source/demo"
)

// testRuntime is the part of a runtime the venues' constructors use.
func testRuntime(t *testing.T) *runtime {
	t.Helper()
	m, reg, err := newMetrics()
	if err != nil {
		t.Fatal(err)
	}
	return &runtime{log: slog.New(slog.DiscardHandler), metrics: m, registry: reg}
}

func venueNamed(t *testing.T, name string) venue {
	t.Helper()
	for _, v := range venues {
		if v.name == name {
			return v
		}
	}
	t.Fatalf("no venue %q", name)
	return venue{}
}

// settingErr checks that err is a *SettingError on env, and a bad request on that
// field, and returns its message.
func settingErr(t *testing.T, err error, env string) string {
	t.Helper()
	var se *SettingError
	var re *seamless.RequestError
	if !errors.As(err, &se) || se.Env != env || !errors.As(err, &re) || re.Field != env {
		t.Fatalf("%v; want a *SettingError that is a bad request on %s", err, env)
	}
	return err.Error()
}

// TestVenueRegistry: a venue added to the venue table brings its settings into the
// settings table (file key, variable, config show) and its source and live feed into
// the runtime, with no other edit.
func TestVenueRegistry(t *testing.T) {
	runtimeEnv(t)
	unsetForTest(t, "SEAMLESS_TEST_VENUE_URL")
	var fetches atomic.Int64
	var sawURL atomic.Value
	fake := venue{
		name:     "test-venue",
		settings: []Setting{restURL("test-venue", "http://default.invalid", "the test venue's REST base URL")},
		source: func(c *config, _ *runtime) (seamless.Fetcher, error) {
			sawURL.Store(c.text("test_venue_url"))
			src, err := demo.New(demo.Options{})
			if err != nil {
				return nil, err
			}
			return seamless.FetcherFunc(func(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
				fetches.Add(1)
				return src.Fetch(ctx, s, r)
			}), nil
		},
		live: func(*config, *runtime) (seamless.LiveFeed, error) { return demolive.New(demolive.Options{}), nil },
	}
	vs := append(slices.Clone(venues), fake)
	table := settingsTable(vs)
	i := slices.IndexFunc(table, func(s Setting) bool { return s.Key == "test_venue_url" })
	if i < 0 || table[i].Env() != "SEAMLESS_TEST_VENUE_URL" {
		t.Fatalf("the venue's setting is not in the table as SEAMLESS_TEST_VENUE_URL: %+v", table)
	}

	cfg := filepath.Join(t.TempDir(), "seamless.yaml")
	os.WriteFile(cfg, []byte("test_venue_url: http://file.invalid\n"), 0o644)
	c, err := loadConfig(table, []string{"--config", cfg}, os.LookupEnv)
	if err != nil {
		t.Fatalf("the venue's file key: %v", err)
	}
	if v := c.value("test_venue_url"); v.source != fromFile || v.raw != "http://file.invalid" {
		t.Fatalf("from the file: %+v", v)
	}
	if _, err := loadConfig(settingsTable(venues), []string{"--config", cfg}, os.LookupEnv); err == nil {
		t.Fatal("without the venue, its file key was accepted")
	}
	t.Setenv("SEAMLESS_TEST_VENUE_URL", "http://env.invalid")
	if c, err = loadConfig(table, []string{"--config", cfg}, os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(c.show(), func(s shownSetting) bool {
		return s.Env == "SEAMLESS_TEST_VENUE_URL" && s.Value == "http://env.invalid" && s.Source == "env"
	}) {
		t.Fatalf("config show lacks the venue's setting from the environment: %+v", c.show())
	}

	g := &globals{dataDir: t.TempDir(), venues: vs, cfg: c, stdout: io.Discard, stderr: io.Discard}
	rt, err := g.openRuntime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if got, _ := sawURL.Load().(string); got != "http://env.invalid" {
		t.Errorf("the venue's source was built with URL %q, want the environment's", got)
	}
	res, err := rt.provider.Fetch(context.Background(), seamless.Request{NodeID: "ohlcv:test-venue:BTC-USD:1m", Interval: 60,
		Start: 1704067200, End: 1704070800, Strategy: seamless.AutoBackfill})
	if err != nil || res.Frame.Len() != 60 || fetches.Load() == 0 {
		t.Fatalf("fetch through the venue: %v, %d fetches", err, fetches.Load())
	}
	// Its live feed is the live tier's: the reconnect counter is exported for it.
	families, err := rt.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := false
	for _, f := range families {
		if f.GetName() != "seamless_live_reconnects_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				exported = exported || (l.GetName() == "source" && l.GetValue() == "test-venue")
			}
		}
	}
	if !exported {
		t.Error("no seamless_live_reconnects_total{source=\"test-venue\"}: the venue's live feed is not the tier's")
	}
}

// TestVenueSettings: the built-in venues' settings reach their libraries' Options,
// and bad values are refused naming the variable.
func TestVenueSettings(t *testing.T) {
	runtimeEnv(t)
	rt := testRuntime(t)
	demoV, binanceV := venueNamed(t, "demo"), venueNamed(t, "binance")

	t.Setenv("SEAMLESS_DEMO_LATENCY", "150ms")
	t.Setenv("SEAMLESS_DEMO_ERROR_RATE", "1")
	src, err := demoV.source(envConfig(), rt)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = src.Fetch(context.Background(), seamless.Series{NodeID: node, Interval: 60}, grid.R(1704067200, 1704067260))
	if !errors.Is(err, demo.ErrInjected) || time.Since(began) < 150*time.Millisecond {
		t.Fatalf("demo with latency 150ms and error rate 1: %v after %v", err, time.Since(began))
	}
	for env, bad := range map[string][]string{
		"SEAMLESS_DEMO_LATENCY":    {"soon", "-1s"},
		"SEAMLESS_DEMO_ERROR_RATE": {"2", "-0.1", "NaN", "often"},
	} {
		for _, v := range bad {
			unsetForTest(t, "SEAMLESS_DEMO_LATENCY", "SEAMLESS_DEMO_ERROR_RATE")
			t.Setenv(env, v)
			_, err := demoV.source(envConfig(), rt)
			if msg := settingErr(t, err, env); !strings.HasPrefix(msg, env+"=\""+v+"\" (env): want ") {
				t.Errorf("%s=%q: message %q", env, v, msg)
			}
		}
	}
	unsetForTest(t, "SEAMLESS_DEMO_LATENCY", "SEAMLESS_DEMO_ERROR_RATE")

	// SEAMLESS_BINANCE_URL is where the REST source sends its requests.
	var paths atomic.Value
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path)
		io.WriteString(w, "[]")
	}))
	defer up.Close()
	t.Setenv("SEAMLESS_BINANCE_URL", up.URL)
	bsrc, err := binanceV.source(envConfig(), rt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bsrc.Fetch(context.Background(), seamless.Series{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 60},
		grid.R(1704067200, 1704067260)); err != nil || paths.Load() != "/api/v3/klines" {
		t.Fatalf("binance fetch against SEAMLESS_BINANCE_URL: %v, path %v", err, paths.Load())
	}
	t.Setenv("SEAMLESS_BINANCE_URL", "api.binance.com")
	if msg := settingErr(t, nil2(binanceV.source(envConfig(), rt)), "SEAMLESS_BINANCE_URL"); !strings.Contains(msg, "want an http or https URL") {
		t.Errorf("message %q", msg)
	}
	unsetForTest(t, "SEAMLESS_BINANCE_URL")

	for _, good := range []string{"ws://127.0.0.1:9/ws", "wss://127.0.0.1:9/stream"} {
		t.Setenv("SEAMLESS_BINANCE_WS_URL", good)
		if _, err := binanceV.live(envConfig(), rt); err != nil {
			t.Errorf("SEAMLESS_BINANCE_WS_URL=%q: %v", good, err)
		}
	}
	for _, bad := range []string{"ftp://x/ws", "ws://127.0.0.1:9", "ws://127.0.0.1:9/ws/btcusdt@kline_1m"} {
		t.Setenv("SEAMLESS_BINANCE_WS_URL", bad)
		if msg := settingErr(t, nil2(binanceV.live(envConfig(), rt)), "SEAMLESS_BINANCE_WS_URL"); strings.Contains(msg, "binancews:") {
			t.Errorf("message %q repeats the library's context", msg)
		}
	}
}

// nil2 drops a constructor's first result, for checking its error.
func nil2[T any](_ T, err error) error { return err }

// TestLiveSettings: the live tier's settings (SEAMLESS_LIVE_*) parse into live.Options.
func TestLiveSettings(t *testing.T) {
	runtimeEnv(t)
	t.Setenv("SEAMLESS_LIVE_BUFFER_BARS", "100")
	t.Setenv("SEAMLESS_LIVE_IDLE_TIMEOUT", "90s")
	t.Setenv("SEAMLESS_LIVE_SILENT_AFTER", "3m")
	o, err := liveOptions(envConfig())
	if err != nil || o.BufferBars != 100 || o.IdleTimeout != 90*time.Second || o.SilentAfter != 3*time.Minute {
		t.Fatalf("%+v %v", o, err)
	}
	for env, bad := range map[string][]string{
		"SEAMLESS_LIVE_BUFFER_BARS":  {"0", "-3", "x"},
		"SEAMLESS_LIVE_IDLE_TIMEOUT": {"0s", "-1m", "soon"},
		"SEAMLESS_LIVE_SILENT_AFTER": {"0s", "soon"},
	} {
		for _, v := range bad {
			runtimeEnv(t)
			t.Setenv(env, v)
			settingErr(t, nil2(liveOptions(envConfig())), env)
		}
	}
	runtimeEnv(t)
	t.Setenv("SEAMLESS_LIVE_BUFFER_BARS", "x")
	if msg := settingErr(t, nil2(liveOptions(envConfig())), "SEAMLESS_LIVE_BUFFER_BARS"); msg != `SEAMLESS_LIVE_BUFFER_BARS="x" (env): want a positive number of bars` {
		t.Errorf("message %q", msg)
	}
}
