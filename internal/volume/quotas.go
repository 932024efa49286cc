package volume

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Upstream's default quotas. Per-type quotas (volumes_<type>,
// gigabytes_<type>, snapshots_<type>) default to unlimited.
var defaultQuotas = map[string]int64{
	"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10, "backup_gigabytes": 1000,
	"groups": 10, "per_volume_gigabytes": -1,
}

var quotaNames = []string{"backup_gigabytes", "backups", "gigabytes", "groups", "per_volume_gigabytes", "snapshots", "volumes"}

const defaultsProject = "__defaults__"

func (s *Service) defaultQuota(resource string) int64 {
	if n, ok := s.cfg.DefaultQuotas[resource]; ok {
		return n
	}
	if n, ok := defaultQuotas[resource]; ok {
		return n
	}
	return -1
}

// quotaLimit is a project's limit for a resource (-1: unlimited).
func (s *Service) quotaLimit(ctx context.Context, q queryer, project, resource string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT hard_limit FROM volume_quotas WHERE project_id=? AND resource=?`, project, resource).Scan(&n)
	if err == sql.ErrNoRows {
		err = q.QueryRowContext(ctx, `SELECT hard_limit FROM volume_quotas WHERE project_id=? AND resource=?`, defaultsProject, resource).Scan(&n)
		if err == sql.ErrNoRows {
			return s.defaultQuota(resource), nil
		}
	}
	return n, store.Translate(err)
}

// usage counts what a project holds, by quota resource (per type too).
func (s *Service) usage(ctx context.Context, q queryer, project string) (map[string]int64, error) {
	u := map[string]int64{}
	rows, err := q.QueryContext(ctx, `SELECT t.name, count(*), coalesce(sum(v.size), 0) FROM volume_volumes v
		JOIN volume_types t ON t.id=v.type_id WHERE v.project_id=? GROUP BY t.name`, project)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name string
		var n, gb int64
		rows.Scan(&name, &n, &gb)
		u["volumes"] += n
		u["gigabytes"] += gb
		u["volumes_"+name] += n
		u["gigabytes_"+name] += gb
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT coalesce(t.name, ''), count(*), coalesce(sum(s.size), 0) FROM volume_snapshots s
		LEFT JOIN volume_volumes v ON v.id=s.volume_id LEFT JOIN volume_types t ON t.id=v.type_id WHERE s.project_id=? GROUP BY t.name`, project)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name string
		var n, gb int64
		rows.Scan(&name, &n, &gb)
		u["snapshots"] += n
		u["gigabytes"] += gb
		if name != "" {
			u["snapshots_"+name] += n
			u["gigabytes_"+name] += gb
		}
	}
	rows.Close()
	var n, gb int64
	if err := q.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size), 0) FROM volume_backups WHERE project_id=?`, project).Scan(&n, &gb); err != nil {
		return nil, err
	}
	u["backups"], u["backup_gigabytes"] = n, gb
	return u, nil
}

// checkQuota fails with Cinder's 413 when adding deltas (by resource name
// without type: volumes, gigabytes, snapshots, backups, backup_gigabytes)
// to the project's usage goes over a limit, its per-type limit included;
// size is checked against per_volume_gigabytes. Call it in the
// transaction that records the new resource.
func (s *Service) checkQuota(ctx context.Context, tx queryer, project, typeName string, deltas map[string]int64, size int64) error {
	if size > 0 {
		limit, err := s.quotaLimit(ctx, tx, project, "per_volume_gigabytes")
		if err != nil {
			return err
		}
		if limit >= 0 && size > limit {
			// Cinder's VolumeSizeExceedsLimit is a QuotaError: a 413.
			e := api.Errorf(http.StatusRequestEntityTooLarge, "VolumeSizeExceedsLimit: Requested volume size %dG is larger than maximum allowed limit %dG.", size, limit)
			e.Header = http.Header{"Retry-After": {"0"}}
			return e
		}
	}
	u, err := s.usage(ctx, tx, project)
	if err != nil {
		return err
	}
	for _, res := range []string{"volumes", "snapshots", "backups", "gigabytes", "backup_gigabytes"} {
		d, ok := deltas[res]
		if !ok || d <= 0 {
			continue
		}
		names := []string{res}
		if typeName != "" && (res == "volumes" || res == "gigabytes" || res == "snapshots") {
			names = append(names, res+"_"+typeName)
		}
		for _, name := range names {
			limit, err := s.quotaLimit(ctx, tx, project, name)
			if err != nil {
				return err
			}
			if limit < 0 || u[name]+d <= limit {
				continue
			}
			var e *api.Error
			switch res {
			case "gigabytes", "backup_gigabytes":
				what := "volume or snapshot"
				if res == "backup_gigabytes" {
					what = "backup"
				}
				e = api.Errorf(http.StatusRequestEntityTooLarge, "VolumeSizeExceedsAvailableQuota: Requested %s exceeds allowed %s quota. Requested %dG, quota is %dG and %dG has been consumed.",
					what, name, d, limit, u[name])
			default:
				switch res {
				case "volumes":
					e = api.Errorf(http.StatusRequestEntityTooLarge, "VolumeLimitExceeded: Maximum number of volumes allowed (%d) exceeded for quota '%s'.", limit, name)
				case "snapshots":
					e = api.Errorf(http.StatusRequestEntityTooLarge, "SnapshotLimitExceeded: Maximum number of snapshots allowed (%d) exceeded", limit)
				default:
					e = api.Errorf(http.StatusRequestEntityTooLarge, "BackupLimitExceeded: Maximum number of backups allowed (%d) exceeded", limit)
				}
			}
			e.Header = http.Header{"Retry-After": {"0"}}
			return e
		}
	}
	return nil
}

// quotaResources are the resources shown in a quota set: the global ones
// and the per-type ones of every type.
func (s *Service) quotaResources(ctx context.Context) ([]string, error) {
	res := append([]string{}, quotaNames...)
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM volume_types ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		rows.Scan(&n)
		res = append(res, "volumes_"+n, "gigabytes_"+n, "snapshots_"+n)
	}
	return res, rows.Err()
}

func (s *Service) handleShowQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	project := r.PathValue("target")
	if !c.CloudAdmin() && c.ProjectID != project {
		return api.Forbidden("Policy doesn't allow volume_extension:quotas:show to be performed.")
	}
	ctx := r.Context()
	defaults := strings.HasSuffix(r.URL.Path, "/defaults")
	detail := r.URL.Query().Get("usage") == "true" || r.URL.Query().Get("usage") == "True"
	var u map[string]int64
	if detail {
		var err error
		if u, err = s.usage(ctx, s.db, project); err != nil {
			return err
		}
	}
	res, err := s.quotaResources(ctx)
	if err != nil {
		return err
	}
	qs := map[string]any{"id": project}
	for _, name := range res {
		var limit int64
		if defaults {
			limit, err = s.quotaLimit(ctx, s.db, defaultsProject, name)
		} else {
			limit, err = s.quotaLimit(ctx, s.db, project, name)
		}
		if err != nil {
			return err
		}
		if detail {
			qs[name] = map[string]any{"limit": limit, "in_use": u[name], "reserved": 0, "allocated": 0}
		} else {
			qs[name] = limit
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
		return api.BadRequest("Missing required element 'quota_set' in request body.")
	}
	ctx := r.Context()
	project := r.PathValue("target")
	known, err := s.quotaResources(ctx)
	if err != nil {
		return err
	}
	set := map[string]int64{}
	for k, val := range b.QuotaSet {
		if k == "tenant_id" || k == "id" {
			continue
		}
		if !contains(known, k) {
			return api.BadRequest("Invalid input received: Bad key(s) in quota set: %s", k)
		}
		n, err := toInt(val)
		if err != nil || n < -1 {
			return api.BadRequest("Invalid input received: Quota %s must be an integer greater than or equal to -1, not %v.", k, val)
		}
		set[k] = n
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		for k, n := range set {
			if _, err := tx.ExecContext(ctx, `INSERT INTO volume_quotas(project_id, resource, hard_limit) VALUES (?, ?, ?)
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
	for _, name := range known {
		n, err := s.quotaLimit(ctx, s.db, project, name)
		if err != nil {
			return err
		}
		qs[name] = n
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"quota_set": qs})
	return nil
}

func (s *Service) handleDeleteQuotas(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if _, err := s.db.ExecContext(r.Context(), `DELETE FROM volume_quotas WHERE project_id=?`, r.PathValue("target")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// handleLimits is GET /limits: the project's absolute limits and usage.
func (s *Service) handleLimits(w http.ResponseWriter, r *http.Request, v api.Version) error {
	c := api.CredentialsFrom(r.Context())
	ctx := r.Context()
	project := c.ProjectID
	if p := r.URL.Query().Get("project_id"); p != "" && c.CloudAdmin() {
		project = p
	}
	u, err := s.usage(ctx, s.db, project)
	if err != nil {
		return err
	}
	lim := func(name string) int64 { n, _ := s.quotaLimit(ctx, s.db, project, name); return n }
	abs := map[string]any{
		"maxTotalVolumes": lim("volumes"), "maxTotalSnapshots": lim("snapshots"), "maxTotalVolumeGigabytes": lim("gigabytes"),
		"maxTotalBackups": lim("backups"), "maxTotalBackupGigabytes": lim("backup_gigabytes"),
		"totalVolumesUsed": u["volumes"], "totalSnapshotsUsed": u["snapshots"], "totalGigabytesUsed": u["gigabytes"],
		"totalBackupsUsed": u["backups"], "totalBackupGigabytesUsed": u["backup_gigabytes"],
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": abs}})
	return nil
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("not an integer")
		}
		return int64(x), nil
	case interface{ Int64() (int64, error) }:
		return x.Int64()
	case string:
		// Not fmt.Sscan: it takes "1.5" as 1 and "0x10" as 16.
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	}
	return 0, fmt.Errorf("not an integer")
}
