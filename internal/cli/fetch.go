package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/internal/csvio"
	"github.com/seamless-data/seamless/internal/server/wire"
)

type seriesFlags struct {
	node     string
	interval int64
}

func (s *seriesFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.node, "node", "", "node id, e.g. ohlcv:demo:BTC-USD:1m (required)")
	cmd.Flags().Int64Var(&s.interval, "interval", 0, "bar interval in seconds; must match the node's timeframe (required)")
}

func (s *seriesFlags) check() error {
	if s.node == "" {
		return &seamless.RequestError{Field: "node", Message: "required"}
	}
	if s.interval == 0 {
		return &seamless.RequestError{Field: "interval", Message: "required (seconds, e.g. 60 for 1m)"}
	}
	return nil
}

func newFetchCmd(g *globals) *cobra.Command {
	var (
		series           seriesFlags
		start, end       string
		strategy, format string
		output           string
		partialOK        bool
		serverURL        string
		rf               requestFlags
	)
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Fetch bars for a node and range, backfilling what is missing",
		Example: `  seamless fetch --node ohlcv:demo:BTC-USD:1m --interval 60 \
    --start 2024-01-01T00:00:00Z --end 2024-01-01T06:00:00Z --format csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			jsonOut := format == "json"
			req, err := func() (seamless.Request, error) {
				if format != "table" && format != "csv" && format != "json" && format != "parquet" {
					return seamless.Request{}, &seamless.RequestError{Field: "format", Message: fmt.Sprintf("unknown format %q (want table, csv, json or parquet)", format)}
				}
				if format == "parquet" && output == "" {
					return seamless.Request{}, &seamless.RequestError{Field: "output", Message: "--format parquet writes a file: give --output"}
				}
				if err := series.check(); err != nil {
					return seamless.Request{}, err
				}
				st, err := parseTimeFlag("start", start)
				if err != nil {
					return seamless.Request{}, err
				}
				en, err := parseTimeFlag("end", end)
				if err != nil {
					return seamless.Request{}, err
				}
				strat, err := seamless.ParseStrategy(strategy)
				if err != nil {
					return seamless.Request{}, err
				}
				req := seamless.Request{NodeID: series.node, Interval: series.interval, Start: st, End: en, Strategy: strat, PartialOK: partialOK}
				return req, rf.apply(cmd, &req)
			}()
			if err != nil {
				return g.fail(err, jsonOut)
			}
			var res seamless.Result
			if serverURL != "" {
				res, err = g.fetchRemote(cmd.Context(), serverURL, req)
			} else {
				rt, oerr := g.open()
				if oerr != nil {
					return g.fail(oerr, jsonOut)
				}
				defer rt.Close()
				res, err = rt.provider.Fetch(cmd.Context(), req)
			}
			if err != nil {
				return g.fail(err, jsonOut)
			}
			if err := writeOutput(g, output, func(w io.Writer) error { return render(w, format, res) }); err != nil {
				return g.fail(err, false)
			}
			return nil
		},
	}
	series.register(cmd)
	rf.register(cmd)
	cmd.Flags().StringVar(&start, "start", "", "range start, inclusive: epoch seconds or RFC 3339 (required)")
	cmd.Flags().StringVar(&end, "end", "", "range end, exclusive: epoch seconds or RFC 3339 (required)")
	cmd.Flags().StringVar(&strategy, "strategy", "seamless", "seamless | fail_fast | auto_backfill | partial_fill")
	cmd.Flags().BoolVar(&partialOK, "partial-ok", false, "return what is available instead of failing on missing data")
	cmd.Flags().StringVar(&format, "format", "table", "table | csv | json | parquet (needs --output)")
	cmd.Flags().StringVar(&output, "output", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&serverURL, "server", "", "fetch through this Seamless server (e.g. http://127.0.0.1:8080) instead of the local store; token from SEAMLESS_API_TOKEN")
	return cmd
}

// writeOutput runs write against stdout or, when path is set, a new file.
func writeOutput(g *globals, path string, write func(io.Writer) error) error {
	if path == "" {
		bw := bufio.NewWriterSize(g.stdout, 1<<16)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func render(w io.Writer, format string, res seamless.Result) error {
	switch format {
	case "json":
		return wire.WriteBars(w, res)
	case "csv":
		return csvio.Write(w, res.Frame)
	case "parquet":
		return writeParquet(w, res)
	}
	return renderTable(w, res)
}

func renderTable(w io.Writer, res seamless.Result) error {
	md := res.Metadata
	fmt.Fprintf(w, "%s  interval %ds  %d rows  coverage %.1f%%  cache %d  storage %d  backfill %d  live %d  (%d chunks fetched, %d waited)\n",
		md.NodeID, md.Interval, md.Rows, md.CoverageRatio*100, md.Sources.Cache, md.Sources.Storage, md.Sources.Backfill, md.Sources.Live, md.Backfill.Chunks, md.Backfill.Waited)
	if md.Downgraded {
		advice := ""
		if md.DowngradeMode == seamless.ViolationHold {
			advice = " — hold: do not trade on this answer"
		}
		fmt.Fprintf(w, "DOWNGRADED: %s (%s)%s\n", md.DowngradeMode, md.DowngradeReason, advice)
	}
	if md.Forming {
		fmt.Fprintln(w, "the last bar is still forming")
	}
	if n := len(md.Backfill.Scheduled); n > 0 {
		fmt.Fprintf(w, "%d chunk(s) scheduled for background backfill\n", n)
	}
	if n := len(md.Backfill.Failed); n > 0 {
		fmt.Fprintf(w, "%d chunk(s) failed: %v\n", n, md.Backfill.Failed)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	f := res.Frame
	fmt.Fprint(tw, "time (UTC)\t")
	for _, c := range f.Cols {
		fmt.Fprintf(tw, "%s\t", c.Name)
	}
	fmt.Fprintln(tw)
	for i, ts := range f.TS {
		fmt.Fprintf(tw, "%s\t", time.Unix(ts, 0).UTC().Format("2006-01-02 15:04:05"))
		for k := range f.Cols {
			fmt.Fprintf(tw, "%s\t", cell(&f.Cols[k], i))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func cell(c *frame.Column, i int) string {
	switch c.Type {
	case frame.Float64:
		return strconv.FormatFloat(c.F64[i], 'g', 10, 64)
	case frame.Int64:
		return strconv.FormatInt(c.I64[i], 10)
	case frame.Bool:
		return strconv.FormatBool(c.Bool[i])
	}
	return c.Str[i]
}
