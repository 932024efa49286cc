package objectstore

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"
)

// tempURLMethods are the methods a TempURL may be signed for.
var tempURLMethods = []string{"GET", "HEAD", "PUT", "POST", "DELETE"}

// tempURLDigests are the HMAC digests signatures may use.
var tempURLDigests = map[string]func() hash.Hash{"sha1": sha1.New, "sha256": sha256.New, "sha512": sha512.New}

// tempURLGrant is what a valid TempURL signature allows: requests on the
// signed object (or prefix) of account, and of container when the key that
// signed it is the container's.
type tempURLGrant struct {
	account, container string
	expires            int64
	filename           string
	inline             bool
}

func errTempURLInvalid() error {
	return swiftError(http.StatusUnauthorized, "401 Unauthorized: Temp URL invalid\n")
}

// parseTempURLExpires reads temp_url_expires: Unix seconds or
// 2006-01-02T15:04:05Z; 0 when invalid or past.
func parseTempURLExpires(v string) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t, terr := time.Parse("2006-01-02T15:04:05Z", v)
		if terr != nil {
			return 0
		}
		n = t.Unix()
	}
	if n < nowUnix() {
		return 0
	}
	return n
}

// parseSignature reads temp_url_sig: hex (its length names the digest) or
// "<digest>:<base64>"; it returns the digest and the signature in hex.
func parseSignature(sig string) (alg, hexSig string, err error) {
	if a, b, ok := strings.Cut(sig, ":"); ok {
		if strings.ContainsAny(b, "-_") && !strings.ContainsAny(b, "+/") {
			b = strings.NewReplacer("-", "+", "_", "/").Replace(b)
		}
		b = strings.TrimRight(b, "=")
		raw, err := base64.RawStdEncoding.DecodeString(b)
		if err != nil {
			return "", "", err
		}
		return strings.ToLower(a), hex.EncodeToString(raw), nil
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return "", "", err
	}
	switch len(sig) {
	case 40:
		return "sha1", strings.ToLower(sig), nil
	case 64:
		return "sha256", strings.ToLower(sig), nil
	case 128:
		return "sha512", strings.ToLower(sig), nil
	}
	return "", "", errors.New("bad digest length")
}

func tempURLKeys(m meta) []string {
	var keys []string
	for k, v := range m {
		if isTempURLKeyHeader(k) && v != "" {
			keys = append(keys, v)
		}
	}
	return keys
}

// checkTempURL validates a request's TempURL signature (made with the
// account's or the container's Temp-URL-Key or -Key-2 over
// "METHOD\nEXPIRES\nPATH", PATH from /v1/ on; HEAD passes with a GET, PUT
// or POST signature). Anything wrong is a 401.
func (s *Service) checkTempURL(rq *request) (*tempURLGrant, error) {
	q := rq.q
	sig := q.Get("temp_url_sig")
	expires := parseTempURLExpires(q.Get("temp_url_expires"))
	if sig == "" || expires == 0 {
		return nil, errTempURLInvalid()
	}
	alg, want, err := parseSignature(sig)
	newHash, ok := tempURLDigests[alg]
	if err != nil || !ok {
		return nil, errTempURLInvalid()
	}
	method := rq.r.Method
	allowed := false
	for _, m := range tempURLMethods {
		allowed = allowed || m == method
	}
	if !allowed || rq.container == "" || strings.Trim(rq.object, "/") == "" {
		return nil, errTempURLInvalid()
	}
	ipRange := q.Get("temp_url_ip_range")
	if ipRange != "" && !remoteIn(rq.r.RemoteAddr, ipRange) {
		return nil, errTempURLInvalid()
	}
	// The keys: the account's, then the container's.
	type scopedKey struct {
		key       string
		container bool
	}
	var keys []scopedKey
	var raw string
	err = s.db.QueryRowContext(rq.ctx, `SELECT meta FROM swift_accounts WHERE name=?`, rq.account).Scan(&raw)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	for _, k := range tempURLKeys(decodeMeta(raw)) {
		keys = append(keys, scopedKey{k, false})
	}
	c, err := s.lookupContainer(rq.ctx, rq.account, rq.container)
	if err != nil {
		return nil, err
	}
	if c != nil {
		for _, k := range tempURLKeys(c.Meta) {
			keys = append(keys, scopedKey{k, true})
		}
	}
	if len(keys) == 0 {
		return nil, errTempURLInvalid()
	}
	// The signed path, as the client saw it: from /v1/ on (or with our
	// prefix in front, for clients that sign the whole path).
	rel := rq.container + "/" + rq.object
	if q.Has("temp_url_prefix") {
		prefix := q.Get("temp_url_prefix")
		if !strings.HasPrefix(rq.object, prefix) {
			return nil, errTempURLInvalid()
		}
		rel = rq.container + "/" + prefix
	}
	var paths []string
	for _, base := range []string{"/" + rq.version + "/", Prefix + "/" + rq.version + "/"} {
		p := base + rq.account + "/" + rel
		if q.Has("temp_url_prefix") {
			p = "prefix:" + p
		}
		paths = append(paths, p)
	}
	methods := []string{method}
	if method == http.MethodHead {
		methods = []string{"HEAD", "GET", "POST", "PUT"}
	}
	var grant *tempURLGrant
	for _, k := range keys {
		for _, m := range methods {
			for _, p := range paths {
				body := m + "\n" + strconv.FormatInt(expires, 10) + "\n" + p
				if ipRange != "" {
					body = "ip=" + ipRange + "\n" + body
				}
				mac := hmac.New(newHash, []byte(k.key))
				mac.Write([]byte(body))
				got := hex.EncodeToString(mac.Sum(nil))
				if subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1 && grant == nil {
					grant = &tempURLGrant{account: rq.account, expires: expires}
					if k.container {
						grant.container = rq.container
					}
				}
			}
		}
	}
	if grant == nil {
		return nil, errTempURLInvalid()
	}
	if method != http.MethodGet && method != http.MethodHead {
		for _, h := range []string{"X-Object-Manifest", "X-Symlink-Target"} {
			if _, ok := rq.r.Header[h]; ok {
				return nil, errBadRequest("The header %q is not allowed in this tempurl", h)
			}
		}
	}
	grant.filename = q.Get("filename")
	grant.inline = q.Has("inline")
	return grant, nil
}

// remoteIn: is the client's address in the IP or CIDR range?
func remoteIn(remoteAddr, ipRange string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	if pfx, err := netip.ParsePrefix(ipRange); err == nil {
		return pfx.Contains(addr.Unmap())
	}
	one, err := netip.ParseAddr(ipRange)
	return err == nil && one == addr.Unmap()
}

// adjust edits the headers of a GET or HEAD through a TempURL: only
// X-Object-Meta-Public-* metadata shows, the body is an attachment named
// for the object (or ?filename=, or inline with ?inline), and Expires is
// the URL's expiry.
func (g *tempURLGrant) adjust(h http.Header, object string) {
	for k := range h {
		if strings.HasPrefix(k, "X-Object-Meta-") && !strings.HasPrefix(k, "X-Object-Meta-Public-") {
			h.Del(k)
		}
	}
	existing := h.Get("Content-Disposition")
	var disp string
	switch {
	case g.inline && g.filename != "":
		disp = dispositionFormat("inline", g.filename)
	case g.inline:
		disp = "inline"
	case g.filename != "":
		disp = dispositionFormat("attachment", g.filename)
	case existing != "":
		disp = existing
	default:
		disp = dispositionFormat("attachment", path.Base(strings.TrimRight(object, "/")))
	}
	h.Set("Content-Disposition", strings.ReplaceAll(disp, "\n", "%0A"))
	h.Set("Expires", expiresHeader(g.expires))
}

func dispositionFormat(typ, filename string) string {
	return typ + `; filename="` + pyQuote(filename, " /") + `"; filename*=UTF-8''` + pyQuote(filename, "/")
}

// pyQuote percent-encodes s as Python's urllib.parse.quote with safe.
func pyQuote(s, safe string) string {
	const always = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(always, c) >= 0 || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}
