package pebblestore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
	"github.com/seamless-data/seamless/store/internal/block"
)

// seriesMeta is what a series' meta key holds: its block size in bars (fixed when the
// series is first written, so changing Options.BlockBars never misreads old data), its
// schema (once a write has given it one) and its coverage. It is rewritten, in the same batch as the blocks, by every
// write, which is what makes bars and coverage atomic.
type seriesMeta struct {
	blockBars int64
	schema    frame.Schema
	hasSchema bool
	cov       grid.Set
}

const metaVersion = 1

// encodeMeta lays a seriesMeta out as
//
//	version ‖ uvarint(blockBars) ‖ hasSchema ‖ uvarint(len(schema JSON)) ‖ schema JSON ‖
//	uvarint(ranges) ‖ (varint start ‖ varint end)*
//
// The schema is JSON because it is read once per call and must stay readable as
// frame types grow; coverage is binary because it is rewritten by every write.
func encodeMeta(m seriesMeta) ([]byte, error) {
	var schema []byte
	if m.hasSchema {
		var err error
		if schema, err = json.Marshal(m.schema); err != nil {
			return nil, err
		}
	}
	rs := m.cov.Ranges()
	b := make([]byte, 0, 2+binary.MaxVarintLen64*(2+2*len(rs))+len(schema))
	b = append(b, metaVersion)
	b = binary.AppendUvarint(b, uint64(m.blockBars))
	b = append(b, block.BoolByte(m.hasSchema))
	b = binary.AppendUvarint(b, uint64(len(schema)))
	b = append(b, schema...)
	b = binary.AppendUvarint(b, uint64(len(rs)))
	for _, r := range rs {
		b = binary.AppendVarint(b, r.Start)
		b = binary.AppendVarint(b, r.End)
	}
	return b, nil
}

var errShort = errors.New("truncated")

func decodeMeta(b []byte) (seriesMeta, error) {
	var m seriesMeta
	if len(b) < 2 {
		return m, errShort
	}
	if b[0] != metaVersion {
		return m, fmt.Errorf("unknown meta version %d", b[0])
	}
	bars, w := binary.Uvarint(b[1:])
	if w <= 0 || bars == 0 || bars > maxBlockBars || len(b) < 2+w {
		return m, errors.New("bad block size")
	}
	m.blockBars = int64(bars)
	m.hasSchema = b[1+w] == 1
	b = b[2+w:]
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return m, errShort
	}
	b = b[w:]
	if m.hasSchema {
		sc, err := decodeSchema(b[:n])
		if err != nil {
			return m, fmt.Errorf("schema: %w", err)
		}
		m.schema = sc
	}
	b = b[n:]
	count, w := binary.Uvarint(b)
	if w <= 0 || count > uint64(len(b)) {
		return m, errShort
	}
	b = b[w:]
	rs := make([]grid.Range, count)
	for i := range rs {
		s, w1 := binary.Varint(b)
		if w1 <= 0 {
			return m, errShort
		}
		e, w2 := binary.Varint(b[w1:])
		if w2 <= 0 {
			return m, errShort
		}
		rs[i] = grid.R(s, e)
		b = b[w1+w2:]
	}
	if len(b) != 0 {
		return m, fmt.Errorf("%d trailing bytes", len(b))
	}
	m.cov = grid.NewSet(rs...)
	return m, nil
}

// Decoded schemas are cached by their JSON: every read decodes its series' meta from
// its snapshot, and a JSON decode would cost more than reading a thousand bars. Series
// share a handful of schemas, so the cache stays tiny; past maxCachedSchemas distinct
// schemas it stops growing and decodes the rest each time.
var (
	schemaCache     sync.Map // string(JSON) → frame.Schema
	schemaCacheSize atomic.Int64
)

const maxCachedSchemas = 1024

// decodeSchema returns the schema encoded as raw, which callers must not modify.
func decodeSchema(raw []byte) (frame.Schema, error) {
	if sc, ok := schemaCache.Load(string(raw)); ok {
		return sc.(frame.Schema), nil
	}
	var sc frame.Schema
	if err := json.Unmarshal(raw, &sc); err != nil {
		return frame.Schema{}, err
	}
	if schemaCacheSize.Add(1) <= maxCachedSchemas {
		schemaCache.Store(string(raw), sc)
	}
	return sc, nil
}
