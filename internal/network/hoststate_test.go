package network

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/datapath"
)

// bind binds a port to a host with a namespace, as compute will.
func (tc *testCloud) bind(portID, host, netns string) {
	tc.t.Helper()
	profile := map[string]any{}
	if netns != "" {
		profile["netns"] = netns
	}
	tc.must(200, tc.do("PUT", "/network/v2.0/ports/"+portID, tc.admin, map[string]any{"port": map[string]any{
		"binding:host_id": host, "binding:profile": profile}}))
}

func findPort(st datapath.HostState, id string) *datapath.Port {
	for i := range st.Ports {
		if st.Ports[i].ID == id {
			return &st.Ports[i]
		}
	}
	return nil
}

func hasRule(p *datapath.Port, match func(datapath.Rule) bool) bool {
	return p != nil && slices.ContainsFunc(p.Rules, match)
}

func TestHostState(t *testing.T) {
	tc := newTestCloud(t)
	ctx := t.Context()
	nets := tc.list(tc.demo, "networks", "")
	private, public := byName(nets, "private")["id"].(string), byName(nets, "public")["id"].(string)
	web := tc.create(tc.demo, "security_group", map[string]any{"name": "web"})["id"].(string)
	for _, r := range []map[string]any{
		{"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 80, "remote_ip_prefix": "0.0.0.0/0"},
		{"direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53, "remote_group_id": web},
		{"direction": "ingress", "protocol": "icmp", "port_range_min": 8, "remote_ip_prefix": "10.0.0.0/8"},
	} {
		r["security_group_id"] = web
		tc.create(tc.demo, "security_group_rule", r)
	}
	p1 := tc.create(tc.demo, "port", map[string]any{"network_id": private, "security_groups": []string{web},
		"allowed_address_pairs": []any{map[string]any{"ip_address": "198.51.100.200"}}})
	p2 := tc.create(tc.demo, "port", map[string]any{"network_id": private, "security_groups": []string{web}})
	p3 := tc.create(tc.demo, "port", map[string]any{"network_id": private})
	unplugged := tc.create(tc.demo, "port", map[string]any{"network_id": private})
	tc.bind(p1["id"].(string), "node2", "/var/run/netns/vm1")
	tc.bind(p2["id"].(string), "node2", "/var/run/netns/vm2")
	tc.bind(p3["id"].(string), "node3", "/var/run/netns/vm3")
	tc.bind(unplugged["id"].(string), "node2", "")
	fip := tc.create(tc.demo, "floatingip", map[string]any{"floating_network_id": public, "port_id": p1["id"]})

	st, err := tc.net.HostState(ctx, "node2")
	if err != nil {
		t.Fatal(err)
	}
	if in := datapath.Check(st); !in.Empty() {
		t.Errorf("node2 state does not pass the datapath's check: %v", in.Err())
	}
	if len(st.Ports) != 2 || len(st.Routers) != 0 || len(st.Networks) != 1 || st.Networks[0].ID != private ||
		st.Networks[0].MTU != 1450 || st.Networks[0].External {
		t.Fatalf("node2 state %+v", st)
	}
	dp := findPort(st, p1["id"].(string))
	if dp == nil || dp.Netns != "/var/run/netns/vm1" || dp.IfName != "eth0" || dp.MTU != 1450 || dp.MAC.String() != p1["mac_address"] ||
		!dp.PortSecurity || dp.NetworkID != private {
		t.Fatalf("port %+v", dp)
	}
	addr := netip.MustParsePrefix(firstIP(p1) + "/24")
	if !slices.Equal(dp.Addresses, []netip.Prefix{addr}) || !slices.Equal(dp.Gateways, []netip.Addr{netip.MustParseAddr("198.51.100.1")}) {
		t.Errorf("addresses %v gateways %v", dp.Addresses, dp.Gateways)
	}
	if len(dp.AllowedAddressPairs) != 1 || dp.AllowedAddressPairs[0].Prefix != netip.MustParsePrefix("198.51.100.200/32") {
		t.Errorf("pairs %+v", dp.AllowedAddressPairs)
	}
	egress := func(et string) func(datapath.Rule) bool {
		return func(r datapath.Rule) bool {
			return r.Direction == "egress" && r.EtherType == et && r.Protocol == "" && len(r.Remotes) == 0
		}
	}
	if !hasRule(dp, egress("IPv4")) || !hasRule(dp, egress("IPv6")) {
		t.Errorf("egress rules missing: %+v", dp.Rules)
	}
	if !hasRule(dp, func(r datapath.Rule) bool {
		return r.Protocol == "tcp" && r.PortMin == 80 && r.PortMax == 80 && len(r.Remotes) == 0 && r.Direction == "ingress"
	}) {
		t.Errorf("http rule missing: %+v", dp.Rules)
	}
	if !hasRule(dp, func(r datapath.Rule) bool {
		return r.Protocol == "icmp" && r.PortMin == 8 && r.PortMax == -1 && slices.Equal(r.Remotes, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	}) {
		t.Errorf("icmp rule missing: %+v", dp.Rules)
	}
	// The remote group is expanded to its members' addresses, pairs included.
	members := []netip.Prefix{netip.MustParsePrefix(firstIP(p1) + "/32"), netip.MustParsePrefix(firstIP(p2) + "/32"),
		netip.MustParsePrefix("198.51.100.200/32")}
	slices.SortFunc(members, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if !hasRule(dp, func(r datapath.Rule) bool {
		return r.Protocol == "udp" && r.PortMin == 53 && slices.Equal(r.Remotes, members)
	}) {
		t.Errorf("remote group rule not resolved to %v: %+v", members, dp.Rules)
	}
	// node3's port is in the default group: ingress from the group's members
	// (IPv4 only: the IPv6 rule has no members and is left out).
	st3, err := tc.net.HostState(ctx, "node3")
	if err != nil {
		t.Fatal(err)
	}
	if in := datapath.Check(st3); !in.Empty() {
		t.Errorf("node3 state: %v", in.Err())
	}
	d3 := findPort(st3, p3["id"].(string))
	if d3 == nil || hasRule(d3, func(r datapath.Rule) bool { return r.Direction == "ingress" && r.EtherType == "IPv6" }) ||
		!hasRule(d3, func(r datapath.Rule) bool {
			return r.Direction == "ingress" && r.EtherType == "IPv4" && slices.Contains(r.Remotes, netip.MustParsePrefix(firstIP(p3)+"/32"))
		}) {
		t.Errorf("node3 port %+v", d3)
	}

	// The router host: router1 with SNAT, its legs, the floating IP.
	st1, err := tc.net.HostState(ctx, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if in := datapath.Check(st1); !in.Empty() {
		t.Errorf("router host state: %v", in.Err())
	}
	if len(st1.Routers) != 1 || len(st1.Ports) != 0 {
		t.Fatalf("router host state %+v", st1)
	}
	r := st1.Routers[0]
	if r.Gateway == nil || r.Gateway.NetworkID != public || r.Gateway.Gateway != netip.MustParseAddr("203.0.113.1") ||
		!slices.Equal(r.Gateway.Addresses, []netip.Prefix{netip.MustParsePrefix("203.0.113.10/24")}) || !r.SNAT || r.Gateway.MTU != 1500 {
		t.Errorf("gateway %+v snat %v", r.Gateway, r.SNAT)
	}
	if len(r.Interfaces) != 1 || r.Interfaces[0].NetworkID != private ||
		!slices.Equal(r.Interfaces[0].Addresses, []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}) {
		t.Errorf("interfaces %+v", r.Interfaces)
	}
	if len(r.FloatingIPs) != 1 || r.FloatingIPs[0].ID != fip["id"] || r.FloatingIPs[0].FixedIP.String() != firstIP(p1) ||
		r.FloatingIPs[0].FloatingIP.String() != fip["floating_ip_address"] {
		t.Errorf("floating ips %+v", r.FloatingIPs)
	}
	var pub *datapath.Network
	for i := range st1.Networks {
		if st1.Networks[i].ID == public {
			pub = &st1.Networks[i]
		}
	}
	if len(st1.Networks) != 2 || pub == nil || !pub.External || !slices.Equal(pub.HostCIDRs, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}) {
		t.Errorf("router host networks %+v", st1.Networks)
	}

	// The sync loop delivered those states.
	tc.sync.waitFor(t, "node2", 2*time.Second, func(s datapath.HostState) bool { return len(s.Ports) == 2 })
	tc.sync.waitFor(t, testHost, 2*time.Second, func(s datapath.HostState) bool {
		return len(s.Routers) == 1 && len(s.Routers[0].FloatingIPs) == 1
	})
}

func TestRuleChangeSyncsHostWithinASecond(t *testing.T) {
	tc := newTestCloud(t)
	private := byName(tc.list(tc.demo, "networks", ""), "private")["id"].(string)
	g := tc.create(tc.demo, "security_group", map[string]any{"name": "g"})["id"].(string)
	p := tc.create(tc.demo, "port", map[string]any{"network_id": private, "security_groups": []string{g}})["id"].(string)
	tc.bind(p, "node5", "/var/run/netns/x")
	tc.sync.waitFor(t, "node5", 2*time.Second, func(s datapath.HostState) bool { return findPort(s, p) != nil })
	start := time.Now()
	rule := tc.create(tc.demo, "security_group_rule", map[string]any{"security_group_id": g, "direction": "ingress",
		"protocol": "tcp", "port_range_min": 443, "port_range_max": 443})
	tc.sync.waitFor(t, "node5", time.Second, func(s datapath.HostState) bool {
		return hasRule(findPort(s, p), func(r datapath.Rule) bool { return r.PortMin == 443 })
	})
	t.Logf("rule delivered in %v", time.Since(start))
	tc.must(204, tc.do("DELETE", "/network/v2.0/security-group-rules/"+rule["id"].(string), tc.demo, nil))
	tc.sync.waitFor(t, "node5", time.Second, func(s datapath.HostState) bool {
		return !hasRule(findPort(s, p), func(r datapath.Rule) bool { return r.PortMin == 443 })
	})
	// Moving the port away tells the old host it is gone.
	tc.bind(p, "node6", "/var/run/netns/x")
	tc.sync.waitFor(t, "node5", time.Second, func(s datapath.HostState) bool { return len(s.Ports) == 0 && len(s.Networks) == 0 })
	tc.sync.waitFor(t, "node6", time.Second, func(s datapath.HostState) bool { return findPort(s, p) != nil })

	// A failed delivery is retried.
	tc.sync.mu.Lock()
	tc.sync.fail = errors.New("agent away")
	tc.sync.mu.Unlock()
	tc.must(200, tc.do("PUT", "/network/v2.0/ports/"+p, tc.demo, map[string]any{"port": map[string]any{"admin_state_up": false}}))
	time.Sleep(20 * time.Millisecond)
	tc.sync.mu.Lock()
	tc.sync.fail = nil
	tc.sync.mu.Unlock()
	tc.sync.waitFor(t, "node6", 3*time.Second, func(s datapath.HostState) bool { return len(s.Ports) == 0 })
}

func TestReportObserved(t *testing.T) {
	tc := newTestCloud(t)
	ctx := t.Context()
	nets := tc.list(tc.demo, "networks", "")
	private, public := byName(nets, "private")["id"].(string), byName(nets, "public")["id"].(string)
	a := tc.create(tc.demo, "port", map[string]any{"network_id": private})["id"].(string)
	b := tc.create(tc.demo, "port", map[string]any{"network_id": private})["id"].(string)
	tc.bind(a, "node2", "/var/run/netns/a")
	tc.bind(b, "node2", "/var/run/netns/b")
	fip := tc.create(tc.demo, "floatingip", map[string]any{"floating_network_id": public, "port_id": a})["id"].(string)
	if err := tc.net.ReportObserved(ctx, "node2", datapath.Observed{Ports: []string{a}}); err != nil {
		t.Fatal(err)
	}
	if s := tc.show(tc.demo, "port", a)["status"]; s != "ACTIVE" {
		t.Errorf("observed port %v", s)
	}
	if s := tc.show(tc.demo, "port", b)["status"]; s != "DOWN" {
		t.Errorf("unobserved port %v", s)
	}
	router := tc.list(tc.demo, "routers", "")[0]["id"].(string)
	if err := tc.net.ReportObserved(ctx, testHost, datapath.Observed{Routers: []string{router}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range tc.list(tc.admin, "ports", "?device_id="+router) {
		if p["status"] != "ACTIVE" {
			t.Errorf("router port %s %v", p["device_owner"], p["status"])
		}
	}
	if s := tc.show(tc.demo, "floatingip", fip)["status"]; s != "ACTIVE" {
		t.Errorf("floating ip %v", s)
	}
	// The port goes away from the host: DOWN again.
	if err := tc.net.ReportObserved(ctx, "node2", datapath.Observed{}); err != nil {
		t.Fatal(err)
	}
	if s := tc.show(tc.demo, "port", a)["status"]; s != "DOWN" {
		t.Errorf("port gone %v", s)
	}
}

func TestAgents(t *testing.T) {
	tc := newTestCloud(t)
	if err := tc.net.ReportObserved(t.Context(), "node2", datapath.Observed{}); err != nil {
		t.Fatal(err)
	}
	agents := tc.list(tc.admin, "agents", "?sort_key=host")
	if len(agents) != 3 {
		t.Fatalf("agents %v", agents)
	}
	var l3, lb2 map[string]any
	for _, a := range agents {
		switch {
		case a["agent_type"] == "L3 agent":
			l3 = a
		case a["host"] == "node2":
			lb2 = a
		}
	}
	if l3 == nil || l3["host"] != testHost || l3["alive"] != false || l3["availability_zone"] != "nova" {
		t.Errorf("l3 agent %v", l3)
	}
	if lb2 == nil || lb2["alive"] != true || lb2["binary"] != "neutron-linuxbridge-agent" {
		t.Errorf("node2 agent %v", lb2)
	}
	if got := tc.show(tc.admin, "agent", lb2["id"].(string)); got["host"] != "node2" {
		t.Errorf("agent show %v", got)
	}
	if l := tc.list(tc.demo, "agents", ""); len(l) != 0 {
		t.Errorf("a member sees agents %v", l)
	}
	tc.expectFault(404, "AgentNotFound", "GET", "/network/v2.0/agents/"+lb2["id"].(string), tc.demo, nil)
}

// TestHostStateEdges: two router interfaces on one network make one leg,
// interface names in a namespace do not collide, and the states pass the
// datapath's check.
func TestHostStateEdges(t *testing.T) {
	tc := newTestCloud(t)
	ctx := t.Context()
	nid, s1 := tc.netWithSubnet(tc.demo, "two", "10.110.0.0/24")
	s2 := tc.create(tc.demo, "subnet", map[string]any{"network_id": nid, "cidr": "10.111.0.0/24", "ip_version": 4})["id"].(string)
	rt := tc.create(tc.demo, "router", map[string]any{"external_gateway_info": map[string]any{"network_id": tc.publicID()}})["id"].(string)
	tc.must(200, tc.routerPut(tc.demo, rt, "add_router_interface", map[string]any{"subnet_id": s1}))
	tc.must(200, tc.routerPut(tc.demo, rt, "add_router_interface", map[string]any{"subnet_id": s2}))
	a := tc.create(tc.demo, "port", map[string]any{"network_id": nid})["id"].(string)
	b := tc.create(tc.demo, "port", map[string]any{"network_id": nid})["id"].(string)
	c := tc.create(tc.demo, "port", map[string]any{"network_id": nid})["id"].(string)
	tc.bind(a, testHost, "/var/run/netns/same")
	tc.must(200, tc.do("PUT", "/network/v2.0/ports/"+b, tc.admin, map[string]any{"port": map[string]any{
		"binding:host_id": testHost, "binding:profile": map[string]any{"netns": "/var/run/netns/same", "ifname": "eth0"}}}))
	tc.bind(c, testHost, "/var/run/netns/same")
	st, err := tc.net.HostState(ctx, testHost)
	if err != nil {
		t.Fatal(err)
	}
	if in := datapath.Check(st); !in.Empty() {
		t.Fatalf("state does not pass the datapath's check: %v", in.Err())
	}
	names := map[string]string{}
	for _, p := range st.Ports {
		names[p.ID] = p.IfName
	}
	if names[b] != "eth0" || names[a] == "eth0" || names[c] == "eth0" || names[a] == names[c] {
		t.Errorf("interface names %v", names)
	}
	for _, r := range st.Routers {
		if r.ID != rt {
			continue
		}
		if len(r.Interfaces) != 1 || len(r.Interfaces[0].Addresses) != 2 {
			t.Errorf("legs %+v", r.Interfaces)
		}
	}
}
