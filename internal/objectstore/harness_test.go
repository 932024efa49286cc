package objectstore

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
)

// testCloud is a real identity service and the object store on one
// temporary SQLite database, served by httptest as monostack serves them.
type testCloud struct {
	t     testing.TB
	dir   string
	db    *store.DB
	ident *identity.Service
	svc   *Service
	srv   *httptest.Server
	cfg   Config
	// Tokens and project ids: admin (cloud admin, project admin) and demo
	// (member of demo).
	admin, demo               string
	adminProject, demoProject string
	client                    *http.Client
}

const (
	testAdminPassword = "admin-secret"
	testDemoPassword  = "demo-secret"
)

func newTestCloud(t testing.TB) *testCloud {
	return newTestCloudConfig(t, Config{})
}

func newTestCloudConfig(t testing.TB, cfg Config) *testCloud {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	keys, err := fernet.OpenRepo(filepath.Join(dir, "keys"), 3)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCloud{t: t, dir: dir, db: db}
	tc.srv = httptest.NewUnstartedServer(nil)
	tc.srv.Start()
	t.Cleanup(tc.srv.Close)
	tc.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(tc.client.CloseIdleConnections)
	log := slog.New(slog.DiscardHandler)
	ident, err := identity.New(ctx, db, keys, identity.Config{BaseURL: tc.srv.URL, Region: "RegionOne", TokenTTL: time.Hour, BcryptCost: 4}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.EnsureBootstrap(ctx, identity.Bootstrap{AdminPassword: testAdminPassword, DemoPassword: testDemoPassword}); err != nil {
		t.Fatal(err)
	}
	tc.ident = ident
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(dir, "swift")
	}
	tc.cfg = cfg
	tc.open()
	tc.admin, tc.adminProject = tc.passwordToken("admin", testAdminPassword, "admin")
	tc.demo, tc.demoProject = tc.passwordToken("demo", testDemoPassword, "demo")
	return tc
}

// open (re)starts the object store on the cloud's database and directory.
func (tc *testCloud) open() {
	tc.t.Helper()
	svc, err := New(context.Background(), tc.db, tc.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.svc = svc
	tc.t.Cleanup(func() { svc.Close() })
	mux := http.NewServeMux()
	idr := tc.ident.Router(nil)
	mux.Handle("/identity", idr)
	mux.Handle("/identity/", idr)
	mux.Handle(Prefix+"/", svc.Router(tc.ident, tc.srv.URL+"/identity", nil))
	tc.srv.Config.Handler = api.WithRequestID(nil, PreservePaths(mux))
}

// reopen simulates a restart of the object store: New runs its start-up
// check again on the same database and files.
func (tc *testCloud) reopen() {
	tc.svc.Close()
	tc.open()
}

// passwordToken issues a project-scoped token for a user of the Default
// domain and returns it with the project's id.
func (tc *testCloud) passwordToken(user, password, project string) (string, string) {
	tc.t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}},
	}}
	res := tc.do("POST", "/identity/v3/auth/tokens", "", body)
	if res.StatusCode != http.StatusCreated {
		tc.t.Fatalf("token for %s: %d %s", user, res.StatusCode, res.Body)
	}
	var tok struct {
		Token struct {
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"token"`
	}
	json.Unmarshal(res.Body, &tok)
	return res.Header.Get("X-Subject-Token"), tok.Token.Project.ID
}

// newUser makes a project and a user with role on it, and returns the
// user's token, the project id and the user id.
func (tc *testCloud) newUser(name, role string) (token, projectID, userID string) {
	tc.t.Helper()
	res := tc.must(201, tc.do("POST", "/identity/v3/projects", tc.admin, map[string]any{
		"project": map[string]any{"name": name, "domain_id": "default"}}))
	projectID = res.JSON(tc.t)["project"].(map[string]any)["id"].(string)
	res = tc.must(201, tc.do("POST", "/identity/v3/users", tc.admin, map[string]any{
		"user": map[string]any{"name": name, "domain_id": "default", "password": name + "-pw", "default_project_id": projectID}}))
	userID = res.JSON(tc.t)["user"].(map[string]any)["id"].(string)
	roles := tc.must(200, tc.do("GET", "/identity/v3/roles?name="+role, tc.admin, nil)).JSON(tc.t)["roles"].([]any)
	if len(roles) == 0 {
		r := tc.must(201, tc.do("POST", "/identity/v3/roles", tc.admin, map[string]any{"role": map[string]any{"name": role}}))
		roles = append(roles, r.JSON(tc.t)["role"])
	}
	roleID := roles[0].(map[string]any)["id"].(string)
	tc.must(204, tc.do("PUT", "/identity/v3/projects/"+projectID+"/users/"+userID+"/roles/"+roleID, tc.admin, nil))
	token, _ = tc.passwordToken(name, name+"-pw", name)
	return token, projectID, userID
}

// response is an HTTP response with its body read.
type response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r response) List(t testing.TB) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatalf("body is not a JSON list: %v: %s", err, r.Body)
	}
	return l
}

// do sends a request; path is sent as is (already escaped). A string or
// []byte body is sent raw, an io.Reader chunked, anything else as JSON.
// headers are name, value pairs.
func (tc *testCloud) do(method, path, token string, body any, headers ...string) response {
	tc.t.Helper()
	var rd io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
		isJSON = true
	}
	req, err := http.NewRequest(method, tc.srv.URL+"/", rd)
	if err != nil {
		tc.t.Fatal(err)
	}
	rawPath, rawQuery, _ := strings.Cut(path, "?")
	req.URL.RawQuery = rawQuery
	if r, ok := body.(io.Reader); ok {
		switch r.(type) {
		case *strings.Reader, *bytes.Reader, *bytes.Buffer:
		default:
			req.ContentLength = -1 // chunked
		}
	}
	// Keep the path exactly as given (no re-encoding or cleaning).
	req.URL.Opaque = "//" + req.URL.Host + rawPath
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := tc.client.Do(req)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{StatusCode: res.StatusCode, Header: res.Header, Body: b}
}

// must fails the test unless the response has the wanted status.
func (tc *testCloud) must(want int, res response) response {
	tc.t.Helper()
	if res.StatusCode != want {
		tc.t.Fatalf("status %d, want %d: %s", res.StatusCode, want, res.Body)
	}
	return res
}

// acct is the path of a project's account.
func acct(project string) string { return Prefix + "/v1/AUTH_" + project }

// p is the path of an account's container or object, each part escaped
// with "/" kept (as swiftclient quotes).
func p(project string, parts ...string) string {
	out := acct(project)
	for _, part := range parts {
		out += "/" + swiftQuote(part)
	}
	return out
}

// demoPath is p for the demo project.
func (tc *testCloud) demoPath(parts ...string) string { return p(tc.demoProject, parts...) }

// mkContainer creates a container in demo's account.
func (tc *testCloud) mkContainer(name string, headers ...string) {
	tc.t.Helper()
	res := tc.do("PUT", tc.demoPath(name), tc.demo, nil, headers...)
	if res.StatusCode != 201 && res.StatusCode != 202 {
		tc.t.Fatalf("PUT container %s: %d %s", name, res.StatusCode, res.Body)
	}
}

// put uploads an object to demo's account.
func (tc *testCloud) put(container, name string, body string, headers ...string) response {
	tc.t.Helper()
	return tc.must(201, tc.do("PUT", tc.demoPath(container, name), tc.demo, body, headers...))
}

// names returns the names (or subdirs) of a JSON listing.
func names(t testing.TB, r response) []string {
	t.Helper()
	out := []string{}
	if r.StatusCode == 204 {
		return out
	}
	for _, e := range r.List(t) {
		if n, ok := e["name"].(string); ok {
			out = append(out, n)
		} else {
			out = append(out, "sub:"+e["subdir"].(string))
		}
	}
	return out
}

func q(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}
