package compute

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/monostack/monostack/internal/api"
)

func link(r *http.Request, path string) []any {
	base := api.BaseURL(r) + "/compute"
	return []any{
		map[string]any{"rel": "self", "href": base + "/v2.1" + path},
		map[string]any{"rel": "bookmark", "href": base + path},
	}
}

func flavorView(r *http.Request, v api.Version, f Flavor, detail bool) map[string]any {
	m := map[string]any{"id": f.ID, "name": f.Name, "links": link(r, "/flavors/"+f.ID)}
	if v.AtLeast(2, 55) {
		m["description"] = f.Description
	}
	if !detail {
		return m
	}
	m["vcpus"], m["ram"], m["disk"] = f.VCPUs, f.RAM, f.Disk
	m["OS-FLV-EXT-DATA:ephemeral"] = f.Ephemeral
	m["OS-FLV-DISABLED:disabled"] = f.Disabled
	m["os-flavor-access:is_public"] = f.IsPublic
	m["rxtx_factor"] = f.RxTxFactor
	if f.Swap == 0 && !v.AtLeast(2, 75) {
		m["swap"] = ""
	} else {
		m["swap"] = f.Swap
	}
	if v.AtLeast(2, 61) {
		if f.ExtraSpecs == nil {
			f.ExtraSpecs = map[string]string{}
		}
		m["extra_specs"] = f.ExtraSpecs
	}
	return m
}

func (s *Service) handleListFlavors(detail bool) handler {
	return func(w http.ResponseWriter, r *http.Request, v api.Version) error {
		c := api.CredentialsFrom(r.Context())
		q := r.URL.Query()
		page, err := api.ParsePage(r, 0, 1000)
		if err != nil {
			return err
		}
		where := []string{"1=1"}
		var args []any
		pub := strings.ToLower(q.Get("is_public"))
		switch {
		case !isAdmin(c):
			where = append(where, "(is_public=1 OR id IN (SELECT flavor_id FROM compute_flavor_access WHERE project_id=?))")
			args = append(args, c.ProjectID)
		case pub == "" || pub == "true" || pub == "1" || pub == "yes":
			where = append(where, "is_public=1")
		case pub == "false" || pub == "0" || pub == "no":
			where = append(where, "is_public=0")
		case pub == "none":
		default:
			return api.BadRequest("Invalid is_public filter [%s]", q.Get("is_public"))
		}
		for param, col := range map[string]string{"minRam": "ram", "minDisk": "disk"} {
			if s := q.Get(param); s != "" {
				n, err := strconv.ParseInt(s, 10, 64)
				if err != nil || n < 0 {
					return api.BadRequest("Invalid %s filter [%s]", param, s)
				}
				where = append(where, col+">=?")
				args = append(args, n)
			}
		}
		sortKey := q.Get("sort_key")
		if sortKey == "" {
			sortKey = "flavorid"
		}
		cols := map[string]string{"flavorid": "id", "id": "id", "name": "name", "memory_mb": "ram", "ram": "ram",
			"vcpus": "vcpus", "root_gb": "disk", "disk": "disk", "created_at": "created_at"}
		col, ok := cols[sortKey]
		if !ok {
			return api.BadRequest("Invalid input for query parameters sort_key. Value: %s.", sortKey)
		}
		dir := "ASC"
		if strings.EqualFold(q.Get("sort_dir"), "desc") {
			dir = "DESC"
		}
		rows, err := s.db.QueryContext(r.Context(), `SELECT `+flavorCols+` FROM compute_flavors WHERE `+
			strings.Join(where, " AND ")+` ORDER BY `+col+` `+dir+`, id`, args...)
		if err != nil {
			return err
		}
		var all []Flavor
		for rows.Next() {
			f, err := scanFlavor(rows)
			if err != nil {
				rows.Close()
				return err
			}
			all = append(all, f)
		}
		rows.Close()
		all, err = pageOf(all, page, func(f Flavor) string { return f.ID }, "flavor")
		if err != nil {
			return err
		}
		out := []any{}
		for _, f := range all {
			if detail && v.AtLeast(2, 61) {
				if f.ExtraSpecs, err = s.extraSpecs(r.Context(), s.db, f.ID); err != nil {
					return err
				}
			}
			out = append(out, flavorView(r, v, f, detail))
		}
		resp := map[string]any{"flavors": out}
		if len(all) > 0 {
			if l := api.NextLink(r, page, len(all), all[len(all)-1].ID); l != nil {
				resp["flavors_links"] = []any{l}
			}
		}
		api.WriteJSON(w, http.StatusOK, resp)
		return nil
	}
}

// pageOf cuts a sorted list at a marker and a limit.
func pageOf[T any](all []T, p api.Page, id func(T) string, what string) ([]T, error) {
	if p.Marker != "" {
		i := 0
		for ; i < len(all) && id(all[i]) != p.Marker; i++ {
		}
		if i == len(all) {
			return nil, api.BadRequest("marker [%s] not found", p.Marker)
		}
		all = all[i+1:]
	}
	if p.Limit > 0 && len(all) > p.Limit {
		all = all[:p.Limit]
	}
	return all, nil
}

func (s *Service) handleShowFlavor(w http.ResponseWriter, r *http.Request, v api.Version) error {
	f, err := s.getFlavor(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"flavor": flavorView(r, v, f, true)})
	return nil
}

// Lengths are checked apart (within255): a bounded repetition such as
// {1,255} compiles to 255 copies of its class, ~200 KB allocated at the
// start of every monostack process (shims too).
var flavorNameRe = regexp.MustCompile(`^[^\x00-\x1f]+$`)
var flavorIDRe = regexp.MustCompile(`^[\w\.\- ]+$`)

// within255 reports whether s has 1 to 255 characters.
func within255(s string) bool { n := utf8.RuneCountInString(s); return n >= 1 && n <= 255 }

func (s *Service) handleCreateFlavor(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b struct {
		Flavor *struct {
			Name        string          `json:"name"`
			ID          *string         `json:"id"`
			RAM         json.Number     `json:"ram"`
			VCPUs       json.Number     `json:"vcpus"`
			Disk        json.Number     `json:"disk"`
			Ephemeral   json.Number     `json:"OS-FLV-EXT-DATA:ephemeral"`
			Swap        json.Number     `json:"swap"`
			RxTx        json.Number     `json:"rxtx_factor"`
			IsPublic    *bool           `json:"os-flavor-access:is_public"`
			Description json.RawMessage `json:"description"`
		} `json:"flavor"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	fb := b.Flavor
	if fb == nil {
		return api.BadRequest("Invalid input for field/attribute flavor. Value: None. 'flavor' is a required property")
	}
	name := strings.TrimSpace(fb.Name)
	if !flavorNameRe.MatchString(name) || !within255(name) {
		return api.BadRequest("Invalid input for field/attribute name. Value: %s.", fb.Name)
	}
	num := func(field string, n json.Number, def, min, max int64) (int64, error) {
		if n == "" {
			if def < 0 {
				return 0, api.BadRequest("Invalid input for field/attribute flavor. '%s' is a required property", field)
			}
			return def, nil
		}
		x, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || x < min || x > max {
			return 0, api.BadRequest("Invalid input for field/attribute %s. Value: %s.", field, n)
		}
		return x, nil
	}
	f := Flavor{Name: name, IsPublic: true, RxTxFactor: 1.0}
	var err error
	if f.RAM, err = num("ram", fb.RAM, -1, 1, 2147483647); err != nil {
		return err
	}
	if f.VCPUs, err = num("vcpus", fb.VCPUs, -1, 1, 2147483647); err != nil {
		return err
	}
	if f.Disk, err = num("disk", fb.Disk, -1, 0, 2147483647); err != nil {
		return err
	}
	if f.Ephemeral, err = num("OS-FLV-EXT-DATA:ephemeral", fb.Ephemeral, 0, 0, 2147483647); err != nil {
		return err
	}
	if f.Swap, err = num("swap", fb.Swap, 0, 0, 2147483647); err != nil {
		return err
	}
	if fb.RxTx != "" {
		if f.RxTxFactor, err = fb.RxTx.Float64(); err != nil || f.RxTxFactor <= 0 {
			return api.BadRequest("Invalid input for field/attribute rxtx_factor. Value: %s.", fb.RxTx)
		}
	}
	if fb.IsPublic != nil {
		f.IsPublic = *fb.IsPublic
	}
	if len(fb.Description) > 0 && string(fb.Description) != "null" {
		if !v.AtLeast(2, 55) {
			return api.BadRequest("Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)")
		}
		var d string
		if err := json.Unmarshal(fb.Description, &d); err != nil || len(d) > 65535 {
			return api.BadRequest("Invalid input for field/attribute description.")
		}
		f.Description = &d
	}
	f.ID = newUUID()
	if fb.ID != nil && *fb.ID != "" && *fb.ID != "auto" {
		if !flavorIDRe.MatchString(*fb.ID) || !within255(*fb.ID) {
			return api.BadRequest("Invalid input for field/attribute id. Value: %s.", *fb.ID)
		}
		f.ID = *fb.ID
	}
	ctx := r.Context()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_flavors WHERE name=?`, f.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return api.Conflict("Flavor with name %s already exists.", f.Name)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_flavors WHERE id=?`, f.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return api.Conflict("Flavor with ID %s already exists.", f.ID)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO compute_flavors(id, name, vcpus, ram, disk, ephemeral, swap, rxtx_factor, is_public, description, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, f.ID, f.Name, f.VCPUs, f.RAM, f.Disk, f.Ephemeral, f.Swap, f.RxTxFactor, f.IsPublic, f.Description, nowText())
		return err
	})
	if err != nil {
		return err
	}
	f.ExtraSpecs = map[string]string{}
	api.WriteJSON(w, http.StatusOK, map[string]any{"flavor": flavorView(r, v, f, true)})
	return nil
}

func (s *Service) handleUpdateFlavor(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(2, 55) {
		return api.Errorf(http.StatusMethodNotAllowed, "The method PUT is not allowed for this resource.")
	}
	var b struct {
		Flavor *struct {
			Description *string `json:"description"`
		} `json:"flavor"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	if b.Flavor == nil {
		return api.BadRequest("Invalid input for field/attribute flavor. 'description' is a required property")
	}
	id := r.PathValue("id")
	res, err := s.db.ExecContext(r.Context(), `UPDATE compute_flavors SET description=? WHERE id=?`, b.Flavor.Description, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Flavor %s could not be found.", id)
	}
	return s.handleShowFlavor(w, r, v)
}

func (s *Service) handleDeleteFlavor(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id := r.PathValue("id")
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM compute_flavors WHERE id=?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Flavor %s could not be found.", id)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) handleListExtraSpecs(w http.ResponseWriter, r *http.Request, v api.Version) error {
	f, err := s.getFlavor(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": f.ExtraSpecs})
	return nil
}

func (s *Service) handleShowExtraSpec(w http.ResponseWriter, r *http.Request, v api.Version) error {
	f, err := s.getFlavor(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	key := r.PathValue("key")
	val, ok := f.ExtraSpecs[key]
	if !ok {
		return api.NotFound("Flavor %s has no extra specs with key %s.", f.ID, key)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{key: val})
	return nil
}

var specKeyRe = regexp.MustCompile(`^[\w\-\.: ]+$`)

func (s *Service) handleSetExtraSpecs(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id := r.PathValue("id")
	var specs map[string]any
	if key := r.PathValue("key"); key != "" {
		if err := api.DecodeJSON(r, &specs); err != nil {
			return err
		}
		if _, ok := specs[key]; !ok || len(specs) != 1 {
			return api.BadRequest("Request body and URI mismatch")
		}
	} else {
		var b struct {
			ExtraSpecs map[string]any `json:"extra_specs"`
		}
		if err := api.DecodeJSON(r, &b); err != nil {
			return err
		}
		if b.ExtraSpecs == nil {
			return api.BadRequest("Invalid input for field/attribute extra_specs. 'extra_specs' is a required property")
		}
		specs = b.ExtraSpecs
	}
	str := map[string]string{}
	for k, val := range specs {
		if !specKeyRe.MatchString(k) || !within255(k) {
			return api.BadRequest("Invalid input for field/attribute extra_specs. Key %q is not valid.", k)
		}
		switch x := val.(type) {
		case string:
			str[k] = x
		case json.Number:
			str[k] = x.String()
		case bool:
			str[k] = strconv.FormatBool(x)
		default:
			return api.BadRequest("Invalid input for field/attribute %s. Value must be a string, number or boolean.", k)
		}
		if len(str[k]) > 255 {
			return api.BadRequest("Invalid input for field/attribute %s. Value is too long.", k)
		}
	}
	ctx := r.Context()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM compute_flavors WHERE id=?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return api.NotFound("Flavor %s could not be found.", id)
		}
		for k, val := range str {
			if _, err := tx.ExecContext(ctx, `INSERT INTO compute_flavor_extra_specs(flavor_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT(flavor_id, key) DO UPDATE SET value=excluded.value`, id, k, val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if r.PathValue("key") != "" {
		api.WriteJSON(w, http.StatusOK, str)
	} else {
		api.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": str})
	}
	return nil
}

func (s *Service) handleDeleteExtraSpec(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id, key := r.PathValue("id"), r.PathValue("key")
	res, err := s.db.ExecContext(r.Context(), `DELETE FROM compute_flavor_extra_specs WHERE flavor_id=? AND key=?`, id, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Flavor %s has no extra specs with key %s.", id, key)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) flavorAccess(w http.ResponseWriter, r *http.Request, id string) error {
	rows, err := s.db.QueryContext(r.Context(), `SELECT project_id FROM compute_flavor_access WHERE flavor_id=? ORDER BY project_id`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := []any{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return err
		}
		out = append(out, map[string]any{"flavor_id": id, "tenant_id": p})
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"flavor_access": out})
	return nil
}

func (s *Service) handleListFlavorAccess(w http.ResponseWriter, r *http.Request, v api.Version) error {
	f, err := s.getFlavor(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	if f.IsPublic {
		return api.NotFound("Access list not available for public flavors.")
	}
	return s.flavorAccess(w, r, f.ID)
}

func (s *Service) handleFlavorAction(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b struct {
		Add *struct {
			Tenant string `json:"tenant"`
		} `json:"addTenantAccess"`
		Remove *struct {
			Tenant string `json:"tenant"`
		} `json:"removeTenantAccess"`
	}
	if err := api.DecodeJSON(r, &b); err != nil {
		return err
	}
	f, err := s.getFlavor(r.Context(), api.CredentialsFrom(r.Context()), r.PathValue("id"))
	if err != nil {
		return err
	}
	switch {
	case b.Add != nil && b.Add.Tenant != "":
		if f.IsPublic {
			return api.Conflict("Can not add access to a public flavor.")
		}
		res, err := s.db.ExecContext(r.Context(), `INSERT OR IGNORE INTO compute_flavor_access(flavor_id, project_id) VALUES (?, ?)`, f.ID, b.Add.Tenant)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.Conflict("Flavor access already exists for flavor %s and project %s combination.", f.ID, b.Add.Tenant)
		}
	case b.Remove != nil && b.Remove.Tenant != "":
		res, err := s.db.ExecContext(r.Context(), `DELETE FROM compute_flavor_access WHERE flavor_id=? AND project_id=?`, f.ID, b.Remove.Tenant)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("Flavor access not found for %s / %s combination.", f.ID, b.Remove.Tenant)
		}
	default:
		return api.BadRequest("Invalid input for field/attribute: addTenantAccess or removeTenantAccess with a tenant is required.")
	}
	return s.flavorAccess(w, r, f.ID)
}
