package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/store"
)

// testCloud is a real identity service on a temporary SQLite database,
// bootstrapped like `monostack up`, served by httptest.
type testCloud struct {
	t    *testing.T
	svc  *Service
	db   *store.DB
	keys *fernet.Repo
	srv  *httptest.Server
	// Tokens of the bootstrap users: admin on project admin, demo on demo.
	admin, demo string
}

const (
	testAdminPassword = "admin-secret"
	testDemoPassword  = "demo-secret"
)

func newTestCloud(t *testing.T) *testCloud {
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
	tc := &testCloud{t: t, db: db, keys: keys}
	tc.srv = httptest.NewUnstartedServer(nil)
	tc.srv.Start()
	t.Cleanup(tc.srv.Close)
	svc, err := New(ctx, db, keys, Config{BaseURL: tc.srv.URL, Region: "RegionOne", TokenTTL: time.Hour, BcryptCost: 4},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.EnsureBootstrap(ctx, Bootstrap{AdminPassword: testAdminPassword, DemoPassword: testDemoPassword}); err != nil {
		t.Fatal(err)
	}
	tc.svc = svc
	tc.srv.Config.Handler = svc.Router(nil)
	tc.admin = tc.passwordToken("admin", testAdminPassword, "admin")
	tc.demo = tc.passwordToken("demo", testDemoPassword, "demo")
	return tc
}

// passwordToken issues a project-scoped token for a user of the Default domain.
func (tc *testCloud) passwordToken(user, password, project string) string {
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
	return res.Header.Get("X-Subject-Token")
}

// response is an HTTP response with its body read.
type response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// JSON decodes the body into a generic map.
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.Body)
	}
	return m
}

// do sends a request with an optional token and body (a string or []byte is
// sent as is, anything else as JSON).
func (tc *testCloud) do(method, path, token string, body any, headers ...string) response {
	tc.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, tc.srv.URL+path, rd)
	if err != nil {
		tc.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
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
