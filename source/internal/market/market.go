// Package market parses the symbols of venue node ids. Venue sources take ccxt's
// unified form: BASE/QUOTE for a spot market (BTC/USDT) and BASE/QUOTE:SETTLE for a
// perpetual swap settled in SETTLE (BTC/USDT:USDT, linear; BTC/USD:BTC, inverse).
// Assets are upper-case letters and digits, so that one market has one spelling;
// each venue maps a Symbol to its own instrument name (BTCUSDT, BTC-USDT-SWAP, XBTUSD).
package market

import (
	"fmt"
	"strings"
)

// Symbol is a parsed unified symbol.
type Symbol struct {
	Base, Quote string
	// Settle is the settlement asset of a perpetual, "" for spot.
	Settle string
}

// Spot reports whether s names a spot market.
func (s Symbol) Spot() bool { return s.Settle == "" }

// Linear reports whether s is a perpetual settled in its quote asset.
func (s Symbol) Linear() bool { return s.Settle != "" && s.Settle == s.Quote }

func (s Symbol) String() string {
	if s.Settle == "" {
		return s.Base + "/" + s.Quote
	}
	return s.Base + "/" + s.Quote + ":" + s.Settle
}

// Parse parses BASE/QUOTE or BASE/QUOTE:SETTLE.
func Parse(sym string) (Symbol, error) {
	pair, settle, perp := strings.Cut(sym, ":")
	base, quote, ok := strings.Cut(pair, "/")
	if !ok || !IsAsset(base) || !IsAsset(quote) || (perp && !IsAsset(settle)) {
		return Symbol{}, fmt.Errorf("symbol %q: want BASE/QUOTE for spot or BASE/QUOTE:SETTLE for a perpetual, in upper-case letters and digits, e.g. BTC/USDT or BTC/USDT:USDT", sym)
	}
	return Symbol{Base: base, Quote: quote, Settle: settle}, nil
}

// IsAsset reports whether s is an asset code: upper-case letters and digits.
func IsAsset(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range s {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
