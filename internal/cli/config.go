package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/seamless-data/seamless"
)

// The configuration file (SPEC §7): seamless.yaml in the working directory, or the file
// named by --config or SEAMLESS_CONFIG. Its keys are the SEAMLESS_* settings without the
// prefix, in lower case (data_dir, store, coordinator_url, …). Precedence is
// file < environment < flags: a key fills in its variable only when the environment
// does not set it, and flags still override both.

// configKeys are the settings a configuration file may hold, by file key.
var configKeys = map[string]string{
	"data_dir": "SEAMLESS_DATA_DIR", "store": "SEAMLESS_STORE", "coordinator_url": "SEAMLESS_COORDINATOR_URL",
	"profile": "SEAMLESS_PROFILE", "max_bars": "SEAMLESS_MAX_BARS", "addr": "SEAMLESS_ADDR",
	"api_tokens": "SEAMLESS_API_TOKENS", "binance_url": "SEAMLESS_BINANCE_URL", "binance_ws_url": "SEAMLESS_BINANCE_WS_URL",
	"cache_bytes": "SEAMLESS_CACHE_BYTES", "lease_ttl": "SEAMLESS_LEASE_TTL", "log_level": "SEAMLESS_LOG_LEVEL",
	"log_format": "SEAMLESS_LOG_FORMAT", "metrics_addr": "SEAMLESS_METRICS_ADDR", "demo_latency": "SEAMLESS_DEMO_LATENCY",
	"demo_error_rate": "SEAMLESS_DEMO_ERROR_RATE", "live_buffer_bars": "SEAMLESS_LIVE_BUFFER_BARS",
	"live_idle_timeout": "SEAMLESS_LIVE_IDLE_TIMEOUT", "live_silent_after": "SEAMLESS_LIVE_SILENT_AFTER", "artifacts_s3_endpoint": "SEAMLESS_ARTIFACTS_S3_ENDPOINT",
	"artifacts_s3_bucket": "SEAMLESS_ARTIFACTS_S3_BUCKET", "artifacts_s3_access_key": "SEAMLESS_ARTIFACTS_S3_ACCESS_KEY",
	"artifacts_s3_secret_key": "SEAMLESS_ARTIFACTS_S3_SECRET_KEY", "artifacts_s3_prefix": "SEAMLESS_ARTIFACTS_S3_PREFIX",
	"artifacts_s3_region": "SEAMLESS_ARTIFACTS_S3_REGION", "artifacts_s3_tls": "SEAMLESS_ARTIFACTS_S3_TLS",
	// BackfillConfig (SPEC §2); see backfillFromEnv.
	"backfill_window_bars": "SEAMLESS_BACKFILL_WINDOW_BARS", "backfill_max_concurrent_requests": "SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS",
	"backfill_max_attempts": "SEAMLESS_BACKFILL_MAX_ATTEMPTS", "backfill_retry_backoff_ms": "SEAMLESS_BACKFILL_RETRY_BACKOFF_MS",
	"backfill_jitter_ratio": "SEAMLESS_BACKFILL_JITTER_RATIO", "backfill_attempt_timeout": "SEAMLESS_BACKFILL_ATTEMPT_TIMEOUT",
	"backfill_settle_window": "SEAMLESS_BACKFILL_SETTLE_WINDOW",
	"node_aliases":           "SEAMLESS_NODE_ALIASES",
}

// qmtlAliased are the variables read through env, which also accepts the reference's
// QMTL_-prefixed name (QMTL_SEAMLESS_COORDINATOR_URL, …). For these, either name set in
// the environment keeps the file's value out. (The other variables are read under
// their SEAMLESS_ name only, so a QMTL_ variable must not hide the file's value.)
var qmtlAliased = map[string]bool{
	"SEAMLESS_STORE": true, "SEAMLESS_COORDINATOR_URL": true, "SEAMLESS_PROFILE": true,
	"SEAMLESS_CACHE_BYTES": true, "SEAMLESS_LEASE_TTL": true, "SEAMLESS_LOG_LEVEL": true, "SEAMLESS_LOG_FORMAT": true,
	"SEAMLESS_ARTIFACTS_S3_ENDPOINT": true, "SEAMLESS_ARTIFACTS_S3_BUCKET": true, "SEAMLESS_ARTIFACTS_S3_ACCESS_KEY": true,
	"SEAMLESS_ARTIFACTS_S3_SECRET_KEY": true, "SEAMLESS_ARTIFACTS_S3_PREFIX": true, "SEAMLESS_ARTIFACTS_S3_REGION": true,
	"SEAMLESS_ARTIFACTS_S3_TLS": true, "SEAMLESS_BACKFILL_WINDOW_BARS": true, "SEAMLESS_BACKFILL_MAX_CONCURRENT_REQUESTS": true,
	"SEAMLESS_BACKFILL_MAX_ATTEMPTS": true, "SEAMLESS_BACKFILL_RETRY_BACKOFF_MS": true, "SEAMLESS_BACKFILL_JITTER_RATIO": true,
	"SEAMLESS_BACKFILL_ATTEMPT_TIMEOUT": true, "SEAMLESS_BACKFILL_SETTLE_WINDOW": true, "SEAMLESS_NODE_ALIASES": true,
}

// envSet reports whether the environment sets the variable name, under its SEAMLESS_
// name or, where env reads it, its QMTL_ alias.
func envSet(name string) bool {
	if _, set := os.LookupEnv(name); set {
		return true
	}
	if qmtlAliased[name] {
		_, set := os.LookupEnv("QMTL_" + name)
		return set
	}
	return false
}

// configPath finds the configuration file: --config / --config=FILE in args, else
// SEAMLESS_CONFIG, else ./seamless.yaml when it exists. explicit reports whether the
// file was asked for (a missing one is then an error).
func configPath(args []string) (path string, explicit bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v, true
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	if v := os.Getenv("SEAMLESS_CONFIG"); v != "" {
		return v, true
	}
	if _, err := os.Stat("seamless.yaml"); err == nil {
		return "seamless.yaml", false
	}
	return "", false
}

// loadConfig applies the configuration file to the environment (only variables the
// environment leaves unset) and returns the keys it applied. A file it cannot use (asked
// for but missing, not YAML, an unknown key or a value that is not a scalar or a list)
// is a *seamless.RequestError on field "config", and nothing of it is applied.
func loadConfig(args []string) ([]string, error) {
	path, explicit := configPath(args)
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, &seamless.RequestError{Field: "config", Message: err.Error()}
	}
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return nil, &seamless.RequestError{Field: "config", Message: fmt.Sprintf("%s: %v", path, err)}
	}
	// Every key is checked before any is applied: a bad file changes nothing.
	values := make(map[string]string, len(doc))
	for key, v := range doc {
		if _, ok := configKeys[key]; !ok {
			known := make([]string, 0, len(configKeys))
			for k := range configKeys {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, &seamless.RequestError{Field: "config", Message: fmt.Sprintf("%s: unknown key %q (known: %s)", path, key, strings.Join(known, ", "))}
		}
		var s string
		switch t := v.(type) {
		case string:
			s = t
		case int:
			s = strconv.Itoa(t)
		case float64:
			s = strconv.FormatFloat(t, 'g', -1, 64)
		case bool:
			s = strconv.FormatBool(t)
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			s = strings.Join(parts, ",")
		default:
			return nil, &seamless.RequestError{Field: "config", Message: fmt.Sprintf("%s: key %q: want a scalar or a list", path, key)}
		}
		values[key] = s
	}
	var applied []string
	for key, s := range values {
		name := configKeys[key]
		if envSet(name) {
			continue // the environment (or the reference's QMTL_ alias) wins over the file
		}
		os.Setenv(name, s)
		applied = append(applied, key)
	}
	sort.Strings(applied)
	return applied, nil
}
