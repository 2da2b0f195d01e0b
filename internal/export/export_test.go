package export_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/fingerprint"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/export"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

const node = "ohlcv:demo:BTC/USD:1h"

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

func provider(t *testing.T) *seamless.Provider {
	t.Helper()
	src, err := demo.New(demo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src},
		Clock: clock.NewFake(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); st.Close() })
	return p
}

type row struct {
	TS     int64   `parquet:"ts"`
	Open   float64 `parquet:"open"`
	High   float64 `parquet:"high"`
	Low    float64 `parquet:"low"`
	Close  float64 `parquet:"close"`
	Volume float64 `parquet:"volume"`
}

// TestExportLayoutAndRoundTrip: a range from noon of one day to the start of the
// fourth is three partitions node=<escaped>/date=…/part-0.parquet; parquet-go reads
// each file back to exactly the bars a fetch of that day returns, with the footer's
// fingerprint equal to the fingerprint of those rows and its coverage the day's.
func TestExportLayoutAndRoundTrip(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ds")
	req := seamless.Request{NodeID: node, Interval: 3600, Start: t0 + 12*3600, End: t0 + 3*86400}
	var days []int
	sum, err := export.Run(ctx, p, export.Options{Request: req, Dir: dir, Progress: func(pr export.Progress) { days = append(days, pr.DaysDone) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 3 || sum.Bars != 12+24+24 || sum.Bytes <= 0 || !sum.Coverage.Equal(grid.NewSet(grid.R(req.Start, req.End))) {
		t.Fatalf("summary %+v", sum)
	}
	if len(days) != 3 || days[2] != 3 {
		t.Errorf("progress %v", days)
	}
	var files []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	sort.Strings(files)
	want := []string{
		"node=ohlcv%3Ademo%3ABTC%2FUSD%3A1h/date=2024-01-01/part-0.parquet",
		"node=ohlcv%3Ademo%3ABTC%2FUSD%3A1h/date=2024-01-02/part-0.parquet",
		"node=ohlcv%3Ademo%3ABTC%2FUSD%3A1h/date=2024-01-03/part-0.parquet",
	}
	if strings.Join(files, "\n") != strings.Join(want, "\n") {
		t.Fatalf("files:\n%s", strings.Join(files, "\n"))
	}
	for i, f := range want {
		dayStart := t0 + int64(i)*86400
		r := grid.R(max(dayStart, req.Start), dayStart+86400)
		ref, err := p.Fetch(ctx, seamless.Request{NodeID: node, Interval: 3600, Start: r.Start, End: r.End, Strategy: seamless.FailFast})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(strings.NewReader(string(data)), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if c := pf.Metadata().RowGroups[0].Columns[0].MetaData.Codec; c != format.Zstd {
			t.Errorf("%s: codec %v", f, c)
		}
		rows, err := parquet.Read[row](strings.NewReader(string(data)), int64(len(data)))
		if err != nil || len(rows) != ref.Frame.Len() {
			t.Fatalf("%s: %d rows (want %d): %v", f, len(rows), ref.Frame.Len(), err)
		}
		for k, rw := range rows {
			if rw.TS != ref.Frame.TS[k] || rw.Close != ref.Frame.Col("close").F64[k] || rw.Volume != ref.Frame.Col("volume").F64[k] {
				t.Fatalf("%s row %d: %+v", f, k, rw)
			}
		}
		fp, _ := pf.Lookup(export.KeyFingerprint)
		b := ref.Metadata.CoverageBounds
		if wantFP := fingerprint.Dataset(ref.Frame, fingerprint.Meta{NodeID: node, Interval: 3600, CoverageBounds: b}); fp != wantFP || !strings.HasPrefix(fp, "sha256:") {
			t.Errorf("%s: fingerprint %q, want %q", f, fp, wantFP)
		}
		cov, _ := pf.Lookup(export.KeyCoverage)
		var got [][2]int64
		if json.Unmarshal([]byte(cov), &got) != nil || len(got) != 1 || got[0] != [2]int64{r.Start, r.End} {
			t.Errorf("%s: coverage %q, want [[%d,%d]]", f, cov, r.Start, r.End)
		}
		var md seamless.Metadata
		raw, _ := pf.Lookup(export.KeyMetadata)
		if json.Unmarshal([]byte(raw), &md) != nil || md.Rows != len(rows) || md.DatasetFingerprint != fp {
			t.Errorf("%s: metadata %s", f, raw)
		}
		if n, _ := pf.Lookup(export.KeyNodeID); n != node {
			t.Errorf("%s: node %q", f, n)
		}
	}
}

// TestExportRefusesANonEmptyDirectory unless Overwrite, which replaces the exported
// days' files and keeps the rest.
func TestExportRefusesANonEmptyDirectory(t *testing.T) {
	p := provider(t)
	ctx := context.Background()
	dir := t.TempDir()
	other := filepath.Join(dir, "README")
	if err := os.WriteFile(other, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	req := seamless.Request{NodeID: node, Interval: 3600, Start: t0, End: t0 + 86400}
	_, err := export.Run(ctx, p, export.Options{Request: req, Dir: dir})
	var re *seamless.RequestError
	if !errors.As(err, &re) || re.Field != "output" {
		t.Fatalf("non-empty dir: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("refused export wrote %d entries", len(entries))
	}
	for range 2 { // twice: the second replaces the first's file
		if sum, err := export.Run(ctx, p, export.Options{Request: req, Dir: dir, Overwrite: true}); err != nil || sum.Files != 1 {
			t.Fatalf("overwrite: %+v %v", sum, err)
		}
	}
	if b, err := os.ReadFile(other); err != nil || string(b) != "mine" {
		t.Errorf("overwrite touched another file: %q %v", b, err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "node=*", "date=*", "*"))
	if len(matches) != 1 || filepath.Base(matches[0]) != export.FileName {
		t.Errorf("files after two overwrites: %v", matches)
	}
}

// TestExportErrors: errors of the fetch reach the caller typed; no partition is left
// for a failed day.
func TestExportErrors(t *testing.T) {
	p := provider(t)
	dir := filepath.Join(t.TempDir(), "ds")
	req := seamless.Request{NodeID: node, Interval: 3600, Start: t0, End: t0 + 86400, Strategy: seamless.FailFast}
	if _, err := export.Run(context.Background(), p, export.Options{Request: req, Dir: dir}); !errors.Is(err, seamless.ErrNotCovered) {
		t.Fatalf("fail_fast over nothing: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed export created %s", dir)
	}
	req.Start = req.End
	var re *seamless.RequestError
	if _, err := export.Run(context.Background(), p, export.Options{Request: req, Dir: dir}); !errors.As(err, &re) {
		t.Errorf("empty range: %v", err)
	}
}
