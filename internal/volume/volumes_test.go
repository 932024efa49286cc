package volume

import (
	"fmt"
	"github.com/monostack/monostack/internal/testcloud"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestVersions(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/volume", 300},
		{"/volume/", 300},
		{"/volume/v3", 200},
		{"/volume/v3/", 200},
	} {
		res := tc.do(t, "GET", tt.path, "", nil)
		if res.StatusCode != tt.status {
			t.Fatalf("GET %s: %d, want %d: %s", tt.path, res.StatusCode, tt.status, res.Body)
		}
		vs, _ := res.JSON(t)["versions"].([]any)
		if len(vs) != 1 {
			t.Fatalf("GET %s: versions %s", tt.path, res.Body)
		}
		v := vs[0].(map[string]any)
		if v["id"] != "v3.0" || v["status"] != "CURRENT" || v["min_version"] != "3.0" || v["version"] != Versions.Max.String() {
			t.Errorf("GET %s: version %v", tt.path, v)
		}
		self := ""
		for _, l := range v["links"].([]any) {
			if l := l.(map[string]any); l["rel"] == "self" {
				self, _ = l["href"].(string)
			}
		}
		if self != tc.URL()+"/volume/v3/" {
			t.Errorf("GET %s: self link %q", tt.path, self)
		}
	}

	// The microversion answered is named; one out of range is a 406.
	res := tc.must(t, 200, "GET", "/volumes", tc.demo, nil, "OpenStack-API-Version", "volume 3.42")
	if h := res.Header.Get("OpenStack-API-Version"); h != "volume 3.42" {
		t.Errorf("OpenStack-API-Version %q", h)
	}
	res = tc.must(t, 200, "GET", "/volumes", tc.demo, nil)
	if h := res.Header.Get("OpenStack-API-Version"); h != "volume 3.0" {
		t.Errorf("OpenStack-API-Version with none asked: %q", h)
	}
	if res := tc.do(t, "GET", "/volumes", tc.demo, nil, "OpenStack-API-Version", "volume 3.99"); res.StatusCode != 406 {
		t.Errorf("volume 3.99: %d %s", res.StatusCode, res.Body)
	}

	// No token: 401. A member naming another project in the URL: 400
	// (Cinder's "Malformed request url"); the cloud admin may name any.
	if res := tc.do(t, "GET", "/volume/v3/"+tc.demoProject+"/volumes", "", nil); res.StatusCode != 401 {
		t.Errorf("no token: %d", res.StatusCode)
	}
	fault(t, tc.do(t, "GET", "/volume/v3/"+tc.adminProject+"/volumes", tc.demo, nil), 400, "badRequest")
	fault(t, tc.do(t, "POST", "/volume/v3/"+tc.adminProject+"/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1}}), 400, "badRequest")
	if n := tc.rows(t, "volume_volumes"); n != 0 {
		t.Errorf("a refused create left %d volumes", n)
	}
	tc.must(t, 200, "GET", "/volume/v3/"+tc.demoProject+"/volumes", tc.admin, nil)
	fault(t, tc.do(t, "GET", "/nothing-here", tc.demo, nil), 404, "itemNotFound")
}

func TestVolumeLifecycle(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	res := tc.must(t, 202, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{
		"size": 2, "name": "data", "description": "my data", "metadata": map[string]any{"env": "test", "tier": "gold"}}})
	v := res.JSON(t)["volume"].(map[string]any)
	id := v["id"].(string)
	if v["status"] != "creating" || v["name"] != "data" || v["size"] != 2.0 {
		t.Fatalf("create answered %v", v)
	}

	v = tc.waitVolume(t, tc.demo, id, "available")
	if got := tc.blockSize(t, "volume-"+id); got != 2*GiB {
		t.Fatalf("block volume-%s has %d bytes, want %d", id, got, 2*GiB)
	}
	want := map[string]any{
		"id": id, "name": "data", "description": "my data", "size": 2.0, "bootable": "false", "encrypted": false,
		"multiattach": false, "volume_type": DefaultTypeName, "availability_zone": "nova", "snapshot_id": nil,
		"source_volid": nil, "os-vol-tenant-attr:tenant_id": tc.demoProject,
	}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %#v, want %#v", k, v[k], w)
		}
	}
	if a, ok := v["attachments"].([]any); !ok || len(a) != 0 {
		t.Errorf("attachments %#v, want []", v["attachments"])
	}
	if m := v["metadata"].(map[string]any); len(m) != 2 || m["env"] != "test" || m["tier"] != "gold" {
		t.Errorf("metadata %v", m)
	}
	if _, ok := v["os-vol-host-attr:host"]; ok {
		t.Errorf("a member sees os-vol-host-attr:host")
	}
	if uid := tc.creds(t, tc.demo).UserID; v["user_id"] != uid {
		t.Errorf("user_id %v, want %s", v["user_id"], uid)
	}
	av := tc.must(t, 200, "GET", "/volumes/"+id, tc.admin, nil).JSON(t)["volume"].(map[string]any)
	if h, _ := av["os-vol-host-attr:host"].(string); h != "monostack@loopfile#loopfile" {
		t.Errorf("admin sees os-vol-host-attr:host %q", h)
	}

	// Microversions add fields.
	v = tc.must(t, 200, "GET", "/volumes/"+id, tc.demo, nil, "OpenStack-API-Version", "volume 3.63").JSON(t)["volume"].(map[string]any)
	defType := tc.must(t, 200, "GET", "/types/default", tc.demo, nil).JSON(t)["volume_type"].(map[string]any)
	if v["volume_type_id"] != defType["id"] {
		t.Errorf("3.63 volume_type_id %v, want %v", v["volume_type_id"], defType["id"])
	}
	if _, ok := v["group_id"]; !ok {
		t.Errorf("3.63 has no group_id")
	}

	// List and detail.
	l := tc.list(t, "/volumes", tc.demo, "volumes")
	if len(l) != 1 || l[0]["id"] != id || l[0]["name"] != "data" || l[0]["status"] != nil {
		t.Errorf("list %v", l)
	}
	l = tc.list(t, "/volumes/detail", tc.demo, "volumes")
	if len(l) != 1 || l[0]["status"] != "available" || l[0]["bootable"] != "false" || l[0]["os-vol-tenant-attr:tenant_id"] != tc.demoProject {
		t.Errorf("detail %v", l)
	}
	if l := tc.list(t, "/volumes/detail?name=data", tc.demo, "volumes"); len(l) != 1 {
		t.Errorf("name filter: %d", len(l))
	}
	if l := tc.list(t, "/volumes/detail?name=other", tc.demo, "volumes"); len(l) != 0 {
		t.Errorf("name filter other: %d", len(l))
	}
	if l := tc.list(t, "/volumes/detail?status=error", tc.demo, "volumes"); len(l) != 0 {
		t.Errorf("status filter: %d", len(l))
	}
	if l := tc.list(t, "/volumes/detail?metadata="+url.QueryEscape(`{"env":"test"}`), tc.demo, "volumes"); len(l) != 1 {
		t.Errorf("metadata filter: %d", len(l))
	}
	if l := tc.list(t, "/volumes/detail?metadata="+url.QueryEscape(`{"env":"prod"}`), tc.demo, "volumes"); len(l) != 0 {
		t.Errorf("metadata filter prod: %d", len(l))
	}
	if res := tc.must(t, 200, "GET", "/volumes?with_count=true", tc.demo, nil, "OpenStack-API-Version", "volume 3.45"); res.JSON(t)["count"] != 1.0 {
		t.Errorf("with_count: %s", res.Body)
	}

	// Update.
	v = tc.must(t, 200, "PUT", "/volumes/"+id, tc.demo, map[string]any{"volume": map[string]any{"name": "renamed", "description": "new"}}).JSON(t)["volume"].(map[string]any)
	if v["name"] != "renamed" || v["description"] != "new" {
		t.Errorf("update answered %v", v)
	}
	v = tc.must(t, 200, "GET", "/volumes/"+id, tc.demo, nil).JSON(t)["volume"].(map[string]any)
	if v["name"] != "renamed" || v["description"] != "new" || len(v["metadata"].(map[string]any)) != 2 {
		t.Errorf("after update %v", v)
	}
	tc.must(t, 200, "PUT", "/volumes/"+id, tc.demo, map[string]any{"volume": map[string]any{"display_name": "legacy"}})
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["name"] != "legacy" {
		t.Errorf("display_name update: name %v", v["name"])
	}
	fault(t, tc.do(t, "PUT", "/volumes/"+id, tc.demo, map[string]any{"volume": map[string]any{"name": strings.Repeat("x", 256)}}), 400, "badRequest")
	fault(t, tc.do(t, "PUT", "/volumes/"+id, tc.demo, map[string]any{"other": 1}), 400, "badRequest")
	fault(t, tc.do(t, "PUT", "/volumes/"+id, tc.demo, `{"volume": `), 400, "badRequest")
	fault(t, tc.do(t, "PUT", "/volumes/"+newUUID(), tc.demo, map[string]any{"volume": map[string]any{"name": "x"}}), 404, "itemNotFound")
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["name"] != "legacy" {
		t.Errorf("refused updates changed the name to %v", v["name"])
	}

	// Delete: 202, gone, and its bytes with it.
	tc.must(t, 202, "DELETE", "/volumes/"+id, tc.demo, nil)
	tc.waitVolume(t, tc.demo, id, "deleted")
	if got := tc.blockIDs(t); len(got) != 0 {
		t.Errorf("blocks left after delete: %v", got)
	}
	fault(t, tc.do(t, "DELETE", "/volumes/"+id, tc.demo, nil), 404, "itemNotFound")
	if n := tc.rows(t, "volume_metadata"); n != 0 {
		t.Errorf("%d metadata rows left", n)
	}
}

func TestVolumeMetadata(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	id := tc.createVolume(t, tc.demo, map[string]any{"size": 1, "metadata": map[string]any{"a": "1"}})
	tc.waitVolume(t, tc.demo, id, "available")
	p := "/volumes/" + id + "/metadata"
	meta := func() map[string]any {
		t.Helper()
		return tc.must(t, 200, "GET", p, tc.demo, nil).JSON(t)["metadata"].(map[string]any)
	}
	if m := meta(); len(m) != 1 || m["a"] != "1" {
		t.Fatalf("metadata %v", m)
	}
	// POST merges.
	m := tc.must(t, 200, "POST", p, tc.demo, map[string]any{"metadata": map[string]any{"b": "2", "a": "one"}}).JSON(t)["metadata"].(map[string]any)
	if len(m) != 2 || m["a"] != "one" || m["b"] != "2" {
		t.Errorf("POST answered %v", m)
	}
	// PUT replaces.
	tc.must(t, 200, "PUT", p, tc.demo, map[string]any{"metadata": map[string]any{"c": "3"}})
	if m := meta(); len(m) != 1 || m["c"] != "3" {
		t.Errorf("after PUT %v", m)
	}
	// One key.
	if m := tc.must(t, 200, "GET", p+"/c", tc.demo, nil).JSON(t)["meta"].(map[string]any); m["c"] != "3" {
		t.Errorf("GET key %v", m)
	}
	fault(t, tc.do(t, "GET", p+"/nope", tc.demo, nil), 404, "itemNotFound")
	tc.must(t, 200, "PUT", p+"/d", tc.demo, map[string]any{"meta": map[string]any{"d": "4"}})
	if m := meta(); len(m) != 2 || m["d"] != "4" || m["c"] != "3" {
		t.Errorf("after PUT key %v", m)
	}
	tc.must(t, 200, "DELETE", p+"/c", tc.demo, nil)
	if m := meta(); len(m) != 1 || m["d"] != "4" {
		t.Errorf("after DELETE key %v", m)
	}
	// Bad requests change nothing.
	for _, tt := range []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"key mismatch", "PUT", p + "/d", map[string]any{"meta": map[string]any{"e": "5"}}, 400},
		{"two keys for one", "PUT", p + "/d", map[string]any{"meta": map[string]any{"d": "5", "e": "5"}}, 400},
		{"no metadata", "POST", p, map[string]any{"other": map[string]any{"e": "5"}}, 400},
		{"number value", "POST", p, map[string]any{"metadata": map[string]any{"e": 5}}, 400},
		{"empty key", "POST", p, map[string]any{"metadata": map[string]any{"": "5"}}, 400},
		{"long key", "POST", p, map[string]any{"metadata": map[string]any{strings.Repeat("k", 256): "5"}}, 400},
		{"long value", "PUT", p, map[string]any{"metadata": map[string]any{"e": strings.Repeat("v", 256)}}, 400},
		{"malformed", "POST", p, `{"metadata": {`, 400},
		{"delete missing", "DELETE", p + "/nope", nil, 404},
		{"unknown volume", "GET", "/volumes/" + newUUID() + "/metadata", nil, 404},
	} {
		res := tc.do(t, tt.method, tt.path, tc.demo, tt.body)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, res.StatusCode, tt.status, res.Body)
		}
	}
	if m := meta(); len(m) != 1 || m["d"] != "4" {
		t.Errorf("after refused changes %v", m)
	}
	// Another project sees none of it and can change none of it.
	alt := tc.addMember(t, "alt")
	fault(t, tc.do(t, "GET", p, alt, nil), 404, "itemNotFound")
	fault(t, tc.do(t, "GET", p+"/d", alt, nil), 404, "itemNotFound")
	fault(t, tc.do(t, "POST", p, alt, map[string]any{"metadata": map[string]any{"x": "y"}}), 404, "itemNotFound")
	fault(t, tc.do(t, "DELETE", p+"/d", alt, nil), 404, "itemNotFound")
	if m := meta(); len(m) != 1 || m["d"] != "4" {
		t.Errorf("after another project's changes %v", m)
	}
}

func TestCreateBadInput(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	vol := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"volume": m}
	}
	for _, tt := range []struct {
		name   string
		body   any
		status int
	}{
		{"size 0", vol("size", 0), 400},
		{"size -1", vol("size", -1), 400},
		{"size abc", vol("size", "abc"), 400},
		{"size 1.5", vol("size", 1.5), 400},
		{"size '1.5'", vol("size", "1.5"), 400},
		{"size '2x'", vol("size", "2x"), 400},
		{"size '0x10'", vol("size", "0x10"), 400},
		{"size true", vol("size", true), 400},
		{"size object", vol("size", map[string]any{}), 400},
		{"size 1e30", `{"volume": {"size": 1e30}}`, 400},
		{"size too big", vol("size", 1025), 400},
		{"size max int64", `{"volume": {"size": 9223372036854775807}}`, 400},
		{"no size", vol("name", "x"), 400},
		{"missing volume", map[string]any{"size": 1}, 400},
		{"volume null", `{"volume": null}`, 400},
		{"volume string", `{"volume": "big"}`, 400},
		{"unknown volume_type", vol("size", 1, "volume_type", "gold"), 404},
		{"bad availability_zone", vol("size", 1, "availability_zone", "mars"), 400},
		{"malformed JSON", `{"volume": {"size": 1`, 400},
		{"trailing data", `{"volume": {"size": 1}} {}`, 400},
		{"empty body", "", 400},
		{"not an object", `[1]`, 400},
		{"metadata not strings", vol("size", 1, "metadata", map[string]any{"a": 1}), 400},
		{"metadata long key", vol("size", 1, "metadata", map[string]any{strings.Repeat("k", 256): "v"}), 400},
		{"name too long", vol("size", 1, "name", strings.Repeat("n", 256)), 400},
		{"name a number", vol("size", 1, "name", 5), 400},
		{"two sources", vol("snapshot_id", newUUID(), "source_volid", newUUID()), 400},
		{"unknown snapshot", vol("snapshot_id", newUUID()), 404},
		{"unknown source volume", vol("source_volid", newUUID()), 404},
		{"image without an image service", vol("size", 1, "imageRef", newUUID()), 400},
		{"backup_id", vol("size", 1, "backup_id", newUUID()), 400},
		{"multiattach maybe", vol("size", 1, "multiattach", "maybe"), 400},
		{"body too large", `{"volume": {"size": 1, "name": "` + strings.Repeat("x", 1<<20) + `"}}`, 413},
	} {
		res := tc.do(t, "POST", "/volumes", tc.demo, tt.body)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, res.StatusCode, tt.status, res.Body)
			continue
		}
		name := map[int]string{400: "badRequest", 404: "itemNotFound", 413: "overLimit"}[tt.status]
		fault(t, res, tt.status, name)
	}
	if l := tc.list(t, "/volumes", tc.demo, "volumes"); len(l) != 0 {
		t.Errorf("refused creates listed: %v", l)
	}
	if n := tc.rows(t, "volume_volumes"); n != 0 {
		t.Errorf("refused creates left %d volume rows", n)
	}
	if n := tc.rows(t, "volume_metadata"); n != 0 {
		t.Errorf("refused creates left %d metadata rows", n)
	}
	if b := tc.blockIDs(t); len(b) != 0 {
		t.Errorf("refused creates left blocks %v", b)
	}

	// A size given as a string is taken, as Cinder takes it.
	id := tc.createVolume(t, tc.demo, map[string]any{"size": "3"})
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["size"] != 3.0 {
		t.Errorf("size \"3\" made a volume of %v GiB", v["size"])
	}
	if got := tc.blockSize(t, "volume-"+id); got != 3*GiB {
		t.Errorf("block has %d bytes", got)
	}
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	a := tc.newVolume(t, tc.admin, 1)
	d := tc.newVolume(t, tc.demo, 1)

	// demo cannot see, change or delete admin's volume.
	for _, tt := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/volumes/" + a, nil},
		{"PUT", "/volumes/" + a, map[string]any{"volume": map[string]any{"name": "mine"}}},
		{"DELETE", "/volumes/" + a, nil},
		{"POST", "/volumes/" + a + "/action", map[string]any{"os-extend": map[string]any{"new_size": 2}}},
		{"POST", "/volumes/" + a + "/action", map[string]any{"os-set_bootable": map[string]any{"bootable": true}}},
		{"GET", "/volumes/" + a + "/metadata", nil},
		{"PUT", "/volumes/" + a + "/metadata", map[string]any{"metadata": map[string]any{"x": "y"}}},
		{"POST", "/snapshots", map[string]any{"snapshot": map[string]any{"volume_id": a}}},
		{"POST", "/volumes", map[string]any{"volume": map[string]any{"source_volid": a}}},
		{"POST", "/attachments", map[string]any{"attachment": map[string]any{"volume_uuid": a, "instance_uuid": newUUID()}}},
	} {
		fault(t, tc.do(t, tt.method, tt.path, tc.demo, tt.body, "OpenStack-API-Version", "volume 3.44"), 404, "itemNotFound")
	}
	v := tc.waitVolume(t, tc.admin, a, "available")
	if v["name"] != nil || v["size"] != 1.0 || v["bootable"] != "false" || len(v["metadata"].(map[string]any)) != 0 {
		t.Errorf("demo's refused calls changed admin's volume: %v", v)
	}
	if n := tc.rows(t, "volume_volumes"); n != 2 {
		t.Errorf("%d volumes, want 2", n)
	}
	if n := tc.rows(t, "volume_snapshots") + tc.rows(t, "volume_attachments"); n != 0 {
		t.Errorf("refused calls made %d snapshots and attachments", n)
	}
	if _, err := tc.svc.Reserve(t.Context(), tc.creds(t, tc.demo), a, newUUID(), ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Reserve of another project's volume: %v", err)
	}

	for _, tt := range []struct {
		token, query string
		want         []string
	}{
		{tc.demo, "", []string{d}},
		{tc.demo, "?all_tenants=1", []string{d}},
		{tc.admin, "", []string{a}},
		{tc.admin, "?all_tenants=0", []string{a}},
		{tc.admin, "?all_tenants=1", []string{d, a}},
		{tc.admin, "?all_tenants=True", []string{d, a}},
		{tc.admin, "?all_tenants=1&project_id=" + tc.demoProject, []string{d}},
	} {
		for _, path := range []string{"/volumes", "/volumes/detail"} {
			got := ids(tc.list(t, path+tt.query, tt.token, "volumes"))
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s GET %s%s: %v, want %v", tc.project(tt.token), path, tt.query, got, tt.want)
			}
		}
	}
	// The cloud admin may read and manage any project's volume.
	tc.must(t, 200, "GET", "/volumes/"+d, tc.admin, nil)
	tc.must(t, 202, "DELETE", "/volumes/"+d, tc.admin, nil)
	tc.waitVolume(t, tc.demo, d, "deleted")
}

func TestPagingAndSorting(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	sizes := []int{3, 1, 5, 2, 4}
	var made []string // oldest first
	for i, size := range sizes {
		made = append(made, tc.createVolume(t, tc.demo, map[string]any{"size": size, "name": fmt.Sprintf("v%d", i)}))
	}
	for _, id := range made {
		tc.waitVolume(t, tc.demo, id, "available")
	}
	newest := slices.Clone(made)
	slices.Reverse(newest)
	if got := ids(tc.list(t, "/volumes", tc.demo, "volumes")); !slices.Equal(got, newest) {
		t.Fatalf("default order %v, want newest first %v", got, newest)
	}

	// Pages of 2 following volumes_links next.
	var got []string
	path := "/volumes/detail?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("more than 3 pages of 2 for 5 volumes")
		}
		res := tc.must(t, 200, "GET", path, tc.demo, nil).JSON(t)
		page := res["volumes"].([]any)
		for _, v := range page {
			got = append(got, v.(map[string]any)["id"].(string))
		}
		path = ""
		if links, ok := res["volumes_links"].([]any); ok {
			l := links[0].(map[string]any)
			if l["rel"] != "next" || len(page) != 2 {
				t.Fatalf("links %v on a page of %d", links, len(page))
			}
			href := l["href"].(string)
			if !strings.HasPrefix(href, tc.URL()+"/volume/v3/"+tc.demoProject+"/volumes/detail?") {
				t.Fatalf("next link %s", href)
			}
			u, _ := url.Parse(href)
			if m := u.Query().Get("marker"); m != got[len(got)-1] {
				t.Fatalf("next marker %s, want the page's last %s", m, got[len(got)-1])
			}
			path = strings.TrimPrefix(href, tc.URL())
		} else if len(got) != len(made) {
			t.Fatalf("no next link after %d of %d volumes", len(got), len(made))
		}
	}
	if !slices.Equal(got, newest) {
		t.Errorf("paged %v, want %v", got, newest)
	}
	if l := tc.list(t, "/volumes?marker="+newest[3], tc.demo, "volumes"); len(l) != 1 || l[0]["id"] != newest[4] {
		t.Errorf("after the 4th: %v", ids(l))
	}
	if l := tc.list(t, "/volumes?marker="+newest[4], tc.demo, "volumes"); len(l) != 0 {
		t.Errorf("after the last: %v", ids(l))
	}

	sizesOf := func(query string) []int {
		t.Helper()
		var out []int
		for _, v := range tc.list(t, "/volumes/detail"+query, tc.demo, "volumes") {
			out = append(out, int(v["size"].(float64)))
		}
		return out
	}
	for _, tt := range []struct {
		query string
		want  []int
	}{
		{"?sort=size:asc", []int{1, 2, 3, 4, 5}},
		{"?sort=size:desc", []int{5, 4, 3, 2, 1}},
		{"?sort=size", []int{5, 4, 3, 2, 1}},
		{"?sort_key=size&sort_dir=asc", []int{1, 2, 3, 4, 5}},
		{"?sort_key=size&sort_dir=desc", []int{5, 4, 3, 2, 1}},
		{"?sort=name:asc", sizes},
		{"?sort=size:asc&limit=2", []int{1, 2}},
		{"?sort=size:asc&limit=2&marker=" + made[3], []int{3, 4}}, // made[3] is 2 GiB
	} {
		if got := sizesOf(tt.query); !slices.Equal(got, tt.want) {
			t.Errorf("%s: sizes %v, want %v", tt.query, got, tt.want)
		}
	}
	for _, q := range []string{"?sort=colour:asc", "?sort_key=colour", "?sort=size:sideways", "?marker=" + newUUID(),
		"?limit=-1", "?limit=two", "?bootable=maybe", "?metadata=notjson"} {
		fault(t, tc.do(t, "GET", "/volumes/detail"+q, tc.demo, nil), 400, "badRequest")
	}
}

func TestExtend(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	id := tc.newVolume(t, tc.demo, 1)
	block := "volume-" + id
	tc.writeBlock(t, block, GiB-5, []byte("tail!"))
	extend := func(size any, headers ...string) response {
		return tc.do(t, "POST", "/volumes/"+id+"/action", tc.demo, map[string]any{"os-extend": map[string]any{"new_size": size}}, headers...)
	}
	testcloud.Must(t, 202, extend(3))
	v := tc.waitVolume(t, tc.demo, id, "available")
	if v["size"] != 3.0 {
		t.Fatalf("size after extend %v", v["size"])
	}
	if got := tc.blockSize(t, block); got != 3*GiB {
		t.Fatalf("block has %d bytes after extend", got)
	}
	if got := string(tc.readBlock(t, block, GiB-5, 5)); got != "tail!" {
		t.Errorf("bytes after extend %q", got)
	}
	testcloud.Must(t, 202, extend("4"))
	tc.waitVolume(t, tc.demo, id, "available")

	for _, tt := range []struct {
		name string
		body any
	}{
		{"same size", map[string]any{"os-extend": map[string]any{"new_size": 4}}},
		{"smaller", map[string]any{"os-extend": map[string]any{"new_size": 2}}},
		{"zero", map[string]any{"os-extend": map[string]any{"new_size": 0}}},
		{"not a number", map[string]any{"os-extend": map[string]any{"new_size": "big"}}},
		{"fraction", map[string]any{"os-extend": map[string]any{"new_size": 4.5}}},
		{"missing", map[string]any{"os-extend": map[string]any{}}},
		{"null", map[string]any{"os-extend": nil}},
		{"over the largest", map[string]any{"os-extend": map[string]any{"new_size": 1025}}},
		{"not an object", map[string]any{"os-extend": 5}},
	} {
		res := tc.do(t, "POST", "/volumes/"+id+"/action", tc.demo, tt.body)
		if res.StatusCode != 400 {
			t.Errorf("%s: %d %s", tt.name, res.StatusCode, res.Body)
		}
	}
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["size"] != 4.0 || tc.blockSize(t, block) != 4*GiB {
		t.Errorf("refused extends changed the size: %v, block %d", v["size"], tc.blockSize(t, block))
	}

	// An attached volume grows only from microversion 3.42.
	ctx := t.Context()
	conn, err := tc.svc.Reserve(ctx, tc.creds(t, tc.demo), id, newUUID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.svc.Attached(ctx, conn.AttachmentID, "host1", "/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	fault(t, extend(5), 400, "badRequest")
	fault(t, extend(5, "OpenStack-API-Version", "volume 3.41"), 400, "badRequest")
	testcloud.Must(t, 202, extend(5, "OpenStack-API-Version", "volume 3.42"))
	v = tc.waitVolume(t, tc.demo, id, "in-use")
	if v["size"] != 5.0 || tc.blockSize(t, block) != 5*GiB {
		t.Errorf("attached extend: size %v, block %d", v["size"], tc.blockSize(t, block))
	}
	if a := v["attachments"].([]any); len(a) != 1 {
		t.Errorf("attachments after extend: %v", a)
	}
}

func TestAdminActions(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	id := tc.newVolume(t, tc.demo, 1)
	action := func(token string, body any) response {
		return tc.do(t, "POST", "/volumes/"+id+"/action", token, body)
	}

	// os-reset_status: the cloud admin's only.
	fault(t, action(tc.demo, map[string]any{"os-reset_status": map[string]any{"status": "error"}}), 403, "forbidden")
	tc.waitVolume(t, tc.demo, id, "available")
	fault(t, action(tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "bogus"}}), 400, "badRequest")
	fault(t, action(tc.admin, map[string]any{"os-reset_status": map[string]any{}}), 400, "badRequest")
	testcloud.Must(t, 202, action(tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "maintenance"}}))
	tc.waitVolume(t, tc.demo, id, "maintenance")

	// A volume in maintenance is deleted only by force, the admin's.
	fault(t, tc.do(t, "DELETE", "/volumes/"+id, tc.demo, nil), 400, "badRequest")
	fault(t, tc.do(t, "DELETE", "/volumes/"+id+"?force=true", tc.demo, nil), 403, "forbidden")
	fault(t, action(tc.demo, map[string]any{"os-force_delete": map[string]any{}}), 403, "forbidden")
	fault(t, tc.do(t, "DELETE", "/volumes/"+id+"?cascade=perhaps", tc.demo, nil), 400, "badRequest")
	tc.waitVolume(t, tc.demo, id, "maintenance")

	// os-set_bootable.
	testcloud.Must(t, 202, action(tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "available"}}))
	testcloud.Must(t, 200, action(tc.demo, map[string]any{"os-set_bootable": map[string]any{"bootable": true}}))
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["bootable"] != "true" {
		t.Errorf("bootable %v after os-set_bootable", v["bootable"])
	}
	if l := tc.list(t, "/volumes?bootable=true", tc.demo, "volumes"); len(l) != 1 {
		t.Errorf("bootable=true lists %d", len(l))
	}
	if l := tc.list(t, "/volumes?bootable=false", tc.demo, "volumes"); len(l) != 0 {
		t.Errorf("bootable=false lists %d", len(l))
	}
	fault(t, action(tc.demo, map[string]any{"os-set_bootable": map[string]any{"bootable": "maybe"}}), 400, "badRequest")
	fault(t, action(tc.demo, map[string]any{"os-set_bootable": map[string]any{}}), 400, "badRequest")
	testcloud.Must(t, 200, action(tc.demo, map[string]any{"os-set_bootable": map[string]any{"bootable": "False"}}))
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["bootable"] != "false" {
		t.Errorf("bootable %v after os-set_bootable False", v["bootable"])
	}

	// os-update_readonly_flag: what is attached afterwards is read-only.
	fault(t, action(tc.demo, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": "sometimes"}}), 400, "badRequest")
	testcloud.Must(t, 202, action(tc.demo, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": true}}))
	conn, err := tc.svc.Reserve(t.Context(), tc.creds(t, tc.demo), id, newUUID(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !conn.ReadOnly || conn.Block != "volume-"+id || conn.VolumeID != id {
		t.Errorf("connection of a read-only volume %+v", conn)
	}
	// Not while it is attaching.
	fault(t, action(tc.demo, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": false}}), 400, "badRequest")
	if err := tc.svc.Unreserve(t.Context(), conn.AttachmentID); err != nil {
		t.Fatal(err)
	}
	tc.waitVolume(t, tc.demo, id, "available")
	testcloud.Must(t, 202, action(tc.demo, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": false}}))
	if conn, err = tc.svc.Reserve(t.Context(), tc.creds(t, tc.demo), id, newUUID(), ""); err != nil || conn.ReadOnly {
		t.Errorf("after readonly false: %+v %v", conn, err)
	}
	tc.svc.Unreserve(t.Context(), conn.AttachmentID)

	// Actions that are not one.
	fault(t, action(tc.demo, map[string]any{"os-fly": map[string]any{}}), 400, "badRequest")
	fault(t, action(tc.demo, map[string]any{}), 400, "badRequest")
	fault(t, action(tc.demo, map[string]any{"os-set_bootable": map[string]any{"bootable": true}, "os-extend": map[string]any{"new_size": 2}}), 400, "badRequest")
	fault(t, action(tc.demo, `{"os-extend": `), 400, "badRequest")
	fault(t, tc.do(t, "POST", "/volumes/"+newUUID()+"/action", tc.demo, map[string]any{"os-extend": map[string]any{"new_size": 2}}), 404, "itemNotFound")
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["size"] != 1.0 {
		t.Errorf("refused actions changed the size to %v", v["size"])
	}

	// os-force_delete: gone whatever its status, with its bytes.
	testcloud.Must(t, 202, action(tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "error_deleting"}}))
	testcloud.Must(t, 202, action(tc.admin, map[string]any{"os-force_delete": map[string]any{}}))
	tc.waitVolume(t, tc.demo, id, "deleted")
	if b := tc.blockIDs(t); len(b) != 0 {
		t.Errorf("blocks left after force delete: %v", b)
	}

	// DELETE ?force=true by the admin: a volume stuck creating.
	id = tc.newVolume(t, tc.demo, 1)
	testcloud.Must(t, 202, tc.do(t, "POST", "/volumes/"+id+"/action", tc.admin, map[string]any{"os-reset_status": map[string]any{"status": "creating"}}))
	fault(t, tc.do(t, "DELETE", "/volumes/"+id, tc.demo, nil), 400, "badRequest")
	tc.must(t, 202, "DELETE", "/volumes/"+id+"?force=true", tc.admin, nil)
	tc.waitVolume(t, tc.demo, id, "deleted")
	waitFor(t, "the block to go", func() bool { return tc.blockSize(t, "volume-"+id) < 0 })
}

func TestInfrastructureViews(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{AvailabilityZone: "zone1", Host: "node7"})
	zones := tc.must(t, 200, "GET", "/os-availability-zone", tc.demo, nil).JSON(t)["availabilityZoneInfo"].([]any)
	if len(zones) != 1 {
		t.Fatalf("zones %v", zones)
	}
	z := zones[0].(map[string]any)
	if z["zoneName"] != "zone1" || z["zoneState"].(map[string]any)["available"] != true {
		t.Errorf("zone %v", z)
	}
	// Volumes are made in the configured zone; naming it is fine, naming
	// "nova" is not.
	id := tc.createVolume(t, tc.demo, map[string]any{"size": 1, "availability_zone": "zone1"})
	if v := tc.waitVolume(t, tc.demo, id, "available"); v["availability_zone"] != "zone1" {
		t.Errorf("availability_zone %v", v["availability_zone"])
	}
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1, "availability_zone": "nova"}}), 400, "badRequest")
	if v := tc.must(t, 200, "GET", "/volumes/"+id, tc.admin, nil).JSON(t)["volume"].(map[string]any); v["os-vol-host-attr:host"] != "node7@loopfile#loopfile" {
		t.Errorf("host %v", v["os-vol-host-attr:host"])
	}

	fault(t, tc.do(t, "GET", "/os-services", tc.demo, nil), 403, "forbidden")
	svcs := tc.list(t, "/os-services", tc.admin, "services")
	binaries := map[string]map[string]any{}
	for _, s := range svcs {
		binaries[s["binary"].(string)] = s
		if s["zone"] != "zone1" || s["status"] != "enabled" || s["state"] != "up" {
			t.Errorf("service %v", s)
		}
	}
	if len(svcs) != 2 || binaries["cinder-scheduler"] == nil || binaries["cinder-volume"]["host"] != "node7@loopfile" {
		t.Errorf("services %v", svcs)
	}
	if _, ok := binaries["cinder-backup"]; ok {
		t.Errorf("cinder-backup listed without an object store")
	}
	if l := tc.list(t, "/os-services?binary=cinder-volume", tc.admin, "services"); len(l) != 1 || l[0]["binary"] != "cinder-volume" {
		t.Errorf("binary filter %v", l)
	}
	if l := tc.list(t, "/os-services?host=elsewhere", tc.admin, "services"); len(l) != 0 {
		t.Errorf("host filter %v", l)
	}
	for _, s := range tc.list(t, "/os-services", tc.admin, "services", "OpenStack-API-Version", "volume 3.49") {
		if s["binary"] == "cinder-volume" && s["backend_state"] != "up" {
			t.Errorf("3.49 cinder-volume %v", s)
		}
	}

	ext := tc.list(t, "/extensions", tc.demo, "extensions")
	aliases := map[string]bool{}
	for _, e := range ext {
		aliases[e["alias"].(string)] = true
	}
	for _, a := range []string{"os-admin-actions", "os-volume-actions", "os-quota-sets", "os-types-manage", "os-availability-zone"} {
		if !aliases[a] {
			t.Errorf("extension %s not listed", a)
		}
	}
	if aliases["backups"] {
		t.Errorf("backups listed without an object store")
	}
}
