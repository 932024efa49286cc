package image

import (
	"log/slog"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// Rules: reading needs the reader role on a project (or the admin or
// service role); writing needs the member role on a project, or admin.
// Handlers check what depends on the image: its visibility and owner.
var (
	canRead api.Rule = func(c *api.Credentials) bool {
		return (c.ProjectID != "" && c.HasRole("reader")) || c.CloudAdmin() || c.HasRole("service") ||
			(c.System && c.HasRole("reader"))
	}
	canWrite api.Rule = func(c *api.Credentials) bool {
		return (c.ProjectID != "" && c.HasRole("member")) || c.CloudAdmin()
	}
)

// Router returns the Image API (Glance v2) under /image. auth validates
// tokens; authURI is the Identity URL sent with 401s.
func (s *Service) Router(auth api.Authenticator, authURI string, log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: "/image", Fault: fault, Auth: auth, AuthURI: authURI, Log: log})

	rt.Public("GET ", s.handleVersions(http.StatusMultipleChoices)) // exactly /image
	rt.Public("GET /{$}", s.handleVersions(http.StatusMultipleChoices))
	rt.Public("GET /versions", s.handleVersions(http.StatusOK))
	rt.Public("GET /v2", s.handleVersions(http.StatusMultipleChoices))
	rt.Public("GET /v2/{$}", s.handleVersions(http.StatusMultipleChoices))

	rt.Handle("GET /v2/schemas/image", api.Authenticated, s.handleSchema(imageSchema))
	rt.Handle("GET /v2/schemas/images", api.Authenticated, s.handleSchema(imagesSchema))
	rt.Handle("GET /v2/schemas/member", api.Authenticated, s.handleSchema(memberSchema))
	rt.Handle("GET /v2/schemas/members", api.Authenticated, s.handleSchema(membersSchema))

	rt.Handle("GET /v2/images", canRead, s.handleList)
	rt.Handle("POST /v2/images", canWrite, s.handleCreate)
	rt.Handle("GET /v2/images/{id}", canRead, s.handleShow)
	rt.Handle("PATCH /v2/images/{id}", canWrite, s.handlePatch)
	rt.Handle("DELETE /v2/images/{id}", canWrite, s.handleDelete)
	rt.Handle("POST /v2/images/{id}/actions/deactivate", canWrite, s.handleAction(StatusDeactivated))
	rt.Handle("POST /v2/images/{id}/actions/reactivate", canWrite, s.handleAction(StatusActive))
	rt.Handle("GET /v2/images/{id}/tasks", canRead, s.handleTasks)

	rt.Handle("PUT /v2/images/{id}/file", canWrite, s.handleUpload(false))
	rt.Handle("GET /v2/images/{id}/file", canRead, s.handleDownload)
	rt.Handle("PUT /v2/images/{id}/stage", canWrite, s.handleUpload(true))
	rt.Handle("POST /v2/images/{id}/import", canWrite, s.handleImport)

	rt.Handle("PUT /v2/images/{id}/tags/{tag}", canWrite, s.handleTag)
	rt.Handle("DELETE /v2/images/{id}/tags/{tag}", canWrite, s.handleTag)

	rt.Handle("GET /v2/images/{id}/members", canRead, s.handleListMembers)
	rt.Handle("POST /v2/images/{id}/members", canWrite, s.handleCreateMember)
	rt.Handle("GET /v2/images/{id}/members/{member}", canRead, s.handleShowMember)
	rt.Handle("PUT /v2/images/{id}/members/{member}", canWrite, s.handleUpdateMember)
	rt.Handle("DELETE /v2/images/{id}/members/{member}", canWrite, s.handleDeleteMember)

	rt.Handle("GET /v2/info/import", api.Authenticated, s.handleImportInfo)
	rt.Handle("GET /v2/info/stores", api.Authenticated, s.handleStores)
	rt.Handle("GET /v2/info/stores/detail", api.AdminOnly, s.handleStoresDetail)
	rt.Handle("GET /v2/info/usage", canRead, s.handleUsage)
	return rt
}

// fault writes an Image API error as {"error": {"code", "title",
// "message"}}, the body the token middleware in front of Glance answers
// with: glanceclient and openstacksdk show its message, and gophercloud
// keeps the body. (Glance itself answers with webob's HTML pages.)
func fault(w http.ResponseWriter, r *http.Request, e *api.Error) {
	api.WriteJSON(w, e.Status, map[string]any{"error": map[string]any{
		"code": e.Status, "title": http.StatusText(e.Status), "message": e.Message,
	}})
}
