package identity

import (
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

func (s *Service) v3Version(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []any{map[string]any{"rel": "self", "href": api.BaseURL(r) + "/identity/v3/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

// handleVersions is the version discovery document at /identity: 300
// Multiple Choices, as Keystone answers.
func (s *Service) handleVersions(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{s.v3Version(r)}}})
	return nil
}

func (s *Service) handleV3(w http.ResponseWriter, r *http.Request) error {
	return ok(w, map[string]any{"version": s.v3Version(r)})
}
