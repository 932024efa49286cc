package objectstore

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
	"github.com/monostack/monostack/internal/testcloud"
)

// testCloud is a real identity service and the object store on one
// temporary SQLite database, served by httptest as monostack serves them.
type testCloud struct {
	*testcloud.Cloud
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

type response = testcloud.Response

func newTestCloud(t testing.TB) *testCloud {
	return newTestCloudConfig(t, Config{})
}

func newTestCloudConfig(t testing.TB, cfg Config) *testCloud {
	t.Helper()
	c := testcloud.New(t, testcloud.Options{Wrap: PreservePaths})
	tc := &testCloud{Cloud: c, t: t, dir: c.Dir, db: c.DB, ident: c.Identity, srv: c.Server,
		admin: c.Admin, adminProject: c.AdminProject, demo: c.Demo, demoProject: c.DemoProject}
	tc.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(tc.client.CloseIdleConnections)
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(c.Dir, "swift")
	}
	tc.cfg = cfg
	tc.open()
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
	tc.Handle(Prefix+"/", svc.Router(tc.ident, tc.AuthURL(), nil))
}

// reopen simulates a restart of the object store: New runs its start-up
// check again on the same database and files.
func (tc *testCloud) reopen() {
	tc.svc.Close()
	tc.open()
}

// newUser makes a project and a user with role on it, and returns the
// user's token, the project id and the user id.
func (tc *testCloud) newUser(name, role string) (token, projectID, userID string) {
	tc.t.Helper()
	return tc.AddUser(name, name, role)
}

// do sends a request; path is sent as is (already escaped). A string or
// []byte body is sent raw, an io.Reader chunked, anything else as JSON.
// headers are name, value pairs.
func (tc *testCloud) do(method, path, token string, body any, headers ...string) response {
	tc.t.Helper()
	req := testcloud.NewRequest(tc.t, method, tc.srv.URL+"/", token, body, headers...)
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
	return testcloud.Send(tc.t, tc.client, req)
}

// must fails the test unless the response has the wanted status.
func (tc *testCloud) must(want int, res response) response {
	tc.t.Helper()
	return testcloud.Must(tc.t, want, res)
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
