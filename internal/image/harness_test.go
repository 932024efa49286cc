package image

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
)

// testCloud is a real identity service and this image service on one
// temporary SQLite database, served together by httptest, bootstrapped like
// `monostack up`, plus a third project "alt" with a member user.
type testCloud struct {
	t       testing.TB
	srv     *httptest.Server
	db      *store.DB
	ident   *identity.Service
	img     *Service
	cfg     Config
	dataDir string
	// Tokens and their projects: admin (cloud admin), demo and alt
	// (members of their projects), reader (reader on demo).
	admin, demo, alt, reader         string
	adminProject, demoProject, altPr string
}

const (
	adminPassword = "admin-secret"
	demoPassword  = "demo-secret"
)

func newTestCloud(t testing.TB, cfg Config) *testCloud {
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
	tc := &testCloud{t: t, db: db, dataDir: filepath.Join(dir, "images")}
	tc.srv = httptest.NewUnstartedServer(nil)
	tc.srv.Start()
	t.Cleanup(tc.srv.Close)
	log := slog.New(slog.DiscardHandler)
	tc.ident, err = identity.New(ctx, db, keys, identity.Config{BaseURL: tc.srv.URL, Region: "RegionOne",
		TokenTTL: time.Hour, BcryptCost: 4}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.ident.EnsureBootstrap(ctx, identity.Bootstrap{AdminPassword: adminPassword, DemoPassword: demoPassword}); err != nil {
		t.Fatal(err)
	}
	if err := tc.ident.EnsureService(ctx, "image", "glance", "Glance Image Service", tc.srv.URL+"/image"); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = tc.dataDir
	tc.cfg = cfg
	if tc.img, err = New(ctx, db, cfg, log); err != nil {
		t.Fatal(err)
	}
	tc.serve()
	tc.admin, tc.adminProject = tc.passwordToken("admin", adminPassword, "admin")
	tc.demo, tc.demoProject = tc.passwordToken("demo", demoPassword, "demo")
	tc.alt, tc.altPr = tc.addUser("alt", "alt", "member")
	tc.reader, _ = tc.addUser("viewer", "demo", "reader")
	return tc
}

// serve (re)builds the handler from the current services.
func (tc *testCloud) serve() {
	mux := http.NewServeMux()
	idr := tc.ident.Router(nil)
	mux.Handle("/identity", idr)
	mux.Handle("/identity/", idr)
	imr := tc.img.Router(tc.ident, tc.srv.URL+"/identity", nil)
	mux.Handle("/image", imr)
	mux.Handle("/image/", imr)
	tc.srv.Config.Handler = api.WithRequestID(nil, mux)
}

// restart reopens the image service on the same database and data
// directory, as a restarted monostack does.
func (tc *testCloud) restart() {
	tc.t.Helper()
	img, err := New(context.Background(), tc.db, tc.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.img = img
	tc.serve()
}

// addUser makes a user with a role on a project (made when missing) and
// returns its token and the project id.
func (tc *testCloud) addUser(name, project, role string) (string, string) {
	tc.t.Helper()
	pid := ""
	res := tc.do("GET", "/identity/v3/projects?name="+project, tc.admin, nil)
	if ps := res.JSON(tc.t)["projects"].([]any); len(ps) > 0 {
		pid = ps[0].(map[string]any)["id"].(string)
	} else {
		res = tc.must(201, tc.do("POST", "/identity/v3/projects", tc.admin, map[string]any{
			"project": map[string]any{"name": project, "domain_id": "default"}}))
		pid = res.JSON(tc.t)["project"].(map[string]any)["id"].(string)
	}
	res = tc.must(201, tc.do("POST", "/identity/v3/users", tc.admin, map[string]any{
		"user": map[string]any{"name": name, "password": name + "-secret", "domain_id": "default"}}))
	uid := res.JSON(tc.t)["user"].(map[string]any)["id"].(string)
	res = tc.must(200, tc.do("GET", "/identity/v3/roles?name="+role, tc.admin, nil))
	rid := res.JSON(tc.t)["roles"].([]any)[0].(map[string]any)["id"].(string)
	tc.must(204, tc.do("PUT", "/identity/v3/projects/"+pid+"/users/"+uid+"/roles/"+rid, tc.admin, nil))
	tok, _ := tc.passwordToken(name, name+"-secret", project)
	return tok, pid
}

func (tc *testCloud) passwordToken(user, password, project string) (string, string) {
	tc.t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}},
	}}
	res := tc.must(201, tc.do("POST", "/identity/v3/auth/tokens", "", body))
	pid := res.JSON(tc.t)["token"].(map[string]any)["project"].(map[string]any)["id"].(string)
	return res.Header.Get("X-Subject-Token"), pid
}

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

// do sends a request: a string or []byte body is sent as is (with an
// octet-stream content type for []byte), anything else as JSON. headers
// are name, value pairs.
func (tc *testCloud) do(method, path, token string, body any, headers ...string) response {
	tc.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd, ct = strings.NewReader(b), "application/json"
	case []byte:
		rd, ct = bytes.NewReader(b), "application/octet-stream"
	case io.Reader:
		rd, ct = b, "application/octet-stream"
	default:
		j, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, tc.srv.URL+path, rd)
	if err != nil {
		tc.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{StatusCode: res.StatusCode, Header: res.Header, Body: b}
}

func (tc *testCloud) must(want int, res response) response {
	tc.t.Helper()
	if res.StatusCode != want {
		tc.t.Fatalf("status %d, want %d: %s", res.StatusCode, want, res.Body)
	}
	return res
}

// create makes an image as token and returns its JSON.
func (tc *testCloud) create(token string, body map[string]any) map[string]any {
	tc.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	return tc.must(201, tc.do("POST", "/image/v2/images", token, body)).JSON(tc.t)
}

// upload creates a bare/raw image and uploads data to it, returning the id.
func (tc *testCloud) upload(token string, body map[string]any, data []byte) string {
	tc.t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if _, ok := body["disk_format"]; !ok {
		body["disk_format"] = "raw"
	}
	if _, ok := body["container_format"]; !ok {
		body["container_format"] = "bare"
	}
	id := tc.create(token, body)["id"].(string)
	tc.must(204, tc.do("PUT", "/image/v2/images/"+id+"/file", token, data))
	return id
}

func (tc *testCloud) show(token, id string) map[string]any {
	tc.t.Helper()
	return tc.must(200, tc.do("GET", "/image/v2/images/"+id, token, nil)).JSON(tc.t)
}

// listIDs returns the ids a list query returns (one page).
func (tc *testCloud) listIDs(token, query string) []string {
	tc.t.Helper()
	res := tc.must(200, tc.do("GET", "/image/v2/images"+query, token, nil)).JSON(tc.t)
	var ids []string
	for _, im := range res["images"].([]any) {
		ids = append(ids, im.(map[string]any)["id"].(string))
	}
	return ids
}

// dataFiles lists the files under the data directory.
func (tc *testCloud) dataFiles() []string {
	tc.t.Helper()
	var out []string
	filepath.WalkDir(tc.dataDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(tc.dataDir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// faultMessage returns the message of an error body, failing the test if
// the body is not the {"error": {...}} fault.
func faultMessage(t testing.TB, r response) string {
	t.Helper()
	var f struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &f); err != nil || f.Error.Code != r.StatusCode || f.Error.Message == "" {
		t.Fatalf("status %d: not a fault body: %s", r.StatusCode, r.Body)
	}
	return f.Error.Message
}
