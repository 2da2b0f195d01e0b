package conformance_test

import (
	"strings"
	"testing"

	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/internal/csvio"
)

// FuzzImportCSV feeds arbitrary CSV through the import path (csvio.ReadText, then the
// pipeline): never a panic, and whatever is accepted is sorted, unique, on the grid and
// inside the range the import would cover.
func FuzzImportCSV(f *testing.F) {
	f.Add("ts,open,high,low,close,volume\n60,1,2,0.5,1.5,10\n0,1,2,0.5,1.5,10\n60,1,2,0.5,1.5,11\n")
	f.Add("ts,open,high,low,close,volume\n1704067200000,1,2,0.5,nan,10\n1704067260001,1,1,2,1,-1\n")
	f.Add("ts,open,high,low,close,volume\n2024-01-01T01:00:00+01:00,1,2,0.5,1.5,10\nnot-a-time,1,2,0.5,1.5,10\n")
	f.Add("ts,close\n1,2\n")
	f.Fuzz(func(t *testing.T, in string) {
		opts, _ := conformance.OptionsFor("ohlcv", 60)
		raw, tsText, err := csvio.ReadText(strings.NewReader(in), opts.Schema)
		if err != nil {
			return
		}
		out, rep, err := conformance.Run(conformance.Input{Frame: raw, TSText: tsText}, opts)
		if err != nil {
			t.Fatalf("pipeline rejected a frame csvio produced: %v", err)
		}
		if err := out.Validate(); err != nil {
			t.Fatal(err)
		}
		for i, ts := range out.TS {
			if ts%60 != 0 || (i > 0 && ts <= out.TS[i-1]) {
				t.Fatalf("output ts %v not sorted, unique and aligned", out.TS)
			}
		}
		for flag, n := range rep.FlagsCounts {
			if n <= 0 {
				t.Fatalf("flag %s count %d", flag, n)
			}
		}
		if out.Len() > 0 {
			r, err := csvio.CoveredRange(out, 60)
			if err != nil || !r.Contains(out.TS[0]) || !r.Contains(out.TS[out.Len()-1]) {
				t.Fatalf("covered range %v of accepted output: %v", r, err)
			}
		}
	})
}
