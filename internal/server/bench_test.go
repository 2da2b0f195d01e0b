package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

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

// BenchmarkGatewayCovered1000Concurrent50 is the serving-latency target: 50 clients at
// once, each asking for a covered 1,000-bar range (Arrow, varying offsets) over
// loopback in a closed loop, and reports the p50 and p99 request latency in
// milliseconds; b.N is the total number of requests, so -benchtime bounds the run.
//
// The "http" load generator is what a load tool measures: it sends the GET and reads
// the whole Arrow body (checking status, type and size; every 100th body is decoded
// with arrow-go and must hold the 1,000 bars). The "client" one decodes every answer
// into a frame with package client, so it adds the client's decoding to the latency;
// both share the two cores with the server. The "floor" one is the http load generator
// against a handler that writes a captured answer and does nothing else.
func BenchmarkGatewayCovered1000Concurrent50(b *testing.B) {
	e := servertest.Start(b, server.Config{MaxConcurrentFetches: 64})
	start := servertest.Unix(1000 * 24 * time.Hour)
	const span = 100_000
	if _, err := e.Provider.Backfill(context.Background(), seamless.BackfillRequest{NodeID: servertest.Node, Interval: 60, Start: start, End: start + span*60}); err != nil {
		b.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	rangeOf := func(i int64) (int64, int64) {
		s := start + (i*7919%(span-1000))*60
		return s, s + 1000*60
	}
	get := func(base string) func(i int64, buf *bytes.Buffer) error {
		return func(i int64, buf *bytes.Buffer) error {
			s, end := rangeOf(i)
			q := url.Values{"node_id": {servertest.Node}, "interval": {"60"}, "start": {strconv.FormatInt(s, 10)},
				"end": {strconv.FormatInt(end, 10)}, "strategy": {"fail_fast"}, "format": {"arrow"}}
			resp, err := hc.Get(base + "/v1/bars?" + q.Encode())
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			buf.Reset()
			if _, err := buf.ReadFrom(resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.apache.arrow.stream" || buf.Len() < 1000*6*8 {
				return fmt.Errorf("status %d, %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), buf.Len())
			}
			if i%100 == 0 {
				return decodesTo1000(buf.Bytes())
			}
			return nil
		}
	}
	b.Run("http", func(b *testing.B) { loadgen(b, 50, get(e.HTTP.URL)) })
	// The floor: the same load generator against a handler that only writes a
	// captured 1,000-bar answer, i.e. what net/http, loopback TCP and the load
	// generator cost on this machine before the gateway does any work.
	b.Run("floor", func(b *testing.B) {
		var answer bytes.Buffer
		if err := get(e.HTTP.URL)(0, &answer); err != nil {
			b.Fatal(err)
		}
		static := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_ = r.URL.Query()
			w.Header().Set("Content-Type", "application/vnd.apache.arrow.stream")
			w.Header().Set("Content-Length", strconv.Itoa(answer.Len()))
			_, _ = w.Write(answer.Bytes())
		}))
		defer static.Close()
		loadgen(b, 50, get(static.URL))
	})
	b.Run("client", func(b *testing.B) {
		c, err := client.New(e.HTTP.URL, client.WithHTTPClient(hc))
		if err != nil {
			b.Fatal(err)
		}
		loadgen(b, 50, func(i int64, _ *bytes.Buffer) error {
			s, end := rangeOf(i)
			res, err := c.Fetch(context.Background(), seamless.Request{NodeID: servertest.Node, Interval: 60, Start: s, End: end, Strategy: seamless.FailFast})
			if err == nil && res.Frame.Len() != 1000 {
				err = fmt.Errorf("%d rows", res.Frame.Len())
			}
			return err
		})
	})
}

// decodesTo1000 checks that body is an Arrow IPC stream of 1,000 rows.
func decodesTo1000(body []byte) error {
	r, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer r.Release()
	n := int64(0)
	for r.Next() {
		n += r.RecordBatch().NumRows()
	}
	if n != 1000 || r.Err() != nil {
		return fmt.Errorf("arrow body: %d rows, %v", n, r.Err())
	}
	return nil
}

// loadgen runs b.N requests from clients goroutines in a closed loop (each sends its
// next request when its previous one is answered) and reports the p50 and p99 latency
// and the bars/s of 1,000-bar requests.
func loadgen(b *testing.B, clients int, do func(i int64, buf *bytes.Buffer) error) {
	lat := make([][]time.Duration, clients)
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			var buf bytes.Buffer
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t := time.Now()
				err := do(i, &buf)
				lat[w] = append(lat[w], time.Since(t))
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "bars/s")
}
