package network

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestVersionDiscovery(t *testing.T) {
	tc := newTestCloud(t)
	for _, path := range []string{"/network", "/network/"} {
		res := tc.must(200, tc.do("GET", path, "", nil))
		v := res.JSON(t)["versions"].([]any)[0].(map[string]any)
		link := v["links"].([]any)[0].(map[string]any)["href"].(string)
		if v["id"] != "v2.0" || v["status"] != "CURRENT" || link != tc.srv.URL+"/network/v2.0/" {
			t.Errorf("%s: %v", path, v)
		}
	}
	res := tc.must(200, tc.do("GET", "/network/v2.0", "", nil))
	if rs := res.JSON(t)["resources"].([]any); len(rs) != 3 {
		t.Errorf("v2.0 resources %v", rs)
	}
}

func TestExtensions(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(200, tc.do("GET", "/network/v2.0/extensions", tc.demo, nil))
	var aliases []string
	for _, e := range res.JSON(t)["extensions"].([]any) {
		m := e.(map[string]any)
		for _, k := range []string{"alias", "name", "description", "updated", "links"} {
			if _, ok := m[k]; !ok {
				t.Errorf("extension %v has no %s", m["alias"], k)
			}
		}
		aliases = append(aliases, m["alias"].(string))
	}
	slices.Sort(aliases)
	if !slices.Equal(aliases, Aliases()) {
		t.Errorf("aliases %v", aliases)
	}
	for _, must := range []string{"router", "external-net", "security-group", "quotas", "binding", "allowed-address-pairs",
		"port-security", "standard-attr-tag", "standard-attr-description", "standard-attr-revisions",
		"standard-attr-timestamp", "availability_zone", "network_availability_zone", "router_availability_zone",
		"ext-gw-mode", "extraroute", "project-id", "net-mtu", "provider", "pagination", "sorting", "filter-validation"} {
		if !slices.Contains(aliases, must) {
			t.Errorf("extension %s missing", must)
		}
	}
	for _, never := range []string{"dns-integration", "subnet_allocation", "extra_dhcp_opt", "qos", "l3_agent_scheduler"} {
		if slices.Contains(aliases, never) {
			t.Errorf("extension %s listed but not implemented", never)
		}
	}
	ext := tc.must(200, tc.do("GET", "/network/v2.0/extensions/router", tc.demo, nil)).JSON(t)["extension"].(map[string]any)
	if ext["name"] != "Neutron L3 Router" {
		t.Errorf("router extension %v", ext)
	}
	tc.expectFault(404, "", "GET", "/network/v2.0/extensions/dns-integration", tc.demo, nil)

	azs := tc.list(tc.demo, "availability_zones", "")
	if len(azs) != 2 || azs[0]["name"] != "nova" || azs[0]["state"] != "available" {
		t.Errorf("availability zones %v", azs)
	}
	if azs := tc.list(tc.demo, "availability_zones", "?resource=router"); len(azs) != 1 {
		t.Errorf("router zones %v", azs)
	}
}

func TestFaultsAndAuth(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.do("GET", "/network/v2.0/networks", "", nil)
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "/identity") {
		t.Fatalf("no token: %d %v", res.StatusCode, res.Header)
	}
	fault(t, res)
	tc.expectFault(401, "", "GET", "/network/v2.0/networks", "bogus", nil)
	tc.expectFault(404, "", "GET", "/network/v2.0/nothing", tc.demo, nil)
	tc.expectFault(405, "", "PATCH", "/network/v2.0/networks", tc.demo, nil)
	for _, body := range []string{"", "{", `{"network": 5}`, `[]`, `{"net": {}}`, `{"network": {"name": 5}}`,
		`{"network": {"bogus": 1}}`, `{"network": {"id": "x"}}`, `{"network": {"admin_state_up": "maybe"}}`, "\xff\xfe"} {
		res := tc.do("POST", "/network/v2.0/networks", tc.demo, body)
		if res.StatusCode != 400 {
			t.Errorf("body %q: %d %s", body, res.StatusCode, res.Body)
			continue
		}
		fault(t, res)
	}
	big := `{"network": {"name": "` + strings.Repeat("x", 2<<20) + `"}}`
	if res := tc.do("POST", "/network/v2.0/networks", tc.demo, big); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize body: %d", res.StatusCode)
	}
	msg := tc.expectFault(400, "HTTPBadRequest", "POST", "/network/v2.0/networks", tc.demo, `{"network": {"bogus": 1}}`)
	if msg != "Unrecognized attribute(s) 'bogus'" {
		t.Errorf("message %q", msg)
	}
	msg = tc.expectFault(400, "HTTPBadRequest", "PUT", "/network/v2.0/networks/x", tc.demo, `{"network": {"id": "y"}}`)
	if msg != "Cannot update read-only attribute id" {
		t.Errorf("message %q", msg)
	}
	// Every response carries a request id.
	if id := res.Header.Get("X-Openstack-Request-Id"); !strings.HasPrefix(id, "req-") {
		t.Errorf("request id %q", id)
	}
	if nets := tc.list(tc.demo, "networks", ""); len(nets) == 0 {
		t.Fatal("no networks")
	}
}
