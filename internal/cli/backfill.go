package cli

import (
	"context"
	"errors"
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
		failed     bool
	)
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Fetch every missing closed bar of a range from upstream into the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if failed {
				return retryFailed(cmd.Context(), g)
			}
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
	cmd.Flags().BoolVar(&failed, "failed", false, "retry every chunk the coordinator recorded as failed (instead of a range)")
	cmd.Flags().StringVar(&start, "start", "", "range start, inclusive: epoch seconds or RFC 3339 (required)")
	cmd.Flags().StringVar(&end, "end", "", "range end, exclusive: epoch seconds or RFC 3339 (required)")
	return cmd
}

// retryFailed backfills again every chunk the coordinator recorded as failed, clearing
// each record once its chunk is covered, and fails if any chunk still fails.
func retryFailed(ctx context.Context, g *globals) error {
	rt, err := g.open()
	if err != nil {
		return g.fail(err, false)
	}
	defer rt.Close()
	fl, ok := rt.coord.(seamless.FailureLister)
	if !ok {
		return g.fail(errors.New("the configured coordinator does not record failures"), false)
	}
	fails, err := fl.FailedChunks(ctx)
	if err != nil {
		return g.fail(err, false)
	}
	var still int
	for _, f := range fails {
		s, r, err := seamless.ParseChunkKey(f.Key)
		if err != nil {
			fmt.Fprintf(g.stderr, "skip %s: %v\n", f.Key, err)
			still++
			continue
		}
		sum, err := rt.provider.Backfill(ctx, seamless.BackfillRequest{NodeID: s.NodeID, Interval: s.Interval, Start: r.Start, End: r.End})
		if err != nil {
			fmt.Fprintf(g.stderr, "chunk %s still fails: %v (was: %s)\n", f.Key, err, f.Reason)
			still++
			continue
		}
		if err := fl.ClearFailure(ctx, f.Key); err != nil {
			return g.fail(err, false)
		}
		fmt.Fprintf(g.stdout, "retried %s: %d bars\n", f.Key, sum.Bars)
	}
	fmt.Fprintf(g.stdout, "%d failed chunk(s) retried, %d still failing\n", len(fails), still)
	if still > 0 {
		return g.fail(fmt.Errorf("%d chunk(s) still failing", still), false)
	}
	return nil
}
