package network

import (
	"strings"
	"testing"
)

func TestSubnetValidation(t *testing.T) {
	tc := newTestCloud(t)
	nid := tc.create(tc.demo, "network", map[string]any{"name": "v"})["id"].(string)
	tc.create(tc.demo, "subnet", map[string]any{"network_id": nid, "cidr": "10.1.0.0/24", "ip_version": 4})
	other := tc.create(tc.alt, "network", map[string]any{"name": "alt"})["id"].(string)
	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"network_id": nid, "cidr": "10.2.0.0/24", "ip_version": 4}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return map[string]any{"subnet": m}
	}
	cases := []struct {
		name   string
		body   map[string]any
		status int
		typ    string
		msg    string
	}{
		{"missing network", base(map[string]any{"network_id": nil}), 400, "HTTPBadRequest", "Required attribute 'network_id'"},
		{"missing ip_version", base(map[string]any{"ip_version": nil}), 400, "HTTPBadRequest", "Required attribute 'ip_version'"},
		{"bad version", base(map[string]any{"ip_version": 5}), 400, "HTTPBadRequest", "Invalid input for ip_version"},
		{"bad cidr", base(map[string]any{"cidr": "10.2.0.0/33"}), 400, "HTTPBadRequest", "Invalid input for cidr. Reason: '10.2.0.0/33' is not a valid IP subnet."},
		{"host bits", base(map[string]any{"cidr": "10.2.0.5/24"}), 400, "HTTPBadRequest", "'10.2.0.0/24' is recommended"},
		{"version mismatch", base(map[string]any{"ip_version": 6}), 400, "InvalidInput", "does not match the ip_version"},
		{"overlap", base(map[string]any{"cidr": "10.1.0.128/25"}), 400, "InvalidInput", "overlaps with another subnet"},
		{"gateway outside", base(map[string]any{"gateway_ip": "10.3.0.1"}), 400, "InvalidInput", "Gateway is not valid on subnet"},
		{"gateway broadcast", base(map[string]any{"gateway_ip": "10.2.0.255"}), 400, "InvalidInput", "Gateway is not valid on subnet"},
		{"gateway not ip", base(map[string]any{"gateway_ip": "banana"}), 400, "HTTPBadRequest", "Invalid input for gateway_ip"},
		{"pool out of bounds", base(map[string]any{"allocation_pools": []any{map[string]any{"start": "10.2.0.10", "end": "10.2.1.10"}}}), 400, "OutOfBoundsAllocationPool", "spans beyond the subnet cidr"},
		{"pool reversed", base(map[string]any{"allocation_pools": []any{map[string]any{"start": "10.2.0.20", "end": "10.2.0.10"}}}), 400, "InvalidAllocationPool", "is not valid"},
		{"pools overlap", base(map[string]any{"allocation_pools": []any{map[string]any{"start": "10.2.0.10", "end": "10.2.0.20"}, map[string]any{"start": "10.2.0.15", "end": "10.2.0.30"}}}), 409, "OverlappingAllocationPools", "Found overlapping allocation pools"},
		{"gateway in pool", base(map[string]any{"gateway_ip": "10.2.0.15", "allocation_pools": []any{map[string]any{"start": "10.2.0.10", "end": "10.2.0.20"}}}), 409, "GatewayConflictWithAllocationPools", "Gateway ip 10.2.0.15 conflicts with allocation pool"},
		{"pool not ip", base(map[string]any{"allocation_pools": []any{map[string]any{"start": "x", "end": "10.2.0.20"}}}), 400, "HTTPBadRequest", "Invalid input for allocation_pools"},
		{"dns bad", base(map[string]any{"dns_nameservers": []string{"nope"}}), 400, "HTTPBadRequest", "Invalid input for dns_nameservers"},
		{"dns too many", base(map[string]any{"dns_nameservers": []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6"}}), 400, "DNSNameServersExhausted", "exceeds the limit 5"},
		{"route bad", base(map[string]any{"host_routes": []any{map[string]any{"destination": "x", "nexthop": "10.2.0.9"}}}), 400, "InvalidInput", "Invalid route"},
		{"v6 mode on v4", base(map[string]any{"ipv6_ra_mode": "slaac"}), 400, "InvalidInput", "ipv6_ra_mode is not valid when ip_version is 4"},
		{"dhcp /31", base(map[string]any{"cidr": "10.2.0.0/31"}), 400, "InvalidInput", "incompatible with DHCP"},
		{"zero prefix", base(map[string]any{"cidr": "0.0.0.0/0", "enable_dhcp": false}), 400, "InvalidInput", "0 is not allowed as CIDR prefix length"},
		{"no network", base(map[string]any{"network_id": "nope"}), 404, "NetworkNotFound", "Network nope could not be found."},
		{"other project's network", base(map[string]any{"network_id": other}), 404, "NetworkNotFound", ""},
		{"subnetpool", base(map[string]any{"subnetpool_id": "p"}), 404, "SubnetPoolNotFound", ""},
		{"no cidr", base(map[string]any{"cidr": nil}), 400, "BadRequest", "a subnetpool must be specified in the absence of a cidr"},
	}
	for _, c := range cases {
		res := tc.do("POST", "/network/v2.0/subnets", tc.demo, c.body)
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		typ, msg := fault(t, res)
		if typ != c.typ || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %s %q, want %s %q", c.name, typ, msg, c.typ, c.msg)
		}
	}
	if subs := tc.list(tc.demo, "subnets", "?network_id="+nid); len(subs) != 1 {
		t.Errorf("failed creates left subnets: %v", subs)
	}
	// The public network is external, not the demo project's: no subnets there.
	public := byName(tc.list(tc.demo, "networks", ""), "public")["id"].(string)
	tc.expectFault(403, "PolicyNotAuthorized", "POST", "/network/v2.0/subnets", tc.demo, base(map[string]any{"network_id": public}))
}

func TestSubnetLifecycle(t *testing.T) {
	tc := newTestCloud(t)
	nid := tc.create(tc.demo, "network", map[string]any{"name": "life"})["id"].(string)
	sn := tc.create(tc.demo, "subnet", map[string]any{"network_id": nid, "cidr": "10.5.0.0/24", "ip_version": 4,
		"gateway_ip": nil, "dns_nameservers": []string{"9.9.9.9"},
		"host_routes": []any{map[string]any{"destination": "10.6.0.0/16", "nexthop": "10.5.0.254"}}})
	if sn["gateway_ip"] != nil {
		t.Errorf("gateway_ip null: %v", sn["gateway_ip"])
	}
	pools := sn["allocation_pools"].([]any)
	if len(pools) != 1 || pools[0].(map[string]any)["start"] != "10.5.0.1" || pools[0].(map[string]any)["end"] != "10.5.0.254" {
		t.Errorf("pools %v", pools)
	}
	id := sn["id"].(string)
	res := tc.must(200, tc.do("PUT", "/network/v2.0/subnets/"+id, tc.demo, map[string]any{"subnet": map[string]any{
		"name": "renamed", "gateway_ip": "10.5.0.1", "allocation_pools": []any{map[string]any{"start": "10.5.0.100", "end": "10.5.0.200"}}}}))
	up := res.JSON(t)["subnet"].(map[string]any)
	if up["name"] != "renamed" || up["gateway_ip"] != "10.5.0.1" || up["revision_number"] != float64(1) {
		t.Errorf("updated %v", up)
	}
	tc.expectFault(409, "GatewayConflictWithAllocationPools", "PUT", "/network/v2.0/subnets/"+id, tc.demo,
		map[string]any{"subnet": map[string]any{"gateway_ip": "10.5.0.150"}})
	tc.expectFault(400, "HTTPBadRequest", "PUT", "/network/v2.0/subnets/"+id, tc.demo,
		map[string]any{"subnet": map[string]any{"cidr": "10.7.0.0/24"}})
	if n := tc.show(tc.demo, "network", nid); len(n["subnets"].([]any)) != 1 || n["subnets"].([]any)[0] != id {
		t.Errorf("network subnets %v", n["subnets"])
	}
	p := tc.create(tc.demo, "port", map[string]any{"network_id": nid})
	if ip := p["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "10.5.0.100" {
		t.Errorf("first address %v", ip)
	}
	tc.expectFault(409, "SubnetInUse", "DELETE", "/network/v2.0/subnets/"+id, tc.demo, nil)
	tc.must(204, tc.do("DELETE", "/network/v2.0/ports/"+p["id"].(string), tc.demo, nil))
	tc.must(204, tc.do("DELETE", "/network/v2.0/subnets/"+id, tc.demo, nil))
	tc.expectFault(404, "SubnetNotFound", "GET", "/network/v2.0/subnets/"+id, tc.demo, nil)

	// IPv6: SLAAC addresses from the MAC, stateful ones from the pool.
	v6 := tc.create(tc.demo, "subnet", map[string]any{"network_id": nid, "cidr": "2001:db8:1::/64", "ip_version": 6,
		"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"})
	if v6["gateway_ip"] != "2001:db8:1::1" || v6["ipv6_address_mode"] != "slaac" {
		t.Errorf("v6 %v", v6)
	}
	tc.expectFault(400, "InvalidInput", "POST", "/network/v2.0/subnets", tc.demo, map[string]any{"subnet": map[string]any{
		"network_id": nid, "cidr": "2001:db8:2::/80", "ip_version": 6, "ipv6_address_mode": "slaac"}})
	tc.expectFault(400, "InvalidInput", "POST", "/network/v2.0/subnets", tc.demo, map[string]any{"subnet": map[string]any{
		"network_id": nid, "cidr": "2001:db8:2::/64", "ip_version": 6, "ipv6_address_mode": "slaac", "ipv6_ra_mode": "dhcpv6-stateful"}})
	st := tc.create(tc.demo, "subnet", map[string]any{"network_id": nid, "cidr": "2001:db8:3::/64", "ip_version": 6})
	v4 := tc.create(tc.demo, "subnet", map[string]any{"network_id": nid, "cidr": "10.8.0.0/24", "ip_version": 4})
	p = tc.create(tc.demo, "port", map[string]any{"network_id": nid})
	got := map[string]string{}
	for _, f := range p["fixed_ips"].([]any) {
		m := f.(map[string]any)
		got[m["subnet_id"].(string)] = m["ip_address"].(string)
	}
	if len(got) != 3 || got[v4["id"].(string)] != "10.8.0.2" || got[st["id"].(string)] != "2001:db8:3::2" ||
		!strings.HasPrefix(got[v6["id"].(string)], "2001:db8:1:0:f816:3eff:fe") {
		t.Errorf("dual-stack addresses %v", got)
	}
}
