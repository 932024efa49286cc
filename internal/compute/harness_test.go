package compute

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/api"
	"github.com/monostack/monostack/internal/identity"
	"github.com/monostack/monostack/internal/placement"
	"github.com/monostack/monostack/internal/store"
	"github.com/monostack/monostack/internal/testcloud"
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

func (f *fakeNetworks) DevicePorts(ctx context.Context, deviceID string) ([]Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Port
	for _, p := range f.ports {
		if p.DeviceID == deviceID {
			out = append(out, p)
		}
	}
	return out, nil
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
	*testcloud.Cloud
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

type response = testcloud.Response

func newTestCloud(t testing.TB) *testCloud {
	t.Helper()
	ctx := context.Background()
	c := testcloud.New(t, testcloud.Options{})
	tc := &testCloud{Cloud: c, db: c.DB, ident: c.Identity, srv: c.Server, admin: c.Admin, demo: c.Demo, demoProject: c.DemoProject}
	log := slog.New(slog.DiscardHandler)
	var err error
	tc.place, err = placement.New(ctx, tc.db, log)
	if err != nil {
		t.Fatal(err)
	}
	tc.privateNet, tc.adminNet = newUUID(), newUUID()
	tc.nets = &fakeNetworks{ports: map[string]Port{}, nets: map[string]fakeNet{
		tc.privateNet: {name: "private", project: c.DemoProject},
		tc.adminNet:   {name: "admin-net", project: c.AdminProject},
	}}
	tc.cirros = testImage
	tc.bigImage = "22222222-2222-4222-8222-222222222222"
	tc.images = &fakeImages{images: map[string]Image{
		tc.cirros:   {ID: tc.cirros, Name: "cirros", Status: "active", Size: 20 << 20},
		tc.bigImage: {ID: tc.bigImage, Name: "big", Status: "active", Size: 3 << 30, MinRAM: 1024},
	}}
	tc.hosts = NewFakeHosts(5 * time.Millisecond)
	tc.startCompute(t)
	c.Mount("/placement", tc.place.Router(tc.ident, tc.ident.URL(), log))
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
	tc.Mount("/compute", svc.router)
}

// do sends a request: a string body is sent as is, anything else as JSON.
// headers are name, value pairs.
func (tc *testCloud) do(t testing.TB, method, path, token string, body any, headers ...string) response {
	t.Helper()
	req := testcloud.NewRequest(t, method, tc.srv.URL+path, token, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return testcloud.Send(t, nil, req)
}

func (tc *testCloud) must(t testing.TB, want int, res response) response {
	t.Helper()
	return testcloud.Must(t, want, res)
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
