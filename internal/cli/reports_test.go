package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/reportlog"
)

func TestReportsRoute(t *testing.T) {
	log, err := reportlog.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 4} {
		rep := conformance.Report{FlagsCounts: map[string]int{"gap": n}, Samples: map[string][]int64{}}
		if _, err := log.Append(context.Background(), reportlog.Record{NodeID: node, Interval: 60, Range: grid.R(0, 600), Report: rep}); err != nil {
			t.Fatal(err)
		}
	}
	h := reportsHandler(log)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/reports?node_id="+node+"&limit=1", nil))
	var doc reportsDoc
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || len(doc.Reports) != 1 || doc.Interval != 60 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if ch := doc.Reports[0].Digest.Increased["gap"]; ch.From != 1 || ch.To != 4 {
		t.Fatalf("digest %+v", doc.Reports[0].Digest)
	}
	for _, q := range []string{"node_id=nonsense", "node_id=" + node + "&interval=300", "node_id=" + node + "&limit=0"} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/reports?"+q, nil))
		if rec.Code != 400 {
			t.Errorf("%s: %d", q, rec.Code)
		}
	}
}
