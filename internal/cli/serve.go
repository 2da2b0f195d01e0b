package cli

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/console"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/admission"
)

func newServeCmd(g *globals) *cobra.Command {
	c := g.config()
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API (bars, coverage, series, backfill jobs, health, metrics)",
		Long: `Serve the HTTP API of docs/api.md — bars, coverage, series, backfill jobs, the
coordinator's lease API, health and metrics — over the configured runtime (by default
the data dir's embedded store, the demo and binance sources and the in-process
coordinator) until SIGINT or SIGTERM, then shut down gracefully: in-flight requests
finish, background backfills stop, the store is closed.

Set SEAMLESS_API_TOKENS (comma-separated "token" or "name:token" entries) to require
"Authorization: Bearer <token>" on every /v1 route. Without tokens the server answers
only requests addressed to its --addr host, localhost, an IP address or
SEAMLESS_ALLOWED_HOSTS (DNS-rebinding protection).

The web console is served at / (--console=false turns it off).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tokens, err := server.ParseTokens(c.raw("api_tokens"))
			if err != nil {
				return g.fail(c.invalid("api_tokens", "%v", err), false)
			}
			if cfg.Stream, err = streamConfig(c); err != nil {
				return g.fail(err, false)
			}
			withConsole, err := c.boolean("console")
			if err != nil {
				return g.fail(err, false)
			}
			g.logLevel = slog.LevelInfo
			rt, err := g.open()
			if err != nil {
				return g.fail(err, false)
			}
			// Closed after Serve returns: the provider stops background backfills, then
			// the store closes.
			defer rt.Close()
			ln, err := net.Listen("tcp", c.text("addr"))
			if err != nil {
				return g.fail(err, false)
			}
			cfg.Provider, cfg.Tokens, cfg.Registry, cfg.Logger = rt.provider, tokens, rt.registry, rt.log
			cfg.Mounts = rt.mounts()
			if withConsole {
				cfg.Mounts = append(cfg.Mounts, consoleMounts()...)
			}
			cfg.Addr, cfg.AllowedHosts = c.text("addr"), splitList(c.raw("allowed_hosts"))
			srv, err := server.New(cfg)
			if err != nil {
				ln.Close()
				return g.fail(err, false)
			}
			if err := srv.Serve(cmd.Context(), ln); err != nil {
				return g.fail(err, false)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	c.bindFlag(fl, "addr")
	c.bindFlag(fl, "console")
	fl.IntVar(&cfg.MaxConcurrentFetches, "max-concurrent-fetches", 0, "bars requests fetching at once (0: 8 per CPU, at least 16); more wait in a queue")
	fl.IntVar(&cfg.FetchQueue, "fetch-queue", 0, "bars requests that may wait for a fetch or stream slot (0: 32 per slot); more get 429")
	fl.DurationVar(&cfg.FetchQueueWait, "fetch-queue-wait", admission.DefaultMaxWait, "longest a bars request waits for a slot before 429")
	fl.IntVar(&cfg.MaxConcurrentStreams, "max-concurrent-streams", 0, "bars answers being written to clients at once (0: 4 per fetch slot)")
	fl.DurationVar(&cfg.StreamStallTimeout, "stream-stall-timeout", 30*time.Second, "a client that reads nothing of its answer for this long is cut off")
	fl.IntVar(&cfg.MaxBackfillJobs, "max-backfill-jobs", 2, "background backfill jobs run at once; more wait in a queue")
	fl.DurationVar(&cfg.BarsTimeout, "bars-timeout", 15*time.Minute, "longest one bars request may take, fetch and streaming together")
	fl.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	return cmd
}

// consoleMounts serve the web console (internal/console) at / and /console/; its
// pages are public, the API calls they make carry the token.
func consoleMounts() []server.Mount {
	h := console.New()
	ms := make([]server.Mount, 0, len(console.Patterns))
	for _, p := range console.Patterns {
		ms = append(ms, server.Mount{Pattern: p, Handler: h, Public: true})
	}
	return ms
}

// splitList reads a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// fetchRemote answers a fetch through a Seamless server (fetch --server). The token
// is the api_token setting (SEAMLESS_API_TOKEN).
func (g *globals) fetchRemote(ctx context.Context, serverURL string, req seamless.Request) (seamless.Result, error) {
	c, err := client.New(serverURL, client.WithToken(g.config().raw("api_token")))
	if err != nil {
		return seamless.Result{}, &seamless.RequestError{Field: "server", Message: err.Error()}
	}
	return c.Fetch(ctx, req)
}
