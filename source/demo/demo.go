// Package demo is a deterministic synthetic OHLCV source for node ids
// ohlcv:demo:{SYMBOL}:{tf}. The same node and ts always give the same bar, so the
// embedded default works with no network and tests can predict every value.
//
// Each bar is derived from a price path p(t) that is a pure function of (node, t): the
// bar opens at p(ts) and closes at p(ts+interval), high and low extend beyond both by a
// hashed fraction, and volume is a hashed positive number. OHLC relations always hold.
package demo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Options are the demo source's failure knobs.
type Options struct {
	// Latency is slept before answering each Fetch, e.g. 200ms.
	Latency time.Duration
	// ErrorRate in [0, 1] is the probability that a Fetch fails with a transient error.
	ErrorRate float64
	// Seed seeds the error draws (0: random).
	Seed  uint64
	Clock clock.Clock
}

// maxBarsPerCall bounds one Fetch like a real exchange's page limit would, so a bad
// range cannot make the generator allocate without bound.
const maxBarsPerCall = 10_000_000

// ErrInjected is the transient failure produced by ErrorRate.
var ErrInjected = errors.New("demo: injected transient upstream failure")

// Source generates demo bars. It implements seamless.Fetcher.
type Source struct {
	opts Options
	mu   sync.Mutex
	rand *rand.Rand
}

// New returns a demo source.
func New(opts Options) (*Source, error) {
	if opts.ErrorRate < 0 || opts.ErrorRate > 1 || math.IsNaN(opts.ErrorRate) {
		return nil, fmt.Errorf("demo: error rate %v outside [0, 1]", opts.ErrorRate)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Source{opts: opts, rand: rand.New(rand.NewPCG(seed, ^seed))}, nil
}

// Fetch implements seamless.Fetcher: the bars of every grid point of s in r that have
// closed by the clock's now. Like an exchange, the source does not serve the bar still
// forming (its values are the live tier's, see demolive) nor bars of the future, which
// would be stored as final if a caller asked for them.
func (d *Source) Fetch(ctx context.Context, s seamless.Series, r grid.Range) (*frame.Frame, error) {
	// Generating is quick enough never to wait on ctx; a cancelled caller still gets
	// the error it is owed rather than bars it no longer wants.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	node, err := seamless.ParseNodeID(s.NodeID)
	if err != nil {
		return nil, seamless.Permanent(err)
	}
	if node.Kind != "ohlcv" {
		return nil, seamless.Permanent(fmt.Errorf("demo: only ohlcv nodes are generated, not %q", node.Kind))
	}
	if n := r.Bars(s.Interval); n > maxBarsPerCall {
		return nil, seamless.Permanent(fmt.Errorf("demo: %d bars in one call, over the limit of %d", n, maxBarsPerCall))
	}
	if d.opts.Latency > 0 {
		if err := d.opts.Clock.Sleep(ctx, d.opts.Latency); err != nil {
			return nil, err
		}
	}
	if d.opts.ErrorRate > 0 {
		d.mu.Lock()
		fail := d.rand.Float64() < d.opts.ErrorRate
		d.mu.Unlock()
		if fail {
			return nil, ErrInjected
		}
	}
	closed := grid.R(r.Start, seamless.ClosedEnd(d.opts.Clock.Now().Unix(), s.Interval))
	return Bars(s.NodeID, s.Interval, r.Intersect(closed)), nil
}

// Bars returns the demo bars of node for every grid point in r. It is a pure function.
func Bars(nodeID string, interval int64, r grid.Range) *frame.Frame {
	a := r.Align(interval)
	n := int(a.Bars(interval))
	f := frame.New(frame.OHLCV, n)
	f.TS = f.TS[:n]
	o, h, l, c, v := grow(f, 0, n), grow(f, 1, n), grow(f, 2, n), grow(f, 3, n), grow(f, 4, n)
	pp := newPath(nodeID)
	next := pp.price(a.Start)
	for i := range n {
		ts := a.Start + int64(i)*interval
		open := next
		next = pp.price(ts + interval)
		hs := splitmix(pp.seed ^ uint64(ts))
		f.TS[i] = ts
		o[i], c[i] = open, next
		h[i] = max(open, next) * (1 + unit(hs)*0.002)
		l[i] = min(open, next) * (1 - unit(hs>>21)*0.002)
		v[i] = 1 + unit(hs>>42)*1000
	}
	return f
}

func grow(f *frame.Frame, col, n int) []float64 {
	f.Cols[col].F64 = f.Cols[col].F64[:n]
	return f.Cols[col].F64
}

// path is a node's deterministic price curve: a base level modulated by two slow
// waves and hashed noise.
type path struct {
	seed           uint64
	base, ph1, ph2 float64
}

func newPath(nodeID string) path {
	h := fnv.New64a()
	h.Write([]byte(nodeID))
	seed := h.Sum64()
	return path{
		seed: seed,
		base: 10 + unit(seed)*990,
		ph1:  unit(seed>>11) * 2 * math.Pi,
		ph2:  unit(seed>>23) * 2 * math.Pi,
	}
}

func (p path) price(t int64) float64 {
	x := float64(t)
	noise := unit(splitmix(p.seed+uint64(t)*0x9e3779b97f4a7c15)) - 0.5
	return p.base * math.Exp(0.2*math.Sin(x/604800*2*math.Pi+p.ph1)+0.03*math.Sin(x/21600*2*math.Pi+p.ph2)+0.004*noise)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit maps the low 21 bits of x to [0, 1).
func unit(x uint64) float64 { return float64(x&(1<<21-1)) / (1 << 21) }
