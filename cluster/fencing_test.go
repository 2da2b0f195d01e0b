package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/etcdcoord"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/etcdtest"
	"github.com/seamless-data/seamless/store/pgstore"
	"github.com/seamless-data/seamless/store/storetest"
)

// TestFencingRejectsExpiredToken: etcd leases alone are not mutual exclusion — a holder
// that stalls (GC pause, partition, slow upstream) past its lease still believes it
// holds the chunk. Fencing makes its late write harmless: the chunk is claimed again
// with a larger token, written under it, and the stalled holder's write, carrying the
// older token, is rejected by the PostgreSQL store and changes nothing.
func TestFencingRejectsExpiredToken(t *testing.T) {
	t.Parallel()
	dsn := freshSchema(t)
	etcd := etcdtest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stalled := etcdcoord.New(etcd.Client(t), etcdcoord.Options{Holder: "stalled"})
	next := etcdcoord.New(etcd.Client(t), etcdcoord.Options{Holder: "next"})

	c := grid.R(1_700_010_000, 1_700_010_000+chunk) // an aligned chunk
	key := seamless.ChunkKey(series, c)
	old, err := stalled.Claim(ctx, key, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The stalled holder neither renews nor writes; its lease expires.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := next.Wait(wctx, key); err != nil {
		t.Fatalf("waiting for the stalled lease to expire: %v", err)
	}
	cur, err := next.Claim(ctx, key, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Token <= old.Token || next.StaleClaims() != 1 {
		t.Fatalf("re-claim token %d after %d, stale claims %d", cur.Token, old.Token, next.StaleClaims())
	}
	fresh := storetest.OHLCV(c.Start, interval, 900)
	if err := st.Write(ctx, seamless.Write{Series: series, Range: c, Frame: fresh, Token: cur.Token}); err != nil {
		t.Fatalf("write under the current lease: %v", err)
	}

	// The stalled holder wakes up and writes what it fetched: the whole chunk, then a
	// part of it. Both are rejected.
	late := storetest.OHLCV(c.Start, interval, 900)
	for i := range late.Col("close").F64 {
		late.Col("close").F64[i] += 1000
	}
	for _, w := range []seamless.Write{
		{Series: series, Range: c, Frame: late, Token: old.Token},
		{Series: series, Range: grid.R(c.Start, c.Start+600), Frame: late.Slice(0, 10), Token: old.Token},
	} {
		err := st.Write(ctx, w)
		var stale *pgstore.StaleTokenError
		if !errors.Is(err, seamless.ErrLeaseLost) || !errors.As(err, &stale) {
			t.Fatalf("late write %v with token %d: %v; want a *pgstore.StaleTokenError wrapping ErrLeaseLost", w.Range, w.Token, err)
		}
		if stale.Token != old.Token || stale.Applied != cur.Token {
			t.Errorf("StaleTokenError %+v: want token %d rejected for applied %d", stale, old.Token, cur.Token)
		}
	}
	got, err := st.Read(ctx, series, c)
	if err != nil {
		t.Fatal(err)
	}
	if d := storetest.Diff(got, fresh); d != "" {
		t.Fatalf("the stored chunk changed after rejected late writes: %s", d)
	}
	// The current holder may retry its own write (equal token), and ends the lease; the
	// stalled one cannot.
	if err := st.Write(ctx, seamless.Write{Series: series, Range: c, Frame: fresh, Token: cur.Token}); err != nil {
		t.Fatalf("retried write under the current lease: %v", err)
	}
	if err := stalled.Complete(ctx, old); !errors.Is(err, seamless.ErrLeaseLost) {
		t.Fatalf("the stalled holder's Complete: %v; want ErrLeaseLost", err)
	}
	if err := next.Complete(ctx, cur); err != nil {
		t.Fatalf("the current holder's Complete: %v", err)
	}
}
