package testcloud

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
)

// Passwords of the bootstrap users.
const (
	AdminPassword = "admin-secret"
	DemoPassword  = "demo-secret"
)

// Options change how New builds a cloud.
type Options struct {
	// Wrap, when set, wraps the mux that routes to the services (inside
	// the request-id middleware), e.g. objectstore.PreservePaths.
	Wrap func(http.Handler) http.Handler
}

// Cloud is a real identity service on a temporary SQLite database, served
// by httptest at /identity next to the handlers mounted with Handle or
// Mount.
type Cloud struct {
	t        testing.TB
	Server   *httptest.Server
	Dir      string // the test's temporary directory, holding the database
	DB       *store.DB
	Keys     *fernet.Repo
	Identity *identity.Service
	// Tokens of the bootstrap users and their projects' ids: admin (cloud
	// admin, on project admin) and demo (member of demo).
	Admin, Demo               string
	AdminProject, DemoProject string

	wrap     func(http.Handler) http.Handler
	mu       sync.RWMutex
	patterns map[string]http.Handler
	handler  http.Handler
}

// New starts a cloud whose identity service is bootstrapped and mounted at
// /identity, and issues the admin and demo tokens. Everything is closed
// when the test ends.
func New(t testing.TB, opts Options) *Cloud {
	t.Helper()
	ctx := context.Background()
	c := &Cloud{t: t, Dir: t.TempDir(), wrap: opts.Wrap, patterns: map[string]http.Handler{}}
	db, err := store.Open(filepath.Join(c.Dir, "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c.DB = db
	if c.Keys, err = fernet.OpenRepo(filepath.Join(c.Dir, "keys"), 3); err != nil {
		t.Fatal(err)
	}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Server.Close)
	c.Identity, err = identity.New(ctx, db, c.Keys, identity.Config{BaseURL: c.Server.URL, Region: "RegionOne",
		TokenTTL: time.Hour, BcryptCost: 4}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Identity.EnsureBootstrap(ctx, identity.Bootstrap{AdminPassword: AdminPassword, DemoPassword: DemoPassword}); err != nil {
		t.Fatal(err)
	}
	c.Mount("/identity", c.Identity.Router(nil))
	c.Admin, c.AdminProject = c.PasswordToken("admin", AdminPassword, "admin")
	c.Demo, c.DemoProject = c.PasswordToken("demo", DemoPassword, "demo")
	return c
}

// URL is the server's base URL.
func (c *Cloud) URL() string { return c.Server.URL }

// AuthURL is the identity endpoint that services validate tokens against.
func (c *Cloud) AuthURL() string { return c.Server.URL + "/identity" }

func (c *Cloud) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.RLock()
	h := c.handler
	c.mu.RUnlock()
	h.ServeHTTP(w, r)
}

// Handle serves h at an http.ServeMux pattern, replacing what was served
// there before (as a restarted service is).
func (c *Cloud) Handle(pattern string, h http.Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.patterns[pattern] = h
	mux := http.NewServeMux()
	for p, h := range c.patterns {
		mux.Handle(p, h)
	}
	var next http.Handler = mux
	if c.wrap != nil {
		next = c.wrap(mux)
	}
	c.handler = api.WithRequestID(nil, next)
}

// Mount serves h at prefix and everything under it.
func (c *Cloud) Mount(prefix string, h http.Handler) {
	c.Handle(prefix, h)
	c.Handle(prefix+"/", h)
}

// PasswordToken issues a project-scoped token for a user of the Default
// domain and returns it with the project's id.
func (c *Cloud) PasswordToken(user, password, project string) (token, projectID string) {
	c.t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}},
	}}
	res := Must(c.t, 201, Do(c.t, "POST", c.AuthURL()+"/v3/auth/tokens", "", body))
	proj, _ := res.JSON(c.t)["token"].(map[string]any)["project"].(map[string]any)
	projectID, _ = proj["id"].(string)
	return res.Header.Get("X-Subject-Token"), projectID
}

// AddUser makes a user (password name+"-secret") with a role (made when
// missing) on a project (made when missing), and returns the user's token
// on that project, the project's id and the user's id.
func (c *Cloud) AddUser(name, project, role string) (token, projectID, userID string) {
	c.t.Helper()
	v3 := c.AuthURL() + "/v3"
	get := func(path, key string) []any {
		return Must(c.t, 200, Do(c.t, "GET", v3+path, c.Admin, nil)).JSON(c.t)[key].([]any)
	}
	create := func(path, key string, body map[string]any) string {
		res := Must(c.t, 201, Do(c.t, "POST", v3+path, c.Admin, map[string]any{key: body}))
		return res.JSON(c.t)[key].(map[string]any)["id"].(string)
	}
	if ps := get("/projects?name="+project, "projects"); len(ps) > 0 {
		projectID = ps[0].(map[string]any)["id"].(string)
	} else {
		projectID = create("/projects", "project", map[string]any{"name": project, "domain_id": "default"})
	}
	userID = create("/users", "user", map[string]any{"name": name, "password": name + "-secret", "domain_id": "default"})
	roleID := ""
	if rs := get("/roles?name="+role, "roles"); len(rs) > 0 {
		roleID = rs[0].(map[string]any)["id"].(string)
	} else {
		roleID = create("/roles", "role", map[string]any{"name": role})
	}
	Must(c.t, 204, Do(c.t, "PUT", v3+"/projects/"+projectID+"/users/"+userID+"/roles/"+roleID, c.Admin, nil))
	token, _ = c.PasswordToken(name, name+"-secret", project)
	return token, projectID, userID
}
