package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/internal/server/servertest"
	"github.com/seamless-data/seamless/internal/server/wire"
	"github.com/seamless-data/seamless/source/demo"
)

// TestTail: tail without --follow prints the history from --start to the newest
// closed bar, the same through a server as embedded, and stops; bad flags are bad
// requests.
func TestTail(t *testing.T) {
	e := servertest.StartLive(t, server.Config{}, seamless.SubscribeOptions{})
	start := grid.CeilAlign(e.Clock.Now().Add(-2*time.Hour).Unix(), 60)
	end := seamless.ClosedEnd(e.Clock.Now().Unix(), 60)
	dir := t.TempDir()
	code, out, stderr := run(t, dir, "tail", "--node", node, "--start", fmt.Sprint(start), "--format", "csv", "--server", e.HTTP.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "ts,open,high,low,close,volume" || len(lines) != 1+int((end-start)/60) {
		t.Fatalf("%d lines, header %q", len(lines), lines[0])
	}
	want := demo.Bars(node, 60, grid.R(start, end))
	for i, line := range lines[1:] {
		f := strings.Split(line, ",")
		ts, _ := strconv.ParseInt(f[0], 10, 64)
		if ts != want.TS[i] || f[4] != cell(&want.Cols[3], i) {
			t.Fatalf("line %d: %q, want ts %d close %s", i+1, line, want.TS[i], cell(&want.Cols[3], i))
		}
	}

	// Embedded, on the wall clock: an hour back from now, as JSON events.
	code, out, stderr = run(t, dir, "tail", "--node", node, "--start", "-1h", "--format", "json")
	if code != 0 {
		t.Fatalf("embedded: exit %d: %s", code, stderr)
	}
	var bars, caught int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev wire.StreamEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		switch ev.Type {
		case seamless.EventBars:
			bars += *ev.Rows
		case seamless.EventCaughtUp:
			caught++
		}
	}
	if caught != 1 || bars < 59 || bars > 61 {
		t.Fatalf("embedded: %d bars, %d caught_up:\n%s", bars, caught, out)
	}

	for _, args := range [][]string{
		{"tail"},
		{"tail", "--node", node, "--format", "xml"},
		{"tail", "--node", node, "--start", "tomorrow"},
		{"tail", "--node", node, "--interval", "300", "--server", e.HTTP.URL},
		{"tail", "--node", node, "--start", fmt.Sprint(end + 3600), "--server", e.HTTP.URL},
	} {
		if code, _, _ := run(t, dir, args...); code != exitBadRequest {
			t.Fatalf("%v: exit %d, want %d", args, code, exitBadRequest)
		}
	}
}
