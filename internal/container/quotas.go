package container

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Upstream's default quotas: containers, cpu (cores), memory (MiB), disk
// (GiB).
var defaultQuotas = map[string]int64{"containers": 40, "cpu": 20, "memory": 51200, "disk": 100}

var quotaNames = []string{"containers", "cpu", "disk", "memory"}

const defaultClass = "__class_default__"

func (s *Service) quotaLimit(ctx context.Context, q queryer, project, res string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT hard_limit FROM container_quotas WHERE project_id=? AND resource=?`, project, res).Scan(&n)
	if err == sql.ErrNoRows {
		err = q.QueryRowContext(ctx, `SELECT hard_limit FROM container_quotas WHERE project_id=? AND resource=?`, defaultClass, res).Scan(&n)
		if err == sql.ErrNoRows {
			if d, ok := s.cfg.DefaultQuotas[res]; ok {
				return d, nil
			}
			return defaultQuotas[res], nil
		}
	}
	return n, store.Translate(err)
}

// usage is what a project's containers hold, leaving out exclude.
func usage(ctx context.Context, q queryer, project string, exclude ...string) (map[string]float64, error) {
	args := []any{project}
	cond := ""
	for _, e := range exclude {
		cond += " AND uuid<>?"
		args = append(args, e)
	}
	var n, cpu, mem, disk float64
	err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(cpu), 0), coalesce(sum(memory), 0), coalesce(sum(disk), 0)
		FROM container_containers WHERE project_id=?`+cond, args...).Scan(&n, &cpu, &mem, &disk)
	return map[string]float64{"containers": n, "cpu": cpu, "memory": mem, "disk": disk}, err
}

// checkQuota fails with Zun's 403 when the project would hold more than
// its limits with ct (another container's old values left out by
// exclude).
func (s *Service) checkQuota(ctx context.Context, q queryer, project string, ct Container, exclude ...string) error {
	want := map[string]float64{"containers": 1, "cpu": ct.CPU, "memory": float64(ct.Memory), "disk": float64(ct.Disk)}
	return s.checkQuotaFor(ctx, q, project, want, exclude...)
}

// checkQuotaFor is checkQuota for what several containers want together
// (a capsule's).
func (s *Service) checkQuotaFor(ctx context.Context, q queryer, project string, want map[string]float64, exclude ...string) error {
	u, err := usage(ctx, q, project, exclude...)
	if err != nil {
		return err
	}
	var over []string
	for _, res := range quotaNames {
		limit, err := s.quotaLimit(ctx, q, project, res)
		if err != nil {
			return err
		}
		if limit >= 0 && want[res] > 0 && u[res]+want[res] > float64(limit)+1e-9 {
			over = append(over, "'"+res+"'")
		}
	}
	if len(over) > 0 {
		sort.Strings(over)
		return api.Forbidden("Quota exceeded for resources: [%s]", strings.Join(over, ", ")).WithType("over-quota")
	}
	return nil
}

func (s *Service) handleShowQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ctx := r.Context()
	c := api.CredentialsFrom(ctx)
	project := r.PathValue("project")
	if project != c.ProjectID && !c.CloudAdmin() {
		return api.Forbidden("Policy doesn't allow quota:get to be performed.").WithType("policy-not-authorized")
	}
	if strings.HasSuffix(r.URL.Path, "/defaults") {
		project = defaultClass
	}
	usages := r.URL.Query().Get("usages") != ""
	u, err := usage(ctx, s.db, project)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, res := range quotaNames {
		limit, err := s.quotaLimit(ctx, s.db, project, res)
		if err != nil {
			return err
		}
		if usages {
			inUse := any(int64(math.Round(u[res])))
			if res == "cpu" {
				inUse = u[res]
			}
			out[res] = map[string]any{"limit": limit, "in_use": inUse}
		} else {
			out[res] = limit
		}
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) handleUpdateQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b map[string]any
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	project := r.PathValue("project")
	if project == "" {
		project = defaultClass // quota_classes/default
	}
	set := map[string]int64{}
	for k, val := range b {
		if !contains(quotaNames, k) {
			return schemaError("Additional properties are not allowed ('%s' was unexpected)", k)
		}
		n, err := integerSigned(k, val)
		if err != nil || n < -1 {
			return schemaError("Invalid input for field '%s'.Value: '%v'. It must be an integer of at least -1.", k, val)
		}
		set[k] = n
	}
	ctx := r.Context()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for k, n := range set {
			if _, err := tx.ExecContext(ctx, `INSERT INTO container_quotas(project_id, resource, hard_limit) VALUES (?, ?, ?)
				ON CONFLICT(project_id, resource) DO UPDATE SET hard_limit=excluded.hard_limit`, project, k, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, res := range quotaNames {
		n, err := s.quotaLimit(ctx, s.db, project, res)
		if err != nil {
			return err
		}
		out[res] = n
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) handleDeleteQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if _, err := s.db.ExecContext(r.Context(), `DELETE FROM container_quotas WHERE project_id=?`, r.PathValue("project")); err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, nil)
	return nil
}

func (s *Service) handleShowQuotaClass(w http.ResponseWriter, r *http.Request, v api.Version) error {
	out := map[string]any{}
	for _, res := range quotaNames {
		n, err := s.quotaLimit(r.Context(), s.db, defaultClass, res)
		if err != nil {
			return err
		}
		out[res] = n
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func integerSigned(field string, v any) (int64, error) {
	if s, ok := v.(string); ok && strings.HasPrefix(s, "-") {
		n, err := integer(field, s[1:])
		return -n, err
	}
	if f, ok := v.(float64); ok && f < 0 && f == float64(int64(f)) {
		return int64(f), nil
	}
	n, err := integer(field, v)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	return n, nil
}
