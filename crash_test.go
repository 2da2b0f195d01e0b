package seamless_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/pebblestore"
)

// crashHelperEnv makes the test binary act as a backfilling process (see
// runCrashHelper) instead of running tests.
const crashHelperEnv = "SEAMLESS_TEST_CRASH_HELPER_DIR"

var crashRange = grid.R(day(365), day(0))

// runCrashHelper backfills crashRange into the Pebble store in dir with a slow source,
// printing a line after every chunk, until it is killed.
func runCrashHelper(dir string) {
	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	src, _ := demo.New(demo.Options{Latency: 20 * time.Millisecond})
	p, _ := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}})
	_, err = p.Backfill(context.Background(), seamless.BackfillRequest{
		NodeID: node, Interval: iv, Start: crashRange.Start, End: crashRange.End,
		Progress: func(pr seamless.BackfillProgress) { fmt.Println("chunk", pr.ChunksDone) },
	})
	fmt.Println("finished", err)
	os.Exit(0)
}

// TestKillMidBackfillLeavesStoreConsistent kills a backfilling process with SIGKILL and
// checks that, after reopening, coverage never claims bars that are not there.
func TestKillMidBackfillLeavesStoreConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	chunks := 0
	for chunks < 20 && lines.Scan() {
		if !strings.HasPrefix(lines.Text(), "chunk ") {
			t.Fatalf("helper: %s", lines.Text())
		}
		chunks++
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if chunks < 20 {
		t.Fatalf("helper stopped after %d chunks", chunks)
	}

	st, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer st.Close()
	ctx := context.Background()
	s := seamless.Series{NodeID: node, Interval: iv}
	cov, err := st.Coverage(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if cov.Seconds() < 20*900*iv {
		t.Fatalf("coverage %v holds fewer than the 20 chunks reported done", cov)
	}
	if cov.Covers(crashRange) {
		t.Fatal("the helper finished before it was killed; nothing was tested")
	}
	f, err := st.Read(ctx, s, crashRange)
	if err != nil {
		t.Fatal(err)
	}
	// Every covered grid point has its bar (the demo source has no gaps), and no bar
	// lies outside coverage.
	var want int
	for _, r := range cov.IntersectRange(crashRange).Ranges() {
		want += int(r.Bars(iv))
	}
	if f.Len() != want {
		t.Fatalf("%d bars stored but coverage %v implies %d", f.Len(), cov, want)
	}
	for _, ts := range f.TS {
		if !cov.Contains(ts) {
			t.Fatalf("bar %d outside coverage", ts)
		}
	}
}
