package binance

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

const goodRow = `[1709251200000,"62000.01000000","62100.00000000","61900.50000000","62050.00000000","12.34500000",1709251259999,"765432.10000000",1234,"6.10000000","378000.00000000","0"]`

// row returns goodRow with field i replaced by the JSON text v, and so on for each
// further pair.
func row(i int, v string, more ...any) string {
	fields := strings.Split(strings.Trim(goodRow, "[]"), ",")
	fields[i] = v
	for k := 0; k+1 < len(more); k += 2 {
		fields[more[k].(int)] = more[k+1].(string)
	}
	return "[" + strings.Join(fields, ",") + "]"
}

func TestParseKline(t *testing.T) {
	k, err := parseKline([]byte(goodRow))
	if err != nil {
		t.Fatal(err)
	}
	want := kline{openMs: 1709251200000, closeMs: 1709251259999, ohlcv: [5]float64{62000.01, 62100, 61900.5, 62050, 12.345}}
	if k != want {
		t.Fatalf("parsed %+v, want %+v", k, want)
	}
	// A field Binance might append later is ignored.
	if _, err := parseKline([]byte(strings.TrimSuffix(goodRow, "]") + `,"new"]`)); err != nil {
		t.Fatalf("extra trailing field: %v", err)
	}
}

func TestParseKlineRejects(t *testing.T) {
	for _, tc := range []struct {
		name, raw, field, reason string
	}{
		{"not an array", `{"openTime":1}`, "", "not a JSON array"},
		{"null", `null`, "", "not a JSON array"},
		{"short row", `[1709251200000,"1","1","1","1","1",1709251259999]`, "", "7 fields, want 12"},
		{"price as number", row(2, `62100.5`), "high", "not a JSON string"},
		{"price not a number", row(4, `"abc"`), "close", "not a decimal number"},
		{"price NaN", row(1, `"NaN"`), "open", "not a decimal number"},
		{"price Inf", row(3, `"Inf"`), "low", "not a decimal number"},
		{"price with exponent", row(5, `"1e3"`), "volume", "not a decimal number"},
		{"price hex", row(1, `"0x1p4"`), "open", "not a decimal number"},
		{"price empty", row(1, `""`), "open", "not a decimal number"},
		{"price trailing dot", row(1, `"1."`), "open", "not a decimal number"},
		{"price overflow", row(1, `"1`+strings.Repeat("0", 400)+`"`), "open", "not a finite number"},
		{"openTime as string", row(0, `"1709251200000"`), "openTime", "not a non-negative integer"},
		{"openTime fractional", row(0, `1709251200000.5`), "openTime", "not a non-negative integer"},
		{"openTime negative", row(0, `-1`), "openTime", "not a non-negative integer"},
		{"closeTime before open", row(6, `1709251199999`), "closeTime", "before openTime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseKline([]byte(tc.raw))
			var re *RowError
			if !errors.As(err, &re) || re.Field != tc.field || !strings.Contains(re.Reason, tc.reason) {
				t.Fatalf("err = %v, want field %q reason %q", err, tc.field, tc.reason)
			}
		})
	}
}

func TestParsePage(t *testing.T) {
	const iv = 60_000
	open := int64(1709251200000)
	at := func(ms int64) string {
		return row(0, strconv.FormatInt(ms, 10), 6, strconv.FormatInt(ms+iv-1, 10))
	}
	page := func(rows ...string) []byte { return []byte("[" + strings.Join(rows, ",") + "]") }

	rows, err := parsePage(page(at(open), at(open+iv), at(open+3*iv)), open, open+10*iv, iv)
	if err != nil || len(rows) != 3 || rows[2].openMs != open+3*iv {
		t.Fatalf("good page: %v, %v", rows, err)
	}
	if rows, err := parsePage([]byte(`[]`), open, open, iv); err != nil || len(rows) != 0 {
		t.Fatalf("empty page: %v, %v", rows, err)
	}
	for _, tc := range []struct {
		name   string
		body   []byte
		row    int
		reason string
	}{
		{"out of order", page(at(open+iv), at(open)), 1, "not after the previous"},
		{"duplicate", page(at(open), at(open)), 1, "not after the previous"},
		{"before the window", page(at(open - iv)), 0, "outside the requested window"},
		{"after the window", page(at(open), at(open+11*iv)), 1, "outside the requested window"},
		{"off the grid", page(at(open), at(open+iv+1)), 1, "not on the epoch grid"},
		{"bad field", page(at(open), row(1, "1")), 1, "not a JSON string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePage(tc.body, open, open+10*iv, iv)
			var re *RowError
			if !errors.As(err, &re) || re.Row != tc.row || !strings.Contains(re.Reason, tc.reason) {
				t.Fatalf("err = %v, want row %d: %s", err, tc.row, tc.reason)
			}
		})
	}
	for _, body := range []string{``, `{"code":-1121,"msg":"Invalid symbol."}`, `[1,2`, `"x"`} {
		if _, err := parsePage([]byte(body), open, open, iv); err == nil || !strings.Contains(err.Error(), "malformed klines response") {
			t.Errorf("body %q: err = %v", body, err)
		}
	}
}

// FuzzParseKline: arbitrary bytes never panic, and an accepted row satisfies the
// invariants the Source relies on and survives a round trip through the wire format.
func FuzzParseKline(f *testing.F) {
	for _, s := range []string{
		goodRow, row(2, `62100.5`), row(1, `"-0.0"`), row(0, `0`), `[]`, `null`, `[[]]`,
		`[0,"0","0","0","0","0",0,"0",0,"0","0","0"]`, row(1, `"1`+strings.Repeat("9", 320)+`"`),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := parseKline(raw)
		if err != nil {
			var re *RowError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a *RowError", err)
			}
			return
		}
		if k.openMs < 0 || k.closeMs < k.openMs {
			t.Fatalf("accepted times open %d close %d", k.openMs, k.closeMs)
		}
		wire := []string{strconv.FormatInt(k.openMs, 10)}
		for _, v := range k.ohlcv {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("accepted non-finite %v", v)
			}
			wire = append(wire, strconv.Quote(strconv.FormatFloat(v, 'f', -1, 64)))
		}
		wire = append(wire, strconv.FormatInt(k.closeMs, 10), `"0"`, `0`, `"0"`, `"0"`, `"0"`)
		again, err := parseKline([]byte("[" + strings.Join(wire, ",") + "]"))
		if err != nil || again != k {
			t.Fatalf("round trip of %+v: %+v, %v", k, again, err)
		}
	})
}
