package frame

import (
	"slices"
	"sync"
	"testing"
)

func TestPoolNewPutReuse(t *testing.T) {
	var p Pool
	s := OHLCV
	f := p.New(s, 1000)
	if f.Len() != 0 || !slices.Equal(f.Schema().Fields, s.Fields) || cap(f.TS) < 1000 || cap(f.Col("close").F64) < 1000 {
		t.Fatalf("New: len %d, schema %v, cap %d", f.Len(), f.Schema(), cap(f.TS))
	}
	for i := range 1000 {
		f.TS = append(f.TS, int64(i))
		for k := range f.Cols {
			f.Cols[k].F64 = append(f.Cols[k].F64, float64(i))
		}
	}
	// The race detector makes sync.Pool drop some puts: try until an array comes back.
	reused := false
	for range 100 {
		old := &f.TS[:1][0]
		p.Put(f)
		f = p.New(s, 900) // the same class (1024)
		if f.Len() != 0 || len(f.Col("open").F64) != 0 {
			t.Fatal("a pooled frame must come back empty")
		}
		if &f.TS[:1][0] == old {
			reused = true
			break
		}
		f.TS = append(f.TS, 1)
	}
	if !reused {
		t.Fatal("Put arrays are never handed out again")
	}
}

func TestPoolLeavesOthersToTheGC(t *testing.T) {
	var p Pool
	big := p.New(OHLCV, 1<<maxPooledClass+1) // over the largest class: not pooled
	if cap(big.TS) != 1<<maxPooledClass+1 {
		t.Fatalf("cap %d", cap(big.TS))
	}
	p.Put(big)
	p.Put(nil)
	odd := New(OHLCV, 1000) // not a power of two: ignored
	p.Put(odd)
	if f := p.New(OHLCV, 1000); cap(f.TS) != 1024 {
		t.Fatalf("a non-class array was handed out: cap %d", cap(f.TS))
	}
	// Clone copies into pooled memory.
	src := New(OHLCV, 3)
	src.TS = append(src.TS, 1, 2, 3)
	for k := range src.Cols {
		src.Cols[k].F64 = append(src.Cols[k].F64, 1, 2, 3)
	}
	c := p.Clone(src)
	if !slices.Equal(c.TS, src.TS) || &c.TS[0] == &src.TS[0] {
		t.Fatal("Clone must copy")
	}
}

func TestPoolConcurrent(t *testing.T) {
	var p Pool
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				f := p.New(OHLCV, 100+(i*g)%2000)
				for j := range 50 {
					f.TS = append(f.TS, int64(g*1000+j))
				}
				for j := range 50 {
					if f.TS[j] != int64(g*1000+j) {
						t.Errorf("a pooled array is shared between two frames")
						return
					}
				}
				p.Put(f)
			}
		})
	}
	wg.Wait()
}
