package ledger

import (
	"strconv"
	"strings"
)

// MaxAmount is the largest amount one transaction may move, in minor units.
const MaxAmount int64 = 1_000_000_000_000

// MaxBalance bounds every balance (the external accounts' from below), far inside int64.
const MaxBalance int64 = 1_000_000_000_000_000_000

// ParseAmount accepts only a plain JSON integer literal: no fraction, exponent, sign or quotes,
// so that 1.5, 1e3, "100" and values past int64 are rejected instead of rounded.
func ParseAmount(raw []byte) (int64, string) {
	s := string(raw)
	if s == "" || s == "null" {
		return 0, "is required"
	}
	if s[0] == '"' {
		return 0, "must be an integer number of minor units, not a string"
	}
	if strings.ContainsAny(s, ".eE") {
		return 0, "must be an integer number of minor units"
	}
	if s[0] == '-' {
		return 0, "must be at least 1"
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, "must be an integer number of minor units"
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxAmount {
		return 0, "must be at most 1000000000000"
	}
	if n < 1 {
		return 0, "must be at least 1"
	}
	return n, ""
}

// ISO 4217 active currency codes.
var currencies = func() map[string]struct{} {
	const codes = `AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW
KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN
NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST
XAF XCD XCG XOF XPF YER ZAR ZMW ZWG`
	m := map[string]struct{}{}
	for _, c := range strings.Fields(codes) {
		m[c] = struct{}{}
	}
	return m
}()

// ValidCurrency reports whether code is an active ISO 4217 code, upper case.
func ValidCurrency(code string) bool {
	_, ok := currencies[code]
	return ok
}

// minorDigits lists the ISO 4217 currencies whose minor unit is not a hundredth.
var minorDigits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
	"UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

// FormatAmount renders minor units for people: 2500 USD is "25.00 USD", 2500 JPY "2500 JPY".
func FormatAmount(amount int64, currency string) string {
	digits, ok := minorDigits[currency]
	if !ok {
		digits = 2
	}
	neg := amount < 0
	if neg {
		amount = -amount
	}
	s := strconv.FormatInt(amount, 10)
	if digits > 0 {
		for len(s) <= digits {
			s = "0" + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if neg {
		s = "-" + s
	}
	return s + " " + currency
}
