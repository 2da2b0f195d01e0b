// Package cli is the seamless command line: thin cobra commands over the public
// Provider API and the embedded runtime (Pebble store, in-memory coordinator, demo
// source).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// Exit codes.
const (
	exitOK         = 0
	exitError      = 1
	exitBadRequest = 2
)

// globals are the flags every command shares.
type globals struct {
	// logLevel is the command's default log level: warn for batch commands, info for
	// serve (SEAMLESS_LOG_LEVEL overrides it).
	logLevel slog.Level
	dataDir  string
	maxBars  int64
	// metricsAddr, if set, serves /metrics there while a batch command runs.
	metricsAddr string
	stdout      io.Writer
	stderr      io.Writer
}

// Execute runs the CLI with args and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr, logLevel: slog.LevelWarn}
	if _, err := loadConfig(args); err != nil {
		fmt.Fprintln(stderr, "seamless:", err)
		return exitBadRequest
	}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var reported *reportedError
	if !errors.As(err, &reported) {
		fmt.Fprintln(stderr, "seamless:", err)
	}
	if code(err) == seamless.CodeBadRequest {
		return exitBadRequest
	}
	return exitError
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "seamless",
		Short:         "Gap-free, quality-checked market-data bars from storage, backfill and live feeds",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	dataDir := os.Getenv("SEAMLESS_DATA_DIR")
	if dataDir == "" {
		dataDir = "./seamless-data"
	}
	maxBars := int64(seamless.DefaultMaxBars)
	if v := os.Getenv("SEAMLESS_MAX_BARS"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			maxBars = n
		}
	}
	root.PersistentFlags().String("config", "", "configuration file (env SEAMLESS_CONFIG; default ./seamless.yaml when present); file < env < flags")
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", dataDir, "embedded store directory (env SEAMLESS_DATA_DIR)")
	root.PersistentFlags().StringVar(&g.metricsAddr, "metrics-addr", os.Getenv("SEAMLESS_METRICS_ADDR"), "serve Prometheus /metrics on this address while the command runs (env SEAMLESS_METRICS_ADDR)")
	root.PersistentFlags().Int64Var(&g.maxBars, "max-bars", maxBars, "largest number of bars one request may ask for (env SEAMLESS_MAX_BARS)")
	// Flag parsing mistakes are bad requests (exit 2) like any other bad input.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &seamless.RequestError{Message: err.Error()}
	})
	root.AddCommand(newFetchCmd(g), newCoverageCmd(g), newBackfillCmd(g), newImportCmd(g), newServeCmd(g), newPresetsCmd(g), newCoordinatorCmd(g), newLeasesCmd(g), newHealthCmd(g), newReportsCmd(g), newSchemaCmd(g))
	return root
}

// open assembles the runtime configured by flags and environment (see runtime.go).
func (g *globals) open() (*runtime, error) { return g.openRuntime(context.Background()) }

// reportedError wraps an error already printed to the user.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// fail prints err on stderr and, for JSON output, as {"error":{…}} on stdout.
func (g *globals) fail(err error, jsonOut bool) error {
	fmt.Fprintln(g.stderr, "seamless:", err)
	if jsonOut {
		body := wire.EncodeError(err)
		body.Code = code(err)
		json.NewEncoder(g.stdout).Encode(wire.ErrorDocument{Error: body})
	}
	return &reportedError{err}
}

func parseTimeFlag(name, v string) (int64, error) {
	if v == "" {
		return 0, &seamless.RequestError{Field: name, Message: "required (epoch seconds or RFC 3339)"}
	}
	t, err := grid.ParseTime(v)
	if err != nil {
		return 0, &seamless.RequestError{Field: name, Message: err.Error()}
	}
	return t, nil
}
