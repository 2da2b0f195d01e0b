package cli

import (
	"context"
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
