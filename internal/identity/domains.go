package identity

import (
	"context"
	"database/sql"
	"errors"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Domain is a Keystone domain: a namespace of users, groups and projects.
type Domain struct {
	ID          string
	Name        string
	Description string
	Enabled     bool
}

const domainCols = `id, name, description, enabled`

func scanDomain(row interface{ Scan(...any) error }) (Domain, error) {
	var d Domain
	err := row.Scan(&d.ID, &d.Name, &d.Description, &d.Enabled)
	return d, store.Translate(err)
}

// GetDomain returns the domain with id.
func (s *Service) GetDomain(ctx context.Context, id string) (Domain, error) {
	d, err := scanDomain(s.db.QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return d, api.NotFound("Could not find domain: %s.", id)
	}
	return d, err
}

// DomainByName returns the domain with that name (case-insensitive).
func (s *Service) DomainByName(ctx context.Context, name string) (Domain, error) {
	d, err := scanDomain(s.db.QueryRowContext(ctx, `SELECT `+domainCols+` FROM domains WHERE lower(name)=lower(?)`, name))
	if errors.Is(err, store.ErrNotFound) {
		return d, api.NotFound("Could not find domain: %s.", name)
	}
	return d, err
}

type domainFilter struct {
	ID, Name string
	Enabled  *bool
}

func (s *Service) listDomains(ctx context.Context, f domainFilter) ([]Domain, error) {
	q := `SELECT ` + domainCols + ` FROM domains WHERE 1=1`
	var args []any
	if f.ID != "" {
		q += ` AND id=?`
		args = append(args, f.ID)
	}
	if f.Name != "" {
		q += ` AND name=?`
		args = append(args, f.Name)
	}
	if f.Enabled != nil {
		q += ` AND enabled=?`
		args = append(args, *f.Enabled)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Domain{}
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CreateDomain stores a new domain; a duplicate name is a 409.
func (s *Service) CreateDomain(ctx context.Context, d Domain) (Domain, error) {
	if d.ID == "" {
		d.ID = newID()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO domains (id, name, description, enabled, created_at) VALUES (?,?,?,?,?)`,
		d.ID, d.Name, d.Description, d.Enabled, timeText(now()))
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return d, api.Conflict("Conflict occurred attempting to store domain - Duplicate entry found with name %s.", d.Name)
	}
	return d, store.Translate(err)
}

func (s *Service) updateDomain(ctx context.Context, d Domain) error {
	_, err := s.db.ExecContext(ctx, `UPDATE domains SET name=?, description=?, enabled=? WHERE id=?`,
		d.Name, d.Description, d.Enabled, d.ID)
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return api.Conflict("Conflict occurred attempting to store domain - Duplicate entry found with name %s.", d.Name)
	}
	if err == nil && !d.Enabled {
		err = s.revoke(ctx, revocationEvent{DomainID: d.ID})
	}
	s.changed()
	return store.Translate(err)
}

// deleteDomain removes a disabled domain and everything in it.
func (s *Service) deleteDomain(ctx context.Context, id string) error {
	d, err := s.GetDomain(ctx, id)
	if err != nil {
		return err
	}
	if d.Enabled {
		return api.Forbidden("Cannot delete a domain that is enabled, please disable it first.")
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		stmts := []string{
			`DELETE FROM assignments WHERE target_type='domain' AND target_id=?1`,
			`DELETE FROM assignments WHERE target_type='project' AND target_id IN (SELECT id FROM projects WHERE domain_id=?1)`,
			`DELETE FROM assignments WHERE actor_type='user' AND actor_id IN (SELECT id FROM users WHERE domain_id=?1)`,
			`DELETE FROM assignments WHERE actor_type='group' AND actor_id IN (SELECT id FROM groups WHERE domain_id=?1)`,
			`DELETE FROM users WHERE domain_id=?1`,
			`DELETE FROM groups WHERE domain_id=?1`,
			`DELETE FROM roles WHERE domain_id=?1`,
			`UPDATE users SET default_project_id=NULL WHERE default_project_id IN (SELECT id FROM projects WHERE domain_id=?1)`,
			`DELETE FROM app_credentials WHERE project_id IN (SELECT id FROM projects WHERE domain_id=?1)`,
			// Unlink the tree so projects can go in any order.
			`UPDATE projects SET parent_id=NULL WHERE domain_id=?1`,
			`DELETE FROM projects WHERE domain_id=?1`,
			`DELETE FROM domains WHERE id=?1`,
		}
		for _, q := range stmts {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.changed()
		err = s.revoke(ctx, revocationEvent{DomainID: id})
	}
	return err
}
