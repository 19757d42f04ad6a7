package httpedge

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"txn/internal/apierr"
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
		return apierr.Errorf(apierr.CodeInvalidJSON, "a string holds a \\u escape of an unpaired UTF-16 surrogate")
	}
	_, err := walkMembers(body, skipSpace(body, 0), t, "")
	return err
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// walkMembers checks the value starting at body[i] as a value of type t (nil: any) and returns
// where it ends. body has been decoded already, so its syntax is valid: this is a scan over
// bytes, a fraction of the cost of a second pass with json.Decoder's tokens.
func walkMembers(body []byte, i int, t reflect.Type, path string) (int, error) {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	check := t != rawMessageType
	switch body[i] {
	case '{':
		var fields map[string]reflect.Type
		if check && t != nil && t.Kind() == reflect.Struct {
			fields = membersOf(t)
		}
		var seen []string // members are few: a slice beats a map
		for i = skipSpace(body, i+1); body[i] != '}'; {
			end := stringEnd(body, i)
			key := string(body[i+1 : end-1])
			if strings.IndexByte(key, '\\') >= 0 {
				_ = json.Unmarshal(body[i:end], &key) // valid JSON: cannot fail
			}
			i = skipSpace(body, skipSpace(body, end)+1) // past the colon
			var ft reflect.Type
			if check {
				name := key
				if path != "" {
					name = path + "." + key
				}
				if slices.Contains(seen, key) {
					return 0, memberError(name, "appears more than once")
				}
				seen = append(seen, key)
				switch {
				case fields != nil:
					var ok bool
					if ft, ok = fields[key]; !ok {
						return 0, memberError(name, "is not a known field (names are case-sensitive)")
					}
				case t != nil && t.Kind() == reflect.Map:
					ft = t.Elem()
				}
				var err error
				if i, err = walkMembers(body, i, ft, name); err != nil {
					return 0, err
				}
			} else {
				i, _ = walkMembers(body, i, rawMessageType, "")
			}
			if i = skipSpace(body, i); body[i] == ',' {
				i = skipSpace(body, i+1)
			}
		}
		return i + 1, nil
	case '[':
		var et reflect.Type
		if !check {
			et = rawMessageType
		} else if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for n, i := 0, skipSpace(body, i+1); ; n++ {
			if body[i] == ']' {
				return i + 1, nil
			}
			var err error
			if i, err = walkMembers(body, i, et, path+"["+strconv.Itoa(n)+"]"); err != nil {
				return 0, err
			}
			if i = skipSpace(body, i); body[i] == ',' {
				i = skipSpace(body, i+1)
			}
		}
	case '"':
		return stringEnd(body, i), nil
	}
	for i < len(body) && !strings.ContainsRune(",}] \t\r\n", rune(body[i])) {
		i++ // a number, true, false or null
	}
	return i, nil
}

// stringEnd returns the index just past the string that starts at body[i].
func stringEnd(body []byte, i int) int {
	for i++; body[i] != '"'; i++ {
		if body[i] == '\\' {
			i++
		}
	}
	return i + 1
}

func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n') {
		i++
	}
	return i
}

func memberError(field, message string) error {
	return &apierr.Error{Code: apierr.CodeInvalidJSON, Detail: field + " " + message,
		Fields: []apierr.FieldError{{Field: field, Message: message}}}
}

// members caches, per struct type, its JSON member names as encoding/json spells them.
var members sync.Map // reflect.Type -> map[string]reflect.Type

// MemberNames are the JSON member names of struct type t as encoding/json spells them, with
// their types: what DecodeObject accepts in a body decoded into t.
func MemberNames(t reflect.Type) map[string]reflect.Type { return membersOf(t) }

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
