package seamless_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
)

// seriesRecorder serves demo bars and records the series it was asked for.
type seriesRecorder struct {
	mu     sync.Mutex
	series []seamless.Series
}

func (s *seriesRecorder) Fetch(_ context.Context, ser seamless.Series, r grid.Range) (*frame.Frame, error) {
	s.mu.Lock()
	s.series = append(s.series, ser)
	s.mu.Unlock()
	return demo.Bars(ser.NodeID, ser.Interval, r), nil
}

// TestAliasedNodeIDs: a node id outside the standard grammar is served when the router
// maps it to a standard one (SPEC §1). The alias names the series in storage and
// metadata; upstream is asked for the standard id; unknown or badly routed aliases are
// bad requests.
func TestAliasedNodeIDs(t *testing.T) {
	src := &seriesRecorder{}
	router := seamless.Aliases{Sources: seamless.Sources{"demo": src},
		IDs: map[string]string{"btc-1m": node, "broken": "not a node id"}}
	e := newEnv(t, seamless.Config{Sources: router})
	ctx := context.Background()
	res, err := e.p.Fetch(ctx, seamless.Request{NodeID: "btc-1m", Interval: iv, Start: day(2), End: day(2) + 3600})
	if err != nil {
		t.Fatal(err)
	}
	checkFrame(t, res.Frame, grid.R(day(2), day(2)+3600), 60)
	if res.Metadata.NodeID != "btc-1m" {
		t.Fatalf("metadata node_id %q", res.Metadata.NodeID)
	}
	for _, s := range src.series {
		if s.NodeID != node {
			t.Fatalf("upstream asked for %q, want the standard id %q", s.NodeID, node)
		}
	}
	if list, _ := e.store.ListSeries(ctx); len(list) != 1 || list[0].NodeID != "btc-1m" {
		t.Fatalf("stored series %v, want the alias", list)
	}
	if cov, err := e.p.Coverage(ctx, "btc-1m", iv); err != nil || !cov.Covers(grid.R(day(2), day(2)+3600)) {
		t.Fatalf("coverage of the alias: %v %v", cov, err)
	}
	for _, tc := range []struct {
		name string
		req  seamless.Request
		want string
	}{
		{"unknown alias", seamless.Request{NodeID: "eth-1m", Interval: iv, Start: day(2), End: day(1)}, "want {kind}"},
		{"interval of another timeframe", seamless.Request{NodeID: "btc-1m", Interval: 300, Start: day(2), End: day(1)}, "does not match"},
		{"route to a malformed id", seamless.Request{NodeID: "broken", Interval: iv, Start: day(2), End: day(1)}, "route of node"},
	} {
		_, err := e.p.Fetch(ctx, tc.req)
		var re *seamless.RequestError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a RequestError mentioning %q", tc.name, err, tc.want)
		}
	}
}
