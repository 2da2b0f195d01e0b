// Package admission decides when a request may start its work: a bounded number run at
// once, the next ones wait their turn in a bounded queue for a bounded time, and only
// a request that cannot get a slot within that time — the server is really saturated —
// is refused. A bare semaphore refused the 17th concurrent request at once, so a fleet
// of strategies starting together was answered 429 on an idle CPU.
//
// A Controller is one pool of slots. The gateway keeps two: fetch slots, held while a
// request plans, reads, backfills and checks its bars, and stream slots, held while
// the answer is written to the client (bounded by a stall deadline on each write, so a
// reader that stops reading cannot keep a slot or starve the fetches).
package admission

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	// DefaultSlotsPerCPU sizes an automatic pool: a fetch alternates CPU work (read,
	// check, encode) with waiting (store I/O, backfill from upstream), so more than
	// one per core keeps the cores busy.
	DefaultSlotsPerCPU = 8
	// DefaultMinSlots is the smallest automatic pool.
	DefaultMinSlots = 16
	// DefaultQueuePerSlot sizes the queue from the pool.
	DefaultQueuePerSlot = 32
	// DefaultMaxWait is the longest a request waits for a slot.
	DefaultMaxWait = 10 * time.Second
)

// Config sizes a Controller. Zero fields take the defaults.
type Config struct {
	// Name labels the pool's metrics ("fetch", "stream").
	Name string
	// Slots is how many requests hold a slot at once; 0 sizes the pool from the
	// machine: max(DefaultMinSlots, DefaultSlotsPerCPU × GOMAXPROCS).
	Slots int
	// MaxQueue bounds the requests waiting for a slot (0: DefaultQueuePerSlot × Slots);
	// one more is refused at once.
	MaxQueue int
	// MaxWait bounds a request's wait (0: DefaultMaxWait). A request whose own deadline
	// comes sooner waits only until then.
	MaxWait time.Duration
}

// AutoSlots is the pool size that Slots 0 selects on this machine.
func AutoSlots() int {
	return max(DefaultMinSlots, DefaultSlotsPerCPU*runtime.GOMAXPROCS(0))
}

func (c Config) withDefaults() Config {
	if c.Slots <= 0 {
		c.Slots = AutoSlots()
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultQueuePerSlot * c.Slots
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Name == "" {
		c.Name = "default"
	}
	return c
}

// Controller is a pool of slots with a bounded wait queue. It is safe for concurrent
// use.
type Controller struct {
	cfg    Config
	slots  chan struct{}
	queued atomic.Int64
	m      *Metrics
}

// New returns a Controller; m may be nil (no metrics).
func New(cfg Config, m *Metrics) *Controller {
	cfg = cfg.withDefaults()
	return &Controller{cfg: cfg, slots: make(chan struct{}, cfg.Slots), m: m}
}

// Config returns the controller's configuration, defaults applied.
func (c *Controller) Config() Config { return c.cfg }

// Saturated is the refusal of a request that found no slot: the queue was full, or its
// wait ran out. RetryAfter is a hint for the client.
type Saturated struct {
	Pool       string
	Slots      int
	Queued     int
	Waited     time.Duration
	QueueFull  bool
	RetryAfter time.Duration
}

func (e *Saturated) Error() string {
	if e.QueueFull {
		return fmt.Sprintf("server saturated: all %d %s slots busy and %d requests already waiting; retry later", e.Slots, e.Pool, e.Queued)
	}
	return fmt.Sprintf("server saturated: no %s slot free after waiting %s (%d in use, %d waiting); retry later",
		e.Pool, e.Waited.Round(time.Millisecond), e.Slots, e.Queued)
}

// Acquire takes a slot, waiting in the queue if none is free, and returns the function
// that gives it back (call it exactly once). It fails with *Saturated when the queue is
// full or the wait passes MaxWait, and with ctx's error when ctx ends first.
func (c *Controller) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.slots <- struct{}{}:
		c.m.admitted(c.cfg.Name, 0)
		return c.release, nil
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n := c.queued.Add(1); n > int64(c.cfg.MaxQueue) {
		c.queued.Add(-1)
		c.m.refused(c.cfg.Name, "queue_full")
		return nil, &Saturated{Pool: c.cfg.Name, Slots: c.cfg.Slots, Queued: int(n - 1), QueueFull: true, RetryAfter: time.Second}
	}
	c.m.queue(c.cfg.Name, 1)
	defer func() {
		c.queued.Add(-1)
		c.m.queue(c.cfg.Name, -1)
	}()
	start := time.Now()
	t := time.NewTimer(c.cfg.MaxWait)
	defer t.Stop()
	select {
	case c.slots <- struct{}{}:
		c.m.admitted(c.cfg.Name, time.Since(start))
		return c.release, nil
	case <-t.C:
		c.m.refused(c.cfg.Name, "wait_timeout")
		return nil, &Saturated{Pool: c.cfg.Name, Slots: c.cfg.Slots, Queued: int(c.queued.Load() - 1), Waited: time.Since(start), RetryAfter: time.Second}
	case <-ctx.Done():
		c.m.refused(c.cfg.Name, "canceled")
		return nil, ctx.Err()
	}
}

func (c *Controller) release() { <-c.slots }

// InUse is the number of slots held now.
func (c *Controller) InUse() int { return len(c.slots) }

// Queued is the number of requests waiting now.
func (c *Controller) Queued() int { return int(c.queued.Load()) }

// Metrics are the admission metrics of every pool of a process.
type Metrics struct {
	wait    *prometheus.HistogramVec
	queued  *prometheus.GaugeVec
	refusal *prometheus.CounterVec
}

// NewMetrics registers the admission metrics on reg, with every series of the given
// pools exported from the start.
func NewMetrics(reg prometheus.Registerer, pools ...string) (*Metrics, error) {
	m := &Metrics{
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seamless_admission_wait_seconds",
			Help:    "Time admitted requests waited for a slot, by pool (0 when one was free).",
			Buckets: []float64{0, .001, .005, .025, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"pool"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seamless_admission_queued",
			Help: "Requests waiting for a slot now, by pool.",
		}, []string{"pool"}),
		refusal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_admission_refused_total",
			Help: "Requests that got no slot, by pool and reason (queue_full, wait_timeout, canceled).",
		}, []string{"pool", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.wait, m.queued, m.refusal} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, p := range pools {
		m.wait.WithLabelValues(p)
		m.queued.WithLabelValues(p)
		for _, r := range []string{"queue_full", "wait_timeout", "canceled"} {
			m.refusal.WithLabelValues(p, r)
		}
	}
	return m, nil
}

func (m *Metrics) admitted(pool string, waited time.Duration) {
	if m != nil {
		m.wait.WithLabelValues(pool).Observe(waited.Seconds())
	}
}

func (m *Metrics) queue(pool string, d float64) {
	if m != nil {
		m.queued.WithLabelValues(pool).Add(d)
	}
}

func (m *Metrics) refused(pool, reason string) {
	if m != nil {
		m.refusal.WithLabelValues(pool, reason).Inc()
	}
}
