// Package storetest is the contract every schemaregistry.Store passes: MemStore,
// filestore and pgstore run it from their tests.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/schemaregistry"
)

// Opener opens a handle on one fresh backing store (a directory, a database schema).
// Each call opens another handle on the same backing store, as another process would;
// the suite closes the handles it opens.
type Opener func() schemaregistry.Store

// Run runs the contract. fresh returns an Opener on a new, empty backing store.
func Run(t *testing.T, fresh func(t *testing.T) Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"AppendAndRead", testAppendAndRead},
		{"Conflicts", testConflicts},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Stats", testStats},
		{"RegistryAcrossHandles", testRegistryAcrossHandles},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
}

var ctx = context.Background()

func open(t *testing.T, o Opener) schemaregistry.Store {
	t.Helper()
	s := o()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC)

// chain returns n chained records on a subject with ':' and '/' and non-ASCII bytes.
func chain(n int) []schemaregistry.Record {
	var out []schemaregistry.Record
	prev := ""
	for i := 1; i <= n; i++ {
		r := schemaregistry.Record{
			Seq: int64(i), Time: t0.Add(time.Duration(i) * time.Second), Actor: "ops",
			Action: schemaregistry.ActionSetCompatibility, Subject: "ohlcv:binance:BTC/USDT:1m é",
			Compatibility: schemaregistry.Full, Reason: fmt.Sprintf("step %d <&>", i), PrevHash: prev,
		}
		r.Hash = r.ComputeHash()
		prev = r.Hash
		out = append(out, r)
	}
	return out
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testAppendAndRead(t *testing.T, o Opener) {
	s := open(t, o)
	got, err := s.Records(ctx, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty store: Records = %v, %v", got, err)
	}
	recs := chain(5)
	for _, r := range recs {
		if err := s.Append(ctx, r); err != nil {
			t.Fatalf("Append %d: %v", r.Seq, err)
		}
	}
	for _, after := range []int64{0, 2, 5, 9} {
		got, err := s.Records(ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		want := recs[min(after, 5):]
		if jsonOf(t, got) != jsonOf(t, want) && len(want)+len(got) > 0 {
			t.Errorf("Records(%d) = %s\nwant %s", after, jsonOf(t, got), jsonOf(t, want))
		}
	}
	// Another handle (process) sees them, byte for byte: the chain verifies.
	other := open(t, o)
	all, err := other.Records(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := schemaregistry.VerifyChain(all); err != nil || len(all) != 5 {
		t.Errorf("reopened: %d records, VerifyChain = %v", len(all), err)
	}
}

func testConflicts(t *testing.T, o Opener) {
	s := open(t, o)
	recs := chain(3)
	if err := s.Append(ctx, recs[1]); !errors.Is(err, schemaregistry.ErrConflict) {
		t.Errorf("Append of record 2 to an empty log = %v, want ErrConflict", err)
	}
	if err := s.Append(ctx, recs[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, recs[0]); !errors.Is(err, schemaregistry.ErrConflict) {
		t.Errorf("second Append of record 1 = %v, want ErrConflict", err)
	}
	if err := s.Append(ctx, recs[2]); !errors.Is(err, schemaregistry.ErrConflict) {
		t.Errorf("Append of record 3 after 1 = %v, want ErrConflict", err)
	}
	got, err := s.Records(ctx, 0)
	if err != nil || len(got) != 1 {
		t.Errorf("after conflicts: %d records, %v; want 1", len(got), err)
	}
}

// testConcurrentWriters has writers on separate handles race to append: every append
// either lands as the next record or fails with ErrConflict, so the log stays a chain.
func testConcurrentWriters(t *testing.T, o Opener) {
	const writers, each = 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		s := open(t, o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < each; {
				recs, err := s.Records(ctx, 0)
				if err != nil {
					errs <- err
					return
				}
				r := schemaregistry.Record{Seq: int64(len(recs)) + 1, Time: t0, Actor: fmt.Sprintf("w%d", w),
					Action: schemaregistry.ActionSetCompatibility, Subject: "s", Compatibility: schemaregistry.None}
				if len(recs) > 0 {
					r.PrevHash = recs[len(recs)-1].Hash
				}
				r.Hash = r.ComputeHash()
				switch err := s.Append(ctx, r); {
				case err == nil:
					n++
				case !errors.Is(err, schemaregistry.ErrConflict):
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := open(t, o).Records(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Errorf("%d records, want %d", len(all), writers*each)
	}
	if err := schemaregistry.VerifyChain(all); err != nil {
		t.Error(err)
	}
}

func testStats(t *testing.T, o Opener) {
	s := open(t, o)
	subject := "trades:binance:BTC/USDT:1m"
	got, err := s.Stats(ctx, subject)
	if err != nil || got != (schemaregistry.Stats{}) {
		t.Fatalf("unknown subject: %+v, %v", got, err)
	}
	deltas := []schemaregistry.StatsDelta{
		{Validations: 5, CleanAfter: 5, LastValidation: t0},
		{Validations: 3, Failures: 2, LastFailure: t0.Add(time.Minute), CleanAfter: 1, LastValidation: t0.Add(2 * time.Minute)},
		{Validations: 4, CleanAfter: 4, LastValidation: t0.Add(3 * time.Minute)},
		// An older failure seen by a slower process: the clean count stands.
		{Validations: 2, Failures: 1, LastFailure: t0.Add(30 * time.Second), CleanAfter: 1, LastValidation: t0.Add(time.Second)},
	}
	var want schemaregistry.Stats
	for _, d := range deltas {
		if err := s.AddStats(ctx, subject, d); err != nil {
			t.Fatal(err)
		}
		want = want.Merge(d)
	}
	other := open(t, o)
	got, err = other.Stats(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, got) != jsonOf(t, want) {
		t.Errorf("Stats = %+v\nwant %+v", got, want)
	}
	if want.CleanValidations != 5 || want.Failures != 3 || !want.LastFailure.Equal(t0.Add(time.Minute)) {
		t.Errorf("Merge: %+v", want)
	}
	if got, _ := other.Stats(ctx, "other"); got != (schemaregistry.Stats{}) {
		t.Errorf("another subject: %+v", got)
	}
}

// testRegistryAcrossHandles runs two registries (processes) on one backing store.
func testRegistryAcrossHandles(t *testing.T, o Opener) {
	fake := clock.NewFake(t0)
	opts := schemaregistry.Options{Clock: fake, RefreshInterval: time.Nanosecond}
	a, err := schemaregistry.Open(ctx, open(t, o), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := schemaregistry.Open(ctx, open(t, o), opts)
	if err != nil {
		t.Fatal(err)
	}
	s1 := schemaregistry.MustParse(`{"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"}]}`)
	s2 := schemaregistry.MustParse(`{"fields":[{"name":"ts","dtype":"int64"},{"name":"close","dtype":"float64"},{"name":"volume","dtype":"float64","required":false}]}`)
	r1, err := a.Register(ctx, "ohlcv:demo:BTC/USD:1m", s1)
	if err != nil {
		t.Fatal(err)
	}
	// b has not seen a's record: it catches up on conflict and appends after it.
	r2, err := b.Register(ctx, "ohlcv:demo:ETH/USD:1m", s2)
	if err != nil {
		t.Fatal(err)
	}
	r3, err := b.Register(ctx, "ohlcv:demo:SOL/USD:1m", s1)
	if err != nil {
		t.Fatal(err)
	}
	if r1.ID != 1 || r2.ID != 2 || r3.ID != 1 {
		t.Errorf("ids %d %d %d, want 1 2 1", r1.ID, r2.ID, r3.ID)
	}
	subjects, err := a.Subjects(ctx)
	if err != nil || len(subjects) != 3 {
		t.Errorf("a.Subjects = %q, %v", subjects, err)
	}
	if n, err := a.VerifyAudit(ctx); err != nil || n != 3 {
		t.Errorf("VerifyAudit = %d, %v", n, err)
	}
	for _, r := range []*schemaregistry.Registry{a, b} {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}
