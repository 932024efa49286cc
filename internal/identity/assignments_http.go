package identity

import (
	"context"
	"net/http"

	"github.com/monostack/monostack/internal/api"
)

// grantRoute describes one family of grant URLs:
// /v3/<target>s/{target}/<actor>s/{actor}/roles[/{role}], optionally under
// OS-INHERIT (inherited_to_projects).
type grantRoute struct {
	targetType, actorType string
	inherited             bool
}

// grantTarget resolves the target of a grant URL and returns the domain
// whose admins may manage it ("" for the system).
func (s *Service) grantTarget(ctx context.Context, g grantRoute, id string) (string, error) {
	switch g.targetType {
	case "project":
		p, err := s.GetProject(ctx, id)
		return p.DomainID, err
	case "domain":
		d, err := s.GetDomain(ctx, id)
		return d.ID, err
	}
	return "", nil
}

// grantActor resolves the actor of a grant URL and returns its domain.
func (s *Service) grantActor(ctx context.Context, g grantRoute, id string) (string, error) {
	if g.actorType == "user" {
		u, err := s.GetUser(ctx, id)
		return u.DomainID, err
	}
	gr, err := s.GetGroup(ctx, id)
	return gr.DomainID, err
}

// handleGrant serves PUT (grant), GET/HEAD (check) and DELETE (revoke) of
// one role, and GET of the list when there is no role in the path.
func (s *Service) handleGrant(g grantRoute) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ctx := r.Context()
		c := api.CredentialsFrom(ctx)
		target := r.PathValue("target")
		if g.targetType == "system" {
			target = "all"
		}
		dom, err := s.grantTarget(ctx, g, target)
		if err != nil {
			return err
		}
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		allowed := false
		switch {
		case g.targetType == "system" && read:
			allowed = c.CloudReader()
		case g.targetType == "system":
			allowed = c.CloudAdmin()
		case read:
			allowed = domainReader(c, dom)
		default:
			allowed = domainAdmin(c, dom)
		}
		if !allowed {
			return forbidden()
		}
		actor := r.PathValue("actor")
		actorDom, err := s.grantActor(ctx, g, actor)
		if err != nil {
			return err
		}
		// A domain admin grants only to the users and groups of its domain.
		if !read && !domainAdmin(c, actorDom) {
			return forbidden()
		}
		a := Assignment{ActorType: g.actorType, ActorID: actor, TargetType: g.targetType, TargetID: target, Inherited: g.inherited}
		roleID := r.PathValue("role")
		if roleID == "" { // list the roles granted
			as, err := s.listAssignments(ctx, assignmentFilter{})
			if err != nil {
				return err
			}
			all, err := s.rolesByID(ctx)
			if err != nil {
				return err
			}
			out := []any{}
			for _, b := range as {
				if b.ActorType == a.ActorType && b.ActorID == a.ActorID && b.TargetType == a.TargetType && b.TargetID == a.TargetID && b.Inherited == a.Inherited {
					out = append(out, roleJSON(r, all[b.RoleID]))
				}
			}
			return ok(w, map[string]any{"roles": out, "links": listLinks(r)})
		}
		role, err := s.GetRole(ctx, roleID)
		if err != nil {
			return err
		}
		a.RoleID = role.ID
		switch r.Method {
		case http.MethodPut:
			// A domain-specific role is granted only in its own domain.
			if role.DomainID != "" && role.DomainID != dom {
				return api.Forbidden("%s %s must be in the same domain as the role %s being assigned.", g.targetType, target, role.ID)
			}
			if err := s.grant(ctx, a); err != nil {
				return err
			}
			return noContent(w)
		case http.MethodDelete:
			if err := s.revokeGrant(ctx, a); err != nil {
				return err
			}
			return noContent(w)
		}
		has, err := s.hasGrant(ctx, a)
		if err != nil {
			return err
		}
		if !has {
			return api.NotFound("Could not find role assignment with role: %s, %s: %s, %s: %s.", role.ID, g.actorType, actor, g.targetType, target)
		}
		return noContent(w)
	}
}

// names looks up, once per request, the names include_names wants.
type names struct {
	s     *Service
	ctx   context.Context
	doms  map[string]Domain
	roles map[string]Role
}

func (n *names) domain(id string) map[string]any {
	d, ok := n.doms[id]
	if !ok {
		d, _ = n.s.GetDomain(n.ctx, id)
		n.doms[id] = d
	}
	return map[string]any{"id": id, "name": d.Name}
}

func (s *Service) assignmentJSON(r *http.Request, a Assignment, n *names) map[string]any {
	base := api.BaseURL(r) + "/identity/v3/"
	role := map[string]any{"id": a.RoleID}
	actor := map[string]any{"id": a.ActorID}
	var scope map[string]any
	switch a.TargetType {
	case "project":
		scope = map[string]any{"project": map[string]any{"id": a.TargetID}}
	case "domain":
		scope = map[string]any{"domain": map[string]any{"id": a.TargetID}}
	default:
		scope = map[string]any{"system": map[string]any{"all": true}}
	}
	if n != nil {
		if rr, ok := n.roles[a.RoleID]; ok {
			role["name"] = rr.Name
			if rr.DomainID != "" {
				role["domain"] = n.domain(rr.DomainID)
			}
		}
		if a.ActorType == "user" {
			if u, err := s.GetUser(n.ctx, a.ActorID); err == nil {
				actor["name"], actor["domain"] = u.Name, n.domain(u.DomainID)
			}
		} else if g, err := s.GetGroup(n.ctx, a.ActorID); err == nil {
			actor["name"], actor["domain"] = g.Name, n.domain(g.DomainID)
		}
		switch a.TargetType {
		case "project":
			if p, err := s.GetProject(n.ctx, a.TargetID); err == nil {
				scope["project"] = map[string]any{"id": p.ID, "name": p.Name, "domain": n.domain(p.DomainID)}
			}
		case "domain":
			scope["domain"] = n.domain(a.TargetID)
		}
	}
	if a.Inherited {
		scope["OS-INHERIT:inherited_to"] = "projects"
	}
	actorID, actorType := a.ActorID, a.ActorType
	if a.ViaGroup != "" {
		actorID, actorType = a.ViaGroup, "group"
	}
	link := base
	if a.TargetType == "system" {
		link += "system/" + actorType + "s/" + actorID + "/roles/" + a.RoleID
	} else {
		link += a.TargetType + "s/" + a.TargetID + "/" + actorType + "s/" + actorID + "/roles/" + a.RoleID
	}
	if a.Inherited {
		link = base + "OS-INHERIT/" + link[len(base):] + "/inherited_to_projects"
	}
	links := map[string]any{"assignment": link}
	if a.ViaGroup != "" {
		links["membership"] = base + "groups/" + a.ViaGroup + "/users/" + a.ActorID
	}
	out := map[string]any{"role": role, "scope": scope, "links": links}
	out[a.ActorType] = actor
	if a.PriorRole != "" {
		out["prior_role"] = map[string]any{"id": a.PriorRole}
	}
	return out
}

func (s *Service) handleRoleAssignments(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	q := r.URL.Query()
	f := assignmentFilter{
		UserID: q.Get("user.id"), GroupID: q.Get("group.id"), RoleID: q.Get("role.id"),
		ProjectID: q.Get("scope.project.id"), DomainID: q.Get("scope.domain.id"),
		System:         q.Has("scope.system"),
		InheritedOnly:  q.Get("scope.OS-INHERIT:inherited_to") == "projects",
		Effective:      q.Has("effective") && queryBool0(r, "effective"),
		IncludeSubtree: queryBool0(r, "include_subtree"),
	}
	if f.Effective && f.GroupID != "" {
		return api.BadRequest("Combining effective and group filter will always result in an empty list.")
	}
	if f.IncludeSubtree && f.ProjectID == "" {
		return api.BadRequest("scope.project.id needs to be specified if include_subtree is also specified.")
	}
	if f.ProjectID != "" && f.DomainID != "" {
		return api.BadRequest("Specify only one of scope.project.id and scope.domain.id.")
	}
	as, err := s.listAssignments(ctx, f)
	if err != nil {
		return err
	}
	var n *names
	if queryBool0(r, "include_names") {
		all, err := s.rolesByID(ctx)
		if err != nil {
			return err
		}
		n = &names{s: s, ctx: ctx, doms: map[string]Domain{}, roles: all}
	}
	// A domain reader sees only what is in its domain.
	inDomain := func(a Assignment) bool {
		if c.CloudReader() {
			return true
		}
		switch a.TargetType {
		case "domain":
			return a.TargetID == c.DomainID
		case "project":
			p, err := s.GetProject(ctx, a.TargetID)
			return err == nil && p.DomainID == c.DomainID
		}
		return false
	}
	out := []any{}
	for _, a := range as {
		if inDomain(a) {
			out = append(out, s.assignmentJSON(r, a, n))
		}
	}
	return ok(w, map[string]any{"role_assignments": out, "links": listLinks(r)})
}
