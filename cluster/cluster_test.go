package cluster_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/etcdcoord"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/etcdtest"
	"github.com/seamless-data/seamless/internal/server/wire"
	"github.com/seamless-data/seamless/store/pgstore"
)

const (
	nodeID   = "ohlcv:binance:BTC/USDT:1m"
	interval = 60
	// chunk is the backfill tier's aligned chunk: window_bars 900 × 60 s.
	chunk = 900 * interval
	day   = 86400
)

var series = seamless.Series{NodeID: nodeID, Interval: interval}

// barsResult is the outcome of one GET /v1/bars.
type barsResult struct {
	req    grid.Range
	node   string
	status int
	res    seamless.Result
	err    error // transport or decoding error
}

var httpClient = &http.Client{Timeout: 5 * time.Minute}

// getBars asks n for the bars of r of the test's series with strategy auto_backfill.
func getBars(ctx context.Context, n *node, r grid.Range) barsResult {
	return getBarsOf(ctx, n, nodeID, r)
}

// getBarsOf asks n for the one-minute bars of r of a node with strategy auto_backfill.
func getBarsOf(ctx context.Context, n *node, nodeID string, r grid.Range) barsResult {
	out := barsResult{req: r, node: n.name}
	q := url.Values{"node_id": {nodeID}, "interval": {fmt.Sprint(interval)}, "start": {fmt.Sprint(r.Start)},
		"end": {fmt.Sprint(r.End)}, "strategy": {"auto_backfill"}, "format": {"json"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url()+"/v1/bars?"+q.Encode(), nil)
	if err != nil {
		out.err = err
		return out
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		out.err = err
		return out
	}
	defer resp.Body.Close()
	out.status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		out.err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		return out
	}
	out.res, out.err = wire.ReadBars(resp.Body)
	return out
}

// checkBars checks that f holds exactly the bars of r, sorted, unique, with the
// upstream's values.
func checkBars(what string, r grid.Range, f *frame.Frame) error {
	want := int(r.Bars(interval))
	closes := f.Col("close")
	if closes == nil && want > 0 {
		return fmt.Errorf("%s %v: no close column", what, r)
	}
	ts := f.TS
	if len(ts) != want {
		return fmt.Errorf("%s %v: %d bars, want %d", what, r, len(ts), want)
	}
	for i, v := range ts {
		if v != r.Start+int64(i)*interval {
			return fmt.Errorf("%s %v: bar %d has ts %d, want %d (sorted, unique, gap-free)", what, r, i, v, r.Start+int64(i)*interval)
		}
		if closes.F64[i] != wantClose(v, interval) {
			return fmt.Errorf("%s %v: bar at %d has close %v, want %v", what, r, v, closes.F64[i], wantClose(v, interval))
		}
	}
	return nil
}

func checkResult(b barsResult) error {
	if b.err != nil {
		return fmt.Errorf("%s %v: %w", b.node, b.req, b.err)
	}
	if md := b.res.Metadata; md.CoverageRatio != 1 {
		return fmt.Errorf("%s %v: coverage_ratio %v, want 1", b.node, b.req, md.CoverageRatio)
	}
	return checkBars(b.node, b.req, b.res.Frame)
}

// chunksOf lists the aligned chunks touching r.
func chunksOf(r grid.Range) []int64 {
	var out []int64
	for c := grid.FloorAlign(r.Start, chunk); c < r.End; c += chunk {
		out = append(out, c)
	}
	return out
}

func pageOf(chunkStart int64) page { return page{Symbol: "BTCUSDT", StartMS: chunkStart * 1000} }

// TestClusterBackfill runs three `seamless serve` processes on one PostgreSQL store and
// a 3-member etcd cluster against a Binance-speaking upstream, fires 200 overlapping
// requests at them, SIGKILLs one process while it holds chunk leases with pages in
// flight, and checks that the survivors answer every request completely, that every
// chunk is fetched upstream once (the killed process's chunks at most twice), that the
// killed process's claims are detected as stale and finished by the survivors, and that
// the store holds every bar exactly once. Then it stops the etcd leader and checks that
// the two survivors go on serving and backfilling a new range.
//
// The killed process's leases expire after the lease TTL, set to 20 s here with
// SEAMLESS_LEASE_TTL (the default is the reference's 120 s): the test waits that long.
func TestClusterBackfill(t *testing.T) {
	t.Parallel()
	began := time.Now()
	dsn := freshSchema(t)
	etcd := etcdtest.StartCluster(t, 3)
	up := newUpstream(t, 40*time.Millisecond)

	const victim = "n2"
	killNow := make(chan struct{})
	var once sync.Once
	// The victim's pages are held unanswered: it is killed while it waits, holding the
	// leases of the chunks it claimed.
	up.hang = func(node string, n int) bool {
		if node != victim {
			return false
		}
		once.Do(func() { close(killNow) })
		return true
	}

	nodes := map[string]*node{}
	var names []string
	for _, name := range []string{"n1", "n2", "n3"} {
		nodes[name] = serve(t, name, map[string]string{
			"SEAMLESS_STORE":           dsn,
			"SEAMLESS_COORDINATOR_URL": etcd.URL(),
			"SEAMLESS_BINANCE_URL":     up.baseURL(name),
			"SEAMLESS_DATA_DIR":        t.TempDir(),
			"SEAMLESS_LOG_LEVEL":       "info",
			"SEAMLESS_LEASE_TTL":       "20s",
		}, "--max-concurrent-fetches", "256")
		names = append(names, name)
	}
	t.Logf("3 servers up after %v", time.Since(began).Round(time.Millisecond))

	// 200 overlapping ranges of 6 h to 3 days inside ten days, five weeks ago.
	spanStart := grid.FloorAlign(time.Now().Unix()-35*day, chunk) + 7*3600
	span := grid.R(spanStart, spanStart+10*day)
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	results := make([]barsResult, 200)
	var wg sync.WaitGroup
	ranges := make([]grid.Range, len(results))
	for i := range ranges {
		length := (6*3600 + rng.Int64N(3*day-6*3600)) / interval * interval
		start := span.Start + rng.Int64N(span.Len()-length)/interval*interval
		ranges[i] = grid.R(start, start+length)
	}
	fire := func(victimOnes bool) {
		for i := range results {
			if (names[i%3] == victim) != victimOnes {
				continue
			}
			n := nodes[names[i%3]]
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = getBars(ctx, n, ranges[i])
			}()
		}
	}
	// The victim's requests go first, so that it claims chunks before the others take
	// them all on a busy machine; the others follow once it is fetching, and the kill
	// lands while everyone is in flight.
	fire(true)
	select {
	case <-killNow:
	case <-time.After(2 * time.Minute):
		t.Fatal("the victim never asked upstream for a page: the kill could not land mid-backfill")
	}
	fire(false)
	time.Sleep(300 * time.Millisecond)
	nodes[victim].kill(t)
	killed := time.Now()
	infos, err := etcdcoord.New(etcd.Client(t), etcdcoord.Options{}).Inspect(ctx)
	if err != nil {
		t.Fatalf("inspect leases after the kill: %v", err)
	}
	victimKeys := map[string]seamless.LeaseInfo{}
	for _, i := range infos {
		if i.Holder == nodes[victim].holder {
			victimKeys[i.Key] = i
		}
	}
	t.Logf("killed %s %v after start; it held %d chunk leases; %d leases held in all", victim,
		killed.Sub(began).Round(time.Millisecond), len(victimKeys), len(infos))
	if len(victimKeys) == 0 {
		t.Fatal("the victim held no chunk lease when killed")
	}

	wg.Wait()
	t.Logf("all 200 responses in %v after the kill", time.Since(killed).Round(time.Millisecond))
	failedAtVictim := 0
	for _, r := range results {
		err := checkResult(r)
		switch {
		case err == nil:
		case r.node == victim && r.err != nil && r.status == 0:
			failedAtVictim++ // the connection died with the process
		default:
			t.Errorf("response: %v", err)
		}
	}
	t.Logf("%d requests went to the killed server and failed with it", failedAtVictim)

	// Chunks only the victim's requests needed are finished by whoever asks next.
	if err := checkResult(getBars(ctx, nodes["n1"], span)); err != nil {
		t.Errorf("full span after the kill: %v", err)
	}

	// Upstream: every chunk answered once; a second request only for a chunk the victim
	// held, whose first request died with it.
	received, answered := up.snapshot()
	victimChunks := map[int64]bool{}
	for k := range victimKeys {
		var c int64
		if _, err := fmt.Sscanf(k[len(url.QueryEscape(nodeID)):], ":60:%d:", &c); err != nil {
			t.Fatalf("lease key %q: %v", k, err)
		}
		victimChunks[c] = true
	}
	refetched := 0
	for _, c := range chunksOf(span) {
		pg := pageOf(c)
		rec, ans := received[pg], answered[pg]
		if len(ans) != 1 {
			t.Errorf("chunk %d answered %d times (%v), want once", c, len(ans), ans)
		}
		switch extra := len(rec) - len(ans); {
		case extra == 0:
		case extra == 1 && victimChunks[c] && rec[0] == victim && ans[0] != victim:
			refetched++
		default:
			t.Errorf("chunk %d requested by %v, answered to %v: more than one fetch, and not a killed holder's", c, rec, ans)
		}
	}
	t.Logf("%d chunks, %d fetched a second time after the kill", len(chunksOf(span)), refetched)

	// Stale claims: each victim lease whose chunk it had not stored yet was found
	// abandoned by a survivor and finished there.
	stale := map[string]string{} // lease key → survivor that found it stale
	for _, name := range []string{"n1", "n3"} {
		for _, l := range nodes[name].logs("seamless.backfill.stale_claim") {
			if l.str("stale_holder") == nodes[victim].holder {
				stale[l.str("lease_key")] = name
			}
		}
	}
	for k := range victimKeys {
		var c int64
		fmt.Sscanf(k[len(url.QueryEscape(nodeID)):], ":60:%d:", &c)
		if slices.Contains(answered[pageOf(c)], victim) {
			continue // stored before the kill: nothing left to re-claim
		}
		if stale[k] == "" {
			t.Errorf("the killed server's lease %s was not detected as a stale claim by n1 or n3", k)
		}
	}
	t.Logf("stale claims detected: %v", stale)

	// Storage: every bar of the span once, in order, and the span covered.
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkStore := func(r grid.Range) {
		t.Helper()
		f, err := st.Read(ctx, series, r)
		if err != nil {
			t.Fatalf("store read: %v", err)
		}
		if err := checkBars("store", r, f); err != nil {
			t.Error(err)
		}
		cov, err := st.Coverage(ctx, series)
		if err != nil || !cov.Missing(r).Empty() {
			t.Errorf("store coverage %v misses %v (%v)", cov, cov.Missing(r), err)
		}
	}
	checkStore(span)

	// Lose an etcd member — the leader — and go on: two members are a quorum.
	leader := etcd.Leader()
	if leader < 0 {
		t.Fatal("no etcd leader")
	}
	etcd.Members[leader].Stop()
	t.Logf("stopped etcd member m%d (the leader)", leader+1)
	fresh := grid.R(span.Start-4*day, span.Start-day)
	var more []barsResult
	var mu sync.Mutex
	for i := range 20 {
		n := nodes[[]string{"n1", "n3"}[i%2]]
		r := grid.R(fresh.Start+int64(i)*3600, fresh.End-int64(19-i)*3600)
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := getBars(ctx, n, r)
			mu.Lock()
			more = append(more, b)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, b := range more {
		if err := checkResult(b); err != nil {
			t.Errorf("with an etcd member down: %v", err)
		}
	}
	received, answered = up.snapshot()
	for _, c := range chunksOf(fresh) {
		if rec, ans := received[pageOf(c)], answered[pageOf(c)]; len(rec) != 1 || len(ans) != 1 {
			t.Errorf("with an etcd member down, chunk %d requested by %v, answered to %v; want once", c, rec, ans)
		}
	}
	fallbacks := 0
	for _, name := range []string{"n1", "n3"} {
		fallbacks += len(nodes[name].logs("seamless.backfill.coordinator_fallback"))
	}
	if fallbacks > 0 {
		t.Errorf("%d coordinator fallbacks with two of three etcd members up", fallbacks)
	}
	checkStore(fresh)
	t.Logf("with m%d down: 20 requests over %d new chunks answered, each chunk fetched once; total test time %v",
		leader+1, len(chunksOf(fresh)), time.Since(began).Round(time.Millisecond))
}
