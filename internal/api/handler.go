package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/google/uuid"
)

// RequestIDHeader carries the request id on every response.
const RequestIDHeader = "X-Openstack-Request-Id"

// HandlerFunc is a handler that returns its error instead of writing it; the
// Router maps the error to the service's fault body in one place.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Router is one service's routes under its path prefix.
type Router struct {
	mux     *http.ServeMux
	prefix  string
	fault   Fault
	auth    Authenticator
	authURI string
	log     *slog.Logger
}

// RouterConfig configures a Router.
type RouterConfig struct {
	Prefix string // e.g. "/identity"
	Fault  Fault
	Auth   Authenticator
	// AuthURI is the Identity URL sent in WWW-Authenticate on 401s.
	AuthURI string
	Log     *slog.Logger
}

// NewRouter makes a Router. Requests under the prefix that match no route
// get a 404 (or 405) in the service's fault format.
func NewRouter(c RouterConfig) *Router {
	rt := &Router{mux: http.NewServeMux(), prefix: c.Prefix, fault: c.Fault, auth: c.Auth, authURI: c.AuthURI, log: c.Log}
	rt.mux.Handle(c.Prefix+"/", rt.adapt(nil, false, rt.notFound))
	return rt
}

// Prefix returns the router's path prefix.
func (rt *Router) Prefix() string { return rt.prefix }

// Public registers a route that needs no token ("GET /v3", say). The
// pattern's path is relative to the prefix.
func (rt *Router) Public(pattern string, h HandlerFunc) {
	rt.mux.Handle(rt.full(pattern), rt.adapt(nil, false, h))
}

// Handle registers a route that needs a valid token satisfying rule.
func (rt *Router) Handle(pattern string, rule Rule, h HandlerFunc) {
	if rule == nil {
		panic("api: route " + pattern + " has no policy rule")
	}
	rt.mux.Handle(rt.full(pattern), rt.adapt(rule, false, h))
}

// Optional registers a route where a token is optional: a valid one puts
// credentials in the context, an invalid one is a 401, none leaves
// CredentialsFrom nil (for Swift's public containers and TempURLs, say). The
// handler makes every policy decision itself.
func (rt *Router) Optional(pattern string, h HandlerFunc) {
	rt.mux.Handle(rt.full(pattern), rt.adapt(Authenticated, true, h))
}

func (rt *Router) full(pattern string) string {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		return rt.prefix + pattern
	}
	return method + " " + rt.prefix + path
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

func (rt *Router) notFound(w http.ResponseWriter, r *http.Request) error {
	// A path served for other methods is a 405, as upstream answers.
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := rt.mux.Handler(probe); p != "" && p != rt.prefix+"/" {
			return Errorf(http.StatusMethodNotAllowed, "The method %s is not allowed for %s.", r.Method, r.URL.Path)
		}
	}
	return NotFound("The resource could not be found.")
}

func (rt *Router) adapt(rule Rule, optional bool, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				rt.writeError(w, r, &Error{Status: 500, Message: "An unexpected error prevented the server from fulfilling your request.",
					Err: fmt.Errorf("panic: %v\n%s", p, debug.Stack())})
			}
		}()
		if rule != nil && !(optional && r.Header.Get("X-Auth-Token") == "") {
			c, err := rt.authenticate(r)
			if err != nil {
				rt.writeError(w, r, err)
				return
			}
			if !rule(c) {
				rt.writeError(w, r, Forbidden("You are not authorized to perform the requested action."))
				return
			}
			r = r.WithContext(WithCredentials(r.Context(), c))
		}
		if err := h(w, r); err != nil {
			rt.writeError(w, r, err)
		}
	})
}

func (rt *Router) authenticate(r *http.Request) (*Credentials, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return nil, Unauthorized("The request you have made requires authentication.")
	}
	if rt.auth == nil {
		return nil, Unauthorized("No identity service is configured.")
	}
	return rt.auth.Authenticate(r.Context(), tok)
}

// StatusClientClosed is the status of a request whose client went away
// before it was answered (nginx's 499).
const StatusClientClosed = 499

func (rt *Router) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	if e.Status >= 500 && r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		// The client went away mid-request (its context is done, and that
		// is what failed): not the server's failure, and nobody reads the
		// answer. 499, as nginx logs it. Any other failure (a panic, a
		// disk error) is logged as ever, gone client or not.
		rt.logger().Debug("client gone", "method", r.Method, "path", r.URL.Path,
			"request_id", w.Header().Get(RequestIDHeader), "err", e.Err)
		e = &Error{Status: StatusClientClosed, Message: "The client closed the request.", Err: e.Err}
	}
	if e.Status >= 500 {
		rt.logger().Error("request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status,
			"request_id", w.Header().Get(RequestIDHeader), "err", e.Err)
	}
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	if e.Status == http.StatusUnauthorized && rt.authURI != "" {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", rt.authURI))
	}
	rt.fault(w, r, e)
}

func (rt *Router) logger() *slog.Logger {
	if rt.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rt.log
}

type requestIDKey struct{}

// WithRequestID gives every request an id ("req-<uuid>"), sets it on the
// response and in the context, and logs the request at debug level.
func WithRequestID(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := "req-" + uuid.NewString()
		w.Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		next.ServeHTTP(w, r.WithContext(ctx))
		if log != nil && log.Enabled(ctx, slog.LevelDebug) {
			log.Debug("request", "method", r.Method, "path", r.URL.Path, "request_id", id)
		}
	})
}

// RequestID returns the id WithRequestID gave the request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// BaseURL is the scheme and host the client used to reach us, for links.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}
