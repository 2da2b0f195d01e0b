// Package block is the column-block encoding shared by pebblestore and pgstore: the
// layout of a block's bytes, the codec that writes and reads it, and the alignment of
// blocks on a series' grid (Width, Index). Both stores persist these bytes as they are
// (a Pebble value, a PostgreSQL BYTEA), so the encoding must never change in place: a
// new layout needs a new Version, and existing data must keep reading back.
//
// A block holds the rows of one Width-wide stretch of a series' grid, column by column,
// so that reading it is one bulk copy per column:
//
//	version (1) ‖ rows uint32le ‖ columns (1) ‖ column types (1 each) ‖
//	ts int64le × rows ‖ for each column:
//	    float64, int64: 8-byte little-endian × rows
//	    bool:           1 byte × rows (BoolByte)
//	    string:         end offset uint32le × rows ‖ concatenated bytes
//
// Little-endian raw values are the in-memory layout on every machine Seamless targets,
// so decoding is a memmove; string end offsets give random access to a row range.
package block

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"unsafe"

	"github.com/seamless-data/seamless/frame"
)

// Version is the first byte of every block.
const Version = 1

// ErrCorrupt is wrapped by every error about bytes that are not a valid block of the
// expected schema.
var ErrCorrupt = errors.New("corrupt block")

// Width is the width in seconds of a series' blocks: bars grid points, or a single grid
// point for intervals so large that bars of them overflow int64.
func Width(interval, bars int64) int64 {
	if interval > math.MaxInt64/bars {
		return interval
	}
	return interval * bars
}

// Index returns the block holding ts: floor(ts / width). Blocks are aligned from epoch
// 0, so every write and read of a series agrees on them. Dividing, rather than
// computing an aligned start, cannot overflow at the ends of time.
func Index(ts, width int64) int64 {
	q := ts / width
	if ts%width < 0 {
		q--
	}
	return q
}

// BoolByte is how a bool is stored: 1 for true, 0 for false.
func BoolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

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

// Size is the encoded size of the rows of old (which may be nil) followed by the rows
// of f. The stores keep blocks to at most 65536 rows, so a row count fits in uint32;
// string offsets overflow only past 4 GiB of strings in one block.
func Size(old *Block, f *frame.Frame) int {
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

// Encode returns the encoding of the rows of old (nil for none) followed by the rows of
// f, in a new slice of Size(old, f) bytes. See EncodeInto.
func Encode(old *Block, f *frame.Frame) []byte {
	b := make([]byte, Size(old, f))
	EncodeInto(b, old, f)
	return b
}

// EncodeInto encodes the rows of old (nil for none) followed by the rows of f into b,
// which has exactly Size(old, f) bytes. Appending newer bars to a stored block thus
// copies its columns as bytes instead of decoding and re-encoding them. The caller
// guarantees that the rows stay sorted and unique: every ts of f follows old's last.
func EncodeInto(b []byte, old *Block, f *frame.Frame) {
	var on int
	if old != nil {
		on = old.n
	}
	fn := f.Len()
	n := on + fn
	b[0] = Version
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
		var oc column
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
				b[p+on+j] = BoolByte(v)
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

// Block is a parsed view of an encoded block; its slices point into the bytes given to
// Parse, which must stay unchanged while the Block is used.
type Block struct {
	n    int
	ts   []byte
	cols []column
}

type column struct {
	typ   frame.Type
	fixed []byte // float64, int64 and bool values
	offs  []byte // string end offsets
	data  []byte // string bytes
}

// Parse checks v's layout against the series' schema and returns a view of it. It reads
// only the header and the string offsets' last entries, so it is cheap enough to call
// twice per block on the read path. Errors wrap ErrCorrupt.
func Parse(v []byte, schema frame.Schema) (Block, error) {
	if len(v) < 6 || v[0] != Version {
		return Block{}, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	n := int(binary.LittleEndian.Uint32(v[1:]))
	ncols := int(v[5])
	if ncols != len(schema.Fields) || len(v) < 6+ncols {
		return Block{}, fmt.Errorf("%w: %d columns, schema has %d", ErrCorrupt, ncols, len(schema.Fields))
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
	blk := Block{n: n, cols: make([]column, ncols)}
	var ok bool
	if n > len(v)/8 {
		return Block{}, fmt.Errorf("%w: %d rows in %d bytes", ErrCorrupt, n, len(v))
	}
	if blk.ts, ok = take(8 * n); !ok {
		return Block{}, fmt.Errorf("%w: truncated ts", ErrCorrupt)
	}
	for i, f := range schema.Fields {
		c := column{typ: frame.Type(v[6+i])}
		if c.typ != f.Type {
			return Block{}, fmt.Errorf("%w: column %q stored as %v, schema says %v", ErrCorrupt, f.Name, c.typ, f.Type)
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
			return Block{}, fmt.Errorf("%w: column %q truncated", ErrCorrupt, f.Name)
		}
		blk.cols[i] = c
	}
	if p != len(v) {
		return Block{}, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(v)-p)
	}
	return blk, nil
}

// Len returns the number of rows in b.
func (b *Block) Len() int { return b.n }

// TS returns the ts of row i, which must be in [0, b.Len()).
func (b *Block) TS(i int) int64 {
	return int64(binary.LittleEndian.Uint64(b.ts[8*i:]))
}

// Span returns the rows [lo, hi) of b with ts in [start, end). Only the first and last
// blocks of a read are cut, so the common case is two comparisons.
func (b *Block) Span(start, end int64) (lo, hi int) {
	if b.n == 0 {
		return 0, 0
	}
	if b.TS(0) < start {
		lo = sort.Search(b.n, func(i int) bool { return b.TS(i) >= start })
	}
	hi = b.n
	if b.TS(b.n-1) >= end {
		hi = lo + sort.Search(b.n-lo, func(i int) bool { return b.TS(lo+i) >= end })
	}
	return lo, hi
}

// CopyRows decodes rows [lo, hi) of b into dst's rows starting at off. dst must have
// b's schema and its slices must already have room (see NewFrame). Errors wrap
// ErrCorrupt.
func (b *Block) CopyRows(dst *frame.Frame, off, lo, hi int) error {
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
func (c *column) copyStrings(dst []string, lo, hi int) error {
	end := func(i int) int {
		if i < 0 {
			return 0
		}
		return int(binary.LittleEndian.Uint32(c.offs[4*i:]))
	}
	first, last := end(lo-1), end(hi-1)
	if first > last || last > len(c.data) {
		return fmt.Errorf("%w: string offsets out of order", ErrCorrupt)
	}
	all := string(c.data[first:last])
	prev := first
	for j := range dst {
		e := end(lo + j)
		if e < prev || e > last {
			return fmt.Errorf("%w: string offsets out of order", ErrCorrupt)
		}
		dst[j] = all[prev-first : e-first]
		prev = e
	}
	return nil
}

// NewFrame returns a frame of the schema with n zeroed rows, ready for CopyRows.
func NewFrame(schema frame.Schema, n int) *frame.Frame {
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
