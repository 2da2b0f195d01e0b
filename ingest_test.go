package seamless_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
)

// ingestLog records OnIngest events.
type ingestLog struct {
	mu     sync.Mutex
	events []seamless.Ingested
}

func (l *ingestLog) add(ev seamless.Ingested) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

func (l *ingestLog) origins() []seamless.Origin {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []seamless.Origin
	for _, ev := range l.events {
		out = append(out, ev.Origin)
	}
	return out
}

// TestLiveWritesAreNormalised: live bars take the ingest step like backfilled ones:
// stored sorted and unique (the later duplicate kept), their findings archived.
func TestLiveWritesAreNormalised(t *testing.T) {
	sink := &recordingSink{}
	e := newEnv(t, seamless.Config{Reports: sink})
	ctx := context.Background()
	s := seamless.Series{NodeID: node, Interval: iv}
	r := grid.R(day(1), day(1)+3*iv)
	messy := demo.Bars(node, iv, r).Take([]int{1, 0, 2, 2})
	messy.Col("volume").F64[3] = 777
	if err := e.p.IngestLive(ctx, s, r, messy); err != nil {
		t.Fatal(err)
	}
	got, _ := e.store.Read(ctx, s, r)
	if got.Len() != 3 || !got.IsSortedUnique() || got.Col("volume").F64[2] != 777 {
		t.Fatalf("stored %d bars, sorted+unique %v, volumes %v", got.Len(), got.IsSortedUnique(), got.Col("volume").F64)
	}
	if sink.count() != 1 {
		t.Fatalf("%d reports archived, want 1 (the duplicate)", sink.count())
	}
	if cov, _ := e.store.Coverage(ctx, s); !cov.Equal(grid.NewSet(r)) {
		t.Fatalf("coverage %v, want %v", cov, r)
	}
}

// TestLiveNeverOverwritesCovered: a live write carries no lease (token 0), so it must
// not replace bars a fenced backfill or an import wrote: only its uncovered part is
// stored, and answers (cached or not) keep serving the stored history.
func TestLiveNeverOverwritesCovered(t *testing.T) {
	e := newEnv(t, seamless.Config{Backfill: seamless.BackfillConfig{WindowBars: 60}}) // a chunk is an hour
	ctx := context.Background()
	s := seamless.Series{NodeID: node, Interval: iv}
	hour := grid.R(day(1), day(1)+3600)
	res, err := e.p.Fetch(ctx, req(hour.Start, hour.End, seamless.Seamless)) // backfilled under leases, then cached
	if err != nil {
		t.Fatal(err)
	}
	want := res.Frame.Col("close").F64[0]

	// A live feed replays the hour's first two bars with other values, and the next one.
	lr := grid.R(hour.Start, hour.Start+2*iv)
	bad := demo.Bars(node, iv, lr)
	for i := range bad.Col("close").F64 {
		bad.Col("close").F64[i] = 1e6
		bad.Col("high").F64[i] = 1e6
	}
	if err := e.p.IngestLive(ctx, s, lr, bad); err != nil {
		t.Fatal(err)
	}
	next := grid.R(hour.End, hour.End+iv)
	if err := e.p.IngestLive(ctx, s, grid.R(hour.End-iv, next.End), demo.Bars(node, iv, grid.R(hour.End-iv, next.End))); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.store.Read(ctx, s, lr)
	if got := stored.Col("close").F64[0]; got != want {
		t.Fatalf("live write replaced a backfilled bar: close %v, want %v", got, want)
	}
	for _, strategy := range []seamless.Strategy{seamless.FailFast, seamless.Seamless} { // the cached answer, then a read
		res, err := e.p.Fetch(ctx, req(hour.Start, next.End, strategy))
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Frame.Col("close").F64[0]; got != want || res.Frame.Len() != 61 {
			t.Fatalf("%s: %d bars, first close %v, want 61 and %v", strategy, res.Frame.Len(), got, want)
		}
	}
	if cov, _ := e.store.Coverage(ctx, s); !cov.Equal(grid.NewSet(grid.R(hour.Start, next.End))) {
		t.Fatalf("coverage %v", cov)
	}
	if calls := len(e.fetch.Calls()); calls != 1 {
		t.Fatalf("%d upstream calls, want 1 (the live bar is stored)", calls)
	}
}

// TestIngestLiveInvalidatesCache: a live write drops the cached chunks it touches, so an
// answer cached before it never hides it. (Only a chunk fully covered is cached, so
// what a live write can add to one is nothing: a covered chunk is left as it is; this
// checks the chunk being completed by live bars is served whole.)
func TestIngestLiveInvalidatesCache(t *testing.T) {
	e := newEnv(t, seamless.Config{Backfill: seamless.BackfillConfig{WindowBars: 10}})
	ctx := context.Background()
	s := seamless.Series{NodeID: node, Interval: iv}
	chunk := grid.R(grid.FloorAlign(day(1), 600), grid.FloorAlign(day(1), 600)+600)
	half := grid.R(chunk.Start, chunk.Start+300)
	if err := e.p.Import(ctx, node, iv, half, demo.Bars(node, iv, half)); err != nil {
		t.Fatal(err)
	}
	res, err := e.p.Fetch(ctx, seamless.Request{NodeID: node, Interval: iv, Start: chunk.Start, End: chunk.End, Strategy: seamless.FailFast, PartialOK: true})
	if err != nil || res.Frame.Len() != 5 {
		t.Fatalf("%v, %d bars", err, res.Frame.Len())
	}
	rest := grid.R(half.End, chunk.End)
	if err := e.p.IngestLive(ctx, s, rest, demo.Bars(node, iv, rest)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // read from storage and cached, then from the cache
		res, err = e.p.Fetch(ctx, req(chunk.Start, chunk.End, seamless.FailFast))
		if err != nil || res.Frame.Len() != 10 {
			t.Fatalf("%v, %d bars, want 10", err, res.Frame.Len())
		}
	}
}

// TestOnIngestSeesEveryWrite: backfill, import and live writes all reach the listeners,
// with their origin and the backfill's fencing token; a stopped listener hears nothing.
func TestOnIngestSeesEveryWrite(t *testing.T) {
	e := newEnv(t, seamless.Config{Backfill: seamless.BackfillConfig{WindowBars: 60}})
	ctx := context.Background()
	log := &ingestLog{}
	stop := e.p.OnIngest(log.add)
	hour := grid.R(day(2), day(2)+3600)
	if _, err := e.p.Fetch(ctx, req(hour.Start, hour.End, seamless.Seamless)); err != nil {
		t.Fatal(err)
	}
	imp := grid.R(day(3), day(3)+600)
	if err := e.p.Import(ctx, node, iv, imp, demo.Bars(node, iv, imp)); err != nil {
		t.Fatal(err)
	}
	lv := grid.R(day(1), day(1)+iv)
	if err := e.p.IngestLive(ctx, seamless.Series{NodeID: node, Interval: iv}, lv, demo.Bars(node, iv, lv)); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := e.p.IngestLive(ctx, seamless.Series{NodeID: node, Interval: iv}, grid.R(lv.End, lv.End+iv), demo.Bars(node, iv, grid.R(lv.End, lv.End+iv))); err != nil {
		t.Fatal(err)
	}
	if got, want := log.origins(), []seamless.Origin{seamless.OriginBackfill, seamless.OriginImport, seamless.OriginLive}; !slices.Equal(got, want) {
		t.Fatalf("origins %v, want %v", got, want)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	bf := log.events[0]
	if bf.Token == 0 || bf.Range != hour || bf.Frame.Len() != 60 {
		t.Fatalf("backfill event: token %d, range %v, %d bars", bf.Token, bf.Range, bf.Frame.Len())
	}
	if lvEv := log.events[2]; lvEv.Token != 0 || lvEv.Range != lv || lvEv.Frame.Len() != 1 {
		t.Fatalf("live event: token %d, range %v, %d bars", lvEv.Token, lvEv.Range, lvEv.Frame.Len())
	}
}

// TestIngestLiveBadInput: malformed live writes are typed bad requests and write nothing.
func TestIngestLiveBadInput(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	s := seamless.Series{NodeID: node, Interval: iv}
	r := grid.R(day(1), day(1)+2*iv)
	bars := demo.Bars(node, iv, r)
	offGrid := bars.Clone()
	offGrid.TS[1]++
	for name, tc := range map[string]struct {
		s seamless.Series
		r grid.Range
	}{
		"empty range":      {s, grid.Range{}},
		"bars outside":     {s, grid.R(r.Start, r.Start+iv)},
		"interval":         {seamless.Series{NodeID: node, Interval: 300}, r},
		"malformed node":   {seamless.Series{NodeID: "no-colons", Interval: iv}, r},
		"off grid (below)": {s, r},
	} {
		f := bars
		if name == "off grid (below)" {
			f = offGrid
		}
		var re *seamless.RequestError
		if err := e.p.IngestLive(ctx, tc.s, tc.r, f); !errors.As(err, &re) {
			t.Errorf("%s: %v, want a *RequestError", name, err)
		}
	}
	if infos, _ := e.store.ListSeries(ctx); len(infos) != 0 {
		t.Fatalf("bad input wrote %v", infos)
	}
	e.p.Close()
	if err := e.p.IngestLive(ctx, s, r, bars); !errors.Is(err, seamless.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// TestOnIngestConcurrent: listeners come and go while writes notify (run with -race),
// and a listener may stop itself from inside its callback.
func TestOnIngestConcurrent(t *testing.T) {
	e := newEnv(t, seamless.Config{})
	ctx := context.Background()
	s := seamless.Series{NodeID: node, Interval: iv}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				stop := e.p.OnIngest(func(seamless.Ingested) {})
				r := grid.R(day(1)+int64(g*20+i)*iv, day(1)+int64(g*20+i+1)*iv)
				if err := e.p.IngestLive(ctx, s, r, demo.Bars(node, iv, r)); err != nil {
					t.Error(err)
				}
				stop()
			}
		}()
	}
	wg.Wait()
	calls := 0
	var stop func()
	stop = e.p.OnIngest(func(seamless.Ingested) { calls++; stop() })
	for i := range 2 {
		r := grid.R(day(2)+int64(i)*iv, day(2)+int64(i+1)*iv)
		if err := e.p.IngestLive(ctx, s, r, demo.Bars(node, iv, r)); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Fatalf("a listener that stopped itself was called %d times, want 1", calls)
	}
}
