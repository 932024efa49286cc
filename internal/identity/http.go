package identity

import (
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/monostack/monostack/internal/api"
)

// entity is a request body's inner object ({"user": {...}} gives the
// {...}), kept raw so that each field is checked for its type and the
// attributes Keystone does not know are kept as extras.
type entity map[string]json.RawMessage

// decodeEntity reads {"<key>": {...}}.
func decodeEntity(r *http.Request, key string) (entity, error) {
	var outer map[string]json.RawMessage
	if err := api.DecodeJSON(r, &outer); err != nil {
		return nil, err
	}
	if outer == nil {
		return nil, api.BadRequest("Invalid input: the request body must be a JSON object.")
	}
	raw, ok := outer[key]
	if !ok {
		return nil, api.BadRequest("Invalid input: '%s' is a required property.", key)
	}
	var e entity
	if err := json.Unmarshal(raw, &e); err != nil || e == nil {
		return nil, api.BadRequest("Invalid input for field '%s': it is not of type 'object'.", key)
	}
	return e, nil
}

func (e entity) has(name string) bool { _, ok := e[name]; return ok }

func typeErr(name, want string, raw json.RawMessage) error {
	v := string(raw)
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return api.BadRequest("Invalid input for field '%s': %s is not of type '%s'.", name, v, want)
}

// str reads an optional string field (null counts as absent).
func (e entity) str(name string, dst *string) (bool, error) {
	raw, ok := e[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, typeErr(name, "string", raw)
	}
	return true, nil
}

// nullableStr reads a field that may be a string or null; set reports presence.
func (e entity) nullableStr(name string, dst **string) (bool, error) {
	raw, ok := e[name]
	if !ok {
		return false, nil
	}
	if string(raw) == "null" {
		*dst = nil
		return true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return false, typeErr(name, "string", raw)
	}
	*dst = &s
	return true, nil
}

// name reads a required-or-optional name: 1..255 characters, not blank.
func (e entity) name(field string, dst *string, required bool) error {
	ok, err := e.str(field, dst)
	if err != nil {
		return err
	}
	if !ok {
		if required {
			return api.BadRequest("Invalid input for field '%s': '%s' is a required property.", field, field)
		}
		return nil
	}
	if strings.TrimSpace(*dst) == "" {
		return api.BadRequest("Invalid input for field '%s': it must not be empty or blank.", field)
	}
	if utf8.RuneCountInString(*dst) > 255 {
		return api.BadRequest("Invalid input for field '%s': it is longer than 255 characters.", field)
	}
	return nil
}

func (e entity) boolean(name string, dst *bool) (bool, error) {
	raw, ok := e[name]
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil || string(raw) == "null" {
		return false, typeErr(name, "boolean", raw)
	}
	return true, nil
}

func (e entity) strings(name string, dst *[]string) (bool, error) {
	raw, ok := e[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, typeErr(name, "array", raw)
	}
	return true, nil
}

func (e entity) object(name string, dst *map[string]any) (bool, error) {
	raw, ok := e[name]
	if !ok || string(raw) == "null" {
		return false, nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, typeErr(name, "object", raw)
	}
	return true, nil
}

// extras returns the fields not in known, for resources that keep unknown
// attributes (users and projects do, as in Keystone).
func (e entity) extras(known ...string) map[string]any {
	out := map[string]any{}
outer:
	for k, raw := range e {
		for _, n := range known {
			if k == n {
				continue outer
			}
		}
		var v any
		json.Unmarshal(raw, &v)
		out[k] = v
	}
	return out
}

// only refuses fields outside allowed, for resources whose schema is closed.
func (e entity) only(allowed ...string) error {
outer:
	for k := range e {
		for _, n := range allowed {
			if k == n {
				continue outer
			}
		}
		return api.BadRequest("Invalid input: additional properties are not allowed ('%s' was unexpected).", k)
	}
	return nil
}

// selfLink is a resource's {"self": ...} links object.
func selfLink(r *http.Request, path string) map[string]any {
	return map[string]any{"self": api.BaseURL(r) + "/identity/v3/" + path}
}

// listLinks is a collection's links object; Keystone returns whole lists.
func listLinks(r *http.Request) map[string]any {
	return map[string]any{"self": api.BaseURL(r) + r.URL.RequestURI(), "previous": nil, "next": nil}
}

// queryBool reads a boolean query parameter the way Keystone does: absent
// is nil; "0", "false", "no", "off" are false; anything else (even empty) true.
func queryBool(r *http.Request, name string) *bool {
	q := r.URL.Query()
	if !q.Has(name) {
		return nil
	}
	v := true
	switch strings.ToLower(q.Get(name)) {
	case "0", "false", "no", "off", "f", "n":
		v = false
	}
	return &v
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func created(w http.ResponseWriter, v any) error {
	api.WriteJSON(w, http.StatusCreated, v)
	return nil
}

func ok(w http.ResponseWriter, v any) error {
	api.WriteJSON(w, http.StatusOK, v)
	return nil
}
