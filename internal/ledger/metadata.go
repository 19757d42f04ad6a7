package ledger

import (
	"encoding/json"
	"unicode/utf8"
)

// Metadata is a client's string pairs on a transaction, stored and returned as given and
// carried in its event.
type Metadata map[string]string

// Metadata limits (API.md).
const (
	MaxMetadataKeys     = 20
	MaxMetadataKeyLen   = 40
	MaxMetadataValueLen = 500
)

// MarshalJSON writes no metadata as {}, so every transaction answers with an object.
func (m Metadata) MarshalJSON() ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string(m))
}

// ValidMetadataKey reports a key of 1-40 characters of [A-Za-z0-9_.-].
func ValidMetadataKey(k string) bool {
	if len(k) < 1 || len(k) > MaxMetadataKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// check returns what is wrong with m, naming the field as metadata or metadata.<key>.
func (m Metadata) check() []FieldError {
	var fields []FieldError
	if len(m) > MaxMetadataKeys {
		fields = append(fields, FieldError{Field: "metadata", Message: "must have at most 20 keys"})
	}
	for k, v := range m {
		switch {
		case !ValidMetadataKey(k):
			fields = append(fields, FieldError{Field: "metadata", Message: "keys must be 1-40 characters of A-Z, a-z, 0-9, _, . and -"})
		case utf8.RuneCountInString(v) > MaxMetadataValueLen:
			fields = append(fields, FieldError{Field: "metadata." + k, Message: "must be at most 500 characters"})
		default:
			if msg := storableText(v); msg != "" {
				fields = append(fields, FieldError{Field: "metadata." + k, Message: msg})
			}
		}
	}
	return fields
}
