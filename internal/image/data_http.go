package image

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// importMethods are the interoperable import methods offered. web-download
// is not: monostack fetches nothing from the Internet on a user's behalf.
var importMethods = []string{"glance-direct"}

// checkOctetStream refuses bodies that are not application/octet-stream.
func checkOctetStream(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/octet-stream" {
		if ct == "" {
			ct = "None"
		}
		return api.Errorf(http.StatusUnsupportedMediaType, "Invalid content type %s", ct)
	}
	return nil
}

// sizeHint is the size the client announced (x-openstack-image-size or
// Content-Length), or -1.
func sizeHint(r *http.Request) (int64, error) {
	if v := r.Header.Get("X-Openstack-Image-Size"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, api.BadRequest("Invalid or missing image size in request headers.")
		}
		return n, nil
	}
	if r.ContentLength >= 0 {
		return r.ContentLength, nil
	}
	return -1, nil
}

func checkStore(id string) error {
	if id != "" && id != StoreID {
		return api.BadRequest("Unknown scheme '%s' found in store: no such store (the only store is '%s').", id, StoreID)
	}
	return nil
}

func (s *Service) handleUpload(stage bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := checkOctetStream(r); err != nil {
			return err
		}
		if err := checkStore(r.Header.Get("X-Image-Meta-Store")); err != nil {
			return err
		}
		hint, err := sizeHint(r)
		if err != nil {
			return err
		}
		c := credsOf(r)
		id := r.PathValue("id")
		im, err := s.lookup(r.Context(), c, id)
		if err != nil {
			return err
		}
		if !c.canModify(im) {
			return api.Forbidden("Not allowed to upload image data for image %s", id)
		}
		if _, err := s.writeData(r.Context(), im, r.Body, hint, stage); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Service) handleDownload(w http.ResponseWriter, r *http.Request) error {
	c := credsOf(r)
	id := r.PathValue("id")
	im, err := s.lookup(r.Context(), c, id)
	if err != nil {
		return err
	}
	if im.Status == StatusDeactivated && !c.admin {
		return api.Forbidden("The requested image has been deactivated. Image data download is forbidden.")
	}
	if !im.HasData() {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	f, err := os.Open(filepath.Join(s.imagesDir, id))
	if errors.Is(err, os.ErrNotExist) {
		s.log.Error("image data missing", "image", id)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	offset, length, partial, err := parseRange(r.Header.Get("Range"), size)
	if cr := r.Header.Get("Content-Range"); r.Header.Get("Range") == "" && cr != "" {
		offset, length, err = legacyRange(cr, size)
		partial = true
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if im.Checksum != "" {
		h.Set("Content-MD5", im.Checksum)
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", offset, offset+length-1, size))
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return err
		}
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	// io.CopyN from an *os.File lets net/http use sendfile.
	if _, err := io.CopyN(w, f, length); err != nil {
		s.log.Debug("download cut", "image", id, "err", err)
	}
	return nil
}

// rangeNotSatisfiable is Glance's 416 for an image of size bytes.
func rangeNotSatisfiable(size int64, msg string) error {
	e := api.Errorf(http.StatusRequestedRangeNotSatisfiable, "%s", msg)
	e.Header = http.Header{"Content-Range": {fmt.Sprintf("bytes */%d", size)}}
	return e
}

// legacyRange reads a Content-Range request header ("bytes a-b/len" or
// "bytes a-b/*"), which Glance still honours on downloads for old clients
// when there is no Range, as the range it means. As Glance: a malformed
// one, a stop past the image when the length is "*", or a start past the
// image is a 416.
func legacyRange(h string, size int64) (offset, length int64, err error) {
	unsatisfiable := func(msg string) error { return rangeNotSatisfiable(size, msg) }
	invalid := unsatisfiable("Invalid Content-Range header.")
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	span, total, slash := strings.Cut(spec, "/")
	a, b, dash := strings.Cut(span, "-")
	if !ok || !slash || !dash {
		return 0, 0, invalid
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, invalid
	}
	if total == "*" {
		if end >= size {
			return 0, 0, unsatisfiable(fmt.Sprintf("Invalid stop position in Content-Range header. "+
				"The stop position MUST be in the inclusive range [0, %d].", size-1))
		}
	} else if n, err := strconv.ParseInt(total, 10, 64); err != nil || end >= n {
		return 0, 0, invalid
	}
	if start >= size {
		return 0, 0, unsatisfiable(fmt.Sprintf("Invalid start position in Content-Range header. "+
			"Start position MUST be in the inclusive range [0, %d].", size-1))
	}
	end = min(end, size-1)
	return start, end - start + 1, nil
}

// parseRange reads a single-range Range header as Glance does: "bytes=a-b",
// "bytes=a-" or "bytes=-n". Several ranges are a 400; a malformed one or a
// start past the end is a 416.
func parseRange(h string, size int64) (offset, length int64, partial bool, err error) {
	if h == "" {
		return 0, size, false, nil
	}
	if strings.Contains(h, ",") {
		return 0, 0, false, api.BadRequest("Requests with multiple ranges are not supported in Glance. " +
			"You may make multiple single-range requests instead.")
	}
	unsatisfiable := func(msg string) error { return rangeNotSatisfiable(size, msg) }
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !ok || !dash {
		return 0, 0, false, unsatisfiable("Invalid Range header.")
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" { // suffix: the last b bytes
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return 0, 0, false, unsatisfiable("Invalid Range header.")
		}
		if n < size {
			offset = size - n
		}
		return offset, size - offset, true, nil
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false, unsatisfiable("Invalid Range header.")
	}
	end := size - 1
	if b != "" {
		e, err := strconv.ParseInt(b, 10, 64)
		if err != nil || e < start {
			return 0, 0, false, unsatisfiable("Invalid Range header.")
		}
		end = min(e, size-1)
	}
	if start >= size {
		return 0, 0, false, unsatisfiable(fmt.Sprintf("Invalid start position in Range header. "+
			"Start position MUST be in the inclusive range [0, %d].", size-1))
	}
	return start, end - start + 1, true, nil
}

func (s *Service) handleImport(w http.ResponseWriter, r *http.Request) error {
	raw, err := decodeAny(r)
	if err != nil {
		return err
	}
	body, ok := raw.(map[string]any)
	if !ok {
		return api.BadRequest("Import request requires a 'method' field.")
	}
	m, has := body["method"]
	if !has {
		return api.BadRequest("Import request requires a 'method' field.")
	}
	method, ok := m.(map[string]any)
	if !ok {
		return api.BadRequest("Import request requires a 'name' field.")
	}
	n, has := method["name"]
	if !has {
		return api.BadRequest("Import request requires a 'name' field.")
	}
	name, _ := n.(string)
	if !slices.Contains(importMethods, name) {
		return api.BadRequest("Unknown import method name '%s'.", jsonTextOrString(n))
	}
	for _, k := range []string{"all_stores_must_succeed", "all_stores"} {
		if v, has := body[k]; has {
			if _, ok := v.(bool); !ok {
				return api.BadRequest("'%s' must be boolean value only", k)
			}
		}
	}
	var stores []string
	if v, has := body["stores"]; has {
		list, ok := v.([]any)
		if !ok {
			return api.BadRequest("'stores' must be a list of store identifiers.")
		}
		for _, st := range list {
			id, _ := st.(string)
			stores = append(stores, id)
		}
	}
	if h := r.Header.Get("X-Image-Meta-Store"); h != "" {
		stores = append(stores, h)
	}
	c := credsOf(r)
	id := r.PathValue("id")
	im, err := s.lookup(r.Context(), c, id)
	if err != nil {
		return err
	}
	if !c.canModify(im) {
		return api.Forbidden("You are not authorized to import image %s.", id)
	}
	if im.Status == StatusActive {
		return api.Conflict("Image with status active cannot be target for import")
	}
	for _, st := range stores {
		if st != StoreID {
			return api.Conflict("Unknown scheme '%s' found in store", st)
		}
	}
	if _, err := s.Import(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func jsonTextOrString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return jsonText(v)
}
