package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"sort"

	"github.com/monostack/monostack/internal/api"
)

// defaultQuotas are upstream's per-project defaults.
var defaultQuotas = map[string]int{
	"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
	"security_group": 10, "security_group_rule": 100,
}

// quotaTables maps a quota resource to the table counted for it.
var quotaTables = map[string]string{
	"network": "networks", "subnet": "subnets", "port": "ports", "router": "routers", "floatingip": "floatingips",
	"security_group": "security_groups", "security_group_rule": "security_group_rules",
}

func (s *Service) defaultLimit(resource string) int {
	if v, ok := s.cfg.Quotas[resource]; ok {
		return v
	}
	return defaultQuotas[resource]
}

// limits returns a project's limits, defaults filled in.
func (s *Service) limits(ctx context.Context, q queryer, project string) (map[string]int, error) {
	out := map[string]int{}
	for k := range defaultQuotas {
		out[k] = s.defaultLimit(k)
	}
	rows, err := q.QueryContext(ctx, `SELECT resource, hard_limit FROM quotas WHERE project_id=?`, project)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r string
		var v int
		if err := rows.Scan(&r, &v); err != nil {
			return nil, err
		}
		if _, ok := out[r]; ok {
			out[r] = v
		}
	}
	return out, rows.Err()
}

func usage(ctx context.Context, q queryer, project, resource string) (int, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM `+quotaTables[resource]+` WHERE project_id=?`, project).Scan(&n)
	return n, err
}

// checkQuota refuses to take a project over its limit of a resource.
func (s *Service) checkQuota(ctx context.Context, q queryer, project, resource string, more int) error {
	if project == "" {
		return nil
	}
	lim, err := s.limits(ctx, q, project)
	if err != nil {
		return err
	}
	l := lim[resource]
	if l < 0 {
		return nil
	}
	used, err := usage(ctx, q, project, resource)
	if err != nil {
		return err
	}
	if used+more > l {
		return overQuota(resource)
	}
	return nil
}

func quotaBody(lim map[string]int) map[string]any {
	out := map[string]any{}
	for k, v := range lim {
		out[k] = v
	}
	return out
}

func (s *Service) handleQuotas(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_quota")
	if err != nil {
		return err
	}
	if !c.admin {
		return policyDenied("get_quota")
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT DISTINCT project_id FROM quotas ORDER BY project_id`)
	if err != nil {
		return err
	}
	var projects []string
	for rows.Next() {
		var p string
		rows.Scan(&p)
		projects = append(projects, p)
	}
	rows.Close()
	out := []map[string]any{}
	for _, p := range projects {
		lim, err := s.limits(r.Context(), s.db, p)
		if err != nil {
			return err
		}
		m := quotaBody(lim)
		m["project_id"], m["tenant_id"] = p, p
		out = append(out, m)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quotas": out})
	return nil
}

func (s *Service) handleQuotaProject(key string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := callerOf(r, "get_quota")
		if err != nil {
			return err
		}
		if c.project == "" {
			return nerr(http.StatusBadRequest, "QuotaMissingTenant", "Tenant-id was missing from quota request.")
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{key: map[string]any{key + "_id": c.project}})
		return nil
	}
}

func (s *Service) handleShowQuota(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_quota")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if id != c.project && !c.admin {
		return policyDenied("get_quota")
	}
	lim, err := s.limits(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quota": quotaBody(lim)})
	return nil
}

func (s *Service) handleDefaultQuota(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_quota")
	if err != nil {
		return err
	}
	if r.PathValue("id") != c.project && !c.admin {
		return policyDenied("get_quota")
	}
	out := map[string]any{}
	for k := range defaultQuotas {
		out[k] = s.defaultLimit(k)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quota": out})
	return nil
}

func (s *Service) handleQuotaDetails(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "get_quota")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if id != c.project && !c.admin {
		return policyDenied("get_quota")
	}
	ctx := r.Context()
	lim, err := s.limits(ctx, s.db, id)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for k, l := range lim {
		used, err := usage(ctx, s.db, id, k)
		if err != nil {
			return err
		}
		out[k] = map[string]any{"limit": l, "used": used, "reserved": 0}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quota": out})
	return nil
}

func (s *Service) handleUpdateQuota(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "update_quota")
	if err != nil {
		return err
	}
	if !c.admin {
		return policyDenied("update_quota")
	}
	b, err := api.ReadBody(r, api.MaxBody)
	if err != nil {
		return err
	}
	var body map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &body); err != nil || body["quota"] == nil {
		return badRequest("Unable to find 'quota' in request body")
	}
	id, ctx := r.PathValue("id"), r.Context()
	force := false
	if raw, ok := body["quota"]["force"]; ok {
		if force, err = toBool(raw); err != nil {
			return err
		}
		delete(body["quota"], "force")
	}
	delete(body["quota"], "check_limit")
	var unknown []string
	set := map[string]int{}
	for k, raw := range body["quota"] {
		if _, ok := defaultQuotas[k]; !ok {
			unknown = append(unknown, k)
			continue
		}
		n, err := toInt(raw)
		if err != nil {
			return invalidInput("'%s' is not an integer", shown(raw))
		}
		if n < -1 {
			return invalidAttr(k, "'%d' is too small - must be at least '-1'", n)
		}
		set[k] = n
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return badRequest("Unrecognized attribute(s) '%s'", joinComma(unknown))
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		for k, n := range set {
			if !force && n >= 0 {
				used, err := usage(ctx, tx, id, k)
				if err != nil {
					return err
				}
				if used > n {
					return badRequest("Quota limit %d for %s must be greater than or equal to already used %d", n, k, used)
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO quotas (project_id, resource, hard_limit) VALUES (?,?,?)
				ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit=excluded.hard_limit`, id, k, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	lim, err := s.limits(ctx, s.db, id)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quota": quotaBody(lim)})
	return nil
}

func (s *Service) handleDeleteQuota(w http.ResponseWriter, r *http.Request) error {
	c, err := callerOf(r, "delete_quota")
	if err != nil {
		return err
	}
	if !c.admin {
		return policyDenied("delete_quota")
	}
	ctx, id := r.Context(), r.PathValue("id")
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM quotas WHERE project_id=?`, id)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += s
	}
	return out
}
