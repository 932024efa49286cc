package identity

import (
	"context"
	"database/sql"
	"strings"
	"sync"

	"github.com/monostack/monostack/internal/store"
)

// CatalogService is one entry of the service catalog, with its endpoints,
// shaped for token bodies and /v3/auth/catalog.
type CatalogService struct {
	ID        string            `json:"id"`
	Type      string            `json:"type"`
	Name      string            `json:"name"`
	Endpoints []CatalogEndpoint `json:"endpoints"`
}

// CatalogEndpoint is one endpoint of a catalog entry.
type CatalogEndpoint struct {
	ID        string  `json:"id"`
	Interface string  `json:"interface"`
	Region    *string `json:"region"`
	RegionID  *string `json:"region_id"`
	URL       string  `json:"url"`
}

// catalogCache holds the catalog built at one generation.
type catalogCache struct {
	mu   sync.Mutex
	gen  uint64
	list []CatalogService
}

// catalog returns the enabled services and their enabled endpoints.
func (s *Service) catalog(ctx context.Context) ([]CatalogService, error) {
	gen := s.gen.Load()
	s.catalogC.mu.Lock()
	if s.catalogC.list != nil && s.catalogC.gen == gen {
		l := s.catalogC.list
		s.catalogC.mu.Unlock()
		return l, nil
	}
	s.catalogC.mu.Unlock()
	rows, err := s.db.QueryContext(ctx, `SELECT s.id, s.type, s.name, coalesce(e.id, ''), coalesce(e.interface, ''),
		coalesce(e.region_id, ''), coalesce(e.url, '')
		FROM services s LEFT JOIN endpoints e ON e.service_id=s.id AND e.enabled=1
		WHERE s.enabled=1 ORDER BY s.type, s.id, e.interface, e.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	list := []CatalogService{}
	for rows.Next() {
		var svc CatalogService
		var ep CatalogEndpoint
		var region string
		if err := rows.Scan(&svc.ID, &svc.Type, &svc.Name, &ep.ID, &ep.Interface, &region, &ep.URL); err != nil {
			return nil, err
		}
		if len(list) == 0 || list[len(list)-1].ID != svc.ID {
			svc.Endpoints = []CatalogEndpoint{}
			list = append(list, svc)
		}
		if ep.ID != "" {
			if region != "" {
				ep.Region, ep.RegionID = &region, &region
			}
			last := &list[len(list)-1]
			last.Endpoints = append(last.Endpoints, ep)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.catalogC.mu.Lock()
	s.catalogC.gen, s.catalogC.list = gen, list
	s.catalogC.mu.Unlock()
	return list, nil
}

// catalogFor returns the catalog as a token for userID scoped to projectID
// sees it: endpoint URLs have their %(project_id)s, $(project_id)s (and the
// tenant_id and user_id forms) filled in, and endpoints that need a project
// are left out of tokens without one, as Keystone does.
func (s *Service) catalogFor(ctx context.Context, userID, projectID string) ([]CatalogService, error) {
	cat, err := s.catalog(ctx)
	if err != nil {
		return nil, err
	}
	if !templated(cat) {
		return cat, nil
	}
	out := make([]CatalogService, 0, len(cat))
	for _, svc := range cat {
		eps := make([]CatalogEndpoint, 0, len(svc.Endpoints))
		for _, ep := range svc.Endpoints {
			url := ep.URL
			needsProject := false
			for _, k := range []string{"project_id", "tenant_id"} {
				for _, f := range []string{"%(" + k + ")s", "$(" + k + ")s"} {
					if strings.Contains(url, f) {
						needsProject = true
						url = strings.ReplaceAll(url, f, projectID)
					}
				}
			}
			url = strings.ReplaceAll(strings.ReplaceAll(url, "%(user_id)s", userID), "$(user_id)s", userID)
			if needsProject && projectID == "" {
				continue
			}
			ep.URL = url
			eps = append(eps, ep)
		}
		svc.Endpoints = eps
		out = append(out, svc)
	}
	return out, nil
}

func templated(cat []CatalogService) bool {
	for _, svc := range cat {
		for _, ep := range svc.Endpoints {
			if strings.Contains(ep.URL, "(") {
				return true
			}
		}
	}
	return false
}

// EnsureService makes sure the catalog has a service of this type and name
// with public, internal and admin endpoints at url in the configured region,
// updating the URL when it changed. Each service registers itself this way
// at start-up; running it again changes nothing.
func (s *Service) EnsureService(ctx context.Context, typ, name, description, url string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO regions (id) VALUES (?) ON CONFLICT DO NOTHING`, s.cfg.Region); err != nil {
			return err
		}
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM services WHERE type=? AND name=?`, typ, name).Scan(&id)
		if err == sql.ErrNoRows {
			id = newID()
			if _, err := tx.ExecContext(ctx, `INSERT INTO services (id, type, name, description, enabled) VALUES (?,?,?,?,1)`,
				id, typ, name, description); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		for _, iface := range []string{"public", "internal", "admin"} {
			var epID, epURL string
			err := tx.QueryRowContext(ctx, `SELECT id, url FROM endpoints WHERE service_id=? AND interface=? AND region_id=?`,
				id, iface, s.cfg.Region).Scan(&epID, &epURL)
			switch {
			case err == sql.ErrNoRows:
				if _, err := tx.ExecContext(ctx, `INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled) VALUES (?,?,?,?,?,1)`,
					newID(), id, iface, s.cfg.Region, url); err != nil {
					return err
				}
			case err != nil:
				return err
			case epURL != url:
				if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET url=? WHERE id=?`, url, epID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	s.changed()
	return store.Translate(err)
}
