package identity

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// The body of POST /v3/auth/tokens.
type authRequest struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *userRef `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
			AppCred *struct {
				ID     string   `json:"id"`
				Name   string   `json:"name"`
				Secret string   `json:"secret"`
				User   *userRef `json:"user"`
			} `json:"application_credential"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

type userRef struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Password string     `json:"password"`
	Domain   *domainRef `json:"domain"`
}

type domainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type scopeRequest struct {
	Project *struct {
		ID     string     `json:"id"`
		Name   string     `json:"name"`
		Domain *domainRef `json:"domain"`
	} `json:"project"`
	Domain *domainRef `json:"domain"`
	System *struct {
		All bool `json:"all"`
	} `json:"system"`
}

func authFailed() error {
	return api.Unauthorized("The request you have made requires authentication.")
}

// findDomain resolves a {"id"} or {"name"} reference.
func (s *Service) findDomain(ctx context.Context, ref *domainRef) (Domain, error) {
	switch {
	case ref == nil:
		return Domain{}, api.BadRequest("A domain id or name is required.")
	case ref.ID != "":
		return s.GetDomain(ctx, ref.ID)
	case ref.Name != "":
		return s.DomainByName(ctx, ref.Name)
	}
	return Domain{}, api.BadRequest("A domain id or name is required.")
}

// findAuthUser resolves the user of a password or application-credential
// method. A user that cannot be found returns nil, not an error, so that the
// caller does the same work as for a wrong password.
func (s *Service) findAuthUser(ctx context.Context, ref *userRef) (*User, error) {
	if ref == nil || (ref.ID == "" && ref.Name == "") {
		return nil, api.BadRequest("Invalid input for field 'identity/password/user': a user id or name is required.")
	}
	var u User
	var err error
	if ref.ID != "" {
		u, err = s.GetUser(ctx, ref.ID)
	} else {
		if ref.Domain == nil || (ref.Domain.ID == "" && ref.Domain.Name == "") {
			return nil, api.BadRequest("Invalid input: a user given by name needs a domain id or name.")
		}
		var d Domain
		if d, err = s.findDomain(ctx, ref.Domain); err == nil {
			if !d.Enabled {
				return nil, nil
			}
			u, err = s.UserByName(ctx, d.ID, ref.Name)
		}
	}
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &u, nil
}

func (s *Service) handleIssueToken(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req authRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Auth == nil || req.Auth.Identity == nil {
		return api.BadRequest("Invalid input for field 'auth/identity': it is a required property.")
	}
	id := req.Auth.Identity
	if len(id.Methods) == 0 {
		return api.BadRequest("Invalid input for field 'identity/methods': it must name at least one method.")
	}
	t := now()
	p := &payload{IssuedAt: t, ExpiresAt: t.Add(s.cfg.TokenTTL), AuditIDs: []string{newAuditID()}}
	var parent *tokenInfo
	for i, m := range id.Methods {
		if slices.Index(id.Methods, m) < i {
			continue // named twice
		}
		var uid string
		switch m {
		case "password":
			if id.Password == nil || id.Password.User == nil {
				return api.BadRequest("Invalid input for field 'identity/password/user': it is a required property.")
			}
			u, err := s.findAuthUser(ctx, id.Password.User)
			if err != nil {
				return err
			}
			if !s.checkPassword(u, id.Password.User.Password) || !u.Enabled {
				return authFailed()
			}
			uid = u.ID
		case "token":
			if id.Token == nil || id.Token.ID == "" {
				return api.BadRequest("Invalid input for field 'identity/token/id': it is a required property.")
			}
			info, err := s.validate(ctx, id.Token.ID, false)
			if err != nil {
				return authFailed()
			}
			if info.p.AppCredID != "" {
				return api.Forbidden("A token made from an application credential cannot be rescoped.")
			}
			if info.p.System && scopesProjectOrDomain(req.Auth.Scope) {
				return api.Forbidden("Using a system-scoped token to create a project-scoped or domain-scoped token is not allowed.")
			}
			parent, uid = info, info.p.UserID
			// Rescoping never extends a token's life, and keeps its audit
			// chain: the id of the first token of the chain, which is the
			// parent's last.
			p.ExpiresAt = info.p.ExpiresAt
			p.AuditIDs = append(p.AuditIDs, info.p.AuditIDs[len(info.p.AuditIDs)-1])
			for _, pm := range info.p.Methods {
				if !slices.Contains(id.Methods, pm) {
					p.Methods = append(p.Methods, pm)
				}
			}
		case "application_credential":
			ac, err := s.authAppCredential(ctx, id.AppCred)
			if err != nil {
				return err
			}
			uid, p.AppCredID, p.ProjectID = ac.UserID, ac.ID, ac.ProjectID
			if ac.ExpiresAt != nil && ac.ExpiresAt.Before(p.ExpiresAt) {
				p.ExpiresAt = *ac.ExpiresAt
			}
		default:
			return api.Unauthorized("Attempted to authenticate with an unsupported method.")
		}
		if p.UserID != "" && p.UserID != uid {
			return api.Unauthorized("The methods identify different users.")
		}
		p.UserID = uid
		if !slices.Contains(p.Methods, m) {
			p.Methods = append(p.Methods, m)
		}
	}
	if err := s.applyScope(ctx, r, req.Auth.Scope, p, parent); err != nil {
		return err
	}
	tok, info, err := s.issue(ctx, p)
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", tok)
	body, err := s.tokenJSON(ctx, info, !queryBool0(r, "nocatalog"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(body)
	return nil
}

// scopesProjectOrDomain reports whether a request's scope names a project
// or a domain (a malformed scope is refused later, by applyScope).
func scopesProjectOrDomain(raw json.RawMessage) bool {
	var sc scopeRequest
	if json.Unmarshal(raw, &sc) != nil {
		return false
	}
	return sc.Project != nil || sc.Domain != nil
}

func queryBool0(r *http.Request, name string) bool {
	b := queryBool(r, name)
	return b != nil && *b
}

// applyScope sets p's scope from the request, or from the user's default
// project when the request names none.
func (s *Service) applyScope(ctx context.Context, r *http.Request, raw json.RawMessage, p *payload, parent *tokenInfo) error {
	if p.AppCredID != "" {
		if len(raw) > 0 && string(raw) != "null" {
			return api.Unauthorized("Application credentials cannot request a scope.")
		}
		return nil
	}
	if len(raw) == 0 || string(raw) == "null" {
		u, err := s.GetUser(ctx, p.UserID)
		if err != nil {
			return authFailed()
		}
		if u.DefaultProjectID != "" {
			if roles, err := s.effectiveRoleIDs(ctx, u.ID, "project", u.DefaultProjectID); err == nil && len(roles) > 0 {
				if proj, err := s.GetProject(ctx, u.DefaultProjectID); err == nil && proj.Enabled {
					p.ProjectID = proj.ID
				}
			}
		}
		return nil
	}
	if string(raw) == `"unscoped"` {
		return nil
	}
	var sc scopeRequest
	if err := api.Unmarshal(raw, &sc); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{sc.Project != nil, sc.Domain != nil, sc.System != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return api.BadRequest("Invalid input for field 'scope': exactly one of project, domain or system is required.")
	}
	notFound := func(err error) error {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			return api.Unauthorized("%s", ae.Message)
		}
		return err
	}
	switch {
	case sc.Project != nil:
		var proj Project
		var err error
		if sc.Project.ID != "" {
			proj, err = s.GetProject(ctx, sc.Project.ID)
		} else if sc.Project.Name != "" {
			var d Domain
			if d, err = s.findDomain(ctx, sc.Project.Domain); err == nil {
				proj, err = s.ProjectByName(ctx, d.ID, sc.Project.Name)
			}
		} else {
			return api.BadRequest("Invalid input for field 'scope/project': an id or a name is required.")
		}
		if err != nil {
			return notFound(err)
		}
		p.ProjectID = proj.ID
	case sc.Domain != nil:
		d, err := s.findDomain(ctx, sc.Domain)
		if err != nil {
			return notFound(err)
		}
		p.DomainID = d.ID
	case sc.System != nil:
		if !sc.System.All {
			return api.BadRequest("Invalid input for field 'scope/system': only {\"all\": true} is supported.")
		}
		p.System = true
	}
	return nil
}

// tokenJSON returns a token's body, built once per validated token.
func (s *Service) tokenJSON(ctx context.Context, info *tokenInfo, withCatalog bool) ([]byte, error) {
	info.bodyOnce.Do(func() {
		t := s.tokenObject(info)
		info.bodyNoCatalog, info.bodyErr = json.Marshal(map[string]any{"token": t})
		if info.bodyErr != nil {
			return
		}
		if info.p.ProjectID != "" || info.p.DomainID != "" || info.p.System {
			cat, err := s.catalogFor(ctx, info.p.UserID, info.p.ProjectID)
			if err != nil {
				info.bodyErr = err
				return
			}
			t["catalog"] = cat
		} else {
			t["catalog"] = []any{}
		}
		info.body, info.bodyErr = json.Marshal(map[string]any{"token": t})
	})
	if withCatalog {
		return info.body, info.bodyErr
	}
	return info.bodyNoCatalog, info.bodyErr
}

func (s *Service) tokenObject(info *tokenInfo) map[string]any {
	p := info.p
	t := map[string]any{
		"methods":    p.Methods,
		"audit_ids":  p.AuditIDs,
		"expires_at": p.ExpiresAt.Format("2006-01-02T15:04:05.000000Z"),
		"issued_at":  p.IssuedAt.Format("2006-01-02T15:04:05.000000Z"),
		"user": map[string]any{
			"id": info.user.ID, "name": info.user.Name, "password_expires_at": nil,
			"domain": map[string]any{"id": info.userDomain.ID, "name": info.userDomain.Name},
		},
	}
	roles := make([]any, 0, len(info.roles))
	for _, r := range info.roles {
		roles = append(roles, map[string]any{"id": r.ID, "name": r.Name})
	}
	switch {
	case info.project != nil:
		t["project"] = map[string]any{"id": info.project.ID, "name": info.project.Name,
			"domain": map[string]any{"id": info.projectDomain.ID, "name": info.projectDomain.Name}}
		t["is_domain"] = false
		t["roles"] = roles
		if info.creds.IsAdminProject {
			t["is_admin_project"] = true
		}
	case info.domain != nil:
		t["domain"] = map[string]any{"id": info.domain.ID, "name": info.domain.Name}
		t["roles"] = roles
	case p.System:
		t["system"] = map[string]any{"all": true}
		t["roles"] = roles
	}
	if info.appCred != nil {
		t["application_credential"] = map[string]any{"id": info.appCred.ID, "name": info.appCred.Name, "restricted": !info.appCred.Unrestricted}
	}
	return t
}

// subjectToken validates X-Subject-Token for GET/HEAD/DELETE on
// /v3/auth/tokens, which the caller may do for its own tokens, or as a cloud
// admin or service user for anyone's.
func (s *Service) subjectToken(r *http.Request) (*tokenInfo, error) {
	sub := strings.TrimSpace(r.Header.Get("X-Subject-Token"))
	if sub == "" {
		return nil, api.BadRequest("The X-Subject-Token header is required.")
	}
	c := api.CredentialsFrom(r.Context())
	info, err := s.validate(r.Context(), sub, queryBool0(r, "allow_expired"))
	if err != nil {
		return nil, err
	}
	if !c.CloudReader() && !c.HasRole("service") && c.UserID != info.p.UserID {
		return nil, forbidden()
	}
	return info, nil
}

func (s *Service) handleValidateToken(w http.ResponseWriter, r *http.Request) error {
	info, err := s.subjectToken(r)
	if err != nil {
		return err
	}
	body, err := s.tokenJSON(r.Context(), info, !queryBool0(r, "nocatalog"))
	if err != nil {
		return err
	}
	w.Header().Set("X-Subject-Token", r.Header.Get("X-Subject-Token"))
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return nil
}

func (s *Service) handleRevokeToken(w http.ResponseWriter, r *http.Request) error {
	info, err := s.subjectToken(r)
	if err != nil {
		return err
	}
	// Readers and services may validate anyone's token; only the cloud
	// admin may revoke someone else's.
	if c := api.CredentialsFrom(r.Context()); c.UserID != info.p.UserID && !c.CloudAdmin() {
		return forbidden()
	}
	if err := s.revoke(r.Context(), revocationEvent{AuditID: info.p.AuditIDs[0], IssuedBefore: info.p.IssuedAt}); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Service) handleAuthCatalog(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	if c.ProjectID == "" && c.DomainID == "" && !c.System {
		return api.Forbidden("A scoped token is required to produce a service catalog.")
	}
	cat, err := s.catalogFor(r.Context(), c.UserID, c.ProjectID)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"catalog": cat, "links": listLinks(r)})
}

func (s *Service) handleAuthProjects(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	ids, err := s.userProjects(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	enabled := true
	ps, err := s.listProjects(r.Context(), projectFilter{IDs: ids, Enabled: &enabled})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, projectJSON(r, p))
	}
	return ok(w, map[string]any{"projects": out, "links": listLinks(r)})
}

func (s *Service) handleAuthDomains(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	ids, err := s.userDomains(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	out := []any{}
	for _, id := range ids {
		if d, err := s.GetDomain(r.Context(), id); err == nil && d.Enabled {
			out = append(out, domainJSON(r, d))
		}
	}
	return ok(w, map[string]any{"domains": out, "links": listLinks(r)})
}

func (s *Service) handleAuthSystem(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	roles, err := s.effectiveRoleIDs(r.Context(), c.UserID, "system", "all")
	if err != nil {
		return err
	}
	sys := []any{}
	if len(roles) > 0 {
		sys = append(sys, map[string]any{"all": true})
	}
	return ok(w, map[string]any{"system": sys, "links": listLinks(r)})
}
