package ledger

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

func TestMetadata(t *testing.T) {
	t.Run("a transfer's metadata is on its transaction and in its event", func(t *testing.T) {
		b := newBook()
		meta := Metadata{"order_id": "A-1"}
		p := pending(b.alice, "", TxRequest{Type: Transfer, From: b.aUSD, To: b.bUSD, Amount: 5, Currency: "USD", Metadata: meta})
		plan := Apply([]*Pending{p}, b.st, now, seqIDs())
		if tx := p.Result.Tx; tx == nil || !maps.Equal(tx.Metadata, meta) {
			t.Fatalf("transaction %+v, want metadata %v", p.Result, meta)
		}
		if got := plan.Events[0].Transaction.Metadata; !maps.Equal(got, meta) {
			t.Errorf("event metadata %v, want %v", got, meta)
		}
	})
	t.Run("none is written as an empty object", func(t *testing.T) {
		for _, m := range []Metadata{nil, {}} {
			if b, _ := json.Marshal(Transaction{Metadata: m}); !strings.Contains(string(b), `"metadata":{}`) {
				t.Errorf("%#v encodes as %s", m, b)
			}
		}
	})
	t.Run("the request's hash covers the metadata, not its order or absence", func(t *testing.T) {
		base := TxRequest{Type: Deposit, Amount: 1, Currency: "USD"}
		with := func(m Metadata) [32]byte { r := base; r.Metadata = m; return r.Hash() }
		if with(nil) != with(Metadata{}) {
			t.Error("nil and empty metadata hash differently")
		}
		if with(nil) == with(Metadata{"a": "b"}) {
			t.Error("metadata does not change the hash")
		}
		if with(Metadata{"a": "b"}) == with(Metadata{"a": "c"}) {
			t.Error("a value does not change the hash")
		}
		if with(Metadata{"a": "b", "c": "d"}) != with(Metadata{"c": "d", "a": "b"}) {
			t.Error("the keys' order changes the hash")
		}
	})
	t.Run("limits", func(t *testing.T) {
		many := Metadata{}
		for i := range 21 {
			many[strings.Repeat("k", i+1)] = "v"
		}
		for name, tc := range map[string]struct {
			m     Metadata
			field string
		}{
			"21 keys":          {many, "metadata"},
			"a slash in a key": {Metadata{"a/b": "v"}, "metadata"},
			"a NUL in a value": {Metadata{"k": "a\x00b"}, "metadata.k"},
			"501 characters":   {Metadata{"k": strings.Repeat("ü", 501)}, "metadata.k"},
		} {
			fields := tc.m.check()
			if len(fields) == 0 || fields[0].Field != tc.field {
				t.Errorf("%s: %v, want an error on %s", name, fields, tc.field)
			}
		}
		ok := Metadata{strings.Repeat("k", 40): strings.Repeat("ü", 500), "a.b_c-D9": ""}
		if fields := ok.check(); len(fields) != 0 {
			t.Errorf("limits themselves refused: %v", fields)
		}
	})
}
