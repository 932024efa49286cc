package volume

import (
	"net/http"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// lister turns a list request's query into SQL: the caller's projects
// (all of them for an admin asking all_tenants), exact-match filters,
// sorting (sort=key:dir,... or sort_key/sort_dir; newest first by
// default) and limit/marker paging.
type lister struct {
	where, order string
	args         []any
	p            api.Page
	r            *http.Request
}

var sortColumns = map[string]string{
	"created_at": "created_at", "updated_at": "updated_at", "id": "id", "name": "name", "display_name": "name",
	"size": "size", "status": "status",
}

// newLister reads r's query; filters maps query parameters to columns.
func newLister(r *http.Request, c *api.Credentials, table string, filters map[string]string) (*lister, error) {
	q := r.URL.Query()
	l := &lister{r: r}
	var conds []string
	allTenants := q.Get("all_tenants")
	switch {
	case c.CloudAdmin() && q.Get("project_id") != "":
		conds, l.args = append(conds, "project_id=?"), append(l.args, q.Get("project_id"))
	case c.CloudAdmin() && allTenants != "" && allTenants != "0" && !strings.EqualFold(allTenants, "false"):
	default:
		conds, l.args = append(conds, "project_id=?"), append(l.args, c.ProjectID)
	}
	for param, col := range filters {
		if val := q.Get(param); val != "" {
			conds, l.args = append(conds, col+"=?"), append(l.args, val)
		}
	}
	if len(conds) > 0 {
		l.where = " WHERE " + strings.Join(conds, " AND ")
	}
	var keys []string
	if s := q.Get("sort"); s != "" {
		keys = strings.Split(s, ",")
	} else if k := q.Get("sort_key"); k != "" {
		keys = []string{k + ":" + q.Get("sort_dir")}
	}
	var order []string
	for _, k := range keys {
		name, dir, _ := strings.Cut(strings.TrimSpace(k), ":")
		col, ok := sortColumns[name]
		if !ok {
			return nil, api.BadRequest("Invalid input received: Invalid sort key %s.", name)
		}
		switch strings.ToLower(dir) {
		case "", "desc":
			dir = "DESC"
		case "asc":
			dir = "ASC"
		default:
			return nil, api.BadRequest("Invalid input received: Invalid sort direction %s.", dir)
		}
		order = append(order, col+" "+dir)
	}
	order = append(order, "created_at DESC", "seq DESC")
	l.order = " ORDER BY " + strings.Join(order, ", ")
	var err error
	l.p, err = api.ParsePage(r, 0, 1000)
	if err != nil {
		return nil, api.BadRequest("Invalid input received: %s", err.(*api.Error).Message)
	}
	return l, nil
}

// page picks, of n sorted items, those after the marker, up to the limit,
// and the link to the next page when there may be one.
func (l *lister) page(n int, id func(i int) string) ([]int, *api.Link, error) {
	start := 0
	if l.p.Marker != "" {
		start = -1
		for i := 0; i < n; i++ {
			if id(i) == l.p.Marker {
				start = i + 1
				break
			}
		}
		if start < 0 {
			return nil, nil, api.BadRequest("Invalid input received: marker [%s] not found.", l.p.Marker)
		}
	}
	end := n
	if l.p.Limit > 0 && start+l.p.Limit < n {
		end = start + l.p.Limit
	}
	var out []int
	for i := start; i < end; i++ {
		out = append(out, i)
	}
	var next *api.Link
	if end < n && len(out) > 0 {
		next = api.NextLink(l.r, l.p, len(out), id(end-1))
	}
	return out, next, nil
}

// boolParam reads a boolean given as JSON true/false or as a string
// ("true", "False", "1", ...), as Cinder accepts both.
func boolParam(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "yes", "y", "on", "t":
			return true, nil
		case "false", "0", "no", "n", "off", "f", "":
			return false, nil
		}
	}
	return false, api.BadRequest("Invalid input received: %v is not a valid boolean.", v)
}
