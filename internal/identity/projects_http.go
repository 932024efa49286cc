package identity

import (
	"net/http"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

var projectFields = []string{"id", "name", "domain_id", "parent_id", "description", "enabled", "is_domain", "tags", "options", "links"}

func projectJSON(r *http.Request, p Project) map[string]any {
	out := map[string]any{}
	for k, v := range p.Extra {
		out[k] = v
	}
	parent := p.ParentID
	if parent == "" {
		parent = p.DomainID // Keystone: a top-level project's parent is its domain
	}
	for k, v := range map[string]any{
		"id": p.ID, "name": p.Name, "domain_id": p.DomainID, "parent_id": parent, "description": p.Description,
		"enabled": p.Enabled, "is_domain": false, "tags": p.Tags, "options": map[string]any{},
		"links": selfLink(r, "projects/"+p.ID),
	} {
		out[k] = v
	}
	return out
}

// canReadProject: cloud readers, readers of its domain and members of the
// project itself may read a project.
func canReadProject(c *api.Credentials, p Project) bool {
	return domainReader(c, p.DomainID) || c.ProjectID == p.ID
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func (s *Service) handleListProjects(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	q := r.URL.Query()
	f := projectFilter{
		DomainID: q.Get("domain_id"), Name: q.Get("name"), ParentID: q.Get("parent_id"), Enabled: queryBool(r, "enabled"),
		Tags: splitList(q.Get("tags")), TagsAny: splitList(q.Get("tags-any")),
		NotTags: splitList(q.Get("not-tags")), NotTagsAny: splitList(q.Get("not-tags-any")),
	}
	if d := listDomainFilter(c); d != "" {
		if f.DomainID != "" && f.DomainID != d {
			return forbidden()
		}
		f.DomainID = d
	}
	if b := queryBool(r, "is_domain"); b != nil && *b {
		return ok(w, map[string]any{"projects": []any{}, "links": listLinks(r)})
	}
	ps, err := s.listProjects(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, projectJSON(r, p))
	}
	return ok(w, map[string]any{"projects": out, "links": listLinks(r)})
}

func (s *Service) handleGetProject(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	p, err := s.GetProject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !canReadProject(c, p) {
		return forbidden()
	}
	out := projectJSON(r, p)
	if queryBool0(r, "parents_as_ids") || queryBool0(r, "parents_as_list") {
		anc, err := s.ancestors(r.Context(), p.ID)
		if err != nil {
			return err
		}
		out["parents"] = anc
	}
	if queryBool0(r, "subtree_as_ids") || queryBool0(r, "subtree_as_list") {
		sub, err := s.subtree(r.Context(), p.ID)
		if err != nil {
			return err
		}
		out["subtree"] = sub
	}
	return ok(w, map[string]any{"project": out})
}

func (s *Service) handleCreateProject(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	e, err := decodeEntity(r, "project")
	if err != nil {
		return err
	}
	p := Project{Enabled: true}
	if err := e.name("name", &p.Name, true); err != nil {
		return err
	}
	if _, err := e.str("description", &p.Description); err != nil {
		return err
	}
	if _, err := e.boolean("enabled", &p.Enabled); err != nil {
		return err
	}
	if _, err := e.str("domain_id", &p.DomainID); err != nil {
		return err
	}
	if _, err := e.str("parent_id", &p.ParentID); err != nil {
		return err
	}
	var isDomain bool
	if _, err := e.boolean("is_domain", &isDomain); err != nil {
		return err
	}
	if isDomain {
		return api.BadRequest("Projects acting as domains are not supported; create a domain instead.")
	}
	if _, err := e.strings("tags", &p.Tags); err != nil {
		return err
	}
	if err := validTags(p.Tags); err != nil {
		return err
	}
	var opts map[string]any
	if _, err := e.object("options", &opts); err != nil {
		return err
	}
	p.Extra = e.extras(projectFields...)
	if p.ParentID != "" {
		if parent, err := s.GetProject(r.Context(), p.ParentID); err == nil {
			if p.DomainID != "" && p.DomainID != parent.DomainID {
				return api.BadRequest("The parent project %s is in another domain.", p.ParentID)
			}
			p.DomainID = parent.DomainID
		} else if _, derr := s.GetDomain(r.Context(), p.ParentID); derr == nil {
			p.DomainID, p.ParentID = p.ParentID, ""
		} else {
			return api.NotFound("Could not find project: %s.", p.ParentID)
		}
	}
	if p.DomainID == "" {
		switch {
		case c.DomainID != "":
			p.DomainID = c.DomainID
		case c.ProjectDomainID != "":
			p.DomainID = c.ProjectDomainID
		default:
			p.DomainID = "default"
		}
	}
	if _, err := s.GetDomain(r.Context(), p.DomainID); err != nil {
		return api.BadRequest("Could not find domain: %s.", p.DomainID)
	}
	if !domainAdmin(c, p.DomainID) {
		return forbidden()
	}
	if p.ParentID != "" {
		if err := s.checkNewChild(r.Context(), p.ParentID); err != nil {
			return err
		}
	}
	if p, err = s.CreateProject(r.Context(), p); err != nil {
		return err
	}
	return created(w, map[string]any{"project": projectJSON(r, p)})
}

func (s *Service) handleUpdateProject(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	e, err := decodeEntity(r, "project")
	if err != nil {
		return err
	}
	p, err := s.GetProject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainAdmin(c, p.DomainID) {
		return forbidden()
	}
	for _, f := range []string{"id", "domain_id", "parent_id", "is_domain"} {
		var cur string
		switch f {
		case "id":
			cur = p.ID
		case "domain_id":
			cur = p.DomainID
		case "parent_id":
			cur = p.ParentID
			if cur == "" {
				cur = p.DomainID
			}
		}
		if raw, ok := e[f]; ok && f != "is_domain" && string(raw) != `"`+cur+`"` {
			return api.BadRequest("Invalid input for field '%s': it cannot be changed.", f)
		}
	}
	if err := e.name("name", &p.Name, false); err != nil {
		return err
	}
	if _, err := e.str("description", &p.Description); err != nil {
		return err
	}
	wasEnabled := p.Enabled
	if _, err := e.boolean("enabled", &p.Enabled); err != nil {
		return err
	}
	if p.Enabled != wasEnabled {
		if err := s.checkEnabledChange(r.Context(), p); err != nil {
			return err
		}
	}
	tags, err := e.strings("tags", &p.Tags)
	if err != nil {
		return err
	}
	if err := validTags(p.Tags); err != nil {
		return err
	}
	for k, v := range e.extras(projectFields...) {
		p.Extra[k] = v
	}
	if err := s.updateProject(r.Context(), p, tags); err != nil {
		return err
	}
	return ok(w, map[string]any{"project": projectJSON(r, p)})
}

func (s *Service) handleDeleteProject(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	p, err := s.GetProject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainAdmin(c, p.DomainID) {
		return forbidden()
	}
	if err := s.deleteProject(r.Context(), p.ID); err != nil {
		return err
	}
	return noContent(w)
}

func (s *Service) handleProjectTags(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	p, err := s.GetProject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	tag := r.PathValue("tag")
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if !canReadProject(c, p) {
			return forbidden()
		}
		if tag == "" {
			return ok(w, map[string]any{"tags": p.Tags})
		}
		for _, t := range p.Tags {
			if t == tag {
				return noContent(w)
			}
		}
		return api.NotFound("Could not find tag: %s.", tag)
	}
	if !domainAdmin(c, p.DomainID) {
		return forbidden()
	}
	switch {
	case r.Method == http.MethodPut && tag == "":
		var body entity
		if err := api.DecodeJSON(r, &body); err != nil {
			return err
		}
		if body == nil {
			return api.BadRequest("Invalid input: the request body must be a JSON object.")
		}
		if err := body.only("tags"); err != nil {
			return err
		}
		if raw, ok := body["tags"]; ok && string(raw) == "null" {
			return typeErr("tags", "array", raw)
		}
		tags := []string{}
		if _, err := body.strings("tags", &tags); err != nil {
			return err
		}
		if err := validTags(tags); err != nil {
			return err
		}
		p.Tags = tags
	case r.Method == http.MethodPut:
		if err := validTags(append(p.Tags, tag)); err != nil {
			return err
		}
		p.Tags = append(p.Tags, tag)
	case r.Method == http.MethodDelete && tag == "":
		p.Tags = []string{}
	case r.Method == http.MethodDelete:
		n := len(p.Tags)
		p.Tags = deleteString(p.Tags, tag)
		if len(p.Tags) == n {
			return api.NotFound("Could not find tag: %s.", tag)
		}
	}
	if err := s.updateProject(r.Context(), p, true); err != nil {
		return err
	}
	switch {
	case r.Method == http.MethodDelete:
		return noContent(w)
	case tag != "":
		w.Header().Set("Location", api.BaseURL(r)+r.URL.EscapedPath())
		return created(w, map[string]any{"tags": p.Tags})
	}
	return ok(w, map[string]any{"tags": p.Tags})
}

func deleteString(list []string, s string) []string {
	out := list[:0:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}
