package fingerprint

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Expected strings are CPython 3's json.dumps(float) / repr(float) output.
var pythonFloats = []struct {
	in   float64
	want string
}{
	{0, `0.0`},
	{math.Copysign(0, -1), `-0.0`},
	{1, `1.0`},
	{100, `100.0`},
	{42, `42.0`},
	{2.5, `2.5`},
	{-1.5, `-1.5`},
	{0.1, `0.1`},
	{math.Nextafter(0.3, 1), `0.30000000000000004`}, // 0.1 + 0.2 in float64 arithmetic
	{1.0 / 3, `0.3333333333333333`},
	{3.14159, `3.14159`},
	{4.35, `4.35`},
	{-123.456, `-123.456`},
	{65000.25, `65000.25`},
	{1234567.125, `1234567.125`},
	{0.001, `0.001`},
	{0.0001, `0.0001`},
	{-1e-4, `-0.0001`},
	{0.00009999999999999999, `9.999999999999999e-05`},
	{0.00001, `1e-05`},
	{1e-7, `1e-07`},
	{1.234e-5, `1.234e-05`},
	{1e-4 / 3, `3.3333333333333335e-05`},
	{-2.5e-10, `-2.5e-10`},
	{1e15, `1000000000000000.0`},
	{123456789012345, `123456789012345.0`},
	{1 << 53, `9007199254740992.0`},
	{1<<53 + 2, `9007199254740994.0`},
	{9999999999999998, `9999999999999998.0`},
	{9.999999999999999e15, `1e+16`},
	{1e16, `1e+16`},
	{12345678901234567890, `1.2345678901234567e+19`},
	{1 << 63, `9.223372036854776e+18`},
	{-(1 << 63), `-9.223372036854776e+18`},
	{1e21, `1e+21`},
	{1e22, `1e+22`},
	{1e100, `1e+100`},
	{1.5e300, `1.5e+300`},
	{math.MaxFloat64, `1.7976931348623157e+308`},
	{2.2250738585072014e-308, `2.2250738585072014e-308`},
	{5e-324, `5e-324`},
	{3 * 5e-324, `1.5e-323`},
	{math.NaN(), `null`},
	{math.Inf(1), `null`},
	{math.Inf(-1), `null`},
}

func TestAppendFloatMatchesPython(t *testing.T) {
	for _, c := range pythonFloats {
		if got := string(appendFloat([]byte("x"), c.in)); got != "x"+c.want {
			t.Errorf("appendFloat(%v) = %s, want %s", c.in, got[1:], c.want)
		}
	}
}

// Expected strings are CPython 3's json.dumps(str) (ensure_ascii=True) output.
func TestAppendStringMatchesPython(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"ohlcv:binance:BTC/USDT:1m", `"ohlcv:binance:BTC/USDT:1m"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f\u007f"`},
		{"é€", `"\u00e9\u20ac"`},
		{"😀𝄞", `"\ud83d\ude00\ud834\udd1e"`},
		{"\u2028\u2029\ufeff", `"\u2028\u2029\ufeff"`},
		{"\U0010ffff", `"\udbff\udfff"`},
		{"<>&'", `"<>&'"`},
		// Not representable in a Python str: invalid bytes read as U+FFFD.
		{"a\xffb", `"a\ufffdb"`},
	}
	for _, c := range cases {
		if got := string(appendString(nil, c.in)); got != c.want {
			t.Errorf("appendString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// pythonFloat is the grammar of Python's float repr: fixed notation with at least one
// digit on each side of the point, or a mantissa in [1, 10) with a signed exponent of
// at least two digits.
var pythonFloat = regexp.MustCompile(`^-?(?:(0|[1-9][0-9]*)\.([0-9]+)|[1-9](?:\.[0-9]*[1-9])?e[+-]([0-9]{2,3}))$`)

func FuzzAppendFloat(f *testing.F) {
	for _, c := range pythonFloats {
		f.Add(math.Float64bits(c.in))
	}
	f.Fuzz(func(t *testing.T, bits uint64) {
		x := math.Float64frombits(bits)
		s := string(appendFloat(nil, x))
		if math.IsNaN(x) || math.IsInf(x, 0) {
			if s != "null" {
				t.Fatalf("%v: got %s, want null", x, s)
			}
			return
		}
		m := pythonFloat.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("%v (%#x): %q is not in Python's repr grammar", x, bits, s)
		}
		back, err := strconv.ParseFloat(s, 64)
		if err != nil || math.Float64bits(back) != bits {
			t.Fatalf("%#x: %q parses back to %#x (%v)", bits, s, math.Float64bits(back), err)
		}
		// Notation follows the decimal exponent: fixed iff -4 <= e < 16.
		a := math.Abs(x)
		fixed := m[3] == ""
		if want := a == 0 || (a >= 1e-4 && a < 1e16); fixed != want {
			t.Fatalf("%v: %q uses the wrong notation", x, s)
		}
		// Shortest digits, with no padding zeros beyond the one ".0" of integral values.
		if m[2] != "" && m[2] != "0" && strings.HasSuffix(m[2], "0") {
			t.Fatalf("%v: %q has trailing zeros", x, s)
		}
		if a != 0 {
			mant, _, _ := strings.Cut(strings.TrimPrefix(s, "-"), "e")
			digits := strings.Trim(strings.Replace(mant, ".", "", 1), "0")
			short, _, _ := strings.Cut(strconv.FormatFloat(a, 'e', -1, 64), "e")
			if want := strings.Trim(strings.Replace(short, ".", "", 1), "0"); digits != want {
				t.Fatalf("%v: %q has digits %s, shortest are %s", x, s, digits, want)
			}
		}
	})
}
