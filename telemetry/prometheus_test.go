package telemetry_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
	"github.com/seamless-data/seamless/telemetry"
)

// metricsProvider is a demo Provider observed by the metrics of a fresh registry; it
// is closed when the test ends.
func metricsProvider(t *testing.T) (*prometheus.Registry, *telemetry.Metrics, *seamless.Provider) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := demo.New(demo.Options{})
	p, err := seamless.New(seamless.Config{Store: memstore.New(), Sources: seamless.Sources{"demo": src}, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return reg, m, p
}

func TestProviderMetrics(t *testing.T) {
	reg, m, p := metricsProvider(t)
	ctx := context.Background()
	node := "ohlcv:demo:BTC/USD:1m"
	s := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	r := seamless.Request{NodeID: node, Interval: 60, Start: s, End: s + 3600}
	if _, err := p.Fetch(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Strategy = seamless.FailFast
	if _, err := p.Fetch(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.End = s + 7*86400
	if _, err := p.Fetch(ctx, r); err == nil {
		t.Fatal("expected not_covered")
	}
	r.SLA = &seamless.SLAPolicy{MinCoverage: 0.99}
	r.PartialOK = true
	if _, err := p.Fetch(ctx, r); err != nil {
		t.Fatal(err)
	}
	expect := `
# HELP seamless_requests_total Fetch requests by strategy and outcome code (ok or an error code).
# TYPE seamless_requests_total counter
seamless_requests_total{code="not_covered",strategy="fail_fast"} 1
seamless_requests_total{code="ok",strategy="fail_fast"} 2
seamless_requests_total{code="ok",strategy="seamless"} 1
# HELP domain_gate_holds_total Responses downgraded to hold, by reason.
# TYPE domain_gate_holds_total counter
domain_gate_holds_total{reason="coverage_breach"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expect), "seamless_requests_total", "domain_gate_holds_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
		if mf.GetName() == "backfill_completion_ratio" && len(mf.GetMetric()) != 0 {
			t.Fatalf("completion ratio series outlived their leases: %v", mf.GetMetric())
		}
		if mf.GetName() == "seamless_sla_deadline_seconds" {
			b := mf.GetMetric()[0].GetHistogram().GetBucket()
			if top := b[len(b)-1].GetUpperBound(); top != 600 {
				t.Fatalf("top bucket %v, want 600 s", top)
			}
		}
	}
	for _, name := range []string{"seamless_bars_served_total", "coverage_ratio", "live_staleness_seconds", "seamless_sla_deadline_seconds",
		"gap_repair_latency_ms", "backfill_last_timestamp", "seamless_request_duration_seconds", "backfill_jobs_in_progress"} {
		if !got[name] {
			t.Errorf("metric %s not exported", name)
		}
	}
	if v := testutil.ToFloat64(m.JobsInProgress()); v != 0 {
		t.Fatalf("backfill_jobs_in_progress = %v after all jobs ended", v)
	}
}

// TestFailedRequestsTimedAndTiersCounted: a failed request's phases reach the SLA
// histogram (the latency SLO must see slow failures) — under the series' node_id when
// the store holds it, else under "other", so made-up ids add no labels — and bars
// answered from the cache tier are counted under tier="cache".
func TestFailedRequestsTimedAndTiersCounted(t *testing.T) {
	reg, _, p := metricsProvider(t)
	ctx := context.Background()
	s := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	failing := seamless.Request{NodeID: "ohlcv:demo:ETH/USD:1m", Interval: 60, Start: s, End: s + 3600, Strategy: seamless.FailFast}
	if _, err := p.Fetch(ctx, failing); seamless.ErrorCode(err) != "not_covered" {
		t.Fatalf("err = %v, want not_covered", err)
	}
	// value is the sample count (histograms) or value (counters) of the series of
	// metric name with the given labels.
	value := func(name string, want map[string]string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		metrics:
			for _, mt := range mf.GetMetric() {
				for _, l := range mt.GetLabel() {
					if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
						continue metrics
					}
				}
				if h := mt.GetHistogram(); h != nil {
					return float64(h.GetSampleCount())
				}
				return mt.GetCounter().GetValue()
			}
		}
		return 0
	}
	for _, phase := range []string{"total", "storage_wait"} {
		if n := value("seamless_sla_deadline_seconds", map[string]string{"node_id": seamless.OtherSeries, "phase": phase}); n != 1 {
			t.Fatalf("failed request of an unknown series: %v %s observations under other, want 1", n, phase)
		}
	}
	if n := value("seamless_sla_deadline_seconds", map[string]string{"node_id": failing.NodeID}); n != 0 {
		t.Fatalf("a series the store does not hold got its own label (%v observations)", n)
	}

	served := seamless.Request{NodeID: "ohlcv:demo:BTC/USD:1m", Interval: 60, Start: s, End: s + 86400}
	for range 3 { // backfill, then storage (filling the cache), then the cache
		if _, err := p.Fetch(ctx, served); err != nil {
			t.Fatal(err)
		}
	}
	if v := value("seamless_bars_served_total", map[string]string{"tier": "cache"}); v == 0 {
		t.Fatal(`no bars counted under seamless_bars_served_total{tier="cache"}`)
	}
	// A failure of a stored series is timed under its own node_id.
	beyond := served
	beyond.Start, beyond.End, beyond.Strategy = served.End+7*86400, served.End+7*86400+3600, seamless.FailFast
	if _, err := p.Fetch(ctx, beyond); seamless.ErrorCode(err) != "not_covered" {
		t.Fatalf("err = %v, want not_covered", err)
	}
	if n := value("seamless_sla_deadline_seconds", map[string]string{"node_id": served.NodeID, "phase": "total"}); n != 4 {
		t.Fatalf("%v total observations of %s, want 4 (3 served, 1 failed)", n, served.NodeID)
	}
}

// TestNodeLabelsBounded: past MaxNodeLabels distinct node ids, new ones are reported as
// node_id="other"; ids already labelled keep their label.
func TestNodeLabelsBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range telemetry.MaxNodeLabels + 50 {
		m.Phase("node-"+strconv.Itoa(i), "total", time.Millisecond)
	}
	m.Phase("node-0", "total", time.Millisecond)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() == "seamless_sla_deadline_seconds" {
			for _, mt := range mf.GetMetric() {
				for _, l := range mt.GetLabel() {
					if l.GetName() == "node_id" {
						labels[l.GetValue()] = mt.GetHistogram().GetSampleCount()
					}
				}
			}
		}
	}
	if len(labels) != telemetry.MaxNodeLabels+1 || labels[seamless.OtherSeries] != 50 || labels["node-0"] != 2 {
		t.Fatalf("%d node_id values, %d under other, %d under node-0", len(labels), labels[seamless.OtherSeries], labels["node-0"])
	}
}
