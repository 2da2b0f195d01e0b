// Package fingerprint computes dataset fingerprints (SPEC §5): "sha256:" + the hex
// SHA-256 of a canonical JSON encoding of a frame's rows and the metadata that identify
// it. Identical data gives identical fingerprints across processes, backends and
// languages: the encoding is byte for byte what the Python reference produces with
//
//	json.dumps({"frame": rows, "metadata": meta}, sort_keys=True, separators=(",", ":"))
//
// where rows are the frame's rows sorted by ts, each an object of every column
// including ts; NaN and ±Inf are null; floats are written as Python's repr writes them
// and strings are escaped as with ensure_ascii=True.
//
// The encoding is streamed into the hash through a fixed buffer, so fingerprinting a
// frame allocates O(columns), not O(rows) (plus a row permutation when the frame is not
// already sorted by ts).
package fingerprint

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/seamless-data/seamless/frame"
)

// ConformanceVersion is the conformance_version every fingerprint covers.
const ConformanceVersion = "v2"

// Prefix starts every fingerprint.
const Prefix = "sha256:"

// Meta is the metadata a fingerprint covers besides the rows.
type Meta struct {
	NodeID   string
	Interval int64
	// CoverageBounds is the fetch's [first, last+interval), nil (JSON null) when the
	// result holds no rows.
	CoverageBounds *[2]int64
}

// Dataset returns the fingerprint of f with meta: "sha256:" and 64 lower-case hex
// digits. A nil frame is an empty one. f must be valid (frame.Validate); an invalid
// frame is a programming error and panics, because no fingerprint of it is meaningful.
func Dataset(f *frame.Frame, meta Meta) string {
	h := sha256.New()
	if err := Encode(h, f, meta); err != nil {
		panic(fmt.Sprintf("fingerprint: %v", err))
	}
	var sum [sha256.Size]byte
	return Prefix + hex.EncodeToString(h.Sum(sum[:0]))
}

// bufSize is the encoder's flush threshold: large enough that hashing runs on long
// blocks, small enough to stay in L1/L2.
const bufSize = 32 << 10

// Encode writes the canonical encoding that Dataset hashes to w. It fails if f is
// invalid or w fails.
func Encode(w io.Writer, f *frame.Frame, meta Meta) error {
	if f == nil {
		f = &frame.Frame{}
	}
	if err := f.Validate(); err != nil {
		return err
	}
	e := encoder{w: w, buf: make([]byte, 0, bufSize+bufSize/2)}
	e.buf = append(e.buf, `{"frame":[`...)
	e.rows(f)
	e.buf = append(e.buf, `],"metadata":{"conformance_version":`...)
	e.buf = appendString(e.buf, ConformanceVersion)
	e.buf = append(e.buf, `,"coverage_bounds":`...)
	if b := meta.CoverageBounds; b != nil {
		e.buf = append(e.buf, '[')
		e.buf = strconv.AppendInt(e.buf, b[0], 10)
		e.buf = append(e.buf, ',')
		e.buf = strconv.AppendInt(e.buf, b[1], 10)
		e.buf = append(e.buf, ']')
	} else {
		e.buf = append(e.buf, "null"...)
	}
	e.buf = append(e.buf, `,"interval":`...)
	e.buf = strconv.AppendInt(e.buf, meta.Interval, 10)
	e.buf = append(e.buf, `,"node_id":`...)
	e.buf = appendString(e.buf, meta.NodeID)
	e.buf = append(e.buf, "}}"...)
	e.flush()
	return e.err
}

type encoder struct {
	w   io.Writer
	buf []byte
	err error
}

func (e *encoder) flush() {
	if e.err == nil && len(e.buf) > 0 {
		_, e.err = e.w.Write(e.buf)
	}
	e.buf = e.buf[:0]
}

// key is one member of a row object: its JSON key with the separator before it and
// the colon after it, and the column it comes from (nil for ts).
type key struct {
	name   string
	prefix []byte
	col    *frame.Column
}

func (e *encoder) rows(f *frame.Frame) {
	keys := []key{{name: "ts"}}
	for i := range f.Cols {
		keys = append(keys, key{name: f.Cols[i].Name, col: &f.Cols[i]})
	}
	// Python sorts str keys by code point; Go compares strings bytewise, and UTF-8
	// preserves code-point order.
	slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.name, b.name) })
	for i := range keys {
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		keys[i].prefix = append(appendString([]byte{sep}, keys[i].name), ':')
	}

	order := sortedOrder(f.TS)
	for n := range f.TS {
		if e.err != nil {
			return
		}
		r := n
		if order != nil {
			r = order[n]
		}
		if n > 0 {
			e.buf = append(e.buf, ',')
		}
		for i := range keys {
			k := &keys[i]
			e.buf = append(e.buf, k.prefix...)
			switch c := k.col; {
			case c == nil:
				e.buf = strconv.AppendInt(e.buf, f.TS[r], 10)
			case c.Type == frame.Float64:
				e.buf = appendFloat(e.buf, c.F64[r])
			case c.Type == frame.Int64:
				e.buf = strconv.AppendInt(e.buf, c.I64[r], 10)
			case c.Type == frame.String:
				e.buf = appendString(e.buf, c.Str[r])
			case c.Type == frame.Bool:
				if c.Bool[r] {
					e.buf = append(e.buf, "true"...)
				} else {
					e.buf = append(e.buf, "false"...)
				}
			}
		}
		e.buf = append(e.buf, '}')
		if len(e.buf) >= bufSize {
			e.flush()
		}
	}
}

// sortedOrder returns the row permutation that sorts ts, stably so that rows with equal
// ts keep their input order, or nil when ts is already non-decreasing.
func sortedOrder(ts []int64) []int {
	if slices.IsSorted(ts) {
		return nil
	}
	order := make([]int, len(ts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ts[a], ts[b]) })
	return order
}
