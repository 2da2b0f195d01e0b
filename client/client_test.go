package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const node = servertest.Node

var (
	start = servertest.Unix(72 * time.Hour)
	end   = servertest.Unix(48 * time.Hour)
)

func newClient(t *testing.T, e *servertest.Env, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(e.HTTP.URL, append([]client.Option{client.WithHTTPClient(e.HTTP.Client())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func same(t *testing.T, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("got  %.400s\nwant %.400s", g, w)
	}
}

func TestFetchRoundTrip(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	ctx := context.Background()
	// Seamless backfills through the client: the metadata says so.
	first, err := newClient(t, e).Fetch(ctx, seamless.Request{NodeID: node, Interval: 60, Start: start, End: end})
	if err != nil || first.Frame.Len() != 1440 || first.Metadata.Sources.Backfill != 1440 || first.Metadata.Backfill.Chunks == 0 {
		t.Fatalf("first fetch: %d rows %+v %v", first.Frame.Len(), first.Metadata, err)
	}
	req := seamless.Request{NodeID: node, Interval: 60, Start: start, End: end, Strategy: seamless.FailFast,
		SLA: &seamless.SLAPolicy{TotalDeadlineMS: 60_000, MinCoverage: 0.5}, WorldID: "w1"}
	want, err := e.Provider.Fetch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []client.Format{client.Arrow, client.JSON} {
		got, err := newClient(t, e, client.WithFormat(f)).Fetch(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		same(t, got.Metadata, want.Metadata)
		same(t, got.Frame, want.Frame)
		if got.Frame.Schema().Equal(want.Frame.Schema()) == false {
			t.Fatalf("%s: schema %v", f, got.Frame.Schema())
		}
	}
	// A large answer spans several Arrow record batches (64 Ki rows each).
	big := seamless.Request{NodeID: node, Interval: 60, Start: servertest.Unix(100 * 24 * time.Hour), End: servertest.Unix(24 * time.Hour)}
	if _, err := e.Provider.Backfill(ctx, seamless.BackfillRequest{NodeID: big.NodeID, Interval: 60, Start: big.Start, End: big.End}); err != nil {
		t.Fatal(err)
	}
	big.Strategy = seamless.FailFast
	got, err := newClient(t, e).Fetch(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if want, err = e.Provider.Fetch(ctx, big); err != nil {
		t.Fatal(err)
	}
	if got.Frame.Len() != 99*1440 {
		t.Fatalf("rows %d, want %d", got.Frame.Len(), 99*1440)
	}
	same(t, got.Frame, want.Frame)
	// An empty answer keeps its columns.
	empty, err := newClient(t, e).Fetch(ctx, seamless.Request{NodeID: node, Interval: 60, Start: servertest.Unix(3000 * time.Hour),
		End: servertest.Unix(2999 * time.Hour), Strategy: seamless.FailFast, PartialOK: true})
	if err != nil || empty.Frame.Len() != 0 || len(empty.Frame.Cols) != 5 || empty.Metadata.CoverageRatio != 0 {
		t.Fatalf("empty answer %+v %v", empty, err)
	}
}

func TestTypedErrors(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	c := newClient(t, e)
	ctx := context.Background()
	req := seamless.Request{NodeID: node, Interval: 60, Start: start, End: end}

	r := req
	r.Strategy = seamless.FailFast
	_, err := c.Fetch(ctx, r)
	var nc *seamless.NotCoveredError
	if !errors.Is(err, seamless.ErrNotCovered) || !errors.As(err, &nc) || nc.Series.NodeID != node || nc.Missing.Empty() {
		t.Fatalf("not covered: %#v", err)
	}
	_, local := e.Provider.Fetch(ctx, r)
	if err.Error() != local.Error() || seamless.ErrorCode(err) != seamless.CodeNotCovered {
		t.Errorf("message %q, library's %q", err, local)
	}

	r = req
	r.Interval = 300
	_, err = c.Fetch(ctx, r)
	var re *seamless.RequestError
	if !errors.As(err, &re) || re.Field != "interval" {
		t.Fatalf("bad request: %#v", err)
	}
	if _, local := e.Provider.Fetch(ctx, r); err.Error() != local.Error() {
		t.Errorf("message %q, library's %q", err, local)
	}

	r = req
	r.NodeID = "ohlcv:nasdaq:AAPL:1m"
	_, err = c.Fetch(ctx, r)
	var se *seamless.SourceError
	if !errors.Is(err, seamless.ErrUnknownSource) || !errors.As(err, &se) || se.Source != "nasdaq" {
		t.Fatalf("unknown source: %#v", err)
	}

	r = req
	r.NodeID, r.Strategy = "ohlcv:down:X:1m", seamless.AutoBackfill
	_, err = c.Fetch(ctx, r)
	var ue *seamless.UpstreamError
	if !errors.As(err, &ue) || ue.Series.NodeID != "ohlcv:down:X:1m" || ue.Attempts != 1 || ue.Chunk.Empty() {
		t.Fatalf("upstream: %#v", err)
	}

	r = req
	r.ExecutionDomain = "backtest"
	_, err = c.Fetch(ctx, r)
	var dp *seamless.SeamlessDomainPolicyError
	if !errors.As(err, &dp) || seamless.ErrorCode(err) != seamless.CodeDomainPolicy {
		t.Fatalf("domain policy: %#v", err)
	}

	r = req
	r.Start -= 86400 // not covered: more missing bars than the sync-gap budget
	r.SLA = &seamless.SLAPolicy{MaxSyncGapBars: 10}
	_, err = c.Fetch(ctx, r)
	var sx *seamless.SeamlessSLAExceeded
	if !errors.As(err, &sx) || sx.NodeID != r.NodeID || sx.Phase != seamless.PhaseSyncGap || sx.BudgetBars != 10 {
		t.Fatalf("sla: %#v", err)
	}
	if _, local := e.Provider.Fetch(ctx, r); err.Error() != local.Error() {
		t.Errorf("message %q, library's %q", err, local)
	}

	authed := servertest.Start(t, server.Config{Tokens: []server.Token{{Name: "ci", Secret: "t0k"}}})
	if _, err := newClient(t, authed).Series(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("no token: %v", err)
	}
	if _, err := newClient(t, authed, client.WithToken("t0k")).Series(ctx); err != nil {
		t.Fatalf("token: %v", err)
	}
	if _, err := c.BackfillJob(ctx, "nope"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown job: %v", err)
	}
	if _, err := client.New("127.0.0.1:8080"); err == nil {
		t.Fatal("New accepted a URL without a scheme")
	}
}

func TestCoverageSeriesBackfill(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	c := newClient(t, e, client.WithPollInterval(5*time.Millisecond))
	ctx := context.Background()
	var (
		mu       sync.Mutex
		progress []seamless.BackfillProgress
	)
	job, err := c.Backfill(ctx, seamless.BackfillRequest{NodeID: node, Interval: 60, Start: start, End: end,
		Progress: func(p seamless.BackfillProgress) { mu.Lock(); progress = append(progress, p); mu.Unlock() }})
	if err != nil || job.State != client.JobSucceeded || job.Bars == 0 || job.ChunksDone != job.ChunksTotal || job.FinishedAt.IsZero() {
		t.Fatalf("backfill: %+v %v", job, err)
	}
	if len(progress) == 0 || progress[len(progress)-1].ChunksDone != job.ChunksTotal {
		t.Errorf("progress %+v", progress)
	}
	cov, err := c.Coverage(ctx, node, 60)
	want, _ := e.Provider.Coverage(ctx, node, 60)
	if err != nil || !cov.Equal(want) || !cov.Covers(grid.R(start, end)) {
		t.Fatalf("coverage %v %v, want %v", cov, err, want)
	}
	list, err := c.Series(ctx)
	if err != nil || len(list) != 1 || list[0].Bounds != want.Bounds() || list[0].Fragments != 1 {
		t.Fatalf("series %+v %v", list, err)
	}
	job, err = c.Backfill(ctx, seamless.BackfillRequest{NodeID: "ohlcv:down:X:1m", Interval: 60, Start: start, End: end})
	var ue *seamless.UpstreamError
	if job.State != client.JobFailed || !errors.As(err, &ue) || len(job.FailedChunks) == 0 {
		t.Fatalf("failed backfill: %+v %v", job, err)
	}
	if _, err := c.StartBackfill(ctx, seamless.BackfillRequest{NodeID: node, Interval: 60, Start: end, End: start}); !errors.As(err, new(*seamless.RequestError)) {
		t.Fatalf("bad backfill: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if err := newClient(t, e, client.WithHTTPClient(&http.Client{Timeout: time.Second})).Ready(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestIncompatibleServer: a server whose /healthz names another major API version, or
// none (a server older than api_version), is refused before the first /v1 request is
// sent; a compatible minor version is accepted.
func TestIncompatibleServer(t *testing.T) {
	for _, tc := range []struct {
		health string
		ok     bool
	}{
		{`{"status":"ok","api_version":"2.0"}`, false},
		{`{"status":"ok"}`, false},
		{`{"status":"ok","api_version":"1.7"}`, true},
	} {
		var bars int
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, tc.health) })
		mux.HandleFunc("GET /v1/coverage", func(w http.ResponseWriter, _ *http.Request) {
			bars++
			fmt.Fprint(w, `{"node_id":"ohlcv:demo:BTC-USD:1m","interval":60,"ranges":[]}`)
		})
		srv := httptest.NewServer(mux)
		c, err := client.New(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Coverage(context.Background(), node, 60)
		srv.Close()
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, client.ErrIncompatibleServer) {
			t.Errorf("%s: %v", tc.health, err)
		}
		if !tc.ok && bars != 0 {
			t.Errorf("%s: the /v1 request was sent to an incompatible server", tc.health)
		}
	}
}
