package venuehttp

import (
	"math"
	"strconv"
)

// ParseDecimal parses the plain decimal text venues send prices and sizes in: an
// optional '-', digits, and an optional fraction ("42000.01000000"). It refuses what
// strconv.ParseFloat alone would also take — "NaN", "Inf", hex floats, exponents,
// "+1", ".5" — none of which a venue sends for a price, so such a value is a changed
// or broken answer, not a number. It returns the value, or why it is refused.
func ParseDecimal(s string) (float64, string) {
	if !isDecimal(s) {
		return 0, "not a decimal number"
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, "not a finite number"
	}
	return v, ""
}

func isDecimal(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0 && i+1 < len(s):
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// BarFields name the values of an OHLCV bar in frame.OHLCV order, for CheckBar's
// answer.
var BarFields = [5]string{"open", "high", "low", "close", "volume"}

// CheckBar reports the first inconsistency of an OHLCV bar (open, high, low, close,
// volume): a negative price or volume, a high below another price, a low above one.
// It returns the index of the offending value in BarFields and why, or −1. A venue
// never sends such a bar; storing one would serve garbage as authoritative.
func CheckBar(b [5]float64) (int, string) {
	o, h, l, c, v := b[0], b[1], b[2], b[3], b[4]
	switch {
	case l < 0:
		return 2, "negative price"
	case v < 0:
		return 4, "negative volume"
	case h < max(o, c, l):
		return 1, "below open, low or close"
	case l > min(o, c, h):
		return 2, "above open, high or close"
	}
	return -1, ""
}
