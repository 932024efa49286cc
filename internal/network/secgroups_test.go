package network

import (
	"strings"
	"testing"
)

func TestDefaultSecurityGroup(t *testing.T) {
	tc := newTestCloud(t)
	// alt has never used networking: its default group appears on first look.
	sgs := tc.list(tc.alt, "security-groups", "")
	if len(sgs) != 1 || sgs[0]["name"] != "default" || sgs[0]["description"] != "Default security group" {
		t.Fatalf("alt groups %v", sgs)
	}
	g := sgs[0]
	rules := g["security_group_rules"].([]any)
	seen := map[string]bool{}
	for _, r := range rules {
		m := r.(map[string]any)
		key := m["direction"].(string) + "/" + m["ethertype"].(string)
		if m["direction"] == "ingress" && m["remote_group_id"] != g["id"] || m["direction"] == "egress" && m["remote_group_id"] != nil ||
			m["protocol"] != nil || m["remote_ip_prefix"] != nil {
			t.Errorf("default rule %v", m)
		}
		seen[key] = true
	}
	if len(rules) != 4 || len(seen) != 4 {
		t.Errorf("default rules %v", rules)
	}
	if again := tc.list(tc.alt, "security-groups", ""); len(again) != 1 {
		t.Errorf("default made twice: %v", again)
	}
	id := g["id"].(string)
	tc.expectFault(409, "SecurityGroupCannotUpdateDefault", "PUT", "/network/v2.0/security-groups/"+id, tc.alt,
		map[string]any{"security_group": map[string]any{"name": "mine"}})
	tc.expectFault(409, "SecurityGroupCannotRemoveDefault", "DELETE", "/network/v2.0/security-groups/"+id, tc.alt, nil)
	tc.expectFault(409, "SecurityGroupDefaultAlreadyExists", "POST", "/network/v2.0/security-groups", tc.alt,
		map[string]any{"security_group": map[string]any{"name": "default"}})
	web := tc.create(tc.alt, "security_group", map[string]any{"name": "web", "description": "w"})
	if r := web["security_group_rules"].([]any); len(r) != 2 {
		t.Errorf("new group rules %v", r)
	}
	tc.expectFault(404, "SecurityGroupNotFound", "GET", "/network/v2.0/security-groups/"+id, tc.demo, nil)
	// In use by a port: no delete.
	n := tc.create(tc.alt, "network", map[string]any{})["id"]
	p := tc.create(tc.alt, "port", map[string]any{"network_id": n, "security_groups": []any{web["id"]}})
	tc.expectFault(409, "SecurityGroupInUse", "DELETE", "/network/v2.0/security-groups/"+web["id"].(string), tc.alt, nil)
	tc.must(204, tc.do("DELETE", "/network/v2.0/ports/"+p["id"].(string), tc.alt, nil))
	tc.must(204, tc.do("DELETE", "/network/v2.0/security-groups/"+web["id"].(string), tc.alt, nil))
}

func TestSecurityGroupRules(t *testing.T) {
	tc := newTestCloud(t)
	g := tc.create(tc.demo, "security_group", map[string]any{"name": "rules"})
	gid := g["id"].(string)
	def := tc.list(tc.demo, "security-groups", "?name=default")[0]["id"].(string)
	altG := tc.list(tc.alt, "security-groups", "")[0]["id"].(string)
	rule := func(extra map[string]any) map[string]any {
		m := map[string]any{"security_group_id": gid, "direction": "ingress"}
		for k, v := range extra {
			m[k] = v
		}
		return map[string]any{"security_group_rule": m}
	}
	ok := []map[string]any{
		{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"},
		{"protocol": "udp", "port_range_min": "53", "port_range_max": "53"},
		{"protocol": "icmp", "port_range_min": 8, "port_range_max": 0},
		{"protocol": "icmp", "remote_group_id": def},
		{"protocol": "58", "ethertype": "ipv6"},
		{"protocol": "gre"},
		{"remote_ip_prefix": "192.0.2.7"},
		{"direction": "egress", "protocol": "tcp", "port_range_min": 1000, "port_range_max": 2000, "description": "range"},
	}
	for _, extra := range ok {
		res := tc.must(201, tc.do("POST", "/network/v2.0/security-group-rules", tc.demo, rule(extra)))
		r := res.JSON(t)["security_group_rule"].(map[string]any)
		if r["security_group_id"] != gid || r["project_id"] != tc.demoProject {
			t.Errorf("rule %v", r)
		}
	}
	r := tc.list(tc.demo, "security-group-rules", "?security_group_id="+gid+"&remote_ip_prefix=192.0.2.7/32")
	if len(r) != 1 || r[0]["normalized_cidr"] != "192.0.2.7/32" || r[0]["ethertype"] != "IPv4" {
		t.Errorf("plain address prefix %v", r)
	}
	if r := tc.list(tc.demo, "security-group-rules", "?security_group_id="+gid+"&protocol=58"); len(r) != 1 || r[0]["ethertype"] != "IPv6" {
		t.Errorf("ipv6 rule %v", r)
	}
	cases := []struct {
		name   string
		extra  map[string]any
		status int
		typ    string
		msg    string
	}{
		{"duplicate", map[string]any{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"}, 409,
			"SecurityGroupRuleExists", "Security group rule already exists. Rule id is "},
		{"duplicate by number", map[string]any{"protocol": "6", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.0.0.0/8"}, 409,
			"SecurityGroupRuleExists", ""},
		{"duplicate egress default", map[string]any{"direction": "egress", "remote_ip_prefix": "0.0.0.0/0"}, 409, "SecurityGroupRuleExists", ""},
		{"reversed range", map[string]any{"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, 400, "SecurityGroupInvalidPortRange", ""},
		{"port zero", map[string]any{"protocol": "tcp", "port_range_min": 0, "port_range_max": 80}, 400, "SecurityGroupInvalidPortValue", ""},
		{"port huge", map[string]any{"protocol": "tcp", "port_range_min": 70000}, 400, "SecurityGroupInvalidPortValue", ""},
		{"ports without protocol", map[string]any{"port_range_min": 80, "port_range_max": 80}, 400, "SecurityGroupProtocolRequiredWithPorts", ""},
		{"ports for gre", map[string]any{"protocol": "gre", "port_range_min": 80, "port_range_max": 80}, 400, "SecurityGroupInvalidProtocolForPort", ""},
		{"icmp type", map[string]any{"protocol": "icmp", "port_range_min": 300}, 400, "SecurityGroupInvalidIcmpValue", ""},
		{"icmp code without type", map[string]any{"protocol": "icmp", "port_range_max": 3}, 400, "SecurityGroupMissingIcmpType", ""},
		{"bad protocol", map[string]any{"protocol": "banana"}, 400, "SecurityGroupRuleInvalidProtocol", "Security group rule protocol banana not supported"},
		{"protocol 256", map[string]any{"protocol": 256}, 400, "SecurityGroupRuleInvalidProtocol", ""},
		{"bad ethertype", map[string]any{"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType", ""},
		{"prefix family", map[string]any{"remote_ip_prefix": "2001:db8::/64"}, 400, "SecurityGroupRuleParameterConflict",
			"Conflicting value ethertype IPv4 for CIDR 2001:db8::/64"},
		{"bad prefix", map[string]any{"remote_ip_prefix": "10.0.0.0/40"}, 400, "InvalidCIDR", ""},
		{"two remotes", map[string]any{"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": def}, 400, "SecurityGroupMultipleRemoteEntites", ""},
		{"icmpv6 on v4", map[string]any{"protocol": "icmpv6"}, 400, "SecurityGroupEthertypeConflictWithProtocol", ""},
		{"bad direction", map[string]any{"direction": "sideways"}, 400, "HTTPBadRequest", "Invalid input for direction"},
		{"unknown remote", map[string]any{"remote_group_id": "nope"}, 404, "SecurityGroupNotFound", ""},
		{"other project's remote", map[string]any{"remote_group_id": altG}, 404, "SecurityGroupNotFound", ""},
		{"other project's group", map[string]any{"security_group_id": altG}, 404, "SecurityGroupNotFound", ""},
	}
	for _, c := range cases {
		res := tc.do("POST", "/network/v2.0/security-group-rules", tc.demo, rule(c.extra))
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		typ, msg := fault(t, res)
		if typ != c.typ || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %s %q, want %s %q", c.name, typ, msg, c.typ, c.msg)
		}
	}
	// Bulk: all or nothing, duplicates in one request refused.
	before := len(tc.list(tc.demo, "security-group-rules", "?security_group_id="+gid))
	res := tc.do("POST", "/network/v2.0/security-group-rules", tc.demo, map[string]any{"security_group_rules": []any{
		rule(map[string]any{"protocol": "tcp", "port_range_min": 5000, "port_range_max": 5000})["security_group_rule"],
		rule(map[string]any{"protocol": "tcp", "port_range_min": 5000, "port_range_max": 5000})["security_group_rule"]}})
	if typ, _ := fault(t, res); res.StatusCode != 409 || typ != "DuplicateSecurityGroupRuleInPost" {
		t.Errorf("bulk duplicate %d %s", res.StatusCode, res.Body)
	}
	res = tc.must(201, tc.do("POST", "/network/v2.0/security-group-rules", tc.demo, map[string]any{"security_group_rules": []any{
		rule(map[string]any{"protocol": "tcp", "port_range_min": 5000, "port_range_max": 5000})["security_group_rule"],
		rule(map[string]any{"protocol": "tcp", "port_range_min": 5001, "port_range_max": 5001})["security_group_rule"]}}))
	if l := res.JSON(t)["security_group_rules"].([]any); len(l) != 2 {
		t.Errorf("bulk %v", l)
	}
	after := tc.list(tc.demo, "security-group-rules", "?security_group_id="+gid)
	if len(after) != before+2 {
		t.Errorf("%d rules, want %d", len(after), before+2)
	}
	rid := after[0]["id"].(string)
	tc.expectFault(404, "SecurityGroupRuleNotFound", "GET", "/network/v2.0/security-group-rules/"+rid, tc.alt, nil)
	tc.must(204, tc.do("DELETE", "/network/v2.0/security-group-rules/"+rid, tc.demo, nil))
	tc.expectFault(404, "SecurityGroupRuleNotFound", "DELETE", "/network/v2.0/security-group-rules/"+rid, tc.demo, nil)
	// Deleting a group takes the rules that name it as remote with it.
	tmp := tc.create(tc.demo, "security_group", map[string]any{"name": "tmp"})
	tc.must(201, tc.do("POST", "/network/v2.0/security-group-rules", tc.demo, rule(map[string]any{"remote_group_id": tmp["id"], "protocol": "tcp"})))
	tc.must(204, tc.do("DELETE", "/network/v2.0/security-groups/"+tmp["id"].(string), tc.demo, nil))
	if l := tc.list(tc.demo, "security-group-rules", "?remote_group_id="+tmp["id"].(string)); len(l) != 0 {
		t.Errorf("rules naming a deleted group: %v", l)
	}
}
