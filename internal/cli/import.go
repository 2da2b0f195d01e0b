package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/csvio"
	"github.com/seamless-data/seamless/internal/reportlog"
)

func newImportCmd(g *globals) *cobra.Command {
	var (
		series     seriesFlags
		partialOK  bool
		policyName string
		reportJSON bool
	)
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Store bars from a CSV file as authoritative data for [first ts, last ts + interval)",
		Long: `Import reads a CSV file with a header row (ts plus the columns of the node kind's
schema) and runs it through the conformance pipeline: ts in epoch seconds,
milliseconds, microseconds or nanoseconds, or RFC 3339 with any offset, are normalised
to epoch seconds; rows are sorted, duplicates keep the last, off-grid rows are dropped;
values are checked. The report is printed. Blocking findings (by default the ones that
mean corrupt data: non-finite values, inconsistent OHLC, negative volume, unreadable
timestamps, missing or uncastable columns) refuse the import and nothing is stored,
unless --partial-ok is given. The normalised rows are stored in one atomic write that
covers [first ts, last ts + interval).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := series.check(); err != nil {
				return g.fail(err, false)
			}
			node, err := seamless.ParseNodeID(series.node)
			if err != nil {
				return g.fail(&seamless.RequestError{Field: "node", Message: err.Error()}, false)
			}
			policy, err := conformance.PolicyByName(policyName)
			if err != nil {
				return g.fail(&seamless.RequestError{Field: "conformance", Message: err.Error()}, false)
			}
			opts, ok := conformance.OptionsFor(node.Kind, series.interval)
			if !ok {
				return g.fail(&seamless.RequestError{Field: "node", Message: fmt.Sprintf("unknown kind %q", node.Kind)}, false)
			}
			in, err := os.Open(args[0])
			if err != nil {
				return g.fail(err, false)
			}
			defer in.Close()
			raw, tsText, err := csvio.ReadText(in, opts.Schema)
			if err != nil {
				return g.fail(fmt.Errorf("%s: %w", args[0], err), false)
			}
			if series.interval <= 0 {
				return g.fail(&seamless.RequestError{Field: "interval", Message: "must be positive"}, false)
			}
			f, rep, err := conformance.Run(conformance.Input{Frame: raw, TSText: tsText}, opts)
			if err != nil {
				return g.fail(&seamless.RequestError{Field: "file", Message: err.Error()}, false)
			}
			printReport(g, rep, reportJSON)
			rt, err := g.open()
			if err != nil {
				return g.fail(err, false)
			}
			defer rt.Close()
			// Every import's report is archived, refused or not.
			if !rep.Clean() && f.Len() > 0 {
				rng := grid.R(f.TS[0], f.TS[f.Len()-1]+series.interval)
				if _, err := rt.reports.Append(cmd.Context(), reportlog.Record{NodeID: series.node, Interval: series.interval, Range: rng, Report: rep}); err != nil {
					rt.log.Warn("seamless.conformance.archive_failed", "node_id", series.node, "err", err)
				}
			}
			if blocking := policy.Blocking(rep); policy.Refuses(blocking, partialOK) {
				hint := "use --partial-ok to store the normalised rows"
				if !policy.AllowPartial {
					hint = "the " + policy.Name + " preset refuses them even with --partial-ok"
				}
				return g.fail(fmt.Errorf("%s: import refused, nothing stored (%s): %w",
					args[0], hint, &conformance.PipelineError{Report: rep, Blocking: blocking}), false)
			}
			r, err := csvio.CoveredRange(f, series.interval)
			if err != nil {
				return g.fail(fmt.Errorf("%s: %w", args[0], err), false)
			}
			importOpts := []seamless.ImportOption{seamless.ImportPolicy(policy), seamless.ImportReported()}
			if partialOK {
				importOpts = append(importOpts, seamless.ImportPartialOK())
			}
			if err := rt.provider.Import(cmd.Context(), series.node, series.interval, r, f, importOpts...); err != nil {
				return g.fail(err, false)
			}
			fmt.Fprintf(g.stdout, "imported %d bars into %s (%ds), covering [%s, %s)\n", f.Len(), series.node, series.interval, rfc(r.Start), rfc(r.End))
			return nil
		},
	}
	series.register(cmd)
	cmd.Flags().BoolVar(&partialOK, "partial-ok", false, "store the normalised rows even when findings would block")
	cmd.Flags().StringVar(&policyName, "conformance", "default", "conformance preset deciding which findings block: default, strict-blocking, permissive-dev")
	cmd.Flags().BoolVar(&reportJSON, "report-json", false, "print the conformance report as JSON")
	return cmd
}

// printReport writes a conformance report to stderr for people, or as JSON to stdout.
func printReport(g *globals, rep conformance.Report, asJSON bool) {
	if asJSON {
		json.NewEncoder(g.stdout).Encode(map[string]any{"conformance": rep})
		return
	}
	if rep.Clean() {
		fmt.Fprintln(g.stderr, "conformance: clean")
		return
	}
	flags := make([]string, 0, len(rep.FlagsCounts))
	for f := range rep.FlagsCounts {
		flags = append(flags, f)
	}
	sort.Strings(flags)
	for _, f := range flags {
		fmt.Fprintf(g.stderr, "conformance: %-24s %8d  e.g. ts %v\n", f, rep.FlagsCounts[f], rep.Samples[f])
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(g.stderr, "conformance warning:", w)
	}
}

// code classifies CLI errors: seamless codes, with CSV parse errors as bad requests.
func code(err error) string {
	var pe *csvio.ParseError
	if errors.As(err, &pe) {
		return seamless.CodeBadRequest
	}
	return seamless.ErrorCode(err)
}
