package network

import (
	"slices"
	"testing"
)

func TestBootstrapLayout(t *testing.T) {
	tc := newTestCloud(t)
	nets := tc.list(tc.admin, "networks", "")
	public, private := byName(nets, "public"), byName(nets, "private")
	if public == nil || private == nil {
		t.Fatalf("networks %v", nets)
	}
	if public["router:external"] != true || public["shared"] != false || public["project_id"] != tc.adminProject ||
		public["provider:network_type"] != "flat" || public["mtu"] != float64(1500) {
		t.Errorf("public %v", public)
	}
	if private["project_id"] != tc.demoProject || private["router:external"] != false || private["mtu"] != float64(1450) ||
		private["provider:network_type"] != "vxlan" {
		t.Errorf("private %v", private)
	}
	subs := tc.list(tc.admin, "subnets", "")
	ps := byName(subs, "public-subnet")
	if ps == nil || ps["cidr"] != DefaultPublicCIDR || ps["gateway_ip"] != DefaultPublicGateway || ps["enable_dhcp"] != false {
		t.Errorf("public-subnet %v", ps)
	}
	if pv := byName(subs, "private-subnet"); pv == nil || pv["cidr"] != DefaultPrivateCIDR || pv["project_id"] != tc.demoProject {
		t.Errorf("private-subnet %v", pv)
	}
	routers := tc.list(tc.demo, "routers", "")
	if len(routers) != 1 || routers[0]["name"] != "router1" {
		t.Fatalf("routers %v", routers)
	}
	gw := routers[0]["external_gateway_info"].(map[string]any)
	if gw["network_id"] != public["id"] || gw["enable_snat"] != true || len(gw["external_fixed_ips"].([]any)) != 1 {
		t.Errorf("gateway %v", gw)
	}
	ifaces := tc.list(tc.demo, "ports", "?device_id="+routers[0]["id"].(string)+"&device_owner=network:router_interface")
	if len(ifaces) != 1 || ifaces[0]["fixed_ips"].([]any)[0].(map[string]any)["ip_address"] != "198.51.100.1" {
		t.Errorf("router interfaces %v", ifaces)
	}
	for _, tok := range []string{tc.admin, tc.demo} {
		sgs := tc.list(tok, "security-groups", "?name=default")
		if len(sgs) < 1 || len(sgs[0]["security_group_rules"].([]any)) != 4 {
			t.Errorf("default groups %v", sgs)
		}
	}
	// Idempotent: a second run changes nothing.
	before := len(tc.list(tc.admin, "ports", ""))
	if err := tc.net.EnsureBootstrap(t.Context(), BootstrapConfig{AdminProjectID: tc.adminProject, DemoProjectID: tc.demoProject}); err != nil {
		t.Fatal(err)
	}
	if after := len(tc.list(tc.admin, "ports", "")); after != before || len(tc.list(tc.admin, "networks", "")) != 2 {
		t.Errorf("second bootstrap changed things: %d ports, was %d", after, before)
	}
}

func TestNetworkCRUD(t *testing.T) {
	tc := newTestCloud(t)
	n := tc.create(tc.demo, "network", map[string]any{"name": "n1", "description": "d", "tags": []string{"x", "y"},
		"port_security_enabled": false, "mtu": 1400, "availability_zone_hints": []string{"nova"}})
	id := n["id"].(string)
	want := map[string]any{"name": "n1", "description": "d", "status": "ACTIVE", "admin_state_up": true, "shared": false,
		"router:external": false, "mtu": float64(1400), "port_security_enabled": false, "project_id": tc.demoProject,
		"tenant_id": tc.demoProject, "revision_number": float64(0)}
	for k, v := range want {
		if n[k] != v {
			t.Errorf("%s = %v, want %v", k, n[k], v)
		}
	}
	for _, k := range []string{"provider:network_type", "provider:segmentation_id", "provider:physical_network"} {
		if _, ok := n[k]; ok {
			t.Errorf("a member sees %s", k)
		}
	}
	if n["created_at"] == "" || len(n["subnets"].([]any)) != 0 || len(n["tags"].([]any)) != 2 {
		t.Errorf("created %v", n)
	}
	adm := tc.show(tc.admin, "network", id)
	if adm["provider:network_type"] != "vxlan" || adm["provider:segmentation_id"] == nil {
		t.Errorf("admin view %v", adm)
	}
	res := tc.must(200, tc.do("PUT", "/network/v2.0/networks/"+id, tc.demo, map[string]any{"network": map[string]any{
		"name": "n2", "admin_state_up": false}}))
	up := res.JSON(t)["network"].(map[string]any)
	if up["name"] != "n2" || up["admin_state_up"] != false || up["revision_number"] != float64(1) {
		t.Errorf("updated %v", up)
	}
	tc.expectFault(403, "PolicyNotAuthorized", "PUT", "/network/v2.0/networks/"+id, tc.demo, map[string]any{"network": map[string]any{"shared": true}})
	tc.expectFault(400, "InvalidInput", "PUT", "/network/v2.0/networks/"+id, tc.demo, map[string]any{"network": map[string]any{"mtu": 9000}})
	tc.expectFault(404, "AvailabilityZoneNotFound", "POST", "/network/v2.0/networks", tc.demo, map[string]any{"network": map[string]any{"availability_zone_hints": []string{"mars"}}})
	tc.must(204, tc.do("DELETE", "/network/v2.0/networks/"+id, tc.demo, nil))
	tc.expectFault(404, "NetworkNotFound", "GET", "/network/v2.0/networks/"+id, tc.demo, nil)
	tc.expectFault(404, "NetworkNotFound", "DELETE", "/network/v2.0/networks/"+id, tc.demo, nil)

	// Provider attributes: admin only; segments are unique.
	tc.expectFault(403, "PolicyNotAuthorized", "POST", "/network/v2.0/networks", tc.demo,
		map[string]any{"network": map[string]any{"provider:network_type": "vlan"}})
	v := tc.create(tc.admin, "network", map[string]any{"provider:network_type": "vlan", "provider:physical_network": "phys", "provider:segmentation_id": 42})
	if v["provider:segmentation_id"] != float64(42) || v["mtu"] != float64(1500) {
		t.Errorf("vlan %v", v)
	}
	tc.expectFault(409, "VlanIdInUse", "POST", "/network/v2.0/networks", tc.admin,
		map[string]any{"network": map[string]any{"provider:network_type": "vlan", "provider:physical_network": "phys", "provider:segmentation_id": 42}})

	// Bulk create is one transaction.
	res = tc.must(201, tc.do("POST", "/network/v2.0/networks", tc.demo, map[string]any{"networks": []any{
		map[string]any{"name": "b1"}, map[string]any{"name": "b2"}}}))
	if l := res.JSON(t)["networks"].([]any); len(l) != 2 {
		t.Errorf("bulk %v", l)
	}
	before := len(tc.list(tc.demo, "networks", ""))
	tc.expectFault(400, "", "POST", "/network/v2.0/networks", tc.demo, map[string]any{"networks": []any{
		map[string]any{"name": "b3"}, map[string]any{"mtu": "lots"}}})
	if after := len(tc.list(tc.demo, "networks", "")); after != before {
		t.Errorf("failed bulk create left %d networks", after-before)
	}
}

func TestNetworkInUseAndExternal(t *testing.T) {
	tc := newTestCloud(t)
	nid, _ := tc.netWithSubnet(tc.demo, "busy", "10.20.0.0/24")
	p := tc.create(tc.demo, "port", map[string]any{"network_id": nid})
	msg := tc.expectFault(409, "NetworkInUse", "DELETE", "/network/v2.0/networks/"+nid, tc.demo, nil)
	if !slices.Contains([]string{"Unable to complete operation on network " + nid + ". There are one or more ports still in use on the network, id for these ports is: " + p["id"].(string) + "."}, msg) {
		t.Errorf("message %q", msg)
	}
	tc.must(204, tc.do("DELETE", "/network/v2.0/ports/"+p["id"].(string), tc.demo, nil))
	tc.must(204, tc.do("DELETE", "/network/v2.0/networks/"+nid, tc.demo, nil))
	if subs := tc.list(tc.admin, "subnets", "?network_id="+nid); len(subs) != 0 {
		t.Errorf("subnets left: %v", subs)
	}
	// The public network has the router's gateway: it cannot stop being external.
	public := byName(tc.list(tc.admin, "networks", ""), "public")["id"].(string)
	tc.expectFault(409, "ExternalNetworkInUse", "PUT", "/network/v2.0/networks/"+public, tc.admin,
		map[string]any{"network": map[string]any{"router:external": false}})
	tc.expectFault(409, "NetworkInUse", "DELETE", "/network/v2.0/networks/"+public, tc.admin, nil)
}
