package placement

import (
	"context"
	"database/sql"
	"sort"
	"strings"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/store"
)

const providerCols = `uuid, name, generation, coalesce(parent_uuid, ''), root_uuid, created_at, updated_at`

func scanProvider(row interface{ Scan(...any) error }) (Provider, error) {
	var p Provider
	var c, u string
	err := row.Scan(&p.UUID, &p.Name, &p.Generation, &p.ParentUUID, &p.RootUUID, &c, &u)
	p.CreatedAt, p.UpdatedAt = parseTime(c), parseTime(u)
	return p, store.Translate(err)
}

func providerNotFound(id string) error {
	return api.NotFound("No resource provider with uuid %s found", id)
}

func (s *Service) getProvider(ctx context.Context, q queryer, id string) (Provider, error) {
	p, err := scanProvider(q.QueryRowContext(ctx, `SELECT `+providerCols+` FROM placement_providers WHERE uuid=?`, id))
	if api.IsNotFound(err) {
		return p, providerNotFound(id)
	}
	return p, err
}

// GetProvider returns a provider by uuid.
func (s *Service) GetProvider(ctx context.Context, id string) (Provider, error) {
	return s.getProvider(ctx, s.db, id)
}

// ProviderByName returns a provider by name (a host's provider is named
// for the host).
func (s *Service) ProviderByName(ctx context.Context, name string) (Provider, error) {
	p, err := scanProvider(s.db.QueryRowContext(ctx, `SELECT `+providerCols+` FROM placement_providers WHERE name=?`, name))
	if api.IsNotFound(err) {
		return p, api.NotFound("No resource provider with name %s found", name)
	}
	return p, err
}

func (s *Service) createProvider(ctx context.Context, tx *sql.Tx, p Provider) (Provider, error) {
	if p.UUID == "" {
		p.UUID = newUUID()
	}
	p.RootUUID = p.UUID
	if p.ParentUUID != "" {
		parent, err := s.getProvider(ctx, tx, p.ParentUUID)
		if err != nil {
			return p, api.BadRequest("parent provider UUID %s does not exist.", p.ParentUUID)
		}
		p.RootUUID = parent.RootUUID
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM placement_providers WHERE name=?`, p.Name).Scan(&n); err != nil {
		return p, err
	}
	if n > 0 {
		return p, conflict(codeDuplicateName, "Conflicting resource provider name: %s already exists.", p.Name)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM placement_providers WHERE uuid=?`, p.UUID).Scan(&n); err != nil {
		return p, err
	}
	if n > 0 {
		return p, conflict(codeUndefined, "Conflicting resource provider uuid: %s already exists.", p.UUID)
	}
	now := nowText()
	_, err := tx.ExecContext(ctx, `INSERT INTO placement_providers(uuid, name, generation, parent_uuid, root_uuid, created_at, updated_at)
		VALUES (?, ?, 0, nullif(?, ''), ?, ?, ?)`, p.UUID, p.Name, p.ParentUUID, p.RootUUID, now, now)
	if err != nil {
		return p, err
	}
	return s.getProvider(ctx, tx, p.UUID)
}

// bump increments a provider's generation if it still is gen (gen < 0:
// unconditionally); a stale generation is placement's 409.
func bump(ctx context.Context, tx *sql.Tx, id string, gen int64) (int64, error) {
	var res sql.Result
	var err error
	if gen < 0 {
		res, err = tx.ExecContext(ctx, `UPDATE placement_providers SET generation=generation+1, updated_at=? WHERE uuid=?`, nowText(), id)
	} else {
		res, err = tx.ExecContext(ctx, `UPDATE placement_providers SET generation=generation+1, updated_at=? WHERE uuid=? AND generation=?`, nowText(), id, gen)
	}
	if err != nil {
		return 0, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, conflict(codeConcurrentUpdate, "resource provider generation conflict")
	}
	var g int64
	err = tx.QueryRowContext(ctx, `SELECT generation FROM placement_providers WHERE uuid=?`, id).Scan(&g)
	return g, err
}

// EnsureProvider makes (or updates) the resource provider named for host
// with the given inventory, as a compute host does when it registers: a
// class missing from inv is left alone, so it never fails for allocations
// that exist. It returns the provider's uuid.
func (s *Service) EnsureProvider(ctx context.Context, host string, inv map[string]Inventory) (string, error) {
	var id string
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT uuid FROM placement_providers WHERE name=?`, host).Scan(&id)
		if err == sql.ErrNoRows {
			p, err := s.createProvider(ctx, tx, Provider{Name: host})
			if err != nil {
				return err
			}
			id = p.UUID
		} else if err != nil {
			return err
		}
		cur, err := inventories(ctx, tx, id)
		if err != nil {
			return err
		}
		changed := false
		for rc, i := range inv {
			i = i.withDefaults()
			if c, ok := cur[rc]; ok && c == i {
				continue
			}
			changed = true
			if err := putInventory(ctx, tx, id, rc, i); err != nil {
				return err
			}
		}
		if changed {
			_, err = bump(ctx, tx, id, -1)
		}
		return err
	})
	return id, err
}

func inventories(ctx context.Context, q queryer, id string) (map[string]Inventory, error) {
	rows, err := q.QueryContext(ctx, `SELECT resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio
		FROM placement_inventories WHERE provider_uuid=?`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Inventory{}
	for rows.Next() {
		var rc string
		var i Inventory
		if err := rows.Scan(&rc, &i.Total, &i.Reserved, &i.MinUnit, &i.MaxUnit, &i.StepSize, &i.AllocationRatio); err != nil {
			return nil, err
		}
		out[rc] = i
	}
	return out, rows.Err()
}

// Inventories returns a provider's inventory by resource class.
func (s *Service) Inventories(ctx context.Context, id string) (map[string]Inventory, error) {
	if _, err := s.getProvider(ctx, s.db, id); err != nil {
		return nil, err
	}
	return inventories(ctx, s.db, id)
}

func putInventory(ctx context.Context, tx *sql.Tx, id, rc string, i Inventory) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO placement_inventories(provider_uuid, resource_class, total, reserved, min_unit, max_unit, step_size, allocation_ratio)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(provider_uuid, resource_class) DO UPDATE SET
		total=excluded.total, reserved=excluded.reserved, min_unit=excluded.min_unit, max_unit=excluded.max_unit,
		step_size=excluded.step_size, allocation_ratio=excluded.allocation_ratio`,
		id, rc, i.Total, i.Reserved, i.MinUnit, i.MaxUnit, i.StepSize, i.AllocationRatio)
	return err
}

func validateInventory(rc string, i Inventory) error {
	switch {
	case i.Total < 1:
		return api.BadRequest("Unable to update inventory for resource provider: %s total must be at least 1.", rc)
	case i.Reserved < 0 || i.Reserved > i.Total:
		return api.BadRequest("Unable to update inventory: reserved %d of %s is not between 0 and total %d.", i.Reserved, rc, i.Total)
	case i.MinUnit < 1 || i.MaxUnit < 1 || i.StepSize < 1:
		return api.BadRequest("Unable to update inventory of %s: min_unit, max_unit and step_size must be at least 1.", rc)
	case i.MinUnit > i.MaxUnit:
		return api.BadRequest("Unable to update inventory of %s: min_unit %d is greater than max_unit %d.", rc, i.MinUnit, i.MaxUnit)
	case i.AllocationRatio <= 0:
		return api.BadRequest("Unable to update inventory of %s: allocation_ratio must be greater than 0.", rc)
	}
	return nil
}

// usages sums the allocations against a provider by class.
func usages(ctx context.Context, q queryer, id string) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT resource_class, sum(used) FROM placement_allocations WHERE provider_uuid=? GROUP BY resource_class`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var rc string
		var n int64
		if err := rows.Scan(&rc, &n); err != nil {
			return nil, err
		}
		out[rc] = n
	}
	return out, rows.Err()
}

// Usages returns what is allocated against a provider by class.
func (s *Service) Usages(ctx context.Context, id string) (map[string]int64, error) {
	if _, err := s.getProvider(ctx, s.db, id); err != nil {
		return nil, err
	}
	return usages(ctx, s.db, id)
}

// setInventories replaces a provider's whole inventory, refusing to drop
// or shrink below a class in use.
func setInventories(ctx context.Context, tx *sql.Tx, id string, gen int64, inv map[string]Inventory, replace bool) (int64, error) {
	used, err := usages(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	if replace {
		cur, err := inventories(ctx, tx, id)
		if err != nil {
			return 0, err
		}
		for rc := range cur {
			if _, keep := inv[rc]; keep {
				continue
			}
			if used[rc] > 0 {
				return 0, conflict(codeInventoryInUse, "Inventory for '%s' on resource provider '%s' in use.", rc, id)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM placement_inventories WHERE provider_uuid=? AND resource_class=?`, id, rc); err != nil {
				return 0, err
			}
		}
	}
	for rc, i := range inv {
		if err := putInventory(ctx, tx, id, rc, i); err != nil {
			return 0, err
		}
	}
	return bump(ctx, tx, id, gen)
}

// Claim is a request to place one consumer's resources on one provider.
type Claim struct {
	ConsumerID, ProjectID, UserID string
	Resources                     map[string]int64
	// Hosts, if not empty, are the only provider names that may be picked
	// (affinity, a forced host); Avoid are names that may not (anti-affinity).
	Hosts, Avoid []string
	// Required traits the provider must have.
	Required []string
}

// Claim picks the provider with the most free memory that can hold the
// request and records the consumer's allocations against it, all in one
// transaction: however many claims run at once, no provider is given more
// than its inventory allows. It returns the provider's name (the host),
// or ErrNoValidHost.
func (s *Service) Claim(ctx context.Context, c Claim) (string, error) {
	var host string
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		cands, err := s.candidates(ctx, tx, c.Resources, c.Required)
		if err != nil {
			return err
		}
		var best *candidate
		for i := range cands {
			cd := &cands[i]
			if len(c.Hosts) > 0 && !contains(c.Hosts, cd.p.Name) || contains(c.Avoid, cd.p.Name) {
				continue
			}
			if best == nil || cd.free(MemoryMB) > best.free(MemoryMB) {
				best = cd
			}
		}
		if best == nil {
			return ErrNoValidHost
		}
		if err := writeConsumer(ctx, tx, c.ConsumerID, c.ProjectID, c.UserID, "INSTANCE", -2); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placement_allocations WHERE consumer_id=?`, c.ConsumerID); err != nil {
			return err
		}
		for rc, n := range c.Resources {
			if n == 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO placement_allocations(consumer_id, provider_uuid, resource_class, used) VALUES (?, ?, ?, ?)`,
				c.ConsumerID, best.p.UUID, rc, n); err != nil {
				return err
			}
		}
		host = best.p.Name
		_, err = bump(ctx, tx, best.p.UUID, -1)
		return err
	})
	return host, err
}

// Release deletes a consumer's allocations (and the consumer); a consumer
// without allocations is not an error.
func (s *Service) Release(ctx context.Context, consumerID string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return deleteConsumer(ctx, tx, consumerID) })
}

func deleteConsumer(ctx context.Context, tx *sql.Tx, id string) error {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT provider_uuid FROM placement_allocations WHERE consumer_id=?`, id)
	if err != nil {
		return err
	}
	var provs []string
	for rows.Next() {
		var p string
		rows.Scan(&p)
		provs = append(provs, p)
	}
	rows.Close()
	if _, err := tx.ExecContext(ctx, `DELETE FROM placement_consumers WHERE id=?`, id); err != nil {
		return err
	}
	for _, p := range provs {
		if _, err := bump(ctx, tx, p, -1); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type candidate struct {
	p     Provider
	inv   map[string]Inventory
	used  map[string]int64
	trait []string
}

func (c *candidate) free(rc string) int64 { return c.inv[rc].Capacity() - c.used[rc] }

// fits reports whether n more of rc can be allocated.
func (c *candidate) fits(rc string, n int64) bool {
	i, ok := c.inv[rc]
	if !ok {
		return false
	}
	return n >= i.MinUnit && n <= i.MaxUnit && n%i.StepSize == 0 && c.used[rc]+n <= i.Capacity()
}

// candidates returns the providers that can hold want and have the
// required traits, each with its inventory and usage.
func (s *Service) candidates(ctx context.Context, q queryer, want map[string]int64, required []string) ([]candidate, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+providerCols+` FROM placement_providers ORDER BY created_at, uuid`)
	if err != nil {
		return nil, err
	}
	var all []Provider
	for rows.Next() {
		p, err := scanProvider(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, p)
	}
	rows.Close()
	var out []candidate
next:
	for _, p := range all {
		c := candidate{p: p}
		if c.inv, err = inventories(ctx, q, p.UUID); err != nil {
			return nil, err
		}
		if c.used, err = usages(ctx, q, p.UUID); err != nil {
			return nil, err
		}
		for rc, n := range want {
			if n > 0 && !c.fits(rc, n) {
				continue next
			}
		}
		if c.trait, err = providerTraits(ctx, q, p.UUID); err != nil {
			return nil, err
		}
		for _, t := range required {
			forbidden := strings.HasPrefix(t, "!")
			if contains(c.trait, strings.TrimPrefix(t, "!")) == forbidden {
				continue next
			}
		}
		out = append(out, c)
	}
	return out, nil
}

func providerTraits(ctx context.Context, q queryer, id string) ([]string, error) {
	return strings_(ctx, q, `SELECT trait FROM placement_provider_traits WHERE provider_uuid=? ORDER BY trait`, id)
}

func providerAggregates(ctx context.Context, q queryer, id string) ([]string, error) {
	return strings_(ctx, q, `SELECT aggregate_uuid FROM placement_provider_aggregates WHERE provider_uuid=? ORDER BY aggregate_uuid`, id)
}

func strings_(ctx context.Context, q queryer, query string, args ...any) ([]string, error) {
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

// writeConsumer creates or updates a consumer; gen -2 skips the
// generation check, -1 means "expected not to exist" (null in the API).
func writeConsumer(ctx context.Context, tx *sql.Tx, id, project, user, typ string, gen int64) error {
	var cur int64
	err := tx.QueryRowContext(ctx, `SELECT generation FROM placement_consumers WHERE id=?`, id).Scan(&cur)
	now := nowText()
	switch {
	case err == sql.ErrNoRows:
		if gen >= 0 {
			return conflict(codeConcurrentUpdate, "consumer generation conflict - expected %d but got None", gen)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO placement_consumers(id, project_id, user_id, consumer_type, generation, created_at, updated_at)
			VALUES (?, ?, ?, ?, 0, ?, ?)`, id, project, user, typ, now, now)
		return err
	case err != nil:
		return err
	}
	if gen == -1 {
		return conflict(codeConcurrentUpdate, "consumer generation conflict - expected null but got %d", cur)
	}
	if gen >= 0 && gen != cur {
		return conflict(codeConcurrentUpdate, "consumer generation conflict - expected %d but got %d", gen, cur)
	}
	_, err = tx.ExecContext(ctx, `UPDATE placement_consumers SET project_id=?, user_id=?, consumer_type=?, generation=generation+1, updated_at=? WHERE id=?`,
		project, user, typ, now, id)
	return err
}

// Allocation is what one consumer holds on one provider.
type Allocation struct {
	Provider  string
	Resources map[string]int64
}

// ConsumerAllocations returns a consumer's allocations by provider uuid,
// with its project, user, type and generation.
type ConsumerAllocations struct {
	ID, ProjectID, UserID, Type string
	Generation                  int64
	Exists                      bool
	ByProvider                  map[string]map[string]int64
	ProviderGens                map[string]int64
}

func getConsumer(ctx context.Context, q queryer, id string) (ConsumerAllocations, error) {
	ca := ConsumerAllocations{ID: id, ByProvider: map[string]map[string]int64{}, ProviderGens: map[string]int64{}}
	err := q.QueryRowContext(ctx, `SELECT project_id, user_id, consumer_type, generation FROM placement_consumers WHERE id=?`, id).
		Scan(&ca.ProjectID, &ca.UserID, &ca.Type, &ca.Generation)
	if err == sql.ErrNoRows {
		return ca, nil
	}
	if err != nil {
		return ca, err
	}
	ca.Exists = true
	rows, err := q.QueryContext(ctx, `SELECT a.provider_uuid, a.resource_class, a.used, p.generation FROM placement_allocations a
		JOIN placement_providers p ON p.uuid=a.provider_uuid WHERE a.consumer_id=?`, id)
	if err != nil {
		return ca, err
	}
	defer rows.Close()
	for rows.Next() {
		var p, rc string
		var n, g int64
		if err := rows.Scan(&p, &rc, &n, &g); err != nil {
			return ca, err
		}
		if ca.ByProvider[p] == nil {
			ca.ByProvider[p] = map[string]int64{}
		}
		ca.ByProvider[p][rc] = n
		ca.ProviderGens[p] = g
	}
	return ca, rows.Err()
}

// Consumer returns a consumer's allocations.
func (s *Service) Consumer(ctx context.Context, id string) (ConsumerAllocations, error) {
	return getConsumer(ctx, s.db, id)
}

// replaceAllocations sets a consumer's allocations (empty: removes them),
// checking every provider's capacity inside the transaction.
func replaceAllocations(ctx context.Context, tx *sql.Tx, id, project, user, typ string, gen int64, alloc map[string]map[string]int64) error {
	old, err := getConsumer(ctx, tx, id)
	if err != nil {
		return err
	}
	if len(alloc) == 0 {
		if gen >= 0 && old.Exists && old.Generation != gen {
			return conflict(codeConcurrentUpdate, "consumer generation conflict - expected %d but got %d", gen, old.Generation)
		}
		return deleteConsumer(ctx, tx, id)
	}
	if err := writeConsumer(ctx, tx, id, project, user, typ, gen); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM placement_allocations WHERE consumer_id=?`, id); err != nil {
		return err
	}
	touched := map[string]bool{}
	for p := range old.ByProvider {
		touched[p] = true
	}
	provs := make([]string, 0, len(alloc))
	for p := range alloc {
		provs = append(provs, p)
	}
	sort.Strings(provs)
	for _, p := range provs {
		touched[p] = true
		if _, err := getProviderTx(ctx, tx, p); err != nil {
			return api.BadRequest("Allocation for resource provider '%s' that does not exist.", p)
		}
		inv, err := inventories(ctx, tx, p)
		if err != nil {
			return err
		}
		used, err := usages(ctx, tx, p)
		if err != nil {
			return err
		}
		c := candidate{inv: inv, used: used}
		for rc, n := range alloc[p] {
			i, ok := inv[rc]
			if !ok {
				return api.BadRequest("Unable to allocate inventory: Inventory for '%s' on resource provider '%s' invalid.", rc, p)
			}
			if n < i.MinUnit || n > i.MaxUnit || n%i.StepSize != 0 {
				return api.BadRequest("Unable to allocate inventory: Unable to create allocation for '%s' on resource provider '%s'. The requested amount would violate inventory constraints.", rc, p)
			}
			if !c.fits(rc, n) {
				return conflict(codeUndefined, "Unable to allocate inventory: Unable to create allocation for '%s' on resource provider '%s'. The requested amount would exceed the capacity.", rc, p)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO placement_allocations(consumer_id, provider_uuid, resource_class, used) VALUES (?, ?, ?, ?)`,
				id, p, rc, n); err != nil {
				return err
			}
		}
	}
	for p := range touched {
		if _, err := bump(ctx, tx, p, -1); err != nil {
			return err
		}
	}
	return nil
}

func getProviderTx(ctx context.Context, tx *sql.Tx, id string) (Provider, error) {
	return scanProvider(tx.QueryRowContext(ctx, `SELECT `+providerCols+` FROM placement_providers WHERE uuid=?`, id))
}

// deleteProvider removes a provider that has no allocations and no children.
func (s *Service) deleteProvider(ctx context.Context, id string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProvider(ctx, tx, id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM placement_allocations WHERE provider_uuid=?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(codeInventoryInUse, "Unable to delete resource provider %s: Resource provider has allocations.", id)
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM placement_providers WHERE parent_uuid=?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict("placement.resource_provider.cannot_delete_parent", "Unable to delete parent resource provider %s: It has child resource providers.", id)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM placement_providers WHERE uuid=?`, id)
		return err
	})
}
