package cli

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seamless-data/seamless/coordinator/leaseapi"
)

func TestCoordinatorModeAndLeasesCommands(t *testing.T) {
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- Execute([]string{"coordinator", "--addr", "127.0.0.1:0"}, &stdout, &stderr) }()
	re := regexp.MustCompile(`"msg":"seamless.coordinator.serving","addr":"([^"]+)"`)
	var addr string
	for i := 0; addr == ""; i++ {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		if i > 500 {
			t.Fatalf("coordinator did not start: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	url := "http://" + addr
	l, err := leaseapi.NewClient(url, nil).Claim(context.Background(), "k1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if code, out, _ := run(t, dir, "leases", "list", "--server", url); code != 0 || !strings.Contains(out, "k1  token") {
		t.Fatalf("list: %d %s", code, out)
	}
	if code, out, _ := run(t, dir, "leases", "inspect", "k1", "--server", url); code != 0 || !strings.Contains(out, `"key":"k1"`) {
		t.Fatalf("inspect: %d %s", code, out)
	}
	if code, out, _ := run(t, dir, "leases", "fail", "k1:999", "--reason", "stuck", "--server", url); code != 1 || out != "" {
		t.Fatalf("fail with a wrong token: %d %s", code, out)
	}
	tok := strconv.FormatUint(l.Token, 10)
	if code, out, _ := run(t, dir, "leases", "fail", "k1:"+tok, "--reason", "stuck", "--dry-run", "--server", url); code != 0 || !strings.Contains(out, "would fail") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	if code, out, _ := run(t, dir, "leases", "fail", "k1:"+tok, "--reason", "stuck", "--server", url); code != 0 || !strings.Contains(out, "failed k1") {
		t.Fatalf("fail: %d %s", code, out)
	}
	leaseapi.NewClient(url, nil).Claim(context.Background(), "k2", time.Minute)
	if code, out, _ := run(t, dir, "leases", "release", "k2", "--server", url); code != 0 || !strings.Contains(out, "released k2") {
		t.Fatalf("release: %d %s", code, out)
	}
	if code, out, _ := run(t, dir, "leases", "list", "--server", url); code != 0 || !strings.Contains(out, "no leases held") {
		t.Fatalf("list after: %d %s", code, out)
	}
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("coordinator exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("coordinator did not stop on SIGINT")
	}
}

// waitLogged waits until stderr has a log line msg with an "addr" attribute and
// returns the address.
func waitLogged(t *testing.T, stderr *syncBuffer, msg string) string {
	t.Helper()
	re := regexp.MustCompile(`"msg":"` + regexp.QuoteMeta(msg) + `","addr":"([^"]+)"`)
	for i := 0; ; i++ {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		if i > 500 {
			t.Fatalf("no %s log line: %s", msg, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scrapeMetrics returns the text exposition served at url.
func scrapeMetrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestCoordinatorServesMetrics: seamless coordinator serves Prometheus metrics on its
// own address and on --metrics-addr, and a stale claim of its in-process coordinator
// counts in seamless_backfill_stale_claims_total (what the stale-claim alert reads).
func TestCoordinatorServesMetrics(t *testing.T) {
	unsetForTest(t, "SEAMLESS_CONFIG", "SEAMLESS_COORDINATOR_URL", "QMTL_SEAMLESS_COORDINATOR_URL", "SEAMLESS_PROFILE",
		"QMTL_SEAMLESS_PROFILE", "SEAMLESS_METRICS_ADDR", "SEAMLESS_LOG_LEVEL", "SEAMLESS_LOG_FORMAT")
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Execute([]string{"--metrics-addr", "127.0.0.1:0", "coordinator", "--addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	stopped := false
	stop := func() {
		stopped = true
		syscall.Kill(syscall.Getpid(), syscall.SIGINT)
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("coordinator exit %d: %s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("coordinator did not stop on SIGINT")
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	url := "http://" + waitLogged(t, &stderr, "seamless.coordinator.serving")
	metricsURL := "http://" + waitLogged(t, &stderr, "seamless.metrics.serving") + "/metrics"
	for _, u := range []string{url + "/metrics", metricsURL} {
		if body := scrapeMetrics(t, u); !strings.Contains(body, "\nseamless_backfill_stale_claims_total 0\n") ||
			!strings.Contains(body, "seamless_coordinator_fallback_total") {
			t.Fatalf("%s lacks the coordinator's counters:\n%s", u, body)
		}
	}

	// A holder that vanishes: its lease expires without Complete or Fail, and the next
	// claimer finds the stale claim.
	ctx := context.Background()
	c := leaseapi.NewClient(url, nil)
	if _, err := c.Claim(ctx, "k", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	l, err := c.Claim(ctx, "k", time.Minute)
	if err != nil {
		t.Fatalf("claim of a stale lease: %v", err)
	}
	c.Complete(ctx, l)
	for _, u := range []string{url + "/metrics", metricsURL} {
		if body := scrapeMetrics(t, u); !strings.Contains(body, "\nseamless_backfill_stale_claims_total 1\n") {
			t.Fatalf("%s: the stale claim was not counted:\n%s", u, grep(body, "stale"))
		}
	}
	// The lease API is still served beside /metrics.
	if code, out, _ := run(t, t.TempDir(), "leases", "list", "--server", url); code != 0 || !strings.Contains(out, "no leases held") {
		t.Fatalf("list: %d %s", code, out)
	}
	stop()
}
