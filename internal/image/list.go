package image

import (
	"context"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/monostack/monostack/internal/api"
)

// Glance's list limits (limit_param_default, api_limit_max).
const (
	defaultLimit = 25
	maxLimit     = 1000
)

var sortKeys = map[string]bool{"name": true, "status": true, "container_format": true, "disk_format": true,
	"size": true, "id": true, "created_at": true, "updated_at": true}

// listQuery is a parsed GET /v2/images: filters as SQL conditions, the
// sort, and the page.
type listQuery struct {
	where        []string
	args         []any
	visibility   string // "" for the default view
	memberStatus string
	sortKeys     []string
	sortDirs     []string
	limit        int
	marker       string
}

func (q *listQuery) cond(sql string, args ...any) {
	q.where = append(q.where, sql)
	q.args = append(q.args, args...)
}

// parseList reads the query string the way Glance's request deserializer
// does: every parameter it does not know filters on a custom property.
func parseList(v url.Values) (*listQuery, error) {
	q := &listQuery{memberStatus: "accepted", limit: defaultLimit}
	params := url.Values{}
	for k, vs := range v {
		params[k] = vs
	}
	if s := params.Get("limit"); params.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, api.BadRequest("limit param must be an integer")
		}
		if n < 0 {
			return nil, api.BadRequest("limit param must be positive")
		}
		q.limit = min(n, maxLimit)
	}
	q.marker = params.Get("marker")
	if params.Has("member_status") {
		q.memberStatus = params.Get("member_status")
		switch q.memberStatus {
		case "pending", "accepted", "rejected", "all":
		default:
			return nil, api.BadRequest("Invalid status: %s", q.memberStatus)
		}
	}
	for _, t := range params["tag"] {
		q.cond(`EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id=i.id AND t.tag=?)`, strings.TrimSpace(t))
	}
	if err := q.parseSort(params); err != nil {
		return nil, err
	}
	for _, k := range []string{"limit", "marker", "member_status", "tag", "sort", "sort_key", "sort_dir"} {
		delete(params, k)
	}

	if vis := params.Get("visibility"); vis != "" {
		switch vis {
		case Public, Private, Shared, Community, "all":
		default:
			return nil, api.BadRequest("Invalid visibility value: %s", vis)
		}
		q.visibility = vis
	}
	delete(params, "visibility")
	if params.Has("changes-since") {
		return nil, api.BadRequest(`The "changes-since" filter is no longer available on v2.`)
	}
	hidden := "false"
	if params.Has("os_hidden") {
		hidden = strings.ToLower(params.Get("os_hidden"))
		if hidden != "true" && hidden != "false" {
			return nil, api.BadRequest("Invalid value '%s' for 'os_hidden' filter. Valid values are 'true' or 'false'.", hidden)
		}
	}
	q.cond(`i.os_hidden=?`, hidden == "true")
	delete(params, "os_hidden")
	if params.Has("protected") {
		p := params.Get("protected")
		if p != "true" && p != "false" {
			return nil, api.BadRequest("Invalid value '%s' for 'protected' filter. Valid values are 'true' or 'false'.", p)
		}
		q.cond(`i.protected=?`, p == "true")
		delete(params, "protected")
	}

	for k := range params {
		val := params.Get(k)
		switch k {
		case "name", "id", "status", "container_format", "disk_format":
			op, arg := splitOp(val)
			switch op {
			case "eq":
				q.cond(`i.`+k+`=?`, arg)
			case "in":
				vals, err := splitQuoted(arg)
				if err != nil {
					return nil, err
				}
				q.cond(`i.`+k+` IN (`+placeholders(len(vals))+`)`, anys(vals)...)
			default:
				return nil, api.BadRequest("Unable to filter by unknown operator '%s'.", op)
			}
		case "created_at", "updated_at":
			op, arg := splitOp(val)
			t, err := parseISOTime(arg)
			if err != nil {
				return nil, api.BadRequest(`Bad "%s" query filter format. Use ISO 8601 DateTime notation.`, k)
			}
			sqlOp, ok := map[string]string{"gt": ">", "gte": ">=", "eq": "=", "neq": "<>", "lt": "<", "lte": "<="}[op]
			if !ok {
				return nil, api.BadRequest("Invalid operator %s for %s.", op, k)
			}
			q.cond(`i.`+k+` `+sqlOp+` ?`, timeText(t))
		case "size_min", "size_max", "min_ram_min", "min_ram_max", "min_disk_min", "min_disk_max",
			"virtual_size_min", "virtual_size_max":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, api.BadRequest("Unable to filter on a range with a non-numeric value.")
			}
			col, op := k[:len(k)-4], ">="
			if strings.HasSuffix(k, "_max") {
				op = "<="
			}
			q.cond(`i.`+col+` `+op+` ?`, n)
		case "owner", "checksum", "os_hash_value", "os_hash_algo":
			q.cond(`i.`+k+`=?`, val)
		case "min_ram", "min_disk", "size", "virtual_size":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return nil, api.BadRequest("Invalid value '%s' for '%s' filter.", val, k)
			}
			q.cond(`i.`+k+`=?`, n)
		default:
			q.cond(`EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id=i.id AND p.name=? AND p.value=?)`, k, val)
		}
	}
	return q, nil
}

func (q *listQuery) parseSort(params url.Values) error {
	if params.Has("sort") {
		if params.Has("sort_key") || params.Has("sort_dir") {
			return api.BadRequest("Old and new sorting syntax cannot be combined")
		}
		for _, part := range strings.Split(strings.TrimSpace(params.Get("sort")), ",") {
			key, dir, _ := strings.Cut(part, ":")
			if dir == "" {
				dir = "desc"
			}
			if err := q.addSort(strings.TrimSpace(key), strings.TrimSpace(dir)); err != nil {
				return err
			}
		}
	} else {
		for _, k := range params["sort_key"] {
			if !sortKeys[strings.TrimSpace(k)] {
				return errSortKey(k)
			}
			q.sortKeys = append(q.sortKeys, strings.TrimSpace(k))
		}
		for _, d := range params["sort_dir"] {
			d = strings.TrimSpace(d)
			if d != "asc" && d != "desc" {
				return api.BadRequest("Invalid sort direction: %s", d)
			}
			q.sortDirs = append(q.sortDirs, d)
		}
		if len(q.sortDirs) > 1 && len(q.sortDirs) != len(q.sortKeys) {
			return api.BadRequest("Number of sort dirs does not match the number of sort keys")
		}
	}
	if len(q.sortKeys) == 0 {
		q.sortKeys = []string{"created_at"}
	}
	def := "desc"
	switch len(q.sortDirs) {
	case 0:
	case 1:
		def = q.sortDirs[0]
		q.sortDirs = q.sortDirs[:0]
	}
	for len(q.sortDirs) < len(q.sortKeys) {
		q.sortDirs = append(q.sortDirs, def)
	}
	// Glance always ends the order with created_at and id, so that pages
	// are stable.
	for _, k := range []string{"created_at", "id"} {
		if !slices.Contains(q.sortKeys, k) {
			q.sortKeys = append(q.sortKeys, k)
			q.sortDirs = append(q.sortDirs, def)
		}
	}
	return nil
}

func (q *listQuery) addSort(key, dir string) error {
	if !sortKeys[key] {
		return errSortKey(key)
	}
	if dir != "asc" && dir != "desc" {
		return api.BadRequest("Invalid sort direction: %s", dir)
	}
	q.sortKeys = append(q.sortKeys, key)
	q.sortDirs = append(q.sortDirs, dir)
	return nil
}

func errSortKey(k string) error {
	return api.BadRequest("Invalid sort key: %s. It must be one of the following: name, status, container_format, "+
		"disk_format, size, id, created_at, updated_at.", k)
}

// splitOp splits "op:value"; a bare value, or an ISO time with colons and
// no operator, is "eq".
func splitOp(s string) (string, string) {
	op, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "eq", s
	}
	if _, err := parseISOTime(s); err == nil {
		return "eq", s
	}
	return op, rest
}

var quoted = regexp.MustCompile(`"((?:[^"\\]|\\.)*)",?|([^,]+),?|,`)

// splitQuoted splits the value of an "in:" filter: comma-separated, with
// double quotes around values that contain commas.
func splitQuoted(s string) ([]string, error) {
	open := false
	for i := 0; i < len(s); i++ {
		if s[i] != '"' || (i > 0 && s[i-1] == '\\') {
			continue
		}
		if !open && i > 0 && s[i-1] != ',' {
			return nil, api.BadRequest("Invalid filter value %s. There is no comma before opening quotation mark.", s)
		}
		if open && i+1 != len(s) && s[i+1] != ',' {
			return nil, api.BadRequest("Invalid filter value %s. There is no comma after closing quotation mark.", s)
		}
		open = !open
	}
	if open {
		return nil, api.BadRequest("Invalid filter value %s. The quote is not closed.", s)
	}
	var out []string
	for _, m := range quoted.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1]+m[2])
	}
	return out, nil
}

// parseISOTime accepts the ISO 8601 forms clients send.
func parseISOTime(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999",
		"2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02T15:04", "2006-01-02"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// list returns a page of the images c may see that match q, and whether a
// "next" link is due (Glance gives one whenever the page is full).
func (s *Service) list(ctx context.Context, c caller, q *listQuery) ([]Image, bool, error) {
	where := append([]string{}, q.where...)
	args := append([]any{}, q.args...)
	if !c.admin && !c.readAll {
		member := `EXISTS (SELECT 1 FROM image_members m WHERE m.image_id=i.id AND m.member=?`
		margs := []any{c.project}
		if q.memberStatus != "all" {
			member += ` AND m.status=?`
			margs = append(margs, q.memberStatus)
		}
		where = append(where, `(i.owner=? OR i.visibility IN ('public','community') OR (i.visibility='shared' AND `+member+`)))`)
		args = append(append(args, c.project), margs...)
	}
	switch {
	case q.visibility != "" && q.visibility != "all":
		where = append(where, `i.visibility=?`)
		args = append(args, q.visibility)
	case q.visibility == "":
		// Community images appear in the default list of their owner only.
		where = append(where, `(i.owner=? OR i.visibility<>'community')`)
		args = append(args, c.project)
	}
	if q.marker != "" {
		m, err := s.lookup(ctx, c, q.marker)
		if err != nil {
			return nil, false, api.BadRequest("Marker %s could not be found.", q.marker)
		}
		cond, margs := afterMarker(q.sortKeys, q.sortDirs, m.sortValues(q.sortKeys))
		where = append(where, cond)
		args = append(args, margs...)
	}
	order := make([]string, len(q.sortKeys))
	for i, k := range q.sortKeys {
		order[i] = "i." + k + " " + nullsOrder[q.sortDirs[i]]
	}
	sqlq := `SELECT ` + imageCols + ` FROM images i`
	if len(where) > 0 {
		sqlq += ` WHERE ` + strings.Join(where, ` AND `)
	}
	sqlq += ` ORDER BY ` + strings.Join(order, ", ") + ` LIMIT ?`
	rows, err := s.db.QueryContext(ctx, sqlq, append(args, q.limit)...)
	if err != nil {
		return nil, false, err
	}
	ims := []Image{}
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			rows.Close()
			return nil, false, err
		}
		ims = append(ims, im)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if err := s.fill(ctx, s.db, ims); err != nil {
		return nil, false, err
	}
	return ims, q.limit > 0 && len(ims) == q.limit, nil
}

// nullsOrder spells out where NULLs sort (first ascending, last
// descending, as SQLite does by default), so that every database pages
// alike.
var nullsOrder = map[string]string{"asc": "ASC NULLS FIRST", "desc": "DESC NULLS LAST"}

// afterMarker is the condition for rows that sort after the marker row
// whose sort-key values are vals (keyset paging). The last key is id, so
// no two rows tie.
func afterMarker(keys, dirs []string, vals []any) (string, []any) {
	cond, args := "", []any(nil)
	for i := len(keys) - 1; i >= 0; i-- {
		col, v := "i."+keys[i], vals[i]
		var after string
		var afterArgs []any
		switch {
		case dirs[i] == "asc" && v == nil:
			after = col + ` IS NOT NULL`
		case dirs[i] == "asc":
			after, afterArgs = col+` > ?`, []any{v}
		case v == nil: // descending, NULLs last: nothing comes after a NULL
			after = `1=0`
		default:
			after, afterArgs = `(`+col+` < ? OR `+col+` IS NULL)`, []any{v}
		}
		if cond == "" {
			cond, args = after, afterArgs
			continue
		}
		same, sameArgs := col+` IS NULL`, []any(nil)
		if v != nil {
			same, sameArgs = col+` = ?`, []any{v}
		}
		cond = `(` + after + ` OR (` + same + ` AND ` + cond + `))`
		args = append(append(afterArgs, sameArgs...), args...)
	}
	return cond, args
}

// sortValues are the image's values of the sort keys, as stored.
func (im Image) sortValues(keys []string) []any {
	out := make([]any, len(keys))
	for i, k := range keys {
		switch k {
		case "name":
			if im.Name != nil {
				out[i] = *im.Name
			}
		case "status":
			out[i] = im.Status
		case "container_format":
			out[i] = nilIfEmpty(im.ContainerFormat)
		case "disk_format":
			out[i] = nilIfEmpty(im.DiskFormat)
		case "size":
			if im.Size != nil {
				out[i] = *im.Size
			}
		case "id":
			out[i] = im.ID
		case "created_at":
			out[i] = timeText(im.CreatedAt)
		case "updated_at":
			out[i] = timeText(im.UpdatedAt)
		}
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
