package network

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/datapath"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/store"
	"github.com/monostack/monostack/internal/testcloud"
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
	adminPassword = testcloud.AdminPassword
	demoPassword  = testcloud.DemoPassword
	testHost      = "node1"
)

type response = testcloud.Response

func testConfig() Config {
	return Config{Host: testHost, SyncDelay: time.Millisecond, ResyncInterval: time.Hour}
}

func newTestCloud(t testing.TB) *testCloud {
	return newTestCloudWith(t, testConfig())
}

func newTestCloudWith(t testing.TB, cfg Config) *testCloud {
	t.Helper()
	ctx := context.Background()
	c := testcloud.New(t, testcloud.Options{})
	tc := &testCloud{t: t, srv: c.Server, db: c.DB, ident: c.Identity, sync: &recordingSyncer{},
		admin: c.Admin, adminProject: c.AdminProject, demo: c.Demo, demoProject: c.DemoProject}
	if err := tc.ident.EnsureService(ctx, "network", "neutron", "Neutron Networking Service", tc.srv.URL+"/network"); err != nil {
		t.Fatal(err)
	}
	var err error
	if tc.net, err = New(ctx, tc.db, cfg, tc.sync, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.net.Close() })
	c.Mount("/network", tc.net.Router(tc.ident, c.AuthURL(), nil))
	tc.alt, tc.altPr, _ = c.AddUser("alt", "alt", "member")
	tc.reader, _, _ = c.AddUser("viewer", "demo", "reader")
	if err := tc.net.EnsureBootstrap(ctx, BootstrapConfig{AdminProjectID: tc.adminProject, DemoProjectID: tc.demoProject}); err != nil {
		t.Fatal(err)
	}
	return tc
}

// do sends a request: a string body is sent as is, anything else as JSON.
func (tc *testCloud) do(method, path, token string, body any) response {
	tc.t.Helper()
	req := testcloud.NewRequest(tc.t, method, tc.srv.URL+path, token, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return testcloud.Send(tc.t, nil, req)
}

func (tc *testCloud) must(want int, res response) response {
	tc.t.Helper()
	return testcloud.Must(tc.t, want, res)
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
