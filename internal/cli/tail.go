package cli

import (
	"context"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/server/wire"
)

func newTailCmd(g *globals) *cobra.Command {
	var (
		node, start, format, serverURL, strategy string
		interval                                 int64
		follow, forming                          bool
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print a series' closed bars from a start time, and with --follow each bar as it closes",
		Long: `Print the closed bars of a node from --start (default: none, only bars that close
from now on) through the subscription path of SPEC §9: history through the same plan as
fetch (backfill, conformance, SLA), then, with --follow, each bar as it closes, each
exactly once, until interrupted. Without --follow it stops once history is printed.

Against a server (--server URL, token from SEAMLESS_API_TOKEN) it streams over the
WebSocket of GET /v1/stream and reconnects from its last cursor if the connection drops.

Formats: table (default) and csv print bars; json prints every event of the stream
protocol (bars, caught_up, gap, heartbeat, end, …), one JSON object per line.`,
		Example: `  seamless tail --node ohlcv:demo:BTC-USD:1m --start 2024-06-01T00:00:00Z
  seamless tail --node ohlcv:binance:BTC/USDT:1m --start -1h --follow --server http://127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			jsonOut := format == "json"
			req, err := func() (seamless.SubscribeRequest, error) {
				if format != "table" && format != "csv" && format != "json" {
					return seamless.SubscribeRequest{}, &seamless.RequestError{Field: "format", Message: fmt.Sprintf("unknown format %q (want table, csv or json)", format)}
				}
				if node == "" {
					return seamless.SubscribeRequest{}, &seamless.RequestError{Field: "node", Message: "required"}
				}
				req := seamless.SubscribeRequest{NodeID: node, Interval: interval, Forming: forming && follow}
				if start != "" {
					t, err := tailStart(start, time.Now())
					if err != nil {
						return req, err
					}
					req.Start = t
				}
				st, err := seamless.ParseStrategy(strategy)
				req.Strategy = st
				return req, err
			}()
			if err != nil {
				return g.fail(err, jsonOut)
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var events iter.Seq2[seamless.StreamEvent, error]
			if serverURL != "" {
				c, err := client.New(serverURL, client.WithToken(os.Getenv("SEAMLESS_API_TOKEN")))
				if err != nil {
					return g.fail(&seamless.RequestError{Field: "server", Message: err.Error()}, jsonOut)
				}
				events = c.Subscribe(ctx, req)
			} else {
				rt, err := g.open()
				if err != nil {
					return g.fail(err, jsonOut)
				}
				defer rt.Close()
				sub, err := rt.provider.Subscribe(ctx, req)
				if err != nil {
					return g.fail(err, jsonOut)
				}
				defer sub.Close()
				events = localEvents(sub)
			}
			tw := &tailWriter{w: g.stdout, format: format}
			for ev, err := range events {
				if err != nil {
					return g.fail(err, jsonOut)
				}
				if err := tw.write(ev); err != nil {
					return g.fail(err, false)
				}
				if ev.Type == seamless.EventCaughtUp && !follow || ev.Type == seamless.EventEnd {
					break
				}
			}
			return nil // history printed, interrupted, or ended by the server
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&node, "node", "", "node id, e.g. ohlcv:demo:BTC-USD:1m (required)")
	fl.Int64Var(&interval, "interval", 0, "bar interval in seconds (default: the node's timeframe)")
	fl.StringVar(&start, "start", "", "history from here: epoch seconds, RFC 3339, or a duration before now such as -1h (default: no history)")
	fl.BoolVar(&follow, "follow", false, "keep printing bars as they close, until interrupted")
	fl.BoolVar(&forming, "forming", false, "with --follow and --format json, also print the forming bar's updates")
	fl.StringVar(&strategy, "strategy", "seamless", "seamless | fail_fast | auto_backfill | partial_fill (for the history)")
	fl.StringVar(&format, "format", "table", "table | csv | json")
	fl.StringVar(&serverURL, "server", "", "stream from this Seamless server (e.g. http://127.0.0.1:8080) instead of the local store; token from SEAMLESS_API_TOKEN")
	return cmd
}

// tailStart reads --start: a time, or a negative duration before now.
func tailStart(v string, now time.Time) (int64, error) {
	if d, err := time.ParseDuration(v); err == nil && d < 0 {
		return now.Add(d).Unix(), nil
	}
	return parseTimeFlag("start", v)
}

// localEvents is a Subscription's events as the client's sequence: an error event
// yields its error.
func localEvents(sub *seamless.Subscription) iter.Seq2[seamless.StreamEvent, error] {
	return func(yield func(seamless.StreamEvent, error) bool) {
		for ev := range sub.Events() {
			if !yield(ev, ev.Err) {
				return
			}
		}
	}
}

// tailWriter prints a stream's events in one of tail's formats.
type tailWriter struct {
	w      io.Writer
	format string
	header bool
}

func (t *tailWriter) write(ev seamless.StreamEvent) error {
	if t.format == "json" {
		b, err := wire.MarshalStreamEvent(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(t.w, "%s\n", b)
		return err
	}
	if ev.Type != seamless.EventBars {
		return nil
	}
	f := ev.Frame
	var buf []byte
	if !t.header {
		t.header = true
		if t.format == "csv" {
			buf = append(buf, "ts"...)
			for _, c := range f.Cols {
				buf = append(append(buf, ','), c.Name...)
			}
		} else {
			buf = fmt.Appendf(buf, "%-19s", "time (UTC)")
			for _, c := range f.Cols {
				buf = fmt.Appendf(buf, "  %14s", c.Name)
			}
		}
		buf = append(buf, '\n')
	}
	for i, ts := range f.TS {
		if t.format == "csv" {
			buf = strconv.AppendInt(buf, ts, 10)
			for k := range f.Cols {
				buf = append(append(buf, ','), cell(&f.Cols[k], i)...)
			}
		} else {
			buf = append(buf, time.Unix(ts, 0).UTC().Format("2006-01-02 15:04:05")...)
			for k := range f.Cols {
				buf = fmt.Appendf(buf, "  %14s", cell(&f.Cols[k], i))
			}
		}
		buf = append(buf, '\n')
	}
	_, err := t.w.Write(buf)
	return err
}
