package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Role is a Keystone role. DomainID is empty for a global role.
type Role struct {
	ID          string
	Name        string
	DomainID    string
	Description string
	Options     map[string]any
}

const roleCols = `id, name, domain_id, description, options`

func scanRole(row interface{ Scan(...any) error }) (Role, error) {
	var r Role
	var opts string
	err := row.Scan(&r.ID, &r.Name, &r.DomainID, &r.Description, &opts)
	if err != nil {
		return r, store.Translate(err)
	}
	json.Unmarshal([]byte(opts), &r.Options)
	return r, nil
}

// GetRole returns the role with id.
func (s *Service) GetRole(ctx context.Context, id string) (Role, error) {
	r, err := scanRole(s.db.QueryRowContext(ctx, `SELECT `+roleCols+` FROM roles WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return r, api.NotFound("Could not find role: %s.", id)
	}
	return r, err
}

// RoleByName returns the global role called name.
func (s *Service) RoleByName(ctx context.Context, name string) (Role, error) {
	r, err := scanRole(s.db.QueryRowContext(ctx, `SELECT `+roleCols+` FROM roles WHERE domain_id='' AND lower(name)=lower(?)`, name))
	if errors.Is(err, store.ErrNotFound) {
		return r, api.NotFound("Could not find role: %s.", name)
	}
	return r, err
}

func (s *Service) listRoles(ctx context.Context, name, domainID string) ([]Role, error) {
	q := `SELECT ` + roleCols + ` FROM roles WHERE domain_id=?`
	args := []any{domainID}
	if name != "" {
		q += ` AND name=?`
		args = append(args, name)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Role{}
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// rolesByID returns every role keyed by id (the table is small).
func (s *Service) rolesByID(ctx context.Context) (map[string]Role, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+roleCols+` FROM roles`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Role{}
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, err
		}
		out[r.ID] = r
	}
	return out, rows.Err()
}

// CreateRole stores a new role.
func (s *Service) CreateRole(ctx context.Context, r Role) (Role, error) {
	if r.ID == "" {
		r.ID = newID()
	}
	if r.Options == nil {
		r.Options = map[string]any{}
	}
	opts, _ := json.Marshal(r.Options)
	_, err := s.db.ExecContext(ctx, `INSERT INTO roles (id, name, domain_id, description, options, created_at) VALUES (?,?,?,?,?,?)`,
		r.ID, r.Name, r.DomainID, r.Description, string(opts), timeText(now()))
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return r, api.Conflict("Conflict occurred attempting to store role - Duplicate entry found with name %s.", r.Name)
	}
	return r, store.Translate(err)
}

func (s *Service) updateRole(ctx context.Context, r Role) error {
	opts, _ := json.Marshal(r.Options)
	_, err := s.db.ExecContext(ctx, `UPDATE roles SET name=?, description=?, options=? WHERE id=?`, r.Name, r.Description, string(opts), r.ID)
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return api.Conflict("Conflict occurred attempting to store role - Duplicate entry found with name %s.", r.Name)
	}
	s.changed()
	return store.Translate(err)
}

func (s *Service) deleteRole(ctx context.Context, id string) error {
	if r, err := s.GetRole(ctx, id); err != nil {
		return err
	} else if r.Options["immutable"] == true {
		return api.Forbidden("Role %s is immutable and cannot be deleted.", id)
	}
	_, err := s.db.ExecContext(ctx, `DELETE FROM roles WHERE id=?`, id)
	s.changed()
	return store.Translate(err)
}

// impliedGraph returns prior role id → the role ids it directly implies.
func (s *Service) impliedGraph(ctx context.Context) (map[string][]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT prior_role_id, implied_role_id FROM implied_roles ORDER BY prior_role_id, implied_role_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	g := map[string][]string{}
	for rows.Next() {
		var p, i string
		if err := rows.Scan(&p, &i); err != nil {
			return nil, err
		}
		g[p] = append(g[p], i)
	}
	return g, rows.Err()
}

// expandImplied returns ids plus every role they imply, transitively, in
// first-seen order.
func expandImplied(ids []string, g map[string][]string) []string {
	seen := map[string]bool{}
	var out []string
	var walk func(string)
	walk = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		out = append(out, id)
		for _, i := range g[id] {
			walk(i)
		}
	}
	for _, id := range ids {
		walk(id)
	}
	return out
}

// addImplied records that prior implies implied, refusing cycles.
func (s *Service) addImplied(ctx context.Context, prior, implied string) error {
	if prior == implied {
		return api.BadRequest("A role cannot imply itself.")
	}
	g, err := s.impliedGraph(ctx)
	if err != nil {
		return err
	}
	for _, id := range expandImplied([]string{implied}, g) {
		if id == prior {
			return api.BadRequest("Implying role %s from %s would make a cycle.", implied, prior)
		}
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO implied_roles (prior_role_id, implied_role_id) VALUES (?,?) ON CONFLICT DO NOTHING`, prior, implied)
	s.changed()
	return store.Translate(err)
}

func roleNotFoundMsg(id string) error { return api.NotFound("Could not find role: %s.", id) }

var _ = strings.TrimSpace
