package pgstore

import "math"

// block.go is pebblestore's block encoding, copied byte for byte but for the package
// clause, together with the three helpers below (pebblestore's keys.go and meta.go), so
// both stores read and write the same column blocks. They belong in one shared package,
// store/internal/block; until it exists, change them in both places.

// blockWidth is the width in seconds of a series' blocks: bars grid points, or a
// single grid point for intervals so large that bars of them overflow int64.
func blockWidth(interval, bars int64) int64 {
	if interval > math.MaxInt64/bars {
		return interval
	}
	return interval * bars
}

// blockIndex returns the block holding ts: floor(ts / width). Blocks are aligned from
// epoch 0, so every write and read of a series agrees on them. Dividing, rather than
// computing an aligned start, cannot overflow at the ends of time.
func blockIndex(ts, width int64) int64 {
	q := ts / width
	if ts%width < 0 {
		q--
	}
	return q
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
