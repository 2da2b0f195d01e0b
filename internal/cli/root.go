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
	"strings"
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
	// dataDir is the data_dir setting, set once the command line is parsed.
	dataDir string
	// cfg is the resolved settings table (config.go); nil until config is called
	// or Execute resolves it.
	cfg *config
	// venues are the sources and feeds the runtime serves (nil: the package's venues).
	venues []venue
	// configErr is what loading the configuration file failed with; the root
	// command reports it once the command line is parsed (see Execute).
	configErr error
	stdout    io.Writer
	stderr    io.Writer
}

// config is the process's resolved configuration: as Execute loaded it, or (for
// globals built without Execute, as tests do) the environment's alone.
func (g *globals) config() *config {
	if g.cfg == nil {
		g.cfg = newConfig(settingsTable(g.venueList()), "", nil, os.LookupEnv)
	}
	return g.cfg
}

func (g *globals) venueList() []venue {
	if g.venues == nil {
		return venues
	}
	return g.venues
}

// Execute runs the CLI with args and returns the process exit code.
func Execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr, logLevel: slog.LevelWarn}
	// The configuration is resolved before the commands are built, since their flag
	// defaults show it. A bad file's error waits for the command line to be parsed
	// (root's PersistentPreRunE) so that it is reported through g.fail like any other
	// error: with the command's --format json also as the {"error":…} document on
	// stdout, and exit 2 either way.
	g.cfg, g.configErr = loadConfig(settingsTable(venues), args, os.LookupEnv)
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
	// The root flags are the settings whose flag is a root one ("--data-dir"). Their
	// values are parsed where they are used, like the file's and the environment's: a
	// bad SEAMLESS_MAX_BARS is refused when the runtime opens, unless --max-bars
	// overrides it.
	c := g.config()
	for _, s := range c.table {
		if strings.HasPrefix(s.Flag, "--") {
			c.bindFlag(root.PersistentFlags(), s.Key)
		}
	}
	// Configuration file errors are reported here, after flag parsing, so that the
	// command's --format is known. (Subcommands define no PersistentPreRun of their
	// own, which would replace this one; TestConfigErrorsReachEveryCommand checks.)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if g.configErr != nil {
			return g.fail(g.configErr, wantsJSON(cmd))
		}
		g.dataDir = c.text("data_dir")
		return nil
	}
	// Flag parsing mistakes are bad requests (exit 2) like any other bad input.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &seamless.RequestError{Message: err.Error()}
	})
	root.AddCommand(newFetchCmd(g), newCoverageCmd(g), newBackfillCmd(g), newImportCmd(g), newServeCmd(g), newPresetsCmd(g), newCoordinatorCmd(g), newLeasesCmd(g), newHealthCmd(g), newReportsCmd(g), newSchemaCmd(g), newConfigCmd(g), newExportCmd(g), newTailCmd(g))
	return root
}

// open assembles the runtime the settings configure (see runtime.go).
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
