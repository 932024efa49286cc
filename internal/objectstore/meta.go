package objectstore

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"unicode/utf8"
)

// meta is the headers kept with an account, container or object, under
// their canonical names (X-Container-Meta-Color, X-Container-Read, ...).
type meta map[string]string

func (m meta) encode() string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(map[string]string(m))
	return string(b)
}

func decodeMeta(s string) meta {
	m := meta{}
	if s != "" && s != "{}" {
		json.Unmarshal([]byte(s), (*map[string]string)(&m))
	}
	return m
}

func (m meta) clone() meta {
	c := make(meta, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// sortedKeys returns the keys in order, for stable header output.
func (m meta) sortedKeys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sysmetaPrefix marks headers kept for the service's own use and never
// shown to clients (Swift's system metadata).
const sysmetaPrefix = "X-Object-Sysmeta-"

// Headers an object keeps besides its X-Object-Meta-* (Swift's object
// server's allowed_headers).
var keptObjectHeaders = []string{
	"Content-Disposition", "Content-Encoding", "Content-Language", "Cache-Control", "Expires", "X-Robots-Tag",
}

// checkHeaderSizes rejects any header value longer than max_header_size,
// as Swift does for every request.
func (s *Service) checkHeaderSizes(h http.Header) error {
	for k, vs := range h {
		for _, v := range vs {
			if len(v) > s.cfg.MaxHeaderSize {
				if len(k) > s.cfg.MaxMetaNameLength {
					k = k[:s.cfg.MaxMetaNameLength]
				}
				return errBadRequest("Header value too long: %s", k)
			}
		}
	}
	return nil
}

// checkMetadata is Swift's check of the metadata a request sends for
// typ ("account", "container" or "object"): names not empty and not too
// long, values not too long, and not too many nor too large in all.
func (s *Service) checkMetadata(h http.Header, typ string) error {
	prefix := "X-" + strings.ToUpper(typ[:1]) + typ[1:] + "-Meta-"
	count, size := 0, 0
	for _, k := range sortedHeaderKeys(h) {
		if !hasPrefixFold(k, prefix) {
			continue
		}
		v := h.Get(k)
		name := k[len(prefix):]
		if name == "" {
			return errBadRequest("Metadata name cannot be empty")
		}
		if typ != "object" && (!utf8.ValidString(name) || !utf8.ValidString(v)) {
			return errBadRequest("Metadata must be valid UTF-8")
		}
		count++
		size += len(name) + len(v)
		if len(name) > s.cfg.MaxMetaNameLength {
			return errBadRequest("Metadata name too long: %s%s", strings.ToLower(prefix), name)
		}
		if len(v) > s.cfg.MaxMetaValueLength {
			return errBadRequest("Metadata value longer than %d: %s%s", s.cfg.MaxMetaValueLength, strings.ToLower(prefix), name)
		}
		if count > s.cfg.MaxMetaCount {
			return errBadRequest("Too many metadata items; max %d", s.cfg.MaxMetaCount)
		}
		if size > s.cfg.MaxMetaOverallSize {
			return errBadRequest("Total metadata too large; max %d", s.cfg.MaxMetaOverallSize)
		}
	}
	return nil
}

// checkStoredMetadata checks the metadata an account or container would
// hold after an update against the same totals (Swift's database check).
func (s *Service) checkStoredMetadata(m meta, typ string) error {
	prefix := "X-" + strings.ToUpper(typ[:1]) + typ[1:] + "-Meta-"
	count, size := 0, 0
	for k, v := range m {
		if !strings.HasPrefix(k, prefix) || v == "" {
			continue
		}
		count++
		size += len(k) - len(prefix) + len(v)
	}
	if count > s.cfg.MaxMetaCount {
		return errBadRequest("Too many metadata items; max %d", s.cfg.MaxMetaCount)
	}
	if size > s.cfg.MaxMetaOverallSize {
		return errBadRequest("Total metadata too large; max %d", s.cfg.MaxMetaOverallSize)
	}
	return nil
}

// applyMetaUpdates applies X-<Typ>-Meta-* (an empty value removes) and
// X-Remove-<Typ>-Meta-* headers to m.
func applyMetaUpdates(m meta, h http.Header, typ string) {
	prefix := "X-" + strings.ToUpper(typ[:1]) + typ[1:] + "-Meta-"
	remove := "X-Remove-" + prefix[2:]
	for k := range h {
		v := h.Get(k)
		switch {
		case hasPrefixFold(k, prefix) && len(k) > len(prefix):
			key := prefix + canonicalSuffix(k[len(prefix):])
			if v == "" {
				delete(m, key)
			} else {
				m[key] = v
			}
		case hasPrefixFold(k, remove) && len(k) > len(remove):
			delete(m, prefix+canonicalSuffix(k[len(remove):]))
		}
	}
}

// objectMeta collects the metadata an object PUT or POST sets: every
// non-empty X-Object-Meta-* and the kept headers.
func objectMeta(h http.Header) meta {
	m := meta{}
	const prefix = "X-Object-Meta-"
	for k := range h {
		v := h.Get(k)
		if hasPrefixFold(k, prefix) && len(k) > len(prefix) && v != "" {
			m[prefix+canonicalSuffix(k[len(prefix):])] = v
		}
	}
	for _, k := range keptObjectHeaders {
		if v := h.Get(k); v != "" {
			m[k] = v
		}
	}
	return m
}

// canonicalSuffix title-cases a metadata name as Swift and net/http do
// ("temp-url-key" → "Temp-Url-Key").
func canonicalSuffix(s string) string {
	return http.CanonicalHeaderKey(s)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func sortedHeaderKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
