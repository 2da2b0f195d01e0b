package pebblestore

import (
	"encoding/binary"
	"errors"

	"github.com/seamless-data/seamless"
)

// Key layout. Every key starts with a one-byte kind, then the series key:
//
//	series key = uvarint(len(node id)) ‖ node id ‖ uint64be(interval)
//	meta key   = 'm' ‖ series key                      → encoded seriesMeta
//	block key  = 'b' ‖ series key ‖ uint64be(index ^ 1<<63) → encoded block
//
// The length prefix makes series keys prefix-free, so no node id — whatever bytes it
// holds, ':' '/' and NUL included — can be a prefix of another series' keys, and the
// fixed-width interval keeps intervals of one node apart. Flipping the sign bit of the
// block index makes big-endian byte order agree with numeric order for negative
// (pre-1970) blocks, so one forward iterator reads a time range in ts order.
const (
	kindMeta  = 'm'
	kindBlock = 'b'
)

func seriesKey(s seamless.Series) []byte {
	k := make([]byte, 0, binary.MaxVarintLen64+len(s.NodeID)+8)
	k = binary.AppendUvarint(k, uint64(len(s.NodeID)))
	k = append(k, s.NodeID...)
	return binary.BigEndian.AppendUint64(k, uint64(s.Interval))
}

func metaKey(sk []byte) []byte {
	return append([]byte{kindMeta}, sk...)
}

func blockKey(sk []byte, index int64) []byte {
	k := make([]byte, 0, 1+len(sk)+8)
	k = append(k, kindBlock)
	k = append(k, sk...)
	return binary.BigEndian.AppendUint64(k, uint64(index)^(1<<63))
}

// parseMetaKey recovers the series from a meta key.
func parseMetaKey(k []byte) (seamless.Series, error) {
	if len(k) == 0 || k[0] != kindMeta {
		return seamless.Series{}, errors.New("not a meta key")
	}
	n, w := binary.Uvarint(k[1:])
	if w <= 0 || uint64(len(k)-1-w) != n+8 {
		return seamless.Series{}, errors.New("malformed series key")
	}
	node := k[1+w : 1+w+int(n)]
	iv := int64(binary.BigEndian.Uint64(k[1+w+int(n):]))
	return seamless.Series{NodeID: string(node), Interval: iv}, nil
}
