package seamless

import (
	"container/list"
	"context"
	"sync"

	"github.com/seamless-data/seamless/clock"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// The cache tier: an in-memory LRU of whole aligned chunks (window_bars × interval)
// that are fully covered and fully closed. Such chunks only change when someone
// rewrites covered history (an import, a late live correction), so the provider drops
// a series' cached chunks whenever it writes to them itself, and with a store other
// processes write to (a RewriteCounter) each chunk is tagged with the series' rewrite
// count read with the coverage, and served only to fetches that read the same count.
// A chunk the cache cannot hold (not covered, still forming) is always read from
// storage.

// maxCachedRequestChunks is the largest request (in chunks) served through the cache.
const maxCachedRequestChunks = 64

// DefaultCacheBytes is the cache tier's size unless Config.CacheBytes says otherwise.
const DefaultCacheBytes = 64 << 20

type cacheKey struct {
	series Series
	start  int64
}

type cacheEntry struct {
	key      cacheKey
	f        *frame.Frame
	bytes    int64
	rewrites uint64 // the series' rewrite count when f was read (see RewriteCounter)
	// clean: the conformance pipeline, run on the chunk over its whole range when it
	// was cached, found nothing (every grid point present, nothing to normalise).
	clean bool
}

type barCache struct {
	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	lru      *list.List // front: most recently used
	entries  map[cacheKey]*list.Element
}

func newBarCache(maxBytes int64) *barCache {
	if maxBytes <= 0 {
		return nil
	}
	return &barCache{maxBytes: maxBytes, lru: list.New(), entries: map[cacheKey]*list.Element{}}
}

func frameBytes(f *frame.Frame) int64 {
	n := int64(8 * len(f.TS))
	for i := range f.Cols {
		c := &f.Cols[i]
		switch c.Type {
		case frame.String:
			for _, s := range c.Str {
				n += int64(len(s)) + 16
			}
		case frame.Bool:
			n += int64(len(c.Bool))
		default:
			n += int64(8 * c.Len())
		}
	}
	return n + 128
}

// get returns the chunk cached under k for a fetch that read the series' rewrite
// count rewrites. A chunk cached under an older count is dropped: a rewrite may have
// changed it.
func (c *barCache) get(k cacheKey, rewrites uint64) (f *frame.Frame, clean, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return nil, false, false
	}
	ent := e.Value.(*cacheEntry)
	switch {
	case ent.rewrites < rewrites:
		c.remove(e)
		return nil, false, false
	case ent.rewrites > rewrites: // a fetch that read the count before a rewrite
		return nil, false, false
	}
	c.lru.MoveToFront(e)
	return ent.f, ent.clean, true
}

func (c *barCache) remove(e *list.Element) {
	ent := e.Value.(*cacheEntry)
	c.bytes -= ent.bytes
	c.lru.Remove(e)
	delete(c.entries, ent.key)
}

func (c *barCache) put(k cacheKey, f *frame.Frame, rewrites uint64, clean bool) {
	n := frameBytes(f)
	if n > c.maxBytes/4 {
		return // one chunk must not flush the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		if e.Value.(*cacheEntry).rewrites > rewrites {
			return // cached by a fetch that saw a later rewrite
		}
		c.remove(e)
	}
	c.entries[k] = c.lru.PushFront(&cacheEntry{key: k, f: f, bytes: n, rewrites: rewrites, clean: clean})
	c.bytes += n
	for c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

// invalidate drops the cached chunks of s that overlap r.
func (c *barCache) invalidate(s Series, r grid.Range, width int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range r.ChunkSeq(width) {
		if e, ok := c.entries[cacheKey{s, ch.Start}]; ok {
			c.remove(e)
		}
	}
}

// reader is the read side of the cache and storage tiers: coverage, and bars from
// cached chunks or the store.
type reader struct {
	store  Store
	cache  *barCache // nil: no cache tier
	frames frame.Pool
	obs    CacheObserver
	clock  clock.Clock
	window int64 // window_bars: a cached chunk is window bars wide
}

// coverage reads s's coverage and, from a store other processes write to, its rewrite
// count (0 otherwise), for the cache tier.
func (t *reader) coverage(ctx context.Context, s Series) (grid.Set, uint64, error) {
	if rc, ok := t.store.(RewriteCounter); ok && t.cache != nil {
		return rc.CoverageRewrites(ctx, s)
	}
	cov, err := t.store.Coverage(ctx, s)
	return cov, 0, err
}

// readResult is what read returns.
type readResult struct {
	f *frame.Frame
	// cached is how many of f's bars came from the cache.
	cached int
	// pooled: f is pooled memory (see Result.Release).
	pooled bool
	// clean: every bar of f came from a cached chunk the conformance pipeline found
	// clean (see cacheEntry.clean).
	clean bool
}

// read serves rq.want from the cache tier and storage. Chunks that are fully covered
// and closed come from the cache, or are read whole from storage and cached; the rest
// is read from storage as requested. Consecutive chunks that need storage are read in
// one call. rewrites is the series' rewrite count read with cov (0 from a store that is
// not a RewriteCounter).
func (t *reader) read(ctx context.Context, rq resolved, cov grid.Set, rewrites uint64) (readResult, error) {
	width := t.window * rq.series.Interval
	if t.cache == nil || (rq.want.End-rq.want.Start)/width > maxCachedRequestChunks {
		// Large reads stream from storage in one call, as fast as a cache copy, and
		// would only evict the hot recent chunks the cache is for.
		f, err := t.store.Read(ctx, rq.series, rq.want)
		return readResult{f: f}, err
	}
	closedEnd := ClosedEnd(t.clock.Now().Unix(), rq.series.Interval)
	g := gathering{t: t, rq: rq, rewrites: rewrites, clean: true}
	for ch := range rq.want.ChunkSeq(width) {
		if err := g.chunk(ctx, ch, ch.End <= closedEnd && cov.Covers(ch)); err != nil {
			return readResult{}, err
		}
	}
	if err := g.flush(ctx); err != nil {
		return readResult{}, err
	}
	t.obs.Cache(g.hits, g.misses)
	return t.stitch(g.pieces, g.clean && len(g.pieces) > 0), nil
}

// piece is part of an answer: rows restricted to the request's want.
type piece struct {
	f      *frame.Frame
	cached bool
}

// gathering collects the pieces of one read, chunk by chunk.
type gathering struct {
	t            *reader
	rq           resolved
	rewrites     uint64
	pieces       []piece
	hits, misses int
	clean        bool         // every piece a clean cached chunk
	run          grid.Range   // chunks to read from storage in one call
	runCacheable []grid.Range // the whole, cacheable chunks of run
}

// chunk adds one aligned chunk of the request: from the cache when it holds it, else
// to the run of chunks read from storage together.
func (g *gathering) chunk(ctx context.Context, ch grid.Range, cacheable bool) error {
	if cacheable {
		if cf, clean, ok := g.t.cache.get(cacheKey{g.rq.series, ch.Start}, g.rewrites); ok {
			if err := g.flush(ctx); err != nil {
				return err
			}
			g.hits++
			g.clean = g.clean && clean
			part := ch.Intersect(g.rq.want)
			g.pieces = append(g.pieces, piece{f: cf.Slice(cf.SearchTS(part.Start), cf.SearchTS(part.End)), cached: true})
			return nil
		}
		g.misses++
		g.runCacheable = append(g.runCacheable, ch)
	}
	// Whole cacheable chunks are read (to cache them); of the others only the part the
	// request wants.
	r := ch
	if !cacheable {
		r = ch.Intersect(g.rq.want)
	}
	if g.run.Empty() {
		g.run = r
	} else {
		g.run.End = r.End
	}
	return nil
}

// flush reads the pending run from storage, caching its whole cacheable chunks.
func (g *gathering) flush(ctx context.Context) error {
	if g.run.Empty() {
		return nil
	}
	f, err := g.t.store.Read(ctx, g.rq.series, g.run)
	if err != nil {
		return err
	}
	for _, ch := range g.runCacheable {
		cf := f.Slice(f.SearchTS(ch.Start), f.SearchTS(ch.End)).Clone()
		g.t.cache.put(cacheKey{g.rq.series, ch.Start}, cf, g.rewrites, g.t.chunkClean(g.rq, ch, cf))
	}
	want := g.run.Intersect(g.rq.want)
	g.pieces = append(g.pieces, piece{f: f.Slice(f.SearchTS(want.Start), f.SearchTS(want.End))})
	g.clean = false
	g.run, g.runCacheable = grid.Range{}, nil
	return nil
}

// stitch makes one frame of the pieces. A stitched or cached answer is new memory the
// caller owns: pooled, so that a server that releases its results (Result.Release) does
// not allocate it per request.
func (t *reader) stitch(pieces []piece, clean bool) readResult {
	if len(pieces) == 1 {
		if pieces[0].cached {
			return readResult{f: t.frames.Clone(pieces[0].f), cached: pieces[0].f.Len(), pooled: true, clean: clean}
		}
		return readResult{f: pieces[0].f}
	}
	var schema frame.Schema
	n := 0
	for _, pc := range pieces {
		n += pc.f.Len()
		if len(pc.f.Cols) > 0 {
			schema = pc.f.Schema()
		}
	}
	if len(schema.Fields) == 0 && n == 0 {
		return readResult{f: &frame.Frame{}}
	}
	res := readResult{f: t.frames.New(schema, n), pooled: true, clean: clean}
	for _, pc := range pieces {
		if pc.f.Len() == 0 {
			continue
		}
		res.f.AppendRows(pc.f, 0, pc.f.Len())
		if pc.cached {
			res.cached += pc.f.Len()
		}
	}
	return res
}

// chunkClean runs the conformance pipeline on a whole closed chunk about to be cached
// and reports whether it found nothing at all: every grid point of ch present, in
// order, with sane values. Any part of a clean chunk is then clean too, so answers made
// only of such parts need no second pass (see Provider.check).
func (t *reader) chunkClean(rq resolved, ch grid.Range, f *frame.Frame) bool {
	if int64(f.Len()) != ch.Bars(rq.series.Interval) {
		return false // a market gap (or a hole): the full pipeline reports it per answer
	}
	out, rep, err := conformance.Run(conformance.Input{Frame: f}, conformanceOptions(rq, ch))
	return err == nil && rep.Clean() && out == f
}
