package network

import (
	"strings"
	"testing"
)

func (tc *testCloud) publicID() string {
	return byName(tc.list(tc.admin, "networks", ""), "public")["id"].(string)
}

func (tc *testCloud) routerPut(token, id, action string, body map[string]any) response {
	return tc.do("PUT", "/network/v2.0/routers/"+id+"/"+action, token, body)
}

func TestRouterInterfaces(t *testing.T) {
	tc := newTestCloud(t)
	public := tc.publicID()
	rt := tc.create(tc.demo, "router", map[string]any{"name": "r", "external_gateway_info": map[string]any{"network_id": public}})
	rid := rt["id"].(string)
	gw := rt["external_gateway_info"].(map[string]any)
	if gw["network_id"] != public || gw["enable_snat"] != true || rt["status"] != "ACTIVE" {
		t.Errorf("router %v", rt)
	}
	n1, s1 := tc.netWithSubnet(tc.demo, "a", "10.50.0.0/24")
	_, s2 := tc.netWithSubnet(tc.demo, "b", "10.50.0.128/25")
	_, s3 := tc.netWithSubnet(tc.demo, "c", "10.51.0.0/24")
	res := tc.must(200, tc.routerPut(tc.demo, rid, "add_router_interface", map[string]any{"subnet_id": s1}))
	info := res.JSON(t)
	if info["id"] != rid || info["subnet_id"] != s1 || info["network_id"] != n1 || info["project_id"] != tc.demoProject ||
		info["tenant_id"] != tc.demoProject || len(info["subnet_ids"].([]any)) != 1 || info["port_id"] == "" {
		t.Errorf("interface info %v", info)
	}
	port := tc.show(tc.demo, "port", info["port_id"].(string))
	if firstIP(port) != "10.50.0.1" || port["device_owner"] != "network:router_interface" || port["device_id"] != rid {
		t.Errorf("interface port %v", port)
	}
	msg := tc.expectFault(400, "BadRequest", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.demo, map[string]any{"subnet_id": s1})
	if msg != "Bad router request: Router already has a port on subnet "+s1+"." {
		t.Errorf("twice: %q", msg)
	}
	msg = tc.expectFault(400, "BadRequest", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.demo, map[string]any{"subnet_id": s2})
	if !strings.Contains(msg, "Cidr 10.50.0.128/25 of subnet "+s2+" overlaps with cidr 10.50.0.0/24 of subnet "+s1) {
		t.Errorf("overlap: %q", msg)
	}
	tc.expectFault(400, "BadRequest", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.demo, map[string]any{})
	tc.expectFault(400, "BadRequest", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.demo, map[string]any{"subnet_id": s3, "port_id": "x"})
	tc.expectFault(404, "SubnetNotFound", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.demo, map[string]any{"subnet_id": "nope"})
	tc.expectFault(404, "RouterNotFound", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.alt, map[string]any{"subnet_id": s3})
	// No gateway IP: no interface by subnet.
	nog := tc.create(tc.demo, "network", map[string]any{})["id"].(string)
	s4 := tc.create(tc.demo, "subnet", map[string]any{"network_id": nog, "cidr": "10.52.0.0/24", "ip_version": 4, "gateway_ip": nil})["id"].(string)
	tc.expectFault(400, "BadRequest", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.demo, map[string]any{"subnet_id": s4})
	// By port.
	n3 := tc.show(tc.demo, "subnet", s3)["network_id"].(string)
	p := tc.create(tc.demo, "port", map[string]any{"network_id": n3})
	res = tc.must(200, tc.routerPut(tc.demo, rid, "add_router_interface", map[string]any{"port_id": p["id"]}))
	if res.JSON(t)["port_id"] != p["id"] || res.JSON(t)["subnet_id"] != s3 {
		t.Errorf("by port %s", res.Body)
	}
	if got := tc.show(tc.demo, "port", p["id"].(string)); got["device_owner"] != "network:router_interface" || got["device_id"] != rid {
		t.Errorf("port after attach %v", got)
	}
	tc.expectFault(409, "PortInUse", "PUT", "/network/v2.0/routers/"+rid+"/add_router_interface", tc.demo, map[string]any{"port_id": p["id"]})
	tc.expectFault(409, "RouterInUse", "DELETE", "/network/v2.0/routers/"+rid, tc.demo, nil)
	// A subnet the router is on cannot go.
	tc.expectFault(409, "SubnetInUse", "DELETE", "/network/v2.0/subnets/"+s1, tc.demo, nil)

	// Extra routes need a next hop on a connected subnet.
	res = tc.must(200, tc.do("PUT", "/network/v2.0/routers/"+rid, tc.demo, map[string]any{"router": map[string]any{
		"routes": []any{map[string]any{"destination": "172.16.0.0/16", "nexthop": "10.50.0.9"}}}}))
	if routes := res.JSON(t)["router"].(map[string]any)["routes"].([]any); len(routes) != 1 {
		t.Errorf("routes %v", routes)
	}
	tc.expectFault(400, "InvalidRoutes", "PUT", "/network/v2.0/routers/"+rid, tc.demo, map[string]any{"router": map[string]any{
		"routes": []any{map[string]any{"destination": "172.16.0.0/16", "nexthop": "10.77.0.9"}}}})
	tc.expectFault(400, "InvalidRoutes", "PUT", "/network/v2.0/routers/"+rid, tc.demo, map[string]any{"router": map[string]any{
		"routes": []any{map[string]any{"destination": "172.16.0.0/16", "nexthop": "10.50.0.1"}}}})
	res = tc.must(200, tc.routerPut(tc.demo, rid, "add_extraroutes", map[string]any{"router": map[string]any{
		"routes": []any{map[string]any{"destination": "172.17.0.0/16", "nexthop": "10.51.0.9"}}}}))
	if routes := res.JSON(t)["router"].(map[string]any)["routes"].([]any); len(routes) != 2 {
		t.Errorf("after add_extraroutes %v", routes)
	}
	tc.expectFault(409, "RouterInterfaceInUseByRoute", "PUT", "/network/v2.0/routers/"+rid+"/remove_router_interface", tc.demo, map[string]any{"subnet_id": s1})
	tc.must(200, tc.routerPut(tc.demo, rid, "remove_extraroutes", map[string]any{"router": map[string]any{
		"routes": []any{map[string]any{"destination": "172.16.0.0/16", "nexthop": "10.50.0.9"}}}}))

	// Removal: by subnet, by port, and the upstream errors.
	res = tc.must(200, tc.routerPut(tc.demo, rid, "remove_router_interface", map[string]any{"subnet_id": s1}))
	if res.JSON(t)["port_id"] != info["port_id"] {
		t.Errorf("removed %s", res.Body)
	}
	tc.expectFault(404, "PortNotFound", "GET", "/network/v2.0/ports/"+info["port_id"].(string), tc.demo, nil)
	tc.expectFault(404, "RouterInterfaceNotFoundForSubnet", "PUT", "/network/v2.0/routers/"+rid+"/remove_router_interface", tc.demo, map[string]any{"subnet_id": s1})
	tc.expectFault(404, "RouterInterfaceNotFound", "PUT", "/network/v2.0/routers/"+rid+"/remove_router_interface", tc.demo, map[string]any{"port_id": "nope"})
	tc.expectFault(400, "SubnetMismatchForPort", "PUT", "/network/v2.0/routers/"+rid+"/remove_router_interface", tc.demo,
		map[string]any{"port_id": p["id"], "subnet_id": s1})
	tc.expectFault(409, "RouterInterfaceInUseByRoute", "PUT", "/network/v2.0/routers/"+rid+"/remove_router_interface", tc.demo, map[string]any{"port_id": p["id"]})
	tc.must(200, tc.do("PUT", "/network/v2.0/routers/"+rid, tc.demo, map[string]any{"router": map[string]any{"routes": []any{}}}))
	tc.must(200, tc.routerPut(tc.demo, rid, "remove_router_interface", map[string]any{"port_id": p["id"]}))
	// The gateway goes with the router.
	gwPorts := tc.list(tc.admin, "ports", "?device_id="+rid)
	if len(gwPorts) != 1 || gwPorts[0]["device_owner"] != "network:router_gateway" || gwPorts[0]["project_id"] != "" {
		t.Errorf("gateway ports %v", gwPorts)
	}
	tc.must(204, tc.do("DELETE", "/network/v2.0/routers/"+rid, tc.demo, nil))
	if left := tc.list(tc.admin, "ports", "?device_id="+rid); len(left) != 0 {
		t.Errorf("ports left after router delete: %v", left)
	}
}

func TestRouterGateway(t *testing.T) {
	tc := newTestCloud(t)
	public := tc.publicID()
	n, _ := tc.netWithSubnet(tc.demo, "int", "10.60.0.0/24")
	tc.expectFault(400, "BadRequest", "POST", "/network/v2.0/routers", tc.demo, map[string]any{"router": map[string]any{
		"external_gateway_info": map[string]any{"network_id": n}}})
	tc.expectFault(403, "PolicyNotAuthorized", "POST", "/network/v2.0/routers", tc.demo, map[string]any{"router": map[string]any{
		"external_gateway_info": map[string]any{"network_id": public, "enable_snat": false}}})
	tc.expectFault(404, "NetworkNotFound", "POST", "/network/v2.0/routers", tc.demo, map[string]any{"router": map[string]any{
		"external_gateway_info": map[string]any{"network_id": "nope"}}})
	if rs := tc.list(tc.demo, "routers", ""); len(rs) != 1 {
		t.Errorf("failed creates left routers: %v", rs)
	}
	rt := tc.create(tc.admin, "router", map[string]any{"project_id": tc.demoProject, "external_gateway_info": map[string]any{
		"network_id": public, "enable_snat": false, "external_fixed_ips": []any{map[string]any{"ip_address": "203.0.113.99"}}}})
	gw := rt["external_gateway_info"].(map[string]any)
	ext := gw["external_fixed_ips"].([]any)[0].(map[string]any)
	if gw["enable_snat"] != false || ext["ip_address"] != "203.0.113.99" || rt["project_id"] != tc.demoProject {
		t.Errorf("router %v", rt)
	}
	rid := rt["id"].(string)
	tc.expectFault(409, "IpAddressAlreadyAllocated", "PUT", "/network/v2.0/routers/"+rid, tc.admin, map[string]any{"router": map[string]any{
		"external_gateway_info": map[string]any{"network_id": public, "external_fixed_ips": []any{map[string]any{"ip_address": "203.0.113.10"}}}}})
	tc.expectFault(400, "BadRequest", "PUT", "/network/v2.0/routers/"+rid, tc.admin, map[string]any{"router": map[string]any{
		"external_gateway_info": map[string]any{"network_id": public, "external_fixed_ips": []any{map[string]any{"ip_address": "203.0.113.1"}}}}})
	// Clearing the gateway frees its address.
	res := tc.must(200, tc.do("PUT", "/network/v2.0/routers/"+rid, tc.demo, map[string]any{"router": map[string]any{"external_gateway_info": map[string]any{}}}))
	if res.JSON(t)["router"].(map[string]any)["external_gateway_info"] != nil {
		t.Errorf("gateway not cleared: %s", res.Body)
	}
	tc.create(tc.admin, "port", map[string]any{"network_id": public, "fixed_ips": []any{map[string]any{"ip_address": "203.0.113.99"}}})
}

func TestFloatingIPs(t *testing.T) {
	tc := newTestCloud(t)
	public := tc.publicID()
	private := byName(tc.list(tc.demo, "networks", ""), "private")["id"].(string)
	vm := tc.create(tc.demo, "port", map[string]any{"network_id": private, "device_owner": "compute:nova"})
	f := tc.create(tc.demo, "floatingip", map[string]any{"floating_network_id": public, "port_id": vm["id"], "description": "web"})
	if f["port_id"] != vm["id"] || f["fixed_ip_address"] != firstIP(vm) || f["router_id"] == nil || f["description"] != "web" ||
		!strings.HasPrefix(f["floating_ip_address"].(string), "203.0.113.") || f["status"] != "DOWN" {
		t.Errorf("floating ip %v", f)
	}
	if d, ok := f["port_details"].(map[string]any); !ok || d["mac_address"] != vm["mac_address"] || d["device_owner"] != "compute:nova" {
		t.Errorf("port_details %v", f["port_details"])
	}
	fid := f["id"].(string)
	fipPort := tc.list(tc.admin, "ports", "?device_id="+fid)
	if len(fipPort) != 1 || fipPort[0]["device_owner"] != "network:floatingip" || firstIP(fipPort[0]) != f["floating_ip_address"] {
		t.Errorf("floating ip port %v", fipPort)
	}
	tc.expectFault(409, "FloatingIPPortAlreadyAssociated", "POST", "/network/v2.0/floatingips", tc.demo, map[string]any{"floatingip": map[string]any{
		"floating_network_id": public, "port_id": vm["id"]}})
	tc.expectFault(409, "RouterInterfaceInUseByFloatingIP", "PUT", "/network/v2.0/routers/"+f["router_id"].(string)+"/remove_router_interface",
		tc.demo, map[string]any{"subnet_id": vm["fixed_ips"].([]any)[0].(map[string]any)["subnet_id"]})
	tc.expectFault(409, "RouterExternalGatewayInUseByFloatingIp", "PUT", "/network/v2.0/routers/"+f["router_id"].(string), tc.demo,
		map[string]any{"router": map[string]any{"external_gateway_info": nil}})

	// Not reachable: a network without a router to public.
	iso, _ := tc.netWithSubnet(tc.demo, "isolated", "10.70.0.0/24")
	ip := tc.create(tc.demo, "port", map[string]any{"network_id": iso})
	msg := tc.expectFault(404, "ExternalGatewayForFloatingIPNotFound", "PUT", "/network/v2.0/floatingips/"+fid, tc.demo,
		map[string]any{"floatingip": map[string]any{"port_id": ip["id"]}})
	if !strings.HasPrefix(msg, "External network "+public+" is not reachable from subnet ") {
		t.Errorf("message %q", msg)
	}
	// Disassociate and associate again.
	res := tc.must(200, tc.do("PUT", "/network/v2.0/floatingips/"+fid, tc.demo, map[string]any{"floatingip": map[string]any{"port_id": nil}}))
	if m := res.JSON(t)["floatingip"].(map[string]any); m["port_id"] != nil || m["fixed_ip_address"] != nil || m["router_id"] != nil || m["port_details"] != nil {
		t.Errorf("disassociated %v", m)
	}
	tc.must(200, tc.do("PUT", "/network/v2.0/floatingips/"+fid, tc.demo, map[string]any{"floatingip": map[string]any{"port_id": vm["id"]}}))
	// Deleting the port disassociates.
	tc.must(204, tc.do("DELETE", "/network/v2.0/ports/"+vm["id"].(string), tc.demo, nil))
	if m := tc.show(tc.demo, "floatingip", fid); m["port_id"] != nil {
		t.Errorf("after port delete %v", m)
	}
	// Errors.
	tc.expectFault(400, "BadRequest", "POST", "/network/v2.0/floatingips", tc.demo, map[string]any{"floatingip": map[string]any{"floating_network_id": private}})
	tc.expectFault(404, "NetworkNotFound", "POST", "/network/v2.0/floatingips", tc.demo, map[string]any{"floatingip": map[string]any{"floating_network_id": "nope"}})
	tc.expectFault(403, "PolicyNotAuthorized", "POST", "/network/v2.0/floatingips", tc.demo, map[string]any{"floatingip": map[string]any{
		"floating_network_id": public, "floating_ip_address": "203.0.113.200"}})
	tc.expectFault(400, "BadRequest", "POST", "/network/v2.0/floatingips", tc.demo, map[string]any{"floatingip": map[string]any{
		"floating_network_id": public, "fixed_ip_address": "10.0.0.1"}})
	altPort := tc.create(tc.alt, "port", map[string]any{"network_id": tc.create(tc.alt, "network", map[string]any{})["id"]})
	tc.expectFault(404, "PortNotFound", "PUT", "/network/v2.0/floatingips/"+fid, tc.demo, map[string]any{"floatingip": map[string]any{"port_id": altPort["id"]}})
	g := tc.create(tc.admin, "floatingip", map[string]any{"floating_network_id": public, "floating_ip_address": "203.0.113.200"})
	if g["floating_ip_address"] != "203.0.113.200" {
		t.Errorf("chosen address %v", g)
	}
	tc.expectFault(409, "IpAddressAlreadyAllocated", "POST", "/network/v2.0/floatingips", tc.admin, map[string]any{"floatingip": map[string]any{
		"floating_network_id": public, "floating_ip_address": "203.0.113.200"}})
	tc.expectFault(404, "FloatingIPNotFound", "GET", "/network/v2.0/floatingips/"+g["id"].(string), tc.demo, nil)
	tc.must(204, tc.do("DELETE", "/network/v2.0/floatingips/"+fid, tc.demo, nil))
	if left := tc.list(tc.admin, "ports", "?device_id="+fid); len(left) != 0 {
		t.Errorf("floating ip port left: %v", left)
	}
	// Exhaustion of the external network.
	tc.must(200, tc.do("PUT", "/network/v2.0/quotas/"+tc.demoProject, tc.admin, map[string]any{"quota": map[string]any{"floatingip": -1}}))
	for range 300 {
		res := tc.do("POST", "/network/v2.0/floatingips", tc.demo, map[string]any{"floatingip": map[string]any{"floating_network_id": public}})
		if res.StatusCode == 201 {
			continue
		}
		if typ, _ := fault(t, res); res.StatusCode != 400 || typ != "ExternalIpAddressExhausted" {
			t.Fatalf("exhausted: %d %s", res.StatusCode, res.Body)
		}
		return
	}
	t.Fatal("the public pool never ran out")
}
