package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// MaxBody is the default limit on a JSON request body.
const MaxBody = 1 << 20

var errBodyTooLarge = errors.New("request body too large")

// WriteJSON writes v as the JSON body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, `{"error": "encoding response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ReadBody reads at most limit bytes of the request body; a longer body is a
// 413 error.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, BadRequest("Could not read the request body.")
	}
	if int64(len(b)) > limit {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("Request body is larger than %d bytes.", limit), Err: errBodyTooLarge}
	}
	return b, nil
}

// DecodeJSON decodes the request body (at most MaxBody bytes) into v. An
// empty body, malformed JSON, trailing data or a value of the wrong type is a
// 400 whose message names the offending field.
func DecodeJSON(r *http.Request, v any) error {
	b, err := ReadBody(r, MaxBody)
	if err != nil {
		return err
	}
	return Unmarshal(b, v)
}

// Unmarshal is DecodeJSON for bytes already read.
func Unmarshal(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return BadRequest("The request body is empty; a JSON object is required.")
	}
	// encoding/json would silently turn invalid UTF-8 into U+FFFD, making
	// different names collide.
	if !utf8.Valid(b) {
		return BadRequest("Malformed request body: it is not UTF-8.")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return BadRequest("Malformed request body: unexpected data after the JSON value.")
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return BadRequest("Invalid input: %s is not of type '%s'.", te.Value, jsonType(te.Type.Kind().String()))
		}
		return BadRequest("Invalid input for field '%s': %s is not of type '%s'.",
			strings.ReplaceAll(field, ".", "/"), te.Value, jsonType(te.Type.Kind().String()))
	case errors.As(err, &se):
		return BadRequest("Malformed request body: %v.", se)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("Malformed request body: unexpected end of JSON input.")
	}
	return BadRequest("Malformed request body: %v.", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "integer"
	case "float64", "float32":
		return "number"
	}
	return kind
}
