package reportlog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/grid"
)

const node = "ohlcv:binance:BTC/USDT:1m"

var ctx = context.Background()

func rep(counts map[string]int) conformance.Report {
	r := conformance.Empty()
	for f, n := range counts {
		r.FlagsCounts[f] = n
		r.Samples[f] = []int64{60}
	}
	return r
}

// rec is record number seq of the test series; seq is kept in Range.Start.
func rec(seq int64, counts map[string]int) Record {
	return Record{NodeID: node, Interval: 60, Range: grid.R(seq, seq+60), Report: rep(counts)}
}

func mustAppend(t *testing.T, l *Log, r Record) Record {
	t.Helper()
	got, err := l.Append(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func seqs(rs []Record) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.Range.Start)
	}
	return out
}

func TestAppendListRoundTrip(t *testing.T) {
	clk := clock.NewFake(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	l, err := OpenWith(t.TempDir(), Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	var stored []Record
	for i := range int64(3) {
		stored = append(stored, mustAppend(t, l, rec(i, map[string]int{conformance.Gap: int(i + 1)})))
		clk.Advance(time.Minute)
	}
	if !stored[1].Time.Equal(time.Date(2024, 1, 1, 0, 1, 0, 0, time.UTC)) {
		t.Fatalf("time = %v, want the clock's", stored[1].Time)
	}
	got, err := l.List(node, 60, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqs(got), []int64{2, 1, 0}) {
		t.Fatalf("List = %v, want newest first", seqs(got))
	}
	for i, r := range got {
		want := stored[2-i]
		if !r.Time.Equal(want.Time) {
			t.Fatalf("record %d time %v, want %v", i, r.Time, want.Time)
		}
		r.Time = want.Time
		if !reflect.DeepEqual(r, want) {
			t.Fatalf("record %d = %+v, want %+v", i, r, want)
		}
	}
	if got, _ := l.List(node, 60, 2); !slices.Equal(seqs(got), []int64{2, 1}) {
		t.Fatalf("List limit 2 = %v", seqs(got))
	}
	if got, err := l.List(node, 300, 0); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("other interval: %v, %v; want an empty list", got, err)
	}
}

func TestDigest(t *testing.T) {
	l, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		counts map[string]int
		want   string
	}{
		{map[string]int{"gap": 1}, `{"new_flags":["gap"],"increased":{}}`},
		{map[string]int{"gap": 4, "non_finite": 2}, `{"new_flags":["non_finite"],"increased":{"gap":{"from":1,"to":4}}}`},
		{map[string]int{"gap": 2, "non_finite": 2}, `{"new_flags":[],"increased":{}}`},
		{map[string]int{"gap": 3}, `{"new_flags":[],"increased":{"gap":{"from":2,"to":3}}}`},
		{map[string]int{}, `{"new_flags":[],"increased":{}}`},
		{map[string]int{"non_finite": 1}, `{"new_flags":["non_finite"],"increased":{}}`},
	}
	for i, s := range steps {
		r := mustAppend(t, l, rec(int64(i), s.counts))
		b, _ := json.Marshal(r.Digest)
		if string(b) != s.want {
			t.Errorf("step %d: digest %s, want %s", i, b, s.want)
		}
		if r.Digest.Regressed() != (s.want != `{"new_flags":[],"increased":{}}`) {
			t.Errorf("step %d: Regressed() = %v", i, r.Digest.Regressed())
		}
	}
	// The stored digests are the returned ones.
	got, _ := l.List(node, 60, 0)
	b, _ := json.Marshal(got[1].Digest)
	if string(b) != steps[4].want {
		t.Fatalf("stored digest %s", b)
	}
}

func TestRecordJSONShape(t *testing.T) {
	l, _ := Open(t.TempDir())
	r := Record{NodeID: node, Interval: 60, Time: time.Unix(0, 0).UTC()} // a nil report
	if _, err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, FileName(node, 60)))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"time":"1970-01-01T00:00:00Z","node_id":"ohlcv:binance:BTC/USDT:1m","interval":60,"range":{"start":0,"end":0},` +
		`"report":{"warnings":[],"flags_counts":{},"samples":{}},"digest":{"new_flags":[],"increased":{}}}` + "\n"
	if string(b) != want {
		t.Fatalf("line\n%s\nwant\n%s", b, want)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	line, _ := json.Marshal(Record{Time: time.Now().UTC(), NodeID: node, Interval: 60, Range: grid.R(10, 70), Report: rep(map[string]int{"gap": 10}), Digest: Digest{NewFlags: []string{}, Increased: map[string]Change{"gap": {From: 10, To: 11}}}})
	max := int64(len(line)+1)*3 + 10 // three records per file
	l, err := OpenWith(dir, Options{MaxFileBytes: max, Rotated: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(20) {
		mustAppend(t, l, rec(10+i, map[string]int{"gap": 10 + int(i)}))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%d files, want the current one and 2 rotated", len(entries))
	}
	for _, e := range entries {
		info, _ := e.Info()
		if info.Size() > max {
			t.Errorf("%s is %d bytes, over %d", e.Name(), info.Size(), max)
		}
	}
	got, err := l.List(node, 60, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 20 records (10…29), 3 per file: the current file holds 28 and 29, the two
	// rotated files 25…27 and 22…24.
	want := []int64{29, 28, 27, 26, 25, 24, 23, 22}
	if !slices.Equal(seqs(got), want) {
		t.Fatalf("List after rotation = %v, want %v", seqs(got), want)
	}
	// The digest chain runs across rotations: 28, first in its file, is compared to 27.
	if d := got[1].Digest.Increased["gap"]; d != (Change{From: 27, To: 28}) {
		t.Fatalf("digest across a rotation = %+v", got[1].Digest)
	}
}

func TestOversizedRecordGetsItsOwnFile(t *testing.T) {
	l, _ := OpenWith(t.TempDir(), Options{MaxFileBytes: 10, Rotated: 1})
	mustAppend(t, l, rec(1, nil))
	mustAppend(t, l, rec(2, nil))
	if got, _ := l.List(node, 60, 0); !slices.Equal(seqs(got), []int64{2, 1}) {
		t.Fatalf("List = %v", seqs(got))
	}
}

func TestReopenKeepsDigestChain(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	mustAppend(t, l, rec(0, map[string]int{"gap": 2}))

	l2, _ := Open(dir)
	if r := mustAppend(t, l2, rec(1, map[string]int{"gap": 5})); r.Digest.Increased["gap"] != (Change{From: 2, To: 5}) || len(r.Digest.NewFlags) != 0 {
		t.Fatalf("digest after reopen = %+v, want gap 2→5", r.Digest)
	}

	// A crash right after a rotation leaves no current file: the chain continues from
	// the newest rotated one.
	base := filepath.Join(dir, FileName(node, 60))
	if err := os.Rename(base, base+".1"); err != nil {
		t.Fatal(err)
	}
	l3, _ := Open(dir)
	if r := mustAppend(t, l3, rec(2, map[string]int{"gap": 6})); r.Digest.Increased["gap"] != (Change{From: 5, To: 6}) {
		t.Fatalf("digest after a rotation crash = %+v, want gap 5→6", r.Digest)
	}
}

func TestTornLineIsRepaired(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	mustAppend(t, l, rec(0, map[string]int{"gap": 1}))
	base := filepath.Join(dir, FileName(node, 60))
	f, _ := os.OpenFile(base, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2024-01-01T00:00:00Z","node_id":"ohl`) // a crash mid-append
	f.Close()

	l2, _ := Open(dir)
	if r := mustAppend(t, l2, rec(1, map[string]int{"gap": 3})); r.Digest.Increased["gap"] != (Change{From: 1, To: 3}) {
		t.Fatalf("digest = %+v", r.Digest)
	}
	b, _ := os.ReadFile(base)
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("invalid line %q", line)
		}
	}
	if got, _ := l2.List(node, 60, 0); !slices.Equal(seqs(got), []int64{1, 0}) {
		t.Fatalf("List = %v", seqs(got))
	}
}

func TestCorruptLastLineIsSkipped(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir)
	mustAppend(t, l, rec(0, map[string]int{"gap": 1}))
	base := filepath.Join(dir, FileName(node, 60))
	f, _ := os.OpenFile(base, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("not json\n")
	f.Close()
	l2, _ := Open(dir)
	if r := mustAppend(t, l2, rec(1, map[string]int{"gap": 2})); r.Digest.Increased["gap"] != (Change{From: 1, To: 2}) {
		t.Fatalf("digest = %+v", r.Digest)
	}
	if got, _ := l2.List(node, 60, 0); !slices.Equal(seqs(got), []int64{1, 0}) {
		t.Fatalf("List = %v", seqs(got))
	}
}

func TestHostileNodeIDs(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "reports")
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{
		"../../etc/passwd", "..", ".", "/", "/abs/path", `a\b\..\c`, `C:\x`, "a\x00b", "CON", "nul.txt",
		"%2F", "_", "a_b", "a%5Fb", "ünïcode/ids", strings.Repeat("x", 5000), strings.Repeat("%", 300),
		node, strings.ToLower(node), "ohlcv:binance:BTC/USDT:1m ", " ohlcv:binance:BTC/USDT:1m",
	}
	for i, id := range ids {
		r := Record{NodeID: id, Interval: 60, Range: grid.R(int64(i), int64(i)+1), Report: rep(nil)}
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatalf("%q: %v", id, err)
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 || entries[0].Name() != "reports" {
		t.Fatalf("files escaped the report directory: %v", entries)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(ids) {
		t.Fatalf("%d files for %d ids", len(entries), len(ids))
	}
	lower := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !filepath.IsLocal(name) || strings.ContainsAny(name, `/\:*?"<>|`) || strings.Contains(name, "..") || len(name) > 160 {
			t.Errorf("unsafe file name %q", name)
		}
		lower[strings.ToLower(name)] = true // distinct on case-insensitive file systems too
	}
	if len(lower) != len(ids) {
		t.Errorf("names collide when case is ignored")
	}
	for i, id := range ids {
		got, err := l.List(id, 60, 0)
		if err != nil || len(got) != 1 || got[0].NodeID != id || got[0].Range.Start != int64(i) {
			t.Errorf("List(%q) = %+v, %v", id, got, err)
		}
	}
}

func TestInvalidArguments(t *testing.T) {
	l, _ := Open(t.TempDir())
	if _, err := l.Append(ctx, Record{Interval: 60}); err == nil {
		t.Error("empty node id accepted")
	}
	if _, err := l.Append(ctx, Record{NodeID: node}); err == nil {
		t.Error("interval 0 accepted")
	}
	if _, err := l.List(node, -60, 0); err == nil {
		t.Error("negative interval accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := l.Append(cctx, rec(0, nil)); err != context.Canceled {
		t.Errorf("cancelled append: %v", err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	l, err := OpenWith(t.TempDir(), Options{MaxFileBytes: 64 << 10, Rotated: 10})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := node
				if w%2 == 1 {
					id = fmt.Sprintf("trades:demo:X%d:1m", w)
				}
				r := Record{NodeID: id, Interval: 60, Report: rep(map[string]int{"gap": (w*each+i)%7 + 1})}
				if _, err := l.Append(ctx, r); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := l.List(node, 60, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != workers/2*each {
		t.Fatalf("%d records of the shared series, want %d", len(got), workers/2*each)
	}
	// Each stored digest is against the record stored just before it.
	for i := 0; i+1 < len(got); i++ {
		if want := Compare(got[i+1].Report, got[i].Report); !reflect.DeepEqual(got[i].Digest, want) {
			t.Fatalf("record %d digest %+v, want %+v", i, got[i].Digest, want)
		}
	}
}
