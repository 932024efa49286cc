package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

// The catalog management API: /v3/regions, /v3/services and /v3/endpoints,
// answered as Keystone answers them. Regions form a tree; a service has
// endpoints, each with an interface (public, internal, admin), a URL and an
// optional region. Every write bumps the generation so that the catalog of
// tokens and /v3/auth/catalog is rebuilt.
//
// Not kept, unlike Keystone: attributes outside the schema (Keystone stores
// them as "extra" and echoes them back) and an endpoint's name and
// description; they are accepted, type-checked and dropped.

// catalogRoutes registers regions, services and endpoints. Regions are
// readable with any token; services and endpoints by cloud readers; every
// write needs a cloud admin.
func (s *Service) catalogRoutes(rt *api.Router) {
	any_, read, admin := api.Authenticated, isCloudReader, api.AdminOnly

	rt.Handle("GET /v3/regions", any_, s.handleListRegions)
	rt.Handle("POST /v3/regions", admin, s.handleCreateRegion)
	rt.Handle("GET /v3/regions/{id}", any_, s.handleGetRegion)
	rt.Handle("PUT /v3/regions/{id}", admin, s.handleCreateRegion)
	rt.Handle("PATCH /v3/regions/{id}", admin, s.handleUpdateRegion)
	rt.Handle("DELETE /v3/regions/{id}", admin, s.handleDeleteRegion)

	rt.Handle("GET /v3/services", read, s.handleListServices)
	rt.Handle("POST /v3/services", admin, s.handleCreateService)
	rt.Handle("GET /v3/services/{id}", read, s.handleGetService)
	rt.Handle("PATCH /v3/services/{id}", admin, s.handleUpdateService)
	rt.Handle("DELETE /v3/services/{id}", admin, s.handleDeleteService)

	rt.Handle("GET /v3/endpoints", read, s.handleListEndpoints)
	rt.Handle("POST /v3/endpoints", admin, s.handleCreateEndpoint)
	rt.Handle("GET /v3/endpoints/{id}", read, s.handleGetEndpoint)
	rt.Handle("PATCH /v3/endpoints/{id}", admin, s.handleUpdateEndpoint)
	rt.Handle("DELETE /v3/endpoints/{id}", admin, s.handleDeleteEndpoint)
}

// catalogQueryer is what the catalog's lookups need of a *sql.DB or *sql.Tx.
type catalogQueryer interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// ---- request fields ----

// catalogField is one optional string field of a request entity.
type catalogField struct {
	set, null bool
	val       string
}

// catalogString reads a string field of at most maxLen characters (0: no
// limit) and at least minLen; null is accepted only when nullOK.
func catalogString(e entity, name string, nullOK bool, minLen, maxLen int) (catalogField, error) {
	raw, ok := e[name]
	if !ok {
		return catalogField{}, nil
	}
	if string(raw) == "null" {
		if !nullOK {
			return catalogField{}, typeErr(name, "string", raw)
		}
		return catalogField{set: true, null: true}, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return catalogField{}, typeErr(name, "string", raw)
	}
	n := utf8.RuneCountInString(v)
	if n < minLen {
		return catalogField{}, api.BadRequest("Invalid input for field '%s': '%s' is too short.", name, v)
	}
	if maxLen > 0 && n > maxLen {
		return catalogField{}, api.BadRequest("Invalid input for field '%s': it is longer than %d characters.", name, maxLen)
	}
	return catalogField{set: true, val: v}, nil
}

// catalogNonEmpty is Keystone's minProperties: 1 on update bodies.
func catalogNonEmpty(e entity, key string) error {
	if len(e) == 0 {
		return api.BadRequest("Invalid input for field '%s': {} does not have enough properties.", key)
	}
	return nil
}

// catalogMatchingID refuses an "id" in an update body that is not the
// target's own, as Keystone does.
func catalogMatchingID(e entity, id string) error {
	raw, ok := e["id"]
	if !ok || string(raw) == "null" {
		return nil
	}
	var v string
	if json.Unmarshal(raw, &v) != nil || v != id {
		return api.BadRequest("Cannot change ID")
	}
	return nil
}

func catalogValidation(attribute, target string) error {
	return api.BadRequest("Expecting to find %s in %s. The server could not comply with the request since it is "+
		"either malformed or otherwise incorrect. The client is assumed to be in error.", attribute, target)
}

// ---- regions ----

type regionRow struct {
	ID, Description, ParentID string // ParentID "" for a root region
}

func regionJSON(r *http.Request, rg regionRow) map[string]any {
	return map[string]any{"id": rg.ID, "description": rg.Description, "parent_region_id": nullable(rg.ParentID),
		"links": selfLink(r, "regions/"+rg.ID)}
}

func regionNotFound(id string) error { return api.NotFound("Could not find region: %s.", id) }

func (s *Service) getRegion(ctx context.Context, db catalogQueryer, id string) (regionRow, error) {
	var rg regionRow
	err := db.QueryRowContext(ctx, `SELECT id, description, coalesce(parent_region_id, '') FROM regions WHERE id=?`, id).
		Scan(&rg.ID, &rg.Description, &rg.ParentID)
	if errors.Is(store.Translate(err), store.ErrNotFound) {
		return rg, regionNotFound(id)
	}
	return rg, store.Translate(err)
}

func (s *Service) handleListRegions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if k != "parent_region_id" {
			return api.BadRequest("Invalid input: additional properties are not allowed ('%s' was unexpected).", k)
		}
	}
	query, args := `SELECT id, description, coalesce(parent_region_id, '') FROM regions`, []any{}
	if q.Has("parent_region_id") {
		p := q.Get("parent_region_id")
		if p == "" || utf8.RuneCountInString(p) > 255 {
			return api.BadRequest("Invalid input for query parameter 'parent_region_id': it must be 1 to 255 characters.")
		}
		query += ` WHERE parent_region_id=?`
		args = append(args, p)
	}
	rows, err := s.db.QueryContext(r.Context(), query+` ORDER BY id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []any{}
	for rows.Next() {
		var rg regionRow
		if err := rows.Scan(&rg.ID, &rg.Description, &rg.ParentID); err != nil {
			return err
		}
		out = append(out, regionJSON(r, rg))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return ok(w, map[string]any{"regions": out, "links": listLinks(r)})
}

func (s *Service) handleGetRegion(w http.ResponseWriter, r *http.Request) error {
	rg, err := s.getRegion(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"region": regionJSON(r, rg)})
}

// regionFields reads description and parent_region_id into rg.
func regionFields(e entity, rg *regionRow) (parentSet bool, err error) {
	d, err := catalogString(e, "description", true, 0, 255)
	if err != nil {
		return false, err
	}
	if d.set {
		rg.Description = d.val // null is stored as ""
	}
	p, err := catalogString(e, "parent_region_id", true, 1, 255)
	if err != nil {
		return false, err
	}
	if p.set {
		rg.ParentID = p.val
	}
	return p.set, nil
}

// handleCreateRegion serves POST /v3/regions (the id is optional) and
// PUT /v3/regions/{id} (the id is the path's).
func (s *Service) handleCreateRegion(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "region")
	if err != nil {
		return err
	}
	var rg regionRow
	id, err := catalogString(e, "id", true, 0, 255)
	if err != nil {
		return err
	}
	if _, err := regionFields(e, &rg); err != nil {
		return err
	}
	rg.ID = id.val
	if r.Method == http.MethodPut {
		pathID := r.PathValue("id")
		if e.has("id") && (id.null || id.val != pathID) {
			shown := id.val
			if id.null {
				shown = "None"
			}
			return api.BadRequest(`Conflicting region IDs specified: "%s" != "%s"`, pathID, shown)
		}
		if utf8.RuneCountInString(pathID) > 255 {
			return api.BadRequest("Invalid input for field 'id': it is longer than 255 characters.")
		}
		rg.ID = pathID
	} else if rg.ID == "" {
		rg.ID = newID()
	}
	ctx := r.Context()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getRegion(ctx, tx, rg.ID); err == nil {
			return api.Conflict("Conflict occurred attempting to store region - Duplicate ID, %s..", rg.ID)
		} else if !api.IsNotFound(err) {
			return err
		}
		if rg.ParentID != "" {
			if _, err := s.getRegion(ctx, tx, rg.ParentID); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO regions (id, description, parent_region_id) VALUES (?,?,?)`,
			rg.ID, rg.Description, nullable(rg.ParentID))
		return err
	})
	if errors.Is(err, store.ErrConflict) { // a concurrent create won
		return api.Conflict("Conflict occurred attempting to store region - Duplicate ID, %s..", rg.ID)
	}
	if err != nil {
		return err
	}
	s.changed()
	return created(w, map[string]any{"region": regionJSON(r, rg)})
}

func (s *Service) handleUpdateRegion(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "region")
	if err != nil {
		return err
	}
	if err := catalogNonEmpty(e, "region"); err != nil {
		return err
	}
	if _, err := catalogString(e, "id", true, 1, 255); err != nil {
		return err
	}
	var patch regionRow
	if _, err := regionFields(e, &patch); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := catalogMatchingID(e, id); err != nil {
		return err
	}
	ctx := r.Context()
	var rg regionRow
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if patch.ParentID != "" {
			if _, err := s.getRegion(ctx, tx, patch.ParentID); err != nil {
				return err
			}
		}
		var err error
		if rg, err = s.getRegion(ctx, tx, id); err != nil {
			return err
		}
		if e.has("description") {
			rg.Description = patch.Description
		}
		if e.has("parent_region_id") {
			rg.ParentID = patch.ParentID
		}
		// Walk up from the new parent: meeting the region itself is a cycle.
		seen := map[string]bool{}
		for p := rg.ParentID; p != "" && !seen[p]; {
			seen[p] = true
			if p == rg.ID {
				return api.BadRequest("The specified parent region %s would create a circular region hierarchy.", p)
			}
			parent, err := s.getRegion(ctx, tx, p)
			if err != nil {
				return err
			}
			p = parent.ParentID
		}
		_, err = tx.ExecContext(ctx, `UPDATE regions SET description=?, parent_region_id=? WHERE id=?`,
			rg.Description, nullable(rg.ParentID), rg.ID)
		return err
	})
	if err != nil {
		return err
	}
	s.changed()
	return ok(w, map[string]any{"region": regionJSON(r, rg)})
}

// handleDeleteRegion deletes a region and, as Keystone does, all the regions
// under it, unless one of them still has endpoints.
func (s *Service) handleDeleteRegion(w http.ResponseWriter, r *http.Request) error {
	ctx, id := r.Context(), r.PathValue("id")
	const subtree = `WITH RECURSIVE sub(id) AS (SELECT ? UNION SELECT regions.id FROM regions JOIN sub ON regions.parent_region_id=sub.id) `
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getRegion(ctx, tx, id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, subtree+`SELECT count(*) FROM endpoints WHERE region_id IN (SELECT id FROM sub)`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return api.Forbidden("Unable to delete region %s because it or its child regions have associated endpoints.", id)
		}
		rows, err := tx.QueryContext(ctx, subtree+`SELECT id FROM sub`, id)
		if err != nil {
			return err
		}
		var doomed []string
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return err
			}
			doomed = append(doomed, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Unlink the subtree first so that its regions can go in any order.
		for _, q := range []string{`UPDATE regions SET parent_region_id=NULL WHERE id=?`, `DELETE FROM regions WHERE id=?`} {
			for _, d := range doomed {
				if _, err := tx.ExecContext(ctx, q, d); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.changed()
	return noContent(w)
}

// ---- services ----

type serviceRow struct {
	ID, Type, Name, Description string
	Enabled                     bool
}

const serviceCols = `id, type, name, description, enabled`

func scanServiceRow(row interface{ Scan(...any) error }) (serviceRow, error) {
	var sv serviceRow
	err := row.Scan(&sv.ID, &sv.Type, &sv.Name, &sv.Description, &sv.Enabled)
	return sv, store.Translate(err)
}

func serviceJSON(r *http.Request, sv serviceRow) map[string]any {
	return map[string]any{"id": sv.ID, "type": sv.Type, "name": sv.Name, "description": sv.Description,
		"enabled": sv.Enabled, "links": selfLink(r, "services/"+sv.ID)}
}

func (s *Service) getService(ctx context.Context, db catalogQueryer, id string) (serviceRow, error) {
	sv, err := scanServiceRow(db.QueryRowContext(ctx, `SELECT `+serviceCols+` FROM services WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return sv, api.NotFound("Could not find service: %s.", id)
	}
	return sv, err
}

func (s *Service) handleListServices(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	query, args := `SELECT `+serviceCols+` FROM services WHERE 1=1`, []any{}
	if q.Has("type") {
		query += ` AND type=?`
		args = append(args, q.Get("type"))
	}
	if q.Has("name") {
		query += ` AND name=?`
		args = append(args, q.Get("name"))
	}
	rows, err := s.db.QueryContext(r.Context(), query+` ORDER BY type, name, id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []any{}
	for rows.Next() {
		sv, err := scanServiceRow(rows)
		if err != nil {
			return err
		}
		out = append(out, serviceJSON(r, sv))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return ok(w, map[string]any{"services": out, "links": listLinks(r)})
}

func (s *Service) handleGetService(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.getService(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"service": serviceJSON(r, sv)})
}

// serviceFields applies the fields present in e to sv.
func serviceFields(e entity, sv *serviceRow, create bool) error {
	typ, err := catalogString(e, "type", false, 1, 255)
	if err != nil {
		return err
	}
	if create && !typ.set {
		return api.BadRequest("Invalid input for field 'type': 'type' is a required property.")
	}
	name, err := catalogString(e, "name", false, 1, 255)
	if err != nil {
		return err
	}
	desc, err := catalogString(e, "description", true, 0, 0)
	if err != nil {
		return err
	}
	if _, err := e.boolean("enabled", &sv.Enabled); err != nil {
		return err
	}
	if typ.set {
		sv.Type = typ.val
	}
	if name.set {
		sv.Name = name.val
	}
	if desc.set {
		sv.Description = desc.val
	}
	return nil
}

func (s *Service) handleCreateService(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "service")
	if err != nil {
		return err
	}
	sv := serviceRow{ID: newID(), Enabled: true}
	if err := serviceFields(e, &sv, true); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(r.Context(), `INSERT INTO services (`+serviceCols+`) VALUES (?,?,?,?,?)`,
		sv.ID, sv.Type, sv.Name, sv.Description, sv.Enabled); err != nil {
		return store.Translate(err)
	}
	s.changed()
	return created(w, map[string]any{"service": serviceJSON(r, sv)})
}

func (s *Service) handleUpdateService(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "service")
	if err != nil {
		return err
	}
	if err := catalogNonEmpty(e, "service"); err != nil {
		return err
	}
	var patch serviceRow
	if err := serviceFields(e, &patch, false); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := catalogMatchingID(e, id); err != nil {
		return err
	}
	sv, err := s.getService(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	if err := serviceFields(e, &sv, false); err != nil {
		return err
	}
	res, err := s.db.ExecContext(r.Context(), `UPDATE services SET type=?, name=?, description=?, enabled=? WHERE id=?`,
		sv.Type, sv.Name, sv.Description, sv.Enabled, sv.ID)
	if err != nil {
		return store.Translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Could not find service: %s.", id)
	}
	s.changed()
	return ok(w, map[string]any{"service": serviceJSON(r, sv)})
}

// handleDeleteService deletes a service and its endpoints.
func (s *Service) handleDeleteService(w http.ResponseWriter, r *http.Request) error {
	ctx, id := r.Context(), r.PathValue("id")
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getService(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM endpoints WHERE service_id=?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM services WHERE id=?`, id)
		return err
	})
	if err != nil {
		return err
	}
	s.changed()
	return noContent(w)
}

// ---- endpoints ----

type endpointRow struct {
	ID, ServiceID, Interface, RegionID, URL string // RegionID "" for none
	Enabled                                 bool
}

const endpointCols = `id, service_id, interface, coalesce(region_id, ''), url, enabled`

func scanEndpointRow(row interface{ Scan(...any) error }) (endpointRow, error) {
	var ep endpointRow
	err := row.Scan(&ep.ID, &ep.ServiceID, &ep.Interface, &ep.RegionID, &ep.URL, &ep.Enabled)
	return ep, store.Translate(err)
}

// endpointJSON carries the region twice, as region_id and as the legacy
// region, as Keystone does.
func endpointJSON(r *http.Request, ep endpointRow) map[string]any {
	return map[string]any{"id": ep.ID, "interface": ep.Interface, "region": nullable(ep.RegionID),
		"region_id": nullable(ep.RegionID), "service_id": ep.ServiceID, "url": ep.URL, "enabled": ep.Enabled,
		"links": selfLink(r, "endpoints/"+ep.ID)}
}

func endpointNotFound(id string) error { return api.NotFound("Could not find endpoint: %s.", id) }

func (s *Service) getEndpoint(ctx context.Context, db catalogQueryer, id string) (endpointRow, error) {
	ep, err := scanEndpointRow(db.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE id=?`, id))
	if errors.Is(err, store.ErrNotFound) {
		return ep, endpointNotFound(id)
	}
	return ep, err
}

var endpointInterfaces = []string{"admin", "internal", "public"}

func validInterface(v string) bool {
	for _, i := range endpointInterfaces {
		if v == i {
			return true
		}
	}
	return false
}

func interfaceErr(v string) error {
	return api.BadRequest("Invalid input for field 'interface': '%s' is not one of ['admin', 'internal', 'public'].", v)
}

func (s *Service) handleListEndpoints(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	query, args := `SELECT `+endpointCols+` FROM endpoints WHERE 1=1`, []any{}
	if q.Has("interface") {
		v := q.Get("interface")
		if !validInterface(v) {
			return api.BadRequest("Invalid input for query parameter 'interface': '%s' is not one of ['admin', 'internal', 'public'].", v)
		}
		query += ` AND interface=?`
		args = append(args, v)
	}
	if q.Has("service_id") {
		query += ` AND service_id=?`
		args = append(args, q.Get("service_id"))
	}
	if q.Has("region_id") {
		query += ` AND region_id=?`
		args = append(args, q.Get("region_id"))
	}
	rows, err := s.db.QueryContext(r.Context(), query+` ORDER BY service_id, interface, id`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []any{}
	for rows.Next() {
		ep, err := scanEndpointRow(rows)
		if err != nil {
			return err
		}
		out = append(out, endpointJSON(r, ep))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return ok(w, map[string]any{"endpoints": out, "links": listLinks(r)})
}

func (s *Service) handleGetEndpoint(w http.ResponseWriter, r *http.Request) error {
	ep, err := s.getEndpoint(r.Context(), s.db, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"endpoint": endpointJSON(r, ep)})
}

// endpointPatch is what an endpoint request body sets.
type endpointPatch struct {
	serviceID, iface, url catalogField
	enabled               *bool
	// region: set when the body names the region (region_id, or the legacy
	// region when region_id is null or absent); legacy means the region is
	// created if missing, as Keystone does for v2-style clients.
	regionSet, legacy bool
	regionID          string
}

// urlPattern is Keystone's schema pattern for endpoint URLs.
var urlPattern = regexp.MustCompile(`^[a-zA-Z0-9+.-]+:.+`)

func readEndpoint(e entity, create bool) (endpointPatch, error) {
	var p endpointPatch
	var err error
	if p.iface, err = catalogString(e, "interface", false, 0, 0); err != nil {
		return p, err
	}
	if p.iface.set && !validInterface(p.iface.val) {
		return p, interfaceErr(p.iface.val)
	}
	if p.serviceID, err = catalogString(e, "service_id", false, 0, 0); err != nil {
		return p, err
	}
	if p.url, err = catalogString(e, "url", false, 0, 225); err != nil {
		return p, err
	}
	if p.url.set && !urlPattern.MatchString(p.url.val) {
		return p, api.BadRequest("Invalid input for field 'url': '%s' does not match '^[a-zA-Z0-9+.-]+:.+'.", p.url.val)
	}
	var en bool
	if set, err := e.boolean("enabled", &en); err != nil {
		return p, err
	} else if set {
		p.enabled = &en
	}
	regionID, err := catalogString(e, "region_id", true, 0, 255)
	if err != nil {
		return p, err
	}
	region, err := catalogString(e, "region", true, 0, 255)
	if err != nil {
		return p, err
	}
	// Kept by Keystone as extra attributes; only their types are checked here.
	if _, err := catalogString(e, "name", false, 0, 0); err != nil {
		return p, err
	}
	if _, err := catalogString(e, "description", true, 0, 0); err != nil {
		return p, err
	}
	if create {
		for _, f := range []string{"interface", "service_id", "url"} {
			if !e.has(f) {
				return p, api.BadRequest("Invalid input for field '%s': '%s' is a required property.", f, f)
			}
		}
	}
	switch {
	case regionID.set && !regionID.null:
		p.regionSet, p.regionID = true, regionID.val
	case region.set && !region.null:
		p.regionSet, p.regionID, p.legacy = true, region.val, true
	case regionID.set: // region_id: null clears the region
		p.regionSet = true
	}
	if p.url.set {
		if err := checkEndpointURL(p.url.val); err != nil {
			return p, err
		}
	}
	if p.regionSet && p.regionID == "" && (p.legacy || !regionID.null) {
		// An empty region id names no region: Keystone finds none.
		return p, catalogValidation("endpoint region_id", "region table")
	}
	return p, nil
}

// resolveEndpoint checks what p refers to inside tx, creating a legacy region.
func (s *Service) resolveEndpoint(ctx context.Context, tx *sql.Tx, p endpointPatch) error {
	if p.regionSet && p.regionID != "" {
		_, err := s.getRegion(ctx, tx, p.regionID)
		switch {
		case err == nil:
		case api.IsNotFound(err) && p.legacy:
			if _, err := tx.ExecContext(ctx, `INSERT INTO regions (id, description) VALUES (?, '')`, p.regionID); err != nil {
				return err
			}
		case api.IsNotFound(err):
			return catalogValidation("endpoint region_id", "region table")
		default:
			return err
		}
	}
	if p.serviceID.set {
		if _, err := s.getService(ctx, tx, p.serviceID.val); api.IsNotFound(err) {
			return catalogValidation("endpoint service_id", "service table")
		} else if err != nil {
			return err
		}
	}
	return nil
}

func (p endpointPatch) apply(ep *endpointRow) {
	if p.serviceID.set {
		ep.ServiceID = p.serviceID.val
	}
	if p.iface.set {
		ep.Interface = p.iface.val
	}
	if p.url.set {
		ep.URL = p.url.val
	}
	if p.enabled != nil {
		ep.Enabled = *p.enabled
	}
	if p.regionSet {
		ep.RegionID = p.regionID
	}
}

func (s *Service) handleCreateEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "endpoint")
	if err != nil {
		return err
	}
	p, err := readEndpoint(e, true)
	if err != nil {
		return err
	}
	ep := endpointRow{ID: newID(), Enabled: true}
	p.apply(&ep)
	ctx := r.Context()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.resolveEndpoint(ctx, tx, p); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO endpoints (id, service_id, interface, region_id, url, enabled) VALUES (?,?,?,?,?,?)`,
			ep.ID, ep.ServiceID, ep.Interface, nullable(ep.RegionID), ep.URL, ep.Enabled)
		return err
	})
	if err != nil {
		return err
	}
	s.changed()
	return created(w, map[string]any{"endpoint": endpointJSON(r, ep)})
}

func (s *Service) handleUpdateEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := decodeEntity(r, "endpoint")
	if err != nil {
		return err
	}
	if err := catalogNonEmpty(e, "endpoint"); err != nil {
		return err
	}
	p, err := readEndpoint(e, false)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := catalogMatchingID(e, id); err != nil {
		return err
	}
	ctx := r.Context()
	var ep endpointRow
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.resolveEndpoint(ctx, tx, p); err != nil {
			return err
		}
		var err error
		if ep, err = s.getEndpoint(ctx, tx, id); err != nil {
			return err
		}
		p.apply(&ep)
		_, err = tx.ExecContext(ctx, `UPDATE endpoints SET service_id=?, interface=?, region_id=?, url=?, enabled=? WHERE id=?`,
			ep.ServiceID, ep.Interface, nullable(ep.RegionID), ep.URL, ep.Enabled, ep.ID)
		return err
	})
	if err != nil {
		return err
	}
	s.changed()
	return ok(w, map[string]any{"endpoint": endpointJSON(r, ep)})
}

func (s *Service) handleDeleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM endpoints WHERE id=?`, id)
	if err != nil {
		return store.Translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return endpointNotFound(id)
	}
	s.changed()
	return noContent(w)
}

// endpointSubstitutions are the $(name)s an endpoint URL may carry,
// Keystone's whitelist.
var endpointSubstitutions = map[string]bool{
	"tenant_id": true, "project_id": true, "user_id": true, "compute_host": true, "public_endpoint": true,
}

// checkEndpointURL refuses a URL that Keystone could not format: it reads
// the URL as a Python %-format string (with "$(" taken for "%(") applied to
// a mapping of the whitelisted names to empty strings, as Keystone does.
// So "%20" and unknown $(names)s are refused; "%%" is a literal percent.
func checkEndpointURL(url string) error {
	bad := api.BadRequest("Cannot create an endpoint with an invalid URL: %s.", url)
	f := strings.ReplaceAll(url, "$(", "%(")
	argUsed := false
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i >= len(f) {
			return bad
		}
		if f[i] == '%' {
			continue
		}
		keyed := false
		if f[i] == '(' {
			depth, start := 1, i+1
			for i++; i < len(f) && depth > 0; i++ {
				switch f[i] {
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			if depth > 0 {
				return bad
			}
			if !endpointSubstitutions[f[start:i-1]] {
				return bad
			}
			keyed = true
		}
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 { // flags
			i++
		}
		for i < len(f) && (f[i] >= '0' && f[i] <= '9') { // width
			i++
		}
		if i < len(f) && f[i] == '.' { // precision
			i++
			for i < len(f) && f[i] >= '0' && f[i] <= '9' {
				i++
			}
		}
		for i < len(f) && strings.IndexByte("hlL", f[i]) >= 0 { // length modifiers
			i++
		}
		// "*" needs a number argument and every other conversion but
		// s, r and a fails on a string (or the mapping itself).
		if i >= len(f) || strings.IndexByte("sra", f[i]) < 0 {
			return bad
		}
		// An unkeyed conversion formats the mapping itself, and only if
		// nothing came before it: Python takes a key as using the argument.
		if !keyed && argUsed {
			return bad
		}
		argUsed = true
	}
	return nil
}
