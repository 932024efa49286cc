package objectstore

import (
	"bytes"
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// listParams are a listing's query parameters.
type listParams struct {
	prefix, delimiter   string
	marker, endMarker   string
	limit               int
	reverse             bool
	format, contentType string // the negotiated format: plain, json or xml
}

// parseListParams reads prefix, delimiter, marker, end_marker, limit and
// reverse as Swift does: a limit that is not all digits is ignored, one
// over max is a 412, a delimiter must be one character.
func parseListParams(r *http.Request, q url.Values, max int) (listParams, error) {
	p := listParams{
		prefix: q.Get("prefix"), delimiter: q.Get("delimiter"),
		marker: q.Get("marker"), endMarker: q.Get("end_marker"), limit: max,
	}
	for _, v := range []string{p.prefix, p.delimiter, p.marker, p.endMarker} {
		if !validName(v) && v != "" {
			return p, errPrecondition("Invalid UTF8 or contains NULL")
		}
	}
	if p.delimiter != "" {
		if utf8.RuneCountInString(p.delimiter) > 1 || []rune(p.delimiter)[0] > 254 {
			return p, errPrecondition("Bad delimiter")
		}
	}
	if l := q.Get("limit"); l != "" && isDigits(l) {
		n, err := strconv.Atoi(l)
		if err != nil || n > max {
			return p, errPrecondition("Maximum limit is " + strconv.Itoa(max))
		}
		p.limit = n
	}
	p.reverse = trueValue(q.Get("reverse"))
	var err error
	p.format, p.contentType, err = listingFormat(r, q)
	return p, err
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// trueValue is Swift's config_true_value.
func trueValue(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on", "t", "y":
		return true
	}
	return false
}

var formatTypes = map[string]string{"json": "application/json", "xml": "application/xml", "plain": "text/plain"}

// listingFormat picks the listing's format from ?format= or, without it,
// the Accept header (text/plain when there is none).
func listingFormat(r *http.Request, q url.Values) (format, contentType string, err error) {
	if f := q.Get("format"); f != "" {
		ct, ok := formatTypes[strings.ToLower(f)]
		if !ok {
			ct = "text/plain"
		}
		return formatOf(ct), ct, nil
	}
	ct := bestAccept(r.Header.Get("Accept"), []string{"text/plain", "application/json", "application/xml", "text/xml"})
	if ct == "" {
		return "", "", errNotAcceptable()
	}
	return formatOf(ct), ct, nil
}

func formatOf(ct string) string {
	switch {
	case ct == "application/json":
		return "json"
	case strings.HasSuffix(ct, "/xml"):
		return "xml"
	}
	return "plain"
}

// bestAccept returns the offer the Accept header prefers (the first offer
// for an absent header), or "" if it accepts none of them.
func bestAccept(accept string, offers []string) string {
	if strings.TrimSpace(accept) == "" {
		return offers[0]
	}
	best, bestQ := "", 0.0
	for _, offer := range offers {
		q, spec := 0.0, -1
		for _, part := range strings.Split(accept, ",") {
			fields := strings.Split(part, ";")
			mr := strings.ToLower(strings.TrimSpace(fields[0]))
			pq := 1.0
			for _, f := range fields[1:] {
				k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
				if strings.TrimSpace(k) == "q" {
					if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
						pq = x
					}
				}
			}
			typ, _, _ := strings.Cut(offer, "/")
			s := -1
			switch {
			case mr == offer:
				s = 2
			case mr == typ+"/*":
				s = 1
			case mr == "*/*" || mr == "*":
				s = 0
			}
			if s > spec {
				spec, q = s, pq
			}
		}
		if spec >= 0 && q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best
}

// listEntry is one line of a listing: an object, a container or a subdir.
type listEntry struct {
	name   string
	subdir bool
	// objects
	etag, contentType, sloETag string
	size                       int64
	// containers
	count, bytes int64
	modified     int64
}

// listSource is the table a listing reads: the objects of a container or
// the containers of an account.
type listSource struct {
	table, cols, scope string
	scopeArg           any
	extra              string // more conditions
	extraArgs          []any
	scan               func(rowScanner) (listEntry, error)
}

// prefixEnd returns the least string greater than every string that starts
// with p ("" for none).
func prefixEnd(p string) string {
	b := []byte(p)
	for len(b) > 0 {
		if b[len(b)-1] < 0xff {
			b[len(b)-1]++
			return string(b)
		}
		b = b[:len(b)-1]
	}
	return ""
}

// bounds is a name range: above lo (inclusive or not), below hi.
type bounds struct {
	lo     string
	loIncl bool
	hasLo  bool
	hi     string // exclusive
	hasHi  bool
}

func (b *bounds) above(s string, incl bool) {
	if !b.hasLo || s > b.lo || s == b.lo && !incl {
		b.lo, b.loIncl, b.hasLo = s, incl, true
	}
}

func (b *bounds) below(s string) {
	if !b.hasHi || s < b.hi {
		b.hi, b.hasHi = s, true
	}
}

// list runs a listing: names in order (or reverse order) within the
// markers and prefix, with names that have the delimiter after the prefix
// rolled up into subdirs, at most p.limit entries.
func (s *Service) list(ctx context.Context, src listSource, p listParams) ([]listEntry, error) {
	var b bounds
	if p.prefix != "" {
		b.above(p.prefix, true)
		if e := prefixEnd(p.prefix); e != "" {
			b.below(e)
		}
	}
	if !p.reverse {
		if p.marker != "" {
			b.above(p.marker, false)
		}
		if p.endMarker != "" {
			b.below(p.endMarker)
		}
	} else {
		if p.marker != "" {
			b.below(p.marker)
		}
		if p.endMarker != "" {
			b.above(p.endMarker, false)
		}
	}
	out := make([]listEntry, 0, min(p.limit, 1024))
	for len(out) < p.limit {
		if b.hasLo && b.hasHi && b.lo >= b.hi {
			break
		}
		want := p.limit - len(out)
		q := `SELECT ` + src.cols + ` FROM ` + src.table + ` WHERE ` + src.scope + `=?`
		args := []any{src.scopeArg}
		if b.hasLo {
			if b.loIncl {
				q += ` AND name >= ?`
			} else {
				q += ` AND name > ?`
			}
			args = append(args, b.lo)
		}
		if b.hasHi {
			q += ` AND name < ?`
			args = append(args, b.hi)
		}
		q += src.extra
		args = append(args, src.extraArgs...)
		if p.reverse {
			q += ` ORDER BY name DESC`
		} else {
			q += ` ORDER BY name`
		}
		q += ` LIMIT ?`
		args = append(args, want)
		rows, err := s.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		n, sub := 0, ""
		for rows.Next() {
			n++
			e, err := src.scan(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			if p.delimiter != "" {
				if i := strings.Index(e.name[len(p.prefix):], p.delimiter); i >= 0 {
					sub = e.name[:len(p.prefix)+i+len(p.delimiter)]
					break
				}
			}
			out = append(out, e)
			if p.reverse {
				b.below(e.name)
			} else {
				b.above(e.name, false)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if sub != "" {
			if p.reverse {
				out = append(out, listEntry{name: sub, subdir: true})
				b.below(sub)
			} else {
				if p.marker == "" || sub > p.marker {
					out = append(out, listEntry{name: sub, subdir: true})
				}
				if e := prefixEnd(sub); e != "" {
					b.above(e, true)
				} else {
					break
				}
			}
			continue
		}
		if n < want {
			break
		}
	}
	return out, nil
}

// objectSource lists a container's live objects.
func objectSource(containerID int64, now int64) listSource {
	return listSource{
		table: "swift_objects", scope: "container_id", scopeArg: containerID,
		cols:      `name, etag, size, content_type, modified, meta`,
		extra:     ` AND (delete_at = 0 OR delete_at > ?)`,
		extraArgs: []any{now},
		scan: func(r rowScanner) (listEntry, error) {
			var e listEntry
			var m string
			err := r.Scan(&e.name, &e.etag, &e.size, &e.contentType, &e.modified, &m)
			e.contentType = withoutSwiftBytes(e.contentType)
			if m != "{}" {
				e.sloETag = decodeMeta(m)[sysSLOETag]
			}
			return e, err
		},
	}
}

// containerSource lists an account's containers.
func containerSource(account string) listSource {
	return listSource{
		table: "swift_containers", scope: "account", scopeArg: account,
		cols: `name, object_count, bytes_used, modified`,
		scan: func(r rowScanner) (listEntry, error) {
			var e listEntry
			err := r.Scan(&e.name, &e.count, &e.bytes, &e.modified)
			return e, err
		},
	}
}

// renderListing writes a listing in its format; an empty plain-text
// listing is a 204, as Swift answers.
func renderListing(w http.ResponseWriter, r *http.Request, p listParams, kind, name string, entries []listEntry, status int) {
	var buf bytes.Buffer
	switch p.format {
	case "json":
		buf.Grow(len(entries) * 160)
		buf.WriteByte('[')
		for i, e := range entries {
			if i > 0 {
				buf.WriteString(", ")
			}
			if e.subdir {
				buf.WriteString(`{"subdir": `)
				appendJSONString(&buf, e.name)
				buf.WriteByte('}')
				continue
			}
			buf.WriteString(`{"name": `)
			appendJSONString(&buf, e.name)
			if kind == "container" {
				buf.WriteString(`, "hash": `)
				appendJSONString(&buf, e.etag)
				buf.WriteString(`, "bytes": `)
				buf.WriteString(strconv.FormatInt(e.size, 10))
				buf.WriteString(`, "content_type": `)
				appendJSONString(&buf, e.contentType)
				if e.sloETag != "" {
					buf.WriteString(`, "slo_etag": `)
					appendJSONString(&buf, `"`+e.sloETag+`"`)
				}
			} else {
				buf.WriteString(`, "count": `)
				buf.WriteString(strconv.FormatInt(e.count, 10))
				buf.WriteString(`, "bytes": `)
				buf.WriteString(strconv.FormatInt(e.bytes, 10))
			}
			buf.WriteString(`, "last_modified": "`)
			buf.WriteString(listingTime(e.modified))
			buf.WriteString(`"}`)
		}
		buf.WriteByte(']')
	case "xml":
		buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
		buf.WriteString("<" + kind + ` name="`)
		xml.EscapeText(&buf, []byte(name))
		buf.WriteString(`">`)
		for _, e := range entries {
			if e.subdir {
				buf.WriteString(`<subdir name="`)
				xml.EscapeText(&buf, []byte(e.name))
				if kind == "container" {
					buf.WriteString(`"><name>`)
					xml.EscapeText(&buf, []byte(e.name))
					buf.WriteString(`</name></subdir>`)
				} else {
					buf.WriteString(`" />`)
				}
				continue
			}
			if kind == "container" {
				buf.WriteString("<object>")
				xmlField(&buf, "name", e.name)
				xmlField(&buf, "hash", e.etag)
				xmlField(&buf, "bytes", strconv.FormatInt(e.size, 10))
				xmlField(&buf, "content_type", e.contentType)
				xmlField(&buf, "last_modified", listingTime(e.modified))
				buf.WriteString("</object>")
			} else {
				buf.WriteString("<container>")
				xmlField(&buf, "name", e.name)
				xmlField(&buf, "count", strconv.FormatInt(e.count, 10))
				xmlField(&buf, "bytes", strconv.FormatInt(e.bytes, 10))
				xmlField(&buf, "last_modified", listingTime(e.modified))
				buf.WriteString("</container>")
			}
		}
		buf.WriteString("</" + kind + ">")
	default:
		for _, e := range entries {
			buf.WriteString(e.name)
			buf.WriteByte('\n')
		}
	}
	h := w.Header()
	h.Set("Content-Type", p.contentType+"; charset=utf-8")
	if r.URL.Query().Get("format") == "" {
		h.Add("Vary", "Accept")
	}
	if buf.Len() == 0 {
		status = http.StatusNoContent
	}
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(status)
		return
	}
	if status != http.StatusNoContent {
		h.Set("Content-Length", strconv.Itoa(buf.Len()))
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func xmlField(buf *bytes.Buffer, tag, value string) {
	buf.WriteString("<" + tag + ">")
	xml.EscapeText(buf, []byte(value))
	buf.WriteString("</" + tag + ">")
}

// appendJSONString writes s as a JSON string.
func appendJSONString(buf *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			buf.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '\t':
				buf.WriteString(`\t`)
			default:
				buf.WriteString(`\u00`)
				buf.WriteByte(hexDigits[c>>4])
				buf.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			buf.WriteString(s[start:i])
			if r == utf8.RuneError {
				buf.WriteString(`\ufffd`)
			} else {
				buf.WriteString(`\u202`)
				buf.WriteByte(hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}
