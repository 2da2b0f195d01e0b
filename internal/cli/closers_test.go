package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/store/pebblestore"
)

func TestCloserStack(t *testing.T) {
	var closed []string
	var s closerStack
	errB, errD := errors.New("b broke"), errors.New("d broke")
	for _, name := range []string{"a", "b", "c", "d"} {
		s.push(name, func() error {
			closed = append(closed, name)
			switch name {
			case "b":
				return errB
			case "d":
				return errD
			}
			return nil
		})
	}
	if got := s.names(); !slices.Equal(got, []string{"d", "c", "b", "a"}) {
		t.Fatalf("names %v, want the reverse of the pushes", got)
	}
	err := s.close()
	if !slices.Equal(closed, []string{"d", "c", "b", "a"}) {
		t.Fatalf("closed %v: want every part, newest first, past the failures", closed)
	}
	if !errors.Is(err, errB) || !errors.Is(err, errD) {
		t.Fatalf("close: %v; want both failures joined", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "close b: b broke") || !strings.Contains(msg, "close d: d broke") {
		t.Fatalf("close: %q; want each failure to name its part", msg)
	}
	if err := s.close(); err != nil || len(closed) != 4 {
		t.Fatalf("second close: %v, closed %v; want nothing closed again", err, closed)
	}
}

// runtimeEnv clears the settings that would point a runtime at shared services.
func runtimeEnv(t *testing.T) {
	t.Helper()
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_STORE", "QMTL_SEAMLESS_STORE", "SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_COORDINATOR_URL",
		"SEAMLESS_PROFILE", "QMTL_SEAMLESS_PROFILE", "SEAMLESS_METRICS_ADDR", "SEAMLESS_DEMO_ERROR_RATE", "SEAMLESS_DEMO_LATENCY",
		"SEAMLESS_MAX_BARS", "SEAMLESS_NODE_ALIASES", "QMTL_SEAMLESS_NODE_ALIASES", "SEAMLESS_BINANCE_URL", "SEAMLESS_BINANCE_WS_URL", "SEAMLESS_BINANCE_FUTURES_URL", "SEAMLESS_COINBASE_URL",
		"SEAMLESS_OKX_URL", "SEAMLESS_BYBIT_URL", "SEAMLESS_KRAKEN_URL",
		"SEAMLESS_LIVE_BUFFER_BARS", "SEAMLESS_LIVE_IDLE_TIMEOUT", "SEAMLESS_LIVE_SILENT_AFTER", "SEAMLESS_ARTIFACTS_S3_ENDPOINT",
		"QMTL_SEAMLESS_ARTIFACTS_S3_ENDPOINT", "SEAMLESS_LOG_LEVEL", "QMTL_SEAMLESS_LOG_LEVEL", "SEAMLESS_LOG_FORMAT", "QMTL_SEAMLESS_LOG_FORMAT",
		"SEAMLESS_CACHE_BYTES", "QMTL_SEAMLESS_CACHE_BYTES")
	unsetBackfillVars(t)
}

// TestRuntimeCloseOrder: the runtime closes its parts in the reverse of their opening
// order — the provider before the tiers it drives, the live tier and the schema
// registry before the stores under them, the store before the tracer and the metrics
// server, which see the shutdown through — however openRuntime's lines are arranged.
func TestRuntimeCloseOrder(t *testing.T) {
	runtimeEnv(t)
	t.Setenv("SEAMLESS_METRICS_ADDR", "127.0.0.1:0")
	g := &globals{dataDir: t.TempDir(), stdout: io.Discard, stderr: io.Discard}
	rt, err := g.openRuntime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"provider", "live tier", "schema registry", "schema registry store", "store", "tracer provider", "metrics server"}
	if got := rt.closers.names(); !slices.Equal(got, want) {
		t.Errorf("close order %v, want %v", got, want)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRuntimeFailedOpenClosesWhatItOpened: an assembly that fails part-way closes
// the parts it had opened, so the embedded store's lock is released.
func TestRuntimeFailedOpenClosesWhatItOpened(t *testing.T) {
	runtimeEnv(t)
	dir := t.TempDir()
	// The report archive opens after the store; a file where its directory goes
	// makes it fail.
	if err := os.WriteFile(filepath.Join(dir, "reports"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g := &globals{dataDir: dir, stdout: io.Discard, stderr: io.Discard}
	rt, err := g.openRuntime(context.Background())
	if err == nil {
		rt.Close()
		t.Fatal("runtime opened with its report archive directory taken by a file")
	}
	if !strings.Contains(err.Error(), "report archive") {
		t.Fatalf("open: %v; want the report archive's failure", err)
	}
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("the failed assembly left the store open: %v", err)
	}
	st.Close()
}
