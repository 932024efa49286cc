package objectstore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// sloSegment is one entry of a stored SLO manifest, in Swift's own stored
// form (what ?multipart-manifest=get returns): an object-backed segment, or
// inline data.
type sloSegment struct {
	Name         string `json:"name"`
	Hash         string `json:"hash"`
	Bytes        int64  `json:"bytes"`
	ContentType  string `json:"content_type"`
	LastModified string `json:"last_modified"`
	Range        string `json:"range,omitempty"`
	SubSLO       bool   `json:"sub_slo,omitempty"`
	Data         string `json:"-"`
}

func (sg sloSegment) MarshalJSON() ([]byte, error) {
	if sg.Data != "" {
		return json.Marshal(map[string]string{"data": sg.Data})
	}
	type plain sloSegment
	return json.Marshal(plain(sg))
}

func (sg *sloSegment) UnmarshalJSON(b []byte) error {
	type plain sloSegment
	var p struct {
		plain
		Data string `json:"data"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*sg = sloSegment(p.plain)
	sg.Data = p.Data
	return nil
}

// segRange parses a stored segment range "first-last" (inclusive).
func segRange(r string) (off, n int64, ok bool) {
	a, b, found := strings.Cut(r, "-")
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if !found || err1 != nil || err2 != nil || x < 0 || y < x {
		return 0, 0, false
	}
	return x, y - x + 1, true
}

// handlePutSLO is PUT ?multipart-manifest=put: the body lists the segments
// ({"path", "etag", "size_bytes", "range"} or {"data"}); each object-backed
// segment must exist, be readable by the caller and match what the
// manifest says of it. The stored manifest is Swift's form, with every
// segment's etag and size.
func (s *Service) handlePutSLO(rq *request, c *Container) error {
	h := rq.r.Header
	if h.Get("X-Copy-From") != "" {
		return swiftError(http.StatusMethodNotAllowed, "Multipart Manifest PUTs cannot be COPY requests")
	}
	tooBig := errTooLarge(fmt.Sprintf("Manifest File > %d bytes", s.cfg.MaxManifestSize))
	if _, err := bodyLength(rq.r, s.cfg.MaxManifestSize); isStatus(err, http.StatusRequestEntityTooLarge) {
		return tooBig
	} else if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(rq.r.Body, s.cfg.MaxManifestSize+1))
	if err != nil {
		return errClientDisconnect(err)
	}
	if int64(len(body)) > s.cfg.MaxManifestSize {
		return tooBig
	}
	segs, err := s.parseSLOInput(body, rq)
	if err != nil {
		return err
	}
	objectSegs := 0
	for _, sg := range segs {
		if sg.path != "" {
			objectSegs++
		}
	}
	if objectSegs > s.cfg.MaxManifestSegments {
		return errTooLarge(fmt.Sprintf("Number of object-backed segments must be <= %d", s.cfg.MaxManifestSegments))
	}
	d, err := s.objectPutData(rq, c)
	if err != nil {
		return err
	}
	// Check every segment as a HEAD by the caller would.
	var problems [][2]string
	stored := make([]sloSegment, len(segs))
	var total int64
	etagHash := md5.New()
	for i, sg := range segs {
		if sg.data != nil {
			stored[i] = sloSegment{Data: base64.StdEncoding.EncodeToString(sg.data)}
			total += int64(len(sg.data))
			sum := md5.Sum(sg.data)
			etagHash.Write([]byte(hex.EncodeToString(sum[:])))
			continue
		}
		seg, status := s.headSegment(rq, sg.path)
		if status != "" {
			problems = append(problems, [2]string{swiftQuote(sg.path), status})
			continue
		}
		segETag, segSize := seg.ETag, seg.Size
		if seg.isSLO() {
			segETag = seg.Meta[sysSLOETag]
		}
		length := segSize
		rng := ""
		if sg.rng != nil {
			rs := rangesFor(sg.rng, segSize)
			switch {
			case len(rs) == 0:
				problems = append(problems, [2]string{swiftQuote(sg.path), "Unsatisfiable Range"})
			case rs[0].start == 0 && rs[0].end == segSize:
			default:
				rng = fmt.Sprintf("%d-%d", rs[0].start, rs[0].end-1)
				length = rs[0].end - rs[0].start
			}
		}
		if length < 1 && i != len(segs)-1 {
			problems = append(problems, [2]string{swiftQuote(sg.path), "Too small; each segment must be at least 1 byte."})
		}
		if sg.size >= 0 && sg.size != segSize {
			problems = append(problems, [2]string{swiftQuote(sg.path), "Size Mismatch"})
		}
		if sg.etag != "" && normalizeETag(sg.etag) != segETag {
			problems = append(problems, [2]string{swiftQuote(sg.path), "Etag Mismatch"})
		}
		stored[i] = sloSegment{
			Name: "/" + strings.TrimLeft(sg.path, "/"), Hash: segETag, Bytes: segSize,
			ContentType: seg.ContentType, LastModified: listingTime(seg.Modified), Range: rng, SubSLO: seg.isSLO(),
		}
		total += length
		if rng != "" {
			etagHash.Write([]byte(segETag + ":" + rng + ";"))
		} else {
			etagHash.Write([]byte(segETag))
		}
	}
	if len(problems) > 0 {
		writeBulk(rq.w, http.StatusBadRequest, bulkFormat(rq.r), "upload", map[string]any{}, problems)
		return nil
	}
	sloETag := hex.EncodeToString(etagHash.Sum(nil))
	if d.wantETag != "" && d.wantETag != sloETag {
		return errUnprocessable()
	}
	manifest, err := json.Marshal(stored)
	if err != nil {
		return err
	}
	d.body, d.length, d.wantETag, d.size = bytes.NewReader(manifest), int64(len(manifest)), "", total
	d.meta[hdrStatic] = "True"
	d.meta[sysSLOETag] = sloETag
	delete(d.meta, hdrManifest)
	o, err := s.storeObject(rq.ctx, c, rq.object, d)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Etag", `"`+sloETag+`"`)
	rq.w.Header().Set("Last-Modified", httpDate(o.Modified))
	return written(rq.w, http.StatusCreated)
}

// reservedSLOHeader reports whether an object request carries
// X-Static-Large-Object (with any value) where Swift's slo middleware
// refuses it: on anything but a manifest PUT (?multipart-manifest=put), a
// manifest DELETE (?multipart-manifest=delete), a GET or a HEAD. A bulk
// delete is answered before slo sees it.
func reservedSLOHeader(rq *request) bool {
	if _, ok := rq.r.Header[hdrStatic]; !ok {
		return false
	}
	mm := rq.q.Get("multipart-manifest")
	switch rq.r.Method {
	case http.MethodGet, http.MethodHead:
		return false
	case http.MethodPut:
		return mm != "put"
	case http.MethodDelete:
		return mm != "delete"
	case http.MethodPost:
		return !rq.q.Has("bulk-delete") || rq.tempURL != nil
	}
	return true
}

// sloInput is a validated segment of a manifest PUT.
type sloInput struct {
	path string // "" for a data segment
	etag string
	size int64 // -1: not given
	rng  []rangeSpec
	data []byte
}

// parseSLOInput checks a manifest PUT's body as Swift does, reporting every
// bad segment by index.
func (s *Service) parseSLOInput(body []byte, rq *request) ([]sloInput, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		var anyv any
		if json.Unmarshal(body, &anyv) == nil {
			return nil, errBadRequest("Manifest must be a list.\n")
		}
		return nil, errBadRequest("Manifest must be valid JSON.\n")
	}
	var errs []string
	out := make([]sloInput, 0, len(raw))
	for i, r := range raw {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r, &m); err != nil || m == nil {
			errs = append(errs, fmt.Sprintf("Index %d: not a JSON object", i))
			continue
		}
		typ := ""
		if _, ok := m["data"]; ok {
			typ = "data"
		} else if _, ok := m["path"]; ok {
			typ = "path"
		} else {
			errs = append(errs, fmt.Sprintf("Index %d: expected keys to include one of 'data' or 'path'", i))
			continue
		}
		var extra []string
		for k := range m {
			if k != typ && (typ == "data" || k != "etag" && k != "size_bytes" && k != "range") {
				b, _ := json.Marshal(k)
				extra = append(extra, string(b))
			}
		}
		if len(extra) > 0 {
			sort.Strings(extra)
			errs = append(errs, fmt.Sprintf("Index %d: extraneous keys %s", i, strings.Join(extra, ", ")))
			continue
		}
		in := sloInput{size: -1}
		if typ == "data" {
			var d string
			if json.Unmarshal(m["data"], &d) != nil {
				errs = append(errs, fmt.Sprintf("Index %d: data must be valid base64", i))
				continue
			}
			b, err := base64.StdEncoding.DecodeString(d)
			if err != nil {
				b, err = base64.URLEncoding.DecodeString(d)
			}
			if err != nil {
				errs = append(errs, fmt.Sprintf("Index %d: data must be valid base64", i))
				continue
			}
			if len(b) < 1 {
				errs = append(errs, fmt.Sprintf("Index %d: too small; each segment must be at least 1 byte.", i))
				continue
			}
			in.data = b
			out = append(out, in)
			continue
		}
		if json.Unmarshal(m["path"], &in.path) != nil {
			errs = append(errs, fmt.Sprintf("Index %d: \"path\" must be a string", i))
			continue
		}
		if e, ok := m["etag"]; ok && string(e) != "null" {
			if json.Unmarshal(e, &in.etag) != nil {
				errs = append(errs, fmt.Sprintf("Index %d: \"etag\" must be a string or null (if provided)", i))
				continue
			}
		}
		if !strings.Contains(strings.Trim(in.path, "/"), "/") {
			errs = append(errs, fmt.Sprintf("Index %d: path does not refer to an object. Path must be of the form /container/object.", i))
			continue
		}
		if sz, ok := m["size_bytes"]; ok && string(sz) != "null" {
			n, err := jsonInt(sz)
			if err != nil {
				errs = append(errs, fmt.Sprintf("Index %d: invalid size_bytes", i))
				continue
			}
			if n < 1 && i != len(raw)-1 {
				errs = append(errs, fmt.Sprintf("Index %d: too small; each segment must be at least 1 byte.", i))
				continue
			}
			in.size = n
		}
		if "/"+strings.TrimLeft(in.path, "/") == "/"+rq.container+"/"+rq.object {
			errs = append(errs, fmt.Sprintf("Index %d: manifest must not include itself as a segment", i))
			continue
		}
		if rr, ok := m["range"]; ok && string(rr) != "null" {
			var rs string
			json.Unmarshal(rr, &rs)
			if rs != "" {
				specs, ok := parseRange("bytes=" + rs)
				if !ok {
					errs = append(errs, fmt.Sprintf("Index %d: invalid range", i))
					continue
				}
				if len(specs) > 1 {
					errs = append(errs, fmt.Sprintf("Index %d: multiple ranges (only one allowed)", i))
					continue
				}
				if in.size >= 0 && len(rangesFor(specs, in.size)) != 1 {
					errs = append(errs, fmt.Sprintf("Index %d: unsatisfiable range", i))
					continue
				}
				in.rng = specs
			}
		}
		out = append(out, in)
	}
	if len(out) > 0 && len(errs) == 0 {
		allData := true
		for _, in := range out {
			allData = allData && in.data != nil
		}
		if allData {
			errs = append(errs, "Inline data segments require at least one object-backed segment.")
		}
	}
	if len(errs) > 0 {
		return nil, errBadRequest("%s", strings.Join(errs, "\n")+"\n")
	}
	return out, nil
}

// jsonInt reads an integer given as a number or a numeric string.
func jsonInt(b json.RawMessage) (int64, error) {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return 0, err
		}
		n = json.Number(strings.TrimSpace(s))
	}
	return n.Int64()
}

// headSegment looks up an SLO segment (/container/object of the request's
// account) as a HEAD by the caller would: the object, or the status line a
// HEAD would have answered.
func (s *Service) headSegment(rq *request, p string) (Object, string) {
	cname, oname, _ := strings.Cut(strings.TrimLeft(p, "/"), "/")
	c, err := s.lookupContainer(rq.ctx, rq.account, cname)
	if err == nil {
		_, err = rq.authorize(rq.account, c, objectRead)
		if err == nil && c == nil {
			err = errNotFound()
		}
	}
	var o Object
	if err == nil {
		o, err = s.getObject(rq.ctx, nil, c.ID, oname)
	}
	if err != nil {
		return o, statusLine(api.AsError(err).Status)
	}
	return o, ""
}

// readManifest reads and parses an SLO manifest's bytes (a blob in the
// database, unless it is large).
func (s *Service) readManifest(ctx context.Context, o *Object) ([]sloSegment, []byte, error) {
	f, err := s.openBytes(ctx, o.File)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4*s.cfg.MaxManifestSize))
	if err != nil {
		return nil, nil, err
	}
	var segs []sloSegment
	if err := json.Unmarshal(b, &segs); err != nil {
		return nil, nil, fmt.Errorf("manifest %s: %w", o.File, err)
	}
	return segs, b, nil
}

// maxSLODepth bounds manifests of manifests.
const maxSLODepth = 10

// sloEntity resolves an SLO's segments into the pieces its GET serves. A
// segment that is gone, changed or not readable by the caller is a 409.
func (s *Service) sloEntity(rq *request, c *Container, o *Object) (*entity, error) {
	segs, _, err := s.readManifest(rq.ctx, o)
	if err != nil {
		return nil, err
	}
	containers := map[string]*Container{c.Name: c}
	pieces, err := s.sloPieces(rq, segs, containers, 0)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, p := range pieces {
		total += p.n
	}
	if total != o.Size {
		return nil, swiftError(http.StatusConflict, "The segments of this manifest do not add up to its size.")
	}
	etag := o.Meta[sysSLOETag]
	return &entity{pieces: pieces, size: total, etag: etag, etagHeader: `"` + etag + `"`,
		modified: o.Modified, contentType: o.ContentType}, nil
}

func segmentConflict(name string) error {
	return swiftError(http.StatusConflict, "A segment of this large object is missing, changed or not readable: "+name)
}

func (s *Service) sloPieces(rq *request, segs []sloSegment, containers map[string]*Container, depth int) ([]piece, error) {
	if depth > maxSLODepth {
		return nil, swiftError(http.StatusConflict, "Max recursion depth exceeded on large object manifest.")
	}
	var out []piece
	for _, sg := range segs {
		if sg.Data != "" {
			b, err := base64.StdEncoding.DecodeString(sg.Data)
			if err != nil {
				return nil, segmentConflict("(data)")
			}
			out = append(out, piece{data: b, n: int64(len(b))})
			continue
		}
		cname, oname, _ := strings.Cut(strings.TrimPrefix(sg.Name, "/"), "/")
		c, ok := containers[cname]
		if !ok {
			var err error
			if c, err = s.lookupContainer(rq.ctx, rq.account, cname); err != nil {
				return nil, err
			}
			if c != nil {
				if _, err := rq.authorize(rq.account, c, objectRead); err != nil {
					c = nil
				}
			}
			containers[cname] = c
		}
		if c == nil {
			return nil, segmentConflict(sg.Name)
		}
		so, err := s.getObject(rq.ctx, nil, c.ID, oname)
		if err != nil {
			return nil, segmentConflict(sg.Name)
		}
		var sub []piece
		if so.isSLO() {
			if so.Meta[sysSLOETag] != sg.Hash || so.Size != sg.Bytes {
				return nil, segmentConflict(sg.Name)
			}
			subSegs, _, err := s.readManifest(rq.ctx, &so)
			if err != nil {
				return nil, segmentConflict(sg.Name)
			}
			if sub, err = s.sloPieces(rq, subSegs, containers, depth+1); err != nil {
				return nil, err
			}
		} else {
			if so.ETag != sg.Hash || so.Stored != sg.Bytes {
				return nil, segmentConflict(sg.Name)
			}
			sub = []piece{{file: so.File, n: so.Stored}}
		}
		if sg.Range != "" {
			off, n, ok := segRange(sg.Range)
			if !ok {
				return nil, segmentConflict(sg.Name)
			}
			sub = slicePieces(sub, off, off+n)
		}
		out = append(out, sub...)
	}
	return out, nil
}

// slicePieces returns the pieces covering bytes [start, end) of ps.
func slicePieces(ps []piece, start, end int64) []piece {
	var out []piece
	var pos int64
	for _, p := range ps {
		pstart, pend := pos, pos+p.n
		pos = pend
		if pend <= start || pstart >= end {
			continue
		}
		from, to := max(start, pstart)-pstart, min(end, pend)-pstart
		q := p
		if q.data != nil {
			q.data = q.data[from:to]
		} else {
			q.off += from
		}
		q.n = to - from
		out = append(out, q)
	}
	return out
}

// sloManifestEntity is GET ?multipart-manifest=get of an SLO: the stored
// manifest, or with &format=raw the form it was PUT in.
func (s *Service) sloManifestEntity(rq *request, o *Object) (*entity, error) {
	segs, body, err := s.readManifest(rq.ctx, o)
	if err != nil {
		return nil, err
	}
	if rq.q.Get("format") == "raw" {
		raw := make([]map[string]any, 0, len(segs))
		for _, sg := range segs {
			if sg.Data != "" {
				raw = append(raw, map[string]any{"data": sg.Data})
				continue
			}
			m := map[string]any{"path": sg.Name, "etag": sg.Hash, "size_bytes": sg.Bytes}
			if sg.Range != "" {
				m["range"] = sg.Range
			}
			raw = append(raw, m)
		}
		body, _ = json.Marshal(raw)
	}
	sum := md5.Sum(body)
	etag := hex.EncodeToString(sum[:])
	return &entity{pieces: []piece{{data: append([]byte{}, body...), n: int64(len(body))}}, size: int64(len(body)),
		etag: etag, etagHeader: etag, modified: o.Modified, contentType: "application/json; charset=utf-8"}, nil
}

// dloEntity resolves a DLO: the objects of its container whose names start
// with its prefix, in order. Like Swift, it honours a single range only.
func (s *Service) dloEntity(rq *request, o *Object) (*entity, error) {
	v := o.Meta[hdrManifest]
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	cname, prefix, _ := strings.Cut(v, "/")
	c, err := s.lookupContainer(rq.ctx, rq.account, cname)
	if err != nil {
		return nil, err
	}
	if _, err := rq.authorize(rq.account, c, containerRead); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errNotFound()
	}
	q := `SELECT file, stored, etag FROM swift_objects WHERE container_id=? AND name >= ? AND (delete_at = 0 OR delete_at > ?)`
	args := []any{c.ID, prefix, nowUnix()}
	if e := prefixEnd(prefix); e != "" {
		q += ` AND name < ?`
		args = append(args, e)
	}
	rows, err := s.db.QueryContext(rq.ctx, q+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	e := &entity{modified: o.Modified, contentType: o.ContentType, singleRange: true}
	h := md5.New()
	for rows.Next() {
		var p piece
		var etag string
		if err := rows.Scan(&p.file, &p.n, &etag); err != nil {
			return nil, err
		}
		e.pieces = append(e.pieces, p)
		e.size += p.n
		h.Write([]byte(etag))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	e.etag = hex.EncodeToString(h.Sum(nil))
	e.etagHeader = `"` + e.etag + `"`
	return e, nil
}

// handleDeleteSLO is DELETE ?multipart-manifest=delete: the segments
// (those of nested manifests too), then the manifest, answered as a bulk
// delete.
func (s *Service) handleDeleteSLO(rq *request, c *Container) error {
	format := bulkFormat(rq.r)
	res := &bulkResult{}
	self := "/" + rq.container + "/" + rq.object
	var paths []string
	var expand func(cname, oname string, depth int) error
	expand = func(cname, oname string, depth int) error {
		sc, err := s.lookupContainer(rq.ctx, rq.account, cname)
		if err == nil {
			_, err = rq.authorize(rq.account, sc, objectRead)
			if err == nil && sc == nil {
				err = errNotFound()
			}
		}
		var o Object
		if err == nil {
			o, err = s.getObject(rq.ctx, nil, sc.ID, oname)
		}
		if err != nil {
			return err
		}
		if !o.isSLO() {
			return errBadRequest("Not an SLO manifest")
		}
		if depth > maxSLODepth {
			return errBadRequest("Too many buffered slo segments to delete.")
		}
		segs, _, err := s.readManifest(rq.ctx, &o)
		if err != nil {
			return err
		}
		for _, sg := range segs {
			if sg.Data != "" {
				continue
			}
			if sg.SubSLO {
				cn, on, _ := strings.Cut(strings.TrimPrefix(sg.Name, "/"), "/")
				if err := expand(cn, on, depth+1); err != nil {
					s.noteSLOError(res, sg.Name, err)
					continue
				}
				continue
			}
			paths = append(paths, sg.Name)
		}
		paths = append(paths, "/"+cname+"/"+oname)
		return nil
	}
	if err := expand(c.Name, rq.object, 0); err != nil {
		s.noteSLOError(res, self, err)
	}
	s.deletePaths(rq, paths, res)
	res.write(rq.w, format)
	return nil
}

// noteSLOError records a manifest that could not be expanded: a missing
// one counts as not found, anything else as a failure with its message.
func (s *Service) noteSLOError(res *bulkResult, name string, err error) {
	if isStatus(err, http.StatusNotFound) {
		res.notFound++
		return
	}
	res.errors = append(res.errors, [2]string{swiftQuote(name), api.AsError(err).Message})
}
