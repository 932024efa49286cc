package network

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
)

// recordingSyncer is a Syncer that keeps every state it is sent.
type recordingSyncer struct {
	mu    sync.Mutex
	calls []syncCall
	fail  error
	// notify, when set, receives each call without blocking.
	notify chan syncCall
}

type syncCall struct {
	host  string
	state datapath.HostState
	at    time.Time
}

func (r *recordingSyncer) Sync(ctx context.Context, host string, st datapath.HostState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	c := syncCall{host, st, time.Now()}
	r.calls = append(r.calls, c)
	if r.notify != nil {
		select {
		case r.notify <- c:
		default:
		}
	}
	return nil
}

// latest returns the last state sent to host.
func (r *recordingSyncer) latest(host string) (datapath.HostState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.calls) - 1; i >= 0; i-- {
		if r.calls[i].host == host {
			return r.calls[i].state, true
		}
	}
	return datapath.HostState{}, false
}

// waitFor polls until the last state sent to host satisfies ok.
func (r *recordingSyncer) waitFor(t testing.TB, host string, within time.Duration, ok func(datapath.HostState) bool) datapath.HostState {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, sent := r.latest(host)
		if sent && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state satisfying the condition sent to %s within %v; last: %+v", host, within, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testCloud is a real identity service and this network service on one
// temporary SQLite database, bootstrapped like `monostack up`, with a
// third project "alt" and a reader on demo.
type testCloud struct {
	t     testing.TB
	srv   *httptest.Server
	db    *store.DB
	ident *identity.Service
	net   *Service
	sync  *recordingSyncer
	// Tokens: admin (cloud admin), demo and alt (members), reader (reader on demo).
	admin, demo, alt, reader         string
	adminProject, demoProject, altPr string
}

const (
	adminPassword = "admin-secret"
	demoPassword  = "demo-secret"
	testHost      = "node1"
)

func testConfig() Config {
	return Config{Host: testHost, SyncDelay: time.Millisecond, ResyncInterval: time.Hour}
}

func newTestCloud(t testing.TB) *testCloud {
	return newTestCloudWith(t, testConfig())
}

func newTestCloudWith(t testing.TB, cfg Config) *testCloud {
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
	tc := &testCloud{t: t, db: db, sync: &recordingSyncer{}}
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
	if err := tc.ident.EnsureService(ctx, "network", "neutron", "Neutron Networking Service", tc.srv.URL+"/network"); err != nil {
		t.Fatal(err)
	}
	if tc.net, err = New(ctx, db, cfg, tc.sync, log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.net.Close() })
	mux := http.NewServeMux()
	idr := tc.ident.Router(nil)
	mux.Handle("/identity", idr)
	mux.Handle("/identity/", idr)
	nr := tc.net.Router(tc.ident, tc.srv.URL+"/identity", nil)
	mux.Handle("/network", nr)
	mux.Handle("/network/", nr)
	tc.srv.Config.Handler = api.WithRequestID(nil, mux)
	tc.admin, tc.adminProject = tc.passwordToken("admin", adminPassword, "admin")
	tc.demo, tc.demoProject = tc.passwordToken("demo", demoPassword, "demo")
	tc.alt, tc.altPr = tc.addUser("alt", "alt", "member")
	tc.reader, _ = tc.addUser("viewer", "demo", "reader")
	if err := tc.net.EnsureBootstrap(ctx, BootstrapConfig{AdminProjectID: tc.adminProject, DemoProjectID: tc.demoProject}); err != nil {
		t.Fatal(err)
	}
	return tc
}

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

// do sends a request: a string body is sent as is, anything else as JSON.
func (tc *testCloud) do(method, path, token string, body any) response {
	tc.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
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

// create POSTs {"<resource>": body} to /network/v2.0/<collection> and
// returns the created object.
func (tc *testCloud) create(token, resource string, body map[string]any) map[string]any {
	tc.t.Helper()
	coll := collectionOf(resource)
	res := tc.must(201, tc.do("POST", "/network/v2.0/"+coll, token, map[string]any{resource: body}))
	return res.JSON(tc.t)[resource].(map[string]any)
}

func collectionOf(resource string) string {
	switch resource {
	case "security_group":
		return "security-groups"
	case "security_group_rule":
		return "security-group-rules"
	}
	return resource + "s"
}

func (tc *testCloud) show(token, resource, id string) map[string]any {
	tc.t.Helper()
	res := tc.must(200, tc.do("GET", "/network/v2.0/"+collectionOf(resource)+"/"+id, token, nil))
	return res.JSON(tc.t)[resource].(map[string]any)
}

// list returns the items of a collection GET.
func (tc *testCloud) list(token, collection, query string) []map[string]any {
	tc.t.Helper()
	res := tc.must(200, tc.do("GET", "/network/v2.0/"+collection+query, token, nil))
	key := strings.ReplaceAll(collection, "-", "_")
	raw := res.JSON(tc.t)[key].([]any)
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

func ids(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = it["id"].(string)
	}
	return out
}

// fault checks a NeutronError body and returns its type and message.
func fault(t testing.TB, r response) (string, string) {
	t.Helper()
	var f struct {
		NeutronError struct {
			Type    string  `json:"type"`
			Message string  `json:"message"`
			Detail  *string `json:"detail"`
		} `json:"NeutronError"`
	}
	if err := json.Unmarshal(r.Body, &f); err != nil || f.NeutronError.Type == "" || f.NeutronError.Message == "" || f.NeutronError.Detail == nil {
		t.Fatalf("status %d: not a NeutronError body: %s", r.StatusCode, r.Body)
	}
	return f.NeutronError.Type, f.NeutronError.Message
}

// expectFault sends a request and checks the status and fault type.
func (tc *testCloud) expectFault(status int, typ string, method, path, token string, body any) string {
	tc.t.Helper()
	res := tc.do(method, path, token, body)
	if res.StatusCode != status {
		tc.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, status, res.Body)
	}
	got, msg := fault(tc.t, res)
	if typ != "" && got != typ {
		tc.t.Fatalf("%s %s: fault type %s, want %s (%s)", method, path, got, typ, msg)
	}
	return msg
}

// netWithSubnet makes a network with one IPv4 subnet as token and returns
// their ids.
func (tc *testCloud) netWithSubnet(token, name, cidr string) (string, string) {
	tc.t.Helper()
	n := tc.create(token, "network", map[string]any{"name": name})
	sn := tc.create(token, "subnet", map[string]any{"network_id": n["id"], "cidr": cidr, "ip_version": 4, "name": name + "-subnet"})
	return n["id"].(string), sn["id"].(string)
}

func byName(items []map[string]any, name string) map[string]any {
	for _, it := range items {
		if it["name"] == name {
			return it
		}
	}
	return nil
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return fmt.Sprint(string(b))
}
