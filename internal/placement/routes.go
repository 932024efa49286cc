package placement

import (
	"log/slog"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// Versions is the microversion range served: 1.0–1.39, as upstream.
var Versions = api.Microversions{Service: "placement", Min: api.Version{Major: 1, Minor: 0}, Max: api.Version{Major: 1, Minor: 39}}

// Admin is the policy of every placement route but the root document:
// a cloud admin or a user with the service role (Nova's own user).
var Admin api.Rule = func(c *api.Credentials) bool { return c.CloudAdmin() || c.HasRole("service") }

// Router returns the Placement API under /placement.
func (s *Service) Router(auth api.Authenticator, authURI string, log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: "/placement", Fault: api.ErrorsFault, Auth: auth, AuthURI: authURI, Log: log})
	h := func(pattern string, fn func(w http.ResponseWriter, r *http.Request, v api.Version) error) {
		rt.Handle(pattern, Admin, Versions.Handler(fn))
	}
	rt.Public("GET ", s.handleRoot)
	rt.Public("GET /{$}", s.handleRoot)

	h("GET /resource_providers", s.handleListProviders)
	h("POST /resource_providers", s.handleCreateProvider)
	h("GET /resource_providers/{uuid}", s.handleShowProvider)
	h("PUT /resource_providers/{uuid}", s.handleUpdateProvider)
	h("DELETE /resource_providers/{uuid}", s.handleDeleteProvider)

	h("GET /resource_providers/{uuid}/inventories", s.handleListInventories)
	h("PUT /resource_providers/{uuid}/inventories", s.handleSetInventories)
	h("POST /resource_providers/{uuid}/inventories", s.handleAddInventory)
	h("DELETE /resource_providers/{uuid}/inventories", s.handleDeleteInventories)
	h("GET /resource_providers/{uuid}/inventories/{rc}", s.handleShowInventory)
	h("PUT /resource_providers/{uuid}/inventories/{rc}", s.handleUpdateInventory)
	h("DELETE /resource_providers/{uuid}/inventories/{rc}", s.handleDeleteInventory)

	h("GET /resource_providers/{uuid}/usages", s.handleProviderUsages)
	h("GET /resource_providers/{uuid}/allocations", s.handleProviderAllocations)
	h("GET /resource_providers/{uuid}/traits", s.handleProviderTraits)
	h("PUT /resource_providers/{uuid}/traits", s.handleSetProviderTraits)
	h("DELETE /resource_providers/{uuid}/traits", s.handleDeleteProviderTraits)
	h("GET /resource_providers/{uuid}/aggregates", s.handleProviderAggregates)
	h("PUT /resource_providers/{uuid}/aggregates", s.handleSetProviderAggregates)

	h("GET /allocations/{consumer}", s.handleGetAllocations)
	h("PUT /allocations/{consumer}", s.handlePutAllocations)
	h("DELETE /allocations/{consumer}", s.handleDeleteAllocations)
	h("POST /allocations", s.handlePostAllocations)
	h("GET /usages", s.handleUsages)
	h("GET /allocation_candidates", s.handleAllocationCandidates)

	h("GET /traits", s.handleListTraits)
	h("GET /traits/{name}", s.handleShowTrait)
	h("PUT /traits/{name}", s.handlePutTrait)
	h("DELETE /traits/{name}", s.handleDeleteTrait)
	h("GET /resource_classes", s.handleListClasses)
	h("POST /resource_classes", s.handleCreateClass)
	h("GET /resource_classes/{name}", s.handleShowClass)
	h("PUT /resource_classes/{name}", s.handlePutClass)
	h("DELETE /resource_classes/{name}", s.handleDeleteClass)
	return rt
}

// handleRoot is the version document, as placement's root.
func (s *Service) handleRoot(w http.ResponseWriter, r *http.Request) error {
	if _, err := Versions.Negotiate(w, r); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v1.0", "max_version": Versions.Max.String(), "min_version": Versions.Min.String(),
		"status": "CURRENT",
		"links":  []any{map[string]any{"rel": "self", "href": ""}},
	}}})
	return nil
}
