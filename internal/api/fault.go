package api

import (
	"net/http"
	"strings"
)

// Fault writes an error in one service's wire format.
type Fault func(w http.ResponseWriter, r *http.Request, e *Error)

// KeystoneFault is Identity's {"error": {"code", "title", "message"}}.
func KeystoneFault(w http.ResponseWriter, r *http.Request, e *Error) {
	WriteJSON(w, e.Status, map[string]any{"error": map[string]any{
		"code": e.Status, "title": http.StatusText(e.Status), "message": e.Message,
	}})
}

// novaFaultNames are the wrapper keys Nova (and Cinder, Placement-less
// services of that family) use for each status.
var novaFaultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
	405: "badMethod", 409: "conflictingRequest", 413: "overLimit", 415: "badMediaType",
	429: "overLimit", 501: "notImplemented", 503: "serviceUnavailable",
}

// NovaFault is Compute's {"itemNotFound": {"code", "message"}} family;
// Block Storage uses the same shape.
func NovaFault(w http.ResponseWriter, r *http.Request, e *Error) {
	name := novaFaultNames[e.Status]
	if e.Type != "" {
		name = e.Type
	}
	if name == "" {
		name = "computeFault"
	}
	body := map[string]any{"code": e.Status, "message": e.Message}
	if ra := e.Header.Get("Retry-After"); ra != "" && name == "overLimit" {
		body["retryAfter"] = ra
	}
	WriteJSON(w, e.Status, map[string]any{name: body})
}

// NeutronFault is Networking's {"NeutronError": {"type", "message", "detail"}}.
func NeutronFault(w http.ResponseWriter, r *http.Request, e *Error) {
	typ := e.Type
	if typ == "" {
		typ = strings.ReplaceAll(http.StatusText(e.Status), " ", "")
	}
	WriteJSON(w, e.Status, map[string]any{"NeutronError": map[string]any{
		"type": typ, "message": e.Message, "detail": "",
	}})
}

// ErrorsFault is the {"errors": [{"status", "title", "detail", "request_id"}]}
// body Placement and Zun answer with.
func ErrorsFault(w http.ResponseWriter, r *http.Request, e *Error) {
	item := map[string]any{
		"status": e.Status, "title": http.StatusText(e.Status), "detail": e.Message,
		"request_id": w.Header().Get(RequestIDHeader),
	}
	if e.Type != "" {
		item["code"] = e.Type
	}
	WriteJSON(w, e.Status, map[string]any{"errors": []any{item}})
}

// TextFault is the plain-text body Swift and Glance answer errors with.
func TextFault(w http.ResponseWriter, r *http.Request, e *Error) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		w.Write([]byte(e.Message))
	}
}
