package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"go.uber.org/goleak"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
	"github.com/seamless-data/seamless/internal/server/wire"
)

func TestMain(m *testing.M) {
	// BenchmarkStreamLatency1000Remote runs its clients in this binary re-executed.
	if u := os.Getenv(loadClientsEnv); u != "" {
		os.Exit(runLoadClients(u))
	}
	goleak.VerifyTestMain(m)
}

const node = servertest.Node

var (
	start = servertest.Unix(48 * time.Hour)
	end   = servertest.Unix(47 * time.Hour) // 60 one-minute bars
)

func barsQuery(extra ...string) string {
	q := url.Values{"node_id": {node}, "interval": {"60"}, "start": {fmt.Sprint(start)}, "end": {fmt.Sprint(end)}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return "/v1/bars?" + q.Encode()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, e *servertest.Env, method, path string, body io.Reader, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, e.HTTP.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func get(t *testing.T, e *servertest.Env, path string, header ...string) response {
	t.Helper()
	return do(t, e, http.MethodGet, path, nil, header...)
}

// direct answers req with the Provider itself: the reference for every transport.
func direct(t *testing.T, e *servertest.Env, req seamless.Request) seamless.Result {
	t.Helper()
	res, err := e.Provider.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var covered = seamless.Request{NodeID: node, Interval: 60, Start: start, End: end, Strategy: seamless.FailFast}

// warm backfills the test range so that every later fetch is answered from storage
// with identical metadata.
func warm(t *testing.T, e *servertest.Env) seamless.Result {
	t.Helper()
	direct(t, e, seamless.Request{NodeID: node, Interval: 60, Start: start, End: end})
	return direct(t, e, covered)
}

func errorBody(t *testing.T, r response) wire.ErrorBody {
	t.Helper()
	var doc wire.ErrorDocument
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("status %d: error body %q: %v", r.status, r.body, err)
	}
	if ct := r.header.Get("Content-Type"); ct != wire.MediaJSON {
		t.Errorf("error content type %q", ct)
	}
	return doc.Error
}

func TestBarsJSONIsTheCLIDocument(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	want := warm(t, e)
	r := get(t, e, barsQuery("strategy", "fail_fast"))
	if r.status != http.StatusOK || r.header.Get("Content-Type") != wire.MediaJSON {
		t.Fatalf("status %d %q: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	// The CLI's `fetch --format json` renders with wire.WriteBars: same bytes.
	var doc bytes.Buffer
	if err := wire.WriteBars(&doc, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.body, doc.Bytes()) {
		t.Fatalf("body differs from the CLI document:\n got %.300s\nwant %.300s", r.body, doc.Bytes())
	}
	// And it is what json.Encoder makes of {metadata, data}, as the CLI always printed.
	var enc bytes.Buffer
	if err := json.NewEncoder(&enc).Encode(struct {
		Metadata seamless.Metadata `json:"metadata"`
		Data     *frame.Frame      `json:"data"`
	}{want.Metadata, want.Frame}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.body, enc.Bytes()) {
		t.Fatalf("body differs from json.Encoder's document")
	}
	var shape struct {
		Metadata map[string]any       `json:"metadata"`
		Data     map[string][]float64 `json:"data"`
	}
	if err := json.Unmarshal(r.body, &shape); err != nil {
		t.Fatal(err)
	}
	if shape.Metadata["rows"] != 60.0 || len(shape.Data["ts"]) != 60 || len(shape.Data["close"]) != 60 {
		t.Fatalf("document: %.300s", r.body)
	}
}

func TestBarsCSV(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	want := warm(t, e)
	for _, r := range []response{
		get(t, e, barsQuery("strategy", "fail_fast", "format", "csv")),
		get(t, e, barsQuery("strategy", "fail_fast"), "Accept", "text/csv"),
	} {
		if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("status %d %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		var md seamless.Metadata
		if err := json.Unmarshal([]byte(r.header.Get(wire.MetadataHeader)), &md); err != nil {
			t.Fatalf("%s header %q: %v", wire.MetadataHeader, r.header.Get(wire.MetadataHeader), err)
		}
		if !jsonEqual(t, md, want.Metadata) {
			t.Errorf("metadata header %+v, want %+v", md, want.Metadata)
		}
		rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(rows[0], ",") != "ts,open,high,low,close,volume" || len(rows) != 61 || rows[1][0] != fmt.Sprint(start) {
			t.Fatalf("csv %v…", rows[:2])
		}
		if rows[60][4] != fmt.Sprint(want.Frame.Col("close").F64[59]) {
			t.Errorf("last close %s, want %v", rows[60][4], want.Frame.Col("close").F64[59])
		}
	}
}

func TestBarsArrow(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	want := warm(t, e)
	for _, r := range []response{
		get(t, e, barsQuery("strategy", "fail_fast", "format", "arrow")),
		get(t, e, barsQuery("strategy", "fail_fast"), "Accept", "text/csv;q=0.5, application/vnd.apache.arrow.stream"),
	} {
		if r.status != http.StatusOK || r.header.Get("Content-Type") != wire.MediaArrow {
			t.Fatalf("status %d %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		rdr, err := ipc.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := rdr.Schema().Metadata().GetValue(wire.ArrowMetadataKey)
		if !ok {
			t.Fatalf("schema metadata %v lacks %s", rdr.Schema().Metadata(), wire.ArrowMetadataKey)
		}
		var md seamless.Metadata
		if err := json.Unmarshal([]byte(raw), &md); err != nil || !jsonEqual(t, md, want.Metadata) {
			t.Errorf("metadata %s (%v), want %+v", raw, err, want.Metadata)
		}
		got := frame.New(want.Frame.Schema(), 0)
		for rdr.Next() {
			part, err := frame.FromArrow(rdr.RecordBatch())
			if err != nil {
				t.Fatal(err)
			}
			got.AppendRows(part, 0, part.Len())
		}
		if err := rdr.Err(); err != nil {
			t.Fatal(err)
		}
		rdr.Release()
		if !jsonEqual(t, got, want.Frame) {
			t.Errorf("arrow frame differs from the Provider's")
		}
	}
}

// TestBarsArrowFraming: a small answer is one record batch sent with a Content-Length;
// one over a batch (64 Ki rows) streams chunked, in several batches, and every row
// arrives in order; an empty answer is a stream of one empty batch.
func TestBarsArrowFraming(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	bigStart := servertest.Unix(200 * 24 * time.Hour)
	bigEnd := bigStart + 70_000*60
	if _, err := e.Provider.Backfill(context.Background(), seamless.BackfillRequest{NodeID: node, Interval: 60, Start: bigStart, End: bigEnd}); err != nil {
		t.Fatal(err)
	}
	q := func(s, e int64) string {
		return "/v1/bars?" + url.Values{"node_id": {node}, "interval": {"60"}, "start": {fmt.Sprint(s)}, "end": {fmt.Sprint(e)},
			"strategy": {"fail_fast"}, "format": {"arrow"}, "partial_ok": {"true"}}.Encode()
	}
	for _, c := range []struct {
		name          string
		start, end    int64
		rows, batches int
		length        bool // sent with a Content-Length
	}{
		{"small", bigStart, bigStart + 1000*60, 1000, 1, true},
		{"large", bigStart, bigEnd, 70_000, 2, false},
		{"empty", bigEnd + 10*86400, bigEnd + 10*86400 + 3600, 0, 1, true}, // not covered: partial_ok
	} {
		r := get(t, e, q(c.start, c.end))
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d: %s", c.name, r.status, r.body)
		}
		if got := r.header.Get("Content-Length"); (got != "") != c.length || (got != "" && got != fmt.Sprint(len(r.body))) {
			t.Errorf("%s: Content-Length %q for a %d-byte body", c.name, got, len(r.body))
		}
		rdr, err := ipc.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatal(err)
		}
		rows, batches, next := 0, 0, c.start
		for rdr.Next() {
			part, err := frame.FromArrow(rdr.RecordBatch())
			if err != nil {
				t.Fatal(err)
			}
			for _, ts := range part.TS {
				if ts != next {
					t.Fatalf("%s: row %d has ts %d, want %d", c.name, rows, ts, next)
				}
				next += 60
				rows++
			}
			batches++
		}
		if err := rdr.Err(); err != nil {
			t.Fatal(err)
		}
		rdr.Release()
		if rows != c.rows || batches != c.batches {
			t.Errorf("%s: %d rows in %d batches, want %d in %d", c.name, rows, batches, c.rows, c.batches)
		}
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

func TestBarsErrors(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	q := func(kv ...string) string {
		v := url.Values{"node_id": {node}, "interval": {"60"}, "start": {"2024-01-01T00:00:00Z"}, "end": {"2024-01-01T01:00:00Z"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return "/v1/bars?" + v.Encode()
	}
	for _, tc := range []struct {
		name, path  string
		header      []string
		status      int
		code, field string
	}{
		{"no node", q("node_id", ""), nil, 400, "bad_request", "node_id"},
		{"no start", q("start", ""), nil, 400, "bad_request", "start"},
		{"interval not a number", q("interval", "1m"), nil, 400, "bad_request", "interval"},
		{"interval mismatch", q("interval", "300"), nil, 400, "bad_request", "interval"},
		{"bad node id", q("node_id", "BTC"), nil, 400, "bad_request", "node_id"},
		{"bad time", q("start", "yesterday"), nil, 400, "bad_request", "start"},
		{"start after end", q("start", "2024-01-02T00:00:00Z"), nil, 400, "bad_request", "start"},
		{"too many bars", q("start", "2000-01-01T00:00:00Z"), nil, 400, "bad_request", "end"},
		{"unknown strategy", q("strategy", "yolo"), nil, 400, "bad_request", "strategy"},
		{"bad partial_ok", q("partial_ok", "maybe"), nil, 400, "bad_request", "partial_ok"},
		{"unknown parameter", q("partialok", "true"), nil, 400, "bad_request", "partialok"},
		{"unknown format", q("format", "xml"), nil, 400, "bad_request", "format"},
		{"unknown sla preset", q("sla", "gold"), nil, 400, "bad_request", "sla"},
		{"bad sla budget", q("total_deadline_ms", "-5"), nil, 400, "bad_request", "total_deadline_ms"},
		{"sla budget overflows a duration", q("total_deadline_ms", "9223372036854775807"), nil, 400, "bad_request", "total_deadline_ms"},
		{"sla budget over the maximum", q("max_wait_backfill_ms", "86400001"), nil, 400, "bad_request", "max_wait_backfill_ms"},
		{"node id over 256 bytes", q("node_id", "ohlcv:demo:"+strings.Repeat("X", 30000)+":1m"), nil, 400, "bad_request", "node_id"},
		{"symbol outside the alphabet", q("node_id", "ohlcv:demo:BTC<USD>:1m"), nil, 400, "bad_request", "node_id"},
		{"unacceptable", q(), []string{"Accept", "image/png"}, 406, "not_acceptable", ""},
		{"unknown source", q("node_id", "ohlcv:nasdaq:AAPL:1m"), nil, 404, "unknown_source", ""},
		{"not covered", q("strategy", "fail_fast"), nil, 404, "not_covered", ""},
		{"upstream failed", q("node_id", "ohlcv:down:X:1m", "strategy", "auto_backfill"), nil, 502, "upstream_failed", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, e, tc.path, tc.header...)
			b := errorBody(t, r)
			if r.status != tc.status || b.Code != tc.code || b.Field != tc.field || b.Message == "" {
				t.Fatalf("got %d %+v, want %d %s field %q", r.status, b, tc.status, tc.code, tc.field)
			}
		})
	}
	t.Run("not covered lists the missing range", func(t *testing.T) {
		b := errorBody(t, get(t, e, q("strategy", "fail_fast")))
		if b.NodeID != node || b.Interval != 60 || len(b.Missing) != 1 || b.Missing[0].Start != 1704067200 {
			t.Fatalf("body %+v", b)
		}
	})
}

func TestOtherRoutes(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	warm(t, e)
	cov, err := e.Provider.Coverage(context.Background(), node, 60)
	if err != nil || cov.Len() != 1 {
		t.Fatal(cov, err)
	}
	bounds := cov.Bounds() // whole aligned chunks around [start, end)
	r := get(t, e, "/v1/coverage?node_id="+url.QueryEscape(node)+"&interval=60")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != fmt.Sprintf(`{"node_id":%q,"interval":60,"ranges":[{"start":%d,"end":%d}]}`, node, bounds.Start, bounds.End) {
		t.Fatalf("coverage %d %s", r.status, r.body)
	}
	r = get(t, e, "/v1/coverage?node_id=ohlcv:demo:NEW:1m&interval=60")
	if r.status != 200 || !strings.Contains(string(r.body), `"ranges":[]`) {
		t.Fatalf("empty coverage %d %s", r.status, r.body)
	}
	if r = get(t, e, "/v1/coverage?node_id=x&interval=60"); r.status != 400 {
		t.Fatalf("bad coverage request %d %s", r.status, r.body)
	}
	r = get(t, e, "/v1/series")
	var list wire.SeriesList
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list.Series) != 1 {
		t.Fatalf("series %d %s", r.status, r.body)
	}
	if s := list.Series[0]; s.NodeID != node || s.Interval != 60 || s.Bounds != bounds || s.Fragments != 1 || len(s.Schema.Fields) != 5 {
		t.Fatalf("series %+v", s)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/v1/nothing": 404} {
		if r := get(t, e, path); r.status != want {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
	r = do(t, e, http.MethodDelete, "/v1/bars", nil)
	if b := errorBody(t, r); r.status != 405 || b.Code != "method_not_allowed" || r.header.Get("Allow") == "" {
		t.Errorf("DELETE /v1/bars: %d %+v allow %q", r.status, b, r.header.Get("Allow"))
	}
	r = get(t, e, "/metrics")
	for _, want := range []string{
		`seamless_http_requests_total{code="200",route="GET /v1/coverage"} 2`,
		`seamless_http_requests_total{code="404",route="unmatched"} 1`,
		`seamless_http_request_duration_seconds_bucket{route="GET /v1/series",le="600"} 1`,
		"go_goroutines", "process_cpu_seconds_total",
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	e.Provider.Close()
	if r := get(t, e, "/readyz"); r.status != 503 || errorBody(t, r).Code != "unavailable" {
		t.Errorf("readyz after Provider.Close: %d %s", r.status, r.body)
	}
	if r := get(t, e, "/healthz"); r.status != 200 {
		t.Errorf("healthz after Provider.Close: %d", r.status)
	}
}

func TestAuth(t *testing.T) {
	tokens, err := server.ParseTokens("alice:s3cret, bare-token ,")
	if err != nil || len(tokens) != 2 || tokens[0] != (server.Token{Name: "alice", Secret: "s3cret"}) || tokens[1].Secret != "bare-token" {
		t.Fatalf("ParseTokens: %+v %v", tokens, err)
	}
	if _, err := server.ParseTokens("bob:"); err == nil {
		t.Fatal("ParseTokens accepted an empty secret")
	}
	on := servertest.Start(t, server.Config{Tokens: tokens})
	for _, h := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}, {"Authorization", "Basic s3cret"}} {
		r := get(t, on, "/v1/series", h...)
		if b := errorBody(t, r); r.status != 401 || b.Code != "unauthorized" || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%v: %d %+v", h, r.status, b)
		}
	}
	for _, secret := range []string{"s3cret", "bare-token"} {
		if r := get(t, on, "/v1/series", "Authorization", "Bearer "+secret); r.status != 200 {
			t.Errorf("token %s: %d %s", secret, r.status, r.body)
		}
	}
	if r := do(t, on, http.MethodPost, "/v1/backfill", strings.NewReader("{}")); r.status != 401 {
		t.Errorf("POST without token: %d", r.status)
	}
	for _, open := range []string{"/healthz", "/readyz"} {
		if r := get(t, on, open); r.status != 200 {
			t.Errorf("%s with auth on: %d", open, r.status)
		}
	}
	off := servertest.Start(t, server.Config{})
	if r := get(t, off, "/v1/series"); r.status != 200 {
		t.Errorf("auth off: %d", r.status)
	}
}

// TestTooManyFetches: with every fetch slot busy a request waits in the queue, and is
// refused with 429 and Retry-After only when its wait runs out or the queue is full;
// other routes are not limited.
func TestTooManyFetches(t *testing.T) {
	e := servertest.Start(t, server.Config{MaxConcurrentFetches: 1, FetchQueue: 1, FetchQueueWait: 100 * time.Millisecond})
	slow := strings.Replace(barsQuery(), url.QueryEscape(node), url.QueryEscape("ohlcv:slow:X:1m"), 1)
	first := make(chan response, 1)
	go func() { first <- get(t, e, slow) }()
	<-e.Entered // the first request holds the only fetch slot
	r := get(t, e, barsQuery())
	if b := errorBody(t, r); r.status != 429 || b.Code != "too_many_requests" || r.header.Get("Retry-After") == "" ||
		!strings.Contains(b.Message, "no fetch slot free after waiting") {
		t.Fatalf("second fetch: %d %+v", r.status, b)
	}
	// Other routes are not limited.
	if r := get(t, e, "/v1/series"); r.status != 200 {
		t.Fatalf("series during a fetch: %d", r.status)
	}
	e.Gate <- struct{}{}
	if r := <-first; r.status != 200 {
		t.Fatalf("first fetch: %d %s", r.status, r.body)
	}
	if r := get(t, e, barsQuery()); r.status != 200 {
		t.Fatalf("fetch after the slot freed: %d %s", r.status, r.body)
	}
}

// TestFetchesQueue: a burst over the fetch slots is queued, not refused: every request
// of the burst is answered 200 once the slow fetches ahead of it finish, and a request
// past the queue's length is refused at once.
func TestFetchesQueue(t *testing.T) {
	e := servertest.Start(t, server.Config{MaxConcurrentFetches: 2, FetchQueue: 4, FetchQueueWait: time.Minute})
	slowQuery := func(k int) string {
		return strings.Replace(barsQuery(), url.QueryEscape(node), url.QueryEscape(fmt.Sprintf("ohlcv:slow:Q%d:1m", k)), 1)
	}
	answers := make(chan response, 6)
	for k := range 2 {
		go func() { answers <- get(t, e, slowQuery(k)) }()
	}
	<-e.Entered
	<-e.Entered // both slots held
	for k := 2; k < 6; k++ {
		go func() { answers <- get(t, e, slowQuery(k)) }()
	}
	waitFor(t, func() bool { return scrapeMetric(t, e, `seamless_admission_queued{pool="fetch"}`) == 4 })
	r := get(t, e, barsQuery()) // the queue is full
	if b := errorBody(t, r); r.status != 429 || !strings.Contains(b.Message, "already waiting") {
		t.Fatalf("past the queue: %d %+v", r.status, b)
	}
	for range 6 {
		e.Gate <- struct{}{} // each queued request gets a slot as one finishes
	}
	for range 6 {
		if r := <-answers; r.status != 200 {
			t.Fatalf("queued fetch: %d %s", r.status, r.body)
		}
	}
	if v := scrapeMetric(t, e, `seamless_admission_refused_total{pool="fetch",reason="queue_full"}`); v != 1 {
		t.Errorf("queue_full refusals %v, want 1", v)
	}
}

// TestSlowReaderHoldsNoFetchSlot: a client that stops reading a large answer holds a
// stream slot, not the fetch slot, so other fetches go on; past the stall deadline its
// answer is cut off and counted.
func TestSlowReaderHoldsNoFetchSlot(t *testing.T) {
	e := servertest.Start(t, server.Config{MaxConcurrentFetches: 1, FetchQueueWait: 50 * time.Millisecond, StreamStallTimeout: 300 * time.Millisecond})
	big := url.Values{"node_id": {node}, "interval": {"60"}, "start": {fmt.Sprint(servertest.Unix(2000 * time.Hour))}, "end": {fmt.Sprint(end)}, "format": {"csv"}}
	conn, err := net.Dial("tcp", e.HTTP.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A tiny receive window: the server's writes block as soon as the socket buffers fill.
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET /v1/bars?%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", big.Encode())
	head := make([]byte, 512)
	if _, err := io.ReadAtLeast(conn, head, 12); err != nil || !strings.HasPrefix(string(head), "HTTP/1.1 200") {
		t.Fatalf("big answer: %q %v", head, err)
	}
	// The reader stalls; meanwhile fetches are served.
	for range 3 {
		if r := get(t, e, barsQuery()); r.status != 200 {
			t.Fatalf("fetch while a reader stalls: %d %s", r.status, r.body)
		}
	}
	waitFor(t, func() bool { return scrapeMetric(t, e, `seamless_http_answers_cut_total{stalled="true"}`) == 1 })
}

func TestBackfillJob(t *testing.T) {
	e := servertest.Start(t, server.Config{MaxBodyBytes: 256})
	body := fmt.Sprintf(`{"node_id":%q,"interval":60,"start":"2024-01-01T00:00:00Z","end":%d}`, node, int64(1704067200+3*86400))
	r := do(t, e, http.MethodPost, "/v1/backfill", strings.NewReader(body))
	var acc wire.JobAccepted
	if err := json.Unmarshal(r.body, &acc); err != nil || r.status != 202 || len(acc.JobID) != 32 {
		t.Fatalf("POST: %d %s", r.status, r.body)
	}
	if r.header.Get("Location") != "/v1/backfill/"+acc.JobID {
		t.Errorf("Location %q", r.header.Get("Location"))
	}
	var job wire.Job
	deadline := time.Now().Add(10 * time.Second)
	for !job.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("job still %s", job.State)
		}
		r := get(t, e, "/v1/backfill/"+acc.JobID)
		if err := json.Unmarshal(r.body, &job); err != nil || r.status != 200 {
			t.Fatalf("GET job: %d %s", r.status, r.body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// 3 days of 1-minute bars (4320) touch 6 aligned 900-bar chunks: 5400 bars.
	if job.State != wire.JobSucceeded || job.ChunksDone != 6 || job.ChunksTotal != 6 || job.Bars != 5400 ||
		job.Error != nil || len(job.FailedChunks) != 0 || job.StartedAt == nil || job.FinishedAt == nil {
		t.Fatalf("job %+v", job)
	}
	cov, err := e.Provider.Coverage(context.Background(), node, 60)
	if err != nil || !cov.Covers(grid.R(1704067200, 1704067200+3*86400)) {
		t.Fatalf("coverage after job: %v %v", cov, err)
	}
	// The list holds the finished job, newest first, as GET /v1/backfill/{id} has it.
	r = do(t, e, http.MethodPost, "/v1/backfill", strings.NewReader(fmt.Sprintf(`{"node_id":%q,"interval":60,"start":1704067200,"end":1704067260}`, node)))
	var second wire.JobAccepted
	if err := json.Unmarshal(r.body, &second); err != nil || r.status != 202 {
		t.Fatalf("second POST: %d %s", r.status, r.body)
	}
	var list wire.JobList
	if r := get(t, e, "/v1/backfill"); r.status != 200 || json.Unmarshal(r.body, &list) != nil {
		t.Fatalf("GET /v1/backfill: %d %s", r.status, r.body)
	}
	if len(list.Jobs) != 2 || list.Jobs[0].JobID != second.JobID || list.Jobs[1].JobID != acc.JobID || !jsonEqual(t, list.Jobs[1], job) {
		t.Fatalf("GET /v1/backfill: %+v", list.Jobs)
	}
	if r := get(t, e, "/v1/backfill?state=running"); r.status != 400 {
		t.Fatalf("GET /v1/backfill?state=running: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"node_id":"x","interval":60,"start":0,"end":60}`, 400, "bad_request"},
		{`{"node_id":"ohlcv:nasdaq:A:1m","interval":60,"start":0,"end":60}`, 404, "unknown_source"},
		{`{"node_id":"` + node + `","interval":60,"start":0,"end":60,"extra":1}`, 400, "bad_request"},
		{`not json`, 400, "bad_request"},
		{`{"node_id":"` + strings.Repeat("x", 300) + `"}`, 413, "request_too_large"},
	} {
		r := do(t, e, http.MethodPost, "/v1/backfill", strings.NewReader(tc.body))
		if b := errorBody(t, r); r.status != tc.status || b.Code != tc.code {
			t.Errorf("%.40s: %d %+v", tc.body, r.status, b)
		}
	}
	r = get(t, e, "/v1/backfill/0123456789abcdef0123456789abcdef")
	if b := errorBody(t, r); r.status != 404 || b.Code != "not_found" {
		t.Errorf("unknown job: %d %+v", r.status, b)
	}
}

func TestBackfillJobFailsAndIsCancelledOnClose(t *testing.T) {
	e := servertest.Start(t, server.Config{MaxBackfillJobs: 1})
	post := func(node string) string {
		r := do(t, e, http.MethodPost, "/v1/backfill", strings.NewReader(fmt.Sprintf(`{"node_id":%q,"interval":60,"start":%d,"end":%d}`, node, start, end)))
		var acc wire.JobAccepted
		if err := json.Unmarshal(r.body, &acc); err != nil || r.status != 202 {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
		return acc.JobID
	}
	wait := func(id string, state string) wire.Job {
		var job wire.Job
		for i := 0; i < 2000 && job.State != state; i++ {
			json.Unmarshal(get(t, e, "/v1/backfill/"+id).body, &job)
			time.Sleep(5 * time.Millisecond)
		}
		if job.State != state {
			t.Fatalf("job %s: %+v, want %s", id, job, state)
		}
		return job
	}
	failed := wait(post("ohlcv:down:X:1m"), wire.JobFailed)
	if failed.Error == nil || failed.Error.Code != "upstream_failed" || len(failed.FailedChunks) != 1 {
		t.Fatalf("failed job %+v", failed)
	}
	running := post("ohlcv:slow:X:1m")
	<-e.Entered
	queued := post("ohlcv:slow:Y:1m") // waits for the only job slot
	wait(running, wire.JobRunning)
	wait(queued, wire.JobQueued)
	e.Server.Close()
	for _, id := range []string{running, queued} {
		if job := wait(id, wire.JobCancelled); job.Error == nil || job.Error.Code != "canceled" || job.FinishedAt == nil {
			t.Errorf("cancelled job %+v", job)
		}
	}
	r := do(t, e, http.MethodPost, "/v1/backfill", strings.NewReader(fmt.Sprintf(`{"node_id":%q,"interval":60,"start":%d,"end":%d}`, node, start, end)))
	if r.status != 503 {
		t.Errorf("POST after Close: %d %s", r.status, r.body)
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	e := servertest.Start(t, server.Config{ShutdownTimeout: 10 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.Server.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	slow := strings.Replace(barsQuery("format", "csv"), url.QueryEscape(node), url.QueryEscape("ohlcv:slow:X:1m"), 1)
	type result struct {
		status int
		rows   int
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + slow)
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{resp.StatusCode, strings.Count(string(b), "\n"), err}
	}()
	<-e.Entered
	stop() // SIGINT, as far as Serve can tell
	// Serve stops accepting new connections while the request is in flight...
	for i := 0; ; i++ {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if i > 1000 {
			t.Fatal("still accepting connections during shutdown")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v before the in-flight request finished", err)
	default:
	}
	// ...and the request still completes in full.
	e.Gate <- struct{}{}
	if r := <-inflight; r.err != nil || r.status != 200 || r.rows != 61 {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestNegotiate(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	warm(t, e)
	for accept, want := range map[string]string{
		"":                                 wire.MediaJSON,
		"*/*":                              wire.MediaJSON,
		"text/html, */*;q=0.8":             wire.MediaJSON,
		"application/json;q=0.1, text/csv": "text/csv; charset=utf-8",
		"application/vnd.apache.arrow.stream;q=0.9, application/json;q=0.2": wire.MediaArrow,
	} {
		r := get(t, e, barsQuery("strategy", "fail_fast"), "Accept", accept)
		if r.status != 200 || r.header.Get("Content-Type") != want {
			t.Errorf("Accept %q: %d %q, want %q", accept, r.status, r.header.Get("Content-Type"), want)
		}
	}
}

// scrapeMetric is the value of the sample named exactly series (name{labels}) on the
// server's /metrics, or -1 if it is absent.
func scrapeMetric(t *testing.T, e *servertest.Env, series string) float64 {
	t.Helper()
	r := get(t, e, "/metrics")
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// waitFor polls cond until it holds, failing the test after a generous bound.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30s")
		}
	}
}
