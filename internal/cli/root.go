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
	// given reports whether a root flag was set on the command line (nil when the
	// globals were built without one, as some tests do).
	given func(flag string) bool
	// configErr is what loading the configuration file failed with; the root
	// command reports it once the command line is parsed (see Execute).
	configErr error
	stdout    io.Writer
	stderr    io.Writer
}

// Execute runs the CLI with args and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr, logLevel: slog.LevelWarn}
	// The configuration file fills in the environment before the commands are built,
	// since their flag defaults read it. Its errors wait for the command line to be
	// parsed (root's PersistentPreRunE) so that they are reported through g.fail like
	// any other error: with the command's --format json also as the {"error":…}
	// document on stdout, and exit 2 either way.
	_, g.configErr = loadConfig(args)
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
	// A bad SEAMLESS_MAX_BARS is refused when the runtime opens, unless --max-bars
	// overrides it (openRuntime).
	if n, err := maxBarsFromEnv(); err == nil && n > 0 {
		maxBars = n
	}
	root.PersistentFlags().String("config", "", "configuration file (env SEAMLESS_CONFIG; default ./seamless.yaml when present); file < env < flags")
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", dataDir, "embedded store directory (env SEAMLESS_DATA_DIR)")
	root.PersistentFlags().StringVar(&g.metricsAddr, "metrics-addr", os.Getenv("SEAMLESS_METRICS_ADDR"), "serve Prometheus /metrics on this address while the command runs (env SEAMLESS_METRICS_ADDR)")
	root.PersistentFlags().Int64Var(&g.maxBars, "max-bars", maxBars, "largest number of bars one request may ask for (env SEAMLESS_MAX_BARS)")
	g.given = root.PersistentFlags().Changed
	// Configuration file errors are reported here, after flag parsing, so that the
	// command's --format is known. (Subcommands define no PersistentPreRun of their
	// own, which would replace this one; TestConfigErrorsReachEveryCommand checks.)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.configErr != nil {
			return g.fail(g.configErr, wantsJSON(cmd))
		}
		return nil
	}
	// Flag parsing mistakes are bad requests (exit 2) like any other bad input.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &seamless.RequestError{Message: err.Error()}
	})
	root.AddCommand(newFetchCmd(g), newCoverageCmd(g), newBackfillCmd(g), newImportCmd(g), newServeCmd(g), newPresetsCmd(g), newCoordinatorCmd(g), newLeasesCmd(g), newHealthCmd(g), newReportsCmd(g), newSchemaCmd(g), newTailCmd(g))
	return root
}

// open assembles the runtime configured by flags and environment (see runtime.go).
func (g *globals) open() (*runtime, error) { return g.openRuntime(context.Background()) }

// reportedError wraps an error already printed to the user.
type reportedError struct{ err error }

func (e *reportedError) Error() string { return e.err.Error() }
func (e *reportedError) Unwrap() error { return e.err }

// wantsJSON reports whether cmd was asked for JSON output (--format json).
func wantsJSON(cmd *cobra.Command) bool {
	f := cmd.Flags().Lookup("format")
	return f != nil && f.Value.String() == "json"
}

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
