package frame

import (
	"math/bits"
	"sync"
)

// maxPooledClass bounds the column arrays a Pool keeps: up to 1<<16 rows (512 KiB per
// column). Larger frames are rare, and holding their memory would cost more than
// allocating it again.
const maxPooledClass = 16

// A Pool recycles the numeric column memory of frames that serve short-lived answers
// (a response written and dropped), so that a busy server does not allocate, zero and
// collect the same arrays again for every request. Arrays are kept by capacity
// class (powers of two) in sync.Pools, so idle memory is returned to the garbage
// collector within two cycles. The zero Pool is ready to use and safe for concurrent
// use.
type Pool struct {
	i64 [maxPooledClass + 1]sync.Pool // of *[]int64
	f64 [maxPooledClass + 1]sync.Pool // of *[]float64
}

// class is the pool class of an array of capacity n: its capacity rounded up to a
// power of two, as an exponent, or -1 when it is not pooled.
func class(n int) int {
	c := bits.Len(uint(max(n, 1) - 1))
	if c > maxPooledClass {
		return -1
	}
	return c
}

// New is like the package's New: an empty frame of schema s with room for capacity
// rows, whose int64 and float64 arrays (ts included) come from the pool when it
// holds some. Their old contents are not cleared; the frame has length 0.
func (p *Pool) New(s Schema, capacity int) *Frame {
	c := class(capacity)
	if c < 0 {
		p = nil
	}
	return p.frame(s, capacity, c)
}

// frame makes an empty frame of schema s with room for capacity rows: int64 and
// float64 arrays of class c from p, or newly allocated when p is nil.
func (p *Pool) frame(s Schema, capacity, c int) *Frame {
	f := &Frame{TS: p.int64s(capacity, c), Cols: make([]Column, len(s.Fields))}
	for i, fd := range s.Fields {
		col := Column{Field: fd}
		switch fd.Type {
		case Float64:
			col.F64 = p.float64s(capacity, c)
		case Int64:
			col.I64 = p.int64s(capacity, c)
		case String:
			col.Str = make([]string, 0, capacity)
		case Bool:
			col.Bool = make([]bool, 0, capacity)
		}
		f.Cols[i] = col
	}
	return f
}

func (p *Pool) int64s(capacity, c int) []int64 {
	if p == nil {
		return make([]int64, 0, capacity)
	}
	return getArray[int64](&p.i64[c], c)
}

func (p *Pool) float64s(capacity, c int) []float64 {
	if p == nil {
		return make([]float64, 0, capacity)
	}
	return getArray[float64](&p.f64[c], c)
}

// Clone is like f.Clone, into pooled memory.
func (p *Pool) Clone(f *Frame) *Frame {
	out := p.New(f.Schema(), f.Len())
	out.AppendRows(f, 0, f.Len())
	return out
}

// Put hands f's int64 and float64 arrays back to the pool. Nothing may use f, or any
// frame or Arrow record sharing its memory, afterwards. Arrays whose capacity is not
// one of the pool's classes (a frame grown by append past its capacity, or not made
// by the pool) are left to the garbage collector.
func (p *Pool) Put(f *Frame) {
	if f == nil {
		return
	}
	putArray(p.i64[:], f.TS)
	for _, c := range f.Cols {
		putArray(p.i64[:], c.I64)
		putArray(p.f64[:], c.F64)
	}
}

func getArray[T any](p *sync.Pool, c int) []T {
	if a, ok := p.Get().(*[]T); ok {
		return (*a)[:0]
	}
	return make([]T, 0, 1<<c)
}

func putArray[T any](pools []sync.Pool, a []T) {
	n := cap(a)
	if n == 0 || n&(n-1) != 0 {
		return
	}
	if c := class(n); c >= 0 {
		a = a[:0]
		pools[c].Put(&a)
	}
}
