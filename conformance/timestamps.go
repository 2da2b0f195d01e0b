package conformance

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/seamless-data/seamless/internal/csvio"
)

// timestamps returns the input's ts in epoch seconds and which rows have a readable
// one (valid is nil when all do). ts is the frame's own TS slice when no conversion was
// needed; it is never modified.
func timestamps(in Input, c *collector) (ts []int64, valid []bool) {
	if in.TSText != nil {
		return parseText(in.TSText, c)
	}
	raw := in.Frame.TS
	unit := csvio.InferUnit(raw)
	if unit == 1 {
		return raw, nil
	}
	ts = make([]int64, len(raw))
	valid = make([]bool, len(raw))
	convert(raw, unit, ts, valid, nil, c)
	return ts, valid
}

// convert divides the integer epochs raw (at the rows idx of ts, or the first len(raw)
// rows when idx is nil) by unit ticks per second. Values that are not whole seconds are
// invalid_timestamp, sampled by their raw value.
func convert(raw []int64, unit int64, ts []int64, valid []bool, idx []int, c *collector) {
	for k, v := range raw {
		i := k
		if idx != nil {
			i = idx[k]
		}
		if v%unit != 0 {
			c.hit(fInvalidTimestamp, v)
			continue
		}
		ts[i], valid[i] = v/unit, true
		if unit != 1 {
			c.hit(fTSCast, ts[i])
		}
	}
}

// parseText reads textual timestamps: integer epochs (one inferred unit for all integer
// cells, as for numeric ts) or RFC 3339 times. Unreadable cells are summarised in one
// warning, since they have no ts to sample.
func parseText(cells []string, c *collector) (ts []int64, valid []bool) {
	ts = make([]int64, len(cells))
	valid = make([]bool, len(cells))
	var ints []int64
	var intRows []int
	var bad []string
	nbad := 0
	for i, s := range cells {
		s = strings.TrimSpace(s)
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			ints = append(ints, v)
			intRows = append(intRows, i)
			continue
		}
		t, utc, ok := parseTime(s)
		if !ok || t.Nanosecond() != 0 {
			nbad++
			if len(bad) < MaxSamples {
				bad = append(bad, strconv.Quote(cells[i]))
			}
			continue
		}
		ts[i], valid[i] = t.Unix(), true
		if !utc {
			c.hit(fTSTimezoneNormalized, ts[i])
		}
	}
	if len(ints) > 0 {
		convert(ints, csvio.InferUnit(ints), ts, valid, intRows, c)
	}
	if nbad > 0 {
		c.count(fInvalidTimestamp, nbad)
		c.warn(fmt.Sprintf("%d timestamp(s) are neither integer epochs nor whole-second RFC 3339 times, e.g. %s", nbad, strings.Join(bad, ", ")))
	}
	return ts, valid
}

// naiveLayouts are the zone-less forms accepted as UTC.
var naiveLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02"}

// parseTime reads an RFC 3339 time, also accepting a space for the 'T' and a missing
// zone. utc is false when the time needed normalising: it had a non-UTC offset, or no
// zone and was taken as UTC.
func parseTime(s string) (t time.Time, utc, ok bool) {
	if len(s) > 10 && s[10] == ' ' {
		s = s[:10] + "T" + s[11:]
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		_, off := t.Zone()
		return t, off == 0, true
	}
	for _, layout := range naiveLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, false, true
		}
	}
	return time.Time{}, false, false
}
