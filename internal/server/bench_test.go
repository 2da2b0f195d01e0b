package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
)

const benchBars = 1_000_000

// BenchmarkGatewayFetch serves 1,000,000 stored one-minute bars over loopback, warm
// (in the memstore), and reports end-to-end bars/s for each transport: "client" rows
// include decoding into a frame with package client, "http" rows only read the body.
func BenchmarkGatewayFetch(b *testing.B) {
	e := servertest.Start(b, server.Config{})
	req := seamless.Request{NodeID: servertest.Node, Interval: 60, Strategy: seamless.FailFast,
		Start: servertest.Unix(1000 * 24 * time.Hour)}
	req.End = req.Start + benchBars*60
	if _, err := e.Provider.Backfill(context.Background(), seamless.BackfillRequest{NodeID: req.NodeID, Interval: 60, Start: req.Start, End: req.End}); err != nil {
		b.Fatal(err)
	}
	for _, f := range []client.Format{client.Arrow, client.JSON} {
		b.Run("client/"+string(f), func(b *testing.B) {
			c, err := client.New(e.HTTP.URL, client.WithFormat(f))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				res, err := c.Fetch(context.Background(), req)
				if err != nil || res.Frame.Len() != benchBars {
					b.Fatalf("%v, %d rows", err, res.Frame.Len())
				}
			}
			b.ReportMetric(float64(benchBars*b.N)/b.Elapsed().Seconds(), "bars/s")
		})
	}
	for _, f := range []string{"arrow", "json", "csv"} {
		b.Run("http/"+f, func(b *testing.B) {
			q := url.Values{"node_id": {req.NodeID}, "interval": {"60"}, "start": {strconv.FormatInt(req.Start, 10)},
				"end": {strconv.FormatInt(req.End, 10)}, "strategy": {"fail_fast"}, "format": {f}}
			var n int64
			for b.Loop() {
				resp, err := http.Get(e.HTTP.URL + "/v1/bars?" + q.Encode())
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err, resp)
				}
				n, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(benchBars*b.N)/b.Elapsed().Seconds(), "bars/s")
			b.ReportMetric(float64(n)/benchBars, "B/bar")
		})
	}
	http.DefaultClient.CloseIdleConnections()
}
