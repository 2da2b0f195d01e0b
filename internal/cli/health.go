package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
)

// healthSeries are the series `seamless health --prometheus` expects Prometheus to
// hold: what the dashboards and alerts of deploy/ need. Histograms are matched by
// their _bucket and _count series — Prometheus has no series under a histogram's
// bare name (the reference's health check queried it and always failed).
var healthSeries = []struct{ name, match, hint string }{
	{"series seamless_sla_deadline_seconds_bucket", `seamless_sla_deadline_seconds_bucket`, "no SLA histogram: is Prometheus scraping /metrics of seamless serve?"},
	{"series seamless_sla_deadline_seconds_count", `seamless_sla_deadline_seconds_count`, "no SLA histogram: is Prometheus scraping /metrics of seamless serve?"},
	{"series seamless_requests_total", `seamless_requests_total`, "no request counter: is Prometheus scraping /metrics of seamless serve?"},
	{"series backfill_jobs_in_progress", `backfill_jobs_in_progress`, "no backfill gauge: is Prometheus scraping /metrics of seamless serve?"},
	{"series seamless_backfill_stale_claims_total", `seamless_backfill_stale_claims_total`, "no stale-claim counter: is Prometheus scraping /metrics of seamless serve?"},
	{"series seamless_sla_total_p99_seconds", `seamless_sla_total_p99_seconds`, "no recording rule output: load deploy/prometheus/rules.yml into Prometheus (rule_files)"},
}

// healthCheck is one line of the report.
type healthCheck struct {
	name string
	err  error
	skip string
}

// healthClient runs the checks' HTTP requests.
type healthClient struct {
	http  *http.Client
	token string
}

// get fetches base+path and decodes a JSON answer into out (when not nil). A non-2xx
// status is an error carrying the server's error message when it sent one.
func (c *healthClient) get(ctx context.Context, base, path string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		var doc struct {
			Error json.RawMessage `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &doc) == nil && len(doc.Error) > 0 {
			var e struct {
				Message string `json:"message"`
			}
			var s string
			switch {
			case json.Unmarshal(doc.Error, &e) == nil && e.Message != "":
				msg = e.Message
			case json.Unmarshal(doc.Error, &s) == nil: // Prometheus: {"error": "…"}
				msg = s
			}
		}
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// serverChecks probes a Seamless server: liveness, readiness and, when the server
// exposes the lease API, the coordinator.
func (c *healthClient) serverChecks(ctx context.Context, server string) []healthCheck {
	var out []healthCheck
	_, err := c.get(ctx, server, "/healthz", nil)
	out = append(out, healthCheck{name: "server /healthz", err: err})
	_, err = c.get(ctx, server, "/readyz", nil)
	out = append(out, healthCheck{name: "server /readyz", err: err})
	out = append(out, c.coordinatorCheck(ctx, "coordinator", server, true))
	return out
}

// coordinatorCheck lists the leases of a coordinator's lease API (GET /v1/leases).
// On a Seamless server that does not serve it (404: the in-process coordinator), the
// check is skipped when optional.
func (c *healthClient) coordinatorCheck(ctx context.Context, name, base string, optional bool) healthCheck {
	var doc struct {
		Leases []struct {
			Key          string `json:"key"`
			LeaseUntilMS int64  `json:"lease_until_ms"`
		} `json:"leases"`
	}
	status, err := c.get(ctx, base, "/v1/leases", &doc)
	switch {
	case status == http.StatusNotFound && optional:
		return healthCheck{name: name, skip: "the server does not serve /v1/leases (in-process coordinator)"}
	case status == http.StatusUnauthorized:
		return healthCheck{name: name, err: fmt.Errorf("%w (set SEAMLESS_API_TOKEN)", err)}
	case err != nil:
		return healthCheck{name: name, err: err}
	}
	now := time.Now().UnixMilli()
	expired := 0
	for _, l := range doc.Leases {
		if l.LeaseUntilMS < now {
			expired++
		}
	}
	detail := fmt.Sprintf("%d leases held", len(doc.Leases))
	if expired > 0 {
		detail += fmt.Sprintf(", %d expired: stale claims awaiting re-processing", expired)
	}
	return healthCheck{name: fmt.Sprintf("%s (%s)", name, detail)}
}

// prometheusChecks asks Prometheus's HTTP API whether the key series exist.
func (c *healthClient) prometheusChecks(ctx context.Context, prom string) []healthCheck {
	var build struct {
		Status string `json:"status"`
	}
	if _, err := c.get(ctx, prom, "/api/v1/status/buildinfo", &build); err != nil {
		return []healthCheck{{name: "prometheus", err: err}}
	}
	out := []healthCheck{{name: "prometheus"}}
	start := time.Now().Add(-time.Hour).Unix()
	for _, s := range healthSeries {
		q := url.Values{"match[]": {s.match}, "start": {fmt.Sprint(start)}}
		var doc struct {
			Status string              `json:"status"`
			Data   []map[string]string `json:"data"`
		}
		_, err := c.get(ctx, prom, "/api/v1/series?"+q.Encode(), &doc)
		switch {
		case err != nil:
		case doc.Status != "success":
			err = fmt.Errorf("status %q", doc.Status)
		case len(doc.Data) == 0:
			err = errors.New(s.hint)
		}
		out = append(out, healthCheck{name: s.name, err: err})
	}
	return out
}

func newHealthCmd(g *globals) *cobra.Command {
	var (
		server, prom, coordinator string
		timeout                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a Seamless server, its coordinator and its Prometheus series",
		Long: `Check a running deployment and print one line per check, [OK] name or
[FAIL] name: message ([SKIP] for checks that do not apply). The exit code is 1 when
any check failed.

  --server       GET /healthz and /readyz, and the coordinator's leases through
                 GET /v1/leases when the server exposes the lease API
  --coordinator  a remote coordinator's lease API (env SEAMLESS_COORDINATOR_URL)
  --prometheus   the series the dashboards and alerts of deploy/ need, through
                 /api/v1/series (histograms by their _bucket and _count series)

The bearer token for /v1 routes comes from SEAMLESS_API_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" && prom == "" && coordinator == "" {
				return g.fail(&seamless.RequestError{Message: "health: give --server, --coordinator or --prometheus"}, false)
			}
			for flag, u := range map[string]string{"server": server, "coordinator": coordinator, "prometheus": prom} {
				if u != "" && !isHTTPURL(u) {
					return g.fail(&seamless.RequestError{Field: flag, Message: fmt.Sprintf("%q: want an http:// or https:// URL", u)}, false)
				}
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			c := &healthClient{http: &http.Client{Transport: tr, Timeout: timeout}, token: g.config().raw("api_token")}
			defer tr.CloseIdleConnections()
			ctx := cmd.Context()
			var checks []healthCheck
			if server != "" {
				checks = append(checks, c.serverChecks(ctx, server)...)
			}
			if coordinator != "" {
				checks = append(checks, c.coordinatorCheck(ctx, "coordinator "+coordinator, coordinator, false))
			}
			if prom != "" {
				checks = append(checks, c.prometheusChecks(ctx, prom)...)
			}
			failed := 0
			for _, ch := range checks {
				switch {
				case ch.err != nil:
					failed++
					fmt.Fprintf(g.stdout, "[FAIL] %s: %v\n", ch.name, ch.err)
				case ch.skip != "":
					fmt.Fprintf(g.stdout, "[SKIP] %s: %s\n", ch.name, ch.skip)
				default:
					fmt.Fprintf(g.stdout, "[OK] %s\n", ch.name)
				}
			}
			if failed > 0 {
				return g.fail(fmt.Errorf("%d of %d health checks failed", failed, len(checks)), false)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&server, "server", "", "Seamless server base URL, e.g. http://127.0.0.1:8080")
	// The coordinator URL of the deployment, when it is a lease API (an etcd://
	// coordinator is seen through a server's /v1/leases instead).
	coordEnv := g.config().raw("coordinator_url")
	if !isHTTPURL(coordEnv) {
		coordEnv = ""
	}
	fl.StringVar(&coordinator, "coordinator", coordEnv, "remote coordinator lease API base URL (env SEAMLESS_COORDINATOR_URL when http(s))")
	fl.StringVar(&prom, "prometheus", "", "Prometheus base URL, e.g. http://127.0.0.1:9090")
	fl.DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each HTTP request")
	return cmd
}

func isHTTPURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}
