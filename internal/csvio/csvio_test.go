package csvio

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/seamless-data/seamless/frame"
)

const header = "ts,open,high,low,close,volume\n"

func TestReadUnits(t *testing.T) {
	for _, tc := range []struct {
		name, rows string
		want       []int64
	}{
		{"seconds", "1704067200,1,2,0.5,1.5,10\n1704067260,1,2,0.5,1.5,10\n", []int64{1704067200, 1704067260}},
		{"millis", "1704067200000,1,2,0.5,1.5,10\n1704067260000,1,2,0.5,1.5,10\n", []int64{1704067200, 1704067260}},
		{"micros", "1704067200000000,1,2,0.5,1.5,10\n", []int64{1704067200}},
		{"nanos", "1704067200000000000,1,2,0.5,1.5,10\n", []int64{1704067200}},
		{"rfc3339", "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n2024-01-01T02:01:00+02:00,1,2,0.5,1.5,10\n", []int64{1704067200, 1704067260}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Read(strings.NewReader(header+tc.rows), frame.OHLCV)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.TS) != len(tc.want) {
				t.Fatalf("ts = %v, want %v", f.TS, tc.want)
			}
			for i := range tc.want {
				if f.TS[i] != tc.want[i] {
					t.Fatalf("ts = %v, want %v", f.TS, tc.want)
				}
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "empty file"},
		{"no ts", "open,high,low,close,volume\n1,2,3,4,5\n", "no ts column"},
		{"missing column", "ts,open,high,low,close\n0,1,2,0,1\n", `missing column "volume"`},
		{"extra column", "ts,open,high,low,close,volume,x\n0,1,2,0,1,1,1\n", "outside the schema"},
		{"duplicate column", "ts,open,open,high,low,close,volume\n", "duplicate column"},
		{"bad number", header + "0,1,2,0.5,abc,10\n", `line 2, column close: "abc" is not a number`},
		{"short row", header + "0,1,2\n", "line 2"},
		{"bad ts", header + "yesterday,1,2,0.5,1.5,10\n", "neither an integer epoch nor RFC 3339"},
		{"mixed ts", header + "0,1,2,0.5,1.5,10\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n", "line 3, column ts"},
		{"fractional ms", header + "1704067200500,1,2,0.5,1.5,10\n", "not a whole second"},
		{"quote", header + "0,\"1,2,0.5,1.5,10\n", "line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tc.in), frame.OHLCV)
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want *ParseError containing %q", err, tc.want)
			}
		})
	}
}

func TestCoveredRange(t *testing.T) {
	f := &frame.Frame{TS: []int64{60, 120, 240}}
	r, err := CoveredRange(f, 60)
	if err != nil || r.Start != 60 || r.End != 300 {
		t.Fatalf("CoveredRange = %v, %v", r, err)
	}
	for _, ts := range [][]int64{{}, {61}, {120, 60}, {60, 60}} {
		if _, err := CoveredRange(&frame.Frame{TS: ts}, 60); err == nil {
			t.Errorf("CoveredRange(%v) accepted", ts)
		}
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	f, err := Read(strings.NewReader(header+"60,1,2,0.5,1.5,10\n120,1.25,2,1e-7,1.5,1e+16\n"), frame.OHLCV)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(&b, f); err != nil {
		t.Fatal(err)
	}
	g, err := Read(&b, frame.OHLCV)
	if err != nil {
		t.Fatal(err)
	}
	for i := range f.Cols {
		for j := range f.TS {
			if f.Cols[i].F64[j] != g.Cols[i].F64[j] || f.TS[j] != g.TS[j] {
				t.Fatalf("round trip changed row %d", j)
			}
		}
	}
}

// FuzzRead: arbitrary input never panics, and accepted input has a consistent frame.
func FuzzRead(f *testing.F) {
	f.Add(header + "60,1,2,0.5,1.5,10\n")
	f.Add(header + "1704067200000,1,2,0.5,1.5,10\n")
	f.Add("ts,price,size,side\n2024-01-01T00:00:00Z,1,2,buy\n")
	f.Add(header + "-9223372036854775808,1,2,0.5,1.5,10\n")
	f.Fuzz(func(t *testing.T, in string) {
		for _, s := range []frame.Schema{frame.OHLCV, frame.Trades} {
			fr, err := Read(strings.NewReader(in), s)
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("error %v is not a *ParseError", err)
				}
				continue
			}
			if err := fr.Validate(); err != nil {
				t.Fatal(err)
			}
			if r, err := CoveredRange(fr, 60); err == nil && r.Empty() {
				t.Fatalf("accepted frame covers empty range %v", r)
			}
		}
	})
}
