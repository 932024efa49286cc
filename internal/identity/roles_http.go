package identity

import (
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

func roleJSON(r *http.Request, role Role) map[string]any {
	opts := role.Options
	if opts == nil {
		opts = map[string]any{}
	}
	return map[string]any{"id": role.ID, "name": role.Name, "domain_id": nullable(role.DomainID),
		"description": role.Description, "options": opts, "links": selfLink(r, "roles/"+role.ID)}
}

func (s *Service) handleListRoles(w http.ResponseWriter, r *http.Request) error {
	roles, err := s.listRoles(r.Context(), r.URL.Query().Get("name"), r.URL.Query().Get("domain_id"))
	if err != nil {
		return err
	}
	out := make([]any, 0, len(roles))
	for _, role := range roles {
		out = append(out, roleJSON(r, role))
	}
	return ok(w, map[string]any{"roles": out, "links": listLinks(r)})
}

func (s *Service) handleGetRole(w http.ResponseWriter, r *http.Request) error {
	role, err := s.GetRole(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"role": roleJSON(r, role)})
}

func (s *Service) handleCreateRole(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "role")
	if err != nil {
		return err
	}
	var role Role
	if err := e.name("name", &role.Name, true); err != nil {
		return err
	}
	if _, err := e.str("description", &role.Description); err != nil {
		return err
	}
	if _, err := e.str("domain_id", &role.DomainID); err != nil {
		return err
	}
	if _, err := e.object("options", &role.Options); err != nil {
		return err
	}
	if role.DomainID != "" {
		if _, err := s.GetDomain(r.Context(), role.DomainID); err != nil {
			return api.BadRequest("Could not find domain: %s.", role.DomainID)
		}
	}
	if role, err = s.CreateRole(r.Context(), role); err != nil {
		return err
	}
	return created(w, map[string]any{"role": roleJSON(r, role)})
}

func (s *Service) handleUpdateRole(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "role")
	if err != nil {
		return err
	}
	role, err := s.GetRole(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if role.Options["immutable"] == true {
		return api.Forbidden("Role %s is immutable.", role.ID)
	}
	if raw, ok := e["domain_id"]; ok && string(raw) != `"`+role.DomainID+`"` && !(role.DomainID == "" && string(raw) == "null") {
		return api.BadRequest("Invalid input for field 'domain_id': it cannot be changed.")
	}
	if err := e.name("name", &role.Name, false); err != nil {
		return err
	}
	if _, err := e.str("description", &role.Description); err != nil {
		return err
	}
	if _, err := e.object("options", &role.Options); err != nil {
		return err
	}
	if err := s.updateRole(r.Context(), role); err != nil {
		return err
	}
	return ok(w, map[string]any{"role": roleJSON(r, role)})
}

func (s *Service) handleDeleteRole(w http.ResponseWriter, r *http.Request) error {
	if err := s.deleteRole(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return noContent(w)
}

func roleRef(r *http.Request, role Role) map[string]any {
	return map[string]any{"id": role.ID, "name": role.Name, "links": selfLink(r, "roles/"+role.ID)}
}

// handleImplied serves /v3/roles/{id}/implies/{implied}: PUT makes the
// inference, GET/HEAD check it, DELETE removes it.
func (s *Service) handleImplied(w http.ResponseWriter, r *http.Request) error {
	prior, err := s.GetRole(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	implied, err := s.GetRole(r.Context(), r.PathValue("implied"))
	if err != nil {
		return err
	}
	body := map[string]any{"role_inference": map[string]any{"prior_role": roleRef(r, prior), "implies": roleRef(r, implied)},
		"links": selfLink(r, "roles/"+prior.ID+"/implies/"+implied.ID)}
	switch r.Method {
	case http.MethodPut:
		// As Keystone's defaults: no role implies admin (which would make
		// admins of everyone with the prior role), and a global role does
		// not imply a role that only exists in one domain.
		if implied.Name == "admin" && implied.DomainID == "" {
			return api.Forbidden("%s cannot be an implied role.", implied.ID)
		}
		if prior.DomainID == "" && implied.DomainID != "" {
			return api.Forbidden("A global role cannot imply the domain-specific role %s.", implied.ID)
		}
		if err := s.addImplied(r.Context(), prior.ID, implied.ID); err != nil {
			return err
		}
		return created(w, body)
	case http.MethodDelete:
		res, err := s.db.ExecContext(r.Context(), `DELETE FROM implied_roles WHERE prior_role_id=? AND implied_role_id=?`, prior.ID, implied.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("%s does not imply %s.", prior.ID, implied.ID)
		}
		s.changed()
		return noContent(w)
	}
	g, err := s.impliedGraph(r.Context())
	if err != nil {
		return err
	}
	for _, id := range g[prior.ID] {
		if id == implied.ID {
			if r.Method == http.MethodHead {
				return noContent(w)
			}
			return ok(w, body)
		}
	}
	return api.NotFound("%s does not imply %s.", prior.ID, implied.ID)
}

func (s *Service) inference(r *http.Request, prior Role, g map[string][]string, all map[string]Role) map[string]any {
	imps := []any{}
	for _, id := range g[prior.ID] {
		imps = append(imps, roleRef(r, all[id]))
	}
	return map[string]any{"prior_role": roleRef(r, prior), "implies": imps}
}

func (s *Service) handleListImplied(w http.ResponseWriter, r *http.Request) error {
	prior, err := s.GetRole(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	g, err := s.impliedGraph(r.Context())
	if err != nil {
		return err
	}
	all, err := s.rolesByID(r.Context())
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"role_inference": s.inference(r, prior, g, all), "links": selfLink(r, "roles/"+prior.ID+"/implies")})
}

func (s *Service) handleRoleInferences(w http.ResponseWriter, r *http.Request) error {
	g, err := s.impliedGraph(r.Context())
	if err != nil {
		return err
	}
	all, err := s.rolesByID(r.Context())
	if err != nil {
		return err
	}
	roles, err := s.listRoles(r.Context(), "", "")
	if err != nil {
		return err
	}
	out := []any{}
	for _, role := range roles {
		if len(g[role.ID]) > 0 {
			out = append(out, s.inference(r, role, g, all))
		}
	}
	return ok(w, map[string]any{"role_inferences": out, "links": listLinks(r)})
}
