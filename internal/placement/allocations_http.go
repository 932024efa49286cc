package placement

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

func (s *Service) handleGetAllocations(w http.ResponseWriter, r *http.Request, v api.Version) error {
	ca, err := getConsumer(r.Context(), s.db, r.PathValue("consumer"))
	if err != nil {
		return err
	}
	allocs := map[string]any{}
	for p, res := range ca.ByProvider {
		allocs[p] = map[string]any{"generation": ca.ProviderGens[p], "resources": res}
	}
	out := map[string]any{"allocations": allocs}
	if ca.Exists && len(ca.ByProvider) > 0 {
		if v.AtLeast(1, 12) {
			out["project_id"], out["user_id"] = ca.ProjectID, ca.UserID
		}
		if v.AtLeast(1, 28) {
			out["consumer_generation"] = ca.Generation
		}
		if v.AtLeast(1, 38) {
			out["consumer_type"] = ca.Type
		}
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

// allocationBody is one consumer's allocations in a PUT or POST, in the
// dict format of 1.12+ (the list format of older versions is converted).
type allocationBody struct {
	Allocations json.RawMessage `json:"allocations"`
	ProjectID   string          `json:"project_id"`
	UserID      string          `json:"user_id"`
	// ConsumerGeneration is null for a new consumer (1.28+).
	ConsumerGeneration json.RawMessage `json:"consumer_generation"`
	ConsumerType       string          `json:"consumer_type"`
	Mappings           json.RawMessage `json:"mappings"`
}

func (b allocationBody) parse(v api.Version) (map[string]map[string]int64, int64, error) {
	out := map[string]map[string]int64{}
	if len(b.Allocations) == 0 {
		return nil, 0, api.BadRequest("JSON does not validate: 'allocations' is a required property.")
	}
	if v.AtLeast(1, 12) {
		var m map[string]struct {
			Resources  map[string]int64 `json:"resources"`
			Generation *int64           `json:"generation"`
		}
		if err := api.Unmarshal(b.Allocations, &m); err != nil {
			return nil, 0, err
		}
		for p, a := range m {
			if len(a.Resources) == 0 {
				return nil, 0, api.BadRequest("JSON does not validate: 'resources' of provider %s must not be empty.", p)
			}
			out[p] = a.Resources
		}
	} else {
		var l []struct {
			Provider struct {
				UUID string `json:"uuid"`
			} `json:"resource_provider"`
			Resources map[string]int64 `json:"resources"`
		}
		if err := api.Unmarshal(b.Allocations, &l); err != nil {
			return nil, 0, err
		}
		if len(l) == 0 {
			return nil, 0, api.BadRequest("JSON does not validate: [] is too short.")
		}
		for _, a := range l {
			out[a.Provider.UUID] = a.Resources
		}
	}
	for p, res := range out {
		for rc, n := range res {
			if n < 1 {
				return nil, 0, api.BadRequest("JSON does not validate: %d of %s on %s is less than the minimum of 1.", n, rc, p)
			}
		}
	}
	if v.AtLeast(1, 8) && (b.ProjectID == "" || b.UserID == "") {
		return nil, 0, api.BadRequest("JSON does not validate: 'project_id' and 'user_id' are required properties.")
	}
	gen := int64(-2)
	if v.AtLeast(1, 28) {
		if len(b.ConsumerGeneration) == 0 {
			return nil, 0, api.BadRequest("JSON does not validate: 'consumer_generation' is a required property.")
		}
		if string(b.ConsumerGeneration) == "null" {
			gen = -1
		} else if g, err := strconv.ParseInt(string(b.ConsumerGeneration), 10, 64); err == nil && g >= 0 {
			gen = g
		} else {
			return nil, 0, api.BadRequest("JSON does not validate: consumer_generation must be an integer or null.")
		}
	}
	if v.AtLeast(1, 38) && b.ConsumerType == "" {
		return nil, 0, api.BadRequest("JSON does not validate: 'consumer_type' is a required property.")
	}
	return out, gen, nil
}

func (s *Service) handlePutAllocations(w http.ResponseWriter, r *http.Request, v api.Version) error {
	var b allocationBody
	if err := decode(r, &b); err != nil {
		return err
	}
	alloc, gen, err := b.parse(v)
	if err != nil {
		return err
	}
	if !v.AtLeast(1, 12) && len(alloc) == 0 {
		return api.BadRequest("JSON does not validate: allocations must not be empty.")
	}
	typ := b.ConsumerType
	if typ == "" {
		typ = "INSTANCE"
	}
	id := r.PathValue("consumer")
	if !validUUID(id) {
		return api.BadRequest("Malformed consumer_uuid: %s", id)
	}
	ctx := r.Context()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		return replaceAllocations(ctx, tx, id, b.ProjectID, b.UserID, typ, gen, alloc)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handlePostAllocations(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 13) {
		return api.Errorf(http.StatusMethodNotAllowed, "The method POST is not allowed for this resource.")
	}
	var b map[string]allocationBody
	if err := decode(r, &b); err != nil {
		return err
	}
	type one struct {
		id    string
		alloc map[string]map[string]int64
		gen   int64
		body  allocationBody
	}
	var all []one
	for id, ab := range b {
		alloc, gen, err := ab.parse(v)
		if err != nil {
			return err
		}
		all = append(all, one{id, alloc, gen, ab})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	ctx := r.Context()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, o := range all {
			typ := o.body.ConsumerType
			if typ == "" {
				typ = "INSTANCE"
			}
			if err := replaceAllocations(ctx, tx, o.id, o.body.ProjectID, o.body.UserID, typ, o.gen, o.alloc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleDeleteAllocations(w http.ResponseWriter, r *http.Request, v api.Version) error {
	id := r.PathValue("consumer")
	ctx := r.Context()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		ca, err := getConsumer(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(ca.ByProvider) == 0 {
			return api.NotFound("No allocations for consumer '%s'", id)
		}
		return deleteConsumer(ctx, tx, id)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) handleUsages(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 9) {
		return api.NotFound("The resource could not be found.")
	}
	q := r.URL.Query()
	project := q.Get("project_id")
	if project == "" {
		return api.BadRequest("Invalid query string parameters: 'project_id' is a required property.")
	}
	query := `SELECT c.consumer_type, c.id, a.resource_class, a.used FROM placement_allocations a
		JOIN placement_consumers c ON c.id=a.consumer_id WHERE c.project_id=?`
	args := []any{project}
	if u := q.Get("user_id"); u != "" {
		query += ` AND c.user_id=?`
		args = append(args, u)
	}
	if t := q.Get("consumer_type"); t != "" && t != "all" && v.AtLeast(1, 38) {
		query += ` AND c.consumer_type=?`
		args = append(args, t)
	}
	rows, err := s.db.QueryContext(r.Context(), query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	total := map[string]int64{}
	byType := map[string]map[string]int64{}
	consumers := map[string]map[string]bool{}
	for rows.Next() {
		var typ, c, rc string
		var n int64
		if err := rows.Scan(&typ, &c, &rc, &n); err != nil {
			return err
		}
		total[rc] += n
		if byType[typ] == nil {
			byType[typ], consumers[typ] = map[string]int64{}, map[string]bool{}
		}
		byType[typ][rc] += n
		consumers[typ][c] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if !v.AtLeast(1, 38) {
		api.WriteJSON(w, http.StatusOK, map[string]any{"usages": total})
		return nil
	}
	out := map[string]any{}
	all := map[string]any{"consumer_count": 0}
	count := 0
	for typ, m := range byType {
		e := map[string]any{"consumer_count": len(consumers[typ])}
		for rc, n := range m {
			e[rc] = n
		}
		out[typ] = e
		count += len(consumers[typ])
	}
	for rc, n := range total {
		all[rc] = n
	}
	all["consumer_count"] = count
	out["all"] = all
	api.WriteJSON(w, http.StatusOK, map[string]any{"usages": out})
	return nil
}

func (s *Service) handleAllocationCandidates(w http.ResponseWriter, r *http.Request, v api.Version) error {
	if !v.AtLeast(1, 10) {
		return api.NotFound("The resource could not be found.")
	}
	q := r.URL.Query()
	res := q.Get("resources")
	if res == "" {
		return api.BadRequest("Invalid query string parameters: 'resources' is a required property.")
	}
	want, err := parseResources(res)
	if err != nil {
		return err
	}
	for rc := range want {
		if err := s.knownClass(r, rc); err != nil {
			return api.BadRequest("Invalid resource class in resources parameter: No such resource class %s.", rc)
		}
	}
	var required []string
	if req := q.Get("required"); req != "" && v.AtLeast(1, 17) {
		required = strings.Split(req, ",")
	}
	cands, err := s.candidates(r.Context(), s.db, want, required)
	if err != nil {
		return err
	}
	if l := q.Get("limit"); l != "" && v.AtLeast(1, 16) {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return api.BadRequest("Invalid query string parameters: limit must be a positive integer.")
		}
		if n < len(cands) {
			cands = cands[:n]
		}
	}
	reqs := []any{}
	sums := map[string]any{}
	for _, c := range cands {
		var ar map[string]any
		if v.AtLeast(1, 12) {
			ar = map[string]any{"allocations": map[string]any{c.p.UUID: map[string]any{"resources": want}}}
		} else {
			ar = map[string]any{"allocations": []any{map[string]any{"resource_provider": map[string]any{"uuid": c.p.UUID}, "resources": want}}}
		}
		if v.AtLeast(1, 34) {
			ar["mappings"] = map[string]any{"": []string{c.p.UUID}}
		}
		reqs = append(reqs, ar)
		resources := map[string]any{}
		for rc, i := range c.inv {
			if !v.AtLeast(1, 27) {
				if _, asked := want[rc]; !asked {
					continue
				}
			}
			resources[rc] = map[string]any{"capacity": i.Capacity(), "used": c.used[rc]}
		}
		sum := map[string]any{"resources": resources}
		if v.AtLeast(1, 17) {
			sum["traits"] = c.trait
		}
		if v.AtLeast(1, 29) {
			var parent any
			if c.p.ParentUUID != "" {
				parent = c.p.ParentUUID
			}
			sum["parent_provider_uuid"], sum["root_provider_uuid"] = parent, c.p.RootUUID
		}
		sums[c.p.UUID] = sum
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"allocation_requests": reqs, "provider_summaries": sums})
	return nil
}
