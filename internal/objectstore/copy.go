package objectstore

import (
	"net/http"
	"net/url"
	"os"
	"strings"
)

// splitCopyPath parses a copy source or destination: [/]container/object,
// percent-encoded.
func splitCopyPath(v, header string) (container, object string, err error) {
	u, uerr := url.PathUnescape(v)
	if uerr != nil {
		u = v
	}
	u = strings.TrimPrefix(u, "/")
	container, object, ok := strings.Cut(u, "/")
	if !ok || container == "" || object == "" {
		return "", "", errPrecondition(header + " header must be of the form <container name>/<object name>")
	}
	if !validName(container) || !validName(object) {
		return "", "", errPrecondition("Invalid UTF8 or contains NULL")
	}
	return container, object, nil
}

func unquoteAccount(v string) (string, error) {
	u, err := url.PathUnescape(v)
	if err != nil {
		u = v
	}
	if _, ok := projectOf(u); !ok || strings.Contains(u, "/") {
		return "", errPrecondition("Account name must be of the form " + resellerPrefix + "<project id>")
	}
	return u, nil
}

// handleCopyObject is COPY: a PUT of Destination from the request's object.
func (s *Service) handleCopyObject(rq *request) error {
	h := rq.r.Header
	dest := h.Get("Destination")
	if dest == "" {
		return errPrecondition("You must specify a Destination header")
	}
	dstCont, dstObj, err := splitCopyPath(dest, "Destination")
	if err != nil {
		return err
	}
	dstAcct := rq.account
	if a := h.Get("Destination-Account"); a != "" {
		if dstAcct, err = unquoteAccount(a); err != nil {
			return err
		}
	}
	srcAcct, srcCont, srcObj := rq.account, rq.container, rq.object
	dc, err := s.lookupContainer(rq.ctx, dstAcct, dstCont)
	if err != nil {
		return err
	}
	if _, err := rq.authorize(dstAcct, dc, objectWrite); err != nil {
		return err
	}
	if dc == nil {
		return errNotFound()
	}
	if err := s.checkObjectName(dstObj); err != nil {
		return err
	}
	rq.object = dstObj // the object being written, for content type guesses
	return s.copyObject(rq, srcAcct, srcCont, srcObj, dc)
}

// copyObject writes rq.object in dst from a source object: its bytes (a
// large object's concatenation, or the manifest itself with
// ?multipart-manifest=get), its metadata unless X-Fresh-Metadata, with the
// request's metadata on top.
func (s *Service) copyObject(rq *request, srcAcct, srcCont, srcObj string, dst *Container) error {
	h := rq.r.Header
	sc, err := s.lookupContainer(rq.ctx, srcAcct, srcCont)
	if err != nil {
		return err
	}
	if _, err := rq.authorize(srcAcct, sc, objectRead); err != nil {
		return err
	}
	if sc == nil {
		return errNotFound()
	}
	manifest := rq.q.Get("multipart-manifest") == "get"
	// A source copied as it is stored (a plain object, or a manifest
	// itself) has its bytes taken now: a blob read, a file opened (an
	// unlinked file stays readable), so that an overwrite of the source
	// while the copy runs does not cut it; if they went between reading
	// the row and taking them, the row is read again, as a GET does.
	var src Object
	var own piece
	var first *os.File
	err = retryGone(func() error {
		var err error
		if src, err = s.getObject(rq.ctx, nil, sc.ID, srcObj); err != nil {
			return err
		}
		if (src.isSLO() || src.isDLO()) && !manifest {
			return nil // the segments are read as the copy goes
		}
		own, first, err = s.takeBytes(rq.ctx, &src)
		return err
	})
	if err != nil {
		return err
	}
	// Closed here on every early return; once the body reader has it,
	// the reader closes it.
	defer func() {
		if first != nil {
			first.Close()
		}
	}()
	if err := s.checkMetadata(h, "object"); err != nil {
		return err
	}
	deleteAt, _, err := deleteAtOf(h)
	if err != nil {
		return err
	}
	m := src.Meta.clone()
	sizeOverride := int64(-1)
	var e *entity
	// As a GET of the source would answer, but always from the file.
	getReq := *rq
	getReq.account, getReq.container = srcAcct, srcCont
	switch {
	case src.isSLO() && manifest:
		e = &entity{pieces: []piece{own}, size: src.Stored}
		sizeOverride = src.Size
	case src.isSLO():
		if e, err = s.sloEntity(&getReq, sc, &src); err != nil {
			return err
		}
		delete(m, hdrStatic)
		for k := range m {
			if strings.HasPrefix(k, sysmetaPrefix) {
				delete(m, k)
			}
		}
	case src.isDLO() && !manifest:
		if e, err = s.dloEntity(&getReq, &src); err != nil {
			return err
		}
		delete(m, hdrManifest)
	default:
		e = &entity{pieces: []piece{own}, size: src.Stored}
	}
	if e.size > s.cfg.MaxFileSize {
		return errTooLarge("")
	}
	if trueValue(h.Get("X-Fresh-Metadata")) {
		for k := range m {
			if strings.HasPrefix(k, "X-Object-Meta-") || isKeptHeader(k) {
				delete(m, k)
			}
		}
	}
	for k, v := range objectMeta(h) {
		m[k] = v
	}
	if v := h.Get(hdrManifest); v != "" && !src.isSLO() {
		if err := manifestHeader(v); err != nil {
			return err
		}
		m[hdrManifest] = v
	}
	ct := src.ContentType
	if v := h.Get("Content-Type"); v != "" {
		if ct, err = contentTypeOf(rq.r, rq.object); err != nil {
			return err
		}
	}
	body := s.newPieceReader(rq.ctx, e.pieces)
	body.first, first = first, nil // the reader closes it now
	defer body.Close()
	o, err := s.storeObject(rq.ctx, dst, rq.object, objectData{
		body: body, length: e.size, contentType: ct, meta: m, deleteAt: deleteAt, size: sizeOverride,
		wantETag: strings.ToLower(normalizeETag(strings.TrimSpace(h.Get("Etag")))),
	})
	if err != nil {
		return err
	}
	w := rq.w.Header()
	w.Set("X-Copied-From", swiftQuote(srcCont+"/"+srcObj))
	w.Set("X-Copied-From-Last-Modified", httpDate(src.Modified))
	if srcAcct != dst.Account {
		w.Set("X-Copied-From-Account", swiftQuote(srcAcct))
	}
	w.Set("Etag", o.ETag)
	w.Set("Last-Modified", httpDate(o.Modified))
	return written(rq.w, http.StatusCreated)
}

func isKeptHeader(k string) bool {
	for _, h := range keptObjectHeaders {
		if h == k {
			return true
		}
	}
	return false
}

// swiftQuote percent-encodes s as Swift quotes names: Python's quote with
// "/" safe.
func swiftQuote(s string) string { return pyQuote(s, "/") }
