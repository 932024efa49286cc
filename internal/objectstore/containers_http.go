package objectstore

import (
	"net/http"
	"strconv"
	"strings"
)

func (s *Service) handleContainer(rq *request) error {
	bulk := rq.q.Has("bulk-delete")
	switch rq.r.Method {
	case http.MethodGet, http.MethodHead:
		return s.handleGetContainer(rq)
	case http.MethodPut:
		return s.handlePutContainer(rq)
	case http.MethodPost:
		if bulk {
			return s.handleBulkDelete(rq)
		}
		return s.handlePostContainer(rq)
	case http.MethodDelete:
		if bulk {
			return s.handleBulkDelete(rq)
		}
		return s.handleDeleteContainer(rq)
	}
	return errMethod(rq.r.Method)
}

func (s *Service) handleGetContainer(rq *request) error {
	c, err := s.lookupContainer(rq.ctx, rq.account, rq.container)
	if err != nil {
		return err
	}
	owner, err := rq.authorize(rq.account, c, containerRead)
	if err != nil {
		return err
	}
	if c == nil {
		return errNotFound()
	}
	p, err := parseListParams(rq.r, rq.q, s.cfg.ContainerListingLimit)
	if err != nil {
		return err
	}
	containerHeaders(rq.w.Header(), c, owner)
	if rq.r.Method == http.MethodHead {
		rq.w.Header().Set("Content-Type", p.contentType+"; charset=utf-8")
		return written(rq.w, http.StatusNoContent)
	}
	entries, err := s.list(rq.ctx, objectSource(c.ID, nowUnix()), p)
	if err != nil {
		return err
	}
	renderListing(rq.w, rq.r, p, "container", c.Name, entries, http.StatusOK)
	return nil
}

// containerHeaders describes a container; only owners see its ACLs and
// TempURL keys.
func containerHeaders(h http.Header, c *Container, owner bool) {
	h.Set("X-Container-Object-Count", strconv.FormatInt(c.ObjectCount, 10))
	h.Set("X-Container-Bytes-Used", strconv.FormatInt(c.BytesUsed, 10))
	h.Set("X-Timestamp", xTimestamp(c.Created))
	h.Set("X-Put-Timestamp", xTimestamp(c.Modified))
	h.Set("Last-Modified", httpDate(c.Modified))
	h.Set("X-Storage-Policy", "Policy-0")
	h.Set("Accept-Ranges", "bytes")
	for _, k := range c.Meta.sortedKeys() {
		if !owner && (k == hdrRead || k == hdrWrite || isTempURLKeyHeader(k)) {
			continue
		}
		h.Set(k, c.Meta[k])
	}
}

// containerUpdate validates a PUT or POST's headers and returns the change
// it makes to the container's metadata.
func (s *Service) containerUpdate(rq *request) (func(meta) error, error) {
	h := rq.r.Header
	if err := s.checkMetadata(h, "container"); err != nil {
		return nil, err
	}
	acls := map[string]*string{}
	for _, hdr := range []string{hdrRead, hdrWrite} {
		if vs, ok := h[hdr]; ok {
			v, err := cleanACL(hdr, vs[0])
			if err != nil {
				return nil, err
			}
			acls[hdr] = &v
		}
		if _, ok := h["X-Remove-"+strings.TrimPrefix(hdr, "X-")]; ok {
			empty := ""
			acls[hdr] = &empty
		}
	}
	return func(m meta) error {
		applyMetaUpdates(m, h, "container")
		for hdr, v := range acls {
			if *v == "" {
				delete(m, hdr)
			} else {
				m[hdr] = *v
			}
		}
		return s.checkStoredMetadata(m, "container")
	}, nil
}

func (s *Service) handlePutContainer(rq *request) error {
	if _, err := rq.authorize(rq.account, nil, containerWrite); err != nil {
		return err
	}
	if n := len(rq.container); n > s.cfg.MaxContainerNameLength {
		return errBadRequest("Container name length of %d longer than %d", n, s.cfg.MaxContainerNameLength)
	}
	if p := rq.r.Header.Get("X-Storage-Policy"); p != "" && !strings.EqualFold(p, "Policy-0") {
		return errBadRequest("Invalid X-Storage-Policy '%s'", p)
	}
	update, err := s.containerUpdate(rq)
	if err != nil {
		return err
	}
	created, err := s.putContainer(rq.ctx, rq.account, rq.container, update)
	if err != nil {
		return err
	}
	if created {
		return written(rq.w, http.StatusCreated)
	}
	return written(rq.w, http.StatusAccepted)
}

func (s *Service) handlePostContainer(rq *request) error {
	if _, err := rq.authorize(rq.account, nil, containerWrite); err != nil {
		return err
	}
	update, err := s.containerUpdate(rq)
	if err != nil {
		return err
	}
	if err := s.postContainer(rq.ctx, rq.account, rq.container, update); err != nil {
		return err
	}
	return written(rq.w, http.StatusNoContent)
}

func (s *Service) handleDeleteContainer(rq *request) error {
	if _, err := rq.authorize(rq.account, nil, containerWrite); err != nil {
		return err
	}
	if err := s.deleteContainer(rq.ctx, rq.account, rq.container); err != nil {
		return err
	}
	return written(rq.w, http.StatusNoContent)
}
