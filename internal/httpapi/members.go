package httpapi

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"txn/internal/ledger"
)

// checkMembers enforces, on a body that already decoded into a value of type t, what
// encoding/json lets through: a member name given twice (the decoder keeps the last, while a
// gateway or validator reading the first would see another request) and a name that matches a
// field only when case is ignored ("Amount" for "amount"). Both are invalid_json naming the
// member. Objects that are not structs (maps, interfaces) are checked for repeats only; raw
// values (json.RawMessage) are left to whoever decodes them, so a batch judges each item alone.
func checkMembers(body []byte, t reflect.Type) error {
	if loneSurrogate(body) {
		// encoding/json would turn it into U+FFFD: the text stored would not be the text sent.
		return ledger.Errorf(ledger.CodeInvalidJSON, "a string holds a \\u escape of an unpaired UTF-16 surrogate")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers are skipped, not converted
	return walkMembers(dec, t, "")
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

func walkMembers(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return ledger.Errorf(ledger.CodeInvalidJSON, "the body is not valid JSON: %v", err)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType {
		return skipValue(dec, tok)
	}
	switch tok {
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = membersOf(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return ledger.Errorf(ledger.CodeInvalidJSON, "the body is not valid JSON: %v", err)
			}
			key := keyTok.(string)
			name := key
			if path != "" {
				name = path + "." + key
			}
			if seen[key] {
				return memberError(name, "appears more than once")
			}
			seen[key] = true
			var ft reflect.Type
			switch {
			case fields != nil:
				var ok bool
				if ft, ok = fields[key]; !ok {
					return memberError(name, "is not a known field (names are case-sensitive)")
				}
			case t != nil && t.Kind() == reflect.Map:
				ft = t.Elem()
			}
			if err := walkMembers(dec, ft, name); err != nil {
				return err
			}
		}
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkMembers(dec, et, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// skipValue consumes the rest of the value that began with tok.
func skipValue(dec *json.Decoder, tok json.Token) error {
	depth := 0
	for {
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
		var err error
		if tok, err = dec.Token(); err != nil {
			return err
		}
	}
}

func memberError(field, message string) error {
	return &ledger.Error{Code: ledger.CodeInvalidJSON, Detail: field + " " + message,
		Fields: []ledger.FieldError{{Field: field, Message: message}}}
}

// members caches, per struct type, its JSON member names as encoding/json spells them.
var members sync.Map // reflect.Type -> map[string]reflect.Type

func membersOf(t reflect.Type) map[string]reflect.Type {
	if m, ok := members.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-" && tag == "-", !f.IsExported() && !f.Anonymous:
			continue
		case f.Anonymous && name == "":
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range membersOf(ft) {
					m[k] = v
				}
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	members.Store(t, m)
	return m
}

// loneSurrogate reports whether body holds a \u escape of a UTF-16 surrogate that is not
// part of a high-low pair. Escapes occur only inside strings, so no JSON parsing is needed.
func loneSurrogate(body []byte) bool {
	pendingHigh := false
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' || i+1 >= len(body) {
			if pendingHigh {
				return true
			}
			continue
		}
		if body[i+1] != 'u' || i+6 > len(body) {
			if pendingHigh {
				return true
			}
			i++ // an escaped character: skip it (it may be a backslash)
			continue
		}
		r, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
		i += 5
		switch {
		case err != nil:
			return false // invalid JSON: the decoder reports it
		case r >= 0xD800 && r < 0xDC00:
			if pendingHigh {
				return true
			}
			pendingHigh = true
		case r >= 0xDC00 && r < 0xE000:
			if !pendingHigh {
				return true
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return true
			}
		}
	}
	return pendingHigh
}
