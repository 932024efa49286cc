package image

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestVersionDiscovery(t *testing.T) {
	tc := newTestCloud(t, Config{})
	for _, c := range []struct {
		path   string
		status int
	}{{"/image", 300}, {"/image/", 300}, {"/image/v2", 300}, {"/image/v2/", 300}, {"/image/versions", 200}} {
		res := tc.do("GET", c.path, "", nil)
		if res.StatusCode != c.status {
			t.Fatalf("%s: %d %s", c.path, res.StatusCode, res.Body)
		}
		vs := res.JSON(t)["versions"].([]any)
		first := vs[0].(map[string]any)
		href := first["links"].([]any)[0].(map[string]any)["href"]
		if first["id"] != "v2.17" || first["status"] != "CURRENT" || href != tc.srv.URL+"/image/v2/" {
			t.Fatalf("%s: first version %v", c.path, first)
		}
	}
	// Everything else needs a token, and says where to get one.
	res := tc.do("GET", "/image/v2/images", "", nil)
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "/identity") {
		t.Fatalf("no token: %d %v", res.StatusCode, res.Header)
	}
	faultMessage(t, res)
}

func TestCreateShowAndDefaults(t *testing.T) {
	tc := newTestCloud(t, Config{})
	res := tc.do("POST", "/image/v2/images", tc.demo, map[string]any{
		"name": "cirros", "disk_format": "qcow2", "container_format": "bare", "min_ram": 64, "tags": []string{"a", "b", "a"},
		"os_distro": "cirros", "id": "b2173dd3-7ad6-4362-baa6-a68bce3565cb",
	})
	tc.must(201, res)
	im := res.JSON(t)
	if got := res.Header.Get("Location"); got != tc.srv.URL+"/image/v2/images/b2173dd3-7ad6-4362-baa6-a68bce3565cb" {
		t.Errorf("Location %q", got)
	}
	if res.Header.Get("OpenStack-image-import-methods") != "glance-direct" || res.Header.Get("OpenStack-image-store-ids") != "file" {
		t.Errorf("import/store headers: %v", res.Header)
	}
	want := map[string]any{
		"id": "b2173dd3-7ad6-4362-baa6-a68bce3565cb", "name": "cirros", "status": "queued", "visibility": "shared",
		"owner": tc.demoProject, "disk_format": "qcow2", "container_format": "bare", "size": nil, "virtual_size": nil,
		"checksum": nil, "os_hash_algo": nil, "os_hash_value": nil, "min_disk": float64(0), "min_ram": float64(64),
		"protected": false, "os_hidden": false, "os_distro": "cirros",
		"self": "/v2/images/b2173dd3-7ad6-4362-baa6-a68bce3565cb", "file": "/v2/images/b2173dd3-7ad6-4362-baa6-a68bce3565cb/file",
		"schema": "/v2/schemas/image",
	}
	for k, v := range want {
		if im[k] != v {
			t.Errorf("%s = %#v, want %#v", k, im[k], v)
		}
	}
	if tags := im["tags"].([]any); len(tags) != 2 {
		t.Errorf("tags %v", tags)
	}
	if _, ok := im["stores"]; ok {
		t.Error("a queued image has no stores")
	}
	if !strings.HasSuffix(im["created_at"].(string), "Z") || im["created_at"] != im["updated_at"] {
		t.Errorf("times %v %v", im["created_at"], im["updated_at"])
	}
	shown := tc.show(tc.demo, im["id"].(string))
	for k, v := range want {
		if shown[k] != v {
			t.Errorf("show: %s = %#v, want %#v", k, shown[k], v)
		}
	}
	// An empty body makes an unnamed shared image.
	im = tc.create(tc.demo, map[string]any{})
	if im["name"] != nil || im["visibility"] != "shared" || len(im["id"].(string)) != 36 {
		t.Errorf("empty create: %v", im)
	}
	// Unknown ids are 404s, whatever they look like.
	for _, id := range []string{"nope", "b2173dd3-7ad6-4362-baa6-a68bce3565cc", "%20"} {
		res := tc.do("GET", "/image/v2/images/"+id, tc.demo, nil)
		if res.StatusCode != 404 {
			t.Errorf("GET %s: %d", id, res.StatusCode)
		}
		faultMessage(t, res)
	}
}

func TestCreateRefusals(t *testing.T) {
	tc := newTestCloud(t, Config{})
	tc.create(tc.demo, map[string]any{"id": "11111111-2222-3333-4444-555555555555"})
	long := strings.Repeat("x", 256)
	cases := []struct {
		name   string
		token  string
		body   any
		status int
		msg    string
	}{
		{"malformed JSON", "demo", `{"name":`, 400, ""},
		{"trailing data", "demo", `{} {}`, 400, ""},
		{"empty body", "demo", ``, 400, ""},
		{"array body", "demo", `[]`, 400, ""},
		{"null body", "demo", `null`, 400, ""},
		{"name not a string", "demo", map[string]any{"name": 5}, 400, "name"},
		{"name too long", "demo", map[string]any{"name": long}, 400, "too long"},
		{"bad disk format", "demo", map[string]any{"disk_format": "floppy"}, 400, "floppy"},
		{"bad container format", "demo", map[string]any{"container_format": "zip"}, 400, "zip"},
		{"bad visibility", "demo", map[string]any{"visibility": "everyone"}, 400, "everyone"},
		{"min_ram not an integer", "demo", map[string]any{"min_ram": "1"}, 400, "min_ram"},
		{"min_ram fractional", "demo", map[string]any{"min_ram": 1.5}, 400, "integer"},
		{"negative min_disk", "demo", map[string]any{"min_disk": -1}, 400, "negative"},
		{"protected not boolean", "demo", map[string]any{"protected": "yes"}, 400, "protected"},
		{"tags not strings", "demo", map[string]any{"tags": []any{1}}, 400, "tags"},
		{"tag too long", "demo", map[string]any{"tags": []any{long}}, 400, "too long"},
		{"custom property not a string", "demo", map[string]any{"hw_cpu": 2}, 400, "hw_cpu"},
		{"custom property name too long", "demo", map[string]any{long: "x"}, 400, "255"},
		{"id not a UUID", "demo", map[string]any{"id": "abc"}, 400, "abc"},
		{"duplicate id", "demo", map[string]any{"id": "11111111-2222-3333-4444-555555555555"}, 409, "already exists"},
		{"status is read-only", "demo", map[string]any{"status": "active"}, 403, "read-only"},
		{"checksum is read-only", "demo", map[string]any{"checksum": "x"}, 403, "read-only"},
		{"size is read-only", "demo", map[string]any{"size": 5}, 403, "read-only"},
		{"self is read-only", "demo", map[string]any{"self": "x"}, 403, "read-only"},
		{"locations", "demo", map[string]any{"locations": []any{}}, 403, "locations"},
		{"reserved property", "demo", map[string]any{"deleted": "x"}, 403, "reserved"},
		{"reserved namespace", "demo", map[string]any{"os_glance_import_task": "x"}, 403, "reserved"},
		{"public by a member", "demo", map[string]any{"visibility": "public"}, 403, "publicize_image"},
		{"someone else's owner", "demo", map[string]any{"owner": "somebody"}, 403, "somebody"},
		{"reader cannot create", "reader", map[string]any{}, 403, ""},
	}
	tokens := map[string]string{"demo": tc.demo, "reader": tc.reader}
	for _, c := range cases {
		res := tc.do("POST", "/image/v2/images", tokens[c.token], c.body)
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		if msg := faultMessage(t, res); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q does not mention %q", c.name, msg, c.msg)
		}
	}
	// Nothing above was stored: demo owns the one image made first.
	if ids := tc.listIDs(tc.demo, ""); len(ids) != 1 {
		t.Errorf("demo owns %d images after refusals", len(ids))
	}
	// Admins may make public images and images for other projects.
	im := tc.create(tc.admin, map[string]any{"visibility": "public", "owner": tc.demoProject})
	if im["visibility"] != "public" || im["owner"] != tc.demoProject {
		t.Errorf("admin create: %v", im)
	}
}

func TestPatch(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.create(tc.demo, map[string]any{"name": "n", "os_distro": "debian", "tags": []string{"x"}})["id"].(string)
	patch := func(token string, ops any, ct string) response {
		return tc.do("PATCH", "/image/v2/images/"+id, token, ops, "Content-Type", ct)
	}
	res := tc.must(200, patch(tc.demo, []map[string]any{
		{"op": "replace", "path": "/name", "value": "Fedora 17"},
		{"op": "replace", "path": "/tags", "value": []string{"fedora", "beefy"}},
		{"op": "add", "path": "/hw_disk_bus", "value": "scsi"},
		{"op": "replace", "path": "/os_distro", "value": "fedora"},
		{"op": "add", "path": "/min_ram", "value": 512},
		{"op": "replace", "path": "/protected", "value": true},
		{"op": "replace", "path": "/disk_format", "value": "raw"},
		{"op": "add", "path": "/a~1b", "value": "slash"},
		{"op": "replace", "path": "/visibility", "value": "community"},
	}, patchV21))
	im := res.JSON(t)
	if im["name"] != "Fedora 17" || im["hw_disk_bus"] != "scsi" || im["os_distro"] != "fedora" || im["min_ram"] != float64(512) ||
		im["protected"] != true || im["disk_format"] != "raw" || im["a/b"] != "slash" || im["visibility"] != "community" {
		t.Fatalf("after patch: %v", im)
	}
	if tags := im["tags"].([]any); len(tags) != 2 || !slices.Contains(tags, any("beefy")) {
		t.Errorf("tags %v", tags)
	}
	tc.must(200, patch(tc.demo, []map[string]any{{"op": "remove", "path": "/hw_disk_bus"}, {"op": "replace", "path": "/name", "value": nil}}, patchV21))
	im = tc.show(tc.demo, id)
	if _, ok := im["hw_disk_bus"]; ok || im["name"] != nil {
		t.Errorf("remove/replace null: %v", im)
	}
	// The deprecated draft-4 form.
	tc.must(200, patch(tc.demo, []map[string]any{{"add": "/kernel_args", "value": "quiet"}}, patchV20))
	if tc.show(tc.demo, id)["kernel_args"] != "quiet" {
		t.Error("draft-4 add not applied")
	}

	before := tc.show(tc.demo, id)
	cases := []struct {
		name   string
		token  string
		ct     string
		ops    any
		status int
		msg    string
	}{
		{"json content type", "demo", "application/json", []any{}, 415, "Content-Type"},
		{"not an array", "demo", patchV21, map[string]any{}, 400, "array"},
		{"malformed", "demo", patchV21, `[{"op":`, 400, ""},
		{"op not an object", "demo", patchV21, []any{"x"}, 400, "objects"},
		{"no op", "demo", patchV21, []any{map[string]any{"path": "/name", "value": "x"}}, 400, "op"},
		{"bad op", "demo", patchV21, []any{map[string]any{"op": "move", "path": "/name", "value": "x"}}, 400, "move"},
		{"no path", "demo", patchV21, []any{map[string]any{"op": "add", "value": "x"}}, 400, "path"},
		{"no value", "demo", patchV21, []any{map[string]any{"op": "add", "path": "/x"}}, 400, "value"},
		{"relative pointer", "demo", patchV21, []any{map[string]any{"op": "add", "path": "x", "value": "x"}}, 400, "start"},
		{"deep pointer", "demo", patchV21, []any{map[string]any{"op": "add", "path": "/tags/-", "value": "x"}}, 400, "pointer"},
		{"bad escape", "demo", patchV21, []any{map[string]any{"op": "add", "path": "/a~2", "value": "x"}}, 400, "~"},
		{"read-only status", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/status", "value": "active"}}, 403, "read-only"},
		{"read-only id", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/id", "value": "x"}}, 403, "read-only"},
		{"reserved", "demo", patchV21, []any{map[string]any{"op": "add", "path": "/os_glance_x", "value": "x"}}, 403, "reserved"},
		{"wrong type", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/min_disk", "value": "big"}}, 400, "min_disk"},
		{"custom not a string", "demo", patchV21, []any{map[string]any{"op": "add", "path": "/x", "value": 1}}, 400, "string"},
		{"remove core", "demo", patchV21, []any{map[string]any{"op": "remove", "path": "/name"}}, 403, "may not be removed"},
		{"remove missing", "demo", patchV21, []any{map[string]any{"op": "remove", "path": "/nope"}}, 409, "does not exist"},
		{"replace missing", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/nope", "value": "x"}}, 409, "does not exist"},
		{"draft 4 add existing", "demo", patchV20, []any{map[string]any{"add": "/kernel_args", "value": "x"}}, 409, "already present"},
		{"owner by non-admin", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/owner", "value": "x"}}, 403, "Owner"},
		{"public by non-admin", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/visibility", "value": "public"}}, 403, "publicize"},
		{"locations", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/locations", "value": []any{}}}, 403, "locations"},
		{"other project", "alt", patchV21, []any{map[string]any{"op": "replace", "path": "/name", "value": "mine"}}, 403, ""},
		{"reader", "reader", patchV21, []any{map[string]any{"op": "replace", "path": "/name", "value": "mine"}}, 403, ""},
		// A failing operation leaves the earlier ones unapplied.
		{"atomic", "demo", patchV21, []any{map[string]any{"op": "replace", "path": "/name", "value": "half"},
			map[string]any{"op": "remove", "path": "/nope"}}, 409, "does not exist"},
	}
	tokens := map[string]string{"demo": tc.demo, "alt": tc.alt, "reader": tc.reader}
	for _, c := range cases {
		res := patch(tokens[c.token], c.ops, c.ct)
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, res.StatusCode, c.status, res.Body)
			continue
		}
		if msg := faultMessage(t, res); !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q does not mention %q", c.name, msg, c.msg)
		}
		if c.status == 415 && !strings.Contains(res.Header.Get("Accept-Patch"), patchV21) {
			t.Errorf("415 without Accept-Patch: %v", res.Header)
		}
	}
	after := tc.show(tc.demo, id)
	if after["name"] != before["name"] || after["updated_at"] != before["updated_at"] {
		t.Errorf("refused patches changed the image: %v -> %v", before, after)
	}
	// A private image is a 404 to another project, not a 403.
	tc.must(200, patch(tc.demo, []map[string]any{{"op": "replace", "path": "/visibility", "value": "private"}}, patchV21))
	if res := patch(tc.alt, []map[string]any{{"op": "replace", "path": "/name", "value": "x"}}, patchV21); res.StatusCode != 404 {
		t.Errorf("patch of another's private image: %d", res.StatusCode)
	}
	// Admins change owners and publish.
	tc.must(200, patch(tc.admin, []map[string]any{{"op": "replace", "path": "/owner", "value": tc.altPr},
		{"op": "replace", "path": "/visibility", "value": "public"}}, patchV21))
	if im := tc.show(tc.alt, id); im["owner"] != tc.altPr {
		t.Errorf("owner not changed: %v", im["owner"])
	}
}

func TestDeleteAndProtection(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.upload(tc.demo, map[string]any{"protected": true, "visibility": "community"}, []byte("data"))
	res := tc.do("DELETE", "/image/v2/images/"+id, tc.demo, nil)
	if res.StatusCode != 403 || !strings.Contains(faultMessage(t, res), "protected") {
		t.Fatalf("delete protected: %d %s", res.StatusCode, res.Body)
	}
	if res := tc.do("DELETE", "/image/v2/images/"+id, tc.alt, nil); res.StatusCode != 403 {
		t.Errorf("delete by another project: %d", res.StatusCode)
	}
	tc.must(200, tc.do("PATCH", "/image/v2/images/"+id, tc.demo, []map[string]any{{"op": "replace", "path": "/protected", "value": false}},
		"Content-Type", patchV21))
	if len(tc.dataFiles()) != 1 {
		t.Fatalf("data files %v", tc.dataFiles())
	}
	tc.must(204, tc.do("DELETE", "/image/v2/images/"+id, tc.demo, nil))
	tc.must(404, tc.do("GET", "/image/v2/images/"+id, tc.demo, nil))
	tc.must(404, tc.do("DELETE", "/image/v2/images/"+id, tc.demo, nil))
	// As in Glance, the id of a deleted image is not given out again...
	tc.must(409, tc.do("POST", "/image/v2/images", tc.demo, map[string]any{"id": id}))
	if files := tc.dataFiles(); len(files) != 0 {
		t.Errorf("bytes left after delete: %v", files)
	}
	// ... until it is purged (--keep-deleted, glance-manage db purge);
	// a purge that only reaches older deletions keeps it.
	if n, err := tc.img.PurgeDeleted(context.Background(), time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("purge of older deletions: %d, %v", n, err)
	}
	tc.must(409, tc.do("POST", "/image/v2/images", tc.demo, map[string]any{"id": id}))
	if n, err := tc.img.PurgeDeleted(context.Background(), time.Now().Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	tc.must(201, tc.do("POST", "/image/v2/images", tc.demo, map[string]any{"id": id}))
}

func TestTags(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.create(tc.demo, map[string]any{"visibility": "community"})["id"].(string)
	path := "/image/v2/images/" + id + "/tags/"
	tc.must(204, tc.do("PUT", path+"x86_64", tc.demo, nil))
	tc.must(204, tc.do("PUT", path+"x86_64", tc.demo, nil)) // idempotent
	tc.must(204, tc.do("PUT", path+"with%20space", tc.demo, nil))
	tags := tc.show(tc.demo, id)["tags"].([]any)
	if len(tags) != 2 || !slices.Contains(tags, any("with space")) {
		t.Fatalf("tags %v", tags)
	}
	if ids := tc.listIDs(tc.alt, "?visibility=community&tag=x86_64&tag=with+space"); len(ids) != 1 {
		t.Errorf("tag filter: %v", ids)
	}
	if ids := tc.listIDs(tc.demo, "?tag=x86_64&tag=nope"); len(ids) != 0 {
		t.Errorf("tag filter needs every tag: %v", ids)
	}
	tc.must(204, tc.do("DELETE", path+"x86_64", tc.demo, nil))
	tc.must(404, tc.do("DELETE", path+"x86_64", tc.demo, nil))
	tc.must(400, tc.do("PUT", path+strings.Repeat("t", 256), tc.demo, nil))
	tc.must(403, tc.do("PUT", path+"mine", tc.alt, nil))
	tc.must(404, tc.do("PUT", "/image/v2/images/nope/tags/x", tc.demo, nil))
	for i := 0; i < maxTags-1; i++ {
		tc.must(204, tc.do("PUT", path+"t"+string(rune('a'+i%26))+strings.Repeat("x", i/26), tc.demo, nil))
	}
	tc.must(413, tc.do("PUT", path+"one-too-many", tc.demo, nil))
}

func TestDeactivateReactivate(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.upload(tc.demo, nil, []byte("hello"))
	queued := tc.create(tc.demo, nil)["id"].(string)
	act := func(token, id, action string) response {
		return tc.do("POST", "/image/v2/images/"+id+"/actions/"+action, token, nil)
	}
	tc.must(403, act(tc.demo, id, "deactivate"))
	tc.must(404, act(tc.admin, "nope", "deactivate"))
	tc.must(403, act(tc.admin, queued, "deactivate"))
	tc.must(204, act(tc.admin, id, "deactivate"))
	tc.must(204, act(tc.admin, id, "deactivate"))
	if st := tc.show(tc.demo, id)["status"]; st != "deactivated" {
		t.Fatalf("status %v", st)
	}
	res := tc.do("GET", "/image/v2/images/"+id+"/file", tc.demo, nil)
	if res.StatusCode != 403 || !strings.Contains(faultMessage(t, res), "deactivated") {
		t.Errorf("owner download of deactivated image: %d %s", res.StatusCode, res.Body)
	}
	if res := tc.must(200, tc.do("GET", "/image/v2/images/"+id+"/file", tc.admin, nil)); string(res.Body) != "hello" {
		t.Errorf("admin download: %q", res.Body)
	}
	if _, _, err := tc.img.Open(t.Context(), id); err == nil {
		t.Error("Open of a deactivated image succeeded")
	}
	tc.must(403, act(tc.demo, id, "reactivate"))
	tc.must(204, act(tc.admin, id, "reactivate"))
	if st := tc.show(tc.demo, id)["status"]; st != "active" {
		t.Fatalf("status %v", st)
	}
	tc.must(200, tc.do("GET", "/image/v2/images/"+id+"/file", tc.demo, nil))
}

func TestVisibility(t *testing.T) {
	tc := newTestCloud(t, Config{})
	mk := func(token, vis string) string {
		return tc.create(token, map[string]any{"name": vis, "visibility": vis})["id"].(string)
	}
	private, shared, community := mk(tc.demo, "private"), mk(tc.demo, "shared"), mk(tc.demo, "community")
	public := mk(tc.admin, "public")
	hidden := tc.create(tc.demo, map[string]any{"visibility": "private", "os_hidden": true})["id"].(string)
	altOwn := mk(tc.alt, "private")

	set := func(ids ...string) []string { slices.Sort(ids); return ids }
	got := func(token, q string) []string { return set(tc.listIDs(token, q)...) }
	cases := []struct {
		who, query string
		want       []string
	}{
		{"demo", "", set(private, shared, community, public)},
		{"demo", "?os_hidden=true", set(hidden)},
		{"demo", "?visibility=community", set(community)},
		{"demo", "?visibility=private", set(private)},
		{"alt", "", set(public, altOwn)},
		{"alt", "?visibility=community", set(community)},
		{"alt", "?visibility=shared", nil},
		{"alt", "?visibility=private", set(altOwn)},
		{"alt", "?visibility=all", set(public, altOwn, community)},
		{"admin", "", set(private, shared, public, altOwn)},
		{"admin", "?visibility=all", set(private, shared, community, public, altOwn)},
		{"reader", "", set(private, shared, community, public)},
	}
	tokens := map[string]string{"demo": tc.demo, "alt": tc.alt, "admin": tc.admin, "reader": tc.reader}
	for _, c := range cases {
		if g := got(tokens[c.who], c.query); !slices.Equal(g, c.want) {
			t.Errorf("%s lists %q: got %v, want %v", c.who, c.query, g, c.want)
		}
	}
	// Shows: another project's private and (unshared) shared images are 404s.
	for id, status := range map[string]int{private: 404, shared: 404, community: 200, public: 200, hidden: 404} {
		if res := tc.do("GET", "/image/v2/images/"+id, tc.alt, nil); res.StatusCode != status {
			t.Errorf("alt shows %s: %d, want %d", id, res.StatusCode, status)
		}
		if res := tc.do("GET", "/image/v2/images/"+id+"/file", tc.alt, nil); res.StatusCode != status && !(status == 200 && res.StatusCode == 204) {
			t.Errorf("alt downloads %s: %d", id, res.StatusCode)
		}
	}
	// A visible image of another project may not be changed: 403.
	for _, id := range []string{community, public} {
		tc.must(403, tc.do("DELETE", "/image/v2/images/"+id, tc.alt, nil))
		tc.must(403, tc.do("PUT", "/image/v2/images/"+id+"/file", tc.alt, []byte("x")))
	}
	// Sharing: a pending member sees the image but does not list it until
	// it accepts.
	tc.must(200, tc.do("POST", "/image/v2/images/"+shared+"/members", tc.demo, map[string]any{"member": tc.altPr}))
	tc.must(200, tc.do("GET", "/image/v2/images/"+shared, tc.alt, nil))
	if g := got(tc.alt, ""); slices.Contains(g, shared) {
		t.Error("pending share listed by default")
	}
	if g := got(tc.alt, "?member_status=pending"); !slices.Contains(g, shared) {
		t.Error("pending share not listed with member_status=pending")
	}
	tc.must(200, tc.do("PUT", "/image/v2/images/"+shared+"/members/"+tc.altPr, tc.alt, map[string]any{"status": "accepted"}))
	if g := got(tc.alt, ""); !slices.Contains(g, shared) {
		t.Error("accepted share not listed")
	}
	if g := got(tc.alt, "?visibility=shared"); !slices.Equal(g, []string{shared}) {
		t.Errorf("visibility=shared: %v", g)
	}
	tc.must(200, tc.do("PUT", "/image/v2/images/"+shared+"/members/"+tc.altPr, tc.alt, map[string]any{"status": "rejected"}))
	if g := got(tc.alt, ""); slices.Contains(g, shared) {
		t.Error("rejected share listed")
	}
	if g := got(tc.alt, "?member_status=all"); !slices.Contains(g, shared) {
		t.Error("member_status=all misses a rejected share")
	}
	// Making the image private ends the sharing.
	tc.must(200, tc.do("PATCH", "/image/v2/images/"+shared, tc.demo,
		[]map[string]any{{"op": "replace", "path": "/visibility", "value": "private"}}, "Content-Type", patchV21))
	tc.must(404, tc.do("GET", "/image/v2/images/"+shared, tc.alt, nil))
	// Bad list parameters.
	for _, q := range []string{"?visibility=everyone", "?member_status=maybe", "?os_hidden=maybe", "?limit=-1", "?limit=x",
		"?sort_key=owner", "?sort_dir=up", "?sort=name:up", "?sort=name&sort_key=name", "?changes-since=2020-01-01",
		"?size_min=big", "?created_at=gte:yesterday", "?name=like:x", "?protected=yes", "?marker=nope",
		"?sort_key=name&sort_key=id&sort_dir=asc&sort_dir=desc&sort_dir=asc", `?name=in:"a`} {
		res := tc.do("GET", "/image/v2/images"+q, tc.demo, nil)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("list %s: %d %s", q, res.StatusCode, res.Body)
		}
	}
}

func TestSchemasAndInfo(t *testing.T) {
	tc := newTestCloud(t, Config{StorageQuota: 10 << 20, ImageCountQuota: 5})
	im := tc.must(200, tc.do("GET", "/image/v2/schemas/image", tc.demo, nil)).JSON(t)
	props := im["properties"].(map[string]any)
	if im["name"] != "image" || im["additionalProperties"].(map[string]any)["type"] != "string" {
		t.Errorf("image schema: %v", im)
	}
	for _, p := range []string{"id", "name", "status", "visibility", "os_hidden", "os_hash_value", "stores", "tags", "locations"} {
		if _, ok := props[p]; !ok {
			t.Errorf("image schema lacks %s", p)
		}
	}
	vis := props["visibility"].(map[string]any)["enum"].([]any)
	if len(vis) != 4 {
		t.Errorf("visibility enum %v", vis)
	}
	if df := props["disk_format"].(map[string]any)["enum"].([]any); df[0] != nil {
		t.Errorf("disk_format enum must allow null: %v", df)
	}
	ims := tc.must(200, tc.do("GET", "/image/v2/schemas/images", tc.demo, nil)).JSON(t)
	if ims["properties"].(map[string]any)["images"].(map[string]any)["items"].(map[string]any)["name"] != "image" {
		t.Errorf("images schema: %v", ims)
	}
	m := tc.must(200, tc.do("GET", "/image/v2/schemas/member", tc.demo, nil)).JSON(t)
	if _, ok := m["properties"].(map[string]any)["member_id"]; !ok {
		t.Errorf("member schema %v", m)
	}
	ms := tc.must(200, tc.do("GET", "/image/v2/schemas/members", tc.demo, nil)).JSON(t)
	if ms["name"] != "members" {
		t.Errorf("members schema %v", ms)
	}
	imp := tc.must(200, tc.do("GET", "/image/v2/info/import", tc.demo, nil)).JSON(t)
	if v := imp["import-methods"].(map[string]any)["value"].([]any); len(v) != 1 || v[0] != "glance-direct" {
		t.Errorf("import info %v", imp)
	}
	st := tc.must(200, tc.do("GET", "/image/v2/info/stores", tc.demo, nil)).JSON(t)
	if s := st["stores"].([]any)[0].(map[string]any); s["id"] != "file" || s["default"] != "true" {
		t.Errorf("stores %v", st)
	}
	tc.must(403, tc.do("GET", "/image/v2/info/stores/detail", tc.demo, nil))
	tc.must(200, tc.do("GET", "/image/v2/info/stores/detail", tc.admin, nil))
	tc.upload(tc.demo, nil, make([]byte, 3<<20))
	u := tc.must(200, tc.do("GET", "/image/v2/info/usage", tc.demo, nil)).JSON(t)["usage"].(map[string]any)
	size := u["image_size_total"].(map[string]any)
	count := u["image_count_total"].(map[string]any)
	if size["limit"] != float64(10) || size["usage"] != float64(3) || count["limit"] != float64(5) || count["usage"] != float64(1) {
		t.Errorf("usage %v", u)
	}
	tc.must(404, tc.do("GET", "/image/v2/nothing", tc.demo, nil))
	tc.must(405, tc.do("DELETE", "/image/v2/images", tc.demo, nil))

	// A byte quota under a MiB reads as one MiB (not 0: no room); usage is
	// rounded down, as Glance does.
	small := newTestCloud(t, Config{StorageQuota: 10000})
	small.upload(small.demo, nil, []byte("a few bytes"))
	u = small.must(200, small.do("GET", "/image/v2/info/usage", small.demo, nil)).JSON(t)["usage"].(map[string]any)
	if size := u["image_size_total"].(map[string]any); size["limit"] != float64(1) || size["usage"] != float64(0) {
		t.Errorf("usage with a 10,000-byte quota: %v", u)
	}
}

// TestBadInputNeverFails throws malformed and hostile requests at every
// route: each gets a 4xx fault body, never a 5xx.
func TestBadInputNeverFails(t *testing.T) {
	tc := newTestCloud(t, Config{})
	id := tc.upload(tc.demo, map[string]any{"visibility": "shared"}, []byte("data"))
	queued := tc.create(tc.demo, nil)["id"].(string)
	bodies := []string{``, `{`, `[]`, `null`, `"x"`, `5`, `{"a":` + strings.Repeat("[", 5000) + `}`,
		"{\"name\":\"\xff\xfe\"}", `{"member":{"x":1}}`, `{"status":["accepted"]}`, `{"method":"glance-direct"}`,
		`[{"op":"add","path":"/x","value":{"deep":true}}]`, `[{"op":5,"path":5}]`, `[{"op":"add","path":"/","value":"x"}]`,
		`[{"op":"add","path":"//x","value":"x"}]`, `{"name":"` + strings.Repeat("x", 1<<20) + `"}`}
	paths := []string{"/v2/images", "/v2/images/" + id, "/v2/images/" + queued, "/v2/images/" + id + "/members",
		"/v2/images/" + id + "/members/x", "/v2/images/" + queued + "/import", "/v2/images/" + queued + "/file",
		"/v2/images/" + queued + "/stage", "/v2/images/" + id + "/tags/%FF", "/v2/images/" + id + "/actions/deactivate",
		"/v2/images/%00", "/v2/images?sort=%00:asc", "/v2/images?created_at=gt:", "/v2/images?size_min=99999999999999999999",
		"/v2/images?name=in:", "/v2/images?marker=" + queued + "&limit=1&sort=name:asc,size:desc"}
	for _, tok := range []string{tc.alt, tc.demo} {
		for _, p := range paths {
			for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
				for _, b := range bodies {
					for _, ct := range []string{"application/json", patchV21, "application/octet-stream"} {
						res := tc.do(m, "/image"+p, tok, b, "Content-Type", ct)
						if res.StatusCode >= 500 {
							t.Fatalf("%s %s (%s) %.40q: %d %s", m, p, ct, b, res.StatusCode, res.Body)
						}
						if res.StatusCode >= 400 {
							faultMessage(t, res)
						}
					}
				}
			}
		}
	}
	if err := tc.db.IntegrityCheck(t.Context()); err != nil {
		t.Fatal(err)
	}
}
