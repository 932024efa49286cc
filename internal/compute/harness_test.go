package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/fernet"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/placement"
	"github.com/monostack/monostack/internal/store"
)

// fakeImages serves a fixed set of images.
type fakeImages struct{ images map[string]Image }

func (f *fakeImages) Lookup(ctx context.Context, c *api.Credentials, id string) (Image, error) {
	im, ok := f.images[id]
	if !ok {
		return im, api.NotFound("No image found with ID %s", id)
	}
	return im, nil
}

// fakeNetworks keeps networks and ports in memory.
type fakeNetworks struct {
	mu    sync.Mutex
	nets  map[string]fakeNet
	ports map[string]Port
	next  int
}

type fakeNet struct {
	name, project string
	shared        bool
}

func (f *fakeNetworks) CheckNetwork(ctx context.Context, project, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nets[id]
	if !ok || (!n.shared && n.project != project) {
		return "", api.NotFound("Network %s could not be found.", id)
	}
	return n.name, nil
}

func (f *fakeNetworks) AutoNetwork(ctx context.Context, project string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.nets {
		if n.project == project {
			return id, nil
		}
	}
	return "", nil
}

func (f *fakeNetworks) CreatePort(ctx context.Context, r PortRequest) (Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nets[r.NetworkID]
	if !ok {
		return Port{}, api.NotFound("Network %s could not be found.", r.NetworkID)
	}
	f.next++
	ip := fmt.Sprintf("10.0.%d.%d", f.next/250, f.next%250+2)
	if r.FixedIPs != nil {
		ip = r.FixedIPs[0].IP
	}
	p := Port{ID: newUUID(), ProjectID: r.ProjectID, NetworkID: r.NetworkID, NetworkName: n.name,
		MAC: fmt.Sprintf("fa:16:3e:00:%02x:%02x", f.next/256, f.next%256), DeviceID: r.DeviceID, DeviceOwner: r.DeviceOwner,
		FixedIPs: []FixedIP{{SubnetID: "sub", IP: ip}}, MTU: 1500,
		Addresses: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(ip), 24)}, Gateways: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	f.ports[p.ID] = p
	return p, nil
}

func (f *fakeNetworks) GetPort(ctx context.Context, id string) (Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[id]
	if !ok {
		return p, api.NotFound("Port %s could not be found.", id)
	}
	return p, nil
}

func (f *fakeNetworks) BindPort(ctx context.Context, id, host, device, owner string, profile map[string]any) (Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.ports[id]
	if !ok {
		return p, api.NotFound("Port %s could not be found.", id)
	}
	p.HostID, p.DeviceID, p.DeviceOwner = host, device, owner
	f.ports[id] = p
	return p, nil
}

func (f *fakeNetworks) DeletePort(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ports, id)
	return nil
}

func (f *fakeNetworks) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ports)
}

type testCloud struct {
	db          *store.DB
	ident       *identity.Service
	place       *placement.Service
	svc         *Service
	hosts       *FakeHosts
	images      *fakeImages
	nets        *fakeNetworks
	srv         *httptest.Server
	admin, demo string
	demoProject string
	privateNet  string
	adminNet    string
	cirros      string
	bigImage    string
}

const testImage = "11111111-1111-4111-8111-111111111111"

func newTestCloud(t testing.TB) *testCloud {
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
	tc := &testCloud{db: db}
	tc.srv = httptest.NewServer(nil)
	t.Cleanup(tc.srv.Close)
	log := slog.New(slog.DiscardHandler)
	tc.ident, err = identity.New(ctx, db, keys, identity.Config{BaseURL: tc.srv.URL, Region: "RegionOne", TokenTTL: time.Hour, BcryptCost: 4}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.ident.EnsureBootstrap(ctx, identity.Bootstrap{AdminPassword: "a", DemoPassword: "d"}); err != nil {
		t.Fatal(err)
	}
	tc.place, err = placement.New(ctx, db, log)
	if err != nil {
		t.Fatal(err)
	}
	demo, _ := tc.ident.ProjectByName(ctx, "default", "demo")
	adminP, _ := tc.ident.ProjectByName(ctx, "default", "admin")
	tc.demoProject = demo.ID
	tc.privateNet, tc.adminNet = newUUID(), newUUID()
	tc.nets = &fakeNetworks{ports: map[string]Port{}, nets: map[string]fakeNet{
		tc.privateNet: {name: "private", project: demo.ID},
		tc.adminNet:   {name: "admin-net", project: adminP.ID},
	}}
	tc.cirros = testImage
	tc.bigImage = "22222222-2222-4222-8222-222222222222"
	tc.images = &fakeImages{images: map[string]Image{
		tc.cirros:   {ID: tc.cirros, Name: "cirros", Status: "active", Size: 20 << 20},
		tc.bigImage: {ID: tc.bigImage, Name: "big", Status: "active", Size: 3 << 30, MinRAM: 1024},
	}}
	tc.hosts = NewFakeHosts(5 * time.Millisecond)
	tc.startCompute(t)
	mux := http.NewServeMux()
	mux.Handle("/identity/", tc.ident.Router(log))
	mux.Handle("/placement/", tc.place.Router(tc.ident, tc.ident.URL(), log))
	mux.Handle("/placement", tc.place.Router(tc.ident, tc.ident.URL(), log))
	mux.Handle("/compute/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.svc.router.ServeHTTP(w, r) }))
	mux.Handle("/compute", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.svc.router.ServeHTTP(w, r) }))
	tc.srv.Config.Handler = api.WithRequestID(nil, mux)
	tc.admin = tc.token(t, "admin", "a", "admin")
	tc.demo = tc.token(t, "demo", "d", "demo")
	return tc
}

// startCompute (re)opens the compute service on the cloud's database, as
// a restart does.
func (tc *testCloud) startCompute(t testing.TB) {
	t.Helper()
	svc, err := New(context.Background(), tc.db, Config{}, tc.images, tc.nets, tc.hosts, tc.place, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	svc.router = svc.Router(tc.ident, tc.ident.URL(), nil)
	if err := svc.RegisterHost(context.Background(), HostInfo{Name: "host1", IP: "10.1.0.1", VCPUs: 4, MemoryMB: 8192, DiskGB: 100}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	tc.svc = svc
}

func (tc *testCloud) token(t testing.TB, user, password, project string) string {
	t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "domain": map[string]any{"id": "default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}},
	}}
	res := tc.do(t, "POST", "/identity/v3/auth/tokens", "", body)
	if res.StatusCode != 201 {
		t.Fatalf("token: %d %s", res.StatusCode, res.Body)
	}
	return res.Header.Get("X-Subject-Token")
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
		t.Fatalf("not JSON: %v: %s", err, r.Body)
	}
	return m
}

func (tc *testCloud) do(t testing.TB, method, path, token string, body any, headers ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, tc.srv.URL+path, rd)
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
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

func (tc *testCloud) must(t testing.TB, want int, res response) response {
	t.Helper()
	if res.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, want, res.Body)
	}
	return res
}

// createServer creates a server as demo on the private network.
func (tc *testCloud) createServer(t testing.TB, token, name, flavor string, extra map[string]any) string {
	t.Helper()
	sv := map[string]any{"name": name, "imageRef": tc.cirros, "flavorRef": flavor, "networks": []any{map[string]any{"uuid": tc.privateNet}}}
	if token == tc.admin {
		sv["networks"] = []any{map[string]any{"uuid": tc.adminNet}}
	}
	for k, v := range extra {
		sv[k] = v
	}
	res := tc.must(t, 202, tc.do(t, "POST", "/compute/v2.1/servers", token, map[string]any{"server": sv}))
	return res.JSON(t)["server"].(map[string]any)["id"].(string)
}

// waitStatus polls a server until it has the status.
func (tc *testCloud) waitStatus(t testing.TB, token, id, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := tc.do(t, "GET", "/compute/v2.1/servers/"+id, token, nil, "OpenStack-API-Version", "compute 2.79")
		if want == "DELETED" && res.StatusCode == 404 {
			return nil
		}
		if res.StatusCode == 200 {
			sv := res.JSON(t)["server"].(map[string]any)
			if sv["status"] == want && sv["OS-EXT-STS:task_state"] == nil {
				return sv
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %s: status %v task %v, want %s", id, sv["status"], sv["OS-EXT-STS:task_state"], want)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("server %s: %d %s", id, res.StatusCode, res.Body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
