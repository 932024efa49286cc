package objectstore

import (
	"net/http"
	"strconv"
	"strings"
)

func (s *Service) handleAccount(rq *request) error {
	bulk := rq.q.Has("bulk-delete")
	switch rq.r.Method {
	case http.MethodGet, http.MethodHead:
		return s.handleGetAccount(rq)
	case http.MethodPost:
		if bulk {
			return s.handleBulkDelete(rq)
		}
		return s.handlePostAccount(rq)
	case http.MethodDelete:
		if bulk {
			return s.handleBulkDelete(rq)
		}
		if _, err := rq.authorize(rq.account, nil, accountWrite); err != nil {
			return err
		}
		return errMethod(rq.r.Method)
	case http.MethodPut:
		if _, err := rq.authorize(rq.account, nil, accountWrite); err != nil {
			return err
		}
		return errMethod(rq.r.Method)
	}
	return errMethod(rq.r.Method)
}

func (s *Service) handleGetAccount(rq *request) error {
	owner, err := rq.authorize(rq.account, nil, accountRead)
	if err != nil {
		return err
	}
	p, err := parseListParams(rq.r, rq.q, s.cfg.AccountListingLimit)
	if err != nil {
		return err
	}
	a, err := s.getAccount(rq.ctx, rq.account)
	if err != nil {
		return err
	}
	s.accountHeaders(rq.w.Header(), a, owner)
	if rq.r.Method == http.MethodHead {
		rq.w.Header().Set("Content-Type", p.contentType+"; charset=utf-8")
		return written(rq.w, http.StatusNoContent)
	}
	entries, err := s.list(rq.ctx, containerSource(rq.account), p)
	if err != nil {
		return err
	}
	renderListing(rq.w, rq.r, p, "account", rq.account, entries, http.StatusOK)
	return nil
}

// accountHeaders describes an account; only owners see its TempURL keys.
func (s *Service) accountHeaders(h http.Header, a Account, owner bool) {
	created := a.Created
	if created == 0 {
		created = nowMicro()
	}
	h.Set("X-Account-Container-Count", strconv.FormatInt(a.ContainerCount, 10))
	h.Set("X-Account-Object-Count", strconv.FormatInt(a.ObjectCount, 10))
	h.Set("X-Account-Bytes-Used", strconv.FormatInt(a.BytesUsed, 10))
	if a.ContainerCount > 0 {
		h.Set("X-Account-Storage-Policy-Policy-0-Container-Count", strconv.FormatInt(a.ContainerCount, 10))
		h.Set("X-Account-Storage-Policy-Policy-0-Object-Count", strconv.FormatInt(a.ObjectCount, 10))
		h.Set("X-Account-Storage-Policy-Policy-0-Bytes-Used", strconv.FormatInt(a.BytesUsed, 10))
	}
	h.Set("X-Timestamp", xTimestamp(created))
	h.Set("X-Put-Timestamp", xTimestamp(created))
	for _, k := range a.Meta.sortedKeys() {
		if !owner && isTempURLKeyHeader(k) {
			continue
		}
		h.Set(k, a.Meta[k])
	}
}

// isTempURLKeyHeader: X-Account-Meta-Temp-Url-Key[-2] and the container's.
func isTempURLKeyHeader(k string) bool {
	k = strings.ToLower(k)
	return strings.HasSuffix(k, "-meta-temp-url-key") || strings.HasSuffix(k, "-meta-temp-url-key-2")
}

func (s *Service) handlePostAccount(rq *request) error {
	if _, err := rq.authorize(rq.account, nil, accountWrite); err != nil {
		return err
	}
	if err := s.checkMetadata(rq.r.Header, "account"); err != nil {
		return err
	}
	err := s.updateAccountMeta(rq.ctx, rq.account, func(m meta) error {
		applyMetaUpdates(m, rq.r.Header, "account")
		return s.checkStoredMetadata(m, "account")
	})
	if err != nil {
		return err
	}
	return written(rq.w, http.StatusNoContent)
}
