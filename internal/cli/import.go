package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/csvio"
)

func newImportCmd(g *globals) *cobra.Command {
	var series seriesFlags
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Store bars from a CSV file as authoritative data for [first ts, last ts + interval)",
		Long: `Import reads a CSV file with a header row (ts first or anywhere, plus the columns of
the node kind's schema) and stores it. ts may be epoch seconds, milliseconds,
microseconds or nanoseconds, or RFC 3339. Rows must be sorted, unique and on the
interval grid. The whole file is stored in one atomic write, or nothing is.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := series.check(); err != nil {
				return g.fail(err, false)
			}
			node, err := seamless.ParseNodeID(series.node)
			if err != nil {
				return g.fail(&seamless.RequestError{Field: "node", Message: err.Error()}, false)
			}
			schema, ok := node.Schema()
			if !ok {
				return g.fail(&seamless.RequestError{Field: "node", Message: fmt.Sprintf("unknown kind %q", node.Kind)}, false)
			}
			in, err := os.Open(args[0])
			if err != nil {
				return g.fail(err, false)
			}
			defer in.Close()
			f, err := csvio.Read(in, schema)
			if err != nil {
				return g.fail(fmt.Errorf("%s: %w", args[0], err), false)
			}
			r, err := csvio.CoveredRange(f, series.interval)
			if err != nil {
				return g.fail(fmt.Errorf("%s: %w", args[0], err), false)
			}
			rt, err := g.open()
			if err != nil {
				return g.fail(err, false)
			}
			defer rt.Close()
			if err := rt.provider.Import(cmd.Context(), series.node, series.interval, r, f); err != nil {
				return g.fail(err, false)
			}
			fmt.Fprintf(g.stdout, "imported %d bars into %s (%ds), covering [%s, %s)\n", f.Len(), series.node, series.interval, rfc(r.Start), rfc(r.End))
			return nil
		},
	}
	series.register(cmd)
	return cmd
}
