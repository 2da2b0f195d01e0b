package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
)

// newCoordinatorCmd is coordinator-only mode: the lease API over the configured
// coordinator (in-process, or etcd with SEAMLESS_COORDINATOR_URL), for thin workers
// that set SEAMLESS_COORDINATOR_URL=http://this-host:port. Prometheus metrics (among
// them seamless_backfill_stale_claims_total of its coordinator) are served on
// GET /metrics of the same address, and on --metrics-addr when that is set.
func newCoordinatorCmd(g *globals) *cobra.Command {
	addr := "127.0.0.1:8081"
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Serve only the backfill lease API (the reference's wire protocol) and /metrics until SIGINT/SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := g.config()
			log, err := newLogger(g.stderr, c, slog.LevelInfo)
			if err != nil {
				return g.fail(err, false)
			}
			opts, err := coordinatorOption(c)
			if err != nil {
				return g.fail(err, false)
			}
			rt := &runtime{log: log}
			if rt.metrics, rt.registry, err = newMetrics(); err != nil {
				return g.fail(err, false)
			}
			defer rt.Close()
			if addr := c.raw("metrics_addr"); addr != "" {
				if err := rt.serveMetrics(addr); err != nil {
					return g.fail(err, false)
				}
			}
			if rt.coord, err = rt.openCoordinator(cmd.Context(), opts); err != nil {
				return g.fail(err, false)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return g.fail(err, false)
			}
			mux := http.NewServeMux()
			mux.Handle("/", leaseapi.NewHandler(rt.coord))
			mux.Handle("GET /metrics", rt.metricsHandler())
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			log.Info("seamless.coordinator.serving", "addr", ln.Addr().String())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return g.fail(err, false)
			case <-cmd.Context().Done():
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", addr, "listen address")
	return cmd
}

// newLeasesCmd inspects and repairs leases through a lease API (seamless serve or
// seamless coordinator).
func newLeasesCmd(g *globals) *cobra.Command {
	var server string
	var dryRun bool
	var reason string
	client := func() *leaseapi.Client { return leaseapi.NewClient(server, nil) }
	root := &cobra.Command{Use: "leases", Short: "List, inspect, release or fail backfill leases on a coordinator"}
	root.PersistentFlags().StringVar(&server, "server", g.config().textOr("server", "http://127.0.0.1:8080"), "lease API base URL (env SEAMLESS_SERVER)")
	list := &cobra.Command{
		Use: "list", Short: "List held leases", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos, err := client().Inspect(cmd.Context())
			if err != nil {
				return g.fail(err, false)
			}
			if len(infos) == 0 {
				fmt.Fprintln(g.stdout, "no leases held")
			}
			for _, l := range infos {
				fmt.Fprintf(g.stdout, "%s  token %d  holder %s  until %s\n", l.Key, l.Token, l.Holder, time.UnixMilli(l.LeaseUntilMS).UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	inspect := &cobra.Command{
		Use: "inspect KEY", Short: "Show one lease as JSON", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			infos, err := client().Inspect(cmd.Context())
			if err != nil {
				return g.fail(err, false)
			}
			for _, l := range infos {
				if l.Key == args[0] {
					return json.NewEncoder(g.stdout).Encode(l)
				}
			}
			return g.fail(fmt.Errorf("lease %s is not held", args[0]), false)
		},
	}
	release := &cobra.Command{
		Use:   "release KEY[:TOKEN]",
		Short: "Free a stuck lease (its holder's later writes are fenced off)",
		Long: `Free a held lease now rather than at its TTL. Its holder's later renew, complete
and fail are refused, and its late store writes carry a smaller fencing token than the
next claimer's.

KEY:TOKEN (the token as "leases list" shows it) releases the lease only while it is
still held under that token: if the lease ended and was claimed again, it now belongs
to another holder under a newer token, and nothing is released (exit 1). KEY alone
releases whoever holds the key.

The token is checked against the coordinator's lease list (GET /v1/leases) just
before the release, since the lease API's release takes no token: a lease that ends
and is claimed again in that instant would still be freed, and fencing keeps that
holder's late writes out as above. For an atomic, token-checked end, use
"seamless leases fail KEY:TOKEN" (the chunk is then recorded as failed and retried).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := client()
			infos, err := c.Inspect(cmd.Context())
			if err != nil {
				return g.fail(err, false)
			}
			l, err := leaseToRelease(infos, args[0])
			if err != nil {
				return g.fail(err, false)
			}
			if dryRun {
				fmt.Fprintf(g.stdout, "would release %s token %d (holder %s)\n", l.Key, l.Token, l.Holder)
				return nil
			}
			if err := c.Release(cmd.Context(), l.Key); err != nil {
				return g.fail(err, false)
			}
			fmt.Fprintf(g.stdout, "released %s token %d (holder %s)\n", l.Key, l.Token, l.Holder)
			return nil
		},
	}
	fail := &cobra.Command{
		Use: "fail KEY:TOKEN", Short: "End a lease as failed, recording the reason", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			i := strings.LastIndexByte(args[0], ':')
			tok, err := strconv.ParseUint(args[0][i+1:], 10, 64)
			if i < 0 || err != nil {
				return g.fail(&seamless.RequestError{Field: "lease", Message: "want KEY:TOKEN"}, false)
			}
			if reason == "" {
				return g.fail(&seamless.RequestError{Field: "reason", Message: "required"}, false)
			}
			if dryRun {
				fmt.Fprintf(g.stdout, "would fail %s token %d: %s\n", args[0][:i], tok, reason)
				return nil
			}
			if err := client().Fail(cmd.Context(), seamless.Lease{Key: args[0][:i], Token: tok}, reason); err != nil {
				if errors.Is(err, seamless.ErrLeaseLost) {
					return g.fail(fmt.Errorf("lease %s token %d is not held (wrong token, or it ended): %w", args[0][:i], tok, err), false)
				}
				return g.fail(err, false)
			}
			fmt.Fprintf(g.stdout, "failed %s token %d\n", args[0][:i], tok)
			return nil
		},
	}
	for _, c := range []*cobra.Command{release, fail} {
		c.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be done, do nothing")
	}
	fail.Flags().StringVar(&reason, "reason", "", "why the chunk failed (required)")
	root.AddCommand(list, inspect, release, fail)
	return root
}

// leaseToRelease finds the held lease that release's argument names: KEY, or KEY:TOKEN
// (split at the last colon). Chunk keys end in ":digits" themselves, so the argument
// is read against the held leases: a held key equal to it is KEY, else the part before
// the last colon is KEY:TOKEN's key. An argument that reads both ways is refused as
// ambiguous, as is a KEY:TOKEN whose lease is held under another token (exit 1: it
// belongs to another holder now).
func leaseToRelease(infos []seamless.LeaseInfo, arg string) (seamless.LeaseInfo, error) {
	held := make(map[string]seamless.LeaseInfo, len(infos))
	for _, l := range infos {
		held[l.Key] = l
	}
	whole, isKey := held[arg]
	var (
		withToken seamless.LeaseInfo
		tok       uint64
		isPair    bool
	)
	if i := strings.LastIndexByte(arg, ':'); i > 0 {
		if t, err := strconv.ParseUint(arg[i+1:], 10, 64); err == nil {
			tok = t
			withToken, isPair = held[arg[:i]]
		}
	}
	switch {
	case isKey && isPair:
		return seamless.LeaseInfo{}, &seamless.RequestError{Field: "lease", Message: fmt.Sprintf(
			"%q is ambiguous: a held lease's key, and KEY:TOKEN of the held lease %s; nothing released", arg, withToken.Key)}
	case isKey:
		return whole, nil
	case isPair && withToken.Token != tok:
		return seamless.LeaseInfo{}, fmt.Errorf("lease %s is held under token %d (holder %s), not %d; nothing released: %w",
			withToken.Key, withToken.Token, withToken.Holder, tok, seamless.ErrLeaseLost)
	case isPair:
		return withToken, nil
	default:
		return seamless.LeaseInfo{}, fmt.Errorf("lease %s is not held (give KEY or KEY:TOKEN as leases list shows them)", arg)
	}
}
