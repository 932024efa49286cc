package image

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
	"github.com/monostack/monostack/internal/testcloud"
)

// testCloud is a real identity service and this image service on one
// temporary SQLite database, served together by httptest, bootstrapped like
// `monostack up`, plus a third project "alt" with a member user.
type testCloud struct {
	*testcloud.Cloud
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
	adminPassword = testcloud.AdminPassword
	demoPassword  = testcloud.DemoPassword
)

type response = testcloud.Response

func newTestCloud(t testing.TB, cfg Config) *testCloud {
	t.Helper()
	c := testcloud.New(t, testcloud.Options{})
	tc := &testCloud{Cloud: c, t: t, srv: c.Server, db: c.DB, ident: c.Identity, dataDir: filepath.Join(c.Dir, "images"),
		admin: c.Admin, adminProject: c.AdminProject, demo: c.Demo, demoProject: c.DemoProject}
	if err := tc.ident.EnsureService(context.Background(), "image", "glance", "Glance Image Service", tc.srv.URL+"/image"); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = tc.dataDir
	tc.cfg = cfg
	tc.restart()
	tc.alt, tc.altPr, _ = c.AddUser("alt", "alt", "member")
	tc.reader, _, _ = c.AddUser("viewer", "demo", "reader")
	return tc
}

// restart (re)opens the image service on the same database and data
// directory, as a restarted monostack does.
func (tc *testCloud) restart() {
	tc.t.Helper()
	img, err := New(context.Background(), tc.db, tc.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.img = img
	tc.Mount("/image", img.Router(tc.ident, tc.AuthURL(), nil))
}

// do sends a request: a string or []byte body is sent as is (with an
// octet-stream content type for []byte), anything else as JSON. headers
// are name, value pairs; an empty value removes the header.
func (tc *testCloud) do(method, path, token string, body any, headers ...string) response {
	tc.t.Helper()
	req := testcloud.NewRequest(tc.t, method, tc.srv.URL+path, token, body)
	switch body.(type) {
	case string:
		req.Header.Set("Content-Type", "application/json")
	case []byte, io.Reader:
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	return testcloud.Send(tc.t, nil, req)
}

func (tc *testCloud) must(want int, res response) response {
	tc.t.Helper()
	return testcloud.Must(tc.t, want, res)
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
