package network

import (
	"context"
	"github.com/monostack/monostack/internal/api"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/datapath"
)

func TestPortGoAPI(t *testing.T) {
	tc := newTestCloud(t)
	ctx := t.Context()
	private := byName(tc.list(tc.demo, "networks", ""), "private")["id"].(string)
	altNet := tc.create(tc.alt, "network", map[string]any{})["id"].(string)
	if _, err := tc.net.CreatePort(ctx, PortRequest{ProjectID: tc.demoProject, NetworkID: altNet}); !api.IsNotFound(err) {
		t.Fatalf("port on another project's network: %v", err)
	}
	p, err := tc.net.CreatePort(ctx, PortRequest{ProjectID: tc.demoProject, NetworkID: private, DeviceID: "vm", DeviceOwner: "compute:nova"})
	if err != nil {
		t.Fatal(err)
	}
	if p.MTU != 1450 || p.NetworkName != "private" || len(p.Addresses) != 1 || p.Addresses[0].Bits() != 24 ||
		len(p.Gateways) != 1 || p.Gateways[0] != netip.MustParseAddr("198.51.100.1") || len(p.SecurityGroups) != 1 {
		t.Errorf("port %+v", p)
	}
	b, err := tc.net.BindPort(ctx, p.ID, testHost, "vm", "compute:nova", map[string]any{"netns": "/var/run/netns/vm"})
	if err != nil || b.HostID != testHost {
		t.Fatalf("bind %+v %v", b, err)
	}
	tc.sync.waitFor(t, testHost, time.Second, func(s datapath.HostState) bool { return findPort(s, p.ID) != nil })
	if err := tc.net.DeletePort(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := tc.net.DeletePort(ctx, p.ID); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	tc.sync.waitFor(t, testHost, time.Second, func(s datapath.HostState) bool { return findPort(s, p.ID) == nil })
}

// TestRestart reopens the service on the same database: everything is
// kept, and the first round sends every host its state.
func TestRestart(t *testing.T) {
	tc := newTestCloud(t)
	private := byName(tc.list(tc.demo, "networks", ""), "private")["id"].(string)
	p := tc.create(tc.demo, "port", map[string]any{"network_id": private})["id"].(string)
	tc.bind(p, "node4", "/var/run/netns/r")
	before, err := tc.net.HostState(t.Context(), "node4")
	if err != nil {
		t.Fatal(err)
	}
	tc.net.Close()
	rec := &recordingSyncer{}
	svc, err := New(context.Background(), tc.db, testConfig(), rec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	rec.waitFor(t, "node4", 2*time.Second, func(s datapath.HostState) bool { return len(s.Ports) == 1 && s.Ports[0].ID == before.Ports[0].ID })
	rec.waitFor(t, testHost, 2*time.Second, func(s datapath.HostState) bool { return len(s.Routers) == 1 })
	if err := svc.EnsureBootstrap(t.Context(), BootstrapConfig{AdminProjectID: tc.adminProject, DemoProjectID: tc.demoProject}); err != nil {
		t.Fatal(err)
	}
}
