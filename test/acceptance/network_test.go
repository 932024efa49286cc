package acceptance

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/common/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsecurity"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// TestNetworkBootstrap: the first start made DevStack's layout: the
// external network public with public-subnet (admin's), private with
// private-subnet (demo's), demo's router1 joining them, and the default
// security groups.
func TestNetworkBootstrap(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoNet(t), adminNet(t)
	demoProject, adminProject := tokenProject(t, demoSession(t)).ID, tokenProject(t, adminSession(t)).ID
	publicCIDR, privateCIDR := cloudPrefix(t, "--public-cidr"), cloudPrefix(t, "--private-cidr")

	pages, err := extensions.List(demo).AllPages(ctx)
	if err != nil {
		t.Fatalf("list extensions: %v", err)
	}
	exts, _ := extensions.ExtractExtensions(pages)
	var aliases []string
	for _, e := range exts {
		aliases = append(aliases, e.Alias)
	}
	for _, want := range []string{"external-net", "router", "ext-gw-mode", "extraroute", "security-group", "binding",
		"port-security", "allowed-address-pairs", "net-mtu", "quotas", "standard-attr-tag"} {
		if !slices.Contains(aliases, want) {
			t.Errorf("extension %s is not listed: %v", want, aliases)
		}
	}
	if e, err := extensions.Get(ctx, demo, "router").Extract(); err != nil || e.Alias != "router" {
		t.Errorf("get extension router: %+v %v", e, err)
	}
	_, err = extensions.Get(ctx, demo, "no-such-extension").Extract()
	wantCode(t, err, http.StatusNotFound, "get an unknown extension")

	public := publicNetwork(t)
	if !public.External || public.ProjectID != adminProject || public.Status != "ACTIVE" || public.Shared || len(public.Subnets) != 1 || public.MTU != 1500 {
		t.Errorf("network public: %+v, want external, admin's, ACTIVE, one subnet, MTU 1500", public)
	}
	if len(public.Subnets) > 0 {
		sn, err := subnets.Get(ctx, demo, public.Subnets[0]).Extract()
		if err != nil {
			t.Fatalf("demo gets public-subnet: %v", err)
		}
		gw := publicCIDR.Addr().Next()
		if sn.Name != "public-subnet" || sn.CIDR != publicCIDR.String() || sn.GatewayIP != gw.String() || sn.EnableDHCP || sn.IPVersion != 4 ||
			len(sn.AllocationPools) != 1 || !inPrefix(publicCIDR, sn.AllocationPools[0].Start) || sn.AllocationPools[0].Start == gw.String() {
			t.Errorf("public-subnet %+v, want %s with gateway %s, no DHCP, one pool without the gateway", sn, publicCIDR, gw)
		}
	}

	private := listNetworks(t, demo, networks.ListOpts{Name: "private"})
	if len(private) != 1 {
		t.Fatalf("demo's networks named private: %+v", private)
	}
	priv := private[0]
	if priv.External || priv.ProjectID != demoProject || priv.Status != "ACTIVE" || len(priv.Subnets) != 1 || priv.MTU != 1450 {
		t.Errorf("network private: %+v, want demo's, internal, ACTIVE, one subnet, MTU 1450", priv)
	}
	privSubnets := listSubnets(t, demo, subnets.ListOpts{NetworkID: priv.ID})
	if len(privSubnets) != 1 || privSubnets[0].Name != "private-subnet" || privSubnets[0].CIDR != privateCIDR.String() ||
		privSubnets[0].GatewayIP != privateCIDR.Addr().Next().String() {
		t.Fatalf("subnets of private: %+v, want private-subnet %s", privSubnets, privateCIDR)
	}
	if l := listNetworks(t, admin, networks.ListOpts{Name: "private", ProjectID: demoProject}); len(l) != 1 || l[0].ID != priv.ID {
		t.Errorf("admin lists demo's private network: %+v", l)
	}
	// Both are in a plain list; public is in the external filter, private not.
	all := listIDs(listNetworks(t, demo, networks.ListOpts{}), func(n extNetwork) string { return n.ID })
	if !slices.Contains(all, public.ID) || !slices.Contains(all, priv.ID) {
		t.Errorf("demo's network list %v lacks public or private", all)
	}
	no := false
	internal := listIDs(listNetworks(t, demo, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &no}), func(n extNetwork) string { return n.ID })
	if slices.Contains(internal, public.ID) || !slices.Contains(internal, priv.ID) {
		t.Errorf("router:external=False lists %v", internal)
	}

	rs := listRouters(t, demo, routers.ListOpts{Name: "router1"})
	if len(rs) != 1 {
		t.Fatalf("demo's routers named router1: %+v", rs)
	}
	r1 := rs[0]
	gi := r1.GatewayInfo
	if r1.ProjectID != demoProject || gi.NetworkID != public.ID || gi.EnableSNAT == nil || !*gi.EnableSNAT || len(gi.ExternalFixedIPs) != 1 ||
		!inPrefix(publicCIDR, gi.ExternalFixedIPs[0].IPAddress) || (len(public.Subnets) > 0 && gi.ExternalFixedIPs[0].SubnetID != public.Subnets[0]) {
		t.Errorf("router1 %+v, want demo's, gateway on public with SNAT and an address in %s", r1, publicCIDR)
	}
	ifaces := listPorts(t, demo, ports.ListOpts{DeviceID: r1.ID, DeviceOwner: "network:router_interface"})
	if len(ifaces) != 1 || ifaces[0].NetworkID != priv.ID || len(ifaces[0].FixedIPs) != 1 ||
		ifaces[0].FixedIPs[0].IPAddress != privSubnets[0].GatewayIP || ifaces[0].FixedIPs[0].SubnetID != privSubnets[0].ID {
		t.Errorf("router1's interfaces %+v, want one on private-subnet with its gateway address", ifaces)
	}
	gws := listPorts(t, admin, ports.ListOpts{DeviceID: r1.ID, DeviceOwner: "network:router_gateway"})
	if len(gws) != 1 || gws[0].NetworkID != public.ID {
		t.Errorf("router1's gateway ports %+v, want one on public", gws)
	}

	for project, c := range map[string]*gophercloud.ServiceClient{demoProject: demo, adminProject: admin} {
		g := defaultGroup(t, c, project)
		var egress, ingressSelf []string
		for _, r := range g.Rules {
			switch {
			case r.Direction == "egress" && r.RemoteGroupID == "" && r.RemoteIPPrefix == "" && r.Protocol == "":
				egress = append(egress, r.EtherType)
			case r.Direction == "ingress" && r.RemoteGroupID == g.ID && r.Protocol == "":
				ingressSelf = append(ingressSelf, r.EtherType)
			}
		}
		slices.Sort(egress)
		slices.Sort(ingressSelf)
		if len(g.Rules) != 4 || !slices.Equal(egress, []string{"IPv4", "IPv6"}) || !slices.Equal(ingressSelf, []string{"IPv4", "IPv6"}) {
			t.Errorf("default group of project %s has rules %+v, want egress anywhere and ingress from the group, IPv4 and IPv6", project, g.Rules)
		}
	}

	// With the real datapath, router1 runs: its interface becomes ACTIVE.
	if os.Geteuid() == 0 && len(ifaces) == 1 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			p, err := ports.Get(ctx, demo, ifaces[0].ID).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if p.Status == "ACTIVE" {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("router1's interface is %s, not ACTIVE, after 10s", p.Status)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestNetworkCRUD: networks are created, read, listed with filters,
// updated and deleted; demo may not make an external network.
func TestNetworkCRUD(t *testing.T) {
	ctx := context.Background()
	demo := demoNet(t)
	demoProject := tokenProject(t, demoSession(t)).ID
	name := uniq("acc-net")
	up := true
	var n extNetwork
	err := networks.Create(ctx, demo, networks.CreateOpts{Name: name, Description: "acceptance", AdminStateUp: &up}).ExtractInto(&n)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	deleteLater(t, "network", func(ctx context.Context) error { return networks.Delete(ctx, demo, n.ID).ExtractErr() })
	if n.Name != name || n.Description != "acceptance" || !n.AdminStateUp || n.Status != "ACTIVE" || n.ProjectID != demoProject ||
		n.TenantID != demoProject || n.Shared || n.External || len(n.Subnets) != 0 || n.MTU != 1450 || n.CreatedAt.IsZero() {
		t.Errorf("created network %+v", n)
	}
	if got, err := networks.Get(ctx, demo, n.ID).Extract(); err != nil || got.Name != name || got.ID != n.ID {
		t.Errorf("get network: %+v %v", got, err)
	}

	newName, desc, down := name+"-renamed", "changed", false
	upd, err := networks.Update(ctx, demo, n.ID, networks.UpdateOpts{Name: &newName, Description: &desc, AdminStateUp: &down}).Extract()
	if err != nil || upd.Name != newName || upd.Description != desc || upd.AdminStateUp || upd.RevisionNumber <= n.RevisionNumber {
		t.Errorf("update network: %+v %v", upd, err)
	}
	if _, err := attributestags.ReplaceAll(ctx, demo, "networks", n.ID, attributestags.ReplaceAllOpts{Tags: []string{"acc-" + name}}).Extract(); err != nil {
		t.Errorf("tag network: %v", err)
	}

	for _, c := range []struct {
		what string
		opts networks.ListOptsBuilder
		want bool
	}{
		{"name", networks.ListOpts{Name: newName}, true},
		{"old name", networks.ListOpts{Name: name}, false},
		{"id", networks.ListOpts{ID: n.ID}, true},
		{"project and name", networks.ListOpts{ProjectID: demoProject, Name: newName}, true},
		{"admin_state_up=false", networks.ListOpts{AdminStateUp: &down, Name: newName}, true},
		{"admin_state_up=true", networks.ListOpts{AdminStateUp: &up, Name: newName}, false},
		{"tag", networks.ListOpts{Tags: "acc-" + name}, true},
		{"shared=true", networks.ListOpts{Shared: &up, Name: newName}, false},
		{"router:external=false", external.ListOptsExt{ListOptsBuilder: networks.ListOpts{Name: newName}, External: &down}, true},
		{"router:external=true", external.ListOptsExt{ListOptsBuilder: networks.ListOpts{Name: newName}, External: &up}, false},
	} {
		ids := listIDs(listNetworks(t, demo, c.opts), func(n extNetwork) string { return n.ID })
		if got := slices.Equal(ids, []string{n.ID}); got != c.want || (!c.want && len(ids) != 0) {
			t.Errorf("list networks by %s: %v, want the network: %v", c.what, ids, c.want)
		}
	}
	// Paging and sorting: two at a time, by name, reach the network.
	var seen []string
	pages, err := networks.List(demo, networks.ListOpts{Limit: 2, SortKey: "name", SortDir: "asc"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list networks two by two: %v", err)
	}
	l, _ := networks.ExtractNetworks(pages)
	for _, x := range l {
		seen = append(seen, x.Name)
	}
	if !slices.IsSorted(seen) || !slices.Contains(seen, newName) || !slices.Contains(seen, "private") {
		t.Errorf("networks paged by name: %v", seen)
	}

	// fields= narrows what is shown; an unknown filter is refused.
	code, body := call(t, "GET", cloud.baseURL()+"/network/v2.0/networks?fields=id&fields=name&id="+n.ID, demoSession(t).token(), nil)
	if l, _ := body["networks"].([]any); code != http.StatusOK || len(l) != 1 || len(l[0].(map[string]any)) != 2 {
		t.Errorf("list a network with fields=id&fields=name: %d %v", code, body)
	}
	code, body = call(t, "GET", cloud.baseURL()+"/network/v2.0/networks?no_such_attribute=1", demoSession(t).token(), nil)
	if e, _ := body["NeutronError"].(map[string]any); code != http.StatusBadRequest || e == nil {
		t.Errorf("list networks by an unknown attribute: %d %v, want a Neutron 400 (filter-validation)", code, body)
	}

	_, err = networks.Create(ctx, demo, networks.CreateOpts{Name: uniq("acc-other"), ProjectID: tokenProject(t, adminSession(t)).ID}).Extract()
	wantCode(t, err, http.StatusBadRequest, "demo creates a network for another project")
	onBehalf, err := networks.Create(ctx, adminNet(t), networks.CreateOpts{Name: uniq("acc-for-demo"), ProjectID: demoProject}).Extract()
	if err != nil || onBehalf.ProjectID != demoProject {
		t.Errorf("admin creates a network for demo: %+v %v", onBehalf, err)
	} else {
		deleteLater(t, "network", func(ctx context.Context) error { return networks.Delete(ctx, demo, onBehalf.ID).ExtractErr() })
		if _, err := networks.Get(ctx, demo, onBehalf.ID).Extract(); err != nil {
			t.Errorf("demo gets the network admin made for it: %v", err)
		}
	}

	_, err = networks.Create(ctx, demo, external.CreateOptsExt{CreateOptsBuilder: networks.CreateOpts{Name: uniq("acc-ext")}, External: &up}).Extract()
	wantCode(t, err, http.StatusForbidden, "demo creates an external network")
	_, err = networks.Get(ctx, demo, "00000000-0000-0000-0000-000000000000").Extract()
	wantCode(t, err, http.StatusNotFound, "get an unknown network")
	code, body = call(t, "GET", cloud.baseURL()+"/network/v2.0/networks/no-such-network", demoSession(t).token(), nil)
	if e, _ := body["NeutronError"].(map[string]any); code != http.StatusNotFound || e["type"] != "NetworkNotFound" || e["message"] == "" {
		t.Errorf("GET an unknown network: %d %v, want a Neutron NetworkNotFound fault", code, body)
	}

	if err := networks.Delete(ctx, demo, n.ID).ExtractErr(); err != nil {
		t.Fatalf("delete network: %v", err)
	}
	_, err = networks.Get(ctx, demo, n.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted network")
	wantCode(t, networks.Delete(ctx, demo, n.ID).ExtractErr(), http.StatusNotFound, "delete a deleted network")
}

// TestNetworkSubnets: subnets with their defaults and options; an
// overlapping subnet on the same network is refused (400, as upstream),
// on another network it is allowed (allow_overlapping_ips); a subnet with
// allocations is in use.
func TestNetworkSubnets(t *testing.T) {
	ctx := context.Background()
	demo := demoNet(t)
	n := mkNetwork(t, demo, "acc-subnets")
	sn := mkSubnet(t, demo, n.ID, "10.92.0.0/24")
	if sn.NetworkID != n.ID || sn.GatewayIP != "10.92.0.1" || !sn.EnableDHCP || sn.IPVersion != 4 || len(sn.AllocationPools) != 1 ||
		sn.AllocationPools[0].Start != "10.92.0.2" || sn.AllocationPools[0].End != "10.92.0.254" {
		t.Errorf("subnet with defaults: %+v, want gateway .1, DHCP, pool .2-.254", sn)
	}

	_, err := subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.92.0.128/25", IPVersion: gophercloud.IPv4}).Extract()
	wantCode(t, err, http.StatusBadRequest, "create a subnet overlapping another of the network")
	_, err = subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.92.0.0/33", IPVersion: gophercloud.IPv4}).Extract()
	wantCode(t, err, http.StatusBadRequest, "create a subnet with a bad CIDR")
	_, err = subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: n.ID, CIDR: "fd00:92::/64", IPVersion: gophercloud.IPv4}).Extract()
	wantCode(t, err, http.StatusBadRequest, "create an IPv4 subnet with an IPv6 CIDR")
	_, err = subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: "00000000-0000-0000-0000-000000000000", CIDR: "10.92.9.0/24", IPVersion: gophercloud.IPv4}).Extract()
	wantCode(t, err, http.StatusNotFound, "create a subnet on an unknown network")

	noGateway, no := "", false
	sn2, err := subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.92.1.0/24", IPVersion: gophercloud.IPv4, Name: "acc-second",
		GatewayIP: &noGateway, EnableDHCP: &no, DNSNameservers: []string{"192.0.2.53"},
		AllocationPools: []subnets.AllocationPool{{Start: "10.92.1.100", End: "10.92.1.110"}},
		HostRoutes:      []subnets.HostRoute{{DestinationCIDR: "10.93.0.0/16", NextHop: "10.92.1.5"}}}).Extract()
	if err != nil {
		t.Fatalf("create a subnet with options: %v", err)
	}
	deleteLater(t, "subnet", func(ctx context.Context) error { return subnets.Delete(ctx, demo, sn2.ID).ExtractErr() })
	if sn2.GatewayIP != "" || sn2.EnableDHCP || !slices.Equal(sn2.DNSNameservers, []string{"192.0.2.53"}) || len(sn2.AllocationPools) != 1 ||
		sn2.AllocationPools[0].Start != "10.92.1.100" || len(sn2.HostRoutes) != 1 || sn2.HostRoutes[0].NextHop != "10.92.1.5" {
		t.Errorf("subnet with options: %+v", sn2)
	}
	// The same CIDR on another network is fine.
	other := mkNetwork(t, demo, "acc-subnets-other")
	mkSubnet(t, demo, other.ID, "10.92.0.0/24")

	newName, dns := "acc-renamed", []string{"192.0.2.54", "192.0.2.55"}
	upd, err := subnets.Update(ctx, demo, sn2.ID, subnets.UpdateOpts{Name: &newName, DNSNameservers: &dns}).Extract()
	if err != nil || upd.Name != newName || !slices.Equal(upd.DNSNameservers, dns) {
		t.Errorf("update subnet: %+v %v", upd, err)
	}
	if got, err := networks.Get(ctx, demo, n.ID).Extract(); err != nil || len(got.Subnets) != 2 {
		t.Errorf("the network's subnets: %+v %v", got, err)
	}

	for _, c := range []struct {
		what string
		opts subnets.ListOpts
		want []string
	}{
		{"network_id", subnets.ListOpts{NetworkID: n.ID, SortKey: "cidr", SortDir: "asc"}, []string{sn.ID, sn2.ID}},
		{"network_id and cidr", subnets.ListOpts{NetworkID: n.ID, CIDR: "10.92.1.0/24"}, []string{sn2.ID}},
		{"name", subnets.ListOpts{Name: newName, NetworkID: n.ID}, []string{sn2.ID}},
		{"gateway_ip", subnets.ListOpts{NetworkID: n.ID, GatewayIP: "10.92.0.1"}, []string{sn.ID}},
		{"enable_dhcp", subnets.ListOpts{NetworkID: n.ID, EnableDHCP: &no}, []string{sn2.ID}},
		{"ip_version 6", subnets.ListOpts{NetworkID: n.ID, IPVersion: 6}, []string{}},
	} {
		ids := listIDs(listSubnets(t, demo, c.opts), func(s subnets.Subnet) string { return s.ID })
		if !slices.Equal(ids, c.want) {
			t.Errorf("list subnets by %s: %v, want %v", c.what, ids, c.want)
		}
	}

	// A /29 has five addresses for ports; the sixth port finds none.
	small, smallSubnet := mkNetworkWithSubnet(t, demo, "acc-subnets-small", "10.92.2.0/29")
	for range 5 {
		mkPort(t, demo, ports.CreateOpts{NetworkID: small.ID})
	}
	_, err = ports.Create(ctx, demo, ports.CreateOpts{NetworkID: small.ID}).Extract()
	wantCode(t, err, http.StatusConflict, "create a port on a network whose addresses are all taken")
	gw := "10.92.2.3"
	_, err = subnets.Update(ctx, demo, smallSubnet.ID, subnets.UpdateOpts{GatewayIP: &gw}).Extract()
	wantCode(t, err, http.StatusConflict, "move the gateway into the allocation pool")

	// A subnet with an allocation is in use; without, it goes.
	p := mkPort(t, demo, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{SubnetID: sn2.ID}}})
	if ip := fixedIP(t, p); ip < "10.92.1.100" || ip > "10.92.1.110" {
		t.Errorf("port got %s, outside the pool 10.92.1.100-110", ip)
	}
	wantCode(t, subnets.Delete(ctx, demo, sn2.ID).ExtractErr(), http.StatusConflict, "delete a subnet with an allocated address")
	if err := ports.Delete(ctx, demo, p.ID).ExtractErr(); err != nil {
		t.Fatalf("delete port: %v", err)
	}
	if err := subnets.Delete(ctx, demo, sn2.ID).ExtractErr(); err != nil {
		t.Errorf("delete a subnet no longer in use: %v", err)
	}
	_, err = subnets.Get(ctx, demo, sn2.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted subnet")
	// Deleting a network deletes its subnets.
	if err := networks.Delete(ctx, demo, n.ID).ExtractErr(); err != nil {
		t.Fatalf("delete network: %v", err)
	}
	_, err = subnets.Get(ctx, demo, sn.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a subnet of a deleted network")
}

// TestPorts: ports with their addresses, groups and bindings; a taken
// address is 409, a network with ports is in use.
func TestPorts(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoNet(t), adminNet(t)
	demoProject := tokenProject(t, demoSession(t)).ID
	n, sn := mkNetworkWithSubnet(t, demo, "acc-ports", "10.93.0.0/24")
	def := defaultGroup(t, demo, demoProject)

	var p boundPort
	err := ports.Create(ctx, demo, ports.CreateOpts{NetworkID: n.ID, Name: uniq("acc-port")}).ExtractInto(&p)
	if err != nil {
		t.Fatalf("create port: %v", err)
	}
	deleteLater(t, "port", func(ctx context.Context) error { return ports.Delete(ctx, demo, p.ID).ExtractErr() })
	if len(p.FixedIPs) != 1 || p.FixedIPs[0].SubnetID != sn.ID || !inPrefix(netip.MustParsePrefix(sn.CIDR), p.FixedIPs[0].IPAddress) ||
		p.FixedIPs[0].IPAddress == sn.GatewayIP || p.MACAddress == "" || !slices.Equal(p.SecurityGroups, []string{def.ID}) ||
		p.Status != "DOWN" || !p.AdminStateUp || p.ProjectID != demoProject || p.DeviceOwner != "" || !p.PortSecurityEnabled {
		t.Errorf("created port %+v, want an address of %s, demo's default group, DOWN, port security", p, sn.CIDR)
	}

	fixed := mkPort(t, demo, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: "10.93.0.20"}}})
	if fixedIP(t, fixed) != "10.93.0.20" {
		t.Errorf("port asked for 10.93.0.20 has %+v", fixed.FixedIPs)
	}
	_, err = ports.Create(ctx, demo, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: "10.93.0.20"}}}).Extract()
	wantCode(t, err, http.StatusConflict, "create a port with an address already allocated")
	_, err = ports.Create(ctx, demo, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{IPAddress: "10.94.0.20"}}}).Extract()
	wantCode(t, err, http.StatusBadRequest, "create a port with an address of no subnet of the network")
	_, err = ports.Create(ctx, demo, ports.CreateOpts{NetworkID: n.ID, MACAddress: p.MACAddress}).Extract()
	wantCode(t, err, http.StatusConflict, "create a port with a MAC in use on the network")
	_, err = ports.Create(ctx, demo, ports.CreateOpts{NetworkID: "00000000-0000-0000-0000-000000000000"}).Extract()
	wantCode(t, err, http.StatusNotFound, "create a port on an unknown network")
	_, err = ports.Update(ctx, demo, p.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: "10.93.0.20"}}}).Extract()
	wantCode(t, err, http.StatusConflict, "move a port to an address already allocated")

	g := mkGroup(t, demo, "acc-ports")
	newName, none := uniq("acc-port-renamed"), []string{}
	pairs := []ports.AddressPair{{IPAddress: "10.93.0.200"}}
	upd, err := ports.Update(ctx, demo, p.ID, ports.UpdateOpts{Name: &newName, SecurityGroups: &[]string{g.ID, def.ID},
		AllowedAddressPairs: &pairs, FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: "10.93.0.21"}}}).Extract()
	if err != nil || upd.Name != newName || len(upd.SecurityGroups) != 2 || len(upd.AllowedAddressPairs) != 1 ||
		upd.AllowedAddressPairs[0].IPAddress != "10.93.0.200" || upd.AllowedAddressPairs[0].MACAddress != p.MACAddress || fixedIP(t, upd) != "10.93.0.21" {
		t.Errorf("update port: %+v %v", upd, err)
	}
	// The old address is free again.
	mkPort(t, demo, ports.CreateOpts{NetworkID: n.ID, FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: fixedIP(t, &p.Port)}}})
	if upd, err := ports.Update(ctx, demo, p.ID, ports.UpdateOpts{SecurityGroups: &none}).Extract(); err != nil || len(upd.SecurityGroups) != 0 {
		t.Errorf("take the port out of every group: %+v %v", upd, err)
	}
	_, err = ports.Update(ctx, demo, p.ID, ports.UpdateOpts{SecurityGroups: &[]string{"00000000-0000-0000-0000-000000000000"}}).Extract()
	wantCode(t, err, http.StatusNotFound, "put a port in an unknown group")

	// Bindings: only an admin sets and sees them.
	host, _ := os.Hostname()
	_, err = ports.Update(ctx, demo, p.ID, portsbinding.UpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, HostID: &host}).Extract()
	wantCode(t, err, http.StatusForbidden, "demo sets binding:host_id")
	var bp boundPort
	// Bound to this host but with no namespace to plug into: it stays DOWN.
	err = ports.Update(ctx, admin, p.ID, portsbinding.UpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{}, HostID: &host,
		Profile: map[string]any{"acceptance": "yes"}}).ExtractInto(&bp)
	if err != nil || bp.HostID != host || bp.VIFType != "bridge" || bp.VNICType != "normal" || bp.Profile["acceptance"] != "yes" {
		t.Errorf("admin binds the port: %+v %v", bp, err)
	}
	code, body := call(t, "GET", cloud.baseURL()+"/network/v2.0/ports/"+p.ID, demoSession(t).token(), nil)
	if pb, _ := body["port"].(map[string]any); code != http.StatusOK || pb == nil || pb["binding:vnic_type"] != "normal" {
		t.Errorf("demo gets the port: %d %v", code, body)
	} else if _, ok := pb["binding:host_id"]; ok {
		t.Errorf("demo sees binding:host_id: %v", pb)
	}
	var created boundPort
	err = ports.Create(ctx, admin, portsbinding.CreateOptsExt{CreateOptsBuilder: ports.CreateOpts{NetworkID: n.ID, Name: uniq("acc-bound")},
		HostID: host}).ExtractInto(&created)
	if err != nil {
		t.Errorf("admin creates a bound port on demo's network: %v", err)
	} else {
		deleteLater(t, "port", func(ctx context.Context) error { return ports.Delete(ctx, admin, created.ID).ExtractErr() })
		if created.HostID != host || created.VIFType != "bridge" || created.Status != "DOWN" {
			t.Errorf("admin's bound port %+v", created)
		}
		// Demo sees the ports others made on its network.
		if _, err := ports.Get(ctx, demo, created.ID).Extract(); err != nil {
			t.Errorf("demo gets admin's port on its network: %v", err)
		}
	}

	for _, c := range []struct {
		what string
		opts ports.ListOpts
		want []string
	}{
		{"name", ports.ListOpts{Name: newName}, []string{p.ID}},
		{"fixed ip", ports.ListOpts{NetworkID: n.ID, FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.93.0.20"}}}, []string{fixed.ID}},
		{"fixed ip and subnet", ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.93.0.21", SubnetID: sn.ID}}}, []string{p.ID}},
		{"mac", ports.ListOpts{MACAddress: p.MACAddress}, []string{p.ID}},
		{"id", ports.ListOpts{ID: fixed.ID}, []string{fixed.ID}},
		{"status ACTIVE", ports.ListOpts{NetworkID: n.ID, Status: "ACTIVE"}, []string{}},
		{"device_owner", ports.ListOpts{NetworkID: n.ID, DeviceOwner: "network:router_interface"}, []string{}},
	} {
		ids := listIDs(listPorts(t, demo, c.opts), func(p ports.Port) string { return p.ID })
		if !slices.Equal(ids, c.want) {
			t.Errorf("list ports by %s: %v, want %v", c.what, ids, c.want)
		}
	}
	if l := listPorts(t, demo, ports.ListOpts{NetworkID: n.ID}); len(l) != 4 {
		t.Errorf("ports of the network: %d, want 4", len(l))
	}

	wantCode(t, networks.Delete(ctx, demo, n.ID).ExtractErr(), http.StatusConflict, "delete a network with ports")
	if err := ports.Delete(ctx, demo, p.ID).ExtractErr(); err != nil {
		t.Fatalf("delete port: %v", err)
	}
	_, err = ports.Get(ctx, demo, p.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted port")
	wantCode(t, ports.Delete(ctx, demo, p.ID).ExtractErr(), http.StatusNotFound, "delete a deleted port")
}

// TestRouters: routers with a gateway on public and interfaces by subnet
// and by port; what is in use cannot go.
func TestRouters(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoNet(t), adminNet(t)
	public := publicNetwork(t)
	publicCIDR := cloudPrefix(t, "--public-cidr")
	netA, snA := mkNetworkWithSubnet(t, demo, "acc-router-a", "10.94.1.0/24")
	netB, snB := mkNetworkWithSubnet(t, demo, "acc-router-b", "10.94.2.0/24")
	portB := mkPort(t, demo, ports.CreateOpts{NetworkID: netB.ID, FixedIPs: []ports.IP{{SubnetID: snB.ID, IPAddress: "10.94.2.1"}}})

	r := mkRouter(t, demo, routers.CreateOpts{Description: "acceptance", GatewayInfo: &routers.GatewayInfo{NetworkID: public.ID}})
	gi := r.GatewayInfo
	if r.Status != "ACTIVE" || !r.AdminStateUp || gi.NetworkID != public.ID || gi.EnableSNAT == nil || !*gi.EnableSNAT ||
		len(gi.ExternalFixedIPs) != 1 || !inPrefix(publicCIDR, gi.ExternalFixedIPs[0].IPAddress) {
		t.Errorf("created router %+v, want ACTIVE, gateway on public with SNAT and an address in %s", r, publicCIDR)
	}

	infoA := addInterface(t, demo, r.ID, routers.AddInterfaceOpts{SubnetID: snA.ID})
	if infoA.SubnetID != snA.ID || infoA.PortID == "" || infoA.ID != r.ID {
		t.Errorf("interface on subnet A: %+v", infoA)
	}
	if p, err := ports.Get(ctx, demo, infoA.PortID).Extract(); err != nil || p.DeviceOwner != "network:router_interface" ||
		p.DeviceID != r.ID || fixedIP(t, p) != snA.GatewayIP {
		t.Errorf("the interface port on A: %+v %v, want the subnet's gateway address", p, err)
	}
	infoB := addInterface(t, demo, r.ID, routers.AddInterfaceOpts{PortID: portB.ID})
	if infoB.PortID != portB.ID || infoB.SubnetID != snB.ID {
		t.Errorf("interface by port on B: %+v", infoB)
	}
	if p, err := ports.Get(ctx, demo, portB.ID).Extract(); err != nil || p.DeviceOwner != "network:router_interface" || p.DeviceID != r.ID {
		t.Errorf("the port made an interface: %+v %v", p, err)
	}
	_, err := routers.AddInterface(ctx, demo, r.ID, routers.AddInterfaceOpts{SubnetID: snA.ID}).Extract()
	wantCode(t, err, http.StatusBadRequest, "add a second interface on a subnet")
	_, err = routers.AddInterface(ctx, demo, r.ID, routers.AddInterfaceOpts{SubnetID: "00000000-0000-0000-0000-000000000000"}).Extract()
	wantCode(t, err, http.StatusNotFound, "add an interface on an unknown subnet")
	noGateway := ""
	netC := mkNetwork(t, demo, "acc-router-c")
	snC, err := subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: netC.ID, CIDR: "10.94.3.0/24", IPVersion: gophercloud.IPv4, GatewayIP: &noGateway}).Extract()
	if err != nil {
		t.Fatalf("create a subnet without a gateway: %v", err)
	}
	_, err = routers.AddInterface(ctx, demo, r.ID, routers.AddInterfaceOpts{SubnetID: snC.ID}).Extract()
	wantCode(t, err, http.StatusBadRequest, "add an interface on a subnet without a gateway")
	_, snOverlap := mkNetworkWithSubnet(t, demo, "acc-router-overlap", "10.94.1.0/24")
	_, err = routers.AddInterface(ctx, demo, r.ID, routers.AddInterfaceOpts{SubnetID: snOverlap.ID}).Extract()
	wantCode(t, err, http.StatusBadRequest, "add an interface on a subnet overlapping another of the router")
	used := mkPort(t, demo, ports.CreateOpts{NetworkID: netC.ID, DeviceID: "acc-server", DeviceOwner: "compute:nova"})
	_, err = routers.AddInterface(ctx, demo, r.ID, routers.AddInterfaceOpts{PortID: used.ID}).Extract()
	wantCode(t, err, http.StatusConflict, "add a port of a server as an interface")
	ifaces := listPorts(t, demo, ports.ListOpts{DeviceID: r.ID, DeviceOwner: "network:router_interface", SortKey: "id"})
	if len(ifaces) != 2 {
		t.Errorf("the router's interfaces: %+v", ifaces)
	}

	wantCode(t, routers.Delete(ctx, demo, r.ID).ExtractErr(), http.StatusConflict, "delete a router with interfaces")
	wantCode(t, subnets.Delete(ctx, demo, snA.ID).ExtractErr(), http.StatusConflict, "delete a subnet with a router interface")
	wantCode(t, networks.Delete(ctx, demo, netA.ID).ExtractErr(), http.StatusConflict, "delete a network with a router interface")
	wantCode(t, ports.Delete(ctx, demo, infoA.PortID).ExtractErr(), http.StatusConflict, "delete a router interface port through the port API")
	// The external network cannot go while a router uses it.
	wantCode(t, networks.Delete(ctx, admin, public.ID).ExtractErr(), http.StatusConflict, "delete the external network while routers use it")

	// Extra routes need a next hop on one of the router's subnets.
	routes := []routers.Route{{DestinationCIDR: "10.99.0.0/24", NextHop: "10.94.1.5"}}
	if upd, err := routers.Update(ctx, demo, r.ID, routers.UpdateOpts{Routes: &routes}).Extract(); err != nil ||
		len(upd.Routes) != 1 || upd.Routes[0].NextHop != "10.94.1.5" {
		t.Errorf("set extra routes: %+v %v", upd, err)
	}
	bad := []routers.Route{{DestinationCIDR: "10.99.1.0/24", NextHop: "10.77.0.5"}}
	_, err = routers.Update(ctx, demo, r.ID, routers.UpdateOpts{Routes: &bad}).Extract()
	wantCode(t, err, http.StatusBadRequest, "an extra route whose next hop is on no subnet of the router")
	_, err = routers.RemoveInterface(ctx, demo, r.ID, routers.RemoveInterfaceOpts{SubnetID: snA.ID}).Extract()
	wantCode(t, err, http.StatusConflict, "remove the interface an extra route goes through")
	if _, err := routers.Update(ctx, demo, r.ID, routers.UpdateOpts{Routes: &[]routers.Route{}}).Extract(); err != nil {
		t.Errorf("clear extra routes: %v", err)
	}

	// The gateway: cleared, and set again without SNAT.
	newName := uniq("acc-router-renamed")
	upd, err := routers.Update(ctx, demo, r.ID, routers.UpdateOpts{Name: newName, GatewayInfo: &routers.GatewayInfo{}}).Extract()
	if err != nil || upd.Name != newName || upd.GatewayInfo.NetworkID != "" {
		t.Errorf("clear the gateway: %+v %v", upd, err)
	}
	no := false
	_, err = routers.Update(ctx, demo, r.ID, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: public.ID, EnableSNAT: &no}}).Extract()
	wantCode(t, err, http.StatusForbidden, "demo sets enable_snat") // admin only, as upstream's policy has it
	upd, err = routers.Update(ctx, admin, r.ID, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: public.ID, EnableSNAT: &no}}).Extract()
	if err != nil || upd.GatewayInfo.NetworkID != public.ID || upd.GatewayInfo.EnableSNAT == nil || *upd.GatewayInfo.EnableSNAT {
		t.Errorf("admin sets the gateway without SNAT: %+v %v", upd, err)
	}
	_, err = routers.Update(ctx, demo, r.ID, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: netB.ID}}).Extract()
	wantCode(t, err, http.StatusBadRequest, "a gateway on an internal network")

	for _, c := range []struct {
		what string
		opts routers.ListOpts
		want []string
	}{
		{"name", routers.ListOpts{Name: newName}, []string{r.ID}},
		{"id", routers.ListOpts{ID: r.ID}, []string{r.ID}},
		{"description", routers.ListOpts{Description: "acceptance", Name: newName}, []string{r.ID}},
		{"old name", routers.ListOpts{Name: r.Name}, []string{}},
	} {
		ids := listIDs(listRouters(t, demo, c.opts), func(r routers.Router) string { return r.ID })
		if !slices.Equal(ids, c.want) {
			t.Errorf("list routers by %s: %v, want %v", c.what, ids, c.want)
		}
	}

	if _, err := routers.RemoveInterface(ctx, demo, r.ID, routers.RemoveInterfaceOpts{SubnetID: snA.ID}).Extract(); err != nil {
		t.Errorf("remove the interface on A by subnet: %v", err)
	}
	_, err = ports.Get(ctx, demo, infoA.PortID).Extract()
	wantCode(t, err, http.StatusNotFound, "get the port of a removed interface")
	if _, err := routers.RemoveInterface(ctx, demo, r.ID, routers.RemoveInterfaceOpts{PortID: portB.ID}).Extract(); err != nil {
		t.Errorf("remove the interface on B by port: %v", err)
	}
	_, err = routers.RemoveInterface(ctx, demo, r.ID, routers.RemoveInterfaceOpts{PortID: portB.ID}).Extract()
	wantCode(t, err, http.StatusNotFound, "remove an interface twice")
	if err := routers.Delete(ctx, demo, r.ID).ExtractErr(); err != nil {
		t.Fatalf("delete router: %v", err)
	}
	_, err = routers.Get(ctx, demo, r.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted router")
	// Its gateway port went with it.
	if l := listPorts(t, admin, ports.ListOpts{DeviceID: r.ID}); len(l) != 0 {
		t.Errorf("a deleted router left ports %+v", l)
	}
}

// TestFloatingIPs: floating IPs from public, associated with a port
// behind a router with a gateway, disassociated, and the errors around.
func TestFloatingIPs(t *testing.T) {
	ctx := context.Background()
	demo := demoNet(t)
	public := publicNetwork(t)
	publicCIDR := cloudPrefix(t, "--public-cidr")
	n, sn := mkNetworkWithSubnet(t, demo, "acc-fip", "10.95.0.0/24")
	lonely, _ := mkNetworkWithSubnet(t, demo, "acc-fip-lonely", "10.95.1.0/24")
	r := mkRouter(t, demo, routers.CreateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: public.ID}})
	addInterface(t, demo, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID})
	p := mkPort(t, demo, ports.CreateOpts{NetworkID: n.ID})
	p2 := mkPort(t, demo, ports.CreateOpts{NetworkID: n.ID})
	unreachable := mkPort(t, demo, ports.CreateOpts{NetworkID: lonely.ID})

	f := mkFloatingIP(t, demo, floatingips.CreateOpts{FloatingNetworkID: public.ID, Description: "acceptance"})
	if !inPrefix(publicCIDR, f.FloatingIP) || f.FloatingIP == publicCIDR.Addr().Next().String() || f.PortID != "" || f.FixedIP != "" ||
		f.RouterID != "" || f.Status != "DOWN" || f.FloatingNetworkID != public.ID || f.ProjectID != tokenProject(t, demoSession(t)).ID {
		t.Errorf("created floating IP %+v, want an address of %s, not associated, DOWN", f, publicCIDR)
	}

	a, err := floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{PortID: &p.ID}).Extract()
	if err != nil || a.PortID != p.ID || a.FixedIP != fixedIP(t, p) || a.RouterID != r.ID || a.FloatingIP != f.FloatingIP {
		t.Errorf("associate: %+v %v, want port %s at %s through router %s", a, err, p.ID, fixedIP(t, p), r.ID)
	}
	_, err = floatingips.Create(ctx, demo, floatingips.CreateOpts{FloatingNetworkID: public.ID, PortID: p.ID}).Extract()
	wantCode(t, err, http.StatusConflict, "a second floating IP for the same fixed address")
	_, err = floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{PortID: &unreachable.ID}).Extract()
	wantCode(t, err, http.StatusNotFound, "associate with a port whose subnet has no router to public")
	_, err = floatingips.Create(ctx, demo, floatingips.CreateOpts{FloatingNetworkID: n.ID}).Extract()
	wantCode(t, err, http.StatusBadRequest, "a floating IP from an internal network")
	_, err = floatingips.Create(ctx, demo, floatingips.CreateOpts{FloatingNetworkID: public.ID, FloatingIP: publicCIDR.Addr().Next().Next().String()}).Extract()
	wantCode(t, err, http.StatusForbidden, "demo asks for a given floating address") // admin only upstream
	_, err = floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{PortID: &p.ID, FixedIP: "10.95.0.250"}).Extract()
	wantCode(t, err, http.StatusBadRequest, "associate with an address the port does not have")
	// What depends on the association cannot go.
	_, err = routers.RemoveInterface(ctx, demo, r.ID, routers.RemoveInterfaceOpts{SubnetID: sn.ID}).Extract()
	wantCode(t, err, http.StatusConflict, "remove the router interface a floating IP goes through")
	_, err = routers.Update(ctx, demo, r.ID, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{}}).Extract()
	wantCode(t, err, http.StatusConflict, "clear the gateway of a router with floating IPs")

	for _, c := range []struct {
		what string
		opts floatingips.ListOpts
		want []string
	}{
		{"port_id", floatingips.ListOpts{PortID: p.ID}, []string{f.ID}},
		{"router_id", floatingips.ListOpts{RouterID: r.ID}, []string{f.ID}},
		{"fixed_ip_address", floatingips.ListOpts{FixedIP: fixedIP(t, p), RouterID: r.ID}, []string{f.ID}},
		{"floating_ip_address", floatingips.ListOpts{FloatingIP: f.FloatingIP}, []string{f.ID}},
		{"id and network", floatingips.ListOpts{ID: f.ID, FloatingNetworkID: public.ID}, []string{f.ID}},
		{"other port", floatingips.ListOpts{PortID: p2.ID}, []string{}},
	} {
		ids := listIDs(listFIPs(t, demo, c.opts), func(f floatingips.FloatingIP) string { return f.ID })
		if !slices.Equal(ids, c.want) {
			t.Errorf("list floating IPs by %s: %v, want %v", c.what, ids, c.want)
		}
	}

	// Moved to another port, then disassociated.
	if m, err := floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{PortID: &p2.ID}).Extract(); err != nil || m.PortID != p2.ID || m.FixedIP != fixedIP(t, p2) {
		t.Errorf("move to another port: %+v %v", m, err)
	}
	empty := ""
	d, err := floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{PortID: &empty}).Extract()
	if err != nil || d.PortID != "" || d.FixedIP != "" || d.RouterID != "" || d.FloatingIP != f.FloatingIP {
		t.Errorf("disassociate: %+v %v", d, err)
	}
	// Deleting a port disassociates its floating IP.
	f2 := mkFloatingIP(t, demo, floatingips.CreateOpts{FloatingNetworkID: public.ID, PortID: p.ID})
	if f2.PortID != p.ID || f2.RouterID != r.ID {
		t.Errorf("created associated: %+v", f2)
	}
	if err := ports.Delete(ctx, demo, p.ID).ExtractErr(); err != nil {
		t.Fatalf("delete port: %v", err)
	}
	if g, err := floatingips.Get(ctx, demo, f2.ID).Extract(); err != nil || g.PortID != "" || g.FixedIP != "" || g.RouterID != "" {
		t.Errorf("floating IP of a deleted port: %+v %v", g, err)
	}

	if err := floatingips.Delete(ctx, demo, f.ID).ExtractErr(); err != nil {
		t.Fatalf("delete floating IP: %v", err)
	}
	_, err = floatingips.Get(ctx, demo, f.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted floating IP")
}

// TestSecurityGroups: groups and rules, the protections of the default
// group, and a group in use.
func TestSecurityGroups(t *testing.T) {
	ctx := context.Background()
	demo := demoNet(t)
	demoProject := tokenProject(t, demoSession(t)).ID
	g := mkGroup(t, demo, "acc-sg")
	var egress []string
	for _, r := range g.Rules {
		if r.Direction == "egress" && r.RemoteIPPrefix == "" && r.RemoteGroupID == "" {
			egress = append(egress, r.EtherType)
		}
	}
	slices.Sort(egress)
	if g.ProjectID != demoProject || len(g.Rules) != 2 || !slices.Equal(egress, []string{"IPv4", "IPv6"}) {
		t.Errorf("created group %+v, want demo's with an egress rule per family", g)
	}

	icmp := mkRule(t, demo, icmpIngress(g.ID))
	ssh := mkRule(t, demo, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "192.0.2.0/24", Description: "ssh"})
	self := mkRule(t, demo, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolUDP, PortRangeMin: 5000, PortRangeMax: 5100, RemoteGroupID: g.ID})
	if icmp.Protocol != "icmp" || icmp.Direction != "ingress" || ssh.PortRangeMin != 22 || ssh.PortRangeMax != 22 ||
		ssh.RemoteIPPrefix != "192.0.2.0/24" || ssh.Description != "ssh" || self.RemoteGroupID != g.ID || self.SecGroupID != g.ID {
		t.Errorf("created rules %+v %+v %+v", icmp, ssh, self)
	}
	for _, c := range []struct {
		what string
		opts rules.CreateOpts
		code int
	}{
		{"a duplicate rule", rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
			Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "192.0.2.0/24"}, http.StatusConflict},
		{"a port range upside down", rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
			Protocol: rules.ProtocolTCP, PortRangeMin: 90, PortRangeMax: 80}, http.StatusBadRequest},
		{"an IPv4 prefix on an IPv6 rule", rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType6,
			RemoteIPPrefix: "10.0.0.0/8"}, http.StatusBadRequest},
		{"a bad direction", rules.CreateOpts{SecGroupID: g.ID, Direction: "sideways", EtherType: rules.EtherType4}, http.StatusBadRequest},
		{"a rule in an unknown group", rules.CreateOpts{SecGroupID: "00000000-0000-0000-0000-000000000000", Direction: rules.DirIngress,
			EtherType: rules.EtherType4}, http.StatusNotFound},
		{"a remote group that does not exist", rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
			RemoteGroupID: "00000000-0000-0000-0000-000000000000"}, http.StatusNotFound},
	} {
		_, err := rules.Create(ctx, demo, c.opts).Extract()
		wantCode(t, err, c.code, "create "+c.what)
	}

	for _, c := range []struct {
		what string
		opts rules.ListOpts
		want int
	}{
		{"group", rules.ListOpts{SecGroupID: g.ID}, 5},
		{"group and direction", rules.ListOpts{SecGroupID: g.ID, Direction: "ingress"}, 3},
		{"group and protocol", rules.ListOpts{SecGroupID: g.ID, Protocol: "tcp"}, 1},
		{"group and ethertype", rules.ListOpts{SecGroupID: g.ID, EtherType: "IPv6"}, 1},
		{"remote group", rules.ListOpts{RemoteGroupID: g.ID}, 1},
	} {
		if l := listRules(t, demo, c.opts); len(l) != c.want {
			t.Errorf("list rules by %s: %d, want %d: %+v", c.what, len(l), c.want, l)
		}
	}
	if got, err := groups.Get(ctx, demo, g.ID).Extract(); err != nil || len(got.Rules) != 5 {
		t.Errorf("get group: %+v %v, want 5 rules", got, err)
	}
	if got, err := rules.Get(ctx, demo, ssh.ID).Extract(); err != nil || got.PortRangeMin != 22 {
		t.Errorf("get rule: %+v %v", got, err)
	}
	newName, desc := uniq("acc-sg-renamed"), "changed"
	if upd, err := groups.Update(ctx, demo, g.ID, groups.UpdateOpts{Name: newName, Description: &desc}).Extract(); err != nil ||
		upd.Name != newName || upd.Description != desc {
		t.Errorf("update group: %+v %v", upd, err)
	}
	if l := listGroups(t, demo, groups.ListOpts{Name: newName}); len(l) != 1 || l[0].ID != g.ID {
		t.Errorf("list groups by name: %+v", l)
	}

	// The default group: cannot be renamed, deleted, or made twice.
	def := defaultGroup(t, demo, demoProject)
	_, err := groups.Update(ctx, demo, def.ID, groups.UpdateOpts{Name: "not-default"}).Extract()
	wantCode(t, err, http.StatusConflict, "rename the default group")
	wantCode(t, groups.Delete(ctx, demo, def.ID).ExtractErr(), http.StatusConflict, "demo deletes its default group")
	_, err = groups.Create(ctx, demo, groups.CreateOpts{Name: "default"}).Extract()
	wantCode(t, err, http.StatusConflict, "create a second group named default")

	// A group in use by a port cannot go.
	n, _ := mkNetworkWithSubnet(t, demo, "acc-sg", "10.96.0.0/24")
	p := mkPort(t, demo, ports.CreateOpts{NetworkID: n.ID, SecurityGroups: &[]string{g.ID}})
	wantCode(t, groups.Delete(ctx, demo, g.ID).ExtractErr(), http.StatusConflict, "delete a group a port is in")
	if err := ports.Delete(ctx, demo, p.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	if err := rules.Delete(ctx, demo, ssh.ID).ExtractErr(); err != nil {
		t.Errorf("delete rule: %v", err)
	}
	_, err = rules.Get(ctx, demo, ssh.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted rule")
	if err := groups.Delete(ctx, demo, g.ID).ExtractErr(); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	_, err = groups.Get(ctx, demo, g.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted group")
	_, err = rules.Get(ctx, demo, icmp.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a rule of a deleted group")
}

// TestNetworkOtherProject: demo cannot see, change or delete what the
// admin project owns (404, as upstream), nor use it; admin sees demo's.
func TestNetworkOtherProject(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoNet(t), adminNet(t)
	public := publicNetwork(t)
	n, sn := mkNetworkWithSubnet(t, admin, "acc-admin", "10.97.0.0/24")
	p := mkPort(t, admin, ports.CreateOpts{NetworkID: n.ID})
	r := mkRouter(t, admin, routers.CreateOpts{})
	g := mkGroup(t, admin, "acc-admin")
	rule := mkRule(t, admin, icmpIngress(g.ID))
	f := mkFloatingIP(t, admin, floatingips.CreateOpts{FloatingNetworkID: public.ID})

	name := "stolen"
	errs := map[string]error{}
	_, errs["get network"] = networks.Get(ctx, demo, n.ID).Extract()
	_, errs["update network"] = networks.Update(ctx, demo, n.ID, networks.UpdateOpts{Name: &name}).Extract()
	errs["delete network"] = networks.Delete(ctx, demo, n.ID).ExtractErr()
	_, errs["get subnet"] = subnets.Get(ctx, demo, sn.ID).Extract()
	_, errs["update subnet"] = subnets.Update(ctx, demo, sn.ID, subnets.UpdateOpts{Name: &name}).Extract()
	errs["delete subnet"] = subnets.Delete(ctx, demo, sn.ID).ExtractErr()
	_, errs["get port"] = ports.Get(ctx, demo, p.ID).Extract()
	_, errs["update port"] = ports.Update(ctx, demo, p.ID, ports.UpdateOpts{Name: &name}).Extract()
	errs["delete port"] = ports.Delete(ctx, demo, p.ID).ExtractErr()
	_, errs["get router"] = routers.Get(ctx, demo, r.ID).Extract()
	_, errs["update router"] = routers.Update(ctx, demo, r.ID, routers.UpdateOpts{Name: name}).Extract()
	errs["delete router"] = routers.Delete(ctx, demo, r.ID).ExtractErr()
	_, errs["get group"] = groups.Get(ctx, demo, g.ID).Extract()
	_, errs["update group"] = groups.Update(ctx, demo, g.ID, groups.UpdateOpts{Name: name}).Extract()
	errs["delete group"] = groups.Delete(ctx, demo, g.ID).ExtractErr()
	_, errs["get rule"] = rules.Get(ctx, demo, rule.ID).Extract()
	errs["delete rule"] = rules.Delete(ctx, demo, rule.ID).ExtractErr()
	_, errs["get floating IP"] = floatingips.Get(ctx, demo, f.ID).Extract()
	_, errs["update floating IP"] = floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{Description: &name}).Extract()
	errs["delete floating IP"] = floatingips.Delete(ctx, demo, f.ID).ExtractErr()
	// Nor can demo build on them.
	_, errs["create a port on the network"] = ports.Create(ctx, demo, ports.CreateOpts{NetworkID: n.ID}).Extract()
	_, errs["create a subnet on the network"] = subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.97.1.0/24", IPVersion: gophercloud.IPv4}).Extract()
	_, errs["add a rule to the group"] = rules.Create(ctx, demo, icmpIngress(g.ID)).Extract()
	_, errs["add the subnet to the router"] = routers.AddInterface(ctx, demo, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract()
	for what, err := range errs {
		wantCode(t, err, http.StatusNotFound, "demo: "+what+" of project admin")
	}
	// A demo port in admin's group: the group is not found either.
	dn, _ := mkNetworkWithSubnet(t, demo, "acc-demo", "10.97.2.0/24")
	_, err := ports.Create(ctx, demo, ports.CreateOpts{NetworkID: dn.ID, SecurityGroups: &[]string{g.ID}}).Extract()
	wantCode(t, err, http.StatusNotFound, "demo: create a port in a group of project admin")
	// demo's own router cannot take admin's subnet.
	dr := mkRouter(t, demo, routers.CreateOpts{})
	_, err = routers.AddInterface(ctx, demo, dr.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract()
	wantCode(t, err, http.StatusNotFound, "demo: add a subnet of project admin to its router")

	// None of them is in demo's lists.
	if l := listNetworks(t, demo, networks.ListOpts{ID: n.ID}); len(l) != 0 {
		t.Errorf("demo lists admin's network: %+v", l)
	}
	if l := listSubnets(t, demo, subnets.ListOpts{NetworkID: n.ID}); len(l) != 0 {
		t.Errorf("demo lists admin's subnet: %+v", l)
	}
	if l := listPorts(t, demo, ports.ListOpts{NetworkID: n.ID}); len(l) != 0 {
		t.Errorf("demo lists admin's port: %+v", l)
	}
	if l := listRouters(t, demo, routers.ListOpts{ID: r.ID}); len(l) != 0 {
		t.Errorf("demo lists admin's router: %+v", l)
	}
	if l := listGroups(t, demo, groups.ListOpts{ID: g.ID}); len(l) != 0 {
		t.Errorf("demo lists admin's group: %+v", l)
	}
	if l := listRules(t, demo, rules.ListOpts{SecGroupID: g.ID}); len(l) != 0 {
		t.Errorf("demo lists admin's rules: %+v", l)
	}
	if l := listFIPs(t, demo, floatingips.ListOpts{ID: f.ID}); len(l) != 0 {
		t.Errorf("demo lists admin's floating IP: %+v", l)
	}
	// They are all still there, unchanged.
	if got, err := networks.Get(ctx, admin, n.ID).Extract(); err != nil || got.Name == name {
		t.Errorf("admin's network after demo's attempts: %+v %v", got, err)
	}
	if got, err := groups.Get(ctx, admin, g.ID).Extract(); err != nil || len(got.Rules) != 3 {
		t.Errorf("admin's group after demo's attempts: %+v %v", got, err)
	}
	// The admin sees demo's resources.
	if _, err := networks.Get(ctx, admin, dn.ID).Extract(); err != nil {
		t.Errorf("admin gets demo's network: %v", err)
	}
	if _, err := routers.Get(ctx, admin, dr.ID).Extract(); err != nil {
		t.Errorf("admin gets demo's router: %v", err)
	}
}

// --- the real datapath: packets ---

// TestPortDatapathSameNetwork: two ports on one network, in namespaces
// of their own, ping each other when their group lets ICMP in; a port
// that is administratively down carries nothing; a port sends only from
// its own addresses and its allowed address pairs.
func TestPortDatapathSameNetwork(t *testing.T) {
	needDatapath(t)
	t.Parallel()
	h := watchHost(t)
	ctx := context.Background()
	demo := demoNet(t)
	n, _ := mkNetworkWithSubnet(t, demo, "acc-dp-l2", "10.98.1.0/24")
	h.network(n.ID)
	g := mkPingableGroup(t, demo)
	a, b := mkPlugged(t, n.ID, g.ID), mkPlugged(t, n.ID, g.ID)
	waitActive(t, a, b)
	wantPing(t, a.ns, b.ip, 3*time.Second, "two ports of one network")
	wantPing(t, b.ns, a.ip, 3*time.Second, "two ports of one network, the other way")
	// A port does not reach an address of its network nobody has.
	wantNoPing(t, a.ns, "10.98.1.250", "an address no port has")

	// admin_state_up false: DOWN and unplugged; true again: back.
	down, up := false, true
	if _, err := ports.Update(ctx, demo, b.port.ID, ports.UpdateOpts{AdminStateUp: &down}).Extract(); err != nil {
		t.Fatalf("set the port down: %v", err)
	}
	wantPingStops(t, a.ns, b.ip, 5*time.Second, "a port set administratively down")
	if p, err := ports.Get(ctx, demo, b.port.ID).Extract(); err != nil || p.Status != "DOWN" {
		t.Errorf("a port set administratively down: %+v %v, want DOWN", p, err)
	}
	if _, err := ports.Update(ctx, demo, b.port.ID, ports.UpdateOpts{AdminStateUp: &up}).Extract(); err != nil {
		t.Fatalf("set the port up: %v", err)
	}
	waitActive(t, b)
	wantPing(t, a.ns, b.ip, 5*time.Second, "a port set administratively up again")

	// Anti-spoofing: a source address the port does not have is dropped
	// (the address sits on lo, which the datapath leaves alone) until it
	// is an allowed address pair of the port.
	const extra = "10.98.1.200"
	if out, err := exec.Command("ip", "netns", "exec", a.ns, "ip", "addr", "add", extra+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("add %s to lo in %s: %v: %s", extra, a.ns, err, out)
	}
	wantNoPing(t, a.ns, b.ip, "from an address the port does not have", "-I", extra)
	pairs := []ports.AddressPair{{IPAddress: extra}}
	if _, err := ports.Update(ctx, demo, a.port.ID, ports.UpdateOpts{AllowedAddressPairs: &pairs}).Extract(); err != nil {
		t.Fatalf("allow the address pair: %v", err)
	}
	wantPing(t, a.ns, b.ip, 5*time.Second, "from an allowed address pair", "-I", extra)
}

// TestPortDatapathTwoNICs: a namespace with two ports on two networks
// (a server with two NICs): eth0 in the order the ports were made, or the
// name binding:profile "ifname" asks for; each reaches its own network;
// one default route; and the agent applies the state without errors.
func TestPortDatapathTwoNICs(t *testing.T) {
	needDatapath(t)
	t.Parallel()
	h := watchHost(t)
	logStart := logSize(t)
	demo := demoNet(t)
	netA, snA := mkNetworkWithSubnet(t, demo, "acc-dp-nic-a", "10.98.6.0/24")
	netB, _ := mkNetworkWithSubnet(t, demo, "acc-dp-nic-b", "10.98.7.0/24")
	h.network(netA.ID)
	h.network(netB.ID)
	g := mkPingableGroup(t, demo)
	first := mkPlugged(t, netA.ID, g.ID)
	second := plugInto(t, first.ns, netB.ID, "data0", g.ID)
	peerA, peerB := mkPlugged(t, netA.ID, g.ID), mkPlugged(t, netB.ID, g.ID)
	waitActive(t, first, second, peerA, peerB)

	for name, mac := range map[string]string{"eth0": first.port.MACAddress, "data0": second.port.MACAddress} {
		out, err := exec.Command("ip", "netns", "exec", first.ns, "ip", "-o", "link", "show", "dev", name).CombinedOutput()
		if err != nil || !strings.Contains(string(out), mac) {
			t.Errorf("%s in %s: %v: %s, want the port's MAC %s", name, first.ns, err, out, mac)
		}
	}
	wantPing(t, peerA.ns, first.ip, 3*time.Second, "the first NIC, from its network")
	wantPing(t, peerB.ns, second.ip, 3*time.Second, "the second NIC, from its network")
	out, err := exec.Command("ip", "netns", "exec", first.ns, "ip", "-4", "route", "show", "default").CombinedOutput()
	if routes := strings.Split(strings.TrimSpace(string(out)), "\n"); err != nil || !strings.Contains(routes[0], "via "+snA.GatewayIP+" ") {
		t.Errorf("default routes in a namespace with two NICs: %v: %q, want the first through the first NIC's gateway %s", err, out, snA.GatewayIP)
	}
	// Failed applies are retried every second: give them the time to show.
	time.Sleep(1500 * time.Millisecond)
	for _, line := range strings.Split(logSince(t, logStart), "\n") {
		if strings.Contains(line, "level=ERROR") && (strings.Contains(line, first.port.ID) || strings.Contains(line, second.port.ID)) {
			t.Errorf("the agent failed to apply a namespace with two NICs:\n%s", line)
			break
		}
	}
}

// TestRouterDatapath: a port on another network is reached only once both
// subnets are on a router, and no longer once one is taken off. Behind
// the router's gateway, ports reach the external network (SNAT).
func TestRouterDatapath(t *testing.T) {
	needDatapath(t)
	t.Parallel()
	h := watchHost(t)
	ctx := context.Background()
	demo := demoNet(t)
	public := publicNetwork(t)
	hostSide := cloudPrefix(t, "--public-cidr").Addr().Next().String() // the public bridge's address
	netA, snA := mkNetworkWithSubnet(t, demo, "acc-dp-ra", "10.98.2.0/24")
	netB, snB := mkNetworkWithSubnet(t, demo, "acc-dp-rb", "10.98.3.0/24")
	g := mkPingableGroup(t, demo)
	r := mkRouter(t, demo, routers.CreateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: public.ID}})
	h.network(netA.ID)
	h.network(netB.ID)
	h.router(t, r.ID)
	a, b := mkPlugged(t, netA.ID, g.ID), mkPlugged(t, netB.ID, g.ID)
	waitActive(t, a, b)

	wantNoPing(t, a.ns, b.ip, "another network, before any router joins them")
	addInterface(t, demo, r.ID, routers.AddInterfaceOpts{SubnetID: snA.ID})
	wantNoPing(t, a.ns, b.ip, "another network, with only one subnet on the router")
	addInterface(t, demo, r.ID, routers.AddInterfaceOpts{SubnetID: snB.ID})
	wantPing(t, a.ns, b.ip, 5*time.Second, "another network, both subnets on a router")
	wantPing(t, b.ns, a.ip, 3*time.Second, "another network, both subnets on a router, the other way")
	wantPing(t, a.ns, snA.GatewayIP, 3*time.Second, "the router's address on the port's subnet")
	// The first packet out through SNAT: 3 s was once too short under CI's
	// full load (every package's tests at once), never alone.
	wantPing(t, a.ns, hostSide, 5*time.Second, "the external network's gateway, through the router's SNAT")

	// A router set administratively down routes nothing.
	down, up := false, true
	if _, err := routers.Update(ctx, demo, r.ID, routers.UpdateOpts{AdminStateUp: &down}).Extract(); err != nil {
		t.Fatalf("set the router down: %v", err)
	}
	wantPingStops(t, a.ns, b.ip, 5*time.Second, "another network, through a router set down")
	if _, err := routers.Update(ctx, demo, r.ID, routers.UpdateOpts{AdminStateUp: &up}).Extract(); err != nil {
		t.Fatalf("set the router up: %v", err)
	}
	wantPing(t, a.ns, b.ip, 5*time.Second, "another network, through a router set up again")

	if _, err := routers.RemoveInterface(ctx, demo, r.ID, routers.RemoveInterfaceOpts{SubnetID: snB.ID}).Extract(); err != nil {
		t.Fatalf("remove interface: %v", err)
	}
	wantPingStops(t, a.ns, b.ip, 5*time.Second, "another network, after its subnet left the router")
}

// TestSecurityGroupDatapath: a group without an ICMP rule blocks pings;
// adding the rule lets them through within seconds, deleting it blocks
// them again. A rule with a remote group admits only the group's members.
func TestSecurityGroupDatapath(t *testing.T) {
	needDatapath(t)
	t.Parallel()
	h := watchHost(t)
	ctx := context.Background()
	demo := demoNet(t)
	n, _ := mkNetworkWithSubnet(t, demo, "acc-dp-sg", "10.98.4.0/24")
	h.network(n.ID)
	open := mkPingableGroup(t, demo)
	closed := mkGroup(t, demo, "acc-noicmp") // egress only
	members := mkGroup(t, demo, "acc-members")
	mkRule(t, demo, rules.CreateOpts{SecGroupID: members.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolICMP, RemoteGroupID: members.ID})
	a := mkPlugged(t, n.ID, open.ID)
	b := mkPlugged(t, n.ID, closed.ID)
	m1, m2 := mkPlugged(t, n.ID, members.ID), mkPlugged(t, n.ID, members.ID)
	waitActive(t, a, b, m1, m2)

	// The ports are wired: b reaches a, whose group lets ICMP in.
	wantPing(t, b.ns, a.ip, 3*time.Second, "into a group with an ICMP rule")
	wantNoPing(t, a.ns, b.ip, "into a group without an ICMP rule")
	rule := mkRule(t, demo, icmpIngress(closed.ID))
	wantPing(t, a.ns, b.ip, 5*time.Second, "into a group after an ICMP rule was added")
	if err := rules.Delete(ctx, demo, rule.ID).ExtractErr(); err != nil {
		t.Fatalf("delete rule: %v", err)
	}
	wantPingStops(t, a.ns, b.ip, 5*time.Second, "into a group after its ICMP rule was deleted")

	// Remote group: members reach each other, others do not reach them.
	wantPing(t, m1.ns, m2.ip, 3*time.Second, "a member of the rule's remote group")
	wantNoPing(t, a.ns, m2.ip, "a port outside the rule's remote group")
	// Port security off: no filtering at all.
	off := false
	if _, err := ports.Update(ctx, demo, b.port.ID, portsecurity.PortUpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{SecurityGroups: &[]string{}},
		PortSecurityEnabled: &off}).Extract(); err != nil {
		t.Fatalf("turn port security off: %v", err)
	}
	wantPing(t, a.ns, b.ip, 5*time.Second, "a port without port security")
}

// TestFloatingIPDatapath: a floating IP associated with a port is
// reachable from the host (the public network's bridge holds the public
// subnet's gateway address), and no longer once disassociated.
func TestFloatingIPDatapath(t *testing.T) {
	needDatapath(t)
	t.Parallel()
	h := watchHost(t)
	ctx := context.Background()
	demo := demoNet(t)
	public := publicNetwork(t)
	hostSide := cloudPrefix(t, "--public-cidr").Addr().Next().String()
	n, sn := mkNetworkWithSubnet(t, demo, "acc-dp-fip", "10.98.5.0/24")
	g := mkPingableGroup(t, demo)
	r := mkRouter(t, demo, routers.CreateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: public.ID}})
	h.network(n.ID)
	h.router(t, r.ID)
	addInterface(t, demo, r.ID, routers.AddInterfaceOpts{SubnetID: sn.ID})
	a := mkPlugged(t, n.ID, g.ID)
	f := mkFloatingIP(t, demo, floatingips.CreateOpts{FloatingNetworkID: public.ID})
	waitActive(t, a)

	wantNoPing(t, "", f.FloatingIP, "a floating IP associated with nothing")
	if _, err := floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{PortID: &a.port.ID}).Extract(); err != nil {
		t.Fatalf("associate: %v", err)
	}
	wantPing(t, "", f.FloatingIP, 5*time.Second, "a floating IP associated with a port")
	wantPing(t, a.ns, hostSide, 3*time.Second, "the host, from a port with a floating IP")
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := floatingips.Get(ctx, demo, f.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == "ACTIVE" {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("an associated floating IP that answers is %s, not ACTIVE", got.Status)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	empty := ""
	if _, err := floatingips.Update(ctx, demo, f.ID, floatingips.UpdateOpts{PortID: &empty}).Extract(); err != nil {
		t.Fatalf("disassociate: %v", err)
	}
	wantPingStops(t, "", f.FloatingIP, 5*time.Second, "a floating IP after it was disassociated")
}
