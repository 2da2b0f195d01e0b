package pgstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"unsafe"

	"github.com/seamless-data/seamless/frame"
)

// A block holds the rows of one blockWidth-wide stretch of a series' grid, column by
// column, so that reading it is one bulk copy per column:
//
//	version (1) ‖ rows uint32le ‖ columns (1) ‖ column types (1 each) ‖
//	ts int64le × rows ‖ for each column:
//	    float64, int64: 8-byte little-endian × rows
//	    bool:           1 byte × rows
//	    string:         end offset uint32le × rows ‖ concatenated bytes
//
// Little-endian raw values are the in-memory layout on every machine Seamless targets,
// so decoding is a memmove; string end offsets give random access to a row range.
const blockVersion = 1

var errCorrupt = errors.New("corrupt block")

// littleEndian reports whether the machine stores integers little-endian, i.e. whether
// the raw block bytes can be copied straight into []int64 and []float64.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// asBytes views an int64 or float64 slice's memory as bytes. Views are only ever made of
// Go-allocated, correctly aligned slices (the destination of a decode, the source of an
// encode); raw value bytes are never reinterpreted as numbers in place, which could be
// unaligned and which checkptr rejects.
func asBytes[T int64 | float64](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*8)
}

func putFixed[T int64 | float64](dst []byte, src []T) {
	if littleEndian {
		copy(dst, asBytes(src))
		return
	}
	for i, v := range src {
		binary.LittleEndian.PutUint64(dst[i*8:], bits(v))
	}
}

func getFixed[T int64 | float64](dst []T, src []byte) {
	if littleEndian {
		copy(asBytes(dst), src)
		return
	}
	for i := range dst {
		dst[i] = fromBits[T](binary.LittleEndian.Uint64(src[i*8:]))
	}
}

func bits[T int64 | float64](v T) uint64 {
	switch x := any(v).(type) {
	case float64:
		return math.Float64bits(x)
	case int64:
		return uint64(x)
	}
	panic("unreachable")
}

func fromBits[T int64 | float64](u uint64) T {
	var v T
	switch p := any(&v).(type) {
	case *float64:
		*p = math.Float64frombits(u)
	case *int64:
		*p = int64(u)
	}
	return v
}

// blockSize is the encoded size of the rows of old (which may be nil) followed by the
// rows of f. A block holds at most maxBlockBars rows, so its row count fits in uint32;
// string offsets overflow only past 4 GiB of strings in one block.
func blockSize(old *block, f *frame.Frame) int {
	n := f.Len()
	if old != nil {
		n += old.n
	}
	size := 6 + len(f.Cols) + 8*n
	for i := range f.Cols {
		c := &f.Cols[i]
		switch c.Type {
		case frame.Float64, frame.Int64:
			size += 8 * n
		case frame.Bool:
			size += n
		case frame.String:
			size += 4 * n
			if old != nil {
				size += len(old.cols[i].data)
			}
			for _, s := range c.Str {
				size += len(s)
			}
		}
	}
	return size
}

// encodeBlockInto encodes the rows of old (nil for none) followed by the rows of f into
// b, which has exactly blockSize(old, f) bytes. Appending newer bars to a stored block
// thus copies its columns as bytes instead of decoding and re-encoding them. The caller
// guarantees that the rows stay sorted and unique: every ts of f follows old's last.
func encodeBlockInto(b []byte, old *block, f *frame.Frame) {
	var on int
	if old != nil {
		on = old.n
	}
	fn := f.Len()
	n := on + fn
	b[0] = blockVersion
	binary.LittleEndian.PutUint32(b[1:], uint32(n))
	b[5] = byte(len(f.Cols))
	p := 6
	for i := range f.Cols {
		b[p] = byte(f.Cols[i].Type)
		p++
	}
	if old != nil {
		copy(b[p:], old.ts)
	}
	putFixed(b[p+8*on:], f.TS)
	p += 8 * n
	for i := range f.Cols {
		c := &f.Cols[i]
		var oc blockCol
		if old != nil {
			oc = old.cols[i]
		}
		switch c.Type {
		case frame.Float64:
			copy(b[p:], oc.fixed)
			putFixed(b[p+8*on:], c.F64)
			p += 8 * n
		case frame.Int64:
			copy(b[p:], oc.fixed)
			putFixed(b[p+8*on:], c.I64)
			p += 8 * n
		case frame.Bool:
			copy(b[p:], oc.fixed)
			for j, v := range c.Bool {
				b[p+on+j] = boolByte(v)
			}
			p += n
		case frame.String:
			offs, data := b[p:p+4*n], p+4*n
			copy(offs, oc.offs)
			copy(b[data:], oc.data)
			end := len(oc.data)
			for j, s := range c.Str {
				copy(b[data+end:], s)
				end += len(s)
				binary.LittleEndian.PutUint32(offs[4*(on+j):], uint32(end))
			}
			p = data + end
		}
	}
}

// block is a parsed view of an encoded block; its slices point into the value bytes.
type block struct {
	n    int
	ts   []byte
	cols []blockCol
}

type blockCol struct {
	typ   frame.Type
	fixed []byte // float64, int64 and bool values
	offs  []byte // string end offsets
	data  []byte // string bytes
}

// parseBlock checks v's layout against the series' schema and returns a view of it. It
// reads only the header and the string offsets' last entries, so it is cheap enough to
// call twice per block on the read path.
func parseBlock(v []byte, schema frame.Schema) (block, error) {
	if len(v) < 6 || v[0] != blockVersion {
		return block{}, fmt.Errorf("%w: bad header", errCorrupt)
	}
	n := int(binary.LittleEndian.Uint32(v[1:]))
	ncols := int(v[5])
	if ncols != len(schema.Fields) || len(v) < 6+ncols {
		return block{}, fmt.Errorf("%w: %d columns, schema has %d", errCorrupt, ncols, len(schema.Fields))
	}
	p := 6 + ncols
	take := func(k int) ([]byte, bool) {
		if k < 0 || k > len(v)-p {
			return nil, false
		}
		s := v[p : p+k : p+k]
		p += k
		return s, true
	}
	blk := block{n: n, cols: make([]blockCol, ncols)}
	var ok bool
	if n > len(v)/8 {
		return block{}, fmt.Errorf("%w: %d rows in %d bytes", errCorrupt, n, len(v))
	}
	if blk.ts, ok = take(8 * n); !ok {
		return block{}, fmt.Errorf("%w: truncated ts", errCorrupt)
	}
	for i, f := range schema.Fields {
		c := blockCol{typ: frame.Type(v[6+i])}
		if c.typ != f.Type {
			return block{}, fmt.Errorf("%w: column %q stored as %v, schema says %v", errCorrupt, f.Name, c.typ, f.Type)
		}
		switch c.typ {
		case frame.Float64, frame.Int64:
			c.fixed, ok = take(8 * n)
		case frame.Bool:
			c.fixed, ok = take(n)
		case frame.String:
			if c.offs, ok = take(4 * n); ok {
				end := 0
				if n > 0 {
					end = int(binary.LittleEndian.Uint32(c.offs[4*(n-1):]))
				}
				c.data, ok = take(end)
			}
		default:
			ok = false
		}
		if !ok {
			return block{}, fmt.Errorf("%w: column %q truncated", errCorrupt, f.Name)
		}
		blk.cols[i] = c
	}
	if p != len(v) {
		return block{}, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(v)-p)
	}
	return blk, nil
}

func (b *block) tsAt(i int) int64 {
	return int64(binary.LittleEndian.Uint64(b.ts[8*i:]))
}

// span returns the rows [lo, hi) of b with ts in [start, end). Only the first and last
// blocks of a read are cut, so the common case is two comparisons.
func (b *block) span(start, end int64) (lo, hi int) {
	if b.n == 0 {
		return 0, 0
	}
	if b.tsAt(0) < start {
		lo = sort.Search(b.n, func(i int) bool { return b.tsAt(i) >= start })
	}
	hi = b.n
	if b.tsAt(b.n-1) >= end {
		hi = lo + sort.Search(b.n-lo, func(i int) bool { return b.tsAt(lo+i) >= end })
	}
	return lo, hi
}

// copyRows decodes rows [lo, hi) of b into dst's rows starting at off. dst's slices
// must already have room.
func (b *block) copyRows(dst *frame.Frame, off, lo, hi int) error {
	k := hi - lo
	getFixed(dst.TS[off:off+k], b.ts[8*lo:8*hi])
	for i := range b.cols {
		c, d := &b.cols[i], &dst.Cols[i]
		switch c.typ {
		case frame.Float64:
			getFixed(d.F64[off:off+k], c.fixed[8*lo:8*hi])
		case frame.Int64:
			getFixed(d.I64[off:off+k], c.fixed[8*lo:8*hi])
		case frame.Bool:
			for j, v := range c.fixed[lo:hi] {
				d.Bool[off+j] = v != 0
			}
		case frame.String:
			if err := c.copyStrings(d.Str[off:off+k], lo, hi); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyStrings converts the string rows [lo, hi) with one allocation: the rows' bytes
// become one string, and each row is a substring of it.
func (c *blockCol) copyStrings(dst []string, lo, hi int) error {
	end := func(i int) int {
		if i < 0 {
			return 0
		}
		return int(binary.LittleEndian.Uint32(c.offs[4*i:]))
	}
	first, last := end(lo-1), end(hi-1)
	if first > last || last > len(c.data) {
		return fmt.Errorf("%w: string offsets out of order", errCorrupt)
	}
	all := string(c.data[first:last])
	prev := first
	for j := range dst {
		e := end(lo + j)
		if e < prev || e > last {
			return fmt.Errorf("%w: string offsets out of order", errCorrupt)
		}
		dst[j] = all[prev-first : e-first]
		prev = e
	}
	return nil
}

// newFrame returns a frame of the schema with n zeroed rows, ready for copyRows.
func newFrame(schema frame.Schema, n int) *frame.Frame {
	f := frame.New(schema, n)
	f.TS = f.TS[:n]
	for i := range f.Cols {
		c := &f.Cols[i]
		switch c.Type {
		case frame.Float64:
			c.F64 = c.F64[:n]
		case frame.Int64:
			c.I64 = c.I64[:n]
		case frame.String:
			c.Str = c.Str[:n]
		case frame.Bool:
			c.Bool = c.Bool[:n]
		}
	}
	return f
}
