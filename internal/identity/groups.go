package identity

import (
	"context"
	"database/sql"
	"errors"
	"net/http"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Group is a Keystone group: users who receive roles together.
type Group struct {
	ID          string
	Name        string
	DomainID    string
	Description string
}

const groupCols = `id, name, domain_id, description`

func scanGroup(row interface{ Scan(...any) error }) (Group, error) {
	var g Group
	return g, store.Translate(row.Scan(&g.ID, &g.Name, &g.DomainID, &g.Description))
}

// GetGroup returns the group with id.
func (s *Service) GetGroup(ctx context.Context, id string) (Group, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, `SELECT `+groupCols+` FROM groups WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return g, api.NotFound("Could not find group: %s.", id)
	}
	return g, err
}

type groupFilter struct{ DomainID, Name, UserID string }

func (s *Service) listGroups(ctx context.Context, f groupFilter) ([]Group, error) {
	q := `SELECT ` + groupCols + ` FROM groups WHERE 1=1`
	var args []any
	if f.DomainID != "" {
		q += ` AND domain_id=?`
		args = append(args, f.DomainID)
	}
	if f.Name != "" {
		q += ` AND name=?`
		args = append(args, f.Name)
	}
	if f.UserID != "" {
		q += ` AND id IN (SELECT group_id FROM user_groups WHERE user_id=?)`
		args = append(args, f.UserID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

func groupConflict(name string) error {
	return api.Conflict("Conflict occurred attempting to store group - Duplicate entry found with name %s.", name)
}

func groupJSON(r *http.Request, g Group) map[string]any {
	return map[string]any{"id": g.ID, "name": g.Name, "domain_id": g.DomainID, "description": g.Description,
		"links": selfLink(r, "groups/"+g.ID)}
}

func (s *Service) handleListGroups(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	f := groupFilter{DomainID: r.URL.Query().Get("domain_id"), Name: r.URL.Query().Get("name")}
	if d := listDomainFilter(c); d != "" {
		if f.DomainID != "" && f.DomainID != d {
			return forbidden()
		}
		f.DomainID = d
	}
	gs, err := s.listGroups(r.Context(), f)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, groupJSON(r, g))
	}
	return ok(w, map[string]any{"groups": out, "links": listLinks(r)})
}

func (s *Service) handleGetGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainReader(api.CredentialsFrom(r.Context()), g.DomainID) {
		return forbidden()
	}
	return ok(w, map[string]any{"group": groupJSON(r, g)})
}

func (s *Service) handleCreateGroup(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	e, err := decodeEntity(r, "group")
	if err != nil {
		return err
	}
	g := Group{ID: newID()}
	if err := e.name("name", &g.Name, true); err != nil {
		return err
	}
	if _, err := e.str("description", &g.Description); err != nil {
		return err
	}
	if _, err := e.str("domain_id", &g.DomainID); err != nil {
		return err
	}
	if g.DomainID == "" {
		g.DomainID = "default"
		if c.DomainID != "" {
			g.DomainID = c.DomainID
		} else if c.ProjectDomainID != "" {
			g.DomainID = c.ProjectDomainID
		}
	}
	if _, err := s.GetDomain(r.Context(), g.DomainID); err != nil {
		return api.BadRequest("Could not find domain: %s.", g.DomainID)
	}
	if !domainAdmin(c, g.DomainID) {
		return forbidden()
	}
	_, err = s.db.ExecContext(r.Context(), `INSERT INTO groups (id, name, domain_id, description, created_at) VALUES (?,?,?,?,?)`,
		g.ID, g.Name, g.DomainID, g.Description, timeText(now()))
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return groupConflict(g.Name)
	}
	if err != nil {
		return err
	}
	return created(w, map[string]any{"group": groupJSON(r, g)})
}

func (s *Service) handleUpdateGroup(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "group")
	if err != nil {
		return err
	}
	g, err := s.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainAdmin(api.CredentialsFrom(r.Context()), g.DomainID) {
		return forbidden()
	}
	if raw, ok := e["domain_id"]; ok && string(raw) != `"`+g.DomainID+`"` {
		return api.BadRequest("Invalid input for field 'domain_id': a group cannot move to another domain.")
	}
	if err := e.name("name", &g.Name, false); err != nil {
		return err
	}
	if _, err := e.str("description", &g.Description); err != nil {
		return err
	}
	_, err = s.db.ExecContext(r.Context(), `UPDATE groups SET name=?, description=? WHERE id=?`, g.Name, g.Description, g.ID)
	if errors.Is(store.Translate(err), store.ErrConflict) {
		return groupConflict(g.Name)
	}
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"group": groupJSON(r, g)})
}

func (s *Service) handleDeleteGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := s.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainAdmin(api.CredentialsFrom(r.Context()), g.DomainID) {
		return forbidden()
	}
	err = s.db.Tx(r.Context(), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(r.Context(), `DELETE FROM assignments WHERE actor_type='group' AND actor_id=?`, g.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(r.Context(), `DELETE FROM groups WHERE id=?`, g.ID)
		return err
	})
	if err != nil {
		return err
	}
	s.changed()
	return noContent(w)
}

func (s *Service) handleGroupUsers(w http.ResponseWriter, r *http.Request) error {
	g, err := s.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if !domainReader(api.CredentialsFrom(r.Context()), g.DomainID) {
		return forbidden()
	}
	us, err := s.listUsers(r.Context(), userFilter{GroupID: g.ID, Name: r.URL.Query().Get("name")})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(us))
	for _, u := range us {
		out = append(out, userJSON(r, u))
	}
	return ok(w, map[string]any{"users": out, "links": listLinks(r)})
}

// handleMembership adds (PUT), checks (HEAD/GET) or removes (DELETE) a user
// in a group.
func (s *Service) handleMembership(w http.ResponseWriter, r *http.Request) error {
	c := api.CredentialsFrom(r.Context())
	g, err := s.GetGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	u, err := s.GetUser(r.Context(), r.PathValue("user_id"))
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !domainReader(c, g.DomainID) && c.UserID != u.ID {
			return forbidden()
		}
		var n int
		if err := s.db.QueryRowContext(r.Context(), `SELECT count(*) FROM user_groups WHERE user_id=? AND group_id=?`, u.ID, g.ID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return api.NotFound("User '%s' not found in group '%s'.", u.ID, g.ID)
		}
		return noContent(w)
	case http.MethodPut:
		// Both the group and the user must be the caller's to administer.
		if !domainAdmin(c, g.DomainID) || !domainAdmin(c, u.DomainID) {
			return forbidden()
		}
		_, err = s.db.ExecContext(r.Context(), `INSERT INTO user_groups (user_id, group_id) VALUES (?,?) ON CONFLICT DO NOTHING`, u.ID, g.ID)
	default:
		if !domainAdmin(c, g.DomainID) {
			return forbidden()
		}
		var res sql.Result
		if res, err = s.db.ExecContext(r.Context(), `DELETE FROM user_groups WHERE user_id=? AND group_id=?`, u.ID, g.ID); err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				return api.NotFound("User '%s' not found in group '%s'.", u.ID, g.ID)
			}
		}
	}
	if err != nil {
		return err
	}
	s.changed()
	return noContent(w)
}
