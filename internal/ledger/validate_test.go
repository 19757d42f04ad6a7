package ledger

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestParseAmount(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want int64
		msg  string // a part of the expected message; "" when accepted
	}{
		{"1", 1, ""},
		{"100", 100, ""},
		{"999999999999", 999_999_999_999, ""},
		{"1000000000000", MaxAmount, ""},
		{"", 0, "required"},
		{"null", 0, "required"},
		{`"100"`, 0, "not a string"},
		{`""`, 0, "not a string"},
		{"0", 0, "at least 1"},
		{"00", 0, "at least 1"},
		{"-0", 0, "at least 1"},
		{"-1", 0, "at least 1"},
		{"-9223372036854775809", 0, "at least 1"},
		{"1.5", 0, "integer"},
		{"1.0", 0, "integer"},
		{"100.", 0, "integer"},
		{"1e3", 0, "integer"},
		{"1E3", 0, "integer"},
		{"1e-3", 0, "integer"},
		{"+1", 0, "integer"},
		{"0x10", 0, "integer"},
		{"true", 0, "integer"},
		{"[1]", 0, "integer"},
		{`{"v":1}`, 0, "integer"},
		{" 1", 0, "integer"},
		{"1000000000001", 0, "at most"},
		{"9223372036854775807", 0, "at most"},
		{"9223372036854775808", 0, "at most"},
		{"18446744073709551616", 0, "at most"},
		{"99999999999999999999", 0, "at most"},
	} {
		got, msg := ParseAmount([]byte(tc.raw))
		if got != tc.want || (tc.msg == "") != (msg == "") || !strings.Contains(msg, tc.msg) {
			t.Errorf("ParseAmount(%q) = %d, %q; want %d, a message with %q", tc.raw, got, msg, tc.want, tc.msg)
		}
	}
	// nil, as an absent json.RawMessage is
	if got, msg := ParseAmount(nil); got != 0 || !strings.Contains(msg, "required") {
		t.Errorf("ParseAmount(nil) = %d, %q", got, msg)
	}
}

func TestValidCurrency(t *testing.T) {
	for code, want := range map[string]bool{
		"USD": true, "EUR": true, "RUB": true, "JPY": true, "GBP": true,
		"usd": false, "Usd": false, "US": false, "USDD": false, "": false, "ZZZ": false, "XXX": false, " USD": false,
	} {
		if got := ValidCurrency(code); got != want {
			t.Errorf("ValidCurrency(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestTxRequestValidate(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	admin := Caller{Admin: true}
	user := Caller{UserID: uuid.New()}
	transfer := TxRequest{Type: Transfer, From: a, To: b, Amount: 100, Currency: "USD", Description: "rent"}
	change := func(f func(*TxRequest)) TxRequest {
		r := transfer
		f(&r)
		return r
	}
	for _, tc := range []struct {
		name   string
		c      Caller
		req    TxRequest
		code   Code     // "" when valid
		fields []string // fields the error names
	}{
		{"transfer by a user", user, transfer, "", nil},
		{"transfer by the admin", admin, transfer, "", nil},
		{"withdrawal", user, TxRequest{Type: Withdrawal, From: a, Amount: 1, Currency: "EUR"}, "", nil},
		{"deposit by the admin", admin, TxRequest{Type: Deposit, To: a, Amount: MaxAmount, Currency: "RUB"}, "", nil},
		{"description of 500 characters", user, change(func(r *TxRequest) { r.Description = strings.Repeat("ü", 500) }), "", nil},
		{"deposit by a user", user, TxRequest{Type: Deposit, To: a, Amount: 1, Currency: "USD"}, CodeForbidden, nil},
		{"invalid deposit by a user is invalid first", user, TxRequest{Type: Deposit, Amount: 1, Currency: "USD"},
			CodeValidation, []string{"to_account_id"}},
		{"deposit without to", admin, TxRequest{Type: Deposit, Amount: 1, Currency: "USD"}, CodeValidation, []string{"to_account_id"}},
		{"deposit with from", admin, TxRequest{Type: Deposit, From: b, To: a, Amount: 1, Currency: "USD"}, CodeValidation, []string{"from_account_id"}},
		{"withdrawal without from", user, TxRequest{Type: Withdrawal, Amount: 1, Currency: "USD"}, CodeValidation, []string{"from_account_id"}},
		{"withdrawal with to", user, TxRequest{Type: Withdrawal, From: a, To: b, Amount: 1, Currency: "USD"}, CodeValidation, []string{"to_account_id"}},
		{"transfer without from", user, change(func(r *TxRequest) { r.From = uuid.Nil }), CodeValidation, []string{"from_account_id"}},
		{"transfer without to", user, change(func(r *TxRequest) { r.To = uuid.Nil }), CodeValidation, []string{"to_account_id"}},
		{"transfer without accounts", user, change(func(r *TxRequest) { r.From, r.To = uuid.Nil, uuid.Nil }),
			CodeValidation, []string{"from_account_id", "to_account_id"}},
		{"unknown type", user, change(func(r *TxRequest) { r.Type = "refund" }), CodeValidation, []string{"type"}},
		{"empty type", admin, change(func(r *TxRequest) { r.Type = "" }), CodeValidation, []string{"type"}},
		{"zero amount", user, change(func(r *TxRequest) { r.Amount = 0 }), CodeValidation, []string{"amount"}},
		{"negative amount", user, change(func(r *TxRequest) { r.Amount = -5 }), CodeValidation, []string{"amount"}},
		{"amount over the limit", user, change(func(r *TxRequest) { r.Amount = MaxAmount + 1 }), CodeValidation, []string{"amount"}},
		{"lower-case currency", user, change(func(r *TxRequest) { r.Currency = "usd" }), CodeValidation, []string{"currency"}},
		{"unknown currency", user, change(func(r *TxRequest) { r.Currency = "ZZZ" }), CodeValidation, []string{"currency"}},
		{"description of 501 characters", user, change(func(r *TxRequest) { r.Description = strings.Repeat("ü", 501) }),
			CodeValidation, []string{"description"}},
		{"description with NUL", user, change(func(r *TxRequest) { r.Description = "a\x00b" }), CodeValidation, []string{"description"}},
		{"description not UTF-8", user, change(func(r *TxRequest) { r.Description = "a\xffb" }), CodeValidation, []string{"description"}},
		{"everything wrong", admin, TxRequest{Type: "x", Amount: 0, Currency: "x"}, CodeValidation, []string{"type", "amount", "currency"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate(tc.c)
			if got := ErrorCode(err); got != tc.code {
				t.Fatalf("Validate: %v, want code %q", err, tc.code)
			}
			if err == nil {
				return
			}
			e := err.(*Error)
			var named []string
			for _, f := range e.Fields {
				if f.Message == "" {
					t.Errorf("field %s without a message", f.Field)
				}
				named = append(named, f.Field)
			}
			slices.Sort(named)
			want := slices.Clone(tc.fields)
			slices.Sort(want)
			if !slices.Equal(named, want) {
				t.Errorf("fields %v, want %v", named, want)
			}
			if e.Detail == "" {
				t.Error("no detail")
			}
		})
	}
}

func TestValidateKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"k": true, "order-123_ABC.x:y/z": true, strings.Repeat("k", 255): true, "~!@#$%^&*()": true,
		strings.Repeat("k", 256): false, "a b": false, "tab\there": false, "new\nline": false, "ключ": false,
		"nul\x00": false, "del\x7f": false,
	} {
		err := ValidateKey(key)
		if (err == nil) != ok || (err != nil && ErrorCode(err) != CodeValidation) {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", key, err, ok)
		}
	}
}

func TestHash(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	base := TxRequest{Type: Transfer, From: a, To: b, Amount: 100, Currency: "USD", Description: "d"}
	if base.Hash() != base.Hash() {
		t.Fatal("hash is not deterministic")
	}
	variants := []TxRequest{
		{Type: Withdrawal, From: a, To: b, Amount: 100, Currency: "USD", Description: "d"},
		{Type: Transfer, From: b, To: a, Amount: 100, Currency: "USD", Description: "d"},
		{Type: Transfer, From: a, To: a, Amount: 100, Currency: "USD", Description: "d"},
		{Type: Transfer, From: a, To: b, Amount: 101, Currency: "USD", Description: "d"},
		{Type: Transfer, From: a, To: b, Amount: 100, Currency: "EUR", Description: "d"},
		{Type: Transfer, From: a, To: b, Amount: 100, Currency: "USD", Description: ""},
		{Type: Transfer, From: a, To: b, Amount: 100, Currency: "USDd", Description: ""}, // field boundaries
	}
	seen := map[[32]byte]int{base.Hash(): -1}
	for i, v := range variants {
		h := v.Hash()
		if j, dup := seen[h]; dup {
			t.Errorf("variant %d hashes like %d", i, j)
		}
		seen[h] = i
	}
}

func TestValidateWebhookURL(t *testing.T) {
	for _, tc := range []struct {
		url          string
		public, priv bool // accepted without / with allowPrivate
	}{
		{"https://example.com/hook", true, true},
		{"http://example.com:8080/hook?x=1", true, true},
		{"http://93.184.215.14/hook", true, true},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/", true, true},
		{"http://127.0.0.1/hook", false, true},
		{"http://127.9.9.9/", false, true},
		{"http://localhost:3000/", false, true},
		{"http://LocalHost/", false, true},
		{"http://app.localhost/", false, true},
		{"http://metadata.google.internal/", false, true},
		{"http://10.0.0.1/", false, true},
		{"http://172.16.0.1/", false, true},
		{"http://172.31.255.255/", false, true},
		{"http://192.168.0.10/", false, true},
		{"http://169.254.169.254/latest/meta-data/", false, true},
		{"http://100.64.0.1/", false, true},
		{"http://0.0.0.0/", false, true},
		{"http://[::1]/", false, true},
		{"http://[::]/", false, true},
		{"http://[fe80::1]/", false, true},
		{"http://[fd00::1]/", false, true},
		{"http://[::ffff:10.0.0.1]/", false, true},
		{"http://224.0.0.1/", false, true}, // multicast
		// IANA special-purpose space, and IPv6 addresses that carry a private IPv4 address
		{"http://198.18.0.1/", false, true},               // benchmarking
		{"http://198.19.255.254/", false, true},           // benchmarking
		{"http://240.0.0.1/", false, true},                // reserved
		{"http://255.255.255.255/", false, true},          // broadcast
		{"http://192.0.2.1/", false, true},                // documentation
		{"http://192.0.0.8/", false, true},                // IETF protocol assignments
		{"http://[64:ff9b::a00:1]/", false, true},         // NAT64 of 10.0.0.1
		{"http://[64:ff9b::7f00:1]/", false, true},        // NAT64 of 127.0.0.1
		{"http://[64:ff9b::5db8:d70e]/", true, true},      // NAT64 of a public address
		{"http://[64:ff9b:1::a00:1]/", false, true},       // local-use NAT64
		{"http://[2002:a9fe:a9fe::1]/", false, true},      // 6to4 of 169.254.169.254
		{"http://[2002:5db8:d70e::1]/", true, true},       // 6to4 of a public address
		{"http://[::a00:1]/", false, true},                // IPv4-compatible 10.0.0.1
		{"http://[::7f00:1]/", false, true},               // IPv4-compatible 127.0.0.1
		{"http://[2001:db8::1]/", false, true},            // documentation
		{"http://[2001::1]/", false, true},                // Teredo
		{"http://[100::1]/", false, true},                 // discard-only
		{"http://[::ffff:169.254.169.254]/", false, true}, // IPv4-mapped
		{"ftp://example.com/", false, false},
		{"javascript:alert(1)", false, false},
		{"example.com/hook", false, false},
		{"/hook", false, false},
		{"http://", false, false},
		{"", false, false},
		{"https://user:pass@example.com/", false, false},
		{"http://exa mple.com/", false, false},
		{"http://example.com/\x00", false, false},
		{"https://example.com/" + strings.Repeat("a", 2048), false, false},
	} {
		for _, allow := range []bool{false, true} {
			want := tc.public
			if allow {
				want = tc.priv
			}
			if msg := ValidateWebhookURL(tc.url, allow); (msg == "") != want {
				t.Errorf("ValidateWebhookURL(%.60q, allowPrivate=%v) = %q, want accepted=%v", tc.url, allow, msg, want)
			}
		}
	}
}
