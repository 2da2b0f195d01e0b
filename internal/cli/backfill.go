package cli

import (
	"fmt"
	"os"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/seamless-data/seamless"
)

func newBackfillCmd(g *globals) *cobra.Command {
	var (
		series     seriesFlags
		start, end string
	)
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Fetch every missing closed bar of a range from upstream into the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := series.check(); err != nil {
				return g.fail(err, false)
			}
			st, err := parseTimeFlag("start", start)
			if err != nil {
				return g.fail(err, false)
			}
			en, err := parseTimeFlag("end", end)
			if err != nil {
				return g.fail(err, false)
			}
			rt, err := g.open()
			if err != nil {
				return g.fail(err, false)
			}
			defer rt.Close()
			var bar *progressbar.ProgressBar
			req := seamless.BackfillRequest{NodeID: series.node, Interval: series.interval, Start: st, End: en}
			if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				req.Progress = func(p seamless.BackfillProgress) {
					if bar == nil {
						bar = progressbar.NewOptions(p.ChunksTotal, progressbar.OptionSetWriter(f),
							progressbar.OptionSetDescription("backfill chunks"), progressbar.OptionShowCount(),
							progressbar.OptionSetPredictTime(true), progressbar.OptionClearOnFinish())
					}
					bar.Set(p.ChunksDone)
				}
			}
			sum, err := rt.provider.Backfill(cmd.Context(), req)
			if bar != nil {
				bar.Finish()
			}
			rate := 0.0
			if s := sum.Elapsed.Seconds(); s > 0 {
				rate = float64(sum.Bars) / s
			}
			fmt.Fprintf(g.stdout, "backfill %s %v: %d missing chunk(s), %d fetched, %d waited on another worker, %d failed; %d bars in %s (%.0f bars/s)\n",
				sum.Series, sum.Range, sum.Chunks, sum.Fetched, sum.Waited, len(sum.Failed), sum.Bars, sum.Elapsed.Round(1e6), rate)
			if err != nil {
				return g.fail(err, false)
			}
			return nil
		},
	}
	series.register(cmd)
	cmd.Flags().StringVar(&start, "start", "", "range start, inclusive: epoch seconds or RFC 3339 (required)")
	cmd.Flags().StringVar(&end, "end", "", "range end, exclusive: epoch seconds or RFC 3339 (required)")
	return cmd
}
