package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

func newCoverageCmd(g *globals) *cobra.Command {
	var (
		series seriesFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "coverage",
		Short: "Show the ranges the store holds authoritative data for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			jsonOut := format == "json"
			if format != "table" && format != "json" {
				return g.fail(&seamless.RequestError{Field: "format", Message: fmt.Sprintf("unknown format %q (want table or json)", format)}, false)
			}
			if err := series.check(); err != nil {
				return g.fail(err, jsonOut)
			}
			rt, err := g.open()
			if err != nil {
				return g.fail(err, jsonOut)
			}
			defer rt.Close()
			cov, err := rt.provider.Coverage(cmd.Context(), series.node, series.interval)
			if err != nil {
				return g.fail(err, jsonOut)
			}
			return writeOutput(g, "", func(w io.Writer) error {
				if jsonOut {
					ranges := cov.Ranges()
					if ranges == nil {
						ranges = []grid.Range{}
					}
					return json.NewEncoder(w).Encode(map[string]any{"node_id": series.node, "interval": series.interval, "ranges": ranges})
				}
				if cov.Empty() {
					_, err := fmt.Fprintf(w, "%s (%ds): nothing covered\n", series.node, series.interval)
					return err
				}
				fmt.Fprintf(w, "%s (%ds): %d range(s)\n", series.node, series.interval, cov.Len())
				for _, r := range cov.Ranges() {
					fmt.Fprintf(w, "  [%s, %s)  %d bars\n", rfc(r.Start), rfc(r.End), r.Bars(series.interval))
				}
				return nil
			})
		},
	}
	series.register(cmd)
	cmd.Flags().StringVar(&format, "format", "table", "table | json")
	return cmd
}

func rfc(ts int64) string { return time.Unix(ts, 0).UTC().Format(time.RFC3339) }
