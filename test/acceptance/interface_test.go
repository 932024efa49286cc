package acceptance

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
)

// serverNetns is the network namespace of a server of daemon d.
func serverNetns(t *testing.T, d *daemon, serverID string) string {
	t.Helper()
	agent, err := os.ReadFile(filepath.Join(d.dataDir, "agent-id"))
	if err != nil {
		t.Fatal(err)
	}
	return "ms-" + strings.TrimSpace(string(agent)) + "-" + serverID
}

// ifaceAddrs are the IPv4 addresses (CIDR form) of interface name in the
// namespace ns; nil when there is no such interface.
func ifaceAddrs(ns, name string) []string {
	out, err := exec.Command("ip", "-n", ns, "-o", "-4", "addr", "show", "dev", name).CombinedOutput()
	if err != nil {
		return nil
	}
	addrs := []string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if i := slices.Index(f, "inet"); i >= 0 && i+1 < len(f) {
			addrs = append(addrs, f[i+1])
		}
	}
	return addrs
}

// waitIface waits (at most 20 s) until interface name in ns has the
// address ip, or, for ip "", until the interface is gone.
func waitIface(t *testing.T, ns, name, ip, why string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		addrs := ifaceAddrs(ns, name)
		if ip == "" && addrs == nil {
			t.Logf("%s: no %s in %s", why, name, ns)
			return
		}
		if ip != "" && slices.ContainsFunc(addrs, func(a string) bool { return strings.HasPrefix(a, ip+"/") }) {
			t.Logf("%s: %s in %s has %v", why, name, ns, addrs)
			return
		}
		if time.Now().After(deadline) {
			out, _ := exec.Command("ip", "-n", ns, "-o", "addr").CombinedOutput()
			if ip == "" {
				t.Fatalf("%s: %s is still in %s after 20s:\n%s", why, name, ns, out)
			}
			t.Fatalf("%s: %s in %s has no %s after 20s:\n%s", why, name, ns, ip, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// defaultRoute is the IPv4 default route of a namespace.
func defaultRoute(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-4", "route", "show", "default").CombinedOutput()
	if err != nil {
		t.Fatalf("default route in %s: %v: %s", ns, err, out)
	}
	return strings.TrimSpace(string(out))
}

func listIfaces(t *testing.T, c *gophercloud.ServiceClient, server string) []attachinterfaces.Interface {
	t.Helper()
	pages, err := attachinterfaces.List(c, server).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list interfaces of %s: %v", server, err)
	}
	l, err := attachinterfaces.ExtractInterfaces(pages)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// taggedIface is an attach with a tag (2.49), which gophercloud's
// CreateOpts has no field for.
type taggedIface struct {
	attachinterfaces.CreateOpts
	Tag string
}

func (o taggedIface) ToAttachInterfacesCreateMap() (map[string]any, error) {
	m, err := o.CreateOpts.ToAttachInterfacesCreateMap()
	if err == nil {
		m["interfaceAttachment"].(map[string]any)["tag"] = o.Tag
	}
	return m, err
}

// TestInterfaceAttach: os-interface with gophercloud and the stock CLI on
// a running server, with the datapath checked in the server's namespace:
// an attached port is there at once with its address and carries traffic
// to another server of its network; it stays through stop and start; a
// detached one is gone, the user's port kept and the server's deleted.
func TestInterfaceAttach(t *testing.T) {
	needRoot(t)
	needDatapath(t)
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("no openstack CLI (python3-openstackclient)")
	}
	ctx := context.Background()
	h := watchHost(t)
	demo := demoSession(t)
	c, nc := computeClient(t, demo), demoNet(t)
	env := openrcEnv(t, cloud, "demo")
	imageID, flavorID, privateID := lookupIDs(t, demo)

	net2, sn2 := mkNetworkWithSubnet(t, nc, "acc-if", "10.89.1.0/24")
	h.network(net2.ID)
	g := mkPingableGroup(t, nc)
	userPort := mkPort(t, nc, ports.CreateOpts{NetworkID: net2.ID, SecurityGroups: &[]string{g.ID}})
	userIP := fixedIP(t, userPort)

	peer := bootServer(t, c, servers.CreateOpts{Name: uniq("acc-if-peer"), ImageRef: imageID, FlavorRef: flavorID,
		Networks: []servers.Network{{UUID: net2.ID}}, SecurityGroups: []string{g.Name}})
	srv := bootServer(t, c, servers.CreateOpts{Name: uniq("acc-if"), ImageRef: imageID, FlavorRef: flavorID,
		Networks: []servers.Network{{UUID: privateID}}, SecurityGroups: []string{g.Name}})
	waitStatus(t, c, srv.ID, "ACTIVE", 60*time.Second)
	peerSrv := waitStatus(t, c, peer.ID, "ACTIVE", 60*time.Second)
	peerIP := ""
	for _, a := range peerSrv.Addresses[net2.Name].([]any) {
		peerIP = a.(map[string]any)["addr"].(string)
	}
	ns := serverNetns(t, cloud, srv.ID)
	boot := listIfaces(t, c, srv.ID)
	if len(boot) != 1 || boot[0].NetID != privateID || len(boot[0].FixedIPs) != 1 || boot[0].FixedIPs[0].SubnetID == "" {
		t.Fatalf("a new server's interfaces: %+v", boot)
	}
	waitIface(t, ns, "eth0", boot[0].FixedIPs[0].IPAddress, "booted")
	logStart := logSize(t) // (binding ports before the server's namespace is made is an error the agent retries)
	wantNoPing(t, ns, peerIP, "before the attach, the peer on another network")

	// gophercloud: attach a network (a port is made for the server).
	t0 := time.Now()
	iface, err := attachinterfaces.Create(ctx, c, srv.ID, attachinterfaces.CreateOpts{NetworkID: net2.ID}).Extract()
	if err != nil {
		t.Fatalf("attach network %s: %v", net2.ID, err)
	}
	t.Logf("attach answered in %s", time.Since(t0).Round(time.Millisecond))
	if iface.NetID != net2.ID || iface.PortID == "" || iface.MACAddr == "" || len(iface.FixedIPs) != 1 ||
		iface.FixedIPs[0].SubnetID != sn2.ID || !strings.HasPrefix(iface.FixedIPs[0].IPAddress, "10.89.1.") {
		t.Fatalf("attached interface %+v", iface)
	}
	t.Logf("attached network: port %s %s, port_state %s", iface.PortID, iface.FixedIPs[0].IPAddress, iface.PortState)
	waitIface(t, ns, "eth1", iface.FixedIPs[0].IPAddress, "network attached")
	t.Logf("eth1 in the server %s after the attach was asked for", time.Since(t0).Round(time.Millisecond))
	wantPing(t, ns, peerIP, 5*time.Second, "from the attached interface, the peer on its network")
	got, err := attachinterfaces.Get(ctx, c, srv.ID, iface.PortID).Extract()
	if err != nil || got.PortID != iface.PortID || got.NetID != net2.ID || got.MACAddr != iface.MACAddr {
		t.Fatalf("get interface: %+v %v", got, err)
	}
	if l := listIfaces(t, c, srv.ID); len(l) != 2 || l[1].PortID != iface.PortID {
		t.Fatalf("interfaces after the attach: %+v", l)
	}
	owned, err := ports.Get(ctx, nc, iface.PortID).Extract()
	if err != nil || owned.DeviceID != srv.ID || owned.DeviceOwner != "compute:nova" || owned.Status != "ACTIVE" {
		t.Fatalf("the attached network's port: %+v %v", owned, err)
	}

	// The CLI: attach the user's port (older than the server's).
	osc(t, env, "server", "add", "port", srv.ID, userPort.ID)
	waitIface(t, ns, "eth2", userIP, "port attached")
	wantPing(t, ns, peerIP, 5*time.Second, "with two interfaces on its network, the peer")
	out := osc(t, env, "port", "list", "--server", srv.ID, "-f", "value", "-c", "ID")
	for _, id := range []string{boot[0].PortID, iface.PortID, userPort.ID} {
		if !strings.Contains(out, id) {
			t.Errorf("port list --server %s: no %s in\n%s", srv.ID, id, out)
		}
	}
	out = osc(t, env, "--os-compute-api-version", "2.70", "server", "show", srv.ID, "-f", "value", "-c", "addresses")
	if !strings.Contains(out, userIP) || !strings.Contains(out, iface.FixedIPs[0].IPAddress) {
		t.Errorf("server show: addresses %s, want %s and %s", out, userIP, iface.FixedIPs[0].IPAddress)
	}

	// Refusals, as Nova's.
	both := attachinterfaces.CreateOpts{NetworkID: net2.ID, PortID: userPort.ID}
	_, err = attachinterfaces.Create(ctx, c, srv.ID, both).Extract()
	wantCode(t, err, http.StatusBadRequest, "attach with both a network and a port")
	_, err = attachinterfaces.Create(ctx, c, srv.ID, attachinterfaces.CreateOpts{PortID: userPort.ID}).Extract()
	wantCode(t, err, http.StatusConflict, "attach an attached port")
	peerPort := listIfaces(t, c, peer.ID)[0].PortID
	_, err = attachinterfaces.Create(ctx, c, srv.ID, attachinterfaces.CreateOpts{PortID: peerPort}).Extract()
	wantCode(t, err, http.StatusConflict, "attach another server's port")
	missing := "00000000-0000-4000-8000-000000000000"
	_, err = attachinterfaces.Create(ctx, c, srv.ID, attachinterfaces.CreateOpts{PortID: missing}).Extract()
	wantCode(t, err, http.StatusNotFound, "attach an unknown port")
	_, err = attachinterfaces.Create(ctx, c, missing, attachinterfaces.CreateOpts{NetworkID: net2.ID}).Extract()
	wantCode(t, err, http.StatusNotFound, "attach to an unknown server")
	wantCode(t, attachinterfaces.Delete(ctx, c, srv.ID, missing).ExtractErr(), http.StatusNotFound, "detach an unknown port")
	_, err = attachinterfaces.Get(ctx, c, srv.ID, peerPort).Extract()
	wantCode(t, err, http.StatusNotFound, "get another server's port")

	// Stop and start: the interfaces stay, but for the user's port, which
	// is detached while the server is stopped (unplugged, unbound, kept),
	// and a network attached while stopped, which is there after the start.
	if err := servers.Stop(ctx, c, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, srv.ID, "SHUTOFF", 60*time.Second)
	if l := listIfaces(t, c, srv.ID); len(l) != 3 {
		t.Fatalf("interfaces of the stopped server: %+v", l)
	}
	osc(t, env, "server", "remove", "port", srv.ID, userPort.ID)
	var bp boundPort
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ports.Get(ctx, adminNet(t), userPort.ID).ExtractInto(&bp); err != nil {
			t.Fatalf("the user's port after the detach: %v", err)
		}
		if bp.DeviceID == "" && bp.HostID == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the user's port after the detach: device %q host %q", bp.DeviceID, bp.HostID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitIface(t, ns, "eth2", "", "port detached from the stopped server")
	waitLinkGone(t, "tap"+userPort.ID[:11])
	stopped, err := attachinterfaces.Create(ctx, c, srv.ID, attachinterfaces.CreateOpts{NetworkID: privateID}).Extract()
	if err != nil {
		t.Fatalf("attach to the stopped server: %v", err)
	}
	if err := servers.Start(ctx, c, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, srv.ID, "ACTIVE", 60*time.Second)
	waitIface(t, ns, "eth1", iface.FixedIPs[0].IPAddress, "after stop and start")
	waitIface(t, ns, "eth2", stopped.FixedIPs[0].IPAddress, "attached while stopped, after the start")
	wantPing(t, ns, peerIP, 5*time.Second, "after stop and start, the peer")
	if err := attachinterfaces.Delete(ctx, c, srv.ID, stopped.PortID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitIface(t, ns, "eth2", "", "detached")

	// Detach the network: its port is deleted.
	osc(t, env, "server", "remove", "network", srv.ID, net2.ID)
	waitIface(t, ns, "eth1", "", "network detached")
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := ports.Get(ctx, nc, iface.PortID).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the network's port after the detach: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantNoPing(t, ns, peerIP, "after the detach, the peer")
	if l := listIfaces(t, c, srv.ID); len(l) != 1 || l[0].PortID != boot[0].PortID {
		t.Fatalf("interfaces after the detaches: %+v", l)
	}
	events := osc(t, env, "server", "event", "list", srv.ID, "-f", "value", "-c", "Action")
	// Three attaches, three refused ones (an action each, as in Nova),
	// three detaches.
	if strings.Count(events, "attach_interface") != 6 || strings.Count(events, "detach_interface") != 3 {
		t.Errorf("server event list:\n%s", events)
	}

	// The CLI with a tag; then the server's delete deletes the port made
	// for it and unbinds the user's.
	osc(t, env, "--os-compute-api-version", "2.49", "server", "add", "network", "--tag", "data", srv.ID, net2.ID)
	osc(t, env, "server", "add", "port", srv.ID, userPort.ID)
	waitIface(t, ns, "eth2", userIP, "port attached again")
	l := listIfaces(t, c, srv.ID)
	if len(l) != 3 {
		t.Fatalf("interfaces: %+v", l)
	}
	c270 := *c
	c270.Microversion = "2.70"
	var tagged struct {
		Attachment struct {
			Tag *string `json:"tag"`
		} `json:"interfaceAttachment"`
	}
	if err := attachinterfaces.Get(ctx, &c270, srv.ID, l[1].PortID).ExtractInto(&tagged); err != nil || tagged.Attachment.Tag == nil || *tagged.Attachment.Tag != "data" {
		t.Errorf("the tagged interface at 2.70: %+v %v", tagged, err)
	}
	c249 := *c
	c249.Microversion = "2.49"
	tg, err := attachinterfaces.Create(ctx, &c249, peer.ID, taggedIface{attachinterfaces.CreateOpts{NetworkID: privateID}, "mgmt"}).Extract()
	if err != nil {
		t.Fatalf("gophercloud attach with a tag: %v", err)
	}
	if err := attachinterfaces.Delete(ctx, c, peer.ID, tg.PortID).ExtractErr(); err != nil {
		t.Fatalf("detach from the peer: %v", err)
	}
	waitIface(t, serverNetns(t, cloud, peer.ID), "eth1", "", "detached from the peer")

	// The agent plugged and unplugged all that without a failure.
	for _, line := range strings.Split(logSince(t, logStart), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, srv.ID) {
			t.Errorf("the agent failed on the server's interfaces:\n%s", line)
		}
	}

	if err := servers.Delete(ctx, c, srv.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitGone(dctx, c, srv.ID); err != nil {
		t.Fatal(err)
	}
	if left := listPorts(t, nc, ports.ListOpts{DeviceID: srv.ID}); len(left) != 0 {
		t.Errorf("ports of the deleted server: %+v", left)
	}
	if err := ports.Get(ctx, adminNet(t), userPort.ID).ExtractInto(&bp); err != nil || bp.DeviceID != "" || bp.HostID != "" {
		t.Errorf("the user's port after the server's delete: device %q host %q %v", bp.DeviceID, bp.HostID, err)
	}
	waitLinkGone(t, "tap"+l[1].PortID[:11])
	waitLinkGone(t, "tap"+userPort.ID[:11])
}

// TestInterfaceRestart: an attached interface is kept, in the API and in
// the server, through a restart of the daemon, and detaches after it.
func TestInterfaceRestart(t *testing.T) {
	needRoot(t)
	needDatapath(t)
	ctx := context.Background()
	d := startTestDaemon(t)
	s := d.session(t, "demo")
	c, nc := computeClient(t, s), netClient(t, s)
	imageID, flavorID, privateID := lookupIDs(t, s)
	net2, _ := mkNetworkWithSubnet(t, nc, "acc-if-restart", "10.89.2.0/24")
	srv := bootServer(t, c, servers.CreateOpts{Name: uniq("acc-if-restart"), ImageRef: imageID, FlavorRef: flavorID,
		Networks: []servers.Network{{UUID: privateID}}})
	waitStatus(t, c, srv.ID, "ACTIVE", 60*time.Second)
	ns := serverNetns(t, d, srv.ID)
	iface, err := attachinterfaces.Create(ctx, c, srv.ID, attachinterfaces.CreateOpts{NetworkID: net2.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	ip := iface.FixedIPs[0].IPAddress
	waitIface(t, ns, "eth1", ip, "attached")

	if err := d.restart(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, srv.ID, "ACTIVE", 60*time.Second)
	if l := listIfaces(t, c, srv.ID); len(l) != 2 || l[1].PortID != iface.PortID {
		t.Fatalf("interfaces after the restart: %+v", l)
	}
	waitIface(t, ns, "eth1", ip, "after the restart")
	// The datapath's resync after the restart leaves it in place.
	time.Sleep(2 * time.Second)
	waitIface(t, ns, "eth1", ip, "a while after the restart")

	if err := attachinterfaces.Delete(ctx, c, srv.ID, iface.PortID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitIface(t, ns, "eth1", "", "detached after the restart")
	if l := listIfaces(t, c, srv.ID); len(l) != 1 {
		t.Fatalf("interfaces after the detach: %+v", l)
	}
}

// TestInterfaceKeepsDefaultRoute: a port attached to a server, even one
// made before the server's own, does not take the server's default route
// from eth0.
func TestInterfaceKeepsDefaultRoute(t *testing.T) {
	needRoot(t)
	needDatapath(t)
	ctx := context.Background()
	demo := demoSession(t)
	c, nc := computeClient(t, demo), demoNet(t)
	imageID, flavorID, privateID := lookupIDs(t, demo)
	net2, _ := mkNetworkWithSubnet(t, nc, "acc-if-route", "10.89.3.0/24")
	older := mkPort(t, nc, ports.CreateOpts{NetworkID: net2.ID})
	srv := bootServer(t, c, servers.CreateOpts{Name: uniq("acc-if-route"), ImageRef: imageID, FlavorRef: flavorID,
		Networks: []servers.Network{{UUID: privateID}}})
	waitStatus(t, c, srv.ID, "ACTIVE", 60*time.Second)
	ns := serverNetns(t, cloud, srv.ID)
	waitIface(t, ns, "eth0", listIfaces(t, c, srv.ID)[0].FixedIPs[0].IPAddress, "booted")
	route := defaultRoute(t, ns)
	if !strings.Contains(route, " dev eth0 ") {
		t.Fatalf("default route of a new server: %q", route)
	}
	if _, err := attachinterfaces.Create(ctx, c, srv.ID, attachinterfaces.CreateOpts{PortID: older.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitIface(t, ns, "eth1", fixedIP(t, older), "attached")
	time.Sleep(500 * time.Millisecond) // a sync round that would move it
	if now := defaultRoute(t, ns); now != route {
		t.Errorf("attaching a port older than the server's moved its default route: %q, was %q", now, route)
	}
	if err := attachinterfaces.Delete(ctx, c, srv.ID, older.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitIface(t, ns, "eth1", "", "detached")
	deadline := time.Now().Add(10 * time.Second)
	for now := defaultRoute(t, ns); now != route; now = defaultRoute(t, ns) {
		if time.Now().After(deadline) {
			t.Fatalf("10s after the detach, the default route is %q, was %q", now, route)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
