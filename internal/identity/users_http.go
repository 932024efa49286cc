package identity

import (
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

var userFields = []string{"id", "name", "domain_id", "enabled", "password", "default_project_id", "options", "links", "password_expires_at", "federated"}

func userJSON(r *http.Request, u User) map[string]any {
	out := map[string]any{}
	for k, v := range u.Extra {
		out[k] = v
	}
	opts := u.Options
	if opts == nil {
		opts = map[string]any{}
	}
	for k, v := range map[string]any{
		"id": u.ID, "name": u.Name, "domain_id": u.DomainID, "enabled": u.Enabled,
		"password_expires_at": nil, "options": opts, "links": selfLink(r, "users/"+u.ID),
	} {
		out[k] = v
	}
	if u.DefaultProjectID != "" {
		out["default_project_id"] = u.DefaultProjectID
	}
	return out
}

// canReadUser: readers of the user's domain and the user itself.
func canReadUser(c *api.Credentials, u User) bool {
	return domainReader(c, u.DomainID) || c.UserID == u.ID
}

func (s *Service) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	q := r.URL.Query()
	f := userFilter{DomainID: q.Get("domain_id"), Name: q.Get("name"), Enabled: queryBool(r, "enabled")}
	if d := listDomainFilter(c); d != "" {
		if f.DomainID != "" && f.DomainID != d {
			return forbidden()
		}
		f.DomainID = d
	}
	us, err := s.listUsers(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(us))
	for _, u := range us {
		out = append(out, userJSON(r, u))
	}
	return ok(w, map[string]any{"users": out, "links": listLinks(r)})
}

func (s *Service) handleGetUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !canReadUser(api.CredentialsFrom(r.Context()), u) {
		return forbidden()
	}
	return ok(w, map[string]any{"user": userJSON(r, u)})
}

func (s *Service) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	e, err := decodeEntity(r, "user")
	if err != nil {
		return err
	}
	u := User{Enabled: true}
	if err := e.name("name", &u.Name, true); err != nil {
		return err
	}
	if _, err := e.str("domain_id", &u.DomainID); err != nil {
		return err
	}
	if _, err := e.boolean("enabled", &u.Enabled); err != nil {
		return err
	}
	if _, err := e.str("default_project_id", &u.DefaultProjectID); err != nil {
		return err
	}
	var password string
	if _, err := e.str("password", &password); err != nil {
		return err
	}
	if _, err := e.object("options", &u.Options); err != nil {
		return err
	}
	u.Extra = e.extras(userFields...)
	if u.DomainID == "" {
		switch {
		case c.DomainID != "":
			u.DomainID = c.DomainID
		case c.ProjectDomainID != "":
			u.DomainID = c.ProjectDomainID
		default:
			u.DomainID = "default"
		}
	}
	if _, err := s.GetDomain(r.Context(), u.DomainID); err != nil {
		return api.BadRequest("Could not find domain: %s.", u.DomainID)
	}
	if !domainAdmin(c, u.DomainID) {
		return forbidden()
	}
	if u.DefaultProjectID != "" {
		if _, err := s.GetProject(r.Context(), u.DefaultProjectID); err != nil {
			return api.BadRequest("Could not find project: %s.", u.DefaultProjectID)
		}
	}
	if u, err = s.CreateUser(r.Context(), u, password); err != nil {
		return err
	}
	return created(w, map[string]any{"user": userJSON(r, u)})
}

func (s *Service) handleUpdateUser(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	e, err := decodeEntity(r, "user")
	if err != nil {
		return err
	}
	u, err := s.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainAdmin(c, u.DomainID) {
		return forbidden()
	}
	if raw, ok := e["domain_id"]; ok && string(raw) != `"`+u.DomainID+`"` {
		return api.BadRequest("Invalid input for field 'domain_id': a user cannot move to another domain.")
	}
	if err := e.name("name", &u.Name, false); err != nil {
		return err
	}
	if _, err := e.boolean("enabled", &u.Enabled); err != nil {
		return err
	}
	var dp *string
	if set, err := e.nullableStr("default_project_id", &dp); err != nil {
		return err
	} else if set {
		u.DefaultProjectID = ""
		if dp != nil {
			if _, err := s.GetProject(r.Context(), *dp); err != nil {
				return api.BadRequest("Could not find project: %s.", *dp)
			}
			u.DefaultProjectID = *dp
		}
	}
	var password string
	if _, err := e.str("password", &password); err != nil {
		return err
	}
	if _, err := e.object("options", &u.Options); err != nil {
		return err
	}
	for k, v := range e.extras(userFields...) {
		u.Extra[k] = v
	}
	if err := s.updateUser(r.Context(), u, password); err != nil {
		return err
	}
	return ok(w, map[string]any{"user": userJSON(r, u)})
}

func (s *Service) handleDeleteUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainAdmin(api.CredentialsFrom(r.Context()), u.DomainID) {
		return forbidden()
	}
	if err := s.deleteUser(r.Context(), u.ID); err != nil {
		return err
	}
	return noContent(w)
}

// handleChangePassword is a user's self-service password change; it needs
// the current password and revokes the user's tokens.
func (s *Service) handleChangePassword(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	if c.UserID != r.PathValue("id") {
		return forbidden()
	}
	e, err := decodeEntity(r, "user")
	if err != nil {
		return err
	}
	var orig, pw string
	if ok, err := e.str("original_password", &orig); err != nil {
		return err
	} else if !ok {
		return api.BadRequest("Invalid input for field 'user/original_password': it is a required property.")
	}
	if ok, err := e.str("password", &pw); err != nil {
		return err
	} else if !ok || pw == "" {
		return api.BadRequest("Invalid input for field 'user/password': it is a required property.")
	}
	u, err := s.GetUser(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	if !s.checkPassword(&u, orig) {
		return api.Unauthorized("The original password is not correct.")
	}
	if err := s.updateUser(r.Context(), u, pw); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Service) handleUserProjects(w http.ResponseWriter, r *http.Request) error {
	u, err := s.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !canReadUser(api.CredentialsFrom(r.Context()), u) {
		return forbidden()
	}
	ids, err := s.userProjects(r.Context(), u.ID)
	if err != nil {
		return err
	}
	ps, err := s.listProjects(r.Context(), projectFilter{IDs: ids, Enabled: queryBool(r, "enabled"), Name: r.URL.Query().Get("name")})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, projectJSON(r, p))
	}
	return ok(w, map[string]any{"projects": out, "links": listLinks(r)})
}

func (s *Service) handleUserGroups(w http.ResponseWriter, r *http.Request) error {
	u, err := s.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !canReadUser(api.CredentialsFrom(r.Context()), u) {
		return forbidden()
	}
	gs, err := s.listGroups(r.Context(), groupFilter{UserID: u.ID})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, groupJSON(r, g))
	}
	return ok(w, map[string]any{"groups": out, "links": listLinks(r)})
}
