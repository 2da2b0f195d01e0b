package cli

import (
	"errors"
	"strings"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/source/binance"
	"github.com/seamless-data/seamless/source/bybit"
	"github.com/seamless-data/seamless/source/coinbase"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/source/kraken"
	"github.com/seamless-data/seamless/source/okx"
)

// venue is one upstream the process serves: the REST source (and live feed, if it
// has one) behind the source part of node ids, and the settings they read. Adding a
// venue is adding an entry to venues: its settings join the settings table (file
// keys, variables, config show, the README) and its source and feed join the runtime.
type venue struct {
	// name is the source part of node ids (SPEC §11).
	name string
	// settings are the venue's own entries of the settings table.
	settings []Setting
	// source builds the REST fetcher from the configuration.
	source func(c *config, rt *runtime) (seamless.Fetcher, error)
	// live builds the live feed; nil when the venue has none.
	live func(c *config, rt *runtime) (seamless.LiveFeed, error)
}

// venues are the sources this binary serves.
var venues = []venue{
	{
		name: "demo",
		settings: []Setting{
			{Key: "demo_latency", Default: "0s", Doc: "the demo source sleeps this long before each answer (failure drills)"},
			{Key: "demo_error_rate", Default: "0", Doc: "probability from 0 to 1 that a demo fetch fails with a transient error"},
		},
		source: func(c *config, _ *runtime) (seamless.Fetcher, error) {
			var o demo.Options
			var err error
			if o.Latency, err = c.durationIn("demo_latency", 0, 0, "want a non-negative duration such as 200ms"); err != nil {
				return nil, err
			}
			if o.ErrorRate, err = c.ratio("demo_error_rate", 0, 1, false, "want a number from 0 to 1"); err != nil {
				return nil, err
			}
			return demo.New(o)
		},
		live: func(*config, *runtime) (seamless.LiveFeed, error) { return demolive.New(demolive.Options{}), nil },
	},
	{
		name: "binance",
		settings: []Setting{
			restURL("binance", binance.DefaultBaseURL, "Binance REST base URL (mirrors, tests)"),
			wsURL("binance", binancews.DefaultBaseURL, "Binance kline websocket base URL, ending in /ws or /stream"),
		},
		source: func(c *config, rt *runtime) (seamless.Fetcher, error) {
			src, err := binance.New(binance.Options{BaseURL: c.raw("binance_url")})
			if err != nil {
				return nil, c.invalid("binance_url", "%v", cause(err))
			}
			if err := rt.metrics.RateLimited("binance", func() uint64 { return src.Stats().RateLimited }); err != nil {
				return nil, err
			}
			return src, nil
		},
		live: func(c *config, rt *runtime) (seamless.LiveFeed, error) {
			ws, err := binancews.New(binancews.Options{
				BaseURL: c.raw("binance_ws_url"), OnReconnect: rt.metrics.LiveReconnect, Logger: rt.log,
			})
			if err != nil {
				return nil, c.invalid("binance_ws_url", "%v", cause(err))
			}
			return ws, nil
		},
	},
	restVenue("binance-futures", binance.DefaultFuturesBaseURL, "Binance USDⓈ-M futures REST base URL (mirrors, tests)",
		func(u string) (fetcher, error) { return binance.NewFutures(binance.Options{BaseURL: u}) }),
	restVenue("coinbase", coinbase.DefaultBaseURL, "Coinbase Exchange REST base URL (mirrors, tests)",
		func(u string) (fetcher, error) { return coinbase.New(coinbase.Options{BaseURL: u}) }),
	restVenue("okx", okx.DefaultBaseURL, "OKX REST base URL (mirrors, tests)",
		func(u string) (fetcher, error) { return okx.New(okx.Options{BaseURL: u}) }),
	restVenue("bybit", bybit.DefaultBaseURL, "Bybit REST base URL (mirrors, tests)",
		func(u string) (fetcher, error) { return bybit.New(bybit.Options{BaseURL: u}) }),
	restVenue("kraken", kraken.DefaultBaseURL, "Kraken REST base URL (mirrors, tests)",
		func(u string) (fetcher, error) { return kraken.New(kraken.Options{BaseURL: u}) }),
}

// fetcher is a venue's REST source, which counts its rate-limit answers.
type fetcher interface {
	seamless.Fetcher
	RateLimited() uint64
}

// restVenue is a venue served by REST backfill alone, its base URL the setting
// SEAMLESS_{VENUE}_URL; its rate-limit answers are counted in the metrics.
func restVenue(name, def, doc string, build func(url string) (fetcher, error)) venue {
	key := venueKey(name) + "_url"
	return venue{
		name:     name,
		settings: []Setting{restURL(name, def, doc)},
		source: func(c *config, rt *runtime) (seamless.Fetcher, error) {
			src, err := build(c.raw(key))
			if err != nil {
				return nil, c.invalid(key, "%v", cause(err))
			}
			if err := rt.metrics.RateLimited(name, src.RateLimited); err != nil {
				return nil, err
			}
			return src, nil
		},
	}
}

// restURL is a venue's REST base URL setting, SEAMLESS_{VENUE}_URL (SPEC §11).
func restURL(venue, def, doc string) Setting {
	return Setting{Key: venueKey(venue) + "_url", Default: def, Doc: doc}
}

// wsURL is a venue's websocket base URL setting, SEAMLESS_{VENUE}_WS_URL (SPEC §11).
func wsURL(venue, def, doc string) Setting {
	return Setting{Key: venueKey(venue) + "_ws_url", Default: def, Doc: doc}
}

// venueKey is a venue's name as a key prefix: binance-futures → binance_futures.
func venueKey(name string) string { return strings.ReplaceAll(name, "-", "_") }

// cause drops a library's "package: option %q:" context from a constructor's error,
// which the setting error states itself.
func cause(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}
