package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/artifact"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/export"
	"github.com/seamless-data/seamless/internal/server/wire"
)

func newExportCmd(g *globals) *cobra.Command {
	var (
		node                 string
		interval             int64
		start, end           string
		output, strategy     string
		serverURL            string
		partialOK, overwrite bool
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a range of bars as a Hive-partitioned Parquet dataset (node=…/date=…/part-0.parquet)",
		Long: `Write the bars of [start, end) as a Hive-partitioned Parquet dataset under --output:

  DIR/node=<node id, percent-encoded>/date=YYYY-MM-DD/part-0.parquet

one zstd file per UTC day that has bars, with the SPEC column types (ts int64 epoch
seconds, open/high/low/close/volume float64) and, in each file's key-value metadata,
the day's fetch metadata (seamless.metadata), its dataset fingerprint
(seamless.dataset_fingerprint) and its covered ranges (seamless.coverage).

Each day is fetched like seamless fetch does (--strategy, default seamless, backfills
what is missing). DIR must be absent or empty; --overwrite replaces the files of the
exported days and leaves the rest of DIR alone (so several nodes can share a dataset).`,
		Example: `  seamless export --node ohlcv:demo:BTC-USD:1m --start 2024-01-01T00:00:00Z --end 2024-02-01T00:00:00Z --output bars/
  duckdb -c "SELECT node, date, count(*) FROM read_parquet('bars/**/*.parquet', hive_partitioning=true) GROUP BY ALL"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := func() (export.Options, error) {
				if node == "" {
					return export.Options{}, &seamless.RequestError{Field: "node", Message: "required"}
				}
				s, err := seriesOf(node, interval)
				if err != nil {
					return export.Options{}, err
				}
				st, err := parseTimeFlag("start", start)
				if err != nil {
					return export.Options{}, err
				}
				en, err := parseTimeFlag("end", end)
				if err != nil {
					return export.Options{}, err
				}
				strat, err := seamless.ParseStrategy(strategy)
				if err != nil {
					return export.Options{}, err
				}
				return export.Options{
					Request: seamless.Request{NodeID: s.NodeID, Interval: s.Interval, Start: st, End: en, Strategy: strat, PartialOK: partialOK},
					Dir:     output, Overwrite: overwrite,
				}, nil
			}()
			if err != nil {
				return g.fail(err, false)
			}
			var src export.Source
			if serverURL != "" {
				c, err := client.New(serverURL, client.WithToken(os.Getenv("SEAMLESS_API_TOKEN")))
				if err != nil {
					return g.fail(&seamless.RequestError{Field: "server", Message: err.Error()}, false)
				}
				src = c
			} else {
				rt, err := g.open()
				if err != nil {
					return g.fail(err, false)
				}
				defer rt.Close()
				src = rt.provider
			}
			sum, err := export.Run(cmd.Context(), src, opts)
			if err != nil {
				return g.fail(err, false)
			}
			perBar := 0.0
			if sum.Bars > 0 {
				perBar = float64(sum.Bytes) / float64(sum.Bars)
			}
			fmt.Fprintf(g.stdout, "exported %d bars of %s in %d files (%d bytes, %.1f bytes/bar) to %s; covered %v\n",
				sum.Bars, opts.Request.NodeID, sum.Files, sum.Bytes, perBar, opts.Dir, sum.Coverage)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&node, "node", "", "node id, e.g. ohlcv:demo:BTC-USD:1m (required)")
	fl.Int64Var(&interval, "interval", 0, "bar interval in seconds (default: the node's timeframe)")
	fl.StringVar(&start, "start", "", "range start, inclusive: epoch seconds or RFC 3339 (required)")
	fl.StringVar(&end, "end", "", "range end, exclusive: epoch seconds or RFC 3339 (required)")
	fl.StringVar(&output, "output", "", "dataset directory (required; absent or empty unless --overwrite)")
	fl.BoolVar(&overwrite, "overwrite", false, "replace the exported days' files in a non-empty --output")
	fl.StringVar(&strategy, "strategy", "seamless", "seamless | fail_fast | auto_backfill | partial_fill")
	fl.BoolVar(&partialOK, "partial-ok", false, "export what is available instead of failing on missing data")
	fl.StringVar(&serverURL, "server", "", "export through this Seamless server instead of the local store; token from SEAMLESS_API_TOKEN")
	return cmd
}

// writeParquet renders a fetch result as one Parquet file (fetch --format parquet):
// zstd, the metadata JSON in the footer under the key /v1/bars?format=parquet uses.
func writeParquet(w io.Writer, res seamless.Result) error {
	md, err := res.Metadata.MarshalJSON()
	if err != nil {
		return err
	}
	return artifact.WriteParquet(w, res.Frame, artifact.ParquetOptions{
		Codec: artifact.Zstd, Metadata: map[string]string{wire.ParquetMetadataKey: string(md)},
	})
}
