package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/reportlog"
)

// reportsDoc is the JSON answer of GET /v1/reports and seamless reports --format json.
type reportsDoc struct {
	NodeID   string             `json:"node_id"`
	Interval int64              `json:"interval"`
	Reports  []reportlog.Record `json:"reports"`
}

// seriesOf validates a node id and takes the interval from its timeframe when none is
// given.
func seriesOf(nodeID string, interval int64) (seamless.Series, error) {
	n, err := seamless.ParseNodeID(nodeID)
	if err != nil {
		return seamless.Series{}, &seamless.RequestError{Field: "node_id", Message: err.Error()}
	}
	if interval == 0 {
		interval = n.Interval
	}
	if interval != n.Interval {
		return seamless.Series{}, &seamless.RequestError{Field: "interval", Message: fmt.Sprintf("%d s does not match the timeframe %q", interval, n.Timeframe)}
	}
	return seamless.Series{NodeID: nodeID, Interval: interval}, nil
}

func listReports(log *reportlog.Log, nodeID string, interval int64, limit int) (reportsDoc, error) {
	s, err := seriesOf(nodeID, interval)
	if err != nil {
		return reportsDoc{}, err
	}
	recs, err := log.List(s.NodeID, s.Interval, limit)
	if err != nil {
		return reportsDoc{}, err
	}
	if recs == nil {
		recs = []reportlog.Record{}
	}
	return reportsDoc{NodeID: s.NodeID, Interval: s.Interval, Reports: recs}, nil
}

// reportsHandler serves GET /v1/reports?node_id=&interval=&limit= (newest first).
func reportsHandler(log *reportlog.Log) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		writeErr := func(status int, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": seamless.ErrorCode(err), "message": err.Error()}})
		}
		var interval int64
		if v := q.Get("interval"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				writeErr(http.StatusBadRequest, &seamless.RequestError{Field: "interval", Message: "want seconds"})
				return
			}
			interval = n
		}
		limit := 20
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 1000 {
				writeErr(http.StatusBadRequest, &seamless.RequestError{Field: "limit", Message: "want 1 to 1000"})
				return
			}
			limit = n
		}
		doc, err := listReports(log, q.Get("node_id"), interval, limit)
		if err != nil {
			status := http.StatusInternalServerError
			if seamless.ErrorCode(err) == seamless.CodeBadRequest {
				status = http.StatusBadRequest
			}
			writeErr(status, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	})
}

func newReportsCmd(g *globals) *cobra.Command {
	var (
		series seriesFlags
		limit  int
		format string
	)
	cmd := &cobra.Command{
		Use:   "reports",
		Short: "Show archived conformance reports of a series, newest first, with regression digests",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			jsonOut := format == "json"
			if format != "json" && format != "table" {
				return g.fail(&seamless.RequestError{Field: "format", Message: "want table or json"}, false)
			}
			if series.node == "" {
				return g.fail(&seamless.RequestError{Field: "node", Message: "required"}, jsonOut)
			}
			log, err := reportlog.Open(filepath.Join(g.dataDir, "reports"))
			if err != nil {
				return g.fail(err, jsonOut)
			}
			doc, err := listReports(log, series.node, series.interval, limit)
			if err != nil {
				return g.fail(err, jsonOut)
			}
			return writeOutput(g, "", func(w io.Writer) error {
				if jsonOut {
					return json.NewEncoder(w).Encode(doc)
				}
				if len(doc.Reports) == 0 {
					_, err := fmt.Fprintf(w, "%s (%ds): no reports archived\n", doc.NodeID, doc.Interval)
					return err
				}
				for _, rec := range doc.Reports {
					fmt.Fprintf(w, "%s  [%s, %s)", rec.Time.UTC().Format(time.RFC3339), rfc(rec.Range.Start), rfc(rec.Range.End))
					flags := make([]string, 0, len(rec.Report.FlagsCounts))
					for f := range rec.Report.FlagsCounts {
						flags = append(flags, f)
					}
					sort.Strings(flags)
					for _, f := range flags {
						fmt.Fprintf(w, "  %s=%d", f, rec.Report.FlagsCounts[f])
					}
					if len(rec.Report.Warnings) > 0 {
						fmt.Fprintf(w, "  warnings=%d", len(rec.Report.Warnings))
					}
					if rec.Digest.Regressed() {
						fmt.Fprintf(w, "  REGRESSED new=%v increased=%d", rec.Digest.NewFlags, len(rec.Digest.Increased))
					}
					fmt.Fprintln(w)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&series.node, "node", "", "node id (required)")
	cmd.Flags().Int64Var(&series.interval, "interval", 0, "bar interval in seconds (default: the node's timeframe)")
	cmd.Flags().IntVar(&limit, "limit", 20, "most recent reports to show")
	cmd.Flags().StringVar(&format, "format", "table", "table | json")
	return cmd
}
