package network

import (
	"slices"
	"testing"
)

func TestCrossProjectPolicy(t *testing.T) {
	tc := newTestCloud(t)
	nid, sid := tc.netWithSubnet(tc.demo, "mine", "10.90.0.0/24")
	port := tc.create(tc.demo, "port", map[string]any{"network_id": nid})["id"].(string)
	sg := tc.create(tc.demo, "security_group", map[string]any{"name": "mine"})["id"].(string)
	rt := tc.create(tc.demo, "router", map[string]any{"name": "mine"})["id"].(string)
	fip := tc.create(tc.demo, "floatingip", map[string]any{"floating_network_id": tc.publicID()})["id"].(string)
	rule := tc.list(tc.demo, "security-group-rules", "?security_group_id="+sg)[0]["id"].(string)

	// Another project sees none of it: 404 for every verb, never 403.
	for _, r := range []struct{ coll, id, typ string }{
		{"networks", nid, "NetworkNotFound"}, {"subnets", sid, "SubnetNotFound"}, {"ports", port, "PortNotFound"},
		{"security-groups", sg, "SecurityGroupNotFound"}, {"routers", rt, "RouterNotFound"},
		{"floatingips", fip, "FloatingIPNotFound"}, {"security-group-rules", rule, "SecurityGroupRuleNotFound"},
	} {
		path := "/network/v2.0/" + r.coll + "/" + r.id
		tc.expectFault(404, r.typ, "GET", path, tc.alt, nil)
		tc.expectFault(404, r.typ, "DELETE", path, tc.alt, nil)
		if r.coll != "security-group-rules" {
			tc.expectFault(404, "", "PUT", path, tc.alt, map[string]any{singular(r.coll): map[string]any{"description": "x"}})
			tc.expectFault(404, "", "PUT", path+"/tags/t", tc.alt, nil)
		}
		for _, it := range tc.list(tc.alt, r.coll, "") {
			if it["id"] == r.id {
				t.Errorf("alt lists %s %s", r.coll, r.id)
			}
		}
	}
	// Shared networks are visible and usable, not changeable.
	shared := tc.create(tc.admin, "network", map[string]any{"name": "shared", "shared": true})["id"].(string)
	tc.create(tc.admin, "subnet", map[string]any{"network_id": shared, "cidr": "10.91.0.0/24", "ip_version": 4})
	if !slices.Contains(ids(tc.list(tc.alt, "networks", "")), shared) || len(tc.list(tc.alt, "subnets", "?network_id="+shared)) != 1 {
		t.Error("alt does not see the shared network and its subnet")
	}
	ap := tc.create(tc.alt, "port", map[string]any{"network_id": shared})
	tc.expectFault(403, "PolicyNotAuthorized", "PUT", "/network/v2.0/networks/"+shared, tc.alt, map[string]any{"network": map[string]any{"name": "x"}})
	tc.expectFault(403, "PolicyNotAuthorized", "DELETE", "/network/v2.0/networks/"+shared, tc.alt, nil)
	tc.expectFault(403, "PolicyNotAuthorized", "POST", "/network/v2.0/ports", tc.alt, map[string]any{"port": map[string]any{
		"network_id": shared, "fixed_ips": []any{map[string]any{"ip_address": "10.91.0.77"}}}})
	// The network's owner sees ports others put on it; others do not.
	if !slices.Contains(ids(tc.list(tc.admin, "ports", "?network_id="+shared)), ap["id"].(string)) {
		t.Error("network owner does not see the port on its network")
	}
	if slices.Contains(ids(tc.list(tc.demo, "ports", "")), ap["id"].(string)) {
		t.Error("demo sees alt's port")
	}
	// Unsharing a network others use is refused.
	tc.expectFault(409, "InvalidSharedSetting", "PUT", "/network/v2.0/networks/"+shared, tc.admin, map[string]any{"network": map[string]any{"shared": false}})
	// External networks are visible to all, with their subnets.
	if len(tc.list(tc.alt, "subnets", "?name=public-subnet")) != 1 {
		t.Error("alt does not see public-subnet")
	}
	// The admin sees everything.
	for _, coll := range []string{"networks", "ports", "routers", "floatingips", "security-groups"} {
		if len(tc.list(tc.admin, coll, "?project_id="+tc.demoProject)) == 0 {
			t.Errorf("admin sees no %s of demo", coll)
		}
	}
	// A reader may look, not write.
	if len(tc.list(tc.reader, "networks", "")) == 0 {
		t.Error("reader sees no networks")
	}
	tc.expectFault(403, "PolicyNotAuthorized", "POST", "/network/v2.0/networks", tc.reader, map[string]any{"network": map[string]any{}})
	tc.expectFault(403, "PolicyNotAuthorized", "DELETE", "/network/v2.0/ports/"+port, tc.reader, nil)
}

func singular(coll string) string {
	switch coll {
	case "security-groups":
		return "security_group"
	case "security-group-rules":
		return "security_group_rule"
	}
	return coll[:len(coll)-1]
}

func TestQuotas(t *testing.T) {
	tc := newTestCloud(t)
	q := tc.must(200, tc.do("GET", "/network/v2.0/quotas/"+tc.demoProject, tc.demo, nil)).JSON(t)["quota"].(map[string]any)
	if q["network"] != float64(100) || q["port"] != float64(500) || q["security_group_rule"] != float64(100) || q["floatingip"] != float64(50) {
		t.Errorf("defaults %v", q)
	}
	tc.expectFault(403, "PolicyNotAuthorized", "GET", "/network/v2.0/quotas/"+tc.altPr, tc.demo, nil)
	tc.expectFault(403, "PolicyNotAuthorized", "PUT", "/network/v2.0/quotas/"+tc.demoProject, tc.demo, map[string]any{"quota": map[string]any{"network": 5}})
	tc.expectFault(400, "", "PUT", "/network/v2.0/quotas/"+tc.demoProject, tc.admin, map[string]any{"quota": map[string]any{"widgets": 5}})
	tc.expectFault(400, "", "PUT", "/network/v2.0/quotas/"+tc.demoProject, tc.admin, map[string]any{"quota": map[string]any{"network": 0}})
	res := tc.must(200, tc.do("PUT", "/network/v2.0/quotas/"+tc.altPr, tc.admin, map[string]any{"quota": map[string]any{"network": 2, "port": "3"}}))
	if q := res.JSON(t)["quota"].(map[string]any); q["network"] != float64(2) || q["port"] != float64(3) {
		t.Errorf("set %v", q)
	}
	tc.create(tc.alt, "network", map[string]any{})
	nid := tc.create(tc.alt, "network", map[string]any{})["id"].(string)
	msg := tc.expectFault(409, "OverQuota", "POST", "/network/v2.0/networks", tc.alt, map[string]any{"network": map[string]any{}})
	if msg != "Quota exceeded for resources: ['network']." {
		t.Errorf("message %q", msg)
	}
	for range 3 {
		tc.create(tc.alt, "port", map[string]any{"network_id": nid})
	}
	tc.expectFault(409, "OverQuota", "POST", "/network/v2.0/ports", tc.alt, map[string]any{"port": map[string]any{"network_id": nid}})
	d := tc.must(200, tc.do("GET", "/network/v2.0/quotas/"+tc.altPr+"/details", tc.alt, nil)).JSON(t)["quota"].(map[string]any)
	if n := d["network"].(map[string]any); n["used"] != float64(2) || n["limit"] != float64(2) || n["reserved"] != float64(0) {
		t.Errorf("details %v", d)
	}
	all := tc.must(200, tc.do("GET", "/network/v2.0/quotas", tc.admin, nil)).JSON(t)["quotas"].([]any)
	if len(all) != 1 || all[0].(map[string]any)["project_id"] != tc.altPr {
		t.Errorf("quotas list %v", all)
	}
	if p := tc.must(200, tc.do("GET", "/network/v2.0/quotas/project", tc.alt, nil)).JSON(t)["project"].(map[string]any); p["project_id"] != tc.altPr {
		t.Errorf("quotas/project %v", p)
	}
	if d := tc.must(200, tc.do("GET", "/network/v2.0/quotas/"+tc.altPr+"/default", tc.alt, nil)).JSON(t)["quota"].(map[string]any); d["network"] != float64(100) {
		t.Errorf("default %v", d)
	}
	tc.must(204, tc.do("DELETE", "/network/v2.0/quotas/"+tc.altPr, tc.admin, nil))
	tc.create(tc.alt, "network", map[string]any{})
}

func TestTags(t *testing.T) {
	tc := newTestCloud(t)
	nid := tc.create(tc.demo, "network", map[string]any{"name": "tagged"})["id"].(string)
	base := "/network/v2.0/networks/" + nid + "/tags"
	tc.must(201, tc.do("PUT", base+"/red", tc.demo, nil))
	tc.must(201, tc.do("PUT", base+"/red", tc.demo, nil))
	tc.must(204, tc.do("GET", base+"/red", tc.demo, nil))
	tc.expectFault(404, "TagNotFound", "GET", base+"/blue", tc.demo, nil)
	res := tc.must(200, tc.do("PUT", base, tc.demo, map[string]any{"tags": []string{"b", "a"}}))
	if tags := res.JSON(t)["tags"].([]any); len(tags) != 2 || tags[0] != "a" {
		t.Errorf("replaced %v", tags)
	}
	if n := tc.show(tc.demo, "network", nid); len(n["tags"].([]any)) != 2 || n["revision_number"].(float64) != 2 {
		t.Errorf("network %v", n)
	}
	tc.expectFault(400, "", "PUT", base, tc.demo, map[string]any{"tags": []string{"a", "a"}})
	tc.expectFault(400, "", "PUT", base, tc.demo, map[string]any{"tag": []string{"a"}})
	tc.must(204, tc.do("DELETE", base+"/a", tc.demo, nil))
	tc.expectFault(404, "TagNotFound", "DELETE", base+"/a", tc.demo, nil)
	tc.must(204, tc.do("DELETE", base, tc.demo, nil))
	if tags := tc.must(200, tc.do("GET", base, tc.demo, nil)).JSON(t)["tags"].([]any); len(tags) != 0 {
		t.Errorf("after clearing %v", tags)
	}
	many := make([]string, 51)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	tc.expectFault(400, "", "PUT", base, tc.demo, map[string]any{"tags": many})
	// Every tagged resource kind.
	port := tc.create(tc.demo, "port", map[string]any{"network_id": nid})["id"].(string)
	sg := tc.create(tc.demo, "security_group", map[string]any{"name": "t"})["id"].(string)
	rt := tc.create(tc.demo, "router", map[string]any{})["id"].(string)
	for _, p := range []string{"/ports/" + port, "/security-groups/" + sg, "/routers/" + rt} {
		tc.must(201, tc.do("PUT", "/network/v2.0"+p+"/tags/x", tc.demo, nil))
	}
	if got := ids(tc.list(tc.demo, "ports", "?tags=x")); !slices.Equal(got, []string{port}) {
		t.Errorf("ports tagged x: %v", got)
	}
	// Another project's shared network: visible, not taggable.
	shared := tc.create(tc.admin, "network", map[string]any{"shared": true})["id"].(string)
	tc.expectFault(403, "PolicyNotAuthorized", "PUT", "/network/v2.0/networks/"+shared+"/tags/x", tc.demo, nil)
}
