package etcdcoord_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/etcdcoord"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/etcdtest"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

func TestClaimCompleteAcrossProcesses(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	a := etcdcoord.New(srv.Client(t), etcdcoord.Options{Holder: "a"})
	b := etcdcoord.New(srv.Client(t), etcdcoord.Options{Holder: "b"})
	key := seamless.ChunkKey(seamless.Series{NodeID: "ohlcv:demo:BTC/USD:1m", Interval: 60}, grid.R(0, 54000))

	la, err := a.Claim(ctx, key, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, key, 10*time.Second); !errors.Is(err, seamless.ErrLeaseHeld) {
		t.Fatalf("second process claimed a held chunk: %v", err)
	}
	infos, err := b.Inspect(ctx)
	if err != nil || len(infos) != 1 || infos[0].Key != key || infos[0].Holder != "a" || infos[0].Token != la.Token {
		t.Fatalf("Inspect = %+v, %v", infos, err)
	}
	if la, err = a.Renew(ctx, la, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- b.Wait(ctx, key) }()
	time.Sleep(50 * time.Millisecond)
	if err := a.Complete(ctx, la); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not woken by Complete")
	}
	lb, err := b.Claim(ctx, key, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Token <= la.Token {
		t.Fatalf("fencing token did not grow across processes: %d then %d", la.Token, lb.Token)
	}
	if err := a.Complete(ctx, la); !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("completing an ended lease: %v", err)
	}
	if err := b.Fail(ctx, lb, "upstream 503"); err != nil {
		t.Fatal(err)
	}
	fs, err := a.Failures(ctx)
	if err != nil || len(fs) != 1 || fs[0].Key != key || fs[0].Reason != "upstream 503" || fs[0].Token != lb.Token {
		t.Fatalf("Failures = %+v, %v", fs, err)
	}
	if err := a.ClearFailure(ctx, key); err != nil {
		t.Fatal(err)
	}
	if fs, _ := a.Failures(ctx); len(fs) != 0 {
		t.Fatalf("failure not cleared: %v", fs)
	}
}

// TestStaleClaimAfterHolderCrash: a holder that vanishes (its etcd client closes, so its
// lease is never renewed) leaves a stale claim that the next claimer detects and takes
// over with a larger fencing token.
func TestStaleClaimAfterHolderCrash(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	crashed := srv.Client(t)
	a := etcdcoord.New(crashed, etcdcoord.Options{Holder: "crashed"})
	b := etcdcoord.New(srv.Client(t), etcdcoord.Options{Holder: "survivor"})
	dead, err := a.Claim(ctx, "k", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	crashed.Close()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Wait(wctx, "k"); err != nil {
		t.Fatalf("waiting for the expired lease: %v", err)
	}
	l, err := b.Claim(ctx, "k", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b.StaleClaims() != 1 || l.Token <= dead.Token {
		t.Fatalf("stale claims %d, tokens %d → %d", b.StaleClaims(), dead.Token, l.Token)
	}
	if err := b.Complete(ctx, l); err != nil {
		t.Fatal(err)
	}
	// A clean Complete leaves no claim record behind: the next claim is not stale.
	l, _ = b.Claim(ctx, "k", 10*time.Second)
	b.Complete(ctx, l)
	if b.StaleClaims() != 1 {
		t.Fatalf("clean claim counted as stale")
	}
}

func TestReleaseFencesOldHolder(t *testing.T) {
	srv := etcdtest.Start(t)
	ctx := context.Background()
	a := etcdcoord.New(srv.Client(t), etcdcoord.Options{})
	l, err := a.Claim(ctx, "k", 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Renew(ctx, l, 30*time.Second); !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("renew after release: %v", err)
	}
}

// countingSource counts upstream calls per range.
type countingSource struct {
	mu    sync.Mutex
	calls map[grid.Range]int
}

func (c *countingSource) Fetch(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	c.mu.Lock()
	c.calls[r]++
	c.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	return demo.Bars(s.NodeID, s.Interval, r), nil
}

// TestTwoProvidersShareChunks: two providers (as two processes would) share one store
// and one etcd; overlapping requests fetch every aligned chunk upstream exactly once.
func TestTwoProvidersShareChunks(t *testing.T) {
	srv := etcdtest.Start(t)
	st := memstore.New()
	src := &countingSource{calls: map[grid.Range]int{}}
	var ps []*seamless.Provider
	for _, name := range []string{"p1", "p2"} {
		p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src},
			Coordinator: etcdcoord.New(srv.Client(t), etcdcoord.Options{Holder: name})})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		ps = append(ps, p)
	}
	node := "ohlcv:demo:ETH/USD:1m"
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := base + int64(i%4)*3600*5
			res, err := ps[i%2].Fetch(context.Background(), seamless.Request{NodeID: node, Interval: 60, Start: s, End: s + 86400, Strategy: seamless.AutoBackfill})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Frame.Len() != 1440 || res.Metadata.CoverageRatio != 1 {
				t.Errorf("request %d: %d rows, ratio %v", i, res.Frame.Len(), res.Metadata.CoverageRatio)
			}
		}()
	}
	wg.Wait()
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.calls) == 0 {
		t.Fatal("nothing fetched")
	}
	for r, n := range src.calls {
		if n != 1 {
			t.Errorf("range %v fetched %d times", r, n)
		}
	}
}

func TestParseURL(t *testing.T) {
	eps, err := etcdcoord.ParseURL("etcd://10.0.0.1:2379,10.0.0.2:2379")
	if err != nil || len(eps) != 2 || eps[1] != "10.0.0.2:2379" {
		t.Fatalf("%v %v", eps, err)
	}
	for _, bad := range []string{"http://x:1", "etcd://", "etcd://a:1,,b:2", "etcd://u@h:1"} {
		if _, err := etcdcoord.ParseURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestUnreachableFallsBackLoudly: with etcd down, backfill goes on under the local
// guard and says so, instead of treating every chunk as held elsewhere.
func TestUnreachableFallsBackLoudly(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	srv.Stop()
	fb := seamless.NewFallbackCoordinator(etcdcoord.New(cli, etcdcoord.Options{}), seamless.NewMemCoordinator(nil), 500*time.Millisecond, nil)
	var reported int
	fb.OnFallback = func(string, error) { reported++ }
	p, err := seamless.New(seamless.Config{Store: memstore.New(), Sources: seamless.Sources{"demo": &countingSource{calls: map[grid.Range]int{}}}, Coordinator: fb})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).Unix()
	res, err := p.Fetch(context.Background(), seamless.Request{NodeID: "ohlcv:demo:X:1m", Interval: 60, Start: s, End: s + 3600, Strategy: seamless.AutoBackfill})
	if err != nil {
		t.Fatal(err)
	}
	if res.Frame.Len() != 60 || fb.Fallbacks() == 0 || reported == 0 {
		t.Fatalf("rows %d, fallbacks %d, reported %d", res.Frame.Len(), fb.Fallbacks(), reported)
	}
	if l, _ := fb.Inspect(context.Background()); len(l) != 0 {
		t.Fatalf("leases left: %v", l)
	}
}
