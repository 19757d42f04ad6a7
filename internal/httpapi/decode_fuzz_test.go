package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"txn/internal/httpedge"
)

// FuzzDecodeTransaction feeds arbitrary bodies to the transaction decoder. It must never
// panic, accept only valid JSON, and never accept a body that names a field twice or in
// another case: what it accepts, encoding/json reads the same way (no reading of the body
// depends on which duplicate or which case a parser prefers).
func FuzzDecodeTransaction(f *testing.F) {
	f.Add([]byte(`{"type":"transfer","from_account_id":"a","to_account_id":"b","amount":1,"currency":"USD"}`))
	f.Add([]byte(`{"type":"withdrawal","from_account_id":"a","amount":1,"amount":5000,"currency":"USD"}`))
	f.Add([]byte(`{"Amount":1}`))
	f.Add([]byte(`{"amount":1e3,"description":"\u0000"}`))
	f.Add([]byte(`{"amount":9007199254740993,"type":"deposit","to_account_id":null}`))
	f.Add([]byte(`[{"amount":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var in txRequestJSON
		if err := httpedge.DecodeObject(body, &in); err != nil {
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		// Accepted: the body's members are exactly the decoded struct's, each once, so a
		// plain map decoding (last duplicate wins, exact names) must agree with it.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted %q, which is not an object: %v", body, err)
		}
		known := httpedge.MemberNames(typeOfTxRequest)
		for k := range m {
			if _, ok := known[k]; !ok {
				t.Fatalf("accepted %q with member %q", body, k)
			}
		}
		if n := countMembers(body); n != len(m) {
			t.Fatalf("accepted %q with %d members but %d distinct names", body, n, len(m))
		}
		_, _ = in.toRequest() // must not panic
	})
}

var typeOfTxRequest = reflect.TypeFor[txRequestJSON]()

// countMembers counts the top-level members of an object body, repeats included.
func countMembers(body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return -1
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return -1
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return -1
		}
		n++
	}
	return n
}
