package identity

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

const v3 = "/identity/v3/"

func TestDomainsCRUD(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(201, tc.do("POST", v3+"domains", tc.admin, map[string]any{"domain": map[string]any{"name": "Acme", "description": "a domain"}}))
	d := obj(t, res, "domain")
	id := d["id"].(string)
	if len(id) != 32 || d["name"] != "Acme" || d["description"] != "a domain" || d["enabled"] != true {
		t.Errorf("created %v", d)
	}
	if self := d["links"].(map[string]any)["self"]; self != tc.srv.URL+"/identity/v3/domains/"+id {
		t.Errorf("self link %v", self)
	}
	if got := obj(t, tc.must(200, tc.do("GET", v3+"domains/"+id, tc.admin, nil)), "domain"); got["name"] != "Acme" {
		t.Errorf("GET %v", got)
	}
	tc.fault(409, tc.do("POST", v3+"domains", tc.admin, map[string]any{"domain": map[string]any{"name": "acme"}}))
	// Explicit ids: Keystone's id format only.
	ex := obj(t, tc.must(201, tc.do("POST", v3+"domains", tc.admin, map[string]any{"domain": map[string]any{
		"name": "Explicit", "explicit_domain_id": "0123456789abcdef0123456789abcdef"}})), "domain")
	if ex["id"] != "0123456789abcdef0123456789abcdef" {
		t.Errorf("explicit id %v", ex["id"])
	}
	tc.fault(409, tc.do("POST", v3+"domains", tc.admin, map[string]any{"domain": map[string]any{
		"name": "Explicit2", "explicit_domain_id": "0123456789abcdef0123456789abcdef"}}))
	for _, bad := range []string{"has space", "a/b", "", strings.Repeat("a", 65), "ü", "0123456789ABCDEF0123456789ABCDEF",
		"01234567-89ab-cdef-0123-456789abcdef", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdeg"} {
		tc.fault(400, tc.do("POST", v3+"domains", tc.admin, map[string]any{"domain": map[string]any{
			"name": "Bad", "explicit_domain_id": bad}}))
	}
	// Lists and filters.
	names := field(list(t, tc.must(200, tc.do("GET", v3+"domains", tc.admin, nil)), "domains"), "name")
	if !slices.Equal(names, []string{"Acme", "Default", "Explicit"}) {
		t.Errorf("domains %v", names)
	}
	if l := list(t, tc.must(200, tc.do("GET", v3+"domains?name=Acme", tc.admin, nil)), "domains"); len(l) != 1 || l[0]["id"] != id {
		t.Errorf("?name %v", l)
	}
	// Update.
	u := obj(t, tc.must(200, tc.do("PATCH", v3+"domains/"+id, tc.admin, map[string]any{"domain": map[string]any{"name": "Acme2", "description": "d2"}})), "domain")
	if u["name"] != "Acme2" || u["description"] != "d2" || u["enabled"] != true {
		t.Errorf("PATCH %v", u)
	}
	tc.fault(400, tc.do("PATCH", v3+"domains/"+id, tc.admin, map[string]any{"domain": map[string]any{"id": "other"}}))
	tc.fault(409, tc.do("PATCH", v3+"domains/"+id, tc.admin, map[string]any{"domain": map[string]any{"name": "default"}}))
	tc.fault(404, tc.do("PATCH", v3+"domains/"+newID(), tc.admin, map[string]any{"domain": map[string]any{"name": "x"}}))
	if l := list(t, tc.must(200, tc.do("GET", v3+"domains?enabled=false", tc.admin, nil)), "domains"); len(l) != 0 {
		t.Errorf("?enabled=false %v", l)
	}
	// Delete only when disabled.
	tc.fault(403, tc.do("DELETE", v3+"domains/"+id, tc.admin, nil))
	tc.must(200, tc.do("PATCH", v3+"domains/"+id, tc.admin, map[string]any{"domain": map[string]any{"enabled": false}}))
	if l := list(t, tc.must(200, tc.do("GET", v3+"domains?enabled=false", tc.admin, nil)), "domains"); len(l) != 1 {
		t.Errorf("?enabled=false %v", l)
	}
	tc.must(204, tc.do("DELETE", v3+"domains/"+id, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"domains/"+id, tc.admin, nil))
	tc.fault(404, tc.do("DELETE", v3+"domains/"+id, tc.admin, nil))
}

func TestDomainDeleteCascades(t *testing.T) {
	tc := newTestCloud(t)
	before := tc.counts()
	dom := tc.mkDomain("Doomed")
	top := tc.mkProject("top", dom, "")
	child := tc.mkProject("child", "", top)
	tc.mkProject("grandchild", "", child)
	tc.must(201, tc.do("PUT", v3+"projects/"+top+"/tags/t1", tc.admin, nil))
	uid := tc.mkUser("dweller", dom, "dpw")
	gid := tc.mkGroup("locals", dom)
	tc.must(204, tc.do("PUT", v3+"groups/"+gid+"/users/"+uid, tc.admin, nil))
	role := obj(t, tc.must(201, tc.do("POST", v3+"roles", tc.admin, map[string]any{"role": map[string]any{"name": "local", "domain_id": dom}})), "role")["id"].(string)
	tc.grant("projects/" + child + "/users/" + uid + "/roles/" + tc.roleID("member"))
	tc.grant("projects/" + top + "/groups/" + gid + "/roles/" + role)
	tc.grant("domains/" + dom + "/users/" + uid + "/roles/" + tc.roleID("admin"))
	tc.grant("OS-INHERIT/domains/" + dom + "/users/" + uid + "/roles/" + tc.roleID("reader") + "/inherited_to_projects")
	// Someone outside the domain with a role inside it.
	tc.grant("projects/" + top + "/users/" + tc.userID("demo") + "/roles/" + tc.roleID("member"))
	// And the other way round: someone of the domain with a role outside.
	tc.grant("projects/" + tc.projectID("demo") + "/users/" + uid + "/roles/" + tc.roleID("reader"))
	// A Default user whose default project is in the domain.
	outsider := tc.mkUser("outsider", "default", "opw")
	tc.must(200, tc.do("PATCH", v3+"users/"+outsider, tc.admin, map[string]any{"user": map[string]any{"default_project_id": child}}))
	tok, _ := tc.mustToken(pwAuth(map[string]any{"id": uid}, "dpw", projectScope(child)))
	tc.must(200, tc.do("PATCH", v3+"domains/"+dom, tc.admin, map[string]any{"domain": map[string]any{"enabled": false}}))
	tc.must(204, tc.do("DELETE", v3+"domains/"+dom, tc.admin, nil))
	after := tc.counts()
	after["revocation_events"] = before["revocation_events"]
	after["users"]-- // the outsider
	if !sameCounts(before, after) {
		t.Errorf("domain delete left rows: before %v, after %v", before, after)
	}
	u := obj(t, tc.must(200, tc.do("GET", v3+"users/"+outsider, tc.admin, nil)), "user")
	if _, ok := u["default_project_id"]; ok {
		t.Errorf("default_project_id %v of a deleted project kept", u["default_project_id"])
	}
	tc.fault(404, tc.validate(tok))
	tc.fault(404, tc.do("GET", v3+"projects/"+top, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"users/"+uid, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"groups/"+gid, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"roles/"+role, tc.admin, nil))
	// The name is free again.
	tc.mkDomain("Doomed")
}

func TestProjectsCRUD(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(201, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{
		"name": "web", "description": "the web tier", "cost_center": "42", "tags": []string{"prod", "eu"}}}))
	p := obj(t, res, "project")
	web := p["id"].(string)
	want := map[string]any{"name": "web", "description": "the web tier", "domain_id": "default", "parent_id": "default",
		"enabled": true, "is_domain": false, "cost_center": "42"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("created %s = %v, want %v", k, p[k], v)
		}
	}
	if !sameSet(strList(p["tags"]), []string{"prod", "eu"}) {
		t.Errorf("tags %v", p["tags"])
	}
	got := obj(t, tc.must(200, tc.do("GET", v3+"projects/"+web, tc.admin, nil)), "project")
	if got["cost_center"] != "42" || !sameSet(strList(got["tags"]), []string{"prod", "eu"}) {
		t.Errorf("GET %v", got)
	}
	// Hierarchy.
	app := obj(t, tc.must(201, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "app", "parent_id": web}})), "project")
	if app["parent_id"] != web || app["domain_id"] != "default" {
		t.Errorf("child %v", app)
	}
	appID := app["id"].(string)
	leaf := tc.mkProject("leaf", "", appID)
	top := obj(t, tc.must(200, tc.do("GET", v3+"projects/"+web+"?subtree_as_ids", tc.admin, nil)), "project")
	if !sameSet(strList(top["subtree"]), []string{appID, leaf}) {
		t.Errorf("subtree %v", top["subtree"])
	}
	bottom := obj(t, tc.must(200, tc.do("GET", v3+"projects/"+leaf+"?parents_as_ids", tc.admin, nil)), "project")
	if !slices.Equal(strList(bottom["parents"]), []string{appID, web}) {
		t.Errorf("parents %v", bottom["parents"])
	}
	if l := list(t, tc.must(200, tc.do("GET", v3+"projects?parent_id="+web, tc.admin, nil)), "projects"); len(l) != 1 || l[0]["id"] != appID {
		t.Errorf("?parent_id %v", l)
	}
	if names := field(list(t, tc.must(200, tc.do("GET", v3+"projects?parent_id=default", tc.admin, nil)), "projects"), "name"); !slices.Equal(names, []string{"admin", "demo", "service", "web"}) {
		t.Errorf("?parent_id=default %v", names)
	}
	// Parent in another domain, or unknown.
	other := tc.mkDomain("Other")
	tc.fault(400, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "x", "parent_id": web, "domain_id": other}}))
	tc.fault(404, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "x", "parent_id": newID()}}))
	tc.fault(400, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "x", "domain_id": newID()}}))
	tc.fault(400, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "x", "is_domain": true}}))
	// Names are unique in a domain, whatever the case, and only there.
	tc.fault(409, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "WEB"}}))
	tc.mkProject("web", other, "")
	if l := list(t, tc.must(200, tc.do("GET", v3+"projects?name=web", tc.admin, nil)), "projects"); len(l) != 2 {
		t.Errorf("?name=web %v", l)
	}
	if l := list(t, tc.must(200, tc.do("GET", v3+"projects?name=web&domain_id="+other, tc.admin, nil)), "projects"); len(l) != 1 || l[0]["domain_id"] != other {
		t.Errorf("?name&domain_id %v", l)
	}
	// Update.
	up := obj(t, tc.must(200, tc.do("PATCH", v3+"projects/"+web, tc.admin, map[string]any{"project": map[string]any{
		"description": "new", "owner": "ops", "parent_id": "default", "domain_id": "default"}})), "project")
	if up["description"] != "new" || up["owner"] != "ops" || up["cost_center"] != "42" || up["name"] != "web" {
		t.Errorf("PATCH %v", up)
	}
	tc.fault(400, tc.do("PATCH", v3+"projects/"+web, tc.admin, map[string]any{"project": map[string]any{"parent_id": appID}}))
	tc.fault(400, tc.do("PATCH", v3+"projects/"+web, tc.admin, map[string]any{"project": map[string]any{"domain_id": other}}))
	tc.fault(409, tc.do("PATCH", v3+"projects/"+web, tc.admin, map[string]any{"project": map[string]any{"name": "demo"}}))
	// Disable, filter.
	tc.must(200, tc.do("PATCH", v3+"projects/"+leaf, tc.admin, map[string]any{"project": map[string]any{"enabled": false}}))
	if l := list(t, tc.must(200, tc.do("GET", v3+"projects?enabled=false", tc.admin, nil)), "projects"); len(l) != 1 || l[0]["id"] != leaf {
		t.Errorf("?enabled=false %v", l)
	}
	// Deleting: leaves first.
	tc.fault(403, tc.do("DELETE", v3+"projects/"+web, tc.admin, nil))
	tc.fault(403, tc.do("DELETE", v3+"projects/"+appID, tc.admin, nil))
	tc.must(204, tc.do("DELETE", v3+"projects/"+leaf, tc.admin, nil))
	tc.must(204, tc.do("DELETE", v3+"projects/"+appID, tc.admin, nil))
	tc.must(204, tc.do("DELETE", v3+"projects/"+web, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"projects/"+web, tc.admin, nil))
	tc.fault(404, tc.do("DELETE", v3+"projects/"+web, tc.admin, nil))
	var n int
	tc.db.QueryRow(`SELECT count(*) FROM project_tags WHERE project_id=?`, web).Scan(&n)
	if n != 0 {
		t.Errorf("%d tags left of a deleted project", n)
	}
}

func TestProjectHierarchyRules(t *testing.T) {
	tc := newTestCloud(t)
	parent := tc.mkProject("parent", "", "")
	child := tc.mkProject("child", "", parent)
	// A project with enabled children cannot be disabled.
	tc.fault(403, tc.do("PATCH", v3+"projects/"+parent, tc.admin, map[string]any{"project": map[string]any{"enabled": false}}))
	tc.must(200, tc.do("PATCH", v3+"projects/"+child, tc.admin, map[string]any{"project": map[string]any{"enabled": false}}))
	tc.must(200, tc.do("PATCH", v3+"projects/"+parent, tc.admin, map[string]any{"project": map[string]any{"enabled": false}}))
	// Nor enabled under a disabled parent; nor made under one.
	tc.fault(403, tc.do("PATCH", v3+"projects/"+child, tc.admin, map[string]any{"project": map[string]any{"enabled": true}}))
	tc.fault(400, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "late", "parent_id": child}}))
	tc.must(200, tc.do("PATCH", v3+"projects/"+parent, tc.admin, map[string]any{"project": map[string]any{"enabled": true}}))
	tc.must(200, tc.do("PATCH", v3+"projects/"+child, tc.admin, map[string]any{"project": map[string]any{"enabled": true}}))
	// Trees are at most maxProjectDepth deep.
	id := child
	for depth := 3; depth <= maxProjectDepth; depth++ {
		id = tc.mkProject(fmt.Sprintf("level%d", depth), "", id)
	}
	tc.fault(403, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": "too-deep", "parent_id": id}}))
}

func TestProjectTags(t *testing.T) {
	tc := newTestCloud(t)
	p := tc.mkProject("tagged", "", "")
	tags := v3 + "projects/" + p + "/tags"
	if got := strList(tc.must(200, tc.do("GET", tags, tc.admin, nil)).JSON(t)["tags"]); len(got) != 0 {
		t.Errorf("new project tags %v", got)
	}
	res := tc.must(200, tc.do("PUT", tags, tc.admin, map[string]any{"tags": []string{"a", "b", "c"}}))
	if got := strList(res.JSON(t)["tags"]); !sameSet(got, []string{"a", "b", "c"}) {
		t.Errorf("PUT tags %v", got)
	}
	res = tc.must(201, tc.do("PUT", tags+"/d", tc.admin, nil))
	if loc := res.Header.Get("Location"); !strings.HasSuffix(loc, "/projects/"+p+"/tags/d") {
		t.Errorf("Location %q", loc)
	}
	tc.must(204, tc.do("GET", tags+"/d", tc.admin, nil))
	tc.must(204, tc.do("HEAD", tags+"/a", tc.admin, nil))
	tc.fault(404, tc.do("GET", tags+"/zz", tc.admin, nil))
	tc.must(404, tc.do("HEAD", tags+"/zz", tc.admin, nil))
	tc.fault(400, tc.do("PUT", tags+"/d", tc.admin, nil)) // already there
	tc.fault(400, tc.do("PUT", tags+"/x,y", tc.admin, nil))
	tc.fault(400, tc.do("PUT", tags, tc.admin, map[string]any{"tags": []string{"dup", "dup"}}))
	tc.fault(400, tc.do("PUT", tags, tc.admin, map[string]any{"tags": []string{""}}))
	tc.fault(400, tc.do("PUT", tags, tc.admin, map[string]any{"tags": "a"}))
	many := []string{}
	for i := 0; i < 81; i++ {
		many = append(many, fmt.Sprint("t", i))
	}
	tc.fault(400, tc.do("PUT", tags, tc.admin, map[string]any{"tags": many}))
	if got := strList(tc.must(200, tc.do("GET", tags, tc.admin, nil)).JSON(t)["tags"]); !sameSet(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("tags after refused changes %v", got)
	}
	tc.must(204, tc.do("DELETE", tags+"/a", tc.admin, nil))
	tc.fault(404, tc.do("DELETE", tags+"/a", tc.admin, nil))
	if got := strList(obj(t, tc.must(200, tc.do("GET", v3+"projects/"+p, tc.admin, nil)), "project")["tags"]); !sameSet(got, []string{"b", "c", "d"}) {
		t.Errorf("project tags %v", got)
	}
	tc.must(204, tc.do("DELETE", tags, tc.admin, nil))
	if got := strList(tc.must(200, tc.do("GET", tags, tc.admin, nil)).JSON(t)["tags"]); len(got) != 0 {
		t.Errorf("tags after DELETE %v", got)
	}
	// PATCH tags replaces them; a PATCH without tags keeps them.
	tc.must(200, tc.do("PATCH", v3+"projects/"+p, tc.admin, map[string]any{"project": map[string]any{"tags": []string{"x"}}}))
	tc.must(200, tc.do("PATCH", v3+"projects/"+p, tc.admin, map[string]any{"project": map[string]any{"description": "d"}}))
	if got := strList(tc.must(200, tc.do("GET", tags, tc.admin, nil)).JSON(t)["tags"]); !slices.Equal(got, []string{"x"}) {
		t.Errorf("tags after PATCH %v", got)
	}
	tc.fault(404, tc.do("GET", v3+"projects/"+newID()+"/tags", tc.admin, nil))
}

func TestProjectTagFilters(t *testing.T) {
	tc := newTestCloud(t)
	mk := func(name string, tags ...string) {
		tc.must(201, tc.do("POST", v3+"projects", tc.admin, map[string]any{"project": map[string]any{"name": name, "tags": tags}}))
	}
	mk("ab", "a", "b")
	mk("a", "a")
	mk("bc", "b", "c")
	mk("none")
	names := func(q string) []string {
		t.Helper()
		l := list(t, tc.must(200, tc.do("GET", v3+"projects?"+q, tc.admin, nil)), "projects")
		out := []string{}
		for _, p := range l {
			if n := p["name"].(string); n != "admin" && n != "demo" && n != "service" {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	cases := map[string][]string{
		"tags=a":                {"a", "ab"},
		"tags=a,b":              {"ab"},
		"tags-any=a,c":          {"a", "ab", "bc"},
		"not-tags=a,b":          {"a", "bc", "none"},
		"not-tags-any=a,c":      {"none"},
		"tags=b&not-tags-any=c": {"ab"},
		"tags=zzz":              {},
	}
	for q, want := range cases {
		if got := names(q); !slices.Equal(got, want) {
			t.Errorf("?%s: %v, want %v", q, got, want)
		}
	}
}

func TestUsersCRUD(t *testing.T) {
	tc := newTestCloud(t)
	demoProject := tc.projectID("demo")
	res := tc.must(201, tc.do("POST", v3+"users", tc.admin, map[string]any{"user": map[string]any{
		"name": "alice", "password": "apw", "email": "alice@example.com", "description": "Alice",
		"default_project_id": demoProject, "options": map[string]any{"ignore_lockout_failure_attempts": true}}}))
	u := obj(t, res, "user")
	id := u["id"].(string)
	want := map[string]any{"name": "alice", "domain_id": "default", "enabled": true, "email": "alice@example.com",
		"description": "Alice", "default_project_id": demoProject, "password_expires_at": nil}
	for k, v := range want {
		if u[k] != v {
			t.Errorf("created %s = %v, want %v", k, u[k], v)
		}
	}
	if _, ok := u["password"]; ok {
		t.Errorf("password returned")
	}
	if o, _ := u["options"].(map[string]any); o["ignore_lockout_failure_attempts"] != true {
		t.Errorf("options %v", u["options"])
	}
	got := obj(t, tc.must(200, tc.do("GET", v3+"users/"+id, tc.admin, nil)), "user")
	for k, v := range want {
		if got[k] != v {
			t.Errorf("GET %s = %v, want %v", k, got[k], v)
		}
	}
	l := list(t, tc.must(200, tc.do("GET", v3+"users?name=alice", tc.admin, nil)), "users")
	if len(l) != 1 || l[0]["email"] != "alice@example.com" {
		t.Errorf("?name %v", l)
	}
	if _, ok := l[0]["password"]; ok {
		t.Errorf("password listed")
	}
	// The default project scopes a token asked without scope, once the
	// user has a role there.
	tc.grant("projects/" + demoProject + "/users/" + id + "/roles/" + tc.roleID("reader"))
	_, tok := tc.mustToken(pwAuth(map[string]any{"id": id}, "apw", nil))
	if tok["project"].(map[string]any)["id"] != demoProject {
		t.Errorf("token scope %v", tok["project"])
	}
	// Names are unique in a domain, whatever the case.
	before := tc.count("users")
	tc.fault(409, tc.do("POST", v3+"users", tc.admin, map[string]any{"user": map[string]any{"name": "ALICE"}}))
	if tc.count("users") != before {
		t.Errorf("refused create left a row")
	}
	other := tc.mkDomain("Other")
	tc.mkUser("alice", other, "")
	if l := list(t, tc.must(200, tc.do("GET", v3+"users?domain_id="+other, tc.admin, nil)), "users"); len(l) != 1 || l[0]["domain_id"] != other {
		t.Errorf("?domain_id %v", l)
	}
	// Update: extras merge, null clears the default project.
	up := obj(t, tc.must(200, tc.do("PATCH", v3+"users/"+id, tc.admin, map[string]any{"user": map[string]any{
		"email": "a@example.org", "phone": "123", "default_project_id": nil}})), "user")
	if up["email"] != "a@example.org" || up["phone"] != "123" || up["description"] != "Alice" {
		t.Errorf("PATCH %v", up)
	}
	if _, ok := up["default_project_id"]; ok {
		t.Errorf("default_project_id not cleared: %v", up["default_project_id"])
	}
	tc.fault(400, tc.do("PATCH", v3+"users/"+id, tc.admin, map[string]any{"user": map[string]any{"default_project_id": newID()}}))
	tc.fault(400, tc.do("POST", v3+"users", tc.admin, map[string]any{"user": map[string]any{"name": "bob", "default_project_id": newID()}}))
	tc.fault(400, tc.do("PATCH", v3+"users/"+id, tc.admin, map[string]any{"user": map[string]any{"domain_id": other}}))
	tc.fault(409, tc.do("PATCH", v3+"users/"+id, tc.admin, map[string]any{"user": map[string]any{"name": "demo"}}))
	tc.fault(404, tc.do("PATCH", v3+"users/"+newID(), tc.admin, map[string]any{"user": map[string]any{"name": "x"}}))
	// Disabled users are listed as such.
	tc.must(200, tc.do("PATCH", v3+"users/"+id, tc.admin, map[string]any{"user": map[string]any{"enabled": false}}))
	if l := list(t, tc.must(200, tc.do("GET", v3+"users?enabled=false", tc.admin, nil)), "users"); len(l) != 1 || l[0]["id"] != id {
		t.Errorf("?enabled=false %v", l)
	}
	// Delete removes memberships and grants.
	g := tc.mkGroup("g", "default")
	tc.must(204, tc.do("PUT", v3+"groups/"+g+"/users/"+id, tc.admin, nil))
	tc.must(204, tc.do("DELETE", v3+"users/"+id, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"users/"+id, tc.admin, nil))
	tc.fault(404, tc.do("DELETE", v3+"users/"+id, tc.admin, nil))
	var n int
	tc.db.QueryRow(`SELECT (SELECT count(*) FROM user_groups WHERE user_id=?1) + (SELECT count(*) FROM assignments WHERE actor_id=?1)`, id).Scan(&n)
	if n != 0 {
		t.Errorf("%d memberships or grants left of a deleted user", n)
	}
	// Deleting a project clears it as a default project.
	p := tc.mkProject("home", "", "")
	bob := obj(t, tc.must(201, tc.do("POST", v3+"users", tc.admin, map[string]any{"user": map[string]any{"name": "bob", "default_project_id": p}})), "user")
	tc.must(204, tc.do("DELETE", v3+"projects/"+p, tc.admin, nil))
	if got := obj(t, tc.must(200, tc.do("GET", v3+"users/"+bob["id"].(string), tc.admin, nil)), "user"); got["default_project_id"] != nil {
		t.Errorf("default_project_id %v of a deleted project", got["default_project_id"])
	}
}

func TestGroupsAndMembership(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(201, tc.do("POST", v3+"groups", tc.admin, map[string]any{"group": map[string]any{"name": "ops", "description": "operators"}}))
	g := obj(t, res, "group")
	gid := g["id"].(string)
	if g["domain_id"] != "default" || g["description"] != "operators" {
		t.Errorf("created %v", g)
	}
	tc.fault(409, tc.do("POST", v3+"groups", tc.admin, map[string]any{"group": map[string]any{"name": "OPS"}}))
	up := obj(t, tc.must(200, tc.do("PATCH", v3+"groups/"+gid, tc.admin, map[string]any{"group": map[string]any{"description": "ops people"}})), "group")
	if up["description"] != "ops people" || up["name"] != "ops" {
		t.Errorf("PATCH %v", up)
	}
	if l := list(t, tc.must(200, tc.do("GET", v3+"groups?name=ops", tc.admin, nil)), "groups"); len(l) != 1 {
		t.Errorf("?name %v", l)
	}
	demoID := tc.userID("demo")
	members := v3 + "groups/" + gid + "/users/"
	tc.fault(404, tc.do("GET", members+demoID, tc.admin, nil))
	tc.must(204, tc.do("PUT", members+demoID, tc.admin, nil))
	tc.must(204, tc.do("PUT", members+demoID, tc.admin, nil)) // idempotent
	tc.must(204, tc.do("HEAD", members+demoID, tc.admin, nil))
	tc.must(204, tc.do("GET", members+demoID, tc.admin, nil))
	if l := list(t, tc.must(200, tc.do("GET", v3+"groups/"+gid+"/users", tc.admin, nil)), "users"); len(l) != 1 || l[0]["id"] != demoID {
		t.Errorf("group users %v", l)
	}
	if l := list(t, tc.must(200, tc.do("GET", v3+"users/"+demoID+"/groups", tc.demo, nil)), "groups"); len(l) != 1 || l[0]["id"] != gid {
		t.Errorf("user groups %v", l)
	}
	tc.fault(404, tc.do("PUT", members+newID(), tc.admin, nil))
	tc.fault(404, tc.do("PUT", v3+"groups/"+newID()+"/users/"+demoID, tc.admin, nil))
	// A group's roles reach its members.
	p := tc.mkProject("opsproj", "", "")
	tc.grant("projects/" + p + "/groups/" + gid + "/roles/" + tc.roleID("member"))
	tok, _ := tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword, projectScope(p)))
	tc.must(204, tc.do("DELETE", members+demoID, tc.admin, nil))
	tc.fault(404, tc.do("DELETE", members+demoID, tc.admin, nil))
	tc.fault(404, tc.validate(tok))
	// Deleting the group removes its grants and memberships.
	tc.must(204, tc.do("PUT", members+demoID, tc.admin, nil))
	tc.must(204, tc.do("DELETE", v3+"groups/"+gid, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"groups/"+gid, tc.admin, nil))
	tc.fault(404, tc.do("DELETE", v3+"groups/"+gid, tc.admin, nil))
	var n int
	tc.db.QueryRow(`SELECT (SELECT count(*) FROM user_groups WHERE group_id=?1) + (SELECT count(*) FROM assignments WHERE actor_id=?1)`, gid).Scan(&n)
	if n != 0 {
		t.Errorf("%d memberships or grants left of a deleted group", n)
	}
}

func TestRolesAndImplied(t *testing.T) {
	tc := newTestCloud(t)
	res := tc.must(201, tc.do("POST", v3+"roles", tc.admin, map[string]any{"role": map[string]any{"name": "operator", "description": "runs things"}}))
	op := obj(t, res, "role")
	opID := op["id"].(string)
	if op["domain_id"] != nil || op["description"] != "runs things" {
		t.Errorf("created %v", op)
	}
	tc.fault(409, tc.do("POST", v3+"roles", tc.admin, map[string]any{"role": map[string]any{"name": "Operator"}}))
	if l := list(t, tc.must(200, tc.do("GET", v3+"roles?name=operator", tc.admin, nil)), "roles"); len(l) != 1 || l[0]["id"] != opID {
		t.Errorf("?name %v", l)
	}
	if names := field(list(t, tc.must(200, tc.do("GET", v3+"roles", tc.admin, nil)), "roles"), "name"); !slices.Equal(names, []string{"admin", "member", "operator", "reader", "service"}) {
		t.Errorf("roles %v", names)
	}
	up := obj(t, tc.must(200, tc.do("PATCH", v3+"roles/"+opID, tc.admin, map[string]any{"role": map[string]any{"description": "d"}})), "role")
	if up["description"] != "d" || up["name"] != "operator" {
		t.Errorf("PATCH %v", up)
	}
	// Domain-specific roles: same name, another namespace.
	dom := tc.mkDomain("D")
	dr := obj(t, tc.must(201, tc.do("POST", v3+"roles", tc.admin, map[string]any{"role": map[string]any{"name": "operator", "domain_id": dom}})), "role")
	if dr["domain_id"] != dom {
		t.Errorf("domain role %v", dr)
	}
	if l := list(t, tc.must(200, tc.do("GET", v3+"roles?domain_id="+dom, tc.admin, nil)), "roles"); len(l) != 1 {
		t.Errorf("?domain_id %v", l)
	}
	tc.fault(400, tc.do("POST", v3+"roles", tc.admin, map[string]any{"role": map[string]any{"name": "x", "domain_id": newID()}}))

	// Implied roles.
	obs := tc.mkRole("observer")
	imp := v3 + "roles/" + opID + "/implies/" + obs
	ri := obj(t, tc.must(201, tc.do("PUT", imp, tc.admin, nil)), "role_inference")
	if ri["prior_role"].(map[string]any)["id"] != opID || ri["implies"].(map[string]any)["id"] != obs {
		t.Errorf("inference %v", ri)
	}
	tc.must(200, tc.do("GET", imp, tc.admin, nil))
	tc.must(204, tc.do("HEAD", imp, tc.admin, nil))
	l := obj(t, tc.must(200, tc.do("GET", v3+"roles/"+opID+"/implies", tc.admin, nil)), "role_inference")
	if imps := l["implies"].([]any); len(imps) != 1 || imps[0].(map[string]any)["id"] != obs {
		t.Errorf("implies %v", l)
	}
	infs := list(t, tc.must(200, tc.do("GET", v3+"role_inferences", tc.admin, nil)), "role_inferences")
	priors := []string{}
	for _, inf := range infs {
		priors = append(priors, inf["prior_role"].(map[string]any)["name"].(string))
	}
	if !sameSet(priors, []string{"admin", "member", "operator"}) {
		t.Errorf("role_inferences priors %v", priors)
	}
	// Cycles, self-implication, implying admin and global implying
	// domain-specific are refused.
	before := tc.count("implied_roles")
	tc.fault(400, tc.do("PUT", v3+"roles/"+obs+"/implies/"+opID, tc.admin, nil))
	tc.fault(400, tc.do("PUT", v3+"roles/"+opID+"/implies/"+opID, tc.admin, nil))
	tc.fault(400, tc.do("PUT", v3+"roles/"+tc.roleID("reader")+"/implies/"+tc.roleID("member"), tc.admin, nil))
	tc.fault(403, tc.do("PUT", v3+"roles/"+tc.roleID("reader")+"/implies/"+tc.roleID("admin"), tc.admin, nil))
	tc.fault(403, tc.do("PUT", v3+"roles/"+opID+"/implies/"+tc.roleID("admin"), tc.admin, nil))
	tc.fault(403, tc.do("PUT", v3+"roles/"+opID+"/implies/"+dr["id"].(string), tc.admin, nil))
	tc.fault(404, tc.do("PUT", v3+"roles/"+opID+"/implies/"+newID(), tc.admin, nil))
	if n := tc.count("implied_roles"); n != before {
		t.Errorf("refused inferences left rows: %d, had %d", n, before)
	}
	// The implied role is in tokens.
	pid := tc.mkProject("ip", "", "")
	_, tok := tc.newUserToken("impl", "operator", pid)
	if got := roleNames(obj(t, tc.must(200, tc.validate(tok)), "token")); !slices.Equal(got, []string{"observer", "operator"}) {
		t.Errorf("token roles %v", got)
	}
	tc.must(204, tc.do("DELETE", imp, tc.admin, nil))
	tc.fault(404, tc.do("DELETE", imp, tc.admin, nil))
	tc.fault(404, tc.do("GET", imp, tc.admin, nil))
	if got := roleNames(obj(t, tc.must(200, tc.validate(tok)), "token")); !slices.Equal(got, []string{"operator"}) {
		t.Errorf("token roles after removing the inference %v", got)
	}
	// Deleting a role removes its grants and inferences.
	tc.must(201, tc.do("PUT", imp, tc.admin, nil))
	tc.must(204, tc.do("DELETE", v3+"roles/"+obs, tc.admin, nil))
	tc.fault(404, tc.do("GET", v3+"roles/"+obs, tc.admin, nil))
	tc.fault(404, tc.do("DELETE", v3+"roles/"+obs, tc.admin, nil))
	var n int
	tc.db.QueryRow(`SELECT (SELECT count(*) FROM implied_roles WHERE implied_role_id=?1) + (SELECT count(*) FROM assignments WHERE role_id=?1)`, obs).Scan(&n)
	if n != 0 {
		t.Errorf("%d rows left of a deleted role", n)
	}
}

func TestGrants(t *testing.T) {
	tc := newTestCloud(t)
	uid := tc.mkUser("grantee", "default", "gpw")
	gid := tc.mkGroup("grantees", "default")
	pid := tc.mkProject("gp", "", "")
	role := tc.roleID("member")
	for _, base := range []string{
		"projects/" + pid + "/users/" + uid, "projects/" + pid + "/groups/" + gid,
		"domains/default/users/" + uid, "domains/default/groups/" + gid,
		"system/users/" + uid, "system/groups/" + gid,
	} {
		t.Run(base[:strings.Index(base, "/")], func(t *testing.T) {
			one := v3 + base + "/roles/" + role
			tc.fault(404, tc.do("GET", one, tc.admin, nil))
			tc.must(204, tc.do("PUT", one, tc.admin, nil))
			tc.must(204, tc.do("PUT", one, tc.admin, nil))
			tc.must(204, tc.do("HEAD", one, tc.admin, nil))
			tc.must(204, tc.do("GET", one, tc.admin, nil))
			if l := list(t, tc.must(200, tc.do("GET", v3+base+"/roles", tc.admin, nil)), "roles"); len(l) != 1 || l[0]["id"] != role {
				t.Errorf("granted roles %v", l)
			}
			tc.must(204, tc.do("DELETE", one, tc.admin, nil))
			tc.fault(404, tc.do("DELETE", one, tc.admin, nil))
			tc.must(404, tc.do("HEAD", one, tc.admin, nil))
			tc.fault(404, tc.do("PUT", v3+base+"/roles/"+newID(), tc.admin, nil))
		})
	}
	before := tc.count("assignments")
	tc.fault(404, tc.do("PUT", v3+"projects/"+newID()+"/users/"+uid+"/roles/"+role, tc.admin, nil))
	tc.fault(404, tc.do("PUT", v3+"projects/"+pid+"/users/"+newID()+"/roles/"+role, tc.admin, nil))
	tc.fault(404, tc.do("PUT", v3+"domains/"+newID()+"/groups/"+gid+"/roles/"+role, tc.admin, nil))
	tc.fault(404, tc.do("PUT", v3+"system/groups/"+newID()+"/roles/"+role, tc.admin, nil))
	if tc.count("assignments") != before {
		t.Errorf("refused grants left rows")
	}
}

func TestInheritedGrants(t *testing.T) {
	tc := newTestCloud(t)
	dom := tc.mkDomain("Inh")
	uid := tc.mkUser("heir", dom, "hpw")
	top := tc.mkProject("top", dom, "")
	mid := tc.mkProject("mid", "", top)
	low := tc.mkProject("low", "", mid)
	reader, member := tc.roleID("reader"), tc.roleID("member")
	scoped := func(sc map[string]any) []string {
		t.Helper()
		res := tc.issue(pwAuth(map[string]any{"id": uid}, "hpw", sc))
		if res.StatusCode == 401 {
			return nil
		}
		return roleNames(obj(t, tc.must(201, res), "token"))
	}
	// Inherited on the domain: every project of it, not the domain.
	path := v3 + "OS-INHERIT/domains/" + dom + "/users/" + uid + "/roles/" + reader + "/inherited_to_projects"
	tc.must(204, tc.do("PUT", path, tc.admin, nil))
	tc.must(204, tc.do("HEAD", path, tc.admin, nil))
	tc.must(204, tc.do("GET", path, tc.admin, nil))
	if l := list(t, tc.must(200, tc.do("GET", v3+"OS-INHERIT/domains/"+dom+"/users/"+uid+"/roles/inherited_to_projects", tc.admin, nil)), "roles"); len(l) != 1 {
		t.Errorf("inherited roles %v", l)
	}
	// Not a direct grant.
	tc.fault(404, tc.do("GET", v3+"domains/"+dom+"/users/"+uid+"/roles/"+reader, tc.admin, nil))
	for _, p := range []string{top, mid, low} {
		if got := scoped(projectScope(p)); !slices.Equal(got, []string{"reader"}) {
			t.Errorf("roles on %s: %v", p, got)
		}
	}
	if got := scoped(domainScope(dom)); got != nil {
		t.Errorf("inherited grant gives roles on the domain itself: %v", got)
	}
	tc.must(204, tc.do("DELETE", path, tc.admin, nil))
	if got := scoped(projectScope(top)); got != nil {
		t.Errorf("roles after revoking the inherited grant: %v", got)
	}
	// Inherited on a project: its subtree, not itself.
	tc.must(204, tc.do("PUT", v3+"OS-INHERIT/projects/"+mid+"/users/"+uid+"/roles/"+member+"/inherited_to_projects", tc.admin, nil))
	if got := scoped(projectScope(mid)); got != nil {
		t.Errorf("inherited grant gives roles on the project itself: %v", got)
	}
	if got := scoped(projectScope(low)); !slices.Equal(got, []string{"member", "reader"}) {
		t.Errorf("roles on the child: %v", got)
	}
	if got := scoped(projectScope(top)); got != nil {
		t.Errorf("inherited grant reaches the parent: %v", got)
	}
	// Through a group too.
	gid := tc.mkGroup("heirs", dom)
	tc.must(204, tc.do("PUT", v3+"groups/"+gid+"/users/"+uid, tc.admin, nil))
	tc.must(204, tc.do("PUT", v3+"OS-INHERIT/domains/"+dom+"/groups/"+gid+"/roles/"+tc.roleID("admin")+"/inherited_to_projects", tc.admin, nil))
	if got := scoped(projectScope(top)); !slices.Equal(got, []string{"admin", "member", "reader"}) {
		t.Errorf("roles through the group: %v", got)
	}
	// No OS-INHERIT form for the system.
	tc.fault(404, tc.do("PUT", v3+"OS-INHERIT/system/users/"+uid+"/roles/"+reader+"/inherited_to_projects", tc.admin, nil))
}

// assignmentKeys renders role assignments as "actor:id role scope:id"
// strings, with "<-prior" for implied roles and "^" for inherited ones.
func assignmentKeys(items []map[string]any, names map[string]string) []string {
	n := func(id any) string {
		if s, ok := names[fmt.Sprint(id)]; ok {
			return s
		}
		return fmt.Sprint(id)
	}
	out := []string{}
	for _, a := range items {
		var actor string
		if u, ok := a["user"].(map[string]any); ok {
			actor = "user:" + n(u["id"])
		} else {
			actor = "group:" + n(a["group"].(map[string]any)["id"])
		}
		var scope string
		sc := a["scope"].(map[string]any)
		switch {
		case sc["project"] != nil:
			scope = "project:" + n(sc["project"].(map[string]any)["id"])
		case sc["domain"] != nil:
			scope = "domain:" + n(sc["domain"].(map[string]any)["id"])
		default:
			scope = "system"
		}
		if sc["OS-INHERIT:inherited_to"] == "projects" {
			scope += "^"
		}
		role := n(a["role"].(map[string]any)["id"])
		if pr, ok := a["prior_role"].(map[string]any); ok {
			role += "<-" + n(pr["id"])
		}
		out = append(out, actor+" "+role+" "+scope)
	}
	slices.Sort(out)
	return out
}

func TestRoleAssignments(t *testing.T) {
	tc := newTestCloud(t)
	uid := tc.mkUser("ra", "default", "rapw")
	other := tc.mkUser("ra2", "default", "ra2pw")
	gid := tc.mkGroup("rag", "default")
	tc.must(204, tc.do("PUT", v3+"groups/"+gid+"/users/"+uid, tc.admin, nil))
	top := tc.mkProject("ratop", "", "")
	kid := tc.mkProject("rakid", "", top)
	names := map[string]string{uid: "ra", other: "ra2", gid: "rag", top: "ratop", kid: "rakid", "default": "default"}
	for _, r := range []string{"admin", "member", "reader"} {
		names[tc.roleID(r)] = r
	}
	tc.grant("projects/" + top + "/users/" + uid + "/roles/" + tc.roleID("member"))
	tc.grant("projects/" + top + "/groups/" + gid + "/roles/" + tc.roleID("admin"))
	tc.grant("projects/" + kid + "/users/" + other + "/roles/" + tc.roleID("reader"))
	tc.grant("domains/default/users/" + uid + "/roles/" + tc.roleID("reader"))
	tc.grant("OS-INHERIT/projects/" + top + "/users/" + other + "/roles/" + tc.roleID("member") + "/inherited_to_projects")
	tc.grant("system/users/" + uid + "/roles/" + tc.roleID("reader"))
	get := func(q string) []string {
		t.Helper()
		return assignmentKeys(list(t, tc.must(200, tc.do("GET", v3+"role_assignments?"+q, tc.admin, nil)), "role_assignments"), names)
	}
	cases := map[string][]string{
		"user.id=" + uid:          {"user:ra member project:ratop", "user:ra reader domain:default", "user:ra reader system"},
		"group.id=" + gid:         {"group:rag admin project:ratop"},
		"scope.project.id=" + top: {"group:rag admin project:ratop", "user:ra member project:ratop", "user:ra2 member project:ratop^"},
		"scope.project.id=" + kid: {"user:ra2 reader project:rakid"},
		"scope.project.id=" + top + "&include_subtree=true": {"group:rag admin project:ratop", "user:ra member project:ratop",
			"user:ra2 member project:ratop^", "user:ra2 reader project:rakid"},
		"scope.domain.id=default&user.id=" + uid:                     {"user:ra reader domain:default"},
		"scope.system=all&user.id=" + uid:                            {"user:ra reader system"},
		"scope.OS-INHERIT:inherited_to=projects":                     {"user:ra2 member project:ratop^"},
		"role.id=" + tc.roleID("admin") + "&scope.project.id=" + top: {"group:rag admin project:ratop"},
	}
	for q, want := range cases {
		if got := get(q); !slices.Equal(got, want) {
			t.Errorf("?%s:\n got %v\nwant %v", q, got, want)
		}
	}
	// Effective assignments: groups expanded to their members, inherited
	// grants to the projects they reach, roles to the roles they imply
	// (compared without the prior role, which depends on the order the
	// duplicates are met in).
	effective := map[string][]string{
		"effective&user.id=" + uid: {"user:ra admin project:ratop", "user:ra member project:ratop",
			"user:ra reader domain:default", "user:ra reader project:ratop", "user:ra reader system"},
		"effective&user.id=" + other:                                           {"user:ra2 member project:rakid", "user:ra2 reader project:rakid"},
		"effective&scope.project.id=" + kid:                                    {"user:ra2 member project:rakid", "user:ra2 reader project:rakid"},
		"effective&role.id=" + tc.roleID("admin") + "&scope.project.id=" + top: {"user:ra admin project:ratop"},
	}
	for q, want := range effective {
		got := get(q)
		for i, k := range got {
			if a, b, ok := strings.Cut(k, "<-"); ok {
				_, rest, _ := strings.Cut(b, " ")
				got[i] = a + " " + rest
			}
		}
		if got := dedupe(got); !slices.Equal(got, want) {
			t.Errorf("?%s:\n got %v\nwant %v", q, got, want)
		}
	}
	// An implied role names the role it comes from.
	implied := get("effective&user.id=" + other + "&role.id=" + tc.roleID("reader"))
	if len(implied) != 1 || !strings.Contains(implied[0], "reader<-member") && !strings.HasSuffix(implied[0], "reader project:rakid") {
		t.Errorf("implied reader %v", implied)
	}
	if n := len(get("effective&user.id=" + uid + "&role.id=" + tc.roleID("reader"))); n != 3 {
		t.Errorf("effective reader assignments of ra: %d, want 3", n)
	}
	// Effective: the group grant carries its membership link.
	eff := list(t, tc.must(200, tc.do("GET", v3+"role_assignments?effective&user.id="+uid+"&scope.project.id="+top, tc.admin, nil)), "role_assignments")
	foundGroup := false
	for _, a := range eff {
		links := a["links"].(map[string]any)
		if m, ok := links["membership"]; ok {
			foundGroup = true
			if !strings.HasSuffix(m.(string), "/groups/"+gid+"/users/"+uid) || !strings.Contains(links["assignment"].(string), "/groups/"+gid+"/") {
				t.Errorf("links %v", links)
			}
		}
	}
	if !foundGroup {
		t.Errorf("no assignment through the group in %v", eff)
	}
	// include_names.
	named := list(t, tc.must(200, tc.do("GET", v3+"role_assignments?include_names&user.id="+uid+"&scope.project.id="+top, tc.admin, nil)), "role_assignments")
	if len(named) != 1 {
		t.Fatalf("include_names %v", named)
	}
	a := named[0]
	if a["role"].(map[string]any)["name"] != "member" || a["user"].(map[string]any)["name"] != "ra" ||
		a["user"].(map[string]any)["domain"].(map[string]any)["name"] != "Default" {
		t.Errorf("include_names %v", a)
	}
	if p := a["scope"].(map[string]any)["project"].(map[string]any); p["name"] != "ratop" || p["domain"].(map[string]any)["id"] != "default" {
		t.Errorf("include_names scope %v", p)
	}
	// Without include_names, no names.
	plain := list(t, tc.must(200, tc.do("GET", v3+"role_assignments?user.id="+uid+"&scope.project.id="+top, tc.admin, nil)), "role_assignments")
	if _, ok := plain[0]["role"].(map[string]any)["name"]; ok {
		t.Errorf("names without include_names: %v", plain[0])
	}
	// Bad combinations.
	tc.fault(400, tc.do("GET", v3+"role_assignments?effective&group.id="+gid, tc.admin, nil))
	tc.fault(400, tc.do("GET", v3+"role_assignments?include_subtree=true", tc.admin, nil))
	tc.fault(400, tc.do("GET", v3+"role_assignments?scope.project.id="+top+"&scope.domain.id=default", tc.admin, nil))
}

func dedupe(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func TestAuthAndUserListings(t *testing.T) {
	tc := newTestCloud(t)
	dom := tc.mkDomain("L")
	uid := tc.mkUser("lister", "default", "lpw")
	gid := tc.mkGroup("listers", "default")
	tc.must(204, tc.do("PUT", v3+"groups/"+gid+"/users/"+uid, tc.admin, nil))
	direct := tc.mkProject("direct", "", "")
	viaGroup := tc.mkProject("viagroup", "", "")
	tc.mkProject("inhtop", dom, "")
	disabled := tc.mkProject("disabled", "", "")
	tc.mkProject("unrelated", "", "")
	tc.grant("projects/" + direct + "/users/" + uid + "/roles/" + tc.roleID("reader"))
	tc.grant("projects/" + viaGroup + "/groups/" + gid + "/roles/" + tc.roleID("member"))
	tc.grant("OS-INHERIT/domains/" + dom + "/users/" + uid + "/roles/" + tc.roleID("reader") + "/inherited_to_projects")
	tc.grant("projects/" + disabled + "/users/" + uid + "/roles/" + tc.roleID("reader"))
	tc.must(200, tc.do("PATCH", v3+"projects/"+disabled, tc.admin, map[string]any{"project": map[string]any{"enabled": false}}))
	tc.grant("domains/" + dom + "/groups/" + gid + "/roles/" + tc.roleID("reader"))
	unscoped, _ := tc.mustToken(pwAuth(map[string]any{"id": uid}, "lpw", nil))

	projects := field(list(t, tc.must(200, tc.do("GET", v3+"auth/projects", unscoped, nil)), "projects"), "name")
	if !slices.Equal(projects, []string{"direct", "inhtop", "viagroup"}) {
		t.Errorf("auth/projects %v", projects)
	}
	if ds := field(list(t, tc.must(200, tc.do("GET", v3+"auth/domains", unscoped, nil)), "domains"), "name"); !slices.Equal(ds, []string{"L"}) {
		t.Errorf("auth/domains %v", ds)
	}
	if s := tc.must(200, tc.do("GET", v3+"auth/system", unscoped, nil)).JSON(t)["system"].([]any); len(s) != 0 {
		t.Errorf("auth/system %v", s)
	}
	if s := tc.must(200, tc.do("GET", v3+"auth/system", tc.admin, nil)).JSON(t)["system"].([]any); len(s) != 1 || s[0].(map[string]any)["all"] != true {
		t.Errorf("admin auth/system %v", s)
	}
	// /users/{id}/projects lists disabled projects too, and filters.
	up := field(list(t, tc.must(200, tc.do("GET", v3+"users/"+uid+"/projects", unscoped, nil)), "projects"), "name")
	if !slices.Equal(up, []string{"direct", "disabled", "inhtop", "viagroup"}) {
		t.Errorf("users/{id}/projects %v", up)
	}
	if up := field(list(t, tc.must(200, tc.do("GET", v3+"users/"+uid+"/projects?enabled=true", tc.admin, nil)), "projects"), "name"); !slices.Equal(up, []string{"direct", "inhtop", "viagroup"}) {
		t.Errorf("users/{id}/projects?enabled=true %v", up)
	}
	if ug := field(list(t, tc.must(200, tc.do("GET", v3+"users/"+uid+"/groups", unscoped, nil)), "groups"), "name"); !slices.Equal(ug, []string{"listers"}) {
		t.Errorf("users/{id}/groups %v", ug)
	}
	// Demo: one project, no domains.
	if dp := field(list(t, tc.must(200, tc.do("GET", v3+"auth/projects", tc.demo, nil)), "projects"), "name"); !slices.Equal(dp, []string{"demo"}) {
		t.Errorf("demo auth/projects %v", dp)
	}
	if ds := list(t, tc.must(200, tc.do("GET", v3+"auth/domains", tc.demo, nil)), "domains"); len(ds) != 0 {
		t.Errorf("demo auth/domains %v", ds)
	}
}

// TestDomainSpecificRoles: a role of one domain is granted only there, and
// tokens carry only the global roles it implies, never the role itself.
func TestDomainSpecificRoles(t *testing.T) {
	tc := newTestCloud(t)
	dom := tc.mkDomain("Local")
	mkLocal := func(name string) string {
		res := tc.must(201, tc.do("POST", v3+"roles", tc.admin, map[string]any{"role": map[string]any{"name": name, "domain_id": dom}}))
		return obj(t, res, "role")["id"].(string)
	}
	localAdmin, helper := mkLocal("admin"), mkLocal("helper")
	tc.must(201, tc.do("PUT", v3+"roles/"+helper+"/implies/"+tc.roleID("member"), tc.admin, nil))
	uid := tc.mkUser("local", dom, "lpw")
	pid := tc.mkProject("lp", dom, "")
	before := tc.count("assignments")
	tc.expect(t, tc.admin, 403,
		call{"PUT", v3 + "projects/" + tc.projectID("demo") + "/users/" + uid + "/roles/" + localAdmin, nil},
		call{"PUT", v3 + "domains/default/users/" + uid + "/roles/" + localAdmin, nil},
		call{"PUT", v3 + "system/users/" + uid + "/roles/" + localAdmin, nil},
	)
	if tc.count("assignments") != before {
		t.Errorf("refused grants left rows")
	}
	// A domain's "admin" is not the admin role.
	tc.grant("domains/" + dom + "/users/" + uid + "/roles/" + localAdmin)
	tc.fault(401, tc.issue(pwAuth(map[string]any{"id": uid}, "lpw", domainScope(dom))))
	// A domain role that implies member gives member, and only that.
	tc.grant("projects/" + pid + "/users/" + uid + "/roles/" + helper)
	_, tok := tc.mustToken(pwAuth(map[string]any{"id": uid}, "lpw", projectScope(pid)))
	if got := roleNames(tok); !slices.Equal(got, []string{"member", "reader"}) {
		t.Errorf("roles from a domain role %v", got)
	}
}

// TestRestart: a second start on the same database keeps everything, and
// bootstrapping again changes nothing.
func TestRestart(t *testing.T) {
	tc := newTestCloud(t)
	tc.mkUser("kept", "default", "kpw")
	before := tc.counts()
	svc, err := New(t.Context(), tc.db, tc.keys, tc.svc.cfg, tc.svc.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.EnsureBootstrap(t.Context(), Bootstrap{AdminPassword: "other", DemoPassword: "other"}); err != nil {
		t.Fatal(err)
	}
	if after := tc.counts(); !sameCounts(before, after) {
		t.Errorf("second bootstrap changed the tables: %v -> %v", before, after)
	}
	tc.svc = svc
	tc.srv.Config.Handler = svc.Router(nil)
	tc.must(200, tc.validate(tc.demo))
	tc.mustToken(pwAuth(byName("admin", "default"), testAdminPassword, nil))
	tc.fault(401, tc.issue(pwAuth(byName("admin", "default"), "other", nil)))
	tc.mustToken(pwAuth(byName("kept", "default"), "kpw", nil))
}
