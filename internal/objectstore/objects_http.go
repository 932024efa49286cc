package objectstore

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

func (s *Service) handleObject(rq *request) error {
	switch rq.r.Method {
	case http.MethodGet, http.MethodHead:
		return s.handleGetObject(rq)
	case http.MethodPut:
		return s.handlePutObject(rq)
	case http.MethodPost:
		if rq.q.Has("bulk-delete") && rq.tempURL == nil {
			return s.handleBulkDelete(rq)
		}
		return s.handlePostObject(rq)
	case http.MethodDelete:
		return s.handleDeleteObject(rq)
	case "COPY":
		if rq.tempURL != nil {
			return errUnauthorized()
		}
		return s.handleCopyObject(rq)
	}
	return errMethod(rq.r.Method)
}

// objectTarget finds the container of the request's object and authorizes
// want on it; a missing container is a 404 only for callers allowed to
// know.
func (s *Service) objectTarget(rq *request, want access) (*Container, bool, error) {
	c, err := s.lookupContainer(rq.ctx, rq.account, rq.container)
	if err != nil {
		return nil, false, err
	}
	owner, err := rq.authorize(rq.account, c, want)
	if err != nil {
		return nil, false, err
	}
	if c == nil {
		return nil, false, errNotFound()
	}
	return c, owner, nil
}

func (s *Service) handleGetObject(rq *request) error {
	c, _, err := s.objectTarget(rq, objectRead)
	if err != nil {
		return err
	}
	var o Object
	var e *entity
	err = retryGone(func() error {
		var err error
		if o, err = s.getObject(rq.ctx, nil, c.ID, rq.object); err != nil {
			return err
		}
		e, err = s.entityFor(rq, c, &o)
		return err
	})
	if err != nil {
		return err
	}
	h := rq.w.Header()
	objectHeaders(h, &o)
	if rq.tempURL != nil {
		rq.tempURL.adjust(h, rq.object)
	}
	return s.serve(rq.w, rq.r, e)
}

// retryGone runs read, which reads an object's row and then its bytes,
// again while the bytes are gone (os.ErrNotExist): the object was
// replaced or deleted between the two, and its row, read again, names
// the new bytes. Three more tries; bytes still gone are a 404.
func retryGone(read func() error) error {
	for attempt := 0; ; attempt++ {
		err := read()
		switch {
		case !errors.Is(err, os.ErrNotExist):
			return err
		case attempt >= 3:
			return errNotFound()
		}
	}
}

// objectHeaders describes an object: its timestamp, expiry and the headers
// kept with it (system metadata stays hidden).
func objectHeaders(h http.Header, o *Object) {
	h.Set("X-Timestamp", xTimestamp(o.Modified))
	for _, k := range o.Meta.sortedKeys() {
		if strings.HasPrefix(k, sysmetaPrefix) {
			continue
		}
		h.Set(k, o.Meta[k])
	}
	if o.DeleteAt != 0 {
		h.Set(hdrDeleteAt, strconv.FormatInt(o.DeleteAt, 10))
	}
}

// entityFor resolves what a GET of o serves: its own bytes, or for large
// objects the concatenation of their segments (unless
// ?multipart-manifest=get asks for the manifest itself).
func (s *Service) entityFor(rq *request, c *Container, o *Object) (*entity, error) {
	manifest := rq.q.Get("multipart-manifest") == "get"
	switch {
	case o.isSLO() && manifest:
		return s.sloManifestEntity(rq, o)
	case o.isSLO() && rq.r.Method == http.MethodHead:
		// A HEAD answers from the manifest's own record, as Swift's does,
		// without reading every segment.
		etag := o.Meta[sysSLOETag]
		return &entity{size: o.Size, etag: etag, etagHeader: `"` + etag + `"`, modified: o.Modified, contentType: o.ContentType}, nil
	case o.isSLO():
		return s.sloEntity(rq, c, o)
	case o.isDLO() && !manifest:
		return s.dloEntity(rq, o)
	}
	e := &entity{
		pieces: []piece{{file: o.File, n: o.Stored}},
		size:   o.Stored, etag: o.ETag, etagHeader: o.ETag, modified: o.Modified, contentType: o.ContentType,
	}
	switch {
	case rq.r.Method != http.MethodGet:
	case isDBFile(o.File):
		b, err := s.readBlob(rq.ctx, o.File)
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != o.Stored {
			return nil, fmt.Errorf("%s: %d bytes, not %d", o.File, len(b), o.Stored)
		}
		e.pieces[0].data = b
	default:
		f, err := s.blobs.open(o.File)
		if err != nil {
			return nil, err
		}
		e.first = f
	}
	return e, nil
}

// bodyLength is the declared length of a request body: -1 for chunked; a
// body with neither is a 411, one over max a 413.
func bodyLength(r *http.Request, max int64) (int64, error) {
	for _, te := range r.TransferEncoding {
		if strings.EqualFold(te, "chunked") {
			return -1, nil
		}
	}
	if _, ok := r.Header["Content-Length"]; !ok && r.ContentLength <= 0 {
		return 0, swiftError(http.StatusLengthRequired, "Missing Content-Length header.")
	}
	if r.ContentLength > max {
		return 0, errTooLarge("")
	}
	return max0(r.ContentLength), nil
}

func max0(n int64) int64 {
	if n < 0 {
		return 0
	}
	return n
}

// guessType is the content type of a name's extension, as Swift guesses it.
func guessType(name string) string {
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		if mt, _, err := mime.ParseMediaType(t); err == nil {
			return mt
		}
		return t
	}
	return "application/octet-stream"
}

// contentTypeOf is the content type a PUT gives an object.
func contentTypeOf(r *http.Request, name string) (string, error) {
	ct := withoutSwiftBytes(r.Header.Get("Content-Type"))
	if ct == "" || trueValue(r.Header.Get("X-Detect-Content-Type")) {
		return guessType(name), nil
	}
	if !utf8.ValidString(ct) {
		return "", errBadRequest("Invalid Content-Type")
	}
	return ct, nil
}

// withoutSwiftBytes drops the swift_bytes parameter from a content type.
// It is Swift's internal channel (slo appends it to carry an SLO's total
// size to the container listing) and its proxy strips it from whatever
// clients see, so it is never kept nor shown here.
func withoutSwiftBytes(ct string) string {
	if !strings.Contains(strings.ToLower(ct), "swift_bytes") {
		return ct
	}
	parts := strings.Split(ct, ";")
	out := []string{parts[0]}
	for _, p := range parts[1:] {
		if k, _, _ := strings.Cut(p, "="); strings.EqualFold(strings.TrimSpace(k), "swift_bytes") {
			continue
		}
		out = append(out, p)
	}
	return strings.TrimSpace(strings.Join(out, ";"))
}

// deleteAtOf reads X-Delete-After (which wins) or X-Delete-At: the Unix
// time the object expires, or 0 and false when neither is set.
func deleteAtOf(h http.Header) (int64, bool, error) {
	now := nowUnix()
	if v := h.Get("X-Delete-After"); v != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, false, errBadRequest("Non-integer X-Delete-After")
		}
		if n <= 0 {
			return 0, false, errBadRequest("X-Delete-After in past")
		}
		return now + n, true, nil
	}
	if v := h.Get(hdrDeleteAt); v != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f != f || f > 1e15 || f < -1e15 {
			return 0, false, errBadRequest("Non-integer X-Delete-At")
		}
		n := int64(f)
		if n <= now {
			return 0, false, errBadRequest("X-Delete-At in past")
		}
		return n, true, nil
	}
	return 0, false, nil
}

// manifestHeader validates X-Object-Manifest: container/prefix.
func manifestHeader(v string) error {
	c, p, ok := strings.Cut(v, "/")
	if !ok || c == "" || p == "" || strings.ContainsAny(v, "?&") || strings.HasPrefix(p, "/") {
		return errBadRequest("X-Object-Manifest must be in the format container/prefix")
	}
	return nil
}

func (s *Service) checkObjectName(name string) error {
	if n := len(name); n > s.cfg.MaxObjectNameLength {
		return errBadRequest("Object name length of %d longer than %d", n, s.cfg.MaxObjectNameLength)
	}
	return nil
}

func (s *Service) handlePutObject(rq *request) error {
	c, _, err := s.objectTarget(rq, objectWrite)
	if err != nil {
		return err
	}
	if err := s.checkObjectName(rq.object); err != nil {
		return err
	}
	h := rq.r.Header
	if rq.q.Get("multipart-manifest") == "put" {
		return s.handlePutSLO(rq, c)
	}
	if src := h.Get("X-Copy-From"); src != "" {
		if rq.r.ContentLength > 0 {
			return errBadRequest("Copy requests require a zero byte body")
		}
		srcCont, srcObj, err := splitCopyPath(src, "X-Copy-From")
		if err != nil {
			return err
		}
		srcAcct := rq.account
		if a := h.Get("X-Copy-From-Account"); a != "" {
			if srcAcct, err = unquoteAccount(a); err != nil {
				return err
			}
		}
		return s.copyObject(rq, srcAcct, srcCont, srcObj, c)
	}
	d, err := s.objectPutData(rq, c)
	if err != nil {
		return err
	}
	o, err := s.storeObject(rq.ctx, c, rq.object, d)
	if err != nil {
		return err
	}
	rq.w.Header().Set("Etag", o.ETag)
	rq.w.Header().Set("Last-Modified", httpDate(o.Modified))
	return written(rq.w, http.StatusCreated)
}

// objectPutData validates a plain PUT: length, content type, metadata,
// expiry, manifest and conditions.
func (s *Service) objectPutData(rq *request, c *Container) (objectData, error) {
	h := rq.r.Header
	length, err := bodyLength(rq.r, s.cfg.MaxFileSize)
	if err != nil {
		return objectData{}, err
	}
	ct, err := contentTypeOf(rq.r, rq.object)
	if err != nil {
		return objectData{}, err
	}
	if err := s.checkMetadata(h, "object"); err != nil {
		return objectData{}, err
	}
	deleteAt, _, err := deleteAtOf(h)
	if err != nil {
		return objectData{}, err
	}
	m := objectMeta(h)
	if v := h.Get(hdrManifest); v != "" {
		if err := manifestHeader(v); err != nil {
			return objectData{}, err
		}
		m[hdrManifest] = v
	}
	ifNoneMatch := false
	if v := h.Get("If-None-Match"); v != "" {
		if strings.TrimSpace(v) != "*" {
			return objectData{}, errBadRequest("If-None-Match only supports *")
		}
		ifNoneMatch = true
	}
	return objectData{
		body: rq.r.Body, length: length, wantETag: strings.ToLower(normalizeETag(strings.TrimSpace(h.Get("Etag")))),
		contentType: ct, meta: m, deleteAt: deleteAt, ifNoneMatch: ifNoneMatch, size: -1,
	}, nil
}

func (s *Service) handlePostObject(rq *request) error {
	c, _, err := s.objectTarget(rq, objectWrite)
	if err != nil {
		return err
	}
	h := rq.r.Header
	if err := s.checkMetadata(h, "object"); err != nil {
		return err
	}
	deleteAt, setDeleteAt, err := deleteAtOf(h)
	if err != nil {
		return err
	}
	if v := h.Get(hdrManifest); v != "" {
		if err := manifestHeader(v); err != nil {
			return err
		}
	}
	ct := withoutSwiftBytes(h.Get("Content-Type"))
	if !utf8.ValidString(ct) {
		return errBadRequest("Invalid Content-Type")
	}
	_, err = s.updateObject(rq.ctx, c.ID, rq.object, func(o *Object) error {
		m := objectMeta(h)
		for k, v := range o.Meta {
			// What a POST does not replace: the large-object markers.
			if k == hdrStatic || strings.HasPrefix(k, sysmetaPrefix) || k == hdrManifest && h.Get(hdrManifest) == "" {
				m[k] = v
			}
		}
		if v := h.Get(hdrManifest); v != "" && !o.isSLO() {
			m[hdrManifest] = v
		}
		o.Meta = m
		if ct != "" {
			o.ContentType = ct
		}
		switch {
		case setDeleteAt:
			o.DeleteAt = deleteAt
		case h.Get("X-Remove-Delete-At") != "":
			o.DeleteAt = 0
		}
		o.Modified = nowMicro()
		return nil
	})
	if err != nil {
		return err
	}
	return written(rq.w, http.StatusAccepted)
}

func (s *Service) handleDeleteObject(rq *request) error {
	c, _, err := s.objectTarget(rq, objectWrite)
	if err != nil {
		return err
	}
	if rq.q.Get("multipart-manifest") == "delete" {
		return s.handleDeleteSLO(rq, c)
	}
	if _, err := s.deleteObject(rq.ctx, c.ID, rq.object); err != nil {
		return err
	}
	return written(rq.w, http.StatusNoContent)
}
