package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/live/binancews"
	"github.com/seamless-data/seamless/schemaregistry"
	"github.com/seamless-data/seamless/source/binance/binancetest"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
	"github.com/seamless-data/seamless/telemetry"
)

// knownMissing are the metrics issue 6 names (and the dashboards and alerts use) that
// the provider does not export yet, because the code that would count them does not
// exist yet: the live feed and the schema registry are not
// configured in this workload. Every other name a dashboard or rule uses must
// be in the scrape. When one of these starts being exported, the test fails until it
// is removed from this list.
var knownMissing = map[string]string{}

// issueMetrics are the metrics issue 6 requires (SPEC §8), by exposed name.
var issueMetrics = []string{
	"seamless_sla_deadline_seconds", "seamless_requests_total", "seamless_request_duration_seconds",
	"seamless_bars_served_total", "coverage_ratio", "live_staleness_seconds", "gap_repair_latency_ms",
	"backfill_jobs_in_progress", "backfill_last_timestamp", "backfill_failure_total", "backfill_retry_total",
	"backfill_completion_ratio", "seamless_backfill_stale_claims_total", "seamless_conformance_flag_total",
	"seamless_conformance_warning_total", "seamless_sla_violations_total", "domain_gate_holds_total",
	"partial_fill_returns_total", "seamless_cache_hit_total", "seamless_cache_miss_total",
	"seamless_upstream_requests_total", "seamless_upstream_rate_limited_total", "seamless_live_reconnects_total",
	"seamless_schema_validation_failures_total", "seamless_coordinator_fallback_total",
	"go_goroutines", "process_cpu_seconds_total",
}

// knownLint are promlint findings on names that must stay as they are because the
// reference's users have dashboards for them (SPEC §8).
var knownLint = map[string]bool{
	"gap_repair_latency_ms": true, // the reference's name, in milliseconds
}

const t0 = 1704067200 // 2024-01-01T00:00:00Z

// flakyFetcher serves demo bars; its first call fails, so backfill retries.
type flakyFetcher struct {
	mu    sync.Mutex
	calls int
}

func (f *flakyFetcher) Fetch(_ context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if n == 1 {
		return nil, errors.New("upstream 503")
	}
	return demo.Bars(s.NodeID, s.Interval, r), nil
}

// dirtyFetcher serves demo bars with a NaN close at t0+120 (a non_finite flag).
type dirtyFetcher struct{}

func (dirtyFetcher) Fetch(_ context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	f := demo.Bars(s.NodeID, s.Interval, r).Clone()
	if i := f.SearchTS(t0 + 120); i < f.Len() && f.TS[i] == t0+120 {
		f.Col("close").F64[i] = math.NaN()
	}
	// A column outside the OHLCV schema: dropped with a conformance warning.
	f.Cols = append(f.Cols, frame.Column{Field: frame.Field{Name: "vendor_seq", Type: frame.Float64}, F64: make([]float64, f.Len())})
	return f, nil
}

// downFetcher fails permanently, so its chunks fail (backfill_failure_total) and
// the request ends in upstream_failed.
type downFetcher struct{}

func (downFetcher) Fetch(context.Context, seamless.Series, grid.Range) (*frame.Frame, error) {
	return nil, seamless.Permanent(errors.New("upstream 404: unknown symbol"))
}

// gateFetcher blocks its first call until released, holding a lease open so its
// backfill_completion_ratio series can be scraped.
type gateFetcher struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gateFetcher) Fetch(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.started)
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return demo.Bars(s.NodeID, s.Interval, r), nil
}

// downCoordinator is a distributed coordinator that cannot be reached.
type downCoordinator struct{ seamless.Coordinator }

var errDown = errors.New("dial tcp 127.0.0.1:2379: connect: connection refused")

func (downCoordinator) Claim(context.Context, string, time.Duration) (seamless.Lease, error) {
	return seamless.Lease{}, errDown
}

func (downCoordinator) Renew(context.Context, seamless.Lease, time.Duration) (seamless.Lease, error) {
	return seamless.Lease{}, errDown
}
func (downCoordinator) Complete(context.Context, seamless.Lease) error        { return errDown }
func (downCoordinator) Fail(context.Context, seamless.Lease, string) error    { return errDown }
func (downCoordinator) Inspect(context.Context) ([]seamless.LeaseInfo, error) { return nil, errDown }

// scrape is what one scrape of the registry exposes: series names (histograms as
// _bucket/_count/_sum), label names per series name, bucket bounds per histogram.
type scrape struct {
	series  map[string]map[string]bool
	buckets map[string]map[string]bool
	values  map[string]float64 // sum of the samples per family (for sanity checks)
}

func newScrape() *scrape {
	return &scrape{series: map[string]map[string]bool{}, buckets: map[string]map[string]bool{}, values: map[string]float64{}}
}

func (s *scrape) add(mfs []*dto.MetricFamily) {
	for _, mf := range mfs {
		name := mf.GetName()
		names := []string{name}
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names = []string{name + "_bucket", name + "_count", name + "_sum"}
		case dto.MetricType_SUMMARY:
			names = []string{name, name + "_count", name + "_sum"}
		}
		for _, m := range mf.GetMetric() {
			for _, n := range names {
				if s.series[n] == nil {
					s.series[n] = map[string]bool{}
				}
				for _, lp := range m.GetLabel() {
					s.series[n][lp.GetName()] = true
				}
			}
			switch {
			case m.GetHistogram() != nil:
				s.series[name+"_bucket"]["le"] = true
				if s.buckets[name] == nil {
					s.buckets[name] = map[string]bool{"+Inf": true}
				}
				for _, b := range m.GetHistogram().GetBucket() {
					s.buckets[name][fmt.Sprint(b.GetUpperBound())] = true
				}
				s.values[name] += float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				s.values[name] += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s.values[name] += m.GetGauge().GetValue()
			}
		}
	}
}

// workload runs the scripted workload of issue 6 against a real provider with the
// telemetry.Metrics observer and returns the union of a scrape taken while a lease
// was held (backfill_completion_ratio exists only then) and one taken at the end,
// plus the final text exposition.
func workload(t *testing.T) (*scrape, []byte, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := telemetry.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Sources with their own rate-limit counters export them at scrape time, as the
	// runtime does for binance.
	var limited uint64 = 3
	if err := m.RateLimited("binance", func() uint64 { return limited }); err != nil {
		t.Fatal(err)
	}
	gate := &gateFetcher{started: make(chan struct{}), release: make(chan struct{})}
	coord := seamless.NewFallbackCoordinator(downCoordinator{seamless.NewMemCoordinator(nil)}, seamless.NewMemCoordinator(nil), time.Second, nil)
	coord.OnFallback = m.CoordinatorFallback
	p, err := seamless.New(seamless.Config{
		Store:       memstore.New(),
		Sources:     seamless.Sources{"demo": &flakyFetcher{}, "dirty": dirtyFetcher{}, "slow": gate, "down": downFetcher{}},
		Coordinator: coord,
		Backfill:    seamless.BackfillConfig{RetryBackoff: time.Millisecond},
		Seed:        1,
		Observer:    m,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	fetch := func(r seamless.Request, wantCode string) {
		t.Helper()
		_, err := p.Fetch(ctx, r)
		if got := seamless.ErrorCode(err); (err == nil) != (wantCode == "") || (err != nil && got != wantCode) {
			t.Fatalf("fetch %v: err %v (code %q), want code %q", r, err, got, wantCode)
		}
	}
	node := "ohlcv:demo:BTC-USD:1m"
	// Cold fetch: backfilled after one retried upstream error.
	fetch(seamless.Request{NodeID: node, Interval: 60, Start: t0, End: t0 + 3600}, "")
	// Warm fetch: served from storage.
	fetch(seamless.Request{NodeID: node, Interval: 60, Start: t0, End: t0 + 3600, Strategy: seamless.FailFast}, "")
	// A client error.
	fetch(seamless.Request{NodeID: node, Interval: 60, Start: t0, End: t0 + 86400, Strategy: seamless.FailFast}, seamless.CodeNotCovered)
	// SLA violations: the sync_gap budget, under fail_fast and then partial_fill.
	gap := seamless.Request{NodeID: node, Interval: 60, Start: t0 + 86400, End: t0 + 2*86400,
		SLA: &seamless.SLAPolicy{MaxSyncGapBars: 10}}
	fetch(gap, seamless.CodeSLAExceeded)
	gap.SLA.OnViolation = seamless.ViolationPartialFill
	fetch(gap, "")
	// A coverage hold (partial_ok, min_coverage).
	fetch(seamless.Request{NodeID: node, Interval: 60, Start: t0, End: t0 + 3*86400, Strategy: seamless.FailFast,
		PartialOK: true, MinCoverage: 0.99}, "")
	// Conformance-flagged responses: blocked, then served with partial_ok.
	dirty := seamless.Request{NodeID: "ohlcv:dirty:BTC-USD:1m", Interval: 60, Start: t0, End: t0 + 3600}
	fetch(dirty, "conformance_blocked")
	dirty.PartialOK = true
	fetch(dirty, "")
	// An upstream that fails: a failed chunk and a server-side error.
	fetch(seamless.Request{NodeID: "ohlcv:down:BTC-USD:1m", Interval: 60, Start: t0, End: t0 + 3600}, seamless.CodeUpstreamFailed)
	// A stale claim, as a coordinator reports it (only etcdcoord detects them).
	m.StaleClaim()
	// A live feed that loses its first connection and reconnects, wired as the
	// runtime wires it.
	liveReconnect(t, m)
	// A payload that deviates from its subject's schema in canary mode, counted as the
	// runtime counts it.
	schemaFailure(t, reg)

	// A backfill held open: scrape while its lease is held.
	s := newScrape()
	done := make(chan error, 1)
	go func() {
		_, err := p.Fetch(ctx, seamless.Request{NodeID: "ohlcv:slow:BTC-USD:1m", Interval: 60, Start: t0, End: t0 + 3600})
		done <- err
	}()
	select {
	case <-gate.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow backfill never reached its fetcher")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	s.add(mfs)
	close(gate.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil { // waits for the partial_fill background backfill
		t.Fatal(err)
	}

	// The final scrape, through the /metrics handler as Prometheus would.
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	mfs, err = reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	s.add(mfs)
	return s, rec.Body.Bytes(), reg
}

// TestMetricNamesExist runs the workload, lints the exposition, checks the issue's
// metrics are there with sensible values, and checks that every metric a dashboard,
// recording rule or alert uses exists in the scrape (or is a recording rule's output,
// or is listed in knownMissing).
func TestMetricNamesExist(t *testing.T) {
	s, text, reg := workload(t)

	// Lint: client_golang's promlint, and promtool's (which reads the exposition).
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if !knownLint[p.Metric] {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	// promtool exits 3 when it found lint problems; they are filtered below.
	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	if ee := (*exec.ExitError)(nil); err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 3) {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if metric, _, _ := strings.Cut(line, " "); !knownLint[metric] {
			t.Errorf("promtool check metrics: %s", line)
		}
	}

	// The issue's metrics, with values the workload must have produced.
	for _, name := range issueMetrics {
		_, plain := s.series[name]
		_, hist := s.buckets[name]
		_, missing := knownMissing[name]
		switch {
		case missing && (plain || hist):
			t.Errorf("%s is exported now: remove it from knownMissing", name)
		case !missing && !plain && !hist:
			t.Errorf("%s is not in the scrape", name)
		}
	}
	for name, min := range map[string]float64{
		"seamless_sla_deadline_seconds": 1, "seamless_requests_total": 8, "seamless_bars_served_total": 60,
		"gap_repair_latency_ms": 1, "backfill_retry_total": 1, "backfill_failure_total": 1, "seamless_conformance_warning_total": 1, "seamless_sla_violations_total": 2,
		"partial_fill_returns_total": 1, "domain_gate_holds_total": 1, "seamless_conformance_flag_total": 1,
		"seamless_backfill_stale_claims_total": 1, "seamless_coordinator_fallback_total": 1,
	} {
		if s.values[name] < min {
			t.Errorf("%s = %v after the workload, want >= %v", name, s.values[name], min)
		}
	}

	// Every name the dashboards and rules use.
	queries, records := usedQueries(t)
	p := parser.NewParser(parser.Options{})
	used := map[string]string{}
	for _, q := range queries {
		expr, err := p.ParseExpr(q.expr)
		if err != nil {
			t.Errorf("%s: %v in %q", q.where, err, q.expr)
			continue
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := vs.Name
			if name == "" {
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
			}
			if name == "" {
				t.Errorf("%s: selector %s names no metric", q.where, vs)
				return nil
			}
			if _, ok := used[name]; !ok {
				used[name] = q.where
			}
			if records[name] {
				return nil
			}
			if lbls, ok := s.series[name]; ok {
				for _, m := range vs.LabelMatchers {
					if m.Name != model.MetricNameLabel && !lbls[m.Name] {
						t.Errorf("%s: %s has no label %q (has %v)", q.where, name, m.Name, sortedKeys(lbls))
					}
					if base, isBucket := strings.CutSuffix(name, "_bucket"); isBucket && m.Name == "le" && m.Type == labels.MatchEqual && !s.buckets[base][m.Value] {
						t.Errorf("%s: %s has no bucket le=%q (has %v)", q.where, base, m.Value, sortedKeys(s.buckets[base]))
					}
				}
			}
			return nil
		})
	}
	for _, name := range sortedKeys(used) {
		_, inScrape := s.series[name]
		_, missing := knownMissing[name]
		if !inScrape && !records[name] && !missing {
			hint := ""
			if _, isHist := s.buckets[name]; isHist {
				hint = " (a histogram: query its _bucket, _count or _sum series)"
			}
			t.Errorf("%s uses %s, which is not in the scrape%s", used[name], name, hint)
		}
	}
	for name := range knownMissing {
		if _, ok := used[name]; !ok {
			t.Logf("knownMissing lists %s, which no dashboard or rule uses", name)
		}
	}
}

// liveReconnect subscribes a Binance websocket feed to a fake exchange that drops the
// first connection, and waits until the feed has reconnected.
func liveReconnect(t *testing.T, m *telemetry.Metrics) {
	t.Helper()
	stream := binancetest.NewStream(t, binancetest.Step{Drop: true})
	m.LiveSource("binance")
	feed, err := binancews.New(binancews.Options{BaseURL: stream.URL(), MinBackoff: time.Millisecond, OnReconnect: m.LiveReconnect})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := feed.Subscribe(ctx, seamless.Series{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 60})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); feed.Stats().Reconnects == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the live feed never reconnected")
		}
	}
	cancel()
	for range ch { // drained and closed once the subscription has ended
	}
}

// schemaFailure validates a payload missing a column against a registered subject in
// canary mode, with the failure counter the runtime registers.
func schemaFailure(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	ctx := context.Background()
	count, err := schemaregistry.FailureCounter(reg)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := schemaregistry.Open(ctx, schemaregistry.NewMemStore(), schemaregistry.Options{OnValidationFailure: count})
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Close()
	schema, err := schemaregistry.FromFrame(frame.OHLCV)
	if err != nil {
		t.Fatal(err)
	}
	const subject = "ohlcv:demo:BTC-USD:1m"
	if _, err := sr.Register(ctx, subject, schema); err != nil {
		t.Fatal(err)
	}
	res, err := sr.ValidateSchema(ctx, subject, frame.Schema{Fields: frame.OHLCV.Fields[1:]})
	if err != nil || res.OK() {
		t.Fatalf("a payload without open: %+v, %v; want a canary violation", res, err)
	}
}
