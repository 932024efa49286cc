package identity

import (
	"log/slog"

	"github.com/monostack/monostack/internal/api"
)

// Router returns the Identity API under /identity. Every route but version
// discovery and token issue needs a valid token, and names the policy rule
// it checks first; handlers check what depends on the target's domain.
func (s *Service) Router(log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: "/identity", Fault: api.KeystoneFault, Auth: s, AuthURI: s.URL(), Log: log})
	any_ := api.Authenticated
	read, write := readerOrDomainReader, adminOrDomainAdmin
	admin, cloudRead := api.AdminOnly, isCloudReader

	rt.Public("GET ", s.handleVersions) // exactly /identity
	rt.Public("GET /{$}", s.handleVersions)
	rt.Public("GET /v3", s.handleV3)
	rt.Public("GET /v3/{$}", s.handleV3)

	rt.Public("POST /v3/auth/tokens", s.handleIssueToken)
	rt.Handle("GET /v3/auth/tokens", any_, s.handleValidateToken)
	rt.Handle("HEAD /v3/auth/tokens", any_, s.handleValidateToken)
	rt.Handle("DELETE /v3/auth/tokens", any_, s.handleRevokeToken)
	rt.Handle("GET /v3/auth/catalog", any_, s.handleAuthCatalog)
	rt.Handle("GET /v3/auth/projects", any_, s.handleAuthProjects)
	rt.Handle("GET /v3/auth/domains", any_, s.handleAuthDomains)
	rt.Handle("GET /v3/auth/system", any_, s.handleAuthSystem)

	rt.Handle("GET /v3/domains", read, s.handleListDomains)
	rt.Handle("POST /v3/domains", admin, s.handleCreateDomain)
	rt.Handle("GET /v3/domains/{id}", any_, s.handleGetDomain)
	rt.Handle("PATCH /v3/domains/{id}", admin, s.handleUpdateDomain)
	rt.Handle("DELETE /v3/domains/{id}", admin, s.handleDeleteDomain)

	rt.Handle("GET /v3/projects", read, s.handleListProjects)
	rt.Handle("POST /v3/projects", write, s.handleCreateProject)
	rt.Handle("GET /v3/projects/{id}", any_, s.handleGetProject)
	rt.Handle("PATCH /v3/projects/{id}", write, s.handleUpdateProject)
	rt.Handle("DELETE /v3/projects/{id}", write, s.handleDeleteProject)
	rt.Handle("GET /v3/projects/{id}/tags", any_, s.handleProjectTags)
	rt.Handle("PUT /v3/projects/{id}/tags", write, s.handleProjectTags)
	rt.Handle("DELETE /v3/projects/{id}/tags", write, s.handleProjectTags)
	rt.Handle("GET /v3/projects/{id}/tags/{tag}", any_, s.handleProjectTags)
	rt.Handle("HEAD /v3/projects/{id}/tags/{tag}", any_, s.handleProjectTags)
	rt.Handle("PUT /v3/projects/{id}/tags/{tag}", write, s.handleProjectTags)
	rt.Handle("DELETE /v3/projects/{id}/tags/{tag}", write, s.handleProjectTags)

	rt.Handle("GET /v3/users", read, s.handleListUsers)
	rt.Handle("POST /v3/users", write, s.handleCreateUser)
	rt.Handle("GET /v3/users/{id}", any_, s.handleGetUser)
	rt.Handle("PATCH /v3/users/{id}", write, s.handleUpdateUser)
	rt.Handle("DELETE /v3/users/{id}", write, s.handleDeleteUser)
	rt.Handle("POST /v3/users/{id}/password", any_, s.handleChangePassword)
	rt.Handle("GET /v3/users/{id}/projects", any_, s.handleUserProjects)
	rt.Handle("GET /v3/users/{id}/groups", any_, s.handleUserGroups)

	rt.Handle("GET /v3/users/{user_id}/application_credentials", any_, s.handleListAppCreds)
	rt.Handle("POST /v3/users/{user_id}/application_credentials", any_, s.handleCreateAppCred)
	rt.Handle("GET /v3/users/{user_id}/application_credentials/{id}", any_, s.handleGetAppCred)
	rt.Handle("DELETE /v3/users/{user_id}/application_credentials/{id}", any_, s.handleDeleteAppCred)

	rt.Handle("GET /v3/groups", read, s.handleListGroups)
	rt.Handle("POST /v3/groups", write, s.handleCreateGroup)
	rt.Handle("GET /v3/groups/{id}", read, s.handleGetGroup)
	rt.Handle("PATCH /v3/groups/{id}", write, s.handleUpdateGroup)
	rt.Handle("DELETE /v3/groups/{id}", write, s.handleDeleteGroup)
	rt.Handle("GET /v3/groups/{id}/users", read, s.handleGroupUsers)
	for _, m := range []string{"PUT", "DELETE"} {
		rt.Handle(m+" /v3/groups/{id}/users/{user_id}", write, s.handleMembership)
	}
	for _, m := range []string{"GET", "HEAD"} {
		rt.Handle(m+" /v3/groups/{id}/users/{user_id}", any_, s.handleMembership)
	}

	rt.Handle("GET /v3/roles", read, s.handleListRoles)
	rt.Handle("POST /v3/roles", admin, s.handleCreateRole)
	rt.Handle("GET /v3/roles/{id}", read, s.handleGetRole)
	rt.Handle("PATCH /v3/roles/{id}", admin, s.handleUpdateRole)
	rt.Handle("DELETE /v3/roles/{id}", admin, s.handleDeleteRole)
	rt.Handle("GET /v3/roles/{id}/implies", cloudRead, s.handleListImplied)
	rt.Handle("GET /v3/roles/{id}/implies/{implied}", cloudRead, s.handleImplied)
	rt.Handle("HEAD /v3/roles/{id}/implies/{implied}", cloudRead, s.handleImplied)
	rt.Handle("PUT /v3/roles/{id}/implies/{implied}", admin, s.handleImplied)
	rt.Handle("DELETE /v3/roles/{id}/implies/{implied}", admin, s.handleImplied)
	rt.Handle("GET /v3/role_inferences", cloudRead, s.handleRoleInferences)
	rt.Handle("GET /v3/role_assignments", read, s.handleRoleAssignments)

	// Grants: /v3/{projects,domains}/{target}/{users,groups}/{actor}/roles[/{role}],
	// /v3/system/{users,groups}/{actor}/roles[/{role}] and the OS-INHERIT forms.
	for _, t := range []string{"project", "domain", "system"} {
		for _, a := range []string{"user", "group"} {
			base := "/v3/" + t + "s/{target}/" + a + "s/{actor}/roles"
			if t == "system" {
				base = "/v3/system/" + a + "s/{actor}/roles"
			}
			h := s.handleGrant(grantRoute{targetType: t, actorType: a})
			rt.Handle("GET "+base, read, h)
			rt.Handle("GET "+base+"/{role}", read, h)
			rt.Handle("HEAD "+base+"/{role}", read, h)
			rt.Handle("PUT "+base+"/{role}", write, h)
			rt.Handle("DELETE "+base+"/{role}", write, h)
			if t == "system" {
				continue
			}
			inh := s.handleGrant(grantRoute{targetType: t, actorType: a, inherited: true})
			ib := "/v3/OS-INHERIT/" + t + "s/{target}/" + a + "s/{actor}/roles"
			rt.Handle("GET "+ib+"/inherited_to_projects", read, inh)
			rt.Handle("GET "+ib+"/{role}/inherited_to_projects", read, inh)
			rt.Handle("HEAD "+ib+"/{role}/inherited_to_projects", read, inh)
			rt.Handle("PUT "+ib+"/{role}/inherited_to_projects", write, inh)
			rt.Handle("DELETE "+ib+"/{role}/inherited_to_projects", write, inh)
		}
	}

	s.catalogRoutes(rt)
	return rt
}
