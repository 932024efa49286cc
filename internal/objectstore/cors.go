package objectstore

import (
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/monostack/monostack/internal/api"
)

// CORS as Swift's proxy does it (swift/proxy/controllers/base.py: OPTIONS
// and cors_validation), with its defaults: strict_cors_mode on, no
// cluster-wide cors_allow_origin or cors_expose_headers. The rules are a
// container's metadata and apply to it and its objects; accounts have none.

// The container metadata that holds a container's CORS rules.
const (
	hdrCORSAllowOrigin   = "X-Container-Meta-Access-Control-Allow-Origin"   // origins, space-separated, or *
	hdrCORSMaxAge        = "X-Container-Meta-Access-Control-Max-Age"        // seconds a preflight may be cached
	hdrCORSExposeHeaders = "X-Container-Meta-Access-Control-Expose-Headers" // space-separated
)

// allowedMethods are the methods Swift's account, container and object
// controllers publish (COPY is its copy middleware's, not a controller's).
var allowedMethods = []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}

// corsExposed are the headers every CORS answer exposes: the simple
// response headers and Swift's own.
var corsExposed = []string{"cache-control", "content-language", "content-type", "expires", "last-modified",
	"pragma", "etag", "x-timestamp", "x-trans-id", "x-openstack-request-id"}

// corsRules are a container's CORS settings (all empty for no container).
type corsRules struct {
	allowOrigin, maxAge, expose string
	hasMaxAge                   bool
}

func corsOf(c *Container) corsRules {
	if c == nil {
		return corsRules{}
	}
	maxAge, ok := c.Meta[hdrCORSMaxAge]
	return corsRules{allowOrigin: c.Meta[hdrCORSAllowOrigin], maxAge: maxAge, hasMaxAge: ok, expose: c.Meta[hdrCORSExposeHeaders]}
}

// allows reports whether origin may make cross-origin requests.
func (cr corsRules) allows(origin string) bool {
	for _, o := range strings.Split(cr.allowOrigin, " ") {
		if o = strings.TrimSpace(o); o != "" && (o == origin || o == "*") {
			return true
		}
	}
	return false
}

// setAllowOrigin sets Access-Control-Allow-Origin: * for a container open
// to all, else the origin itself (and Vary: Origin, since the answer then
// depends on it).
func (cr corsRules) setAllowOrigin(h http.Header, origin string) {
	if strings.TrimSpace(cr.allowOrigin) == "*" {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	addVary(h, "Origin")
}

func addVary(h http.Header, v string) {
	if old := h.Get("Vary"); old != "" {
		v = old + ", " + v
	}
	h.Set("Vary", v)
}

// handleOptions answers OPTIONS, which needs no token. Without an Origin
// it is a 200 listing the methods; with one it is a CORS preflight, checked
// against the container's rules: a 401 unless the origin is allowed and
// Access-Control-Request-Method is a method Swift serves. Preflights of an
// account are always a plain 200, as in Swift.
func (s *Service) handleOptions(rq *request) error {
	h := rq.w.Header()
	methods := strings.Join(allowedMethods, ", ")
	if rq.object != "" {
		// Swift's copy middleware adds its method to an object's
		// answers (not to what a preflight may ask for).
		methods += ", COPY"
	}
	h.Set("Allow", methods)
	origin := rq.r.Header.Get("Origin")
	if origin == "" || rq.container == "" {
		return written(rq.w, http.StatusOK)
	}
	c, err := s.lookupContainer(rq.ctx, rq.account, rq.container)
	if err != nil {
		return err
	}
	cr := corsOf(c)
	if !cr.allows(origin) || !slices.Contains(allowedMethods, rq.r.Header.Get("Access-Control-Request-Method")) {
		// Written here, not returned: a refused preflight is no request for
		// credentials (no WWW-Authenticate).
		api.TextFault(rq.w, rq.r, swiftError(http.StatusUnauthorized,
			"This server could not verify that you are authorized to access the document you requested."))
		return nil
	}
	cr.setAllowOrigin(h, origin)
	if cr.hasMaxAge {
		h.Set("Access-Control-Max-Age", cr.maxAge)
	}
	h.Set("Access-Control-Allow-Methods", methods)
	// Every header asked for is allowed, as Swift does.
	var asked []string
	for _, v := range rq.r.Header.Values("Access-Control-Request-Headers") {
		for _, hdr := range strings.Split(v, ",") {
			if hdr = strings.TrimSpace(hdr); hdr != "" && !slices.Contains(asked, hdr) {
				asked = append(asked, hdr)
			}
		}
	}
	if len(asked) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
		addVary(h, "Access-Control-Request-Headers")
	}
	return written(rq.w, http.StatusOK)
}

// corsActual prepares the CORS headers of an actual (not preflight)
// request to a container or an object: when it has an Origin the
// container allows, rq.w is wrapped so that its answer, whatever it is,
// carries Access-Control-Allow-Origin and Access-Control-Expose-Headers.
// The returned writer is nil otherwise; its done must see the handler's
// error.
func (s *Service) corsActual(rq *request) (*corsWriter, error) {
	origin := rq.r.Header.Get("Origin")
	if origin == "" {
		return nil, nil
	}
	c, err := s.lookupContainer(rq.ctx, rq.account, rq.container)
	if err != nil {
		return nil, err
	}
	cr := corsOf(c)
	if !cr.allows(origin) {
		return nil, nil // strict_cors_mode: nothing for other origins
	}
	cw := &corsWriter{ResponseWriter: rq.w, origin: origin, rules: cr}
	rq.w = cw
	return cw, nil
}

// corsWriter adds the CORS headers of an actual request just before its
// answer's headers are sent, when they are all known (the exposed ones
// include the metadata the answer shows).
type corsWriter struct {
	http.ResponseWriter
	origin    string
	rules     corsRules
	decorated bool
}

// done finishes a request whose handler returned err: an error is written
// by the router on the unwrapped writer, so its headers are added now.
func (cw *corsWriter) done(err error) error {
	if cw != nil && err != nil {
		cw.decorate()
	}
	return err
}

func (cw *corsWriter) decorate() {
	if cw.decorated {
		return
	}
	cw.decorated = true
	h := cw.Header()
	if h.Get("Access-Control-Expose-Headers") == "" {
		exposed := slices.Clone(corsExposed)
		var metas []string
		for k := range h {
			if strings.HasPrefix(k, "X-Container-Meta") || strings.HasPrefix(k, "X-Object-Meta") {
				metas = append(metas, strings.ToLower(k))
			}
		}
		sort.Strings(metas)
		exposed = append(exposed, metas...)
		for _, e := range strings.Split(cw.rules.expose, " ") {
			if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
				exposed = append(exposed, e)
			}
		}
		seen := map[string]bool{}
		exposed = slices.DeleteFunc(exposed, func(e string) bool {
			dup := seen[e]
			seen[e] = true
			return dup
		})
		h.Set("Access-Control-Expose-Headers", strings.Join(exposed, ", "))
	}
	if h.Get("Access-Control-Allow-Origin") == "" {
		cw.rules.setAllowOrigin(h, cw.origin)
	}
}

func (cw *corsWriter) WriteHeader(code int) {
	if code >= 200 {
		cw.decorate()
	}
	cw.ResponseWriter.WriteHeader(code)
}

func (cw *corsWriter) Write(b []byte) (int, error) {
	cw.decorate()
	return cw.ResponseWriter.Write(b)
}

// ReadFrom keeps sendfile for object bodies.
func (cw *corsWriter) ReadFrom(r io.Reader) (int64, error) {
	cw.decorate()
	if rf, ok := cw.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{cw.ResponseWriter}, r)
}

func (cw *corsWriter) Flush() {
	cw.decorate()
	if f, ok := cw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (cw *corsWriter) Unwrap() http.ResponseWriter { return cw.ResponseWriter }
