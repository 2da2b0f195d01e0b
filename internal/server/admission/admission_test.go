package admission

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaults(t *testing.T) {
	c := New(Config{}, nil).Config()
	if want := max(DefaultMinSlots, DefaultSlotsPerCPU*runtime.GOMAXPROCS(0)); c.Slots != want || c.MaxQueue != DefaultQueuePerSlot*want || c.MaxWait != DefaultMaxWait {
		t.Errorf("defaults %+v", c)
	}
	if c := New(Config{Slots: 3, MaxQueue: 5, MaxWait: time.Second}, nil).Config(); c.Slots != 3 || c.MaxQueue != 5 || c.MaxWait != time.Second {
		t.Errorf("explicit %+v", c)
	}
}

// TestQueueThenAdmit: requests past the slots wait and are admitted in turn as slots
// are released; none is refused while they fit the queue and the wait.
func TestQueueThenAdmit(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{Name: "fetch", Slots: 2, MaxQueue: 10, MaxWait: time.Minute}, m)
	ctx := context.Background()
	var held []func()
	for range 2 {
		r, err := c.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	var wg sync.WaitGroup
	admitted := make(chan func(), 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			admitted <- r
		}()
	}
	for c.Queued() != 10 {
		time.Sleep(time.Millisecond)
	}
	if v := testutil.ToFloat64(m.queued.WithLabelValues("fetch")); v != 10 {
		t.Errorf("queued gauge %v", v)
	}
	for _, r := range held {
		r()
	}
	for range 10 {
		(<-admitted)()
	}
	wg.Wait()
	if c.InUse() != 0 || c.Queued() != 0 {
		t.Errorf("after: %d in use, %d queued", c.InUse(), c.Queued())
	}
	if n := testutil.CollectAndCount(m.wait); n != 1 {
		t.Errorf("wait histogram series %d", n)
	}
}

func TestRefusals(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, "fetch")
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{Name: "fetch", Slots: 1, MaxQueue: 1, MaxWait: 30 * time.Millisecond}, m)
	ctx := context.Background()
	release, err := c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// The wait runs out.
	_, err = c.Acquire(ctx)
	var sat *Saturated
	if !errors.As(err, &sat) || sat.QueueFull || sat.Waited < 30*time.Millisecond || sat.RetryAfter <= 0 {
		t.Fatalf("wait timeout: %v (%+v)", err, sat)
	}
	// The queue is full: refused at once.
	waiting := make(chan error, 1)
	go func() {
		_, err := c.Acquire(ctx)
		waiting <- err
	}()
	for c.Queued() != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Acquire(ctx); !errors.As(err, &sat) || !sat.QueueFull {
		t.Fatalf("queue full: %v", err)
	}
	<-waiting
	// The request's own context ends first.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	c2 := New(Config{Name: "fetch", Slots: 1, MaxWait: time.Hour}, m)
	r2, _ := c2.Acquire(ctx)
	defer r2()
	if _, err := c2.Acquire(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	for reason, want := range map[string]float64{"wait_timeout": 2, "queue_full": 1, "canceled": 1} {
		if v := testutil.ToFloat64(m.refusal.WithLabelValues("fetch", reason)); v != want {
			t.Errorf("refused %s = %v, want %v", reason, v, want)
		}
	}
	if c.Queued() != 0 || c2.Queued() != 0 {
		t.Errorf("queue not drained: %d %d", c.Queued(), c2.Queued())
	}
}

// TestMetricsExportedFromStart: every series of the named pools exists at zero before
// any request.
func TestMetricsExportedFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg, "fetch", "stream"); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil {
		t.Fatal(err)
	}
	// wait and queued: one per pool; refused: three reasons per pool.
	if n != 2+2+6 {
		t.Errorf("%d series at start", n)
	}
}
