package cli

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/coordinator/leaseapi"
	"github.com/seamless-data/seamless/grid"
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

// TestLeasesReleaseToken: leases release takes KEY:TOKEN (issue 5) as well as KEY. With
// a token it frees the lease only while it is held under that token: a stale or wrong
// token never releases another holder's lease. Chunk keys, which end in ":digits"
// themselves, are read right in both forms.
func TestLeasesReleaseToken(t *testing.T) {
	coord := seamless.NewMemCoordinator(nil)
	srv := httptest.NewServer(leaseapi.NewHandler(coord))
	defer srv.Close()
	ctx := context.Background()
	dir := t.TempDir()
	release := func(args ...string) (int, string, string) {
		t.Helper()
		return run(t, dir, append(append([]string{"leases", "release"}, args...), "--server", srv.URL)...)
	}
	// held returns the token under which key is held (0: not held).
	held := func(key string) uint64 {
		t.Helper()
		infos, err := coord.Inspect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range infos {
			if l.Key == key {
				return l.Token
			}
		}
		return 0
	}
	claim := func(key string) uint64 {
		t.Helper()
		l, err := coord.Claim(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return l.Token
	}
	tokArg := func(key string, tok uint64) string { return key + ":" + strconv.FormatUint(tok, 10) }

	t1 := claim("k")
	// A wrong token: refused, the lease stays.
	if code, out, stderr := release(tokArg("k", t1+1000)); code != 1 || out != "" ||
		!strings.Contains(stderr, "held under token "+strconv.FormatUint(t1, 10)) || !strings.Contains(stderr, "nothing released") {
		t.Fatalf("wrong token: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if held("k") != t1 {
		t.Fatal("a wrong token released the lease")
	}
	// Dry run with the right token says so and frees nothing.
	if code, out, stderr := release(tokArg("k", t1), "--dry-run"); code != 0 || !strings.Contains(out, "would release k token "+strconv.FormatUint(t1, 10)) {
		t.Fatalf("dry run: exit %d %q %q", code, out, stderr)
	}
	if held("k") != t1 {
		t.Fatal("the dry run released the lease")
	}
	if code, out, stderr := release(tokArg("k", t1)); code != 0 || !strings.Contains(out, "released k token "+strconv.FormatUint(t1, 10)) {
		t.Fatalf("release with the token: exit %d %q %q", code, out, stderr)
	}
	if held("k") != 0 {
		t.Fatal("the lease is still held after its release")
	}

	// The key was claimed again by another holder: the first holder's token does not
	// free the new lease.
	t2 := claim("k")
	if code, _, stderr := release(tokArg("k", t1)); code != 1 || !strings.Contains(stderr, "nothing released") {
		t.Fatalf("stale token: exit %d %q", code, stderr)
	}
	if held("k") != t2 {
		t.Fatal("a stale token released the new holder's lease")
	}
	if code, _, stderr := release(tokArg("k", t1), "--dry-run"); code != 1 || !strings.Contains(stderr, "nothing released") {
		t.Fatalf("stale token, dry run: exit %d %q", code, stderr)
	}
	// KEY alone still releases whoever holds it.
	if code, out, stderr := release("k"); code != 0 || !strings.Contains(out, "released k token "+strconv.FormatUint(t2, 10)) {
		t.Fatalf("release by key: exit %d %q %q", code, out, stderr)
	}

	// A chunk key ends in ":start:end": as KEY it is the key, not a token of its prefix.
	chunk := seamless.ChunkKey(seamless.Series{NodeID: node, Interval: 60}, grid.R(0, 54000))
	tc := claim(chunk)
	if code, out, stderr := release(chunk, "--dry-run"); code != 0 || !strings.Contains(out, "would release "+chunk+" token") {
		t.Fatalf("chunk key, dry run: exit %d %q %q", code, out, stderr)
	}
	if code, _, stderr := release(tokArg(chunk, tc+1)); code != 1 || held(chunk) != tc {
		t.Fatalf("chunk key, wrong token: exit %d %q", code, stderr)
	}
	if code, out, stderr := release(tokArg(chunk, tc)); code != 0 || !strings.Contains(out, "released "+chunk) || held(chunk) != 0 {
		t.Fatalf("chunk key with its token: exit %d %q %q", code, out, stderr)
	}

	// Not held, in either form.
	for _, arg := range []string{"nope", "nope:5", chunk} {
		if code, out, stderr := release(arg); code != 1 || out != "" || !strings.Contains(stderr, "not held") {
			t.Errorf("%s not held: exit %d %q %q", arg, code, out, stderr)
		}
	}
	// "a:N" held as a key while "a" is held too: ambiguous, nothing released (exit 2).
	claim("a")
	ta := claim("a:7")
	if code, _, stderr := release("a:7"); code != 2 || !strings.Contains(stderr, "ambiguous") || held("a") == 0 || held("a:7") != ta {
		t.Fatalf("ambiguous: exit %d %q", code, stderr)
	}
}
