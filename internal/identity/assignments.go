package identity

import (
	"context"
	"errors"
	"slices"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Assignment is one grant of a role to a user or group on a project, a
// domain or the system. Inherited grants apply to the target's subtree (a
// domain's projects, a project's descendants) and not to the target itself.
type Assignment struct {
	ActorType  string // "user" or "group"
	ActorID    string
	TargetType string // "project", "domain" or "system"
	TargetID   string // "all" for the system
	RoleID     string
	Inherited  bool

	// Set on effective assignments: the group the user has it through and
	// the role it was implied by.
	ViaGroup  string
	PriorRole string
}

func (s *Service) grant(ctx context.Context, a Assignment) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO assignments (actor_type, actor_id, target_type, target_id, role_id, inherited)
		VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING`, a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID, a.Inherited)
	s.changed()
	return store.Translate(err)
}

func (s *Service) hasGrant(ctx context.Context, a Assignment) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM assignments WHERE actor_type=? AND actor_id=? AND target_type=? AND target_id=? AND role_id=? AND inherited=?`,
		a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID, a.Inherited).Scan(&n)
	return n > 0, store.Translate(err)
}

// revokeGrant removes a grant; a grant that is not there is a 404.
func (s *Service) revokeGrant(ctx context.Context, a Assignment) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM assignments WHERE actor_type=? AND actor_id=? AND target_type=? AND target_id=? AND role_id=? AND inherited=?`,
		a.ActorType, a.ActorID, a.TargetType, a.TargetID, a.RoleID, a.Inherited)
	if err != nil {
		return store.Translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Could not find role assignment with role: %s, %s: %s, %s: %s.", a.RoleID, a.ActorType, a.ActorID, a.TargetType, a.TargetID)
	}
	s.changed()
	return nil
}

// allAssignments returns every stored grant (the table is small enough to
// expand in memory).
func (s *Service) allAssignments(ctx context.Context) ([]Assignment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT actor_type, actor_id, target_type, target_id, role_id, inherited FROM assignments
		ORDER BY actor_type DESC, actor_id, target_type, target_id, role_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Assignment
	for rows.Next() {
		var a Assignment
		if err := rows.Scan(&a.ActorType, &a.ActorID, &a.TargetType, &a.TargetID, &a.RoleID, &a.Inherited); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// effectiveRoleIDs returns the ids of the roles userID has on a target,
// through direct grants, groups, inheritance and implied roles. This is what
// a token scoped to that target carries.
func (s *Service) effectiveRoleIDs(ctx context.Context, userID, targetType, targetID string) ([]string, error) {
	actor := `((actor_type='user' AND actor_id=?1) OR (actor_type='group' AND actor_id IN (SELECT group_id FROM user_groups WHERE user_id=?1)))`
	q := `SELECT DISTINCT role_id FROM assignments WHERE ` + actor + ` AND target_type=?2 AND target_id=?3 AND inherited=0`
	args := []any{userID, targetType, targetID}
	if targetType == "project" {
		// Inherited grants on the project's domain and on its ancestors.
		q += ` UNION SELECT role_id FROM assignments WHERE ` + actor + ` AND inherited=1 AND (
			(target_type='domain' AND target_id=(SELECT domain_id FROM projects WHERE id=?3)) OR
			(target_type='project' AND target_id IN (WITH RECURSIVE a(id, parent_id, depth) AS (
				SELECT id, parent_id, 0 FROM projects WHERE id=?3
				UNION ALL SELECT p.id, p.parent_id, a.depth+1 FROM projects p JOIN a ON p.id=a.parent_id WHERE a.depth < 64)
				SELECT id FROM a WHERE depth > 0)))`
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(ids) == 0 {
		return nil, err
	}
	slices.Sort(ids)
	g, err := s.impliedGraph(ctx)
	if err != nil {
		return nil, err
	}
	return expandImplied(ids, g), nil
}

// assignmentFilter is /v3/role_assignments' query.
type assignmentFilter struct {
	UserID, GroupID, RoleID string
	ProjectID, DomainID     string
	System                  bool
	InheritedOnly           bool
	Effective               bool
	IncludeSubtree          bool
}

// listAssignments answers /v3/role_assignments: the stored grants, or with
// Effective the grants each user really has (groups expanded to members,
// inherited grants to the projects they reach, roles to the roles they
// imply), filtered.
func (s *Service) listAssignments(ctx context.Context, f assignmentFilter) ([]Assignment, error) {
	all, err := s.allAssignments(ctx)
	if err != nil {
		return nil, err
	}
	if f.Effective {
		if all, err = s.expand(ctx, all); err != nil {
			return nil, err
		}
	}
	projects := map[string]bool{}
	if f.ProjectID != "" {
		projects[f.ProjectID] = true
		if f.IncludeSubtree {
			sub, err := s.subtree(ctx, f.ProjectID)
			if err != nil {
				return nil, err
			}
			for _, id := range sub {
				projects[id] = true
			}
		}
	}
	out := []Assignment{}
	for _, a := range all {
		switch {
		case f.UserID != "" && (a.ActorType != "user" || a.ActorID != f.UserID):
		case f.GroupID != "" && (a.ActorType != "group" || a.ActorID != f.GroupID):
		case f.RoleID != "" && a.RoleID != f.RoleID:
		case f.ProjectID != "" && (a.TargetType != "project" || !projects[a.TargetID]):
		case f.DomainID != "" && (a.TargetType != "domain" || a.TargetID != f.DomainID):
		case f.System && a.TargetType != "system":
		case f.InheritedOnly && !a.Inherited:
		default:
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *Service) expand(ctx context.Context, all []Assignment) ([]Assignment, error) {
	members := map[string][]string{}
	rows, err := s.db.QueryContext(ctx, `SELECT group_id, user_id FROM user_groups ORDER BY user_id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var g, u string
		if err := rows.Scan(&g, &u); err != nil {
			rows.Close()
			return nil, err
		}
		members[g] = append(members[g], u)
	}
	rows.Close()
	// Groups to their members.
	var users []Assignment
	for _, a := range all {
		if a.ActorType == "group" {
			for _, u := range members[a.ActorID] {
				b := a
				b.ActorType, b.ActorID, b.ViaGroup = "user", u, a.ActorID
				users = append(users, b)
			}
			continue
		}
		users = append(users, a)
	}
	// Inherited grants to the projects they reach.
	var placed []Assignment
	for _, a := range users {
		if !a.Inherited {
			placed = append(placed, a)
			continue
		}
		var targets []string
		switch a.TargetType {
		case "domain":
			ps, err := s.listProjects(ctx, projectFilter{DomainID: a.TargetID})
			if err != nil {
				return nil, err
			}
			for _, p := range ps {
				targets = append(targets, p.ID)
			}
		case "project":
			if targets, err = s.subtree(ctx, a.TargetID); err != nil {
				return nil, err
			}
		}
		for _, t := range targets {
			b := a
			b.TargetType, b.TargetID, b.Inherited = "project", t, false
			placed = append(placed, b)
		}
	}
	// Roles to the roles they imply.
	g, err := s.impliedGraph(ctx)
	if err != nil {
		return nil, err
	}
	type key struct{ actor, ttype, target, role string }
	seen := map[key]bool{}
	var out []Assignment
	for _, a := range placed {
		for _, r := range expandImplied([]string{a.RoleID}, g) {
			b := a
			b.RoleID = r
			if r != a.RoleID {
				b.PriorRole = a.RoleID
			}
			k := key{b.ActorID, b.TargetType, b.TargetID, b.RoleID}
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, b)
		}
	}
	return out, nil
}

// userProjects returns the ids of the enabled projects userID has any
// effective role on, for /v3/auth/projects and /v3/users/{id}/projects.
func (s *Service) userProjects(ctx context.Context, userID string) ([]string, error) {
	as, err := s.listAssignments(ctx, assignmentFilter{UserID: userID, Effective: true})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, a := range as {
		if a.TargetType == "project" && !slices.Contains(ids, a.TargetID) {
			ids = append(ids, a.TargetID)
		}
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// userDomains returns the ids of the domains userID has a role on.
func (s *Service) userDomains(ctx context.Context, userID string) ([]string, error) {
	as, err := s.listAssignments(ctx, assignmentFilter{UserID: userID, Effective: true})
	if err != nil {
		return nil, err
	}
	ids := []string{}
	for _, a := range as {
		if a.TargetType == "domain" && !slices.Contains(ids, a.TargetID) {
			ids = append(ids, a.TargetID)
		}
	}
	return ids, nil
}

var errNoRoles = errors.New("no roles on scope")
