package network

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func names(items []map[string]any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = it["name"].(string)
	}
	return out
}

func TestListFiltersFieldsSortPaging(t *testing.T) {
	tc := newTestCloud(t)
	for i, spec := range []struct {
		name string
		up   bool
		tags []string
	}{{"q-c", true, []string{"red"}}, {"q-a", false, []string{"red", "blue"}}, {"q-b", true, []string{"blue"}}, {"q-d", true, nil}} {
		body := map[string]any{"name": spec.name, "admin_state_up": spec.up, "description": fmt.Sprint(i)}
		if spec.tags != nil {
			body["tags"] = spec.tags
		}
		tc.create(tc.demo, "network", body)
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"?name=q-a", []string{"q-a"}},
		{"?name=q-a&name=q-b&sort_key=name&sort_dir=asc", []string{"q-a", "q-b"}},
		{"?admin_state_up=false", []string{"q-a"}},
		{"?admin_state_up=False&name=q-a", []string{"q-a"}},
		{"?tags=red&sort_key=name", []string{"q-a", "q-c"}},
		{"?tags=red,blue", []string{"q-a"}},
		{"?tags-any=red,blue&sort_key=name&sort_dir=desc", []string{"q-c", "q-b", "q-a"}},
		{"?not-tags=red&router:external=false&shared=false&sort_key=name", []string{"private", "q-b", "q-d"}},
		{"?not-tags-any=red,blue&name=q-d", []string{"q-d"}},
		{"?router:external=true", []string{"public"}},
		{"?description=2", []string{"q-b"}},
		{"?sort_key=admin_state_up&sort_dir=asc&sort_key=name&sort_dir=desc&tags-any=red,blue", []string{"q-a", "q-c", "q-b"}},
		{"?mtu=1450&name=q-d", []string{"q-d"}},
	}
	for _, c := range cases {
		got := names(tc.list(tc.demo, "networks", c.query))
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.query, got, c.want)
		}
	}
	// fields= returns only what was asked.
	for _, it := range tc.list(tc.demo, "networks", "?fields=id&fields=name") {
		if len(it) != 2 || it["id"] == nil || it["name"] == nil {
			t.Errorf("fields %v", it)
		}
	}
	sh := tc.must(200, tc.do("GET", "/network/v2.0/networks/"+byName(tc.list(tc.demo, "networks", ""), "q-a")["id"].(string)+"?fields=name", tc.demo, nil))
	if n := sh.JSON(t)["network"].(map[string]any); len(n) != 1 || n["name"] != "q-a" {
		t.Errorf("show fields %v", n)
	}
	// Bad queries are 400s.
	for q, typ := range map[string]string{"?bogus=1": "HTTPBadRequest", "?sort_key=tags": "HTTPBadRequest", "?sort_key=name&sort_dir=up": "HTTPBadRequest",
		"?sort_key=name&sort_key=id&sort_dir=asc": "HTTPBadRequest", "?limit=-1": "BadRequest", "?limit=x": "BadRequest",
		"?admin_state_up=maybe": "InvalidInput", "?mtu=big": "InvalidInput"} {
		res := tc.do("GET", "/network/v2.0/networks"+q, tc.demo, nil)
		if res.StatusCode != 400 {
			t.Errorf("%s: %d %s", q, res.StatusCode, res.Body)
			continue
		}
		if got, msg := fault(t, res); got != typ {
			t.Errorf("%s: %s %s, want %s", q, got, msg, typ)
		}
	}
	msg := tc.expectFault(400, "HTTPBadRequest", "GET", "/network/v2.0/networks?bogus=1", tc.demo, nil)
	if msg != "['bogus'] is invalid attribute for filtering" {
		t.Errorf("message %q", msg)
	}

	// Paging: follow the next links to the end; every item once, in order.
	all := names(tc.list(tc.demo, "networks", "?sort_key=name"))
	var paged []string
	next := "/network/v2.0/networks?sort_key=name&limit=2"
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		res := tc.must(200, tc.do("GET", next, tc.demo, nil)).JSON(t)
		items := res["networks"].([]any)
		for _, it := range items {
			paged = append(paged, it.(map[string]any)["name"].(string))
		}
		next = ""
		links, _ := res["networks_links"].([]any)
		if links == nil {
			t.Fatalf("no networks_links with limit: %v", res)
		}
		for _, l := range links {
			m := l.(map[string]any)
			if m["rel"] == "next" {
				u, _ := url.Parse(m["href"].(string))
				next = u.RequestURI()
			}
		}
		if len(items) < 2 {
			break
		}
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged %v, want %v", paged, all)
	}
	// A page before a marker (page_reverse).
	marker := byName(tc.list(tc.demo, "networks", ""), "q-c")["id"].(string)
	rev := names(tc.list(tc.demo, "networks", "?sort_key=name&limit=2&page_reverse=True&marker="+marker))
	i := slices.Index(all, "q-c")
	if !slices.Equal(rev, all[i-2:i]) {
		t.Errorf("reverse page %v, want %v", rev, all[i-2:i])
	}
	tc.expectFault(404, "NetworkNotFound", "GET", "/network/v2.0/networks?limit=1&marker=nope", tc.demo, nil)

	// Ports: filters on lists of objects and on bindings.
	nid, sid := tc.netWithSubnet(tc.demo, "pf", "10.80.0.0/24")
	p1 := tc.create(tc.demo, "port", map[string]any{"network_id": nid, "name": "pf1", "device_id": "dev-1"})
	tc.create(tc.demo, "port", map[string]any{"network_id": nid, "name": "pf2"})
	tc.must(200, tc.do("PUT", "/network/v2.0/ports/"+p1["id"].(string), tc.admin, map[string]any{"port": map[string]any{"binding:host_id": "h7"}}))
	for q, want := range map[string][]string{
		"?fixed_ips=ip_address%3D" + firstIP(p1):                                       {"pf1"},
		"?fixed_ips=subnet_id%3D" + sid + "&sort_key=name":                             {"pf1", "pf2"},
		"?fixed_ips=ip_address_substr%3D10.80.0.&network_id=" + nid + "&sort_key=name": {"pf1", "pf2"},
		"?device_id=dev-1":                 {"pf1"},
		"?network_id=" + nid + "&name=pf2": {"pf2"},
		"?security_groups=" + p1["security_groups"].([]any)[0].(string) + "&network_id=" + nid + "&sort_key=name": {"pf1", "pf2"},
	} {
		if got := names(tc.list(tc.demo, "ports", q)); !slices.Equal(got, want) {
			t.Errorf("ports %s: %v, want %v", q, got, want)
		}
	}
	if got := names(tc.list(tc.admin, "ports", "?binding:host_id=h7")); !slices.Equal(got, []string{"pf1"}) {
		t.Errorf("ports by host: %v", got)
	}
	if got := tc.list(tc.demo, "subnets", "?cidr=10.80.0.0/24&fields=cidr"); len(got) != 1 || !strings.HasPrefix(got[0]["cidr"].(string), "10.80") {
		t.Errorf("subnets by cidr: %v", got)
	}
}
