package objectstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/monostack/monostack/internal/api"
)

// Prefix is the path the object store is served under.
const Prefix = "/object-store"

// Router returns the Object Storage API under /object-store:
// /object-store/info (public) and /object-store/v1/AUTH_<project>/... where
// a token is optional: requests without one are decided by container ACLs
// and TempURL signatures. auth validates tokens; authURI is the Identity
// URL named in 401s.
func (s *Service) Router(auth api.Authenticator, authURI string, log *slog.Logger) *api.Router {
	rt := api.NewRouter(api.RouterConfig{Prefix: Prefix, Fault: api.TextFault, Auth: auth, AuthURI: authURI, Log: log})
	rt.Public("GET /info", s.handleInfo)
	rt.Optional("/v1/", s.handle)
	rt.Optional("/v1.0/", s.handle)
	// CORS preflights carry no token (a browser sends none), and Swift's
	// auth middlewares let OPTIONS through untouched.
	rt.Public("OPTIONS /v1/", s.handle)
	rt.Public("OPTIONS /v1.0/", s.handle)
	return rt
}

type rawPathKey struct{}

// PreservePaths wraps the handler that serves the object store so that
// object names with empty, "." or ".." segments ("a//b", "x/../y") reach it
// as they are: http.ServeMux would otherwise answer them with a redirect to
// the cleaned path. Paths outside /object-store/v1 pass through untouched.
// Put it outermost, around the mux that routes to the object store.
func PreservePaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if (strings.HasPrefix(p, Prefix+"/v1/") || strings.HasPrefix(p, Prefix+"/v1.0/")) && cleanPath(p) != p {
			r2 := r.Clone(context.WithValue(r.Context(), rawPathKey{}, p))
			version, _, _ := strings.Cut(strings.TrimPrefix(p, Prefix+"/"), "/")
			r2.URL.Path = Prefix + "/" + version + "/_"
			r2.URL.RawPath = ""
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is the path ServeMux would redirect to.
func cleanPath(p string) string {
	np := path.Clean(p)
	if strings.HasSuffix(p, "/") && np != "/" {
		np += "/"
	}
	return np
}

// request is one request with its parsed path.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	q     url.Values
	creds *api.Credentials
	// The path, unescaped: /v1/<account>[/<container>[/<object>]].
	version, account, container, object string
	tempURL                             *tempURLGrant
}

// handle serves everything under /v1/.
func (s *Service) handle(w http.ResponseWriter, r *http.Request) error {
	err := s.serveV1(w, r)
	// A request whose client went away fails on its cancelled context:
	// that is the client's doing (499), not a server fault.
	if err != nil && r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return errClientDisconnect(err)
	}
	return err
}

func (s *Service) serveV1(w http.ResponseWriter, r *http.Request) error {
	setTransID(w, r)
	raw, _ := r.Context().Value(rawPathKey{}).(string)
	if raw == "" {
		raw = r.URL.EscapedPath()
	}
	rq := &request{w: w, r: r, ctx: r.Context(), q: r.URL.Query(), creds: api.CredentialsFrom(r.Context())}
	if err := rq.parsePath(strings.TrimPrefix(raw, Prefix)); err != nil {
		return err
	}
	if err := s.checkHeaderSizes(r.Header); err != nil {
		return err
	}
	// Swift's tempurl middleware passes OPTIONS on untouched.
	if (rq.q.Has("temp_url_sig") || rq.q.Has("temp_url_expires")) && r.Method != http.MethodOptions {
		g, err := s.checkTempURL(rq)
		if err != nil {
			return err
		}
		rq.tempURL = g
	}
	if rq.object != "" && reservedSLOHeader(rq) {
		return errBadRequest("X-Static-Large-Object is a reserved header. " +
			"To create a static large object add query param multipart-manifest=put.")
	}
	if r.Method == http.MethodOptions {
		return s.handleOptions(rq)
	}
	switch {
	case rq.object != "":
		cw, err := s.corsActual(rq)
		if err != nil {
			return err
		}
		return cw.done(s.handleObject(rq))
	case rq.container != "":
		if rq.tempURL != nil {
			return errUnauthorized()
		}
		cw, err := s.corsActual(rq)
		if err != nil {
			return err
		}
		return cw.done(s.handleContainer(rq))
	default:
		if rq.tempURL != nil {
			return errUnauthorized()
		}
		return s.handleAccount(rq)
	}
}

// parsePath splits /v1/<account>/<container>/<object> and checks the
// names: valid UTF-8 without NUL (else 412), no "." or ".." for an account
// or a container (else 400).
//
// As in Swift (whose WSGI server decodes the path before splitting it), an
// encoded slash is a slash: /c/a%2Fb is the object "a/b" of container c.
func (rq *request) parsePath(p string) error {
	u, err := url.PathUnescape(p)
	if err != nil {
		return errBadRequest("Invalid path: %s", p)
	}
	segs := strings.SplitN(strings.TrimPrefix(u, "/"), "/", 4)
	for len(segs) < 4 {
		segs = append(segs, "")
	}
	var names [4]string
	copy(names[:], segs)
	rq.version, rq.account, rq.container, rq.object = names[0], names[1], names[2], names[3]
	if rq.account == "" {
		return errNotFound()
	}
	if rq.container == "" && rq.object != "" {
		return errBadRequest("Invalid path: %s", p)
	}
	for _, n := range names[1:] {
		if n != "" && !validName(n) {
			return errPrecondition("Invalid UTF8 or contains NULL")
		}
	}
	for _, n := range names[1:3] {
		if n == "." || n == ".." {
			return errBadRequest("Invalid path: %s", p)
		}
	}
	if _, ok := projectOf(rq.account); !ok {
		return errNotFound()
	}
	return nil
}

// validName: valid UTF-8 with no NUL, as Swift's check_utf8.
func validName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// setTransID sets X-Trans-Id (and X-Openstack-Request-Id when the request
// has no id yet) in Swift's form: tx<21 hex digits>-<10 hex digits of time>.
func setTransID(w http.ResponseWriter, r *http.Request) {
	id := strings.ReplaceAll(strings.TrimPrefix(api.RequestID(r.Context()), "req-"), "-", "")
	if len(id) < 21 {
		var b [11]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	tx := fmt.Sprintf("tx%s-%010x", id[:21], time.Now().Unix())
	w.Header().Set("X-Trans-Id", tx)
	if w.Header().Get(api.RequestIDHeader) == "" {
		w.Header().Set(api.RequestIDHeader, tx)
	}
}

// isStatus reports whether err is an API error with the given status.
func isStatus(err error, status int) bool {
	var e *api.Error
	return errors.As(err, &e) && e.Status == status
}

// written answers a request whose answer needs no body.
func written(w http.ResponseWriter, status int) error {
	w.Header().Set("Content-Length", "0")
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	}
	w.WriteHeader(status)
	return nil
}
