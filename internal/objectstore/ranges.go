package objectstore

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// byteRange is a half-open range [start, end) of an entity.
type byteRange struct{ start, end int64 }

// rangeSpec is one syntactically valid byte-range-spec; -1 marks a missing
// first or last position.
type rangeSpec struct{ first, last int64 }

// Swift's limits on egregious multi-range requests (RFC 7233 §6.1).
const (
	maxRanges             = 50
	maxRangeOverlaps      = 2
	maxNonAscendingRanges = 8
)

// parseRange parses a Range header as Swift does; ok is false when the
// header is absent or syntactically invalid, and must then be ignored.
func parseRange(h string) (specs []rangeSpec, ok bool) {
	h = strings.ReplaceAll(h, " ", "")
	if len(h) < 6 || !strings.EqualFold(h[:6], "bytes=") {
		return nil, false
	}
	for _, part := range strings.Split(h[6:], ",") {
		a, b, found := strings.Cut(part, "-")
		if !found {
			return nil, false
		}
		sp := rangeSpec{-1, -1}
		if a != "" {
			n, err := strconv.ParseInt(a, 10, 64)
			if err != nil || n < 0 {
				return nil, false
			}
			sp.first = n
		}
		if b != "" {
			if !isDigits(b) {
				return nil, false
			}
			n, err := strconv.ParseInt(b, 10, 64)
			if err != nil || sp.first >= 0 && n < sp.first {
				return nil, false
			}
			sp.last = n
		} else if sp.first < 0 {
			return nil, false
		}
		specs = append(specs, sp)
	}
	return specs, len(specs) > 0
}

// rangesFor resolves specs against an entity of size bytes: nil when none
// is satisfiable (a 416) or when the set is egregious (also a 416, as Swift
// answers).
func rangesFor(specs []rangeSpec, size int64) []byteRange {
	var out []byteRange
	for _, sp := range specs {
		switch {
		case sp.first < 0: // suffix: the last sp.last bytes
			if sp.last == 0 {
				continue
			}
			if sp.last > size {
				out = append(out, byteRange{0, size})
			} else {
				out = append(out, byteRange{size - sp.last, size})
			}
		case sp.first >= size:
			continue
		case sp.last < 0:
			out = append(out, byteRange{sp.first, size})
		default:
			out = append(out, byteRange{sp.first, min(sp.last+1, size)})
		}
	}
	if len(out) > maxRanges {
		return nil
	}
	overlaps := 0
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			a, b := out[i], out[j]
			if a.start < b.start && b.start < a.end || a.start < b.end && b.end < a.end ||
				b.start < a.start && a.start < b.end || b.start < a.end && a.end < b.end {
				overlaps++
				if overlaps > maxRangeOverlaps {
					return nil
				}
			}
		}
	}
	ascending := true
	for i := 1; i < len(out); i++ {
		if out[i-1].start > out[i].start {
			ascending = false
			break
		}
	}
	if !ascending && len(out) >= maxNonAscendingRanges {
		return nil
	}
	return out
}

// etagMatches reports whether an If-Match / If-None-Match list names etag
// (quotes are ignored, "*" matches anything).
func etagMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = normalizeETag(strings.TrimSpace(t))
		if t == "*" || t != "" && t == etag {
			return true
		}
	}
	return false
}

func normalizeETag(t string) string {
	t = strings.TrimPrefix(t, "W/")
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		return t[1 : len(t)-1]
	}
	return t
}

// conditional evaluates the conditional headers against an entity with
// the given etag and modification time, in Swift's order; it returns 304,
// 412 or 0 (go on).
func conditional(r *http.Request, etag string, modified int64) int {
	h := r.Header
	if v := h.Get("If-None-Match"); v != "" && etagMatches(v, etag) {
		return http.StatusNotModified
	}
	if v := h.Get("If-Match"); v != "" && !etagMatches(v, etag) {
		return http.StatusPreconditionFailed
	}
	lm := lastModified(modified)
	if v := h.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !lm.After(t) {
			return http.StatusNotModified
		}
	}
	if v := h.Get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && lm.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	return 0
}

// newBoundary makes a multipart boundary: 32 hex digits, as Swift's.
func newBoundary() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// multipartParts returns, for each range, the part header that precedes it,
// and the closing delimiter; with them the whole body's length is known
// before it is written.
func multipartParts(ranges []byteRange, contentType, boundary string, size int64) (heads []string, tail string, length int64) {
	for i, rg := range ranges {
		head := fmt.Sprintf("--%s\r\nContent-Type: %s\r\nContent-Range: bytes %d-%d/%d\r\n\r\n",
			boundary, contentType, rg.start, rg.end-1, size)
		if i > 0 {
			head = "\r\n" + head
		}
		heads = append(heads, head)
		length += int64(len(head)) + rg.end - rg.start
	}
	tail = "\r\n--" + boundary + "--"
	length += int64(len(tail))
	return heads, tail, length
}

// expiresHeader is an HTTP date for Unix seconds.
func expiresHeader(unix int64) string { return time.Unix(unix, 0).UTC().Format(http.TimeFormat) }
