package compute

import (
	"log/slog"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// Versions is the microversion range served.
var Versions = api.Microversions{Service: "compute", Min: api.Version{Major: 2, Minor: 1}, Max: api.Version{Major: 2, Minor: 96},
	Legacy: "X-OpenStack-Nova-API-Version"}

// handler is a route that gets the negotiated microversion.
type handler func(w http.ResponseWriter, r *http.Request, v api.Version) error

// Router returns the Compute API under /compute. auth validates tokens;
// authURI is the Identity URL sent with 401s. Routes need a project-scoped
// token; handlers make the decisions that depend on the target's project
// (another project's servers are 404, as upstream).
func (s *Service) Router(auth api.Authenticator, authURI string, log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: "/compute", Fault: api.NovaFault, Auth: auth, AuthURI: authURI, Log: log})
	member, admin := api.Scoped, api.AdminOnly
	h := func(pattern string, rule api.Rule, fn handler) { rt.Handle(pattern, rule, Versions.Handler(fn)) }
	rt.Public("GET ", s.handleVersions)
	rt.Public("GET /{$}", s.handleVersions)
	rt.Public("GET /v2.1", s.handleV21)
	rt.Public("GET /v2.1/{$}", s.handleV21)

	const p = "/v2.1"
	h("GET "+p+"/flavors", member, s.handleListFlavors(false))
	h("GET "+p+"/flavors/detail", member, s.handleListFlavors(true))
	h("POST "+p+"/flavors", admin, s.handleCreateFlavor)
	h("GET "+p+"/flavors/{id}", member, s.handleShowFlavor)
	h("PUT "+p+"/flavors/{id}", admin, s.handleUpdateFlavor)
	h("DELETE "+p+"/flavors/{id}", admin, s.handleDeleteFlavor)
	h("GET "+p+"/flavors/{id}/os-extra_specs", member, s.handleListExtraSpecs)
	h("POST "+p+"/flavors/{id}/os-extra_specs", admin, s.handleSetExtraSpecs)
	h("GET "+p+"/flavors/{id}/os-extra_specs/{key}", member, s.handleShowExtraSpec)
	h("PUT "+p+"/flavors/{id}/os-extra_specs/{key}", admin, s.handleSetExtraSpecs)
	h("DELETE "+p+"/flavors/{id}/os-extra_specs/{key}", admin, s.handleDeleteExtraSpec)
	h("GET "+p+"/flavors/{id}/os-flavor-access", admin, s.handleListFlavorAccess)
	h("POST "+p+"/flavors/{id}/action", admin, s.handleFlavorAction)

	h("GET "+p+"/os-keypairs", member, s.handleListKeypairs)
	h("POST "+p+"/os-keypairs", member, s.handleCreateKeypair)
	h("GET "+p+"/os-keypairs/{name}", member, s.handleShowKeypair)
	h("DELETE "+p+"/os-keypairs/{name}", member, s.handleDeleteKeypair)

	h("GET "+p+"/limits", member, s.handleLimits)
	h("GET "+p+"/os-quota-sets/{project}", member, s.handleShowQuotas)
	h("GET "+p+"/os-quota-sets/{project}/detail", member, s.handleShowQuotas)
	h("GET "+p+"/os-quota-sets/{project}/defaults", member, s.handleShowQuotas)
	h("PUT "+p+"/os-quota-sets/{project}", admin, s.handleUpdateQuotas)
	h("DELETE "+p+"/os-quota-sets/{project}", admin, s.handleDeleteQuotas)

	h("GET "+p+"/os-availability-zone", member, s.handleAvailabilityZones(false))
	h("GET "+p+"/os-availability-zone/detail", admin, s.handleAvailabilityZones(true))
	h("GET "+p+"/os-hypervisors", admin, s.handleListHypervisors(false))
	h("GET "+p+"/os-hypervisors/detail", admin, s.handleListHypervisors(true))
	h("GET "+p+"/os-hypervisors/statistics", admin, s.handleHypervisorStats)
	h("GET "+p+"/os-hypervisors/{id}", admin, s.handleShowHypervisor)
	h("GET "+p+"/os-services", admin, s.handleListServices)

	h("GET "+p+"/os-server-groups", member, s.handleListGroups)
	h("POST "+p+"/os-server-groups", member, s.handleCreateGroup)
	h("GET "+p+"/os-server-groups/{id}", member, s.handleShowGroup)
	h("DELETE "+p+"/os-server-groups/{id}", member, s.handleDeleteGroup)

	h("GET "+p+"/servers", member, s.handleListServers(false))
	h("GET "+p+"/servers/detail", member, s.handleListServers(true))
	h("POST "+p+"/servers", member, s.handleCreateServer)
	h("GET "+p+"/servers/{id}", member, s.handleShowServer)
	h("PUT "+p+"/servers/{id}", member, s.handleUpdateServer)
	h("DELETE "+p+"/servers/{id}", member, s.handleDeleteServer)
	h("POST "+p+"/servers/{id}/action", member, s.handleServerAction)
	for _, m := range []string{"GET", "PUT", "POST"} {
		h(m+" "+p+"/servers/{id}/metadata", member, s.handleMetadata)
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		h(m+" "+p+"/servers/{id}/metadata/{key}", member, s.handleMetadata)
		h(m+" "+p+"/servers/{id}/tags", member, s.handleTags)
		h(m+" "+p+"/servers/{id}/tags/{tag}", member, s.handleTags)
	}
	h("GET "+p+"/servers/{id}/os-instance-actions", member, s.handleListInstanceActions)
	h("GET "+p+"/servers/{id}/os-instance-actions/{req}", member, s.handleShowInstanceAction)
	h("GET "+p+"/servers/{id}/os-interface", member, s.handleListInterfaceAttachments)
	h("POST "+p+"/servers/{id}/os-interface", member, s.handleAttachInterface)
	h("GET "+p+"/servers/{id}/os-interface/{port}", member, s.handleShowInterfaceAttachment)
	h("DELETE "+p+"/servers/{id}/os-interface/{port}", member, s.handleDetachInterface)
	h("GET "+p+"/servers/{id}/os-volume_attachments", member, s.handleListVolumeAttachments)
	h("POST "+p+"/servers/{id}/os-volume_attachments", member, s.handleAttachVolume)
	h("GET "+p+"/servers/{id}/os-volume_attachments/{volume}", member, s.handleShowVolumeAttachment)
	h("DELETE "+p+"/servers/{id}/os-volume_attachments/{volume}", member, s.handleDetachVolume)
	return rt
}

func (s *Service) v21(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": Versions.Max.String(), "min_version": Versions.Min.String(),
		"updated": "2013-07-23T11:33:21Z",
		"links":   []any{map[string]any{"rel": "self", "href": api.BaseURL(r) + "/compute/v2.1/"}},
	}
}

func (s *Service) handleVersions(w http.ResponseWriter, r *http.Request) error {
	v2 := map[string]any{"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
		"links": []any{map[string]any{"rel": "self", "href": api.BaseURL(r) + "/compute/v2/"}}}
	api.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{v2, s.v21(r)}})
	return nil
}

func (s *Service) handleV21(w http.ResponseWriter, r *http.Request) error {
	v := s.v21(r)
	v["media-types"] = []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}}
	v["links"] = append(v["links"].([]any), map[string]any{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
	api.WriteJSON(w, http.StatusOK, map[string]any{"version": v})
	return nil
}
