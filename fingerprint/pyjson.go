package fingerprint

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// appendFloat appends x as Python's json.dumps writes a float (float.__repr__), with
// NaN and ±Inf as null: the shortest digits that round-trip, fixed notation with at
// least one fractional digit ("100.0", "0.0001") when the decimal exponent e satisfies
// -4 <= e < 16, otherwise "d[.ddd]e±XX" with a signed exponent of at least two digits
// ("1e-07", "1e+16").
//
// The magnitude tests below decide the notation exactly: 1e16 is a double, and rounding
// is monotone, so |x| >= 1e16 iff its shortest repr is >= 1e16; likewise |x| >= 1e-4
// (the double nearest 0.0001) iff its shortest repr is >= 0.0001.
func appendFloat(dst []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(dst, "null"...)
	}
	a := math.Abs(x)
	switch {
	case a == 0:
		if math.Signbit(x) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	case a < 1<<53 && x == math.Trunc(x):
		// Integral values below 2^53 print as the exact integer: the spacing of doubles
		// there is at most 1, so no shorter digit string rounds to x. The common case
		// for volumes and round prices, and several times faster than the general path.
		return append(strconv.AppendInt(dst, int64(x), 10), '.', '0')
	case a >= 1e16 || a < 1e-4:
		// Go's shortest 'e' format has the same digits, a signed exponent and a
		// two-digit minimum, exactly as Python's repr.
		return strconv.AppendFloat(dst, x, 'e', -1, 64)
	case a < 1e14:
		if b, ok := appendShortDecimal(dst, x, a); ok {
			return b
		}
	}
	n := len(dst)
	dst = strconv.AppendFloat(dst, x, 'f', -1, 64)
	for _, c := range dst[n:] {
		if c == '.' {
			return dst
		}
	}
	return append(dst, '.', '0')
}

// decimalScales are the fraction lengths appendShortDecimal tries: prices in ticks and
// volumes in lots rarely need more.
var decimalScales = [...]struct {
	f float64
	u uint64
}{{1e1, 1e1}, {1e2, 1e2}, {1e3, 1e3}, {1e4, 1e4}, {1e5, 1e5}, {1e6, 1e6}}

// appendShortDecimal writes x (a = |x|, 1e-4 <= a < 1e14) as m / 10^k for the smallest
// k <= 6 at which that decimal reads back as x, and reports whether one did. This is
// the shortest repr: m has at most 15 significant digits, and distinct decimals of at
// most 15 significant digits are distinct doubles, so no other such decimal (and so no
// shorter one) reads back as x. m / 10^k is exact in float64 arithmetic because m < 2^53
// and 10^k are exact and IEEE division rounds correctly, as parsing does.
func appendShortDecimal(dst []byte, x, a float64) ([]byte, bool) {
	for _, s := range decimalScales {
		m := math.Round(a * s.f)
		if m >= 1e15 {
			return dst, false
		}
		if m/s.f != a {
			continue
		}
		if x < 0 {
			dst = append(dst, '-')
		}
		u := uint64(m)
		dst = strconv.AppendUint(dst, u/s.u, 10)
		dst = append(dst, '.')
		frac := u % s.u
		for p := s.u / 10; p > 0; p /= 10 {
			dst = append(dst, byte('0'+frac/p%10))
		}
		return dst, true
	}
	return dst, false
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped as Python's json.dumps does with
// ensure_ascii=True: \" \\ \n \r \t \b \f by name, every other byte outside printable
// ASCII (0x20–0x7e) as \uXXXX in lower-case hex, characters beyond the BMP as a UTF-16
// surrogate pair. '/' is not escaped. Go strings may hold invalid UTF-8, which a Python
// str cannot; each invalid byte is written as U+FFFD, as Go's own decoding reads it.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = appendU(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r > 0xffff {
			r -= 0x10000
			dst = appendU(dst, 0xd800+(r>>10))
			dst = appendU(dst, 0xdc00+(r&0x3ff))
		} else {
			dst = appendU(dst, r)
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
