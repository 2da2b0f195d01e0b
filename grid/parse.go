package grid

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads an instant given as integer epoch seconds or as an RFC 3339 string
// ("2024-01-02T03:04:05Z", fractional seconds and offsets allowed) and returns epoch
// seconds. Sub-second parts of RFC 3339 times are truncated toward the past, so the
// result never lies after the instant written.
func ParseTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty time: want epoch seconds or RFC 3339")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("time %q is neither epoch seconds nor RFC 3339 (e.g. 2024-01-02T03:04:05Z)", s)
	}
	return FloorAlign(t.UnixNano(), int64(time.Second)) / int64(time.Second), nil
}
