package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakePrometheus answers /api/v1/series like Prometheus: a match[] selector matches
// stored series by name, so a histogram's bare name matches nothing.
type fakePrometheus struct {
	mu      sync.Mutex
	series  map[string]bool
	matches []string
}

func (f *fakePrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/api/v1/status/buildinfo":
		fmt.Fprint(w, `{"status":"success","data":{"version":"2.42.0"}}`)
	case "/api/v1/series":
		if r.URL.Query().Get("start") == "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"status":"error","errorType":"bad_data","error":"want a start"}`)
			return
		}
		data := []map[string]string{}
		f.mu.Lock()
		for _, m := range r.URL.Query()["match[]"] {
			f.matches = append(f.matches, m)
			if f.series[m] {
				data = append(data, map[string]string{"__name__": m, "job": "seamless", "instance": "127.0.0.1:8080"})
			}
		}
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
	default:
		http.NotFound(w, r)
	}
}

// fakeServer is a Seamless server: readyz answers 503 when notReady; /v1/leases is
// served when leases is not nil.
func fakeServer(notReady bool, leases []map[string]any) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if notReady {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":{"code":"unavailable","message":"not ready: store: pebble: closed"}}`)
			return
		}
		fmt.Fprint(w, `{"status":"ready"}`)
	})
	if leases != nil {
		mux.HandleFunc("GET /v1/leases", func(w http.ResponseWriter, _ *http.Request) {
			json.NewEncoder(w).Encode(map[string]any{"leases": leases})
		})
	}
	return httptest.NewServer(mux)
}

func runHealth(t *testing.T, args ...string) (string, error) {
	t.Helper()
	t.Setenv("SEAMLESS_COORDINATOR_URL", "")
	t.Setenv("QMTL_SEAMLESS_COORDINATOR_URL", "")
	var out, errb bytes.Buffer
	g := &globals{stdout: &out, stderr: &errb}
	cmd := newHealthCmd(g)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func allSeries() map[string]bool {
	m := map[string]bool{}
	for _, s := range healthSeries {
		m[s.match] = true
	}
	return m
}

func TestHealthAllOK(t *testing.T) {
	future := time.Now().Add(time.Minute).UnixMilli()
	srv := fakeServer(false, []map[string]any{{"key": "ohlcv:demo:BTC-USD:1m:60:0:54000", "token": "3", "lease_until_ms": future}})
	defer srv.Close()
	prom := &fakePrometheus{series: allSeries()}
	ps := httptest.NewServer(prom)
	defer ps.Close()
	out, err := runHealth(t, "--server", srv.URL, "--prometheus", ps.URL)
	if err != nil {
		t.Fatalf("err %v\n%s", err, out)
	}
	want := []string{
		"[OK] server /healthz",
		"[OK] server /readyz",
		"[OK] coordinator (1 leases held)",
		"[OK] prometheus",
		"[OK] series seamless_sla_deadline_seconds_bucket",
		"[OK] series seamless_sla_deadline_seconds_count",
		"[OK] series seamless_sla_total_p99_seconds",
	}
	for _, w := range want {
		if !strings.Contains(out, w+"\n") {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "[FAIL]") {
		t.Errorf("unexpected failure:\n%s", out)
	}
	// Histograms are looked up by their series names, never by the bare name.
	for _, m := range prom.matches {
		if m == "seamless_sla_deadline_seconds" {
			t.Errorf("queried the bare histogram name: %v", prom.matches)
		}
	}
}

func TestHealthFailures(t *testing.T) {
	srv := fakeServer(true, nil) // readyz 503, no lease API
	defer srv.Close()
	series := allSeries()
	delete(series, "seamless_sla_total_p99_seconds") // rules not loaded
	ps := httptest.NewServer(&fakePrometheus{series: series})
	defer ps.Close()
	out, err := runHealth(t, "--server", srv.URL, "--prometheus", ps.URL)
	var rep *reportedError
	if err == nil || !errors.As(err, &rep) || !strings.Contains(err.Error(), "2 of 10 health checks failed") {
		t.Fatalf("err = %v, want 2 failed checks\n%s", err, out)
	}
	for _, w := range []string{
		"[OK] server /healthz\n",
		"[FAIL] server /readyz: HTTP 503: not ready: store: pebble: closed\n",
		"[SKIP] coordinator: the server does not serve /v1/leases (in-process coordinator)\n",
		"[OK] series seamless_sla_deadline_seconds_bucket\n",
		"[FAIL] series seamless_sla_total_p99_seconds: no recording rule output: load deploy/prometheus/rules.yml",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

func TestHealthUnreachable(t *testing.T) {
	ps := httptest.NewServer(http.NotFoundHandler())
	url := ps.URL
	ps.Close()
	out, err := runHealth(t, "--prometheus", url, "--coordinator", url)
	if err == nil {
		t.Fatalf("no error for unreachable endpoints:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "[FAIL] coordinator "+url+": ") || !strings.HasPrefix(lines[1], "[FAIL] prometheus: ") {
		t.Fatalf("output:\n%s", out)
	}
	if _, err := runHealth(t); err == nil {
		t.Fatal("health without endpoints succeeded")
	}
}

func TestHealthBadURL(t *testing.T) {
	_, err := runHealth(t, "--coordinator", "etcd://127.0.0.1:2379")
	if err == nil || code(err) != "bad_request" {
		t.Fatalf("err = %v, want a bad request", err)
	}
}
