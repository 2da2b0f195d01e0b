package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
)

func TestFetchThroughServer(t *testing.T) {
	e := servertest.Start(t, server.Config{})
	start, end := fmt.Sprint(servertest.Unix(48*time.Hour)), fmt.Sprint(servertest.Unix(47*time.Hour))
	args := []string{"fetch", "--node", node, "--interval", "60", "--start", start, "--end", end}
	dir := t.TempDir()
	code, local, stderr := run(t, dir, append(args, "--format", "csv")...)
	if code != 0 {
		t.Fatalf("local fetch: exit %d: %s", code, stderr)
	}
	code, remote, stderr := run(t, dir, append(args, "--format", "csv", "--server", e.HTTP.URL)...)
	if code != 0 || remote != local {
		t.Fatalf("remote fetch: exit %d: %s\n%.200s\nwant\n%.200s", code, stderr, remote, local)
	}
	code, out, _ := run(t, dir, append(args, "--format", "json", "--strategy", "fail_fast", "--server", e.HTTP.URL)...)
	var doc struct {
		Metadata seamless.Metadata `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc.Metadata.Rows != 60 || doc.Metadata.Strategy != seamless.FailFast {
		t.Fatalf("remote json: exit %d %v %s", code, err, out)
	}
	// Errors come back typed: exit codes and JSON error documents as for local fetches.
	code, out, _ = run(t, dir, "fetch", "--node", node, "--interval", "60", "--start", "0", "--end", "3600", "--strategy", "fail_fast", "--format", "json", "--server", e.HTTP.URL)
	if code != exitError || !bytes.Contains([]byte(out), []byte(`"code":"not_covered"`)) {
		t.Fatalf("not covered: exit %d %s", code, out)
	}
	code, _, _ = run(t, dir, "fetch", "--node", node, "--interval", "300", "--start", "0", "--end", "3600", "--server", e.HTTP.URL)
	if code != exitBadRequest {
		t.Fatalf("bad request: exit %d", code)
	}
}

// syncBuffer is a bytes.Buffer safe to read while the command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeShutsDownOnSignal(t *testing.T) {
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	t.Setenv("SEAMLESS_API_TOKENS", "ci:secret")
	go func() {
		done <- Execute([]string{"--data-dir", t.TempDir(), "serve", "--addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	addrRE := regexp.MustCompile(`"msg":"seamless.http.serving","addr":"([^"]+)"`)
	var addr string
	for i := 0; addr == ""; i++ {
		if m := addrRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		if i > 500 {
			t.Fatalf("no serving log line: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + addr + "/v1/series")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("series without token: %v %v", resp, err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
}
