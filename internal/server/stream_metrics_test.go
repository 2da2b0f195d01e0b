package server_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
	"github.com/seamless-data/seamless/internal/server/wire"
)

// metricValue is the value of the metric name whose labels include labels (a gauge
// or counter's value; a histogram's sample count), and whether it exists.
func metricValue(t *testing.T, families []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// TestStreamMetricsAndLimits: a subscription shows in the stream metrics (connections
// and subscribers per series while it runs, history and live bars delivered, one
// close→delivery latency sample per live bars event); past MaxConnections a stream is
// refused with 429 too_many_requests.
func TestStreamMetricsAndLimits(t *testing.T) {
	reg := server.NewRegistry()
	e := servertest.StartLive(t, server.Config{Registry: reg, Stream: server.StreamConfig{MaxConnections: 1}},
		seamless.SubscribeOptions{LiveGrace: time.Hour})
	start := grid.CeilAlign(e.Clock.Now().Add(-time.Hour).Unix(), iv)
	q := url.Values{"node_id": {servertest.Node}, "start": {time.Unix(start, 0).UTC().Format(time.RFC3339)}}
	resp, evs := sse(t, e, q, nil)
	if evs == nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
	defer resp.Body.Close()
	var bars []int64
	evs.until(t, seamless.EventCaughtUp, &bars)
	history := len(bars)
	e.Clock.Advance(servertest.Bar)
	evs.barsUntil(t, e.Clock, &bars)
	live := len(bars) - history
	if history == 0 || live == 0 {
		t.Fatalf("%d history bars, %d live", history, live)
	}

	// One connection is open: a second one is refused.
	resp2, evs2 := sse(t, e, q, nil)
	if evs2 != nil {
		resp2.Body.Close()
		t.Fatal("a second stream past MaxConnections 1")
	}
	body := wire.ReadError(resp2.StatusCode, resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusTooManyRequests || body.Code != wire.CodeTooManyRequests {
		t.Fatalf("past the limit: %d %+v", resp2.StatusCode, body)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		labels  map[string]string
		want    float64
		atLeast bool
	}{
		{"seamless_stream_connections", map[string]string{"transport": "sse"}, 1, false},
		{"seamless_stream_subscribers", map[string]string{"node_id": servertest.Node}, 1, false},
		{"seamless_stream_bars_delivered_total", map[string]string{"origin": seamless.OriginHistory}, float64(history), false},
		{"seamless_stream_bars_delivered_total", map[string]string{"origin": "live"}, float64(live), false},
		{"seamless_stream_delivery_latency_seconds", nil, 1, true},
		{"seamless_stream_slow_consumer_drops_total", nil, 0, false},
		{"seamless_stream_seam_repairs_total", nil, 0, false},
	} {
		got, ok := metricValue(t, families, c.name, c.labels)
		if !ok || got != c.want && !(c.atLeast && got >= c.want) {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}
