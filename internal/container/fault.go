package container

import (
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// fault is Zun's error body: {"errors": [{"request_id", "code", "status",
// "title", "detail", "links"}]}. zunclient prints the title, so the title
// is the message (Zun's own titles are its exceptions' messages); code is
// "container." and the kind of error in kebab case.
func fault(w http.ResponseWriter, r *http.Request, e *api.Error) {
	code := e.Type
	if code == "" {
		code = defaultCodes[e.Status]
	}
	api.WriteJSON(w, e.Status, map[string]any{"errors": []any{map[string]any{
		"request_id": w.Header().Get(api.RequestIDHeader), "code": "container." + code, "status": e.Status,
		"title": e.Message, "detail": e.Message, "links": []any{},
	}}})
}

var defaultCodes = map[int]string{
	400: "invalid-value", 403: "policy-not-authorized", 404: "container-not-found", 409: "conflict",
}

func invalidState(uuid, action, status string) error {
	return api.Conflict("Cannot %s container %s in %s state", action, uuid, status).WithType("invalid-state-exception")
}

func schemaError(format string, args ...any) error {
	return api.BadRequest(format, args...).WithType("schema-validation-error")
}
