package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/client"
	"github.com/seamless-data/seamless/internal/server"
	"github.com/seamless-data/seamless/live"
	"github.com/seamless-data/seamless/live/demolive"
	"github.com/seamless-data/seamless/source/demo"
	"github.com/seamless-data/seamless/store/memstore"
)

// The load clients of BenchmarkStreamLatency1000Remote: the test binary re-executed
// with loadClientsEnv set to the server's URL runs runLoadClients instead of the tests.
const (
	loadClientsEnv     = "SEAMLESS_TEST_STREAM_LOAD_URL"
	loadSubscribersEnv = "SEAMLESS_TEST_STREAM_LOAD_SUBSCRIBERS"
	loadBarsEnv        = "SEAMLESS_TEST_STREAM_LOAD_BARS"
	loadFormatEnv      = "SEAMLESS_TEST_STREAM_LOAD_FORMAT"
	loadNode           = "ohlcv:demo:BTC-USD:1s"
)

// loadResult is what the load clients print: the close→delivery latencies, sorted.
type loadResult struct {
	LatenciesNS []int64 `json:"latencies_ns"`
	Error       string  `json:"error,omitempty"`
}

// runLoadClients subscribes the number of clients loadSubscribersEnv says to loadNode
// (live only), prints "ready" once all have caught up, then records, for each bar that
// closes after that, its close→delivery latency at every client (after decoding),
// until each has received loadBarsEnv such bars; it prints them as one JSON line.
func runLoadClients(url string) int {
	n, _ := strconv.Atoi(os.Getenv(loadSubscribersEnv))
	bars, _ := strconv.Atoi(os.Getenv(loadBarsEnv))
	format := client.Format(os.Getenv(loadFormatEnv))
	out := json.NewEncoder(os.Stdout)
	c, err := client.New(url, client.WithFormat(format))
	if err != nil || n < 1 || bars < 1 {
		_ = out.Encode(loadResult{Error: fmt.Sprintf("bad load settings: %d subscribers, %d bars, %v", n, bars, err)})
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		lat      []int64
		from     time.Time // bars closing from then on are measured
		caught   sync.WaitGroup
		finished sync.WaitGroup
		failures = make(chan error, n)
	)
	caught.Add(n)
	finished.Add(n)
	start := make(chan struct{})
	for range n {
		go func() {
			defer finished.Done()
			once := sync.OnceFunc(caught.Done)
			defer once()
			got := 0
			for ev, err := range c.Subscribe(ctx, seamless.SubscribeRequest{NodeID: loadNode}) {
				if err != nil {
					failures <- err
					return
				}
				switch ev.Type {
				case seamless.EventCaughtUp:
					once()
				case seamless.EventBars:
					now := time.Now()
					closed := time.Unix(ev.Frame.TS[ev.Frame.Len()-1]+1, 0)
					select {
					case <-start:
					default:
						continue // closed before every client was subscribed
					}
					if closed.Before(from) || ev.Origin != string(seamless.OriginLive) {
						continue
					}
					mu.Lock()
					lat = append(lat, int64(now.Sub(closed)))
					mu.Unlock()
					if got++; got == bars {
						return
					}
				}
			}
		}()
	}
	caught.Wait()
	mu.Lock()
	from = time.Now().Truncate(time.Second).Add(time.Second)
	mu.Unlock()
	close(start)
	fmt.Println("ready")
	finished.Wait()
	select {
	case err := <-failures:
		_ = out.Encode(loadResult{Error: err.Error()})
		return 1
	default:
	}
	slices.Sort(lat)
	_ = out.Encode(loadResult{LatenciesNS: lat})
	return 0
}

// BenchmarkStreamLatency1000Remote is BenchmarkStreamLatency1000 with the 1,000
// clients in another process (this test binary re-executed), so that their decoding
// does not run inside the server's process: the server here, a demo series of
// 1-second bars on the wall clock, and b.N bar closes measured at every client. The
// two processes still share the machine's cores. It also reports the server's heap per
// idle subscriber (server side only).
func BenchmarkStreamLatency1000Remote(b *testing.B) {
	for _, format := range []client.Format{client.JSON, client.Arrow} {
		b.Run(string(format), func(b *testing.B) { benchLatencyRemote(b, 1000, format) })
	}
}

func benchLatencyRemote(b *testing.B, subscribers int, format client.Format) {
	src, err := demo.New(demo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	tier, err := live.New(live.Options{Feeds: map[string]seamless.LiveFeed{"demo": demolive.New(demolive.Options{})}})
	if err != nil {
		b.Fatal(err)
	}
	st := memstore.New()
	p, err := seamless.New(seamless.Config{Store: st, Sources: seamless.Sources{"demo": src}, Live: tier, Seed: 1,
		Subscriptions: seamless.SubscribeOptions{Buffer: 64}})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(server.Config{Provider: p, Stream: server.StreamConfig{MaxConnections: 2 * subscribers}})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer func() {
		srv.Close()
		hs.Close()
		tier.Close()
		p.Close()
		st.Close()
	}()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadClientsEnv+"="+hs.URL, loadSubscribersEnv+"="+strconv.Itoa(subscribers),
		loadBarsEnv+"="+strconv.Itoa(b.N), loadFormatEnv+"="+string(format))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 256<<20)
	if !lines.Scan() || lines.Text() != "ready" {
		b.Fatalf("load clients: %q %v", lines.Text(), lines.Err())
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ResetTimer()
	if !lines.Scan() {
		b.Fatalf("load clients: %v", lines.Err())
	}
	b.StopTimer()
	var res loadResult
	if err := json.Unmarshal(lines.Bytes(), &res); err != nil || res.Error != "" {
		b.Fatalf("load clients: %v %s", err, res.Error)
	}
	if len(res.LatenciesNS) != subscribers*b.N {
		b.Fatalf("%d deliveries, want %d", len(res.LatenciesNS), subscribers*b.N)
	}
	lat := res.LatenciesNS
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/float64(subscribers)/1024, "server-KiB/idle-sub")
}
