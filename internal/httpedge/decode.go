package httpedge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"txn/internal/apierr"
)

// ReadBody enforces the content type and size limit and returns the raw body.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, apierr.Errorf(apierr.CodeUnsupportedMedia, "the body must be application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, apierr.Errorf(apierr.CodeUnsupportedMedia, "the body must be UTF-8 (charset %q is not taken)", cs)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, apierr.Errorf(apierr.CodeBodyTooLarge, "the body must be at most %d bytes", limit)
	} else if err != nil {
		return nil, apierr.Errorf(apierr.CodeInvalidJSON, "the body could not be read")
	}
	return body, nil
}

// DecodeOptional decodes the JSON object of a request whose body may be left out: with none, v
// stays as it is; else as ReadBody and DecodeObject (their errors).
func DecodeOptional(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	body, err := ReadBody(w, r, limit)
	if err != nil {
		return err
	}
	return DecodeObject(body, v)
}

// DecodeObject decodes one JSON object into v, refusing unknown fields, fields named twice or
// in another case than v's, and trailing data: those are invalid_json (naming the field in
// Fields when there is one). Type errors are validation_failed naming the field.
func DecodeObject(body []byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return apierr.Errorf(apierr.CodeInvalidJSON, "the body must be a JSON object")
	}
	if !utf8.Valid(body) {
		// encoding/json would store U+FFFD for each bad byte: not the text that was sent.
		return apierr.Errorf(apierr.CodeInvalidJSON, "the body must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.Errorf(apierr.CodeInvalidJSON, "the body must hold one JSON object and nothing after it")
	}
	return checkMembers(body, reflect.TypeOf(v))
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return apierr.Errorf(apierr.CodeInvalidJSON, "the body must be a JSON object")
		}
		return apierr.Invalid(apierr.FieldError{Field: field, Message: "must be of type " + jsonKind(typeErr.Type.Kind().String())})
	}
	if quoted, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = quoted
		}
		return memberError(name, "is not a known field")
	}
	return apierr.Errorf(apierr.CodeInvalidJSON, "the body is not valid JSON: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "ptr", "struct", "map":
		return "object"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}
