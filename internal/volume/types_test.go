package volume

import (
	"slices"
	"strings"
	"testing"
)

func typeNames(l []map[string]any) []string {
	out := []string{}
	for _, t := range l {
		out = append(out, t["name"].(string))
	}
	slices.Sort(out)
	return out
}

func TestVolumeTypes(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})

	// The default type, for everyone.
	l := tc.list(t, "/types", tc.demo, "volume_types")
	if len(l) != 1 || l[0]["name"] != DefaultTypeName || l[0]["is_public"] != true || l[0]["os-volume-type-access:is_public"] != true {
		t.Fatalf("types %v", l)
	}
	defID := l[0]["id"].(string)
	if d := tc.must(t, 200, "GET", "/types/default", tc.demo, nil).JSON(t)["volume_type"].(map[string]any); d["id"] != defID {
		t.Errorf("default type %v", d)
	}
	for _, ref := range []string{defID, DefaultTypeName} {
		if d := tc.must(t, 200, "GET", "/types/"+ref, tc.demo, nil).JSON(t)["volume_type"].(map[string]any); d["id"] != defID {
			t.Errorf("GET /types/%s: %v", ref, d)
		}
	}
	fault(t, tc.do(t, "GET", "/types/"+newUUID(), tc.demo, nil), 404, "itemNotFound")

	// Only the cloud admin manages types.
	body := map[string]any{"volume_type": map[string]any{"name": "gold"}}
	fault(t, tc.do(t, "POST", "/types", tc.demo, body), 403, "forbidden")
	fault(t, tc.do(t, "PUT", "/types/"+defID, tc.demo, map[string]any{"volume_type": map[string]any{"description": "mine"}}), 403, "forbidden")
	fault(t, tc.do(t, "DELETE", "/types/"+defID, tc.demo, nil), 403, "forbidden")
	fault(t, tc.do(t, "POST", "/types/"+defID+"/extra_specs", tc.demo, map[string]any{"extra_specs": map[string]any{"a": "b"}}), 403, "forbidden")
	if n := tc.rows(t, "volume_types"); n != 1 {
		t.Fatalf("%d types after refused creates", n)
	}

	// A private type: unseen by demo until given access.
	res := tc.must(t, 200, "POST", "/types", tc.admin, map[string]any{"volume_type": map[string]any{"name": "secret",
		"description": "for some", "os-volume-type-access:is_public": false, "extra_specs": map[string]any{"tier": "1"}}})
	secret := res.JSON(t)["volume_type"].(map[string]any)
	sid := secret["id"].(string)
	if secret["name"] != "secret" || secret["is_public"] != false || secret["description"] != "for some" || secret["extra_specs"].(map[string]any)["tier"] != "1" {
		t.Errorf("created type %v", secret)
	}
	if got := typeNames(tc.list(t, "/types", tc.demo, "volume_types")); !slices.Equal(got, []string{DefaultTypeName}) {
		t.Errorf("demo lists %v", got)
	}
	fault(t, tc.do(t, "GET", "/types/"+sid, tc.demo, nil), 404, "itemNotFound")
	fault(t, tc.do(t, "GET", "/types/"+sid+"/extra_specs", tc.demo, nil), 404, "itemNotFound")
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "secret"}}), 404, "itemNotFound")
	fault(t, tc.do(t, "POST", "/volumes", tc.demo, map[string]any{"volume": map[string]any{"size": 1, "volume_type": sid}}), 404, "itemNotFound")
	if n := tc.rows(t, "volume_volumes"); n != 0 {
		t.Errorf("refused creates left %d volumes", n)
	}
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{DefaultTypeName}}, // upstream: public ones unless asked
		{"?is_public=None", []string{DefaultTypeName, "secret"}},
		{"?is_public=false", []string{"secret"}},
		{"?is_public=true", []string{DefaultTypeName}},
	} {
		if got := typeNames(tc.list(t, "/types"+tt.query, tc.admin, "volume_types")); !slices.Equal(got, tt.want) {
			t.Errorf("admin lists%s %v, want %v", tt.query, got, tt.want)
		}
	}

	access := "/types/" + sid + "/os-volume-type-access"
	action := "/types/" + sid + "/action"
	if l := tc.list(t, access, tc.admin, "volume_type_access"); len(l) != 0 {
		t.Errorf("access before %v", l)
	}
	fault(t, tc.do(t, "POST", action, tc.demo, map[string]any{"addProjectAccess": map[string]any{"project": tc.demoProject}}), 403, "forbidden")
	fault(t, tc.do(t, "GET", access, tc.demo, nil), 403, "forbidden")
	tc.must(t, 202, "POST", action, tc.admin, map[string]any{"addProjectAccess": map[string]any{"project": tc.demoProject}})
	fault(t, tc.do(t, "POST", action, tc.admin, map[string]any{"addProjectAccess": map[string]any{"project": tc.demoProject}}), 409, "conflictingRequest")
	if l := tc.list(t, access, tc.admin, "volume_type_access"); len(l) != 1 || l[0]["project_id"] != tc.demoProject || l[0]["volume_type_id"] != sid {
		t.Errorf("access %v", l)
	}
	if got := typeNames(tc.list(t, "/types", tc.demo, "volume_types")); !slices.Equal(got, []string{DefaultTypeName, "secret"}) {
		t.Errorf("demo with access lists %v", got)
	}
	if got := typeNames(tc.list(t, "/types", tc.admin, "volume_types")); !slices.Equal(got, []string{DefaultTypeName}) {
		t.Errorf("admin, whose project has no access, lists %v", got)
	}
	tc.must(t, 202, "POST", action, tc.admin, map[string]any{"addProjectAccess": map[string]any{"project": tc.adminProject}})
	if got := typeNames(tc.list(t, "/types", tc.admin, "volume_types")); !slices.Equal(got, []string{DefaultTypeName, "secret"}) {
		t.Errorf("admin, whose project has access, lists %v", got)
	}
	tc.must(t, 202, "POST", action, tc.admin, map[string]any{"removeProjectAccess": map[string]any{"project": tc.adminProject}})
	tc.must(t, 200, "GET", "/types/"+sid, tc.demo, nil)
	vol := tc.createVolume(t, tc.demo, map[string]any{"size": 1, "volume_type": "secret"})
	if v := tc.waitVolume(t, tc.demo, vol, "available"); v["volume_type"] != "secret" {
		t.Errorf("volume_type %v", v["volume_type"])
	}
	// Another project still does not see it.
	alt := tc.addMember(t, "alt")
	fault(t, tc.do(t, "GET", "/types/"+sid, alt, nil), 404, "itemNotFound")

	tc.must(t, 202, "POST", action, tc.admin, map[string]any{"removeProjectAccess": map[string]any{"project": tc.demoProject}})
	fault(t, tc.do(t, "POST", action, tc.admin, map[string]any{"removeProjectAccess": map[string]any{"project": tc.demoProject}}), 404, "itemNotFound")
	fault(t, tc.do(t, "GET", "/types/"+sid, tc.demo, nil), 404, "itemNotFound")
	fault(t, tc.do(t, "POST", action, tc.admin, map[string]any{"addProjectAccess": map[string]any{}}), 400, "badRequest")
	fault(t, tc.do(t, "POST", action, tc.admin, map[string]any{"fly": map[string]any{}}), 400, "badRequest")
	fault(t, tc.do(t, "POST", "/types/"+defID+"/action", tc.admin, map[string]any{"addProjectAccess": map[string]any{"project": tc.demoProject}}), 400, "badRequest")
	fault(t, tc.do(t, "GET", "/types/"+defID+"/os-volume-type-access", tc.admin, nil), 404, "itemNotFound")

	// In use, it is not deleted; once not, it is.
	fault(t, tc.do(t, "DELETE", "/types/"+sid, tc.admin, nil), 400, "badRequest")
	fault(t, tc.do(t, "DELETE", "/types/"+defID, tc.admin, nil), 400, "badRequest")
	fault(t, tc.do(t, "DELETE", "/types/"+newUUID(), tc.admin, nil), 404, "itemNotFound")
	tc.must(t, 202, "DELETE", "/volumes/"+vol, tc.demo, nil)
	tc.waitVolume(t, tc.demo, vol, "deleted")
	tc.must(t, 202, "DELETE", "/types/"+sid, tc.admin, nil)
	fault(t, tc.do(t, "GET", "/types/"+sid, tc.admin, nil), 404, "itemNotFound")
	if n := tc.rows(t, "volume_type_specs") + tc.rows(t, "volume_type_access"); n != 0 {
		t.Errorf("a deleted type left %d specs and access rows", n)
	}
}

func TestVolumeTypeNamesAndUpdates(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	gold := tc.must(t, 200, "POST", "/types", tc.admin, map[string]any{"volume_type": map[string]any{"name": "gold"}}).JSON(t)["volume_type"].(map[string]any)
	if gold["is_public"] != true {
		t.Errorf("a type is public by default: %v", gold)
	}
	id := gold["id"].(string)
	tc.must(t, 200, "POST", "/types", tc.admin, map[string]any{"volume_type": map[string]any{"name": "silver", "is_public": false}})

	for _, tt := range []struct {
		name   string
		body   any
		status int
	}{
		{"duplicate name", map[string]any{"volume_type": map[string]any{"name": "gold"}}, 409},
		{"default's name", map[string]any{"volume_type": map[string]any{"name": DefaultTypeName}}, 409},
		{"no name", map[string]any{"volume_type": map[string]any{"description": "x"}}, 400},
		{"blank name", map[string]any{"volume_type": map[string]any{"name": "  "}}, 400},
		{"long name", map[string]any{"volume_type": map[string]any{"name": strings.Repeat("n", 256)}}, 400},
		{"name a number", map[string]any{"volume_type": map[string]any{"name": 7}}, 400},
		{"is_public a string", map[string]any{"volume_type": map[string]any{"name": "x", "is_public": "maybe"}}, 400},
		{"spec a number", map[string]any{"volume_type": map[string]any{"name": "x", "extra_specs": map[string]any{"a": 1}}}, 400},
		{"no volume_type", map[string]any{"name": "x"}, 400},
		{"malformed", `{"volume_type": {"name": "x"`, 400},
	} {
		res := tc.do(t, "POST", "/types", tc.admin, tt.body)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, res.StatusCode, tt.status, res.Body)
		}
	}
	if got := typeNames(tc.list(t, "/types?is_public=None", tc.admin, "volume_types")); !slices.Equal(got, []string{DefaultTypeName, "gold", "silver"}) {
		t.Errorf("types after refused creates %v", got)
	}

	// Update.
	u := tc.must(t, 200, "PUT", "/types/"+id, tc.admin, map[string]any{"volume_type": map[string]any{"name": "platinum", "description": "shiny"}}).JSON(t)["volume_type"].(map[string]any)
	if u["name"] != "platinum" || u["description"] != "shiny" || u["id"] != id {
		t.Errorf("update answered %v", u)
	}
	if g := tc.must(t, 200, "GET", "/types/platinum", tc.demo, nil).JSON(t)["volume_type"].(map[string]any); g["id"] != id || g["description"] != "shiny" {
		t.Errorf("after update %v", g)
	}
	fault(t, tc.do(t, "PUT", "/types/"+id, tc.admin, map[string]any{"volume_type": map[string]any{"name": "silver"}}), 409, "conflictingRequest")
	fault(t, tc.do(t, "PUT", "/types/"+id, tc.admin, map[string]any{"volume_type": map[string]any{"name": ""}}), 400, "badRequest")
	fault(t, tc.do(t, "PUT", "/types/"+id, tc.admin, map[string]any{"other": 1}), 400, "badRequest")
	fault(t, tc.do(t, "PUT", "/types/"+newUUID(), tc.admin, map[string]any{"volume_type": map[string]any{"name": "x"}}), 404, "itemNotFound")
	if g := tc.must(t, 200, "GET", "/types/"+id, tc.demo, nil).JSON(t)["volume_type"].(map[string]any); g["name"] != "platinum" {
		t.Errorf("refused updates changed the name to %v", g["name"])
	}
	// Volumes show their type's current name.
	vol := tc.createVolume(t, tc.demo, map[string]any{"size": 1, "volume_type": "platinum"})
	tc.waitVolume(t, tc.demo, vol, "available")
	tc.must(t, 200, "PUT", "/types/"+id, tc.admin, map[string]any{"volume_type": map[string]any{"name": "gold"}})
	if v := tc.waitVolume(t, tc.demo, vol, "available"); v["volume_type"] != "gold" {
		t.Errorf("volume_type after rename %v", v["volume_type"])
	}
}

func TestExtraSpecs(t *testing.T) {
	t.Parallel()
	tc := newTestCloud(t, Config{})
	id := tc.must(t, 200, "POST", "/types", tc.admin, map[string]any{"volume_type": map[string]any{"name": "gold"}}).JSON(t)["volume_type"].(map[string]any)["id"].(string)
	p := "/types/" + id + "/extra_specs"
	specs := func() map[string]any {
		t.Helper()
		return tc.must(t, 200, "GET", p, tc.demo, nil).JSON(t)["extra_specs"].(map[string]any)
	}
	if s := specs(); len(s) != 0 {
		t.Fatalf("new type's specs %v", s)
	}
	s := tc.must(t, 200, "POST", p, tc.admin, map[string]any{"extra_specs": map[string]any{"a": "1", "b": "2"}}).JSON(t)["extra_specs"].(map[string]any)
	if len(s) != 2 || s["a"] != "1" {
		t.Errorf("POST answered %v", s)
	}
	tc.must(t, 200, "POST", p, tc.admin, map[string]any{"extra_specs": map[string]any{"a": "one", "c": "3"}})
	if s := specs(); len(s) != 3 || s["a"] != "one" || s["b"] != "2" || s["c"] != "3" {
		t.Errorf("after merge %v", s)
	}
	if k := tc.must(t, 200, "GET", p+"/b", tc.demo, nil).JSON(t); len(k) != 1 || k["b"] != "2" {
		t.Errorf("GET key %v", k)
	}
	if k := tc.must(t, 200, "PUT", p+"/b", tc.admin, map[string]any{"b": "two"}).JSON(t); len(k) != 1 || k["b"] != "two" {
		t.Errorf("PUT key answered %v", k)
	}
	tc.must(t, 202, "DELETE", p+"/c", tc.admin, nil)
	if s := specs(); len(s) != 2 || s["a"] != "one" || s["b"] != "two" {
		t.Errorf("after PUT and DELETE of keys %v", s)
	}
	// The type's view carries them too.
	if ty := tc.must(t, 200, "GET", "/types/"+id, tc.demo, nil).JSON(t)["volume_type"].(map[string]any); len(ty["extra_specs"].(map[string]any)) != 2 {
		t.Errorf("type view %v", ty)
	}

	for _, tt := range []struct {
		name, token, method, path string
		body                      any
		status                    int
	}{
		{"member sets", tc.demo, "POST", p, map[string]any{"extra_specs": map[string]any{"x": "y"}}, 403},
		{"member sets a key", tc.demo, "PUT", p + "/a", map[string]any{"a": "y"}, 403},
		{"member deletes", tc.demo, "DELETE", p + "/a", nil, 403},
		{"key mismatch", tc.admin, "PUT", p + "/a", map[string]any{"b": "y"}, 400},
		{"two keys for one", tc.admin, "PUT", p + "/a", map[string]any{"a": "y", "x": "z"}, 400},
		{"empty body object", tc.admin, "PUT", p + "/a", map[string]any{}, 400},
		{"no extra_specs", tc.admin, "POST", p, map[string]any{"specs": map[string]any{"x": "y"}}, 400},
		{"spec a number", tc.admin, "POST", p, map[string]any{"extra_specs": map[string]any{"x": 1}}, 400},
		{"long key", tc.admin, "POST", p, map[string]any{"extra_specs": map[string]any{strings.Repeat("k", 256): "y"}}, 400},
		{"malformed", tc.admin, "POST", p, `{"extra_specs": `, 400},
		{"delete missing", tc.admin, "DELETE", p + "/nope", nil, 404},
		{"get missing", tc.demo, "GET", p + "/nope", nil, 404},
		{"unknown type", tc.admin, "POST", "/types/" + newUUID() + "/extra_specs", map[string]any{"extra_specs": map[string]any{"x": "y"}}, 404},
	} {
		res := tc.do(t, tt.method, tt.path, tt.token, tt.body)
		if res.StatusCode != tt.status {
			t.Errorf("%s: %d, want %d: %s", tt.name, res.StatusCode, tt.status, res.Body)
		}
	}
	if s := specs(); len(s) != 2 || s["a"] != "one" || s["b"] != "two" {
		t.Errorf("after refused changes %v", s)
	}
}
