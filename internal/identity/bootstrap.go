package identity

import (
	"context"
	"errors"

	"github.com/monostack/monostack/internal/api"
)

// Bootstrap is what the first start creates, as DevStack does: the Default
// domain, projects admin, demo and service, users admin and demo, roles
// admin ⊃ member ⊃ reader and service, and the grants that make admin a
// cloud admin and demo a member of demo.
type Bootstrap struct {
	AdminPassword string
	DemoPassword  string
	// Generated says the passwords are random (144 bits or more), not a
	// person's choice: key stretching protects nothing then, so they are
	// first hashed at bcrypt's minimum cost, which keeps the first start
	// fast, and rehashed at the configured cost at their first use.
	Generated map[string]bool
}

// EnsureBootstrap creates whatever of the bootstrap layout is missing. It is
// idempotent: on a database that has it all, it changes nothing (existing
// users keep their passwords).
func (s *Service) EnsureBootstrap(ctx context.Context, b Bootstrap) error {
	if _, err := s.GetDomain(ctx, "default"); api.IsNotFound(err) {
		if _, err := s.CreateDomain(ctx, Domain{ID: "default", Name: "Default", Description: "The default domain", Enabled: true}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	projects := map[string]string{}
	for _, name := range []string{"admin", "demo", "service"} {
		p, err := s.ProjectByName(ctx, "default", name)
		if api.IsNotFound(err) {
			desc := map[string]string{"admin": "Bootstrap project for the cloud's administrators",
				"demo": "Demo project", "service": "Project for the services' own users"}[name]
			p, err = s.CreateProject(ctx, Project{Name: name, DomainID: "default", Description: desc, Enabled: true})
		}
		if err != nil {
			return err
		}
		projects[name] = p.ID
	}
	roles := map[string]string{}
	for _, name := range []string{"admin", "member", "reader", "service"} {
		r, err := s.RoleByName(ctx, name)
		if api.IsNotFound(err) {
			r, err = s.CreateRole(ctx, Role{Name: name})
		}
		if err != nil {
			return err
		}
		roles[name] = r.ID
	}
	if err := s.addImplied(ctx, roles["admin"], roles["member"]); err != nil {
		return err
	}
	if err := s.addImplied(ctx, roles["member"], roles["reader"]); err != nil {
		return err
	}
	// Users: hashing is the slow part, so the two run side by side.
	type want struct{ name, password, project string }
	wants := []want{{"admin", b.AdminPassword, "admin"}, {"demo", b.DemoPassword, "demo"}}
	errs := make(chan error, len(wants))
	ids := make([]string, len(wants))
	for i, wu := range wants {
		go func() {
			u, err := s.UserByName(ctx, "default", wu.name)
			if api.IsNotFound(err) {
				u, err = s.createUserAtCost(ctx, User{Name: wu.name, DomainID: "default", Enabled: true,
					DefaultProjectID: projects[wu.project]}, wu.password, b.Generated[wu.name])
			}
			ids[i] = u.ID
			errs <- err
		}()
	}
	var errList []error
	for range wants {
		errList = append(errList, <-errs)
	}
	if err := errors.Join(errList...); err != nil {
		return err
	}
	grants := []Assignment{
		{ActorType: "user", ActorID: ids[0], TargetType: "project", TargetID: projects["admin"], RoleID: roles["admin"]},
		{ActorType: "user", ActorID: ids[0], TargetType: "system", TargetID: "all", RoleID: roles["admin"]},
		{ActorType: "user", ActorID: ids[1], TargetType: "project", TargetID: projects["demo"], RoleID: roles["member"]},
	}
	for _, g := range grants {
		if err := s.grant(ctx, g); err != nil {
			return err
		}
	}
	return s.EnsureService(ctx, "identity", "keystone", "Keystone Identity Service", s.URL())
}
