package network

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	gcext "github.com/gophercloud/gophercloud/v2/openstack/common/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/provider"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// TestGophercloud drives the network service with gophercloud's
// networking v2, found through the catalog like any client does.
func TestGophercloud(t *testing.T) {
	tc := newTestCloud(t)
	ctx := context.Background()
	client := func(user, password, project string) *gophercloud.ServiceClient {
		t.Helper()
		pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
			IdentityEndpoint: tc.srv.URL + "/identity/v3", Username: user, Password: password, DomainID: "default",
			Scope: &gophercloud.AuthScope{ProjectName: project, DomainID: "default"},
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := openstack.NewNetworkV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	demo, admin := client("demo", demoPassword, "demo"), client("admin", adminPassword, "admin")

	// Extensions.
	pages, err := gcext.List(demo).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exts, _ := gcext.ExtractExtensions(pages)
	if len(exts) != len(Aliases()) {
		t.Errorf("%d extensions", len(exts))
	}

	// Networks with their extension attributes.
	up := true
	net, err := networks.Create(ctx, demo, networks.CreateOpts{Name: "gopher", AdminStateUp: &up, Description: "go"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if net.Status != "ACTIVE" || net.ProjectID == "" || net.CreatedAt.IsZero() {
		t.Errorf("network %+v", net)
	}
	type fullNet struct {
		networks.Network
		external.NetworkExternalExt
		provider.NetworkProviderExt
	}
	var public []fullNet
	pages, err = networks.List(admin, networks.ListOpts{Name: "public"}).AllPages(ctx)
	if err == nil {
		err = networks.ExtractNetworksInto(pages, &public)
	}
	if err != nil || len(public) != 1 || !public[0].External || public[0].NetworkType != "flat" {
		t.Fatalf("public %+v %v", public, err)
	}
	// Paging through every network two at a time.
	var names []string
	err = networks.List(demo, networks.ListOpts{Limit: 2, SortKey: "name", SortDir: "asc"}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		l, err := networks.ExtractNetworks(p)
		for _, n := range l {
			names = append(names, n.Name)
		}
		return true, err
	})
	if err != nil || !slices.Equal(names, []string{"gopher", "private", "public"}) {
		t.Errorf("paged names %v %v", names, err)
	}

	// Subnets.
	gw := "10.200.0.1"
	sn, err := subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.200.0.0/24", IPVersion: gophercloud.IPv4,
		GatewayIP: &gw, AllocationPools: []subnets.AllocationPool{{Start: "10.200.0.10", End: "10.200.0.20"}},
		DNSNameservers: []string{"192.0.2.53"}, HostRoutes: []subnets.HostRoute{{DestinationCIDR: "10.201.0.0/16", NextHop: "10.200.0.5"}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if sn.GatewayIP != gw || len(sn.AllocationPools) != 1 || sn.AllocationPools[0].Start != "10.200.0.10" || !sn.EnableDHCP {
		t.Errorf("subnet %+v", sn)
	}
	_, err = subnets.Create(ctx, demo, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.200.0.0/25", IPVersion: gophercloud.IPv4}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("overlap: %v", err)
	}

	// Ports, bound by the admin.
	port, err := ports.Create(ctx, demo, ports.CreateOpts{NetworkID: net.ID, Name: "gp",
		FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: "10.200.0.15"}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(port.FixedIPs) != 1 || port.FixedIPs[0].IPAddress != "10.200.0.15" || len(port.SecurityGroups) != 1 {
		t.Errorf("port %+v", port)
	}
	_, err = ports.Create(ctx, demo, ports.CreateOpts{NetworkID: net.ID, FixedIPs: []ports.IP{{SubnetID: sn.ID, IPAddress: "10.200.0.15"}}}).Extract()
	var ec gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ec) || ec.Actual != http.StatusConflict {
		t.Errorf("taken address: %v", err)
	}
	type boundPort struct {
		ports.Port
		portsbinding.PortsBindingExt
	}
	var bp boundPort
	err = ports.Update(ctx, admin, port.ID, portsbinding.UpdateOptsExt{UpdateOptsBuilder: ports.UpdateOpts{},
		HostID: new("node7"), Profile: map[string]any{"netns": "/var/run/netns/g"}}).ExtractInto(&bp)
	if err != nil || bp.HostID != "node7" || bp.VIFType != "bridge" || bp.Profile["netns"] != "/var/run/netns/g" {
		t.Errorf("bound %+v %v", bp, err)
	}
	var found []ports.Port
	pages, err = ports.List(demo, ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.200.0.15"}}}).AllPages(ctx)
	if err == nil {
		found, err = ports.ExtractPorts(pages)
	}
	if err != nil || len(found) != 1 || found[0].ID != port.ID {
		t.Errorf("ports by address %v %v", found, err)
	}

	// Routers and floating IPs.
	rt, err := routers.Create(ctx, demo, routers.CreateOpts{Name: "gr", GatewayInfo: &routers.GatewayInfo{NetworkID: public[0].ID}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if rt.GatewayInfo.NetworkID != public[0].ID || len(rt.GatewayInfo.ExternalFixedIPs) != 1 {
		t.Errorf("router %+v", rt)
	}
	iface, err := routers.AddInterface(ctx, demo, rt.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract()
	if err != nil || iface.SubnetID != sn.ID || iface.PortID == "" || iface.TenantID == "" {
		t.Fatalf("interface %+v %v", iface, err)
	}
	_, err = routers.AddInterface(ctx, demo, rt.ID, routers.AddInterfaceOpts{SubnetID: sn.ID}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("interface twice: %v", err)
	}
	fip, err := floatingips.Create(ctx, demo, floatingips.CreateOpts{FloatingNetworkID: public[0].ID, PortID: port.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if fip.FixedIP != "10.200.0.15" || fip.RouterID != rt.ID || fip.FloatingIP == "" {
		t.Errorf("floating ip %+v", fip)
	}
	fip, err = floatingips.Update(ctx, demo, fip.ID, floatingips.UpdateOpts{PortID: new(string)}).Extract()
	if err != nil || fip.PortID != "" {
		t.Errorf("disassociated %+v %v", fip, err)
	}
	if err := floatingips.Delete(ctx, demo, fip.ID).ExtractErr(); err != nil {
		t.Error(err)
	}
	if _, err := routers.RemoveInterface(ctx, demo, rt.ID, routers.RemoveInterfaceOpts{SubnetID: sn.ID}).Extract(); err != nil {
		t.Error(err)
	}
	if err := routers.Delete(ctx, demo, rt.ID).ExtractErr(); err != nil {
		t.Error(err)
	}

	// Security groups and rules.
	g, err := groups.Create(ctx, demo, groups.CreateOpts{Name: "ggroup", Description: "g"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	rule, err := rules.Create(ctx, demo, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "192.0.2.0/24"}).Extract()
	if err != nil || rule.PortRangeMin != 22 || rule.Protocol != "tcp" {
		t.Fatalf("rule %+v %v", rule, err)
	}
	_, err = rules.Create(ctx, demo, rules.CreateOpts{SecGroupID: g.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "192.0.2.0/24"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("duplicate rule: %v", err)
	}
	g, err = groups.Get(ctx, demo, g.ID).Extract()
	if err != nil || len(g.Rules) != 3 {
		t.Errorf("group %+v %v", g, err)
	}

	// Tags and quotas.
	tags, err := attributestags.ReplaceAll(ctx, demo, "networks", net.ID, attributestags.ReplaceAllOpts{Tags: []string{"b", "a"}}).Extract()
	if err != nil || !slices.Equal(tags, []string{"a", "b"}) {
		t.Errorf("tags %v %v", tags, err)
	}
	if ok, err := attributestags.Confirm(ctx, demo, "networks", net.ID, "a").Extract(); err != nil || !ok {
		t.Errorf("confirm %v %v", ok, err)
	}
	q, err := quotas.Get(ctx, demo, tc.demoProject).Extract()
	if err != nil || q.Network != 100 || q.Port != 500 {
		t.Errorf("quota %+v %v", q, err)
	}
	qd, err := quotas.GetDetail(ctx, demo, tc.demoProject).Extract()
	if err != nil || qd.Network.Used < 2 {
		t.Errorf("quota details %+v %v", qd, err)
	}
	if _, err := quotas.Update(ctx, admin, tc.demoProject, quotas.UpdateOpts{Router: new(20)}).Extract(); err != nil {
		t.Error(err)
	}

	// Deletes and 404s.
	if err := ports.Delete(ctx, demo, port.ID).ExtractErr(); err != nil {
		t.Error(err)
	}
	if err := networks.Delete(ctx, demo, net.ID).ExtractErr(); err != nil {
		t.Error(err)
	}
	if _, err := networks.Get(ctx, demo, net.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("deleted network: %v", err)
	}
}
