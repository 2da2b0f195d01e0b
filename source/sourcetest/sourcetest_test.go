package sourcetest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/sourcetest"
)

// venue is the suite's own reference upstream, called in-process: klines in epoch
// milliseconds with an inclusive end, at most limit a page, the forming bar included
// with its close time in the future, as exchanges' REST APIs serve them. It is enough
// to show that a correct fetcher passes and that each way of getting it wrong fails.
type venue struct {
	up     sourcetest.Upstream
	symbol string
	limit  int
}

type kline struct {
	openMs, closeMs int64
	ohlcv           [5]float64
}

var errUnknownSymbol = errors.New("venue: invalid symbol")

func (v *venue) klines(ctx context.Context, symbol string, startMs, endMs int64) ([]kline, error) {
	if v.up.Stall {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if symbol != v.symbol {
		return nil, errUnknownSymbol
	}
	var out []kline
	b, ivMs := v.up.Bars, v.up.Series.Interval*1000
	for i, ts := range b.TS {
		if ms := ts * 1000; ms >= startMs && ms <= endMs && len(out) < v.limit {
			k := kline{openMs: ms, closeMs: ms + ivMs - 1}
			for c := range k.ohlcv {
				k.ohlcv[c] = b.Cols[c].F64[i]
			}
			out = append(out, k)
		}
	}
	return out, nil
}

// fetcher is a reference Fetcher of venue; broken names one way to get it wrong.
type fetcher struct {
	v      *venue
	now    time.Time
	broken string
}

func (f *fetcher) Fetch(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	if f.broken == "ignoresContext" {
		ctx = context.Background()
		if f.v.up.Stall {
			time.Sleep(6 * time.Second) // past the suite's 5 s
		}
	}
	if f.broken == "leaks" && f.v.up.Stall {
		go func() { select {} }() // a stuck helper left behind
	}
	iv := s.Interval
	a := r.Align(iv)
	out := frame.New(frame.OHLCV, 0)
	if a.Empty() {
		return out, nil
	}
	endMs := a.End*1000 - 1
	if f.broken == "inclusiveEnd" {
		endMs = a.End * 1000
	}
	for startMs := a.Start * 1000; startMs <= endMs; {
		rows, err := f.v.klines(ctx, node.Symbol, startMs, endMs)
		switch {
		case errors.Is(err, errUnknownSymbol) && f.broken != "transientUnknown":
			return nil, seamless.Permanent(err)
		case err != nil:
			return nil, fmt.Errorf("page from %d: %w", startMs, err)
		}
		if len(rows) == 0 || (f.broken == "dropsShortPage" && len(rows) < f.v.limit) {
			break
		}
		for _, k := range rows {
			if k.closeMs >= f.now.UnixMilli() && f.broken != "keepsForming" {
				return out, nil
			}
			ts := k.openMs / 1000
			switch f.broken {
			case "closeTime":
				ts = k.closeMs / 1000
			case "int32":
				ts = int64(int32(ts))
			}
			out.TS = append(out.TS, ts)
			for c, x := range k.ohlcv {
				out.Cols[c].F64 = append(out.Cols[c].F64, x)
			}
		}
		startMs = rows[len(rows)-1].openMs + iv*1000
		if f.broken == "repeatsPageEdge" && len(rows) == f.v.limit {
			startMs -= iv * 1000 // the next page starts with this one's last bar
		}
	}
	return out, nil
}

func harness(broken string) sourcetest.Harness {
	const limit = 7 // small pages keep the many-page ranges short
	return sourcetest.Harness{
		Source: "ref", Symbol: "BTC/USDT", UnknownSymbol: "NOPE/USDT", PageLimit: limit, InProcess: true,
		Start: func(t *testing.T, up sourcetest.Upstream) seamless.Fetcher {
			return &fetcher{v: &venue{up: up, symbol: "BTC/USDT", limit: limit}, now: up.Now, broken: broken}
		},
	}
}

func TestReferenceFetcher(t *testing.T) {
	sourcetest.Run(t, harness(""))
}

// brokenEnv names the broken fetcher TestBrokenFetcher runs; unset, it is skipped.
const brokenEnv = "SOURCETEST_BROKEN"

// TestBrokenFetcher runs the suite on one broken fetcher. TestSuiteCatches runs it in a
// child process per flaw, since a failing suite must fail its test.
func TestBrokenFetcher(t *testing.T) {
	broken := os.Getenv(brokenEnv)
	if broken == "" {
		t.Skip("run by TestSuiteCatches")
	}
	sourcetest.Run(t, harness(broken))
}

// TestSuiteCatches: each flaw of the reference fetcher fails the clause meant to catch
// it.
func TestSuiteCatches(t *testing.T) {
	for _, tc := range []struct{ broken, clause string }{
		{"repeatsPageEdge", "Pages/ManyPages"},
		{"dropsShortPage", "Pages/ManyPages"},
		{"inclusiveEnd", "Pages/OnePage"},
		{"keepsForming", "ClosedOnly/NowMidBar"},
		{"ignoresContext", "Context/CancelledDuringStalledRequest"},
		{"leaks", "Context/CancelledDuringStalledRequest"},
		{"transientUnknown", "UnknownSymbol"},
		{"closeTime", "Timestamps"},
		{"int32", "Timestamps/1m@2147481840"},
	} {
		t.Run(tc.broken, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenFetcher$", "-test.count=1", "-test.v", "-test.timeout=2m")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.broken)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a fetcher that is broken (%s):\n%s", tc.broken, out)
			}
			if want := "--- FAIL: TestBrokenFetcher/" + tc.clause; !strings.Contains(string(out), want) {
				t.Fatalf("the suite failed, but not with %q:\n%s", want, out)
			}
		})
	}
}
