package seamless_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/seamless-data/seamless"
)

func attrs(kv []attribute.KeyValue) map[string]attribute.Value {
	m := map[string]attribute.Value{}
	for _, a := range kv {
		m[string(a.Key)] = a.Value
	}
	return m
}

// TestFetchSpanTree: a fetch that backfills produces seamless.fetch with children per
// phase, and upstream calls under the backfill span.
func TestFetchSpanTree(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	e := newEnv(t, seamless.Config{TracerProvider: tp})
	r := req(day(1), day(1)+3600, seamless.Seamless)
	r.SLA = &seamless.SLAPolicy{MaxWaitBackfillMS: 60000}
	if _, err := e.p.Fetch(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = append(byName[s.Name], s)
	}
	root := byName["seamless.fetch"]
	if len(root) != 1 {
		t.Fatalf("want one seamless.fetch span, got %d (%v)", len(root), spans)
	}
	ra := attrs(root[0].Attributes)
	if ra["node_id"].AsString() != node || ra["interval"].AsInt64() != iv || ra["rows"].AsInt64() != 60 || ra["sla.violated"].AsBool() {
		t.Fatalf("root attributes %v", ra)
	}
	rootID := root[0].SpanContext.SpanID()
	for _, name := range []string{"seamless.storage", "seamless.backfill", "seamless.conformance"} {
		if len(byName[name]) == 0 {
			t.Fatalf("no %s span", name)
		}
		for _, s := range byName[name] {
			if s.Parent.SpanID() != rootID {
				t.Errorf("%s is not a child of seamless.fetch", name)
			}
		}
	}
	bf := byName["seamless.backfill"][0]
	if a := attrs(bf.Attributes); a["sla.phase"].AsString() != "backfill_wait" || a["sla.budget_ms"].AsInt64() != 60000 {
		t.Fatalf("backfill attributes %v", a)
	}
	ups := byName["seamless.upstream"]
	if len(ups) == 0 {
		t.Fatal("no seamless.upstream span")
	}
	for _, u := range ups {
		if u.Parent.SpanID() != bf.SpanContext.SpanID() || u.SpanContext.TraceID() != root[0].SpanContext.TraceID() {
			t.Errorf("upstream span not under the backfill span")
		}
	}
}

// tracedEnv is an env whose provider traces into an in-memory exporter and logs JSON,
// with trace ids, into a buffer.
func tracedEnv(t *testing.T) (*env, *bytes.Buffer, *tracetest.InMemoryExporter) {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(seamless.TraceLogHandler(slog.NewJSONHandler(&buf, nil)))
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return newEnv(t, seamless.Config{TracerProvider: tp, Logger: log}), &buf, exp
}

// logRecord is the first JSON log record with message msg (nil if none).
func logRecord(buf *bytes.Buffer, msg string) map[string]any {
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// fetchTraceID is the trace id of the seamless.fetch span.
func fetchTraceID(exp *tracetest.InMemoryExporter) string {
	for _, s := range exp.GetSpans() {
		if s.Name == "seamless.fetch" {
			return s.SpanContext.TraceID().String()
		}
	}
	return ""
}

func TestTraceIDsInLogs(t *testing.T) {
	e, buf, exp := tracedEnv(t)
	e.fetch.fail = 1 // one retry: logs seamless.backfill.retry inside the request's trace
	if _, err := e.p.Fetch(context.Background(), req(day(1), day(1)+3600, seamless.AutoBackfill)); err != nil {
		t.Fatal(err)
	}
	rec := logRecord(buf, "seamless.backfill.retry")
	if rec == nil || rec["node_id"] != node {
		t.Fatalf("no retry log: %s", buf.String())
	}
	if fetchTrace := fetchTraceID(exp); rec["trace_id"] != fetchTrace || rec["span_id"] == "" {
		t.Fatalf("log trace_id %v, fetch trace %s", rec["trace_id"], fetchTrace)
	}
}

// TestSLAViolationLogHasTraceIDs: the seamless.sla.phase_exceeded record carries the
// request's trace and span ids like every other record logged during a request.
func TestSLAViolationLogHasTraceIDs(t *testing.T) {
	e, buf, exp := tracedEnv(t)
	r := req(day(1), day(1)+3600*24*30, seamless.AutoBackfill)
	r.SLA = &seamless.SLAPolicy{MaxSyncGapBars: 10} // a sync_gap violation, before any upstream call
	if _, err := e.p.Fetch(context.Background(), r); seamless.ErrorCode(err) != "sla_exceeded" {
		t.Fatalf("err = %v, want sla_exceeded", err)
	}
	rec := logRecord(buf, "seamless.sla.phase_exceeded")
	if fetchTrace := fetchTraceID(exp); rec == nil || rec["trace_id"] != fetchTrace || rec["span_id"] == "" {
		t.Fatalf("violation log %v, fetch trace %s", rec, fetchTrace)
	}
}
