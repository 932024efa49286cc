package compute

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Group is a server group.
type Group struct {
	ID, Name, ProjectID, UserID, Policy string
	Rules                               map[string]any
	Members                             []string
}

var groupPolicies = []string{"affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"}

func (s *Service) loadGroup(ctx context.Context, id string) (Group, error) {
	var g Group
	var rules string
	err := store.Translate(s.db.QueryRowContext(ctx, `SELECT id, name, project_id, user_id, policy, rules FROM compute_server_groups WHERE id=?`, id).
		Scan(&g.ID, &g.Name, &g.ProjectID, &g.UserID, &g.Policy, &rules))
	if api.IsNotFound(err) {
		return g, api.NotFound("Instance group %s could not be found.", id)
	}
	if err != nil {
		return g, err
	}
	json.Unmarshal([]byte(rules), &g.Rules)
	g.Members, err = strs(ctx, s.db, `SELECT m.server_id FROM compute_server_group_members m JOIN compute_servers s ON s.id=m.server_id
		WHERE m.group_id=? AND s.deleted=0 ORDER BY s.seq`, id)
	return g, err
}

// groupHosts are the hosts of a group's other members.
func (s *Service) groupHosts(ctx context.Context, group, except string) ([]string, error) {
	return strs(ctx, s.db, `SELECT DISTINCT s.host FROM compute_server_group_members m JOIN compute_servers s ON s.id=m.server_id
		WHERE m.group_id=? AND s.id<>? AND s.deleted=0 AND s.host<>''`, group, except)
}

func (s *Service) checkGroupQuota(ctx context.Context, tx *sql.Tx, project, group string, n int) error {
	limit, err := s.quotaLimit(ctx, tx, project, "server_group_members")
	if err != nil {
		return err
	}
	var have int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_server_group_members m JOIN compute_servers s ON s.id=m.server_id
		WHERE m.group_id=? AND s.deleted=0`, group).Scan(&have); err != nil {
		return err
	}
	if limit >= 0 && have+int64(n) > limit {
		return api.Forbidden("Quota exceeded, too many servers in group")
	}
	return nil
}

func strs(ctx context.Context, q queryer, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func groupView(v api.Version, g Group) map[string]any {
	m := map[string]any{"id": g.ID, "name": g.Name, "members": g.Members, "project_id": g.ProjectID}
	if v.AtLeast(2, 13) {
		m["user_id"] = g.UserID
	}
	if v.AtLeast(2, 64) {
		m["policy"] = g.Policy
		if g.Rules == nil {
			g.Rules = map[string]any{}
		}
		m["rules"] = g.Rules
	} else {
		m["policies"] = []string{g.Policy}
		m["metadata"] = map[string]any{}
	}
	return m
}

func (s *Service) handleListGroups(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	query, args := `SELECT id FROM compute_server_groups WHERE project_id=? ORDER BY created_at, id`, []any{c.ProjectID}
	if at := r.URL.Query().Get("all_projects"); at != "" && at != "false" && at != "0" && isAdmin(c) {
		query, args = `SELECT id FROM compute_server_groups ORDER BY created_at, id`, nil
	}
	ids, err := strs(ctx, s.db, query, args...)
	if err != nil {
		return err
	}
	page, err := api.ParsePage(r, 0, 1000)
	if err != nil {
		return err
	}
	ids, err = pageOf(ids, page, func(s string) string { return s }, "server group")
	if err != nil {
		ids = nil
	}
	out := []any{}
	for _, id := range ids {
		g, err := s.loadGroup(ctx, id)
		if err != nil {
			return err
		}
		out = append(out, groupView(v, g))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"server_groups": out})
	return nil
}

func (s *Service) visibleGroup(r *http.Request) (Group, error) {
	c := api.CredentialsFrom(r.Context())
	g, err := s.loadGroup(r.Context(), r.PathValue("id"))
	if err != nil {
		return g, err
	}
	if !isAdmin(c) && g.ProjectID != c.ProjectID {
		return g, api.NotFound("Instance group %s could not be found.", g.ID)
	}
	return g, nil
}

func (s *Service) handleShowGroup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	g, err := s.visibleGroup(r)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"server_group": groupView(v, g)})
	return nil
}

func (s *Service) handleCreateGroup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b struct {
		Group *struct {
			Name     string         `json:"name"`
			Policies []string       `json:"policies"`
			Policy   string         `json:"policy"`
			Rules    map[string]any `json:"rules"`
		} `json:"server_group"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	gb := b.Group
	if gb == nil {
		return api.BadRequest("Invalid input for field/attribute server_group. 'server_group' is a required property")
	}
	if gb.Name == "" || len(gb.Name) > 255 {
		return api.BadRequest("Invalid input for field/attribute name. Value: %s.", gb.Name)
	}
	policy := gb.Policy
	if v.AtLeast(2, 64) {
		if gb.Policies != nil {
			return api.BadRequest("Invalid input for field/attribute server_group. Additional properties are not allowed ('policies' was unexpected)")
		}
	} else {
		if gb.Policy != "" || gb.Rules != nil {
			return api.BadRequest("Invalid input for field/attribute server_group. Additional properties are not allowed ('policy' was unexpected)")
		}
		if len(gb.Policies) != 1 {
			return api.BadRequest("Invalid input for field/attribute policies. Value: %v. exactly one policy is required", gb.Policies)
		}
		policy = gb.Policies[0]
	}
	if !contains(groupPolicies, policy) || (!v.AtLeast(2, 15) && policy != "affinity" && policy != "anti-affinity") {
		return api.BadRequest("Invalid input for field/attribute policy. Value: %s. '%s' is not one of %v", policy, policy, groupPolicies)
	}
	if len(gb.Rules) > 0 {
		if policy != "anti-affinity" {
			return api.BadRequest("Only anti-affinity policy supports rules.")
		}
		for k := range gb.Rules {
			if k != "max_server_per_host" {
				return api.BadRequest("Invalid input for field/attribute rules. Additional properties are not allowed ('%s' was unexpected)", k)
			}
		}
	}
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	g := Group{ID: newUUID(), Name: gb.Name, ProjectID: c.ProjectID, UserID: c.UserID, Policy: policy, Rules: gb.Rules, Members: []string{}}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		limit, err := s.quotaLimit(ctx, tx, c.ProjectID, "server_groups")
		if err != nil {
			return err
		}
		u, err := projectUsage(ctx, tx, c.ProjectID)
		if err != nil {
			return err
		}
		if limit >= 0 && u.serverGroups+1 > limit {
			return api.Forbidden("Quota exceeded, too many server groups.")
		}
		if g.Rules == nil {
			g.Rules = map[string]any{}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO compute_server_groups(id, name, project_id, user_id, policy, rules, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.Name, g.ProjectID, g.UserID, g.Policy, jsonText(g.Rules), nowText())
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"server_group": groupView(v, g)})
	return nil
}

func (s *Service) handleDeleteGroup(w http.ResponseWriter, r *http.Request, v api.Version) error {
	g, err := s.visibleGroup(r)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(r.Context(), `DELETE FROM compute_server_groups WHERE id=?`, g.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
