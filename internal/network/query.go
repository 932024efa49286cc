package network

import (
	"cmp"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// Listing works the same for every resource: the visible rows are turned
// into their wire form, and filters (any attribute, values of one
// attribute or'ed), tag filters, sorting, limit/marker paging and fields=
// selection are applied to those maps, as Neutron's API layer does.

// listQuery is a parsed collection GET.
type listQuery struct {
	fields  []string
	sortBy  []sortKey
	limit   int
	marker  string
	reverse bool
	filters map[string][]string
	// tag filters: all of, any of, not all of, none of.
	tags, tagsAny, notTags, notTagsAny []string
}

type sortKey struct {
	key string
	asc bool
}

var listParams = map[string]bool{"fields": true, "sort_key": true, "sort_dir": true, "limit": true,
	"marker": true, "page_reverse": true, "tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true}

// unsortable attributes: lists and objects.
var unsortable = map[string]bool{"tags": true, "fixed_ips": true, "subnets": true, "security_groups": true,
	"allowed_address_pairs": true, "allocation_pools": true, "dns_nameservers": true, "host_routes": true,
	"availability_zones": true, "availability_zone_hints": true, "routes": true, "external_gateway_info": true,
	"binding:profile": true, "binding:vif_details": true, "security_group_rules": true, "extra_dhcp_opts": true,
	"port_details": true, "service_types": true}

func pyList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = "'" + k + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func nonEmpty(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseList reads a collection GET against the resource's attributes.
func parseList(r *http.Request, attrs []string) (listQuery, error) {
	q := r.URL.Query()
	known := map[string]bool{}
	for _, a := range attrs {
		known[a] = true
	}
	lq := listQuery{filters: map[string][]string{}}
	for _, f := range q["fields"] {
		for _, x := range strings.Split(f, ",") {
			if x = strings.TrimSpace(x); x != "" {
				lq.fields = append(lq.fields, x)
			}
		}
	}
	keys, dirs := nonEmpty(q["sort_key"]), nonEmpty(q["sort_dir"])
	if len(dirs) > 0 && len(keys) != len(dirs) {
		return lq, badRequest("The number of sort_keys and sort_dirs must be same")
	}
	var badKeys, badDirs []string
	for i, k := range keys {
		if !known[k] || unsortable[k] {
			badKeys = append(badKeys, k)
		}
		asc := true
		if i < len(dirs) {
			switch dirs[i] {
			case "asc":
			case "desc":
				asc = false
			default:
				badDirs = append(badDirs, dirs[i])
			}
		}
		lq.sortBy = append(lq.sortBy, sortKey{k, asc})
	}
	if len(badKeys) > 0 {
		return lq, badRequest("%s is invalid attribute for sort_keys", pyList(badKeys))
	}
	if len(badDirs) > 0 {
		return lq, badRequest("%s is invalid value for sort_dirs, valid value is 'asc' and 'desc'", pyList(badDirs))
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return lq, badResource("limit", "Limit must be an integer 0 or greater and not '%s'", s)
		}
		lq.limit = n
	}
	lq.marker = q.Get("marker")
	if s := q.Get("page_reverse"); s != "" {
		b, err := toBool([]byte(strconv.Quote(s)))
		if err != nil {
			return lq, err
		}
		lq.reverse = b
	}
	split := func(vs []string) []string {
		var out []string
		for _, v := range vs {
			for _, t := range strings.Split(v, ",") {
				if t != "" {
					out = append(out, t)
				}
			}
		}
		return out
	}
	lq.tags, lq.tagsAny = split(q["tags"]), split(q["tags-any"])
	lq.notTags, lq.notTagsAny = split(q["not-tags"]), split(q["not-tags-any"])
	var invalid []string
	for k, vs := range q {
		if listParams[k] {
			continue
		}
		if !known[k] {
			invalid = append(invalid, k)
			continue
		}
		if vs = nonEmpty(vs); len(vs) > 0 {
			lq.filters[k] = vs
		}
	}
	if len(invalid) > 0 {
		slices.Sort(invalid)
		return lq, badRequest("%s is invalid attribute for filtering", pyList(invalid))
	}
	return lq, nil
}

// match reports whether an item passes the filters.
func (lq listQuery) match(item map[string]any) (bool, error) {
	for k, want := range lq.filters {
		ok, err := matchAttr(k, item[k], want)
		if err != nil || !ok {
			return false, err
		}
	}
	if len(lq.tags)+len(lq.tagsAny)+len(lq.notTags)+len(lq.notTagsAny) > 0 {
		tags, _ := item["tags"].([]string)
		has := func(t string) bool { return slices.Contains(tags, t) }
		for _, t := range lq.tags {
			if !has(t) {
				return false, nil
			}
		}
		if len(lq.tagsAny) > 0 && !slices.ContainsFunc(lq.tagsAny, has) {
			return false, nil
		}
		if len(lq.notTags) > 0 {
			all := true
			for _, t := range lq.notTags {
				all = all && has(t)
			}
			if all {
				return false, nil
			}
		}
		if slices.ContainsFunc(lq.notTagsAny, has) {
			return false, nil
		}
	}
	return true, nil
}

func matchAttr(key string, v any, want []string) (bool, error) {
	switch x := v.(type) {
	case nil:
		for _, w := range want {
			if w == "None" || w == "null" {
				return true, nil
			}
		}
		return false, nil
	case string:
		return slices.Contains(want, x), nil
	case bool:
		for _, w := range want {
			b, err := toBool([]byte(strconv.Quote(w)))
			if err != nil {
				return false, err
			}
			if b == x {
				return true, nil
			}
		}
		return false, nil
	case int:
		for _, w := range want {
			n, err := strconv.Atoi(w)
			if err != nil {
				return false, invalidInput("'%s' is not an integer", w)
			}
			if n == x {
				return true, nil
			}
		}
		return false, nil
	case []string:
		return slices.ContainsFunc(want, func(w string) bool { return slices.Contains(x, w) }), nil
	case []map[string]any:
		// fixed_ips=ip_address=10.0.0.3&fixed_ips=subnet_id=...: each
		// named key must be matched by one of the entries.
		groups := map[string][]string{}
		for _, w := range want {
			k, val, ok := strings.Cut(w, "=")
			if !ok {
				return false, invalidInput("'%s' is not of the form key=value", w)
			}
			groups[k] = append(groups[k], val)
		}
		for k, vals := range groups {
			found := false
			for _, entry := range x {
				if k == "ip_address_substr" {
					s, _ := entry["ip_address"].(string)
					found = found || slices.ContainsFunc(vals, func(v string) bool { return strings.Contains(s, v) })
					continue
				}
				s, _ := entry[k].(string)
				found = found || slices.Contains(vals, s)
			}
			if !found {
				return false, nil
			}
		}
		return true, nil
	case map[string]any:
		// An object (external_gateway_info, port_details): match its
		// JSON-ish string forms by key=value.
		for _, w := range want {
			k, val, ok := strings.Cut(w, "=")
			if ok {
				if s, _ := x[k].(string); s == val {
					return true, nil
				}
			}
		}
		return false, nil
	}
	return false, nil
}

func compareValues(a, b any) int {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return 0
		}
		return -1
	case string:
		y, ok := b.(string)
		if !ok {
			return 1
		}
		return cmp.Compare(x, y)
	case bool:
		y, _ := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int:
		y, ok := b.(int)
		if !ok {
			return 1
		}
		return cmp.Compare(x, y)
	}
	if b == nil {
		return 1
	}
	return 0
}

// writeList answers a collection GET: filters, sorts, pages and selects
// fields of items (already in their default order and visible to the
// caller), as {"<collection>": [...], "<collection>_links": [...]}.
// notFound is the error for a marker that names no visible item.
func writeList(w http.ResponseWriter, r *http.Request, collection string, lq listQuery, items []map[string]any, notFound func(id string) error) error {
	kept := make([]map[string]any, 0, len(items))
	for _, it := range items {
		ok, err := lq.match(it)
		if err != nil {
			return err
		}
		if ok {
			kept = append(kept, it)
		}
	}
	if len(lq.sortBy) > 0 {
		keys := append(slices.Clone(lq.sortBy), sortKey{"id", lq.sortBy[len(lq.sortBy)-1].asc})
		slices.SortStableFunc(kept, func(a, b map[string]any) int {
			for _, k := range keys {
				c := compareValues(a[k.key], b[k.key])
				if !k.asc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return 0
		})
	}
	if lq.marker != "" {
		i := slices.IndexFunc(kept, func(it map[string]any) bool { return it["id"] == lq.marker })
		if i < 0 {
			if lq.limit > 0 {
				return notFound(lq.marker)
			}
		} else if lq.reverse {
			kept = kept[:i]
		} else {
			kept = kept[i+1:]
		}
	}
	if lq.limit > 0 && len(kept) > lq.limit {
		if lq.reverse {
			kept = kept[len(kept)-lq.limit:]
		} else {
			kept = kept[:lq.limit]
		}
	}
	out := make([]map[string]any, len(kept))
	for i, it := range kept {
		out[i] = selectFields(it, lq.fields)
	}
	body := map[string]any{collection: out}
	if lq.limit > 0 {
		var links []api.Link
		if !(len(kept) < lq.limit && !lq.reverse) {
			links = append(links, api.Link{Rel: "next", Href: pageLink(r, kept, false)})
		}
		if !(len(kept) < lq.limit && lq.reverse) {
			links = append(links, api.Link{Rel: "previous", Href: pageLink(r, kept, true)})
		}
		body[collection+"_links"] = links
	}
	api.WriteJSON(w, http.StatusOK, body)
	return nil
}

func pageLink(r *http.Request, items []map[string]any, previous bool) string {
	q := r.URL.Query()
	q.Del("marker")
	q.Del("page_reverse")
	if len(items) > 0 {
		if previous {
			q.Set("marker", items[0]["id"].(string))
		} else {
			q.Set("marker", items[len(items)-1]["id"].(string))
		}
	}
	if previous {
		q.Set("page_reverse", "True")
	}
	u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
	return api.BaseURL(r) + u.String()
}

// selectFields keeps only the named attributes (all when none are named).
func selectFields(item map[string]any, fields []string) map[string]any {
	if len(fields) == 0 {
		return item
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := item[f]; ok {
			out[f] = v
		}
	}
	return out
}

// showFields answers a resource GET with ?fields= applied.
func showFields(r *http.Request, item map[string]any) map[string]any {
	var fields []string
	for _, f := range r.URL.Query()["fields"] {
		for _, x := range strings.Split(f, ",") {
			if x = strings.TrimSpace(x); x != "" {
				fields = append(fields, x)
			}
		}
	}
	return selectFields(item, fields)
}
