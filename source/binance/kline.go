package binance

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/seamless-data/seamless/source/internal/venuehttp"
)

// klineFields names the positions of a /api/v3/klines row, as Binance documents them.
var klineFields = [...]string{
	"openTime", "open", "high", "low", "close", "volume", "closeTime",
	"quoteAssetVolume", "numberOfTrades", "takerBuyBaseAssetVolume", "takerBuyQuoteAssetVolume", "ignore",
}

// Positions of the fields Seamless uses; the others are not read.
const (
	fieldOpenTime  = 0
	fieldOpen      = 1
	fieldVolume    = 5
	fieldCloseTime = 6
)

// kline is one parsed row: times in epoch milliseconds, prices and base volume as
// floats.
type kline struct {
	openMs, closeMs int64
	// ohlcv holds open, high, low, close, volume: the order of frame.OHLCV.
	ohlcv [5]float64
}

// RowError reports a kline row that Binance sent malformed: wrong arity, a field of
// the wrong JSON type, an unparseable number, or a row that breaks the page's order.
// Retrying cannot fix it, so the Source returns it marked seamless.Permanent.
type RowError struct {
	// Row is the row's index in its page (0-based); Field is the Binance field name,
	// empty when the row as a whole is at fault.
	Row   int
	Field string
	// Value is the offending JSON text, shortened.
	Value  string
	Reason string
}

func (e *RowError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("malformed kline row %d: %s: %s", e.Row, e.Reason, e.Value)
	}
	return fmt.Sprintf("malformed kline row %d, field %s: %s: %s", e.Row, e.Field, e.Reason, e.Value)
}

func rowError(field int, raw []byte, reason string) *RowError {
	e := &RowError{Value: shorten(string(raw)), Reason: reason}
	if field >= 0 {
		e.Field = klineFields[field]
	}
	return e
}

// parseKline parses one JSON kline row. It reads openTime and closeTime (JSON integers
// ≥ 0, closeTime ≥ openTime) and open..volume (JSON strings holding plain finite
// decimals, as Binance sends them). Fields after closeTime are not validated, and
// extra trailing fields are tolerated so that an additive API change does not break
// backfill. The returned *RowError has Row 0; the page parser sets it.
func parseKline(raw []byte) (kline, error) {
	var fields []json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return kline{}, rowError(-1, raw, "not a JSON array")
	}
	if len(fields) < len(klineFields) {
		return kline{}, rowError(-1, raw, fmt.Sprintf("%d fields, want %d", len(fields), len(klineFields)))
	}
	var k kline
	var err error
	if k.openMs, err = parseMillis(fields, fieldOpenTime); err != nil {
		return kline{}, err
	}
	if k.closeMs, err = parseMillis(fields, fieldCloseTime); err != nil {
		return kline{}, err
	}
	if k.closeMs < k.openMs {
		return kline{}, rowError(fieldCloseTime, fields[fieldCloseTime], "before openTime")
	}
	for i := range k.ohlcv {
		if k.ohlcv[i], err = parseDecimal(fields, fieldOpen+i); err != nil {
			return kline{}, err
		}
	}
	return k, nil
}

func parseMillis(fields []json.RawMessage, i int) (int64, error) {
	v, err := strconv.ParseInt(string(fields[i]), 10, 64)
	if err != nil || v < 0 {
		return 0, rowError(i, fields[i], "not a non-negative integer of milliseconds")
	}
	return v, nil
}

func parseDecimal(fields []json.RawMessage, i int) (float64, error) {
	raw := fields[i]
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return 0, rowError(i, raw, "not a JSON string")
	}
	v, why := venuehttp.ParseDecimal(s)
	if why != "" {
		return 0, rowError(i, raw, why)
	}
	return v, nil
}

// parsePage parses a klines response body for a request of [startMs, endMs] and
// checks what Binance guarantees: rows strictly ascending by openTime, inside the
// requested window, each opening on the interval grid from the epoch (the Seamless
// grid). A row breaking any of these is garbage and fails the whole page.
func parsePage(body []byte, startMs, endMs, intervalMs int64) ([]kline, error) {
	var rows []json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("malformed klines response: not a JSON array of rows: %w (body %s)", err, shorten(string(body)))
	}
	out := make([]kline, 0, len(rows))
	for i, raw := range rows {
		k, err := parseKline(raw)
		if err != nil {
			re := err.(*RowError)
			re.Row = i
			return nil, re
		}
		var reason string
		switch {
		case k.openMs < startMs || k.openMs > endMs:
			reason = fmt.Sprintf("outside the requested window [%d, %d]", startMs, endMs)
		case k.openMs%intervalMs != 0:
			reason = fmt.Sprintf("not on the epoch grid of %d ms", intervalMs)
		case len(out) > 0 && k.openMs <= out[len(out)-1].openMs:
			reason = "not after the previous row's openTime"
		}
		if reason != "" {
			return nil, &RowError{Row: i, Field: klineFields[fieldOpenTime], Value: strconv.FormatInt(k.openMs, 10), Reason: reason}
		}
		out = append(out, k)
	}
	return out, nil
}

// shorten keeps error messages readable when upstream sends something large.
func shorten(s string) string { return venuehttp.Shorten(s) }
