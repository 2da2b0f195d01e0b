package seamless

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/seamless-data/seamless/frame"
	"github.com/seamless-data/seamless/grid"
)

// Series identifies one stored bar series: a node id and a bar interval in seconds.
type Series struct {
	NodeID   string `json:"node_id"`
	Interval int64  `json:"interval"`
}

func (s Series) String() string { return fmt.Sprintf("%s@%ds", s.NodeID, s.Interval) }

// NodeID is a parsed node id of the standard grammar {kind}:{source}:{symbol}:{timeframe}.
// The symbol may itself contain ':' and '/': kind and source are the first two parts,
// the timeframe the last, and the symbol everything between.
type NodeID struct {
	Kind, Source, Symbol, Timeframe string
	// Interval is the timeframe in seconds.
	Interval int64
}

// MaxNodeIDBytes bounds every node id, standard or routed: a node id becomes a store
// key, a file name, a lease key and a metric label, so an unbounded one lets a client
// grow each of them without limit.
const MaxNodeIDBytes = 256

// checkNodeIDLength rejects a node id over MaxNodeIDBytes, quoting only its start.
func checkNodeIDLength(id string) error {
	if len(id) > MaxNodeIDBytes {
		return fmt.Errorf("node id %q… is %d bytes, over the limit of %d", id[:32], len(id), MaxNodeIDBytes)
	}
	return nil
}

// symbolByte reports whether b may appear in a symbol: [A-Za-z0-9/:._-] (SPEC §1's
// ':' and '/' included, nothing that needs escaping in a URL, a path or a label).
func symbolByte(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
		b == '/' || b == ':' || b == '.' || b == '_' || b == '-'
}

// ParseNodeID parses a standard node id such as "ohlcv:binance:BTC/USDT:1m". The id is
// at most MaxNodeIDBytes long and its symbol is made of [A-Za-z0-9/:._-].
func ParseNodeID(id string) (NodeID, error) {
	if err := checkNodeIDLength(id); err != nil {
		return NodeID{}, err
	}
	first := strings.IndexByte(id, ':')
	last := strings.LastIndexByte(id, ':')
	if first < 0 {
		return NodeID{}, fmt.Errorf("node id %q: want {kind}:{source}:{symbol}:{timeframe}", id)
	}
	second := strings.IndexByte(id[first+1:], ':')
	if second < 0 || first+1+second >= last {
		return NodeID{}, fmt.Errorf("node id %q: want {kind}:{source}:{symbol}:{timeframe}", id)
	}
	second += first + 1
	n := NodeID{Kind: id[:first], Source: id[first+1 : second], Symbol: id[second+1 : last], Timeframe: id[last+1:]}
	for part, v := range map[string]string{"kind": n.Kind, "source": n.Source, "symbol": n.Symbol, "timeframe": n.Timeframe} {
		if v == "" {
			return NodeID{}, fmt.Errorf("node id %q: empty %s", id, part)
		}
		if strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return NodeID{}, fmt.Errorf("node id %q: %s contains white space or control characters", id, part)
		}
	}
	for i := 0; i < len(n.Symbol); i++ {
		if !symbolByte(n.Symbol[i]) {
			return NodeID{}, fmt.Errorf("node id %q: symbol contains %q (allowed: letters, digits and / : . _ -)", id, n.Symbol[i])
		}
	}
	iv, err := ParseTimeframe(n.Timeframe)
	if err != nil {
		return NodeID{}, fmt.Errorf("node id %q: %w", id, err)
	}
	n.Interval = iv
	return n, nil
}

// Schema returns the standard frame schema of the node's kind.
func (n NodeID) Schema() (frame.Schema, bool) { return frame.SchemaForKind(n.Kind) }

func (n NodeID) String() string {
	return n.Kind + ":" + n.Source + ":" + n.Symbol + ":" + n.Timeframe
}

var timeframeUnits = map[byte]int64{'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 7 * 86400}

// ParseTimeframe converts a timeframe such as "1m", "15m", "4h", "1d" or "1w" to seconds.
func ParseTimeframe(tf string) (int64, error) {
	if len(tf) < 2 {
		return 0, fmt.Errorf("timeframe %q: want a count and a unit s, m, h, d or w (e.g. 1m)", tf)
	}
	unit, ok := timeframeUnits[tf[len(tf)-1]]
	if !ok {
		return 0, fmt.Errorf("timeframe %q: unknown unit %q (want s, m, h, d or w)", tf, tf[len(tf)-1:])
	}
	n, err := strconv.ParseInt(tf[:len(tf)-1], 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/unit {
		return 0, fmt.Errorf("timeframe %q: count must be a positive integer", tf)
	}
	return n * unit, nil
}

// ClosedEnd returns the end of the closed-bar region at time now (epoch seconds): every
// grid bar with ts < ClosedEnd has ts+interval <= now.
func ClosedEnd(now, interval int64) int64 {
	return grid.FloorAlign(now, interval)
}
