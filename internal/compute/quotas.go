package compute

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Upstream's default quotas.
var defaultQuotas = map[string]int64{
	"instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "metadata_items": 128,
	"server_groups": 10, "server_group_members": 10,
	"injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
}

// legacy network quotas shown before 2.36 (always unlimited here).
var networkQuotas = []string{"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}

func (s *Service) defaultQuota(resource string) int64 {
	if n, ok := s.cfg.DefaultQuotas[resource]; ok {
		return n
	}
	return defaultQuotas[resource]
}

// quotaLimit is a project's limit for a resource (-1: unlimited).
func (s *Service) quotaLimit(ctx context.Context, q queryer, project, resource string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT hard_limit FROM compute_quotas WHERE project_id=? AND resource=?`, project, resource).Scan(&n)
	if err == sql.ErrNoRows {
		err = q.QueryRowContext(ctx, `SELECT hard_limit FROM compute_quotas WHERE project_id='__defaults__' AND resource=?`, resource).Scan(&n)
		if err == sql.ErrNoRows {
			return s.defaultQuota(resource), nil
		}
	}
	return n, store.Translate(err)
}

// usage counts what a project has, as Nova's counting quotas do.
type usage struct{ instances, cores, ram, serverGroups int64 }

func projectUsage(ctx context.Context, q queryer, project string) (usage, error) {
	var u usage
	err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(json_extract(flavor, '$.vcpus')), 0),
		coalesce(sum(json_extract(flavor, '$.ram')), 0) FROM compute_servers WHERE project_id=? AND deleted=0`, project).
		Scan(&u.instances, &u.cores, &u.ram)
	if err != nil {
		return u, err
	}
	err = q.QueryRowContext(ctx, `SELECT count(*) FROM compute_server_groups WHERE project_id=?`, project).Scan(&u.serverGroups)
	return u, err
}

// checkServerQuota fails with Nova's 403 when n more servers of flavor f
// would exceed the project's quota. It runs in the transaction that makes
// them, so concurrent creates cannot both pass.
func (s *Service) checkServerQuota(ctx context.Context, tx *sql.Tx, project string, f Flavor, n int64) error {
	u, err := projectUsage(ctx, tx, project)
	if err != nil {
		return err
	}
	type over struct {
		res                string
		req, used, allowed int64
	}
	var overs []over
	for _, c := range []struct {
		res       string
		req, used int64
	}{{"instances", n, u.instances}, {"cores", n * f.VCPUs, u.cores}, {"ram", n * f.RAM, u.ram}} {
		limit, err := s.quotaLimit(ctx, tx, project, c.res)
		if err != nil {
			return err
		}
		if limit >= 0 && c.used+c.req > limit {
			overs = append(overs, over{c.res, c.req, c.used, limit})
		}
	}
	if len(overs) == 0 {
		return nil
	}
	var names, reqs, useds, alloweds []string
	for _, o := range overs {
		names = append(names, o.res)
		reqs = append(reqs, fmt.Sprint(o.req))
		useds = append(useds, fmt.Sprint(o.used))
		alloweds = append(alloweds, fmt.Sprint(o.allowed))
	}
	join := func(l []string) string { return strings.Join(l, ", ") }
	return api.Forbidden("Quota exceeded for %s: Requested %s, but already used %s of %s %s",
		join(names), join(reqs), join(useds), join(alloweds), join(names))
}

func (s *Service) quotaResources(v api.Version) []string {
	res := []string{"instances", "cores", "ram", "key_pairs", "metadata_items", "server_groups", "server_group_members"}
	if !v.AtLeast(2, 57) {
		res = append(res, "injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
	}
	if !v.AtLeast(2, 36) {
		res = append(res, networkQuotas...)
	}
	sort.Strings(res)
	return res
}

func (s *Service) limitOf(ctx context.Context, project, res string) (int64, error) {
	if contains(networkQuotas, res) {
		return -1, nil
	}
	return s.quotaLimit(ctx, s.db, project, res)
}

// canSeeProject: members see their own project's quotas; admins any.
func canSeeProject(c *api.Credentials, project string) bool {
	return isAdmin(c) || c.ProjectID == project
}

func (s *Service) handleShowQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	project := r.PathValue("project")
	if !canSeeProject(c, project) {
		return api.Forbidden("Policy doesn't allow os_compute_api:os-quota-sets:show to be performed.")
	}
	detail := strings.HasSuffix(r.URL.Path, "/detail")
	defaults := strings.HasSuffix(r.URL.Path, "/defaults")
	ctx := r.Context()
	var u usage
	if detail {
		var err error
		if u, err = projectUsage(ctx, s.db, project); err != nil {
			return err
		}
	}
	var keypairs int64
	if detail {
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM compute_keypairs WHERE user_id=?`, c.UserID).Scan(&keypairs); err != nil {
			return err
		}
	}
	inUse := map[string]int64{"instances": u.instances, "cores": u.cores, "ram": u.ram, "server_groups": u.serverGroups, "key_pairs": keypairs}
	qs := map[string]any{"id": project}
	for _, res := range s.quotaResources(v) {
		var limit int64
		var err error
		if defaults {
			limit, err = s.limitOf(ctx, "__defaults__", res)
		} else {
			limit, err = s.limitOf(ctx, project, res)
		}
		if err != nil {
			return err
		}
		if detail {
			qs[res] = map[string]any{"limit": limit, "in_use": inUse[res], "reserved": 0}
		} else {
			qs[res] = limit
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": qs})
	return nil
}

func (s *Service) handleUpdateQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b struct {
		QuotaSet map[string]any `json:"quota_set"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.QuotaSet == nil {
		return api.BadRequest("Invalid input for field/attribute quota_set. 'quota_set' is a required property")
	}
	project := r.PathValue("project")
	known := s.quotaResources(v)
	set := map[string]int64{}
	for k, val := range b.QuotaSet {
		if k == "force" {
			continue
		}
		if !contains(known, k) {
			return api.BadRequest("Invalid input for field/attribute quota_set. Additional properties are not allowed ('%s' was unexpected)", k)
		}
		n, err := toInt(val)
		if err != nil || n < -1 {
			return api.BadRequest("Invalid input for field/attribute %s. Value: %v. must be an integer of at least -1", k, val)
		}
		if !contains(networkQuotas, k) {
			set[k] = n
		}
	}
	ctx := r.Context()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for k, n := range set {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_quotas(project_id, resource, hard_limit) VALUES (?, ?, ?)
				ON CONFLICT(project_id, resource) DO UPDATE SET hard_limit=excluded.hard_limit`, project, k, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	qs := map[string]any{}
	for _, res := range known {
		n, err := s.limitOf(ctx, project, res)
		if err != nil {
			return err
		}
		qs[res] = n
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": qs})
	return nil
}

func (s *Service) handleDeleteQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if _, err := s.db.ExecContext(r.Context(), `DELETE FROM compute_quotas WHERE project_id=?`, r.PathValue("project")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case interface{ Int64() (int64, error) }:
		return x.Int64()
	case string:
		var n int64
		_, err := fmt.Sscan(x, &n)
		return n, err
	}
	return 0, fmt.Errorf("not an integer")
}

func (s *Service) handleLimits(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	project := c.ProjectID
	if t := r.URL.Query().Get("tenant_id"); t != "" && isAdmin(c) {
		project = t
	}
	ctx := r.Context()
	u, err := projectUsage(ctx, s.db, project)
	if err != nil {
		return err
	}
	lim := func(res string) int64 { n, _ := s.limitOf(ctx, project, res); return n }
	abs := map[string]any{
		"maxTotalInstances": lim("instances"), "maxTotalCores": lim("cores"), "maxTotalRAMSize": lim("ram"),
		"maxServerMeta": lim("metadata_items"), "maxImageMeta": lim("metadata_items"), "maxTotalKeypairs": lim("key_pairs"),
		"maxServerGroups": lim("server_groups"), "maxServerGroupMembers": lim("server_group_members"),
		"totalInstancesUsed": u.instances, "totalCoresUsed": u.cores, "totalRAMUsed": u.ram, "totalServerGroupsUsed": u.serverGroups,
	}
	if !v.AtLeast(2, 57) {
		abs["maxPersonality"], abs["maxPersonalitySize"] = lim("injected_files"), lim("injected_file_content_bytes")
	}
	if !v.AtLeast(2, 36) {
		abs["maxSecurityGroups"], abs["maxSecurityGroupRules"], abs["maxTotalFloatingIps"] = -1, -1, -1
		abs["totalSecurityGroupsUsed"], abs["totalFloatingIpsUsed"] = 0, 0
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
