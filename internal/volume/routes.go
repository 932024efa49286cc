package volume

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// Versions is the microversion range served: what cinderclient 9 and
// openstacksdk ask for at most.
var Versions = api.Microversions{Service: "volume", Min: api.Version{Major: 3, Minor: 0}, Max: api.Version{Major: 3, Minor: 70}}

type handler func(w http.ResponseWriter, r *http.Request, v api.Version) error

// Rules: reading needs a project-scoped token; writing, a member (or
// admin) of the project.
var (
	reader api.Rule = func(c *api.Credentials) bool { return c.ProjectID != "" }
	member api.Rule = func(c *api.Credentials) bool {
		return c.ProjectID != "" && (c.HasRole("member") || c.HasRole("admin"))
	}
	admin = api.AdminOnly
)

// Router returns the Block Storage API under /volume. Every route is
// under /v3/{project_id}, as the catalog gives it; the project in the URL
// must be the token's (a cloud admin may name any).
func (s *Service) Router(auth api.Authenticator, authURI string, log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: "/volume", Fault: api.NovaFault, Auth: auth, AuthURI: authURI, Log: log})
	h := func(pattern string, rule api.Rule, fn handler) {
		rt.Handle(pattern, rule, Versions.Handler(func(w http.ResponseWriter, r *http.Request, v api.Version) error {
			c := api.CredentialsFrom(r.Context())
			if p := r.PathValue("project_id"); p != c.ProjectID && !c.CloudAdmin() {
				return api.BadRequest("Malformed request url: the project %s in the URL is not the token's project.", p)
			}
			return fn(w, r, v)
		}))
	}
	rt.Public("GET ", s.handleVersions)
	rt.Public("GET /{$}", s.handleVersions)
	rt.Public("GET /v3", s.handleV3)
	rt.Public("GET /v3/{$}", s.handleV3)

	const p = "/v3/{project_id}"
	h("GET "+p+"/volumes", reader, s.handleListVolumes(false))
	h("GET "+p+"/volumes/detail", reader, s.handleListVolumes(true))
	h("POST "+p+"/volumes", member, s.handleCreateVolume)
	h("GET "+p+"/volumes/{id}", reader, s.handleShowVolume)
	h("PUT "+p+"/volumes/{id}", member, s.handleUpdateVolume)
	h("DELETE "+p+"/volumes/{id}", member, s.handleDeleteVolume)
	h("POST "+p+"/volumes/{id}/action", member, s.handleVolumeAction)
	h("GET "+p+"/volumes/{id}/metadata", reader, s.handleVolumeMetadata)
	h("POST "+p+"/volumes/{id}/metadata", member, s.handleVolumeMetadata)
	h("PUT "+p+"/volumes/{id}/metadata", member, s.handleVolumeMetadata)
	h("GET "+p+"/volumes/{id}/metadata/{key}", reader, s.handleVolumeMetadata)
	h("PUT "+p+"/volumes/{id}/metadata/{key}", member, s.handleVolumeMetadata)
	h("DELETE "+p+"/volumes/{id}/metadata/{key}", member, s.handleVolumeMetadata)

	h("GET "+p+"/snapshots", reader, s.handleListSnapshots(false))
	h("GET "+p+"/snapshots/detail", reader, s.handleListSnapshots(true))
	h("POST "+p+"/snapshots", member, s.handleCreateSnapshot)
	h("GET "+p+"/snapshots/{id}", reader, s.handleShowSnapshot)
	h("PUT "+p+"/snapshots/{id}", member, s.handleUpdateSnapshot)
	h("DELETE "+p+"/snapshots/{id}", member, s.handleDeleteSnapshot)
	h("POST "+p+"/snapshots/{id}/action", member, s.handleSnapshotAction)

	h("GET "+p+"/types", reader, s.handleListTypes)
	h("POST "+p+"/types", admin, s.handleCreateType)
	h("GET "+p+"/types/default", reader, s.handleDefaultType)
	h("GET "+p+"/types/{id}", reader, s.handleShowType)
	h("PUT "+p+"/types/{id}", admin, s.handleUpdateType)
	h("DELETE "+p+"/types/{id}", admin, s.handleDeleteType)
	h("GET "+p+"/types/{id}/extra_specs", reader, s.handleListTypeSpecs)
	h("POST "+p+"/types/{id}/extra_specs", admin, s.handleSetTypeSpecs)
	h("GET "+p+"/types/{id}/extra_specs/{key}", reader, s.handleListTypeSpecs)
	h("PUT "+p+"/types/{id}/extra_specs/{key}", admin, s.handleSetTypeSpecs)
	h("DELETE "+p+"/types/{id}/extra_specs/{key}", admin, s.handleDeleteTypeSpec)
	h("GET "+p+"/types/{id}/os-volume-type-access", admin, s.handleListTypeAccess)
	h("POST "+p+"/types/{id}/action", admin, s.handleTypeAction)

	h("GET "+p+"/attachments", reader, s.handleListAttachments(false))
	h("GET "+p+"/attachments/detail", reader, s.handleListAttachments(true))
	h("POST "+p+"/attachments", member, s.handleCreateAttachment)
	h("GET "+p+"/attachments/{id}", reader, s.handleShowAttachment)
	h("PUT "+p+"/attachments/{id}", member, s.handleUpdateAttachment)
	h("DELETE "+p+"/attachments/{id}", member, s.handleDeleteAttachment)
	h("POST "+p+"/attachments/{id}/action", member, s.handleAttachmentAction)

	h("GET "+p+"/os-quota-sets/{target}", reader, s.handleShowQuotas)
	h("GET "+p+"/os-quota-sets/{target}/defaults", reader, s.handleShowQuotas)
	h("PUT "+p+"/os-quota-sets/{target}", admin, s.handleUpdateQuotas)
	h("DELETE "+p+"/os-quota-sets/{target}", admin, s.handleDeleteQuotas)
	h("GET "+p+"/limits", reader, s.handleLimits)

	h("GET "+p+"/os-availability-zone", reader, s.handleAvailabilityZones)
	h("GET "+p+"/os-services", admin, s.handleServices)
	h("GET "+p+"/extensions", reader, s.handleExtensions)
	s.backupRoutes(h)
	return rt
}

func (s *Service) v3(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v3.0", "status": "CURRENT", "version": Versions.Max.String(), "min_version": Versions.Min.String(),
		"updated": "2023-08-31T00:00:00Z",
		"links": []any{
			map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
			map[string]any{"rel": "self", "href": api.BaseURL(r) + "/volume/v3/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
	}
}

// handleVersions is the root: Cinder answers 300 Multiple Choices.
func (s *Service) handleVersions(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"versions": []any{s.v3(r)}})
	return nil
}

func (s *Service) handleV3(w http.ResponseWriter, r *http.Request) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{s.v3(r)}})
	return nil
}

func (s *Service) handleAvailabilityZones(w http.ResponseWriter, r *http.Request, v api.Version) error {
	api.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": []any{
		map[string]any{"zoneName": s.cfg.AvailabilityZone, "zoneState": map[string]any{"available": true}},
	}})
	return nil
}

func (s *Service) handleServices(w http.ResponseWriter, r *http.Request, v api.Version) error {
	q := r.URL.Query()
	now := time.Now().UTC().Format(timeFormat)
	svc := func(binary, host string) map[string]any {
		m := map[string]any{"binary": binary, "host": host, "zone": s.cfg.AvailabilityZone, "status": "enabled", "state": "up",
			"updated_at": now, "disabled_reason": nil}
		if v.AtLeast(3, 7) {
			m["cluster"] = nil
		}
		if v.AtLeast(3, 49) && binary == "cinder-volume" {
			m["backend_state"] = "up"
		}
		return m
	}
	all := []map[string]any{svc("cinder-scheduler", s.cfg.Host), svc("cinder-volume", s.cfg.Host+"@loopfile")}
	if s.objects != nil {
		all = append(all, svc("cinder-backup", s.cfg.Host))
	}
	out := []any{}
	for _, m := range all {
		if b := q.Get("binary"); b != "" && b != m["binary"] {
			continue
		}
		if h := q.Get("host"); h != "" && h != m["host"] {
			continue
		}
		out = append(out, m)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"services": out})
	return nil
}

func (s *Service) handleExtensions(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ext := func(alias, name, desc string) map[string]any {
		return map[string]any{"alias": alias, "name": name, "description": desc, "links": []any{}, "updated": "2013-01-01T00:00:00+00:00"}
	}
	out := []any{
		ext("os-admin-actions", "AdminActions", "Enable admin actions."),
		ext("os-availability-zone", "AvailabilityZones", "Describe Availability Zones."),
		ext("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "Extended SnapshotAttributes support."),
		ext("os-vol-host-attr", "VolumeHostAttribute", "Expose host as an attribute of a volume."),
		ext("os-vol-tenant-attr", "VolumeTenantAttribute", "Expose the internal project_id as an attribute of a volume."),
		ext("os-vol-mig-status-attr", "VolumeMigStatusAttribute", "Expose migration_status as an attribute of a volume."),
		ext("os-vol-image-meta", "VolumeImageMetadata", "Show image metadata associated with the volume."),
		ext("os-volume-type-access", "VolumeTypeAccess", "Volume type access support."),
		ext("os-types-extra-specs", "TypesExtraSpecs", "Type extra specs support."),
		ext("os-types-manage", "TypesManage", "Types manage support."),
		ext("os-quota-sets", "Quotas", "Quota management support."),
		ext("os-services", "Services", "Services support."),
		ext("os-volume-actions", "VolumeActions", "Enable volume actions."),
	}
	if s.objects != nil {
		out = append(out, ext("backups", "Backups", "Backups support."))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"extensions": out})
	return nil
}
