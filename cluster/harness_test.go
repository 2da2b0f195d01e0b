package cluster_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// seamlessBin is the seamless binary TestMain builds once for every test.
var seamlessBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "seamless-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	seamlessBin = filepath.Join(dir, "seamless")
	build := exec.Command("go", "build", "-o", seamlessBin, "github.com/seamless-data/seamless/cmd/seamless")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: go build ./cmd/seamless: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// dsnEnv names the variable holding the DSN of the PostgreSQL server the tests use;
// .ci/run starts a server and sets it.
const dsnEnv = "SEAMLESS_TEST_POSTGRES_DSN"

// freshSchema creates a uniquely named schema on the test server, drops it when the
// test ends (after the processes using it stopped: cleanups run last-registered
// first, so call it before starting them) and returns a DSN whose search_path selects
// it. A cluster test without PostgreSQL fails: it has not passed.
func freshSchema(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Fatalf("%s is not set: the cluster tests need a real PostgreSQL server (bash .ci/run starts one), e.g.\n"+
			"  export %s='postgres://seamless:seamless@127.0.0.1:5432/postgres?sslmode=disable'", dsnEnv, dsnEnv)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "cluster_test_" + hex.EncodeToString(rnd[:])
	ident := pgx.Identifier{name}.Sanitize()
	admin := func(sql string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to the test server (%s): %v", dsnEnv, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin("CREATE SCHEMA " + ident)
	t.Cleanup(func() { admin("DROP SCHEMA " + ident + " CASCADE") })
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s: want a postgres:// URL, got %q", dsnEnv, dsn)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// logLine is one JSON log record of a seamless process.
type logLine map[string]any

func (l logLine) str(k string) string { s, _ := l[k].(string); return s }

// node is one `seamless serve` process.
type node struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port it serves on
	// Holder is how the etcd coordinator names this process in lease records.
	holder string

	mu     sync.Mutex
	lines  []logLine
	raw    []string
	exited chan struct{}
}

// serve starts `seamless serve --addr 127.0.0.1:0` with env added to the test's
// environment, waits for its seamless.http.serving log line, and stops it (SIGTERM,
// then SIGKILL) when the test ends.
func serve(t *testing.T, name string, env map[string]string, args ...string) *node {
	t.Helper()
	n := &node{name: name, exited: make(chan struct{})}
	n.cmd = exec.Command(seamlessBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	// Tests talk only to loopback: a live subscription (a request reaching the newest
	// bars) must not dial the public Binance stream.
	n.cmd.Env = append(os.Environ(), "SEAMLESS_BINANCE_WS_URL=ws://127.0.0.1:1/ws")
	for k, v := range env {
		n.cmd.Env = append(n.cmd.Env, k+"="+v)
	}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout = io.Discard
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	host, _ := os.Hostname()
	n.holder = host + ":" + strconv.Itoa(n.cmd.Process.Pid)
	serving := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l logLine
			_ = json.Unmarshal(sc.Bytes(), &l)
			n.mu.Lock()
			n.raw = append(n.raw, sc.Text())
			if l != nil {
				n.lines = append(n.lines, l)
			}
			n.mu.Unlock()
			if l.str("msg") == "seamless.http.serving" {
				serving <- l.str("addr")
			}
		}
		n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			n.dump(t, 40)
		}
	})
	select {
	case n.addr = <-serving:
	case <-n.exited:
		n.dump(t, 40)
		t.Fatalf("%s exited before serving", name)
	case <-time.After(60 * time.Second):
		n.dump(t, 40)
		t.Fatalf("%s: no seamless.http.serving log line after 60s", name)
	}
	return n
}

func (n *node) url() string { return "http://" + n.addr }

// kill sends SIGKILL and waits for the process to be gone.
func (n *node) kill(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", n.name, err)
	}
	<-n.exited
}

func (n *node) stop(t *testing.T) {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		t.Logf("%s did not stop on SIGTERM within 15s: killing it", n.name)
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
}

// logs returns the records whose msg is msg.
func (n *node) logs(msg string) []logLine {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []logLine
	for _, l := range n.lines {
		if l.str("msg") == msg {
			out = append(out, l)
		}
	}
	return out
}

// awaitLogs is logs(msg) once it has at least one line, or after 10 s: the process
// writes a line before it answers, but the pipe reaching this test may lag behind.
func (n *node) awaitLogs(msg string) []logLine {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if l := n.logs(msg); len(l) > 0 || time.Now().After(deadline) {
			return l
		}
	}
}

func (n *node) dump(t *testing.T, last int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	from := max(0, len(n.raw)-last)
	t.Logf("%s: last %d of %d log lines:\n%s", n.name, len(n.raw)-from, len(n.raw), strings.Join(n.raw[from:], "\n"))
}
