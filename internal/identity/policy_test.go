package identity

import (
	"testing"
)

type call struct {
	method, path string
	body         any
}

func (tc *testCloud) expect(t *testing.T, token string, status int, calls ...call) {
	t.Helper()
	for _, c := range calls {
		res := tc.do(c.method, c.path, token, c.body)
		if res.StatusCode != status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, res.StatusCode, status, res.Body)
			continue
		}
		if status >= 400 {
			checkFault(t, res, status)
		}
	}
}

func TestDemoPolicy(t *testing.T) {
	tc := newTestCloud(t)
	demoID, adminID := tc.userID("demo"), tc.userID("admin")
	demoProject, adminProject := tc.projectID("demo"), tc.projectID("admin")
	other := tc.mkDomain("Other")
	g := tc.mkGroup("g", "default")
	member := tc.roleID("member")
	before := tc.counts()
	v3 := "/identity/v3/"
	tc.expect(t, tc.demo, 403,
		call{"POST", v3 + "users", map[string]any{"user": map[string]any{"name": "mallory"}}},
		call{"GET", v3 + "users", nil},
		call{"PATCH", v3 + "users/" + adminID, map[string]any{"user": map[string]any{"enabled": false}}},
		call{"DELETE", v3 + "users/" + adminID, nil},
		call{"POST", v3 + "projects", map[string]any{"project": map[string]any{"name": "mine"}}},
		call{"GET", v3 + "projects", nil},
		call{"PATCH", v3 + "projects/" + demoProject, map[string]any{"project": map[string]any{"description": "x"}}},
		call{"DELETE", v3 + "projects/" + demoProject, nil},
		call{"PUT", v3 + "projects/" + demoProject + "/tags/x", nil},
		call{"PUT", v3 + "projects/" + demoProject + "/users/" + demoID + "/roles/" + tc.roleID("admin"), nil},
		call{"PUT", v3 + "projects/" + adminProject + "/users/" + demoID + "/roles/" + member, nil},
		call{"PUT", v3 + "domains/default/users/" + demoID + "/roles/" + member, nil},
		call{"PUT", v3 + "system/users/" + demoID + "/roles/" + member, nil},
		call{"PUT", v3 + "OS-INHERIT/domains/default/users/" + demoID + "/roles/" + member + "/inherited_to_projects", nil},
		call{"GET", v3 + "projects/" + demoProject + "/users/" + demoID + "/roles", nil},
		call{"GET", v3 + "role_assignments", nil},
		call{"GET", v3 + "role_assignments?user.id=" + demoID, nil},
		call{"POST", v3 + "groups", map[string]any{"group": map[string]any{"name": "gang"}}},
		call{"GET", v3 + "groups", nil},
		call{"GET", v3 + "groups/" + g, nil},
		call{"PUT", v3 + "groups/" + g + "/users/" + demoID, nil},
		call{"POST", v3 + "domains", map[string]any{"domain": map[string]any{"name": "mine"}}},
		call{"PATCH", v3 + "domains/default", map[string]any{"domain": map[string]any{"description": "x"}}},
		call{"GET", v3 + "domains/" + other, nil},
		call{"POST", v3 + "roles", map[string]any{"role": map[string]any{"name": "boss"}}},
		call{"PUT", v3 + "roles/" + member + "/implies/" + tc.roleID("admin"), nil},
		call{"GET", v3 + "role_inferences", nil},
		// Someone else's things.
		call{"GET", v3 + "users/" + adminID, nil},
		call{"GET", v3 + "users/" + adminID + "/projects", nil},
		call{"GET", v3 + "users/" + adminID + "/groups", nil},
		call{"GET", v3 + "projects/" + adminProject, nil},
		call{"GET", v3 + "projects/" + adminProject + "/tags", nil},
		call{"GET", v3 + "users/" + adminID + "/application_credentials", nil},
	)
	if after := tc.counts(); !sameCounts(before, after) {
		t.Errorf("forbidden calls changed the tables: %v -> %v", before, after)
	}
	// One's own user, project and domain.
	tc.expect(t, tc.demo, 200,
		call{"GET", v3 + "users/" + demoID, nil},
		call{"GET", v3 + "users/" + demoID + "/projects", nil},
		call{"GET", v3 + "users/" + demoID + "/groups", nil},
		call{"GET", v3 + "projects/" + demoProject, nil},
		call{"GET", v3 + "projects/" + demoProject + "/tags", nil},
		call{"GET", v3 + "domains/default", nil},
		call{"GET", v3 + "auth/projects", nil},
		call{"GET", v3 + "auth/domains", nil},
		call{"GET", v3 + "auth/system", nil},
		call{"GET", v3 + "auth/catalog", nil},
		call{"GET", v3 + "users/" + demoID + "/application_credentials", nil},
	)
	u := obj(t, tc.must(200, tc.do("GET", v3+"users/"+demoID, tc.demo, nil)), "user")
	if u["name"] != "demo" || u["default_project_id"] != demoProject {
		t.Errorf("own user %v", u)
	}
	// A non-member of a group does not learn who is in it; a member may
	// check its own membership.
	tc.must(204, tc.do("PUT", v3+"groups/"+g+"/users/"+demoID, tc.admin, nil))
	tc.must(204, tc.do("HEAD", v3+"groups/"+g+"/users/"+demoID, tc.demo, nil))
	tc.must(403, tc.do("HEAD", v3+"groups/"+g+"/users/"+adminID, tc.demo, nil))
	tc.fault(403, tc.do("GET", v3+"groups/"+g+"/users/"+adminID, tc.demo, nil))
	// Listing domains is for readers of the cloud or of a domain.
	tc.fault(403, tc.do("GET", v3+"domains", tc.demo, nil))
	// No token at all is a 401 everywhere but token issue and discovery.
	res := tc.fault(401, tc.do("GET", v3+"users/"+demoID, "", nil))
	if res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("401 without WWW-Authenticate")
	}
	tc.must(200, tc.do("GET", "/identity/v3", "", nil))
	tc.must(300, tc.do("GET", "/identity", "", nil))
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPersonas: reader ⊂ member ⊂ admin on the admin project (cloud-wide)
// and on an ordinary project (that project only).
func TestPersonas(t *testing.T) {
	tc := newTestCloud(t)
	adminProject, demoProject := tc.projectID("admin"), tc.projectID("demo")
	_, reader := tc.newUserToken("cloud-reader", "reader", adminProject)
	_, member := tc.newUserToken("cloud-member", "member", adminProject)
	_, padmin := tc.newUserToken("demo-admin", "admin", demoProject)
	v3 := "/identity/v3/"
	reads := []call{{"GET", v3 + "users", nil}, {"GET", v3 + "projects", nil}, {"GET", v3 + "groups", nil},
		{"GET", v3 + "roles", nil}, {"GET", v3 + "role_assignments", nil}, {"GET", v3 + "role_inferences", nil},
		{"GET", v3 + "users/" + tc.userID("admin"), nil}, {"GET", v3 + "projects/" + demoProject, nil}}
	for name, tok := range map[string]string{"reader": reader, "member": member} {
		t.Run("cloud "+name, func(t *testing.T) {
			tc.expect(t, tok, 200, reads...)
			tc.expect(t, tok, 403,
				call{"POST", v3 + "users", map[string]any{"user": map[string]any{"name": "x-" + name}}},
				call{"POST", v3 + "projects", map[string]any{"project": map[string]any{"name": "x-" + name}}},
				call{"PATCH", v3 + "projects/" + demoProject, map[string]any{"project": map[string]any{"description": "x"}}},
				call{"PUT", v3 + "projects/" + demoProject + "/users/" + tc.userID("demo") + "/roles/" + tc.roleID("admin"), nil},
				call{"POST", v3 + "roles", map[string]any{"role": map[string]any{"name": "x-" + name}}},
				call{"POST", v3 + "domains", map[string]any{"domain": map[string]any{"name": "x-" + name}}},
			)
		})
	}
	t.Run("cloud admin", func(t *testing.T) {
		tc.expect(t, tc.admin, 200, reads...)
		tc.expect(t, tc.admin, 201,
			call{"POST", v3 + "users", map[string]any{"user": map[string]any{"name": "by-admin"}}},
			call{"POST", v3 + "projects", map[string]any{"project": map[string]any{"name": "by-admin"}}},
		)
	})
	t.Run("admin of an ordinary project", func(t *testing.T) {
		// An admin role on demo is not an admin of the cloud.
		tc.expect(t, padmin, 403,
			call{"GET", v3 + "users", nil},
			call{"POST", v3 + "users", map[string]any{"user": map[string]any{"name": "x-padmin"}}},
			call{"POST", v3 + "projects", map[string]any{"project": map[string]any{"name": "x-padmin"}}},
			call{"GET", v3 + "projects/" + adminProject, nil},
			call{"PUT", v3 + "projects/" + demoProject + "/users/" + tc.userID("demo") + "/roles/" + tc.roleID("admin"), nil},
		)
		tc.expect(t, padmin, 200, call{"GET", v3 + "projects/" + demoProject, nil})
	})
	t.Run("validation of others' tokens", func(t *testing.T) {
		tc.must(200, tc.do("GET", tokensPath, reader, nil, "X-Subject-Token", tc.demo))
		tc.fault(403, tc.do("GET", tokensPath, padmin, nil, "X-Subject-Token", tc.demo))
	})
}

func TestSystemScope(t *testing.T) {
	tc := newTestCloud(t)
	sys, _ := tc.mustToken(pwAuth(map[string]any{"id": tc.userID("admin")}, testAdminPassword, systemScope))
	v3 := "/identity/v3/"
	dom := obj(t, tc.must(201, tc.do("POST", v3+"domains", sys, map[string]any{"domain": map[string]any{"name": "SysMade"}})), "domain")["id"].(string)
	tc.must(201, tc.do("POST", v3+"users", sys, map[string]any{"user": map[string]any{"name": "u", "domain_id": dom}}))
	// A system token has no project or domain to default to: Default.
	u := obj(t, tc.must(201, tc.do("POST", v3+"users", sys, map[string]any{"user": map[string]any{"name": "sysuser"}})), "user")
	if u["domain_id"] != "default" {
		t.Errorf("user made with a system token in %v", u["domain_id"])
	}
	tc.must(201, tc.do("POST", v3+"projects", sys, map[string]any{"project": map[string]any{"name": "p", "domain_id": dom}}))
	tc.must(200, tc.do("GET", v3+"users?domain_id="+dom, sys, nil))
	tc.must(204, tc.do("PUT", v3+"system/users/"+u["id"].(string)+"/roles/"+tc.roleID("reader"), sys, nil))
	// A system reader reads everything and writes nothing.
	tc.must(200, tc.do("PATCH", v3+"users/"+u["id"].(string), sys, map[string]any{"user": map[string]any{"password": "spw"}}))
	rsys, tok := tc.mustToken(pwAuth(map[string]any{"id": u["id"]}, "spw", systemScope))
	if got := roleNames(tok); len(got) != 1 || got[0] != "reader" {
		t.Errorf("system reader roles %v", got)
	}
	tc.must(200, tc.do("GET", v3+"users", rsys, nil))
	tc.must(200, tc.do("GET", v3+"projects", rsys, nil))
	tc.must(200, tc.do("GET", v3+"system/users/"+u["id"].(string)+"/roles", rsys, nil))
	tc.fault(403, tc.do("POST", v3+"users", rsys, map[string]any{"user": map[string]any{"name": "nope"}}))
	tc.fault(403, tc.do("PUT", v3+"system/users/"+tc.userID("demo")+"/roles/"+tc.roleID("reader"), rsys, nil))
	sysInfo := tc.must(200, tc.do("GET", v3+"auth/system", rsys, nil)).JSON(t)["system"].([]any)
	if len(sysInfo) != 1 {
		t.Errorf("auth/system %v", sysInfo)
	}
}

func TestDomainAdmin(t *testing.T) {
	tc := newTestCloud(t)
	v3 := "/identity/v3/"
	dom := tc.mkDomain("Acme")
	boss := tc.mkUser("boss", dom, "boss-pw")
	tc.grant("domains/" + dom + "/users/" + boss + "/roles/" + tc.roleID("admin"))
	da, _ := tc.mustToken(pwAuth(map[string]any{"id": boss}, "boss-pw", domainScope(dom)))
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")

	// Users and projects in its own domain; the domain is the default.
	u := obj(t, tc.must(201, tc.do("POST", v3+"users", da, map[string]any{"user": map[string]any{"name": "worker", "password": "wpw"}})), "user")
	if u["domain_id"] != dom {
		t.Errorf("user made by a domain admin in %v", u["domain_id"])
	}
	worker := u["id"].(string)
	p := obj(t, tc.must(201, tc.do("POST", v3+"projects", da, map[string]any{"project": map[string]any{"name": "site"}})), "project")
	if p["domain_id"] != dom || p["parent_id"] != dom {
		t.Errorf("project made by a domain admin: %v", p)
	}
	site := p["id"].(string)
	tc.must(201, tc.do("POST", v3+"projects", da, map[string]any{"project": map[string]any{"name": "sub", "parent_id": site}}))
	grp := obj(t, tc.must(201, tc.do("POST", v3+"groups", da, map[string]any{"group": map[string]any{"name": "crew"}})), "group")["id"].(string)
	tc.must(204, tc.do("PUT", v3+"groups/"+grp+"/users/"+worker, da, nil))
	tc.must(204, tc.do("PUT", v3+"projects/"+site+"/users/"+worker+"/roles/"+tc.roleID("member"), da, nil))
	tc.must(204, tc.do("PUT", v3+"projects/"+site+"/groups/"+grp+"/roles/"+tc.roleID("reader"), da, nil))
	tc.must(200, tc.do("PATCH", v3+"users/"+worker, da, map[string]any{"user": map[string]any{"email": "w@acme"}}))
	tc.must(200, tc.do("PATCH", v3+"projects/"+site, da, map[string]any{"project": map[string]any{"description": "main"}}))
	// The worker can now get a token for the site.
	tc.mustToken(pwAuth(byName("worker", dom), "wpw", map[string]any{"project": map[string]any{"name": "site", "domain": map[string]any{"name": "Acme"}}}))

	// Lists are narrowed to the domain.
	for _, what := range []string{"users", "projects", "groups"} {
		items := list(t, tc.must(200, tc.do("GET", v3+what, da, nil)), what)
		if len(items) == 0 {
			t.Errorf("domain admin lists no %s", what)
		}
		for _, it := range items {
			if it["domain_id"] != dom {
				t.Errorf("domain admin lists %s %v of domain %v", what, it["name"], it["domain_id"])
			}
		}
	}
	ras := list(t, tc.must(200, tc.do("GET", v3+"role_assignments", da, nil)), "role_assignments")
	if len(ras) == 0 {
		t.Errorf("domain admin sees no role assignments")
	}
	for _, ra := range ras {
		sc := ra["scope"].(map[string]any)
		if d, ok := sc["domain"]; ok && d.(map[string]any)["id"] != dom {
			t.Errorf("domain admin sees assignment %v", ra)
		}
		if _, ok := sc["system"]; ok {
			t.Errorf("domain admin sees system assignment %v", ra)
		}
		if p, ok := sc["project"]; ok && p.(map[string]any)["id"] == demoProject {
			t.Errorf("domain admin sees assignment %v", ra)
		}
	}

	// Nothing outside it.
	before := tc.counts()
	tc.expect(t, da, 403,
		call{"POST", v3 + "users", map[string]any{"user": map[string]any{"name": "intruder", "domain_id": "default"}}},
		call{"POST", v3 + "projects", map[string]any{"project": map[string]any{"name": "intruder", "domain_id": "default"}}},
		call{"POST", v3 + "projects", map[string]any{"project": map[string]any{"name": "intruder", "parent_id": demoProject}}},
		call{"POST", v3 + "groups", map[string]any{"group": map[string]any{"name": "intruder", "domain_id": "default"}}},
		call{"GET", v3 + "users?domain_id=default", nil},
		call{"GET", v3 + "projects?domain_id=default", nil},
		call{"GET", v3 + "users/" + demoID, nil},
		call{"GET", v3 + "projects/" + demoProject, nil},
		call{"PATCH", v3 + "users/" + demoID, map[string]any{"user": map[string]any{"enabled": false}}},
		call{"DELETE", v3 + "users/" + demoID, nil},
		call{"PATCH", v3 + "projects/" + demoProject, map[string]any{"project": map[string]any{"enabled": false}}},
		call{"DELETE", v3 + "projects/" + demoProject, nil},
		call{"PUT", v3 + "projects/" + demoProject + "/users/" + worker + "/roles/" + tc.roleID("member"), nil},
		call{"PUT", v3 + "domains/default/users/" + boss + "/roles/" + tc.roleID("admin"), nil},
		call{"PUT", v3 + "system/users/" + boss + "/roles/" + tc.roleID("admin"), nil},
		// Not even to bring an outsider into its own domain's projects
		// and groups: both ends of a grant must be in the domain.
		call{"PUT", v3 + "projects/" + site + "/users/" + demoID + "/roles/" + tc.roleID("member"), nil},
		call{"PUT", v3 + "domains/" + dom + "/users/" + demoID + "/roles/" + tc.roleID("admin"), nil},
		call{"PUT", v3 + "groups/" + grp + "/users/" + demoID, nil},
		call{"POST", v3 + "domains", map[string]any{"domain": map[string]any{"name": "Mine"}}},
		call{"PATCH", v3 + "domains/" + dom, map[string]any{"domain": map[string]any{"name": "Renamed"}}},
		call{"DELETE", v3 + "domains/" + dom, nil},
		call{"POST", v3 + "roles", map[string]any{"role": map[string]any{"name": "boss"}}},
	)
	if after := tc.counts(); !sameCounts(before, after) {
		t.Errorf("forbidden calls changed the tables: %v -> %v", before, after)
	}
	// It reads its own domain, not others.
	tc.must(200, tc.do("GET", v3+"domains/"+dom, da, nil))
	if ds := list(t, tc.must(200, tc.do("GET", v3+"domains", da, nil)), "domains"); len(ds) != 1 || ds[0]["id"] != dom {
		t.Errorf("domain admin lists domains %v", ds)
	}
	tc.fault(403, tc.do("GET", v3+"domains/"+tc.mkDomain("Elsewhere"), da, nil))

	// A domain reader reads the domain and changes nothing.
	peek := tc.mkUser("peek", dom, "peek-pw")
	tc.grant("domains/" + dom + "/users/" + peek + "/roles/" + tc.roleID("reader"))
	dr, _ := tc.mustToken(pwAuth(map[string]any{"id": peek}, "peek-pw", domainScope(dom)))
	tc.expect(t, dr, 200, call{"GET", v3 + "users", nil}, call{"GET", v3 + "projects", nil},
		call{"GET", v3 + "users/" + worker, nil}, call{"GET", v3 + "projects/" + site, nil},
		call{"GET", v3 + "groups/" + grp + "/users", nil})
	tc.expect(t, dr, 403,
		call{"POST", v3 + "users", map[string]any{"user": map[string]any{"name": "x"}}},
		call{"PATCH", v3 + "users/" + worker, map[string]any{"user": map[string]any{"enabled": false}}},
		call{"PUT", v3 + "projects/" + site + "/users/" + peek + "/roles/" + tc.roleID("admin"), nil})

	// The domain admin deletes what it made.
	tc.must(204, tc.do("DELETE", v3+"users/"+worker, da, nil))
	tc.must(204, tc.do("DELETE", v3+"groups/"+grp, da, nil))
}
