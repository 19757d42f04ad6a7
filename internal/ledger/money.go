package ledger

import (
	"strconv"
	"strings"
)

// MaxAmount is the largest amount one transaction may move, in minor units.
const MaxAmount int64 = 1_000_000_000_000

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
