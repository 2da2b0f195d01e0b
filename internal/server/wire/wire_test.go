package wire

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
)

func TestRequestQueryRoundTrip(t *testing.T) {
	for _, req := range []seamless.Request{
		{NodeID: "ohlcv:binance:BTC/USDT:1m", Interval: 60, Start: 1, End: 7200},
		{NodeID: "n:s:x:1h", Interval: 3600, Start: -3600, End: 0, Strategy: seamless.PartialFill, PartialOK: true,
			SLA:         &seamless.SLAPolicy{MaxWaitStorageMS: 5, MaxWaitBackfillMS: 6, MaxWaitLiveMS: 7, TotalDeadlineMS: 8, MaxSyncGapBars: 9, OnViolation: seamless.ViolationHold},
			MinCoverage: 0.5, MaxLagSeconds: 30, WorldID: "world 1", ExecutionDomain: "backtest", AsOf: time.Unix(1700000000, 0).UTC()},
		{NodeID: "a:b:c:1m", Interval: 60, Start: 0, End: 60, SLA: &seamless.SLAPolicy{}},
	} {
		got, err := DecodeRequest(EncodeRequest(req))
		if err != nil || !reflect.DeepEqual(got, req) {
			t.Errorf("round trip of %+v: %+v %v", req, got, err)
		}
	}
}

func TestDecodeRequestPresetAndOverrides(t *testing.T) {
	q := url.Values{"node_id": {"n:s:x:1m"}, "interval": {"60"}, "start": {"2024-01-01T00:00:00Z"}, "end": {"1704070800"},
		"sla": {"baseline"}, "total_deadline_ms": {"1234"}, "format": {"csv"}}
	req, err := DecodeRequest(q, "format")
	if err != nil {
		t.Fatal(err)
	}
	preset, _ := seamless.SLAPreset("baseline")
	preset.TotalDeadlineMS = 1234
	if req.Start != 1704067200 || req.SLA == nil || *req.SLA != preset {
		t.Fatalf("%+v %+v", req, req.SLA)
	}
	if again, _ := seamless.SLAPreset("baseline"); again.TotalDeadlineMS == 1234 {
		t.Fatal("override changed the shared preset")
	}
	q.Add("interval", "60")
	var re *seamless.RequestError
	if _, err := DecodeRequest(q, "format"); !errors.As(err, &re) || re.Field != "interval" {
		t.Fatalf("repeated parameter: %v", err)
	}
}

func TestErrorRoundTrip(t *testing.T) {
	s := seamless.Series{NodeID: "ohlcv:demo:X:1m", Interval: 60}
	for _, err := range []error{
		&seamless.RequestError{Field: "start", Message: "bad"},
		&seamless.SourceError{NodeID: s.NodeID, Source: "demo"},
		&seamless.NotCoveredError{Series: s, Missing: grid.NewSet(grid.R(0, 60), grid.R(120, 180))},
		&seamless.UpstreamError{Series: s, Chunk: grid.R(0, 54000), Attempts: 6, Err: errors.New("boom")},
		&seamless.SeamlessSLAExceeded{NodeID: s.NodeID, SLAViolation: seamless.SLAViolation{Phase: "total", ElapsedMS: 12.5, BudgetMS: 10}},
		&seamless.SeamlessDomainPolicyError{Domain: seamless.DomainBacktest, NodeID: s.NodeID, Reason: "as_of required"},
	} {
		b := EncodeError(err)
		got := b.LibraryErr()
		if !reflect.DeepEqual(got, err) || got.Error() != err.Error() {
			t.Errorf("%T: got %#v", err, got)
		}
		if Status(b.Code) < 400 || Status(b.Code) == http.StatusInternalServerError {
			t.Errorf("%s: status %d", b.Code, Status(b.Code))
		}
	}
	if b := ReadError(http.StatusBadGateway, strings.NewReader("<html>proxy</html>")); b.Code != "internal" || b.LibraryErr() != nil {
		t.Errorf("non-JSON body: %+v", b)
	}
}

// FuzzDecodeRequest: any query string either is refused with a *seamless.RequestError
// or decodes to a request that encodes and decodes back to the same request (up to
// where min_coverage and max_lag_seconds sit: the SLA policy's and the per-request
// overrides share one query parameter, and the effective value is the same); nothing
// panics.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		"node_id=ohlcv:binance:BTC/USDT:1m&interval=60&start=1&end=7200",
		"node_id=a:b:c:1m&interval=60&start=2024-01-01T00:00:00Z&end=2024-01-02T00:00:00Z&strategy=partial_fill&partial_ok=true",
		"node_id=x&interval=-1&start=9223372036854775807&end=-9223372036854775808",
		"node_id=n&interval=60&start=0&end=60&sla=baseline&max_wait_storage_ms=5&on_violation=hold&min_coverage=0.5&max_lag_seconds=30",
		"node_id=n&interval=60&start=0&end=60&as_of=2024-01-01T00:00:00Z&execution_domain=backtest&world_id=w",
		"node_id=n&node_id=m&interval=60",
		"interval=1e3&start=%00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := DecodeRequest(q)
		if err != nil {
			var re *seamless.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("%q: %T %v, want a RequestError", raw, err, err)
			}
			return
		}
		// effective folds the overrides into the policy, as the provider does.
		effective := func(r seamless.Request) seamless.Request {
			if r.SLA != nil {
				p := *r.SLA
				if r.MinCoverage > 0 {
					p.MinCoverage = r.MinCoverage
				}
				if r.MaxLagSeconds > 0 {
					p.MaxLagSeconds = r.MaxLagSeconds
				}
				r.SLA, r.MinCoverage, r.MaxLagSeconds = &p, 0, 0
			}
			return r
		}
		again, err := DecodeRequest(EncodeRequest(req))
		if err != nil || !reflect.DeepEqual(effective(again), effective(req)) {
			t.Fatalf("%q: decoded %+v, which round-trips to %+v (%v)", raw, req, again, err)
		}
	})
}
