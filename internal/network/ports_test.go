package network

import (
	"regexp"
	"strings"
	"testing"
)

func firstIP(p map[string]any) string {
	ips := p["fixed_ips"].([]any)
	if len(ips) == 0 {
		return ""
	}
	return ips[0].(map[string]any)["ip_address"].(string)
}

func TestPortCreate(t *testing.T) {
	tc := newTestCloud(t)
	nid, sid := tc.netWithSubnet(tc.demo, "pn", "10.30.0.0/24")
	p := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "name": "p1", "device_id": "vm1", "device_owner": "compute:nova"})
	if !regexp.MustCompile(`^fa:16:3e(:[0-9a-f]{2}){3}$`).MatchString(p["mac_address"].(string)) {
		t.Errorf("mac %v", p["mac_address"])
	}
	if firstIP(p) != "10.30.0.2" || p["status"] != "DOWN" || p["port_security_enabled"] != true ||
		p["binding:vnic_type"] != "normal" || p["device_owner"] != "compute:nova" {
		t.Errorf("port %v", p)
	}
	for _, k := range []string{"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details"} {
		if _, ok := p[k]; ok {
			t.Errorf("member sees %s", k)
		}
	}
	sgs := p["security_groups"].([]any)
	def := tc.list(tc.demo, "security-groups", "?name=default")[0]["id"]
	if len(sgs) != 1 || sgs[0] != def {
		t.Errorf("security groups %v, want the default %v", sgs, def)
	}
	// Specific addresses, by subnet and by address alone.
	p2 := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid, "ip_address": "10.30.0.50"}}})
	p3 := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "10.30.0.51"}}})
	p4 := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid}}})
	// Automatic addresses follow the highest one given.
	if firstIP(p2) != "10.30.0.50" || firstIP(p3) != "10.30.0.51" || firstIP(p4) != "10.30.0.52" {
		t.Errorf("addresses %s %s %s", firstIP(p2), firstIP(p3), firstIP(p4))
	}
	// Outside the pool but inside the subnet: allowed for the network's owner.
	if p5 := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "10.30.0.1"}}}); firstIP(p5) != "10.30.0.1" {
		t.Errorf("gateway address %v", p5)
	}
	noIPs := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "fixed_ips": []any{}})
	if len(noIPs["fixed_ips"].([]any)) != 0 {
		t.Errorf("fixed_ips [] gave %v", noIPs["fixed_ips"])
	}
	mac := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "mac_address": "FA:16:3E:00:00:01"})
	if mac["mac_address"] != "fa:16:3e:00:00:01" {
		t.Errorf("mac %v", mac["mac_address"])
	}
	other := tc.create(tc.demo, "network", map[string]any{"name": "other"})["id"].(string)
	otherSub := tc.create(tc.demo, "subnet", map[string]any{"network_id": other, "cidr": "10.31.0.0/24", "ip_version": 4})["id"].(string)
	altNet := tc.create(tc.alt, "network", map[string]any{"name": "alt"})["id"].(string)
	post := func(body map[string]any) map[string]any { return map[string]any{"port": body} }
	cases := []struct {
		name   string
		body   map[string]any
		status int
		typ    string
		msg    string
	}{
		{"taken", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "10.30.0.50"}}}, 409, "IpAddressAlreadyAllocated",
			"IP address 10.30.0.50 already allocated in subnet " + sid},
		{"outside subnet", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid, "ip_address": "10.99.0.5"}}}, 400, "InvalidIpForSubnet",
			"IP address 10.99.0.5 is not a valid IP for the specified subnet."},
		{"broadcast", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": sid, "ip_address": "10.30.0.255"}}}, 400, "InvalidIpForSubnet", ""},
		{"outside network", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "10.99.0.5"}}}, 400, "InvalidIpForNetwork",
			"IP address 10.99.0.5 is not a valid IP for any of the subnets on the specified network."},
		{"subnet of another network", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": otherSub}}}, 400, "InvalidInput",
			"because fixed_ips included invalid subnet " + otherSub},
		{"no such subnet", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"subnet_id": "nope"}}}, 404, "SubnetNotFound", ""},
		{"empty fixed ip", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{}}}, 400, "InvalidInput", "IP allocation requires subnet_id or ip_address"},
		{"bad ip", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "10.30.0.300"}}}, 400, "HTTPBadRequest", "Invalid input for fixed_ips"},
		{"mac in use", map[string]any{"network_id": nid, "mac_address": "fa:16:3e:00:00:01"}, 409, "MacAddressInUse", "The mac address fa:16:3e:00:00:01 is in use."},
		{"bad mac", map[string]any{"network_id": nid, "mac_address": "zz:16:3e:00:00:01"}, 400, "HTTPBadRequest", "is not a valid MAC address"},
		{"no network", map[string]any{"name": "x"}, 400, "HTTPBadRequest", "Required attribute 'network_id' not specified"},
		{"another project's network", map[string]any{"network_id": altNet}, 404, "NetworkNotFound", "Network " + altNet + " could not be found."},
		{"binding by member", map[string]any{"network_id": nid, "binding:host_id": "h"}, 403, "PolicyNotAuthorized", ""},
		{"bad vnic", map[string]any{"network_id": nid, "binding:vnic_type": "fancy"}, 400, "HTTPBadRequest", ""},
		{"unknown group", map[string]any{"network_id": nid, "security_groups": []string{"nope"}}, 404, "SecurityGroupNotFound", ""},
		{"pairs without port security", map[string]any{"network_id": nid, "port_security_enabled": false,
			"security_groups": []string{}, "allowed_address_pairs": []any{map[string]any{"ip_address": "10.0.0.9"}}}, 409, "AddressPairAndPortSecurityRequired", ""},
		{"groups without port security", map[string]any{"network_id": nid, "port_security_enabled": false, "security_groups": []any{def}}, 400,
			"PortSecurityAndIPRequiredForSecurityGroups", ""},
		{"other project", map[string]any{"network_id": nid, "project_id": tc.altPr}, 400, "HTTPBadRequest", "requires admin privileges"},
	}
	for _, c := range cases {
		res := tc.do("POST", "/network/v2.0/ports", tc.demo, post(c.body))
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		typ, msg := fault(t, res)
		if typ != c.typ || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %s %q, want %s %q", c.name, typ, msg, c.typ, c.msg)
		}
	}
	// No partial state: the failed creates made no ports.
	if ps := tc.list(tc.demo, "ports", "?network_id="+nid); len(ps) != 7 {
		t.Errorf("%d ports on the network, want 7", len(ps))
	}
	// A port without port security has no groups.
	open := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "port_security_enabled": false})
	if len(open["security_groups"].([]any)) != 0 {
		t.Errorf("port without port security has groups %v", open["security_groups"])
	}
	pair := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "allowed_address_pairs": []any{
		map[string]any{"ip_address": "10.30.1.0/24"}, map[string]any{"ip_address": "10.30.2.9", "mac_address": "fa:16:3e:aa:bb:cc"}}})
	pairs := pair["allowed_address_pairs"].([]any)
	if len(pairs) != 2 || pairs[0].(map[string]any)["mac_address"] != pair["mac_address"] {
		t.Errorf("pairs %v", pairs)
	}
}

func TestPortUpdateAndBinding(t *testing.T) {
	tc := newTestCloud(t)
	nid, sid := tc.netWithSubnet(tc.demo, "un", "10.40.0.0/24")
	p := tc.create(tc.demo, "port", map[string]any{"network_id": nid})
	id := p["id"].(string)
	put := func(token string, body map[string]any) map[string]any {
		t.Helper()
		res := tc.must(200, tc.do("PUT", "/network/v2.0/ports/"+id, token, map[string]any{"port": body}))
		return res.JSON(t)["port"].(map[string]any)
	}
	up := put(tc.demo, map[string]any{"name": "renamed", "fixed_ips": []any{map[string]any{"subnet_id": sid, "ip_address": "10.40.0.77"},
		map[string]any{"subnet_id": sid}}})
	ips := up["fixed_ips"].([]any)
	if up["name"] != "renamed" || len(ips) != 2 || ips[0].(map[string]any)["ip_address"] != "10.40.0.2" && ips[1].(map[string]any)["ip_address"] != "10.40.0.2" {
		t.Errorf("updated %v", up)
	}
	up = put(tc.demo, map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "10.40.0.77"}}})
	if len(up["fixed_ips"].([]any)) != 1 || firstIP(up) != "10.40.0.77" {
		t.Errorf("after dropping one %v", up["fixed_ips"])
	}
	// The released address is free again.
	if q := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "fixed_ips": []any{map[string]any{"ip_address": "10.40.0.2"}}}); firstIP(q) != "10.40.0.2" {
		t.Errorf("released address not reused: %v", firstIP(q))
	}
	tc.expectFault(409, "PortSecurityPortHasSecurityGroup", "PUT", "/network/v2.0/ports/"+id, tc.demo,
		map[string]any{"port": map[string]any{"port_security_enabled": false}})
	up = put(tc.demo, map[string]any{"port_security_enabled": false, "security_groups": []string{}})
	if up["port_security_enabled"] != false || len(up["security_groups"].([]any)) != 0 {
		t.Errorf("no port security %v", up)
	}
	tc.expectFault(403, "PolicyNotAuthorized", "PUT", "/network/v2.0/ports/"+id, tc.demo,
		map[string]any{"port": map[string]any{"binding:host_id": "node1"}})
	adm := put(tc.admin, map[string]any{"binding:host_id": "node1", "binding:profile": map[string]any{"netns": "/var/run/netns/vm"}})
	if adm["binding:host_id"] != "node1" || adm["binding:vif_type"] != "bridge" || adm["binding:profile"].(map[string]any)["netns"] != "/var/run/netns/vm" {
		t.Errorf("bound %v", adm)
	}
	tc.expectFault(409, "PortBound", "PUT", "/network/v2.0/ports/"+id, tc.admin,
		map[string]any{"port": map[string]any{"mac_address": "fa:16:3e:00:00:09"}})
	if unbound := tc.show(tc.admin, "port", p["id"].(string)); unbound["revision_number"].(float64) < 4 {
		t.Errorf("revision %v", unbound["revision_number"])
	}
	// Service ports cannot be deleted through the port API.
	rt := tc.list(tc.demo, "routers", "")[0]["id"].(string)
	iface := tc.list(tc.demo, "ports", "?device_id="+rt+"&device_owner=network:router_interface")[0]["id"].(string)
	msg := tc.expectFault(409, "ServicePortInUse", "DELETE", "/network/v2.0/ports/"+iface, tc.admin, nil)
	if msg != "Port "+iface+" cannot be deleted directly via the port API: has device owner network:router_interface." {
		t.Errorf("message %q", msg)
	}
	tc.must(204, tc.do("DELETE", "/network/v2.0/ports/"+id, tc.demo, nil))
	tc.expectFault(404, "PortNotFound", "DELETE", "/network/v2.0/ports/"+id, tc.demo, nil)
}

// TestPortListFilters: the filters narrowed in SQL (status, id,
// mac_address, project_id and tenant_id, besides network_id and device_*)
// answer as the generic ones would, alone and together, and a member
// still sees only what it may.
func TestPortListFilters(t *testing.T) {
	tc := newTestCloud(t)
	nid, _ := tc.netWithSubnet(tc.demo, "fn", "10.31.0.0/24")
	a := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "name": "a"})
	b := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "name": "b"})
	anid, _ := tc.netWithSubnet(tc.alt, "afn", "10.32.0.0/24")
	c := tc.create(tc.alt, "port", map[string]any{"network_id": anid, "name": "c"})
	names := func(token, q string) string {
		var out []string
		for _, p := range tc.list(token, "ports", q) {
			out = append(out, p["name"].(string))
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		token, query, want string
	}{
		{tc.demo, "?status=DOWN&network_id=" + nid, "a,b"},
		{tc.demo, "?status=ACTIVE&network_id=" + nid, ""},
		{tc.demo, "?id=" + b["id"].(string), "b"},
		{tc.demo, "?id=" + a["id"].(string) + "&id=" + b["id"].(string), "a,b"},
		{tc.demo, "?mac_address=" + a["mac_address"].(string), "a"},
		{tc.demo, "?id=" + c["id"].(string), ""}, // alt's port: not the member's to see
		{tc.admin, "?id=" + c["id"].(string), "c"},
		{tc.admin, "?project_id=" + tc.altPr + "&name=c", "c"},
		{tc.admin, "?tenant_id=" + tc.altPr + "&status=DOWN&name=c", "c"},
		{tc.admin, "?tenant_id=" + tc.altPr + "&id=" + a["id"].(string), ""},
	} {
		if got := names(tt.token, tt.query); got != tt.want {
			t.Errorf("ports%s: %q, want %q", tt.query, got, tt.want)
		}
	}
}
