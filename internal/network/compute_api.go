package network

import (
	"context"
	"fmt"

	"github.com/monostack/monostack/internal/api"
)

// These are what compute asks of networking besides ports, acting for a
// member of a project.

// NetworkFor returns the name of network id if the project may plug ports
// into it (its own, shared or external; any for a cloud admin), and a 404
// otherwise.
func (s *Service) NetworkFor(ctx context.Context, project, id string, admin bool) (string, error) {
	n, err := s.visibleNetwork(ctx, s.db, caller{project: project, member: true, admin: admin}, id)
	if err != nil {
		return "", err
	}
	return n.Name, nil
}

// AutoNetwork is the network a server of the project gets for networks
// "auto": the project's own network when it has exactly one, else the
// first shared internal network, else "".
func (s *Service) AutoNetwork(ctx context.Context, project string) (string, error) {
	own, err := s.loadNetworks(ctx, s.db, `project_id=? AND NOT external`, project)
	if err != nil {
		return "", err
	}
	if len(own) == 1 {
		return own[0].ID, nil
	}
	shared, err := s.loadNetworks(ctx, s.db, `shared AND NOT external`)
	if err != nil || len(shared) == 0 {
		return "", err
	}
	return shared[0].ID, nil
}

// SecurityGroupID resolves a security group of the project by id or name.
func (s *Service) SecurityGroupID(ctx context.Context, project, nameOrID string) (string, error) {
	if project != "" {
		if _, err := s.EnsureDefaultSecurityGroup(ctx, project); err != nil {
			return "", err
		}
	}
	sgs, err := s.loadSGs(ctx, s.db, `project_id=? AND (id=? OR name=?)`, project, nameOrID, nameOrID)
	if err != nil {
		return "", err
	}
	switch len(sgs) {
	case 0:
		return "", api.NotFound("Security group %s not found.", nameOrID)
	case 1:
		return sgs[0].ID, nil
	}
	return "", api.Conflict("%s", fmt.Sprintf("Multiple security groups named %s; use an id.", nameOrID))
}

// NetworkNamed resolves a network the project may plug ports into by id
// or by name (its own first, then shared and external ones), as the
// containers API lets users name networks; none is a 404, several are a
// 409.
func (s *Service) NetworkNamed(ctx context.Context, project, ref string, admin bool) (string, error) {
	if _, err := s.NetworkFor(ctx, project, ref, admin); err == nil {
		return ref, nil
	}
	conds := []string{`project_id=? AND name=?`, `(shared OR external) AND name=?`}
	if admin {
		conds = append(conds, `name=?`) // a cloud admin may use any project's network
	}
	for _, cond := range conds {
		args := []any{project, ref}
		if cond[0] != 'p' {
			args = args[1:]
		}
		nets, err := s.loadNetworks(ctx, s.db, cond, args...)
		if err != nil {
			return "", err
		}
		switch len(nets) {
		case 0:
			continue
		case 1:
			return nets[0].ID, nil
		}
		return "", api.Conflict("Multiple networks named %s; use an id.", ref)
	}
	return "", api.NotFound("Network %s could not be found.", ref)
}
