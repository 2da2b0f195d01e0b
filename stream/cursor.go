package stream

import (
	"fmt"
	"strconv"
	"strings"
)

// cursorPrefix versions the cursor encoding. Cursors are opaque to clients: today one
// names the next bar's ts; trade streams will add an event id after it, under a new
// prefix, and old cursors keep their meaning.
const cursorPrefix = "c1."

// Cursor encodes the resume cursor of a subscription whose next expected bar is at ts.
func Cursor(next int64) string { return cursorPrefix + strconv.FormatInt(next, 10) }

// ParseCursor decodes a cursor made by Cursor, returning the ts of the next bar.
func ParseCursor(c string) (int64, error) {
	rest, ok := strings.CutPrefix(c, cursorPrefix)
	if !ok {
		return 0, fmt.Errorf("cursor %q: not a cursor this server issued", c)
	}
	ts, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cursor %q: not a cursor this server issued", c)
	}
	return ts, nil
}
