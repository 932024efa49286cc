package container

import (
	"net/http"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// legacyCapsules: before 1.32 Zun shows capsules in their old shape.
func legacyCapsules(v api.Version) bool { return !v.AtLeast(1, 32) }

func (s *Service) handleCreateCapsule(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return api.Errorf(http.StatusUnsupportedMediaType, "Invalid Content-Type %s; application/json is required.", ct).WithType("")
	}
	var b map[string]any
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	for k := range b {
		if k != "template" {
			return schemaError("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if b["template"] == nil {
		return schemaError("Invalid input for field 'template'. 'template' is a required property")
	}
	t, err := s.parseTemplate(b["template"])
	if err != nil {
		return err
	}
	cp, err := s.CreateCapsule(r.Context(), api.CredentialsFrom(r.Context()), t)
	if err != nil {
		return err
	}
	w.Header().Set("Location", hostURL(r)+"/v1/capsules/"+cp.UUID)
	api.WriteJSON(w, http.StatusAccepted, s.capsuleView(r, cp, legacyCapsules(v)))
	return nil
}

func (s *Service) handleShowCapsule(w http.ResponseWriter, r *http.Request, v api.Version) error {
	s.syncNow(r.Context())
	cp, err := s.findCapsule(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("c"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, s.capsuleView(r, cp, legacyCapsules(v)))
	return nil
}

func (s *Service) handleDeleteCapsule(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	all, err := flag("all_projects", emptyNil(r.URL.Query().Get("all_projects")))
	if err != nil {
		return err
	}
	if all && !c.CloudAdmin() {
		return api.Forbidden("Policy doesn't allow capsule:delete_all_projects to be performed.").WithType("policy-not-authorized")
	}
	if err := s.DeleteCapsule(r.Context(), c, r.PathValue("c")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleListCapsules(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	s.syncNow(ctx)
	c := api.CredentialsFrom(ctx)
	q := r.URL.Query()
	all, err := flag("all_projects", emptyNil(q.Get("all_projects")))
	if err != nil {
		return err
	}
	where, args := "", []any{}
	if !all || !c.CloudAdmin() {
		where, args = " WHERE project_id=?", append(args, c.ProjectID)
	}
	order := "seq"
	switch q.Get("sort_key") {
	case "", "id":
	case "name", "created_at", "updated_at", "memory", "cpu", "host":
		order = q.Get("sort_key")
	default:
		return api.BadRequest("Invalid sort key: %s.", q.Get("sort_key"))
	}
	switch strings.ToLower(q.Get("sort_dir")) {
	case "", "asc":
		order += " ASC"
	case "desc":
		order += " DESC"
	default:
		return api.BadRequest("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", q.Get("sort_dir"))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+capsuleCols+` FROM container_capsules`+where+` ORDER BY `+order+`, seq`, args...)
	if err != nil {
		return err
	}
	var list []Capsule
	for rows.Next() {
		cp, err := scanCapsule(rows)
		if err != nil {
			rows.Close()
			return err
		}
		list = append(list, cp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	uuids := make([]string, len(list))
	for i, cp := range list {
		uuids[i] = cp.UUID
	}
	start, end, next, err := page(r, "capsules", uuids, capsuleNotFound)
	if err != nil {
		return err
	}
	out := []any{}
	for _, cp := range list[start:end] {
		if cp.Containers, err = s.capsuleContainers(ctx, cp.UUID); err != nil {
			return err
		}
		out = append(out, s.capsuleView(r, cp, legacyCapsules(v)))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"capsules": out, "next": next})
	return nil
}
