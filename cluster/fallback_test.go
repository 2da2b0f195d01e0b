package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/testaddr"
)

// deadEtcd returns an etcd:// URL on which nothing listens.
func deadEtcd(t *testing.T) string { return "etcd://" + testaddr.Dead(t) }

// TestUnreachableCoordinator: a node whose etcd cannot be reached starts in fallback
// mode and backfills under its local guard, saying so — unless SEAMLESS_PROFILE=prod,
// which refuses to start.
func TestUnreachableCoordinator(t *testing.T) {
	t.Parallel()
	t.Run("fallback", func(t *testing.T) {
		n := serve(t, "fallback", map[string]string{
			"SEAMLESS_COORDINATOR_URL": deadEtcd(t),
			"SEAMLESS_DATA_DIR":        t.TempDir(),
			"SEAMLESS_LOG_LEVEL":       "info",
		})
		if len(n.awaitLogs("seamless.backfill.coordinator_unreachable")) == 0 {
			t.Error("no seamless.backfill.coordinator_unreachable log line at start")
		}
		r := grid.R(1_700_000_000/chunk*chunk, 1_700_000_000/chunk*chunk+chunk)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b := getBarsOf(ctx, n, "ohlcv:demo:BTC-USD:1m", r)
		if b.err != nil || b.res.Metadata.CoverageRatio != 1 || b.res.Frame.Len() != 900 {
			t.Fatalf("bars with the coordinator down: %d rows, ratio %v, %v", b.res.Frame.Len(), b.res.Metadata.CoverageRatio, b.err)
		}
		if len(n.awaitLogs("seamless.backfill.coordinator_fallback")) == 0 {
			t.Error("backfill fell back to the local guard without a seamless.backfill.coordinator_fallback log line")
		}
	})
	t.Run("prod refuses", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, seamlessBin, "serve", "--addr", "127.0.0.1:0")
		cmd.Env = append(os.Environ(), "SEAMLESS_PROFILE=prod", "SEAMLESS_COORDINATOR_URL="+deadEtcd(t), "SEAMLESS_DATA_DIR="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "profile prod") || strings.Contains(stderr.String(), "panic:") {
			t.Fatalf("serve with profile prod and etcd down: %v; want exit 1 naming the profile. stderr:\n%s", err, stderr.String())
		}
	})
}
