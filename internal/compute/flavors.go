package compute

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// Flavor is a server size.
type Flavor struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	VCPUs       int64             `json:"vcpus"`
	RAM         int64             `json:"ram"`  // MiB
	Disk        int64             `json:"disk"` // GiB
	Ephemeral   int64             `json:"ephemeral"`
	Swap        int64             `json:"swap"` // MiB
	RxTxFactor  float64           `json:"rxtx_factor"`
	IsPublic    bool              `json:"is_public"`
	Disabled    bool              `json:"disabled"`
	Description *string           `json:"description"`
	ExtraSpecs  map[string]string `json:"extra_specs"`
}

// devstackFlavors are the flavors DevStack makes (lib/nova create_flavors
// and lib/tempest's m1.nano and m1.micro).
var devstackFlavors = []Flavor{
	{ID: "1", Name: "m1.tiny", RAM: 512, Disk: 1, VCPUs: 1},
	{ID: "2", Name: "m1.small", RAM: 2048, Disk: 20, VCPUs: 1},
	{ID: "3", Name: "m1.medium", RAM: 4096, Disk: 40, VCPUs: 2},
	{ID: "4", Name: "m1.large", RAM: 8192, Disk: 80, VCPUs: 4},
	{ID: "5", Name: "m1.xlarge", RAM: 16384, Disk: 160, VCPUs: 8},
	{ID: "42", Name: "m1.nano", RAM: 128, Disk: 1, VCPUs: 1, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
	{ID: "84", Name: "m1.micro", RAM: 192, Disk: 1, VCPUs: 1, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
	{ID: "c1", Name: "cirros256", RAM: 256, Disk: 1, VCPUs: 1, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
	{ID: "d1", Name: "ds512M", RAM: 512, Disk: 5, VCPUs: 1, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
	{ID: "d2", Name: "ds1G", RAM: 1024, Disk: 10, VCPUs: 1, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
	{ID: "d3", Name: "ds2G", RAM: 2048, Disk: 10, VCPUs: 2, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
	{ID: "d4", Name: "ds4G", RAM: 4096, Disk: 20, VCPUs: 4, ExtraSpecs: map[string]string{"hw_rng:allowed": "True"}},
}

// EnsureFlavors makes whichever of DevStack's flavors are missing (by id
// or name); flavors an admin changed or deleted on purpose are not
// brought back once the set was seeded.
func (s *Service) EnsureFlavors(ctx context.Context) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		var seeded int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_quotas WHERE project_id='' AND resource='flavors_seeded'`).Scan(&seeded); err != nil {
			return err
		}
		if seeded > 0 {
			return nil
		}
		for _, f := range devstackFlavors {
			f.RxTxFactor, f.IsPublic = 1.0, true
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO compute_flavors(id, name, vcpus, ram, disk, ephemeral, swap, rxtx_factor, is_public, created_at)
				VALUES (?, ?, ?, ?, ?, 0, 0, 1.0, 1, ?)`, f.ID, f.Name, f.VCPUs, f.RAM, f.Disk, nowText()); err != nil {
				return err
			}
			for k, v := range f.ExtraSpecs {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO compute_flavor_extra_specs(flavor_id, key, value) VALUES (?, ?, ?)`, f.ID, k, v); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO compute_quotas(project_id, resource, hard_limit) VALUES ('', 'flavors_seeded', 1)`)
		return err
	})
}

const flavorCols = `id, name, vcpus, ram, disk, ephemeral, swap, rxtx_factor, is_public, disabled, description`

func scanFlavor(row interface{ Scan(...any) error }) (Flavor, error) {
	var f Flavor
	var desc sql.NullString
	err := row.Scan(&f.ID, &f.Name, &f.VCPUs, &f.RAM, &f.Disk, &f.Ephemeral, &f.Swap, &f.RxTxFactor, &f.IsPublic, &f.Disabled, &desc)
	if desc.Valid {
		f.Description = &desc.String
	}
	return f, store.Translate(err)
}

func (s *Service) extraSpecs(ctx context.Context, q queryer, id string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM compute_flavor_extra_specs WHERE flavor_id=?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// flavorVisible reports whether a caller may see (and boot) a flavor.
func (s *Service) flavorVisible(ctx context.Context, c *api.Credentials, f Flavor) (bool, error) {
	if f.IsPublic || isAdmin(c) {
		return true, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM compute_flavor_access WHERE flavor_id=? AND project_id=?`, f.ID, c.ProjectID).Scan(&n)
	return n > 0, err
}

// getFlavor returns a flavor the caller may see, with its extra specs.
func (s *Service) getFlavor(ctx context.Context, c *api.Credentials, id string) (Flavor, error) {
	f, err := scanFlavor(s.db.QueryRowContext(ctx, `SELECT `+flavorCols+` FROM compute_flavors WHERE id=?`, id))
	if api.IsNotFound(err) {
		return f, api.NotFound("Flavor %s could not be found.", id)
	}
	if err != nil {
		return f, err
	}
	if ok, err := s.flavorVisible(ctx, c, f); err != nil {
		return f, err
	} else if !ok {
		return f, api.NotFound("Flavor %s could not be found.", id)
	}
	f.ExtraSpecs, err = s.extraSpecs(ctx, s.db, id)
	return f, err
}

func isAdmin(c *api.Credentials) bool { return c != nil && c.CloudAdmin() }

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
