package placement

import (
	"database/sql"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

func providerLinks(v api.Version, id string) []any {
	base := "/placement/resource_providers/" + id
	links := []any{
		map[string]any{"rel": "self", "href": base},
		map[string]any{"rel": "inventories", "href": base + "/inventories"},
		map[string]any{"rel": "usages", "href": base + "/usages"},
	}
	if v.AtLeast(1, 1) {
		links = append(links, map[string]any{"rel": "aggregates", "href": base + "/aggregates"})
	}
	if v.AtLeast(1, 6) {
		links = append(links, map[string]any{"rel": "traits", "href": base + "/traits"})
	}
	if v.AtLeast(1, 11) {
		links = append(links, map[string]any{"rel": "allocations", "href": base + "/allocations"})
	}
	return links
}

func providerView(v api.Version, p Provider) map[string]any {
	m := map[string]any{"uuid": p.UUID, "name": p.Name, "generation": p.Generation, "links": providerLinks(v, p.UUID)}
	if v.AtLeast(1, 14) {
		var parent any
		if p.ParentUUID != "" {
			parent = p.ParentUUID
		}
		m["parent_provider_uuid"] = parent
		m["root_provider_uuid"] = p.RootUUID
	}
	return m
}

// decode reads a JSON body, refusing unknown fields as placement's
// schemas do.
func decode(r *http.Request, v any) error {
	b, err := api.ReadBody(r, api.MaxBody)
	if err != nil {
		return err
	}
	if err := api.Unmarshal(b, v); err != nil {
		return err
	}
	return nil
}

func validUUID(s string) bool {
	if len(s) == 32 {
		s = s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	}
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

func (s *Service) handleListProviders(w http.ResponseWriter, r *http.Request, v api.Version) error {
	q := r.URL.Query()
	ctx := r.Context()
	var want map[string]int64
	if res := q.Get("resources"); res != "" {
		if !v.AtLeast(1, 4) {
			return api.BadRequest("Invalid query string parameters: 'resources' was unexpected.")
		}
		var err error
		if want, err = parseResources(res); err != nil {
			return err
		}
	}
	var required []string
	if req := q.Get("required"); req != "" {
		required = strings.Split(req, ",")
	}
	cands, err := s.candidates(ctx, s.db, want, required)
	if err != nil {
		return err
	}
	out := []any{}
	for _, c := range cands {
		p := c.p
		if n := q.Get("name"); n != "" && p.Name != n {
			continue
		}
		if u := q.Get("uuid"); u != "" && p.UUID != u {
			continue
		}
		if t := q.Get("in_tree"); t != "" {
			tp, err := s.getProvider(ctx, s.db, t)
			if err != nil || tp.RootUUID != p.RootUUID {
				continue
			}
		}
		if m := q.Get("member_of"); m != "" {
			aggs, err := providerAggregates(ctx, s.db, p.UUID)
			if err != nil {
				return err
			}
			ok := false
			for _, a := range strings.Split(strings.TrimPrefix(m, "in:"), ",") {
				ok = ok || contains(aggs, a)
			}
			if !ok {
				continue
			}
		}
		out = append(out, providerView(v, p))
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"resource_providers": out})
	return nil
}

func parseResources(s string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, part := range strings.Split(s, ",") {
		rc, n, ok := strings.Cut(part, ":")
		amount, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil || amount < 1 || rc == "" {
			return nil, api.BadRequest("Badly formed resources parameter. Expected resources query string parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: %s.", s)
		}
		if _, dup := out[rc]; dup {
			return nil, api.BadRequest("Badly formed resources parameter: %s appears twice.", rc)
		}
		out[rc] = amount
	}
	return out, nil
}

type providerBody struct {
	Name       *string `json:"name"`
	UUID       string  `json:"uuid"`
	ParentUUID *string `json:"parent_provider_uuid"`
}

func (b providerBody) check(v api.Version) error {
	if b.Name == nil || *b.Name == "" || len(*b.Name) > 200 {
		return api.BadRequest("JSON does not validate: 'name' is a required property of at most 200 characters.")
	}
	if b.UUID != "" && !validUUID(b.UUID) {
		return api.BadRequest("JSON does not validate: '%s' is not a 'uuid'.", b.UUID)
	}
	if b.ParentUUID != nil && !v.AtLeast(1, 14) {
		return api.BadRequest("JSON does not validate: Additional properties are not allowed ('parent_provider_uuid' was unexpected).")
	}
	return nil
}

func (s *Service) handleCreateProvider(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b providerBody
	if err := decode(r, &b); err != nil {
		return err
	}
	if err := b.check(v); err != nil {
		return err
	}
	p := Provider{Name: *b.Name, UUID: b.UUID}
	if b.ParentUUID != nil {
		p.ParentUUID = *b.ParentUUID
	}
	err := s.db.Tx(r.Context(), func(tx *sql.Tx) error {
		var err error
		p, err = s.createProvider(r.Context(), tx, p)
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/placement/resource_providers/"+p.UUID)
	if v.AtLeast(1, 20) {
		api.WriteJSON(w, http.StatusOK, providerView(v, p))
		return nil
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) handleShowProvider(w http.ResponseWriter, r *http.Request, v api.Version) error {
	p, err := s.getProvider(r.Context(), s.db, r.PathValue("uuid"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, providerView(v, p))
	return nil
}

func (s *Service) handleUpdateProvider(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b providerBody
	if err := decode(r, &b); err != nil {
		return err
	}
	if err := b.check(v); err != nil {
		return err
	}
	id := r.PathValue("uuid")
	ctx := r.Context()
	var p Provider
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		cur, err := s.getProvider(ctx, tx, id)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM placement_providers WHERE name=? AND uuid<>?`, *b.Name, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(codeDuplicateName, "Conflicting resource provider name: %s already exists.", *b.Name)
		}
		parent := cur.ParentUUID
		if b.ParentUUID != nil && *b.ParentUUID != cur.ParentUUID {
			if cur.ParentUUID != "" && !v.AtLeast(1, 37) {
				return api.BadRequest("Unable to re-parent a resource provider.")
			}
			parent = *b.ParentUUID
			if parent != "" {
				pp, err := s.getProvider(ctx, tx, parent)
				if err != nil {
					return api.BadRequest("parent provider UUID %s does not exist.", parent)
				}
				if pp.RootUUID == cur.RootUUID {
					return api.BadRequest("creating loop in the provider tree is not allowed.")
				}
				if _, err := tx.ExecContext(ctx, `UPDATE placement_providers SET root_uuid=? WHERE root_uuid=?`, pp.RootUUID, cur.RootUUID); err != nil {
					return err
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE placement_providers SET name=?, parent_uuid=nullif(?, ''), updated_at=? WHERE uuid=?`,
			*b.Name, parent, nowText(), id); err != nil {
			return err
		}
		if _, err := bump(ctx, tx, id, -1); err != nil {
			return err
		}
		p, err = s.getProvider(ctx, tx, id)
		return err
	})
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, providerView(v, p))
	return nil
}

func (s *Service) handleDeleteProvider(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if err := s.deleteProvider(r.Context(), r.PathValue("uuid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func inventoryView(i Inventory) map[string]any {
	return map[string]any{"total": i.Total, "reserved": i.Reserved, "min_unit": i.MinUnit, "max_unit": i.MaxUnit,
		"step_size": i.StepSize, "allocation_ratio": i.AllocationRatio}
}

func (s *Service) handleListInventories(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id := r.PathValue("uuid")
	p, err := s.getProvider(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	inv, err := inventories(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for rc, i := range inv {
		out[rc] = inventoryView(i)
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"inventories": out, "resource_provider_generation": p.Generation})
	return nil
}

// inventoryBody is one inventory in a request; pointers tell unset from 0.
type inventoryBody struct {
	ResourceClass   string   `json:"resource_class,omitempty"`
	Generation      *int64   `json:"resource_provider_generation,omitempty"`
	Total           *int64   `json:"total"`
	Reserved        *int64   `json:"reserved"`
	MinUnit         *int64   `json:"min_unit"`
	MaxUnit         *int64   `json:"max_unit"`
	StepSize        *int64   `json:"step_size"`
	AllocationRatio *float64 `json:"allocation_ratio"`
}

func (b inventoryBody) inventory(rc string) (Inventory, error) {
	if b.Total == nil {
		return Inventory{}, api.BadRequest("JSON does not validate: 'total' is a required property of the inventory of %s.", rc)
	}
	i := Inventory{Total: *b.Total, MinUnit: 1, MaxUnit: 2147483647, StepSize: 1, AllocationRatio: 1.0}
	if b.Reserved != nil {
		i.Reserved = *b.Reserved
	}
	if b.MinUnit != nil {
		i.MinUnit = *b.MinUnit
	}
	if b.MaxUnit != nil {
		i.MaxUnit = *b.MaxUnit
	}
	if b.StepSize != nil {
		i.StepSize = *b.StepSize
	}
	if b.AllocationRatio != nil {
		i.AllocationRatio = *b.AllocationRatio
	}
	return i, validateInventory(rc, i)
}

func (s *Service) knownClass(r *http.Request, rc string) error {
	if contains(standardClasses, rc) {
		return nil
	}
	var n int
	if err := s.db.QueryRowContext(r.Context(), `SELECT count(*) FROM placement_custom_classes WHERE name=?`, rc).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return api.BadRequest("Unknown resource class in inventory for resource provider: %s", rc)
	}
	return nil
}

func (s *Service) writeInventories(w http.ResponseWriter, r *http.Request, id string, gen int64, inv map[string]Inventory, replace bool, status int) error {
	for rc := range inv {
		if err := s.knownClass(r, rc); err != nil {
			return err
		}
	}
	ctx := r.Context()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProvider(ctx, tx, id); err != nil {
			return err
		}
		var err error
		gen, err = setInventories(ctx, tx, id, gen, inv, replace)
		return err
	})
	if err != nil {
		return err
	}
	if len(inv) == 1 && !replace {
		for _, i := range inv {
			m := inventoryView(i)
			m["resource_provider_generation"] = gen
			api.WriteJSON(w, status, m)
		}
		return nil
	}
	out := map[string]any{}
	for rc, i := range inv {
		out[rc] = inventoryView(i)
	}
	api.WriteJSON(w, status, map[string]any{"inventories": out, "resource_provider_generation": gen})
	return nil
}

func (s *Service) handleSetInventories(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b struct {
		Generation  *int64                   `json:"resource_provider_generation"`
		Inventories map[string]inventoryBody `json:"inventories"`
	}
	if err := decode(r, &b); err != nil {
		return err
	}
	if b.Generation == nil || b.Inventories == nil {
		return api.BadRequest("JSON does not validate: 'resource_provider_generation' and 'inventories' are required properties.")
	}
	inv := map[string]Inventory{}
	for rc, ib := range b.Inventories {
		i, err := ib.inventory(rc)
		if err != nil {
			return err
		}
		inv[rc] = i
	}
	return s.writeInventories(w, r, r.PathValue("uuid"), *b.Generation, inv, true, http.StatusOK)
}

func (s *Service) handleAddInventory(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b inventoryBody
	if err := decode(r, &b); err != nil {
		return err
	}
	if b.ResourceClass == "" || b.Generation == nil {
		return api.BadRequest("JSON does not validate: 'resource_class' and 'resource_provider_generation' are required properties.")
	}
	i, err := b.inventory(b.ResourceClass)
	if err != nil {
		return err
	}
	id := r.PathValue("uuid")
	cur, err := s.Inventories(r.Context(), id)
	if err != nil {
		return err
	}
	if _, ok := cur[b.ResourceClass]; ok {
		return conflict(codeUndefined, "Update conflict: Inventory for requested resource class %s already exists.", b.ResourceClass)
	}
	w.Header().Set("Location", "/placement/resource_providers/"+id+"/inventories/"+b.ResourceClass)
	return s.writeInventories(w, r, id, *b.Generation, map[string]Inventory{b.ResourceClass: i}, false, http.StatusCreated)
}

func (s *Service) handleShowInventory(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id, rc := r.PathValue("uuid"), r.PathValue("rc")
	p, err := s.getProvider(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	inv, err := inventories(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	i, ok := inv[rc]
	if !ok {
		return api.NotFound("No inventory of class %s for %s", rc, id)
	}
	m := inventoryView(i)
	m["resource_provider_generation"] = p.Generation
	api.WriteJSON(w, http.StatusOK, m)
	return nil
}

func (s *Service) handleUpdateInventory(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b inventoryBody
	if err := decode(r, &b); err != nil {
		return err
	}
	rc := r.PathValue("rc")
	if b.Generation == nil {
		return api.BadRequest("JSON does not validate: 'resource_provider_generation' is a required property.")
	}
	i, err := b.inventory(rc)
	if err != nil {
		return err
	}
	id := r.PathValue("uuid")
	inv, err := s.Inventories(r.Context(), id)
	if err != nil {
		return err
	}
	if _, ok := inv[rc]; !ok && !v.AtLeast(1, 26) {
		return api.BadRequest("No inventory record with resource class for resource provider %s", id)
	}
	used, err := s.Usages(r.Context(), id)
	if err != nil {
		return err
	}
	if used[rc] > i.Capacity() {
		return conflict(codeInventoryInUse, "Unable to update inventory for resource provider %s: Invalid inventory for '%s': usage %d exceeds the new capacity.", id, rc, used[rc])
	}
	return s.writeInventories(w, r, id, *b.Generation, map[string]Inventory{rc: i}, false, http.StatusOK)
}

func (s *Service) handleDeleteInventory(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id, rc := r.PathValue("uuid"), r.PathValue("rc")
	ctx := r.Context()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProvider(ctx, tx, id); err != nil {
			return err
		}
		used, err := usages(ctx, tx, id)
		if err != nil {
			return err
		}
		if used[rc] > 0 {
			return conflict(codeInventoryInUse, "Inventory for '%s' on resource provider '%s' in use.", rc, id)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM placement_inventories WHERE provider_uuid=? AND resource_class=?`, id, rc)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return api.NotFound("No inventory of class %s found for delete", rc)
		}
		_, err = bump(ctx, tx, id, -1)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleDeleteInventories(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 5) {
		return api.Errorf(http.StatusMethodNotAllowed, "The method DELETE is not allowed for this resource.")
	}
	ctx := r.Context()
	id := r.PathValue("uuid")
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProvider(ctx, tx, id); err != nil {
			return err
		}
		_, err := setInventories(ctx, tx, id, -1, map[string]Inventory{}, true)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleProviderUsages(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id := r.PathValue("uuid")
	p, err := s.getProvider(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	u, err := usages(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	inv, err := inventories(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	for rc := range inv {
		if _, ok := u[rc]; !ok {
			u[rc] = 0
		}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"usages": u, "resource_provider_generation": p.Generation})
	return nil
}

func (s *Service) handleProviderAllocations(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id := r.PathValue("uuid")
	p, err := s.getProvider(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	rows, err := s.db.QueryContext(r.Context(), `SELECT consumer_id, resource_class, used FROM placement_allocations WHERE provider_uuid=?`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	out := map[string]map[string]map[string]int64{}
	for rows.Next() {
		var c, rc string
		var n int64
		if err := rows.Scan(&c, &rc, &n); err != nil {
			return err
		}
		if out[c] == nil {
			out[c] = map[string]map[string]int64{"resources": {}}
		}
		out[c]["resources"][rc] = n
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"allocations": out, "resource_provider_generation": p.Generation})
	return nil
}

func (s *Service) handleProviderTraits(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 6) {
		return api.NotFound("The resource could not be found.")
	}
	id := r.PathValue("uuid")
	p, err := s.getProvider(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	t, err := providerTraits(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"traits": t, "resource_provider_generation": p.Generation})
	return nil
}

func (s *Service) handleSetProviderTraits(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 6) {
		return api.NotFound("The resource could not be found.")
	}
	var b struct {
		Generation *int64   `json:"resource_provider_generation"`
		Traits     []string `json:"traits"`
	}
	if err := decode(r, &b); err != nil {
		return err
	}
	if b.Generation == nil || b.Traits == nil {
		return api.BadRequest("JSON does not validate: 'resource_provider_generation' and 'traits' are required properties.")
	}
	ctx := r.Context()
	var missing []string
	for _, t := range b.Traits {
		ok, err := s.traitExists(ctx, t)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return api.BadRequest("No such trait(s): %s", strings.Join(missing, ", "))
	}
	id := r.PathValue("uuid")
	var gen int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProvider(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placement_provider_traits WHERE provider_uuid=?`, id); err != nil {
			return err
		}
		for _, t := range b.Traits {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO placement_provider_traits(provider_uuid, trait) VALUES (?, ?)`, id, t); err != nil {
				return err
			}
		}
		var err error
		gen, err = bump(ctx, tx, id, *b.Generation)
		return err
	})
	if err != nil {
		return err
	}
	t := append([]string{}, b.Traits...)
	sort.Strings(t)
	api.WriteJSON(w, http.StatusOK, map[string]any{"traits": t, "resource_provider_generation": gen})
	return nil
}

func (s *Service) handleDeleteProviderTraits(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 6) {
		return api.NotFound("The resource could not be found.")
	}
	ctx := r.Context()
	id := r.PathValue("uuid")
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProvider(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placement_provider_traits WHERE provider_uuid=?`, id); err != nil {
			return err
		}
		_, err := bump(ctx, tx, id, -1)
		return err
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleProviderAggregates(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 1) {
		return api.NotFound("The resource could not be found.")
	}
	id := r.PathValue("uuid")
	p, err := s.getProvider(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	a, err := providerAggregates(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	out := map[string]any{"aggregates": a}
	if v.AtLeast(1, 19) {
		out["resource_provider_generation"] = p.Generation
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) handleSetProviderAggregates(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 1) {
		return api.NotFound("The resource could not be found.")
	}
	body, err := api.ReadBody(r, api.MaxBody)
	if err != nil {
		return err
	}
	var aggs []string
	gen := int64(-1)
	if v.AtLeast(1, 19) {
		var b struct {
			Aggregates []string `json:"aggregates"`
			Generation *int64   `json:"resource_provider_generation"`
		}
		if err := api.Unmarshal(body, &b); err != nil {
			return err
		}
		if b.Aggregates == nil || b.Generation == nil {
			return api.BadRequest("JSON does not validate: 'aggregates' and 'resource_provider_generation' are required properties.")
		}
		aggs, gen = b.Aggregates, *b.Generation
	} else if err := api.Unmarshal(body, &aggs); err != nil {
		return err
	}
	for _, a := range aggs {
		if !validUUID(a) {
			return api.BadRequest("JSON does not validate: '%s' is not a 'uuid'.", a)
		}
	}
	ctx := r.Context()
	id := r.PathValue("uuid")
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProvider(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placement_provider_aggregates WHERE provider_uuid=?`, id); err != nil {
			return err
		}
		for _, a := range aggs {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO placement_provider_aggregates(provider_uuid, aggregate_uuid) VALUES (?, ?)`, id, a); err != nil {
				return err
			}
		}
		var err error
		gen, err = bump(ctx, tx, id, gen)
		return err
	})
	if err != nil {
		return err
	}
	if aggs == nil {
		aggs = []string{}
	}
	sort.Strings(aggs)
	out := map[string]any{"aggregates": aggs}
	if v.AtLeast(1, 19) {
		out["resource_provider_generation"] = gen
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}
