package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// obj returns m[key] as an object, failing the test otherwise.
func catObj(t *testing.T, m map[string]any, key string) map[string]any {
	t.Helper()
	o, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("%s is not an object: %v", key, m)
	}
	return o
}

// ids returns the "id" of each object of list m[key].
func catIDs(t *testing.T, m map[string]any, key string) []string {
	t.Helper()
	list, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%s is not a list: %v", key, m)
	}
	out := []string{}
	for _, v := range list {
		out = append(out, v.(map[string]any)["id"].(string))
	}
	return out
}

func catSameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// fault checks a Keystone error body with the wanted code and returns its message.
func catFault(t *testing.T, res response, code int) string {
	t.Helper()
	if res.StatusCode != code {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, code, res.Body)
	}
	e := catObj(t, res.JSON(t), "error")
	if e["code"] != float64(code) || e["title"] != http.StatusText(code) {
		t.Fatalf("fault %v, want code %d", e, code)
	}
	msg, _ := e["message"].(string)
	return msg
}

func (tc *testCloud) catService(typ, name string) string {
	tc.t.Helper()
	res := tc.must(201, tc.do("POST", "/identity/v3/services", tc.admin,
		map[string]any{"service": map[string]any{"type": typ, "name": name}}))
	return catObj(tc.t, res.JSON(tc.t), "service")["id"].(string)
}

func (tc *testCloud) catEndpoint(ep map[string]any) map[string]any {
	tc.t.Helper()
	res := tc.must(201, tc.do("POST", "/identity/v3/endpoints", tc.admin, map[string]any{"endpoint": ep}))
	return catObj(tc.t, res.JSON(tc.t), "endpoint")
}

var catHexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRegionsCRUD(t *testing.T) {
	tc := newTestCloud(t)
	const base = "/identity/v3/regions"

	// Create with an id, with a generated id, and by PUT.
	res := tc.must(201, tc.do("POST", base, tc.admin, map[string]any{"region": map[string]any{
		"id": "RegionTwo", "description": "second"}}))
	r2 := catObj(t, res.JSON(t), "region")
	want := map[string]any{"id": "RegionTwo", "description": "second", "parent_region_id": nil}
	for k, v := range want {
		if r2[k] != v {
			t.Errorf("region %s = %v, want %v", k, r2[k], v)
		}
	}
	if l := catObj(t, r2, "links")["self"]; l != tc.srv.URL+"/identity/v3/regions/RegionTwo" {
		t.Errorf("self link %v", l)
	}
	if len(r2) != 4 {
		t.Errorf("region has fields %v", r2)
	}
	res = tc.must(201, tc.do("POST", base, tc.admin, map[string]any{"region": map[string]any{}}))
	gen := catObj(t, res.JSON(t), "region")
	if !catHexID.MatchString(gen["id"].(string)) || gen["description"] != "" {
		t.Errorf("generated region %v", gen)
	}
	res = tc.must(201, tc.do("PUT", base+"/Child", tc.admin, map[string]any{"region": map[string]any{
		"parent_region_id": "RegionTwo", "description": nil}}))
	child := catObj(t, res.JSON(t), "region")
	if child["id"] != "Child" || child["parent_region_id"] != "RegionTwo" || child["description"] != "" {
		t.Errorf("PUT region %v", child)
	}
	tc.must(201, tc.do("PUT", base+"/Grandchild", tc.admin, map[string]any{"region": map[string]any{
		"id": "Grandchild", "parent_region_id": "Child"}}))

	// Show, list, filter.
	res = tc.must(200, tc.do("GET", base+"/Child", tc.admin, nil))
	if catObj(t, res.JSON(t), "region")["parent_region_id"] != "RegionTwo" {
		t.Errorf("show %s", res.Body)
	}
	res = tc.must(200, tc.do("GET", base, tc.admin, nil))
	if got := catIDs(t, res.JSON(t), "regions"); !catSameSet(got, []string{"RegionOne", "RegionTwo", gen["id"].(string), "Child", "Grandchild"}) {
		t.Errorf("list %v", got)
	}
	if catObj(t, res.JSON(t), "links")["next"] != nil {
		t.Errorf("links %s", res.Body)
	}
	res = tc.must(200, tc.do("GET", base+"?parent_region_id=RegionTwo", tc.admin, nil))
	if got := catIDs(t, res.JSON(t), "regions"); !catSameSet(got, []string{"Child"}) {
		t.Errorf("filtered list %v", got)
	}

	// Any token reads regions.
	tc.must(200, tc.do("GET", base, tc.demo, nil))
	tc.must(200, tc.do("GET", base+"/RegionTwo", tc.demo, nil))
	tc.must(401, tc.do("GET", base, "", nil))

	// Update.
	res = tc.must(200, tc.do("PATCH", base+"/Child", tc.admin, map[string]any{"region": map[string]any{
		"description": "moved", "parent_region_id": nil, "id": "Child"}}))
	if c := catObj(t, res.JSON(t), "region"); c["description"] != "moved" || c["parent_region_id"] != nil {
		t.Errorf("patched %v", c)
	}
	res = tc.must(200, tc.do("PATCH", base+"/Child", tc.admin, map[string]any{"region": map[string]any{
		"parent_region_id": "RegionTwo"}}))
	if c := catObj(t, res.JSON(t), "region"); c["description"] != "moved" || c["parent_region_id"] != "RegionTwo" {
		t.Errorf("patched %v", c)
	}
	msg := catFault(t, tc.do("PATCH", base+"/RegionTwo", tc.admin, map[string]any{"region": map[string]any{
		"parent_region_id": "Grandchild"}}), 400)
	if msg != "The specified parent region RegionTwo would create a circular region hierarchy." {
		t.Errorf("circular: %q", msg)
	}
	catFault(t, tc.do("PATCH", base+"/RegionTwo", tc.admin, map[string]any{"region": map[string]any{
		"parent_region_id": "RegionTwo"}}), 400)

	// Delete: a region with endpoints stays, a subtree goes as a whole.
	msg = catFault(t, tc.do("DELETE", base+"/RegionOne", tc.admin, nil), 403)
	if msg != "Unable to delete region RegionOne because it or its child regions have associated endpoints." {
		t.Errorf("delete with endpoints: %q", msg)
	}
	svc := tc.catService("compute", "nova")
	ep := tc.catEndpoint(map[string]any{"service_id": svc, "interface": "public", "url": "http://x:1/", "region_id": "Grandchild"})
	catFault(t, tc.do("DELETE", base+"/RegionTwo", tc.admin, nil), 403)
	tc.must(204, tc.do("DELETE", "/identity/v3/endpoints/"+ep["id"].(string), tc.admin, nil))
	tc.must(204, tc.do("DELETE", base+"/RegionTwo", tc.admin, nil))
	for _, id := range []string{"RegionTwo", "Child", "Grandchild"} {
		if msg := catFault(t, tc.do("GET", base+"/"+id, tc.admin, nil), 404); msg != "Could not find region: "+id+"." {
			t.Errorf("after delete: %q", msg)
		}
	}
	catFault(t, tc.do("DELETE", base+"/RegionTwo", tc.admin, nil), 404)
}

func TestRegionErrors(t *testing.T) {
	tc := newTestCloud(t)
	const base = "/identity/v3/regions"
	tc.must(201, tc.do("POST", base, tc.admin, map[string]any{"region": map[string]any{"id": "R2"}}))
	long := strings.Repeat("x", 256)
	cases := []struct {
		name, method, path string
		token              string
		body               any
		code               int
		msg                string // exact message when not empty
	}{
		{"malformed", "POST", base, "", `{"region": {`, 400, ""},
		{"empty body", "POST", base, "", "", 400, ""},
		{"not an object", "POST", base, "", map[string]any{"region": "R3"}, 400, ""},
		{"no region key", "POST", base, "", map[string]any{"regions": map[string]any{}}, 400, ""},
		{"id not string", "POST", base, "", map[string]any{"region": map[string]any{"id": 5}}, 400, ""},
		{"id too long", "POST", base, "", map[string]any{"region": map[string]any{"id": long}}, 400, ""},
		{"description type", "POST", base, "", map[string]any{"region": map[string]any{"description": true}}, 400, ""},
		{"description too long", "POST", base, "", map[string]any{"region": map[string]any{"description": long}}, 400, ""},
		{"parent empty", "POST", base, "", map[string]any{"region": map[string]any{"parent_region_id": ""}}, 400, ""},
		{"parent type", "POST", base, "", map[string]any{"region": map[string]any{"parent_region_id": []int{1}}}, 400, ""},
		{"parent missing", "POST", base, "", map[string]any{"region": map[string]any{"parent_region_id": "nope"}}, 404,
			"Could not find region: nope."},
		{"duplicate", "POST", base, "", map[string]any{"region": map[string]any{"id": "R2"}}, 409,
			"Conflict occurred attempting to store region - Duplicate ID, R2.."},
		{"duplicate put", "PUT", base + "/R2", "", map[string]any{"region": map[string]any{}}, 409, ""},
		{"put conflicting id", "PUT", base + "/R3", "", map[string]any{"region": map[string]any{"id": "R4"}}, 400,
			`Conflicting region IDs specified: "R3" != "R4"`},
		{"patch empty", "PATCH", base + "/R2", "", map[string]any{"region": map[string]any{}}, 400, ""},
		{"patch id", "PATCH", base + "/R2", "", map[string]any{"region": map[string]any{"id": "R5"}}, 400, "Cannot change ID"},
		{"patch missing", "PATCH", base + "/nope", "", map[string]any{"region": map[string]any{"description": "x"}}, 404,
			"Could not find region: nope."},
		{"patch parent missing", "PATCH", base + "/R2", "", map[string]any{"region": map[string]any{"parent_region_id": "nope"}}, 404, ""},
		{"get missing", "GET", base + "/nope", "", nil, 404, "Could not find region: nope."},
		{"unknown filter", "GET", base + "?name=x", "", nil, 400, ""},
		{"member create", "POST", base, "demo", map[string]any{"region": map[string]any{"id": "R9"}}, 403, ""},
		{"member put", "PUT", base + "/R9", "demo", map[string]any{"region": map[string]any{}}, 403, ""},
		{"member patch", "PATCH", base + "/R2", "demo", map[string]any{"region": map[string]any{"description": "x"}}, 403, ""},
		{"member delete", "DELETE", base + "/R2", "demo", nil, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := tc.admin
			if c.token == "demo" {
				tok = tc.demo
			}
			msg := catFault(t, tc.do(c.method, c.path, tok, c.body), c.code)
			if c.msg != "" && msg != c.msg {
				t.Errorf("message %q, want %q", msg, c.msg)
			}
		})
	}
	// Nothing was made or changed by the refused calls.
	res := tc.must(200, tc.do("GET", base, tc.admin, nil))
	if got := catIDs(t, res.JSON(t), "regions"); !catSameSet(got, []string{"RegionOne", "R2"}) {
		t.Errorf("regions after errors: %v", got)
	}
	res = tc.must(200, tc.do("GET", base+"/R2", tc.admin, nil))
	if r := catObj(t, res.JSON(t), "region"); r["description"] != "" || r["parent_region_id"] != nil {
		t.Errorf("R2 changed: %v", r)
	}
}

func TestServicesCRUD(t *testing.T) {
	tc := newTestCloud(t)
	const base = "/identity/v3/services"

	res := tc.must(201, tc.do("POST", base, tc.admin, map[string]any{"service": map[string]any{
		"type": "compute", "name": "nova", "description": "Compute", "enabled": false}}))
	nova := catObj(t, res.JSON(t), "service")
	id := nova["id"].(string)
	if !catHexID.MatchString(id) {
		t.Errorf("id %q", id)
	}
	want := map[string]any{"type": "compute", "name": "nova", "description": "Compute", "enabled": false}
	for k, v := range want {
		if nova[k] != v {
			t.Errorf("service %s = %v, want %v", k, nova[k], v)
		}
	}
	if catObj(t, nova, "links")["self"] != tc.srv.URL+"/identity/v3/services/"+id {
		t.Errorf("links %v", nova["links"])
	}
	// Only the type is required: name defaults to "", enabled to true.
	res = tc.must(201, tc.do("POST", base, tc.admin, map[string]any{"service": map[string]any{"type": "image"}}))
	img := catObj(t, res.JSON(t), "service")
	if img["name"] != "" || img["enabled"] != true || img["description"] != "" {
		t.Errorf("defaults %v", img)
	}
	imgID := img["id"].(string)

	res = tc.must(200, tc.do("GET", base+"/"+id, tc.admin, nil))
	if catObj(t, res.JSON(t), "service")["name"] != "nova" {
		t.Errorf("show %s", res.Body)
	}
	keystone := ""
	res = tc.must(200, tc.do("GET", base+"?type=identity", tc.admin, nil))
	if got := catIDs(t, res.JSON(t), "services"); len(got) != 1 {
		t.Fatalf("type filter %v", got)
	} else {
		keystone = got[0]
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{keystone, id, imgID}},
		{"?type=compute", []string{id}},
		{"?name=nova", []string{id}},
		{"?name=keystone&type=identity", []string{keystone}},
		{"?name=keystone&type=compute", nil},
		{"?type=volume", nil},
	} {
		res := tc.must(200, tc.do("GET", base+c.query, tc.admin, nil))
		if got := catIDs(t, res.JSON(t), "services"); !catSameSet(got, c.want) {
			t.Errorf("list %q = %v, want %v", c.query, got, c.want)
		}
	}

	res = tc.must(200, tc.do("PATCH", base+"/"+id, tc.admin, map[string]any{"service": map[string]any{
		"name": "nova2", "enabled": true, "id": id}}))
	if s := catObj(t, res.JSON(t), "service"); s["name"] != "nova2" || s["enabled"] != true || s["type"] != "compute" || s["description"] != "Compute" {
		t.Errorf("patched %v", s)
	}
	res = tc.must(200, tc.do("PATCH", base+"/"+id, tc.admin, map[string]any{"service": map[string]any{"type": "compute2", "description": nil}}))
	if s := catObj(t, res.JSON(t), "service"); s["name"] != "nova2" || s["type"] != "compute2" || s["description"] != "" {
		t.Errorf("patched %v", s)
	}

	// Deleting a service deletes its endpoints.
	ep := tc.catEndpoint(map[string]any{"service_id": id, "interface": "public", "url": "http://nova:8774/v2.1"})
	tc.must(204, tc.do("DELETE", base+"/"+id, tc.admin, nil))
	if msg := catFault(t, tc.do("GET", base+"/"+id, tc.admin, nil), 404); msg != "Could not find service: "+id+"." {
		t.Errorf("after delete: %q", msg)
	}
	catFault(t, tc.do("GET", "/identity/v3/endpoints/"+ep["id"].(string), tc.admin, nil), 404)
	catFault(t, tc.do("DELETE", base+"/"+id, tc.admin, nil), 404)
}

func TestServiceErrors(t *testing.T) {
	tc := newTestCloud(t)
	const base = "/identity/v3/services"
	id := tc.catService("compute", "nova")
	long := strings.Repeat("x", 256)
	cases := []struct {
		name, method, path string
		token              string
		body               any
		code               int
		msg                string
	}{
		{"malformed", "POST", base, "", `{"service": `, 400, ""},
		{"trailing data", "POST", base, "", `{"service": {"type": "x"}} {}`, 400, ""},
		{"not an object", "POST", base, "", map[string]any{"service": []string{"x"}}, 400, ""},
		{"type missing", "POST", base, "", map[string]any{"service": map[string]any{"name": "x"}}, 400, ""},
		{"type empty", "POST", base, "", map[string]any{"service": map[string]any{"type": ""}}, 400, ""},
		{"type too long", "POST", base, "", map[string]any{"service": map[string]any{"type": long}}, 400, ""},
		{"type number", "POST", base, "", map[string]any{"service": map[string]any{"type": 3}}, 400, ""},
		{"type null", "POST", base, "", map[string]any{"service": map[string]any{"type": nil}}, 400, ""},
		{"name empty", "POST", base, "", map[string]any{"service": map[string]any{"type": "x", "name": ""}}, 400, ""},
		{"name type", "POST", base, "", map[string]any{"service": map[string]any{"type": "x", "name": 1}}, 400, ""},
		{"enabled string", "POST", base, "", map[string]any{"service": map[string]any{"type": "x", "enabled": "yes"}}, 400, ""},
		{"enabled null", "POST", base, "", map[string]any{"service": map[string]any{"type": "x", "enabled": nil}}, 400, ""},
		{"description type", "POST", base, "", map[string]any{"service": map[string]any{"type": "x", "description": 5}}, 400, ""},
		{"patch empty", "PATCH", base + "/" + id, "", map[string]any{"service": map[string]any{}}, 400, ""},
		{"patch type", "PATCH", base + "/" + id, "", map[string]any{"service": map[string]any{"type": ""}}, 400, ""},
		{"patch id", "PATCH", base + "/" + id, "", map[string]any{"service": map[string]any{"id": "other"}}, 400, "Cannot change ID"},
		{"patch missing", "PATCH", base + "/nope", "", map[string]any{"service": map[string]any{"name": "x"}}, 404,
			"Could not find service: nope."},
		{"get missing", "GET", base + "/nope", "", nil, 404, "Could not find service: nope."},
		{"delete missing", "DELETE", base + "/nope", "", nil, 404, "Could not find service: nope."},
		{"member list", "GET", base, "demo", nil, 403, ""},
		{"member show", "GET", base + "/" + id, "demo", nil, 403, ""},
		{"member create", "POST", base, "demo", map[string]any{"service": map[string]any{"type": "x"}}, 403, ""},
		{"member patch", "PATCH", base + "/" + id, "demo", map[string]any{"service": map[string]any{"name": "x"}}, 403, ""},
		{"member delete", "DELETE", base + "/" + id, "demo", nil, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := tc.admin
			if c.token == "demo" {
				tok = tc.demo
			}
			msg := catFault(t, tc.do(c.method, c.path, tok, c.body), c.code)
			if c.msg != "" && msg != c.msg {
				t.Errorf("message %q, want %q", msg, c.msg)
			}
		})
	}
	res := tc.must(200, tc.do("GET", base, tc.admin, nil))
	if got := catIDs(t, res.JSON(t), "services"); len(got) != 2 {
		t.Errorf("services after errors: %v", got)
	}
	res = tc.must(200, tc.do("GET", base+"/"+id, tc.admin, nil))
	if s := catObj(t, res.JSON(t), "service"); s["name"] != "nova" || s["type"] != "compute" || s["enabled"] != true {
		t.Errorf("service changed: %v", s)
	}
}

func TestEndpointsCRUD(t *testing.T) {
	tc := newTestCloud(t)
	const base = "/identity/v3/endpoints"
	nova := tc.catService("compute", "nova")
	glance := tc.catService("image", "glance")

	ep := tc.catEndpoint(map[string]any{"service_id": nova, "interface": "public",
		"url": "http://nova:8774/v2.1/$(project_id)s", "region_id": "RegionOne"})
	id := ep["id"].(string)
	want := map[string]any{"service_id": nova, "interface": "public", "url": "http://nova:8774/v2.1/$(project_id)s",
		"region_id": "RegionOne", "region": "RegionOne", "enabled": true}
	for k, v := range want {
		if ep[k] != v {
			t.Errorf("endpoint %s = %v, want %v", k, ep[k], v)
		}
	}
	if !catHexID.MatchString(id) || catObj(t, ep, "links")["self"] != tc.srv.URL+"/identity/v3/endpoints/"+id || len(ep) != 8 {
		t.Errorf("endpoint %v", ep)
	}
	// No region; disabled.
	noRegion := tc.catEndpoint(map[string]any{"service_id": nova, "interface": "internal", "url": "http://nova-int:8774/",
		"enabled": false, "region_id": nil})
	if noRegion["region"] != nil || noRegion["region_id"] != nil || noRegion["enabled"] != false {
		t.Errorf("endpoint without region %v", noRegion)
	}
	// The legacy "region" names the region and creates it when missing.
	legacy := tc.catEndpoint(map[string]any{"service_id": glance, "interface": "admin", "url": "http://glance:9292",
		"region": "Legacy"})
	if legacy["region"] != "Legacy" || legacy["region_id"] != "Legacy" {
		t.Errorf("legacy region %v", legacy)
	}
	tc.must(200, tc.do("GET", "/identity/v3/regions/Legacy", tc.admin, nil))
	// region_id wins over region.
	both := tc.catEndpoint(map[string]any{"service_id": glance, "interface": "public", "url": "http://glance:9292",
		"region_id": "RegionOne", "region": "Other"})
	if both["region_id"] != "RegionOne" {
		t.Errorf("region_id and region: %v", both)
	}
	catFault(t, tc.do("GET", "/identity/v3/regions/Other", tc.admin, nil), 404)

	res := tc.must(200, tc.do("GET", base+"/"+id, tc.admin, nil))
	if e := catObj(t, res.JSON(t), "endpoint"); e["url"] != want["url"] || e["region"] != "RegionOne" {
		t.Errorf("show %v", e)
	}
	res = tc.must(200, tc.do("GET", base+"?interface=public&region_id=RegionOne", tc.admin, nil))
	keystonePublic := ""
	for _, e := range res.JSON(t)["endpoints"].([]any) {
		if s := e.(map[string]any)["service_id"]; s != nova && s != glance {
			keystonePublic = e.(map[string]any)["id"].(string)
		}
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"?service_id=" + nova, []string{id, noRegion["id"].(string)}},
		{"?service_id=" + glance + "&interface=admin", []string{legacy["id"].(string)}},
		{"?region_id=Legacy", []string{legacy["id"].(string)}},
		{"?interface=public&region_id=RegionOne", []string{id, both["id"].(string), keystonePublic}},
		{"?service_id=nope", nil},
	} {
		res := tc.must(200, tc.do("GET", base+c.query, tc.admin, nil))
		if got := catIDs(t, res.JSON(t), "endpoints"); !catSameSet(got, c.want) {
			t.Errorf("list %q = %v, want %v", c.query, got, c.want)
		}
	}
	res = tc.must(200, tc.do("GET", base, tc.admin, nil))
	if got := catIDs(t, res.JSON(t), "endpoints"); len(got) != 7 { // 3 for keystone
		t.Errorf("list all: %v", got)
	}

	// Update: fields, clearing the region, legacy region, moving service.
	res = tc.must(200, tc.do("PATCH", base+"/"+id, tc.admin, map[string]any{"endpoint": map[string]any{
		"url": "https://nova/v2.1", "interface": "admin", "enabled": false, "id": id}}))
	e := catObj(t, res.JSON(t), "endpoint")
	if e["url"] != "https://nova/v2.1" || e["interface"] != "admin" || e["enabled"] != false || e["region_id"] != "RegionOne" || e["service_id"] != nova {
		t.Errorf("patched %v", e)
	}
	res = tc.must(200, tc.do("PATCH", base+"/"+id, tc.admin, map[string]any{"endpoint": map[string]any{"region_id": nil}}))
	if e := catObj(t, res.JSON(t), "endpoint"); e["region_id"] != nil || e["region"] != nil || e["url"] != "https://nova/v2.1" {
		t.Errorf("region cleared %v", e)
	}
	res = tc.must(200, tc.do("PATCH", base+"/"+id, tc.admin, map[string]any{"endpoint": map[string]any{"region": "Made", "service_id": glance}}))
	if e := catObj(t, res.JSON(t), "endpoint"); e["region_id"] != "Made" || e["service_id"] != glance {
		t.Errorf("legacy region patch %v", e)
	}
	tc.must(200, tc.do("GET", "/identity/v3/regions/Made", tc.admin, nil))

	tc.must(204, tc.do("DELETE", base+"/"+id, tc.admin, nil))
	if msg := catFault(t, tc.do("GET", base+"/"+id, tc.admin, nil), 404); msg != "Could not find endpoint: "+id+"." {
		t.Errorf("after delete %q", msg)
	}
	catFault(t, tc.do("DELETE", base+"/"+id, tc.admin, nil), 404)
}

func TestEndpointErrors(t *testing.T) {
	tc := newTestCloud(t)
	const base = "/identity/v3/endpoints"
	svc := tc.catService("compute", "nova")
	ep := tc.catEndpoint(map[string]any{"service_id": svc, "interface": "public", "url": "http://nova/"})
	id := ep["id"].(string)
	valid := func(k string, v any) map[string]any {
		e := map[string]any{"service_id": svc, "interface": "public", "url": "http://x/"}
		if v == nil {
			delete(e, k)
		} else {
			e[k] = v
		}
		return map[string]any{"endpoint": e}
	}
	tableMissing := "Expecting to find endpoint %s in %s table. The server could not comply with the request since " +
		"it is either malformed or otherwise incorrect. The client is assumed to be in error."
	cases := []struct {
		name, method, path string
		token              string
		body               any
		code               int
		msg                string
	}{
		{"malformed", "POST", base, "", `{"endpoint": {"url": }`, 400, ""},
		{"not an object", "POST", base, "", map[string]any{"endpoint": 1}, 400, ""},
		{"service_id missing", "POST", base, "", valid("service_id", nil), 400, ""},
		{"interface missing", "POST", base, "", valid("interface", nil), 400, ""},
		{"url missing", "POST", base, "", valid("url", nil), 400, ""},
		{"bad interface", "POST", base, "", valid("interface", "private"), 400,
			"Invalid input for field 'interface': 'private' is not one of ['admin', 'internal', 'public']."},
		{"interface type", "POST", base, "", valid("interface", 1), 400, ""},
		{"service_id type", "POST", base, "", valid("service_id", 1), 400, ""},
		{"url type", "POST", base, "", valid("url", false), 400, ""},
		{"url no scheme", "POST", base, "", valid("url", "nova:"), 400, ""},
		{"url relative", "POST", base, "", valid("url", "/v2.1"), 400, ""},
		{"url too long", "POST", base, "", valid("url", "http://"+strings.Repeat("a", 220)), 400, ""},
		{"url bad substitution", "POST", base, "", valid("url", "http://x/$(tenant)s"), 400,
			"Cannot create an endpoint with an invalid URL: http://x/$(tenant)s."},
		{"url percent escape", "POST", base, "", valid("url", "http://x/a%20b"), 400, ""},
		{"enabled type", "POST", base, "", valid("enabled", "true"), 400, ""},
		{"region_id type", "POST", base, "", valid("region_id", 1), 400, ""},
		{"region type", "POST", base, "", valid("region", []string{}), 400, ""},
		{"name type", "POST", base, "", valid("name", 1), 400, ""},
		{"unknown service", "POST", base, "", valid("service_id", "nope"), 400, strings.Replace(strings.Replace(tableMissing, "%s", "service_id", 1), "%s", "service", 1)},
		{"unknown region", "POST", base, "", valid("region_id", "nope"), 400, strings.Replace(strings.Replace(tableMissing, "%s", "region_id", 1), "%s", "region", 1)},
		{"empty region", "POST", base, "", valid("region_id", ""), 400, ""},
		{"patch empty", "PATCH", base + "/" + id, "", map[string]any{"endpoint": map[string]any{}}, 400, ""},
		{"patch interface", "PATCH", base + "/" + id, "", map[string]any{"endpoint": map[string]any{"interface": "x"}}, 400, ""},
		{"patch url", "PATCH", base + "/" + id, "", map[string]any{"endpoint": map[string]any{"url": "x"}}, 400, ""},
		{"patch id", "PATCH", base + "/" + id, "", map[string]any{"endpoint": map[string]any{"id": "x"}}, 400, "Cannot change ID"},
		{"patch unknown service", "PATCH", base + "/" + id, "", map[string]any{"endpoint": map[string]any{"service_id": "nope"}}, 400, ""},
		{"patch unknown region", "PATCH", base + "/" + id, "", map[string]any{"endpoint": map[string]any{"region_id": "nope"}}, 400, ""},
		{"patch missing", "PATCH", base + "/nope", "", map[string]any{"endpoint": map[string]any{"enabled": true}}, 404,
			"Could not find endpoint: nope."},
		{"get missing", "GET", base + "/nope", "", nil, 404, "Could not find endpoint: nope."},
		{"bad interface filter", "GET", base + "?interface=private", "", nil, 400, ""},
		{"member list", "GET", base, "demo", nil, 403, ""},
		{"member show", "GET", base + "/" + id, "demo", nil, 403, ""},
		{"member create", "POST", base, "demo", valid("url", "http://x/"), 403, ""},
		{"member patch", "PATCH", base + "/" + id, "demo", map[string]any{"endpoint": map[string]any{"enabled": false}}, 403, ""},
		{"member delete", "DELETE", base + "/" + id, "demo", nil, 403, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := tc.admin
			if c.token == "demo" {
				tok = tc.demo
			}
			msg := catFault(t, tc.do(c.method, c.path, tok, c.body), c.code)
			if c.msg != "" && msg != c.msg {
				t.Errorf("message %q, want %q", msg, c.msg)
			}
		})
	}
	// A refused legacy region leaves no region behind, and nothing changed.
	catFault(t, tc.do("PATCH", base+"/nope", tc.admin, map[string]any{"endpoint": map[string]any{"region": "Ghost"}}), 404)
	catFault(t, tc.do("GET", "/identity/v3/regions/Ghost", tc.admin, nil), 404)
	res := tc.must(200, tc.do("GET", base+"?service_id="+svc, tc.admin, nil))
	if got := catIDs(t, res.JSON(t), "endpoints"); !catSameSet(got, []string{id}) {
		t.Errorf("endpoints after errors: %v", got)
	}
	res = tc.must(200, tc.do("GET", base+"/"+id, tc.admin, nil))
	if e := catObj(t, res.JSON(t), "endpoint"); e["url"] != "http://nova/" || e["enabled"] != true || e["interface"] != "public" {
		t.Errorf("endpoint changed: %v", e)
	}
}

func TestCheckEndpointURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://x/":                                true,
		"http://x/v2.1/$(project_id)s":             true,
		"http://x/v1/AUTH_$(tenant_id)s":           true,
		"http://x/$(user_id)s/$(compute_host)s":    true,
		"http://x/%(public_endpoint)s":             true,
		"http://x/100%%":                           true,
		"http://x/$(project_id)-10s":               true,
		"http://x/$(project)s":                     false,
		"http://x/$(project_id)d":                  false,
		"http://x/$(project_id":                    false,
		"http://x/%":                               false,
		"http://x/a%20b":                           false,
		"http://x/%s":                              true, // formats the mapping itself, as Python does
		"http://x/%s/%s":                           false,
		"http://x/$(project_id)s/$(project_id)08s": true,
		"http://x/$(project_id)s/%s":               false,
		"http://x/%s/$(project_id)s":               true,
		"http://x/%.3s":                            true,
		"http://x/%(user_id)r":                     true,
		"http://x/$((a))s":                         false,
	} {
		if err := checkEndpointURL(url); (err == nil) != ok {
			t.Errorf("checkEndpointURL(%q) = %v, want ok=%v", url, err, ok)
		}
	}
}

// catalogEntry finds the service with id in a catalog list.
func catEntry(t *testing.T, catalog any, id string) map[string]any {
	t.Helper()
	list, ok := catalog.([]any)
	if !ok {
		t.Fatalf("catalog is not a list: %v", catalog)
	}
	for _, s := range list {
		if m := s.(map[string]any); m["id"] == id {
			return m
		}
	}
	return nil
}

func TestCatalogFollowsWrites(t *testing.T) {
	tc := newTestCloud(t)
	svc := tc.catService("compute", "nova")
	ep := tc.catEndpoint(map[string]any{"service_id": svc, "interface": "public", "url": "http://nova:8774/v2.1",
		"region_id": "RegionOne"})

	newToken := func() map[string]any {
		res := tc.must(200, tc.do("GET", "/identity/v3/auth/tokens", tc.admin, nil,
			"X-Subject-Token", tc.passwordToken("demo", testDemoPassword, "demo")))
		return catObj(t, res.JSON(t), "token")
	}
	authCatalog := func() any {
		return tc.must(200, tc.do("GET", "/identity/v3/auth/catalog", tc.demo, nil)).JSON(t)["catalog"]
	}

	// A token issued after the write carries the new endpoint.
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": "demo", "domain": map[string]any{"id": "default"}, "password": testDemoPassword}}},
		"scope": map[string]any{"project": map[string]any{"name": "demo", "domain": map[string]any{"id": "default"}}},
	}}
	res := tc.must(201, tc.do("POST", "/identity/v3/auth/tokens", "", body))
	entry := catEntry(t, catObj(t, res.JSON(t), "token")["catalog"], svc)
	if entry == nil || entry["type"] != "compute" || entry["name"] != "nova" {
		t.Fatalf("issued token catalog lacks nova: %s", res.Body)
	}
	eps := entry["endpoints"].([]any)
	if len(eps) != 1 {
		t.Fatalf("endpoints %v", eps)
	}
	got := eps[0].(map[string]any)
	for k, v := range map[string]any{"id": ep["id"], "interface": "public", "url": "http://nova:8774/v2.1",
		"region_id": "RegionOne", "region": "RegionOne"} {
		if got[k] != v {
			t.Errorf("catalog endpoint %s = %v, want %v", k, got[k], v)
		}
	}
	if e := catEntry(t, authCatalog(), svc); e == nil || len(e["endpoints"].([]any)) != 1 {
		t.Errorf("/v3/auth/catalog lacks nova: %v", e)
	}

	// An endpoint added or disabled later shows in the next catalog.
	tc.catEndpoint(map[string]any{"service_id": svc, "interface": "internal", "url": "http://nova-int:8774/v2.1"})
	if e := catEntry(t, newToken()["catalog"], svc); e == nil || len(e["endpoints"].([]any)) != 2 {
		t.Errorf("after second endpoint: %v", e)
	}
	tc.must(200, tc.do("PATCH", "/identity/v3/endpoints/"+ep["id"].(string), tc.admin,
		map[string]any{"endpoint": map[string]any{"enabled": false}}))
	if e := catEntry(t, authCatalog(), svc); e == nil || len(e["endpoints"].([]any)) != 1 {
		t.Errorf("after disabling an endpoint: %v", e)
	}
	// A disabled service leaves the catalog; a deleted one too.
	tc.must(200, tc.do("PATCH", "/identity/v3/services/"+svc, tc.admin,
		map[string]any{"service": map[string]any{"enabled": false}}))
	if e := catEntry(t, newToken()["catalog"], svc); e != nil {
		t.Errorf("disabled service in catalog: %v", e)
	}
	tc.must(200, tc.do("PATCH", "/identity/v3/services/"+svc, tc.admin,
		map[string]any{"service": map[string]any{"enabled": true}}))
	if e := catEntry(t, authCatalog(), svc); e == nil {
		t.Errorf("re-enabled service missing from catalog")
	}
	tc.must(204, tc.do("DELETE", "/identity/v3/services/"+svc, tc.admin, nil))
	if e := catEntry(t, authCatalog(), svc); e != nil {
		t.Errorf("deleted service in catalog: %v", e)
	}
}

func TestCatalogProjectTemplates(t *testing.T) {
	tc := newTestCloud(t)
	if err := tc.svc.EnsureService(context.Background(), "object-store", "swift", "", "http://h/object-store/v1/AUTH_%(project_id)s"); err != nil {
		t.Fatal(err)
	}
	demoProject, _ := tc.svc.ProjectByName(context.Background(), "default", "demo")
	res := tc.must(200, tc.do("GET", "/identity/v3/auth/catalog", tc.demo, nil))
	var body struct {
		Catalog []CatalogService `json:"catalog"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, svc := range body.Catalog {
		for _, ep := range svc.Endpoints {
			if svc.Type == "object-store" {
				found = true
				if ep.URL != "http://h/object-store/v1/AUTH_"+demoProject.ID {
					t.Fatalf("url not filled in: %s", ep.URL)
				}
			}
			if ep.RegionID == nil || *ep.RegionID != "RegionOne" {
				t.Fatalf("region of %s: %v", svc.Type, ep.RegionID)
			}
		}
	}
	if !found {
		t.Fatal("object-store not in catalog")
	}
	// A system-scoped token has no project: the endpoint is left out.
	sys := tc.must(201, tc.do("POST", "/identity/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}, "password": testAdminPassword}}},
		"scope": map[string]any{"system": map[string]any{"all": true}}}}))
	if strings.Contains(string(sys.Body), "object-store/v1") {
		t.Fatalf("system token catalog has a project endpoint: %s", sys.Body)
	}
}
