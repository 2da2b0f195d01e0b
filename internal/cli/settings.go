package cli

import (
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/live"
)

// The settings table is the one list of what configures a seamless process (SPEC §7).
// Everything else derives from it: the configuration file's known keys, which
// environment variables are read (and which accept the reference's QMTL_ alias), the
// root flags, `seamless config show`, and the README's configuration table (checked by
// TestREADMESettingsTable). Library packages never read the environment; the CLI
// resolves the table once (config.go) and hands typed Options to each part.
//
// A venue's settings (its REST and websocket URLs, a demo source's failure knobs) are
// declared with the venue in venues.go and appended here, so a new venue needs no
// second edit.

// Setting is one entry of the settings table.
type Setting struct {
	// Key names the setting and is its configuration-file key (data_dir). Its
	// environment variable is SEAMLESS_ and the key in upper case (see Env).
	Key string
	// QMTL accepts the reference's QMTL_SEAMLESS_… variable as an alias of Env.
	QMTL bool
	// Flag is the flag that overrides it, as typed ("--data-dir", "serve --addr");
	// empty when no flag does. Root flags ("--…") are registered from the table.
	Flag string
	// Default is the value in effect when nothing sets it ("" when none is).
	Default string
	// DefaultDoc describes the default where Default alone does not (it depends on
	// the command or the coordinator, or unset means off).
	DefaultDoc string
	// Doc says what the setting does (README, --help, config show --format json).
	Doc string
	// Secret says how config show and error messages hide the value.
	Secret redaction
	// NoFile settings are not read from the configuration file (SEAMLESS_CONFIG
	// names the file itself).
	NoFile bool
}

// Env is the setting's environment variable.
func (s Setting) Env() string { return "SEAMLESS_" + strings.ToUpper(s.Key) }

// redaction is how a setting's value is shown where others may read it.
type redaction int

const (
	public       redaction = iota
	secret                 // the whole value is hidden
	secretURL              // the password of a URL or DSN is hidden
	secretTokens           // API token entries keep their names ("name:token")
)

// coreSettings are the settings of the process itself, venues aside.
func coreSettings() []Setting {
	bf := seamless.DefaultBackfillConfig()
	return []Setting{
		{Key: "config", NoFile: true, Flag: "--config", DefaultDoc: "./seamless.yaml when present",
			Doc: "the configuration file; its keys are the settings' keys (file < env < flags)"},
		{Key: "data_dir", Flag: "--data-dir", Default: "./seamless-data",
			Doc: "embedded store, report archive, artifacts, schema registry"},
		{Key: "store", QMTL: true, Default: "pebble", Secret: secretURL,
			Doc: "`pebble` or a `postgres://` DSN (shared store for a cluster)"},
		{Key: "coordinator_url", QMTL: true, DefaultDoc: "in-process", Secret: secretURL,
			Doc: "`etcd://host:port[,…]` or an `http://` lease API; empty = in-process"},
		{Key: "profile", QMTL: true,
			Doc: "`prod` refuses to start without a reachable coordinator (etcd ping, or the lease API's `GET /healthz`, within 5 s); other profiles run the same check and only warn (`seamless.backfill.coordinator_unreachable`)"},
		{Key: "lease_ttl", QMTL: true, DefaultDoc: "120s with a distributed coordinator, 60s in-process",
			Doc: "backfill chunk lease TTL (how soon a crashed holder's chunks are taken over), at least 1s"},
		{Key: "backfill_window_bars", QMTL: true, Default: strconv.FormatInt(bf.WindowBars, 10),
			Doc: "bars per aligned backfill chunk (chunk width = window_bars × interval), 1–1,000,000; use one value across processes sharing a coordinator, or their chunks no longer line up"},
		{Key: "backfill_max_concurrent_requests", QMTL: true, Default: strconv.Itoa(bf.MaxConcurrentRequests),
			Doc: "upstream fetches in flight per process, 1–1024"},
		{Key: "backfill_max_attempts", QMTL: true, Default: strconv.Itoa(bf.MaxAttempts),
			Doc: "upstream attempts per chunk before it fails, 1–100"},
		{Key: "backfill_retry_backoff_ms", QMTL: true, Default: strconv.FormatInt(bf.RetryBackoff.Milliseconds(), 10),
			Doc: "delay before the first retry in ms, doubled for each further one, 1–600,000"},
		{Key: "backfill_jitter_ratio", QMTL: true, Default: strconv.FormatFloat(bf.JitterRatio, 'g', -1, 64),
			Doc: "random spread of each retry delay (± that fraction), above 0 and at most 1"},
		{Key: "backfill_settle_window", QMTL: true, Default: shortDuration(bf.SettleWindow),
			Doc: "bars that closed this recently and the source did not return are not recorded as a market gap yet (the source may not have published them), so a later request asks again; 1s–24h"},
		{Key: "backfill_attempt_timeout", QMTL: true, Default: shortDuration(bf.AttemptTimeout),
			Doc: "longest one upstream call may take before it is cancelled and retried (a hung upstream then cannot hold its chunk's lease), at least 1s"},
		{Key: "live_buffer_bars", Default: strconv.Itoa(live.DefaultBufferBars),
			Doc: "closed bars the live tier keeps per series"},
		{Key: "live_idle_timeout", Default: shortDuration(live.DefaultIdleTimeout),
			Doc: "a live subscription nobody asked about for this long is stopped"},
		{Key: "live_silent_after", DefaultDoc: "twice the interval, at least 30s",
			Doc: "a live feed that has delivered nothing this long counts as silent: requests stop waiting for it and take the newest bars from REST"},
		{Key: "stream_buffer_events", Default: strconv.Itoa(seamless.DefaultSubscribeBuffer),
			Doc: "events queued per subscription; a live subscriber that lets its queue fill is ended with `slow_consumer` and its cursor, 2–1,000,000"},
		{Key: "stream_heartbeat", Default: shortDuration(seamless.DefaultHeartbeat),
			Doc: "a subscription that sent nothing this long sends a `heartbeat` event, 1s–1h"},
		{Key: "stream_live_grace", Default: shortDuration(seamless.DefaultLiveGrace),
			Doc: "a closed bar the live feed has not delivered this long after its close is fetched through backfill (a `gap` event, then the bars), 100ms–1h"},
		{Key: "stream_max_connections", Default: strconv.Itoa(server.DefaultStreamMaxConnections),
			Doc: "`/v1/stream` connections (WebSocket and SSE) `seamless serve` keeps open at once; more get 429, 1–1,000,000"},
		{Key: "stream_max_subscriptions", Default: strconv.Itoa(server.DefaultStreamMaxSubscriptions),
			Doc: "subscriptions one WebSocket connection may hold; more get a `too_many_requests` error event, 1–10,000"},
		{Key: "node_aliases", QMTL: true,
			Doc: "node ids outside the standard grammar, as comma-separated `alias=node` entries (`btc-1m=ohlcv:binance:BTC/USDT:1m`): the alias names the series in storage and answers, the standard id is what upstream is asked for"},
		{Key: "cache_bytes", QMTL: true, Default: strconv.Itoa(seamless.DefaultCacheBytes),
			Doc: "cache tier size in bytes (covered, closed chunks); negative turns it off. Coherent across a cluster's nodes (PostgreSQL counts rewrites of covered history)"},
		{Key: "max_bars", Flag: "--max-bars", Default: strconv.Itoa(seamless.DefaultMaxBars),
			Doc: "most bars one request may ask for, at least 1"},
		{Key: "addr", Flag: "serve --addr", Default: server.DefaultAddr,
			Doc: "HTTP listen address of seamless serve"},
		{Key: "console", Flag: "serve --console", Default: "true",
			Doc: "`false` stops seamless serve from serving the web console at `/` (docs/api.md#console)"},
		{Key: "allowed_hosts", DefaultDoc: "the host of `addr`",
			Doc: "comma-separated host names a server without `api_tokens` also answers to (besides its `addr`, localhost and IP addresses); other `Host` headers get 421, against DNS rebinding"},
		{Key: "api_tokens", Secret: secretTokens, DefaultDoc: "off",
			Doc: "`token` or `name:token`, comma-separated: bearer auth on the server's `/v1` routes"},
		{Key: "server", Flag: "leases/schema --server", DefaultDoc: "leases: http://127.0.0.1:8080; schema: the embedded registry",
			Doc: "the Seamless server the leases and schema commands talk to"},
		{Key: "api_token", Secret: secret,
			Doc: "bearer token the CLI sends to a server (fetch --server, schema, health)"},
		{Key: "log_level", QMTL: true, DefaultDoc: "warn (info for serve and coordinator)",
			Doc: "`debug`, `info`, `warn` or `error`"},
		{Key: "log_format", QMTL: true, Default: "json",
			Doc: "`json` or `text`"},
		{Key: "metrics_addr", Flag: "--metrics-addr", DefaultDoc: "off",
			Doc: "serve `/metrics` here during batch commands and `seamless coordinator` (which also serves it on its `--addr`)"},
		{Key: "artifacts_s3_endpoint", QMTL: true, DefaultDoc: "off: artifacts under the data dir",
			Doc: "S3 endpoint (host[:port]) to keep artifacts in instead of the data dir"},
		{Key: "artifacts_s3_bucket", QMTL: true, Doc: "S3 bucket of the artifacts"},
		{Key: "artifacts_s3_access_key", QMTL: true, Secret: secret, Doc: "S3 access key (empty with the secret key: anonymous)"},
		{Key: "artifacts_s3_secret_key", QMTL: true, Secret: secret, Doc: "S3 secret key"},
		{Key: "artifacts_s3_prefix", QMTL: true, Doc: "key prefix of the artifacts in the bucket"},
		{Key: "artifacts_s3_region", QMTL: true, DefaultDoc: "us-east-1", Doc: "S3 region"},
		{Key: "artifacts_s3_tls", QMTL: true, Default: "true", Doc: "`false` talks to the S3 endpoint over plain http"},
	}
}

// shortDuration writes d as people do (5m, not 5m0s); time.ParseDuration reads it.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// settingsTable is the whole table: the core settings, then each venue's.
func settingsTable(vs []venue) []Setting {
	t := coreSettings()
	for _, v := range vs {
		t = append(t, v.settings...)
	}
	return t
}
