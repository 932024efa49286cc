package acceptance

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/catalog"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
)

// authResult is the token body a session was created with.
func authResult(t *testing.T, s session) tokens.CreateResult {
	t.Helper()
	r, ok := s.pc.GetAuthResult().(tokens.CreateResult)
	if !ok {
		t.Fatalf("auth result is %T, want tokens.CreateResult", s.pc.GetAuthResult())
	}
	return r
}

func tokenUser(t *testing.T, s session) *tokens.User {
	t.Helper()
	u, err := authResult(t, s).ExtractUser()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func tokenProject(t *testing.T, s session) *tokens.Project {
	t.Helper()
	p, err := authResult(t, s).ExtractProject()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func roleNames(rs []tokens.Role) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	sort.Strings(out)
	return out
}

// roleID returns the id of the role with this name.
func roleID(t *testing.T, ic *gophercloud.ServiceClient, name string) string {
	t.Helper()
	pages, err := roles.List(ic, roles.ListOpts{Name: name}).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list roles name=%s: %v", name, err)
	}
	rs, err := roles.ExtractRoles(pages)
	if err != nil || len(rs) != 1 {
		t.Fatalf("roles named %s: %v %v", name, rs, err)
	}
	return rs[0].ID
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	admin, demo := adminSession(t), demoSession(t)

	for _, c := range []struct {
		s           session
		user, roles string
	}{
		{admin, "admin", "admin member reader"},
		{demo, "demo", "member reader"},
	} {
		u, p := tokenUser(t, c.s), tokenProject(t, c.s)
		if u.Name != c.user || u.Domain.ID != "default" || u.ID == "" {
			t.Errorf("%s token: user %+v", c.user, u)
		}
		if p.Name != c.user || p.Domain.ID != "default" || p.ID == "" {
			t.Errorf("%s token: project %+v, want %s in default", c.user, p, c.user)
		}
		rs, err := authResult(t, c.s).ExtractRoles()
		if err != nil {
			t.Fatal(err)
		}
		if got := roleNames(rs); !slices.Equal(got, sorted(strings.Fields(c.roles))) {
			t.Errorf("%s token roles %v, want %s (implied roles included)", c.user, got, c.roles)
		}
		tok, err := authResult(t, c.s).ExtractToken()
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID == "" || tok.ExpiresAt.Before(time.Now().Add(50*time.Minute)) || tok.ExpiresAt.After(time.Now().Add(61*time.Minute)) {
			t.Errorf("%s token: id %q expires %v, want in about an hour", c.user, tok.ID, tok.ExpiresAt)
		}
	}

	t.Run("wrong password is 401", func(t *testing.T) {
		_, _, err := cloud.login(ctx, cloud.authOpts("demo", "not-the-password", "demo"))
		wantCode(t, err, http.StatusUnauthorized, "authenticate with a wrong password")
		_, _, err = cloud.login(ctx, cloud.authOpts("no-such-user", "x", "demo"))
		wantCode(t, err, http.StatusUnauthorized, "authenticate an unknown user")
	})

	t.Run("scope to a project without a role is 401", func(t *testing.T) {
		// Token method: no bcrypt needed. demo has no role on admin.
		_, _, err := cloud.login(ctx, gophercloud.AuthOptions{TokenID: demo.token(),
			Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainID: "default"}})
		wantCode(t, err, http.StatusUnauthorized, "demo scoping to project admin")
	})

	t.Run("system scope", func(t *testing.T) {
		pc, _, err := cloud.login(ctx, gophercloud.AuthOptions{TokenID: admin.token(), Scope: &gophercloud.AuthScope{System: true}})
		if err != nil {
			t.Fatalf("admin rescoping to the system: %v", err)
		}
		var tok struct {
			System  map[string]any `json:"system"`
			Project any            `json:"project"`
			Roles   []tokens.Role  `json:"roles"`
		}
		if err := pc.GetAuthResult().(tokens.CreateResult).ExtractInto(&tok); err != nil {
			t.Fatal(err)
		}
		if tok.System["all"] != true || tok.Project != nil || !slices.Contains(roleNames(tok.Roles), "admin") {
			t.Errorf("system-scoped token: %+v", tok)
		}
		_, _, err = cloud.login(ctx, gophercloud.AuthOptions{TokenID: demo.token(), Scope: &gophercloud.AuthScope{System: true}})
		wantCode(t, err, http.StatusUnauthorized, "demo rescoping to the system")
	})

	t.Run("catalog", func(t *testing.T) {
		base := cloud.authURL()
		check := func(t *testing.T, entries []tokens.CatalogEntry) {
			t.Helper()
			var found bool
			for _, e := range entries {
				if e.Type != "identity" {
					continue
				}
				found = true
				ifaces := map[string]string{}
				for _, ep := range e.Endpoints {
					ifaces[ep.Interface] = ep.URL
					if ep.Region != "RegionOne" || ep.RegionID != "RegionOne" || ep.ID == "" {
						t.Errorf("identity endpoint %+v: want region RegionOne and an id", ep)
					}
				}
				for _, i := range []string{"public", "internal", "admin"} {
					if ifaces[i] != base {
						t.Errorf("identity %s endpoint %q, want %q", i, ifaces[i], base)
					}
				}
				if e.Name != "keystone" || e.ID == "" {
					t.Errorf("identity service name %q id %q, want keystone", e.Name, e.ID)
				}
			}
			if !found {
				t.Errorf("no identity service in catalog %+v", entries)
			}
		}
		sc, err := authResult(t, admin).ExtractServiceCatalog()
		if err != nil {
			t.Fatal(err)
		}
		check(t, sc.Entries)
		for _, s := range []session{admin, demo} {
			pages, err := catalog.List(s.ic).AllPages(ctx)
			if err != nil {
				t.Fatalf("GET /v3/auth/catalog: %v", err)
			}
			entries, err := catalog.ExtractServiceCatalog(pages)
			if err != nil {
				t.Fatal(err)
			}
			check(t, entries)
		}
		// gophercloud finds the identity endpoint through the catalog.
		for _, av := range []gophercloud.Availability{gophercloud.AvailabilityPublic, gophercloud.AvailabilityInternal, gophercloud.AvailabilityAdmin} {
			ic, err := openstack.NewIdentityV3(admin.pc, gophercloud.EndpointOpts{Region: "RegionOne", Availability: av})
			if err != nil {
				t.Fatalf("identity endpoint (%s) from the catalog: %v", av, err)
			}
			if ic.Endpoint != base+"/v3/" {
				t.Errorf("identity endpoint (%s) %q, want %q", av, ic.Endpoint, base+"/v3/")
			}
			if _, err := domains.Get(ctx, ic, "default").Extract(); err != nil {
				t.Errorf("GET domain through the %s endpoint: %v", av, err)
			}
		}
	})

	t.Run("version discovery", func(t *testing.T) {
		code, body := call(t, "GET", cloud.authURL()+"/v3", "", nil)
		v, _ := body["version"].(map[string]any)
		if code != 200 || v["id"] == nil || v["status"] != "stable" {
			t.Errorf("GET /identity/v3: %d %v", code, body)
		}
	})
}

func TestDomains(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	name := uniq("acc-domain")
	d, err := domains.Create(ctx, ic, domains.CreateOpts{Name: name, Description: "acceptance"}).Extract()
	if err != nil {
		t.Fatalf("create domain: %v", err)
	}
	t.Cleanup(func() {
		f := false
		domains.Update(ctx, ic, d.ID, domains.UpdateOpts{Enabled: &f})
		domains.Delete(ctx, ic, d.ID)
	})
	if d.Name != name || d.Description != "acceptance" || !d.Enabled || d.ID == "" {
		t.Errorf("created domain %+v", d)
	}
	_, err = domains.Create(ctx, ic, domains.CreateOpts{Name: name}).Extract()
	wantCode(t, err, http.StatusConflict, "create a domain with a name in use")

	got, err := domains.Get(ctx, ic, d.ID).Extract()
	if err != nil || got.Name != name {
		t.Errorf("get domain: %+v %v", got, err)
	}
	pages, err := domains.List(ic, domains.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := domains.ExtractDomains(pages)
	if len(list) != 1 || list[0].ID != d.ID {
		t.Errorf("list domains name=%s: %+v", name, list)
	}
	pages, err = domains.List(ic, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ = domains.ExtractDomains(pages)
	if !slices.ContainsFunc(list, func(x domains.Domain) bool { return x.ID == "default" }) ||
		!slices.ContainsFunc(list, func(x domains.Domain) bool { return x.ID == d.ID }) {
		t.Errorf("list domains lacks default or %s: %+v", d.ID, list)
	}

	desc := "changed"
	upd, err := domains.Update(ctx, ic, d.ID, domains.UpdateOpts{Description: &desc}).Extract()
	if err != nil || upd.Description != desc || upd.Name != name {
		t.Errorf("update domain: %+v %v", upd, err)
	}

	// Something in the domain, removed with it.
	p, err := projects.Create(ctx, ic, projects.CreateOpts{Name: "in-domain", DomainID: d.ID}).Extract()
	if err != nil {
		t.Fatalf("create project in the new domain: %v", err)
	}

	wantCode(t, domains.Delete(ctx, ic, d.ID).ExtractErr(), http.StatusForbidden, "delete an enabled domain")
	f := false
	if upd, err = domains.Update(ctx, ic, d.ID, domains.UpdateOpts{Enabled: &f}).Extract(); err != nil || upd.Enabled {
		t.Fatalf("disable domain: %+v %v", upd, err)
	}
	if err := domains.Delete(ctx, ic, d.ID).ExtractErr(); err != nil {
		t.Fatalf("delete disabled domain: %v", err)
	}
	_, err = domains.Get(ctx, ic, d.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted domain")
	_, err = projects.Get(ctx, ic, p.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a project of a deleted domain")
}

func TestProjects(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	name := uniq("acc-project")
	p, err := projects.Create(ctx, ic, projects.CreateOpts{
		Name: name, Description: "acceptance", DomainID: "default",
		Tags: []string{"alpha", "beta"}, Extra: map[string]any{"contact": "ops@example.com"},
	}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	t.Cleanup(func() { projects.Delete(ctx, ic, p.ID) })
	if p.Name != name || p.DomainID != "default" || !p.Enabled || p.IsDomain || p.ParentID != "default" {
		t.Errorf("created project %+v (want parent_id default, is_domain false)", p)
	}
	if !slices.Equal(sorted(p.Tags), []string{"alpha", "beta"}) {
		t.Errorf("created project tags %v", p.Tags)
	}
	if p.Extra["contact"] != "ops@example.com" {
		t.Errorf("created project extra %v, want contact", p.Extra)
	}
	_, err = projects.Create(ctx, ic, projects.CreateOpts{Name: name}).Extract()
	wantCode(t, err, http.StatusConflict, "create a project with a name in use")

	got, err := projects.Get(ctx, ic, p.ID).Extract()
	if err != nil || got.Name != name || got.Extra["contact"] != "ops@example.com" || len(got.Tags) != 2 {
		t.Errorf("get project: %+v %v", got, err)
	}

	list := func(opts projects.ListOpts) []string {
		t.Helper()
		pages, err := projects.List(ic, opts).AllPages(ctx)
		if err != nil {
			t.Fatalf("list projects %+v: %v", opts, err)
		}
		ps, err := projects.ExtractProjects(pages)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range ps {
			ids = append(ids, x.ID)
		}
		return ids
	}
	if ids := list(projects.ListOpts{Name: name}); !slices.Equal(ids, []string{p.ID}) {
		t.Errorf("list name=%s: %v", name, ids)
	}
	if ids := list(projects.ListOpts{Tags: "alpha,beta"}); !slices.Contains(ids, p.ID) {
		t.Errorf("list tags=alpha,beta lacks the project: %v", ids)
	}
	if ids := list(projects.ListOpts{Tags: "alpha,gamma"}); slices.Contains(ids, p.ID) {
		t.Errorf("list tags=alpha,gamma has the project: %v", ids)
	}
	if ids := list(projects.ListOpts{TagsAny: "gamma,beta"}); !slices.Contains(ids, p.ID) {
		t.Errorf("list tags-any=gamma,beta lacks the project: %v", ids)
	}
	if ids := list(projects.ListOpts{NotTags: "alpha"}); slices.Contains(ids, p.ID) {
		t.Errorf("list not-tags=alpha has the project: %v", ids)
	}
	if ids := list(projects.ListOpts{DomainID: "default"}); !slices.Contains(ids, p.ID) || len(ids) < 4 {
		t.Errorf("list domain_id=default: %v (want admin, demo, service and the new one)", ids)
	}

	desc, tags := "changed", []string{"gamma"}
	upd, err := projects.Update(ctx, ic, p.ID, projects.UpdateOpts{Description: &desc, Tags: &tags,
		Extra: map[string]any{"contact": "new@example.com"}}).Extract()
	if err != nil || upd.Description != desc || !slices.Equal(upd.Tags, tags) || upd.Extra["contact"] != "new@example.com" {
		t.Errorf("update project: %+v %v", upd, err)
	}

	if err := projects.ModifyTags(ctx, ic, p.ID, projects.ModifyTagsOpts{Tags: []string{"x", "y"}}).Err; err != nil {
		t.Errorf("PUT tags: %v", err)
	}
	lt, err := projects.ListTags(ctx, ic, p.ID).Extract()
	if err != nil || !slices.Equal(sorted(lt.Tags), []string{"x", "y"}) {
		t.Errorf("GET tags: %+v %v, want x y", lt, err)
	}
	code, _ := call(t, "PUT", cloud.authURL()+"/v3/projects/"+p.ID+"/tags/z", adminSession(t).token(), nil)
	if code != http.StatusCreated {
		t.Errorf("PUT a single tag: %d, want 201", code)
	}
	code, _ = call(t, "GET", cloud.authURL()+"/v3/projects/"+p.ID+"/tags/z", adminSession(t).token(), nil)
	if code != http.StatusNoContent {
		t.Errorf("GET a single tag: %d, want 204", code)
	}
	if err := projects.DeleteTags(ctx, ic, p.ID).ExtractErr(); err != nil {
		t.Errorf("DELETE tags: %v", err)
	}
	if lt, err = projects.ListTags(ctx, ic, p.ID).Extract(); err != nil || len(lt.Tags) != 0 {
		t.Errorf("GET tags after delete: %+v %v", lt, err)
	}
	code, _ = call(t, "GET", cloud.authURL()+"/v3/projects/"+p.ID+"/tags/z", adminSession(t).token(), nil)
	if code != http.StatusNotFound {
		t.Errorf("GET a deleted tag: %d, want 404", code)
	}

	// A child project; its parent cannot be deleted before it.
	child, err := projects.Create(ctx, ic, projects.CreateOpts{Name: name + "-child", ParentID: p.ID}).Extract()
	if err != nil {
		t.Fatalf("create child project: %v", err)
	}
	if child.ParentID != p.ID || child.DomainID != "default" {
		t.Errorf("child project %+v", child)
	}
	if ids := list(projects.ListOpts{ParentID: p.ID}); !slices.Equal(ids, []string{child.ID}) {
		t.Errorf("list parent_id=%s: %v", p.ID, ids)
	}
	wantCode(t, projects.Delete(ctx, ic, p.ID).ExtractErr(), http.StatusForbidden, "delete a project that has a child")
	if err := projects.Delete(ctx, ic, child.ID).ExtractErr(); err != nil {
		t.Errorf("delete child: %v", err)
	}
	if err := projects.Delete(ctx, ic, p.ID).ExtractErr(); err != nil {
		t.Errorf("delete project: %v", err)
	}
	_, err = projects.Get(ctx, ic, p.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted project")
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	name := uniq("acc-user")
	enabled := true
	u, err := users.Create(ctx, ic, users.CreateOpts{
		Name: name, DomainID: "default", Description: "acceptance", Enabled: &enabled,
		Extra: map[string]any{"email": "user@example.com", "team": "qa"},
	}).Extract()
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	t.Cleanup(func() { users.Delete(ctx, ic, u.ID) })
	if u.Name != name || u.DomainID != "default" || !u.Enabled || u.ID == "" {
		t.Errorf("created user %+v", u)
	}
	if u.Extra["email"] != "user@example.com" || u.Extra["team"] != "qa" || u.Description != "acceptance" {
		t.Errorf("created user extra %v description %q", u.Extra, u.Description)
	}
	if _, ok := u.Extra["password"]; ok {
		t.Errorf("user body has a password: %v", u.Extra)
	}
	_, err = users.Create(ctx, ic, users.CreateOpts{Name: name, DomainID: "default"}).Extract()
	wantCode(t, err, http.StatusConflict, "create a user with a name in use")

	got, err := users.Get(ctx, ic, u.ID).Extract()
	if err != nil || got.Name != name || got.Extra["email"] != "user@example.com" {
		t.Errorf("get user: %+v %v", got, err)
	}
	pages, err := users.List(ic, users.ListOpts{Name: name, DomainID: "default"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	us, _ := users.ExtractUsers(pages)
	if len(us) != 1 || us[0].ID != u.ID {
		t.Errorf("list users name=%s: %+v", name, us)
	}
	pages, err = users.List(ic, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	us, _ = users.ExtractUsers(pages)
	for _, want := range []string{"admin", "demo", name} {
		if !slices.ContainsFunc(us, func(x users.User) bool { return x.Name == want }) {
			t.Errorf("list users lacks %s", want)
		}
	}

	desc := "changed"
	disabled := false
	upd, err := users.Update(ctx, ic, u.ID, users.UpdateOpts{Description: &desc, Enabled: &disabled,
		Extra: map[string]any{"email": "new@example.com"}}).Extract()
	if err != nil {
		t.Fatalf("update user: %v", err)
	}
	if upd.Description != desc || upd.Enabled || upd.Extra["email"] != "new@example.com" || upd.Extra["team"] != "qa" {
		t.Errorf("updated user %+v (want description, disabled, new email, team kept)", upd)
	}
	if got, err = users.Get(ctx, ic, u.ID).Extract(); err != nil || got.Enabled || got.Extra["email"] != "new@example.com" {
		t.Errorf("get updated user: %+v %v", got, err)
	}
	pages, err = users.List(ic, users.ListOpts{Name: name, Enabled: &disabled}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if us, _ = users.ExtractUsers(pages); len(us) != 1 {
		t.Errorf("list users name=%s enabled=false: %+v", name, us)
	}

	if err := users.Delete(ctx, ic, u.ID).ExtractErr(); err != nil {
		t.Fatalf("delete user: %v", err)
	}
	_, err = users.Get(ctx, ic, u.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted user")
	wantCode(t, users.Delete(ctx, ic, u.ID).ExtractErr(), http.StatusNotFound, "delete a deleted user")
}

func TestGroups(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	name := uniq("acc-group")
	g, err := groups.Create(ctx, ic, groups.CreateOpts{Name: name, DomainID: "default", Description: "acceptance"}).Extract()
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	t.Cleanup(func() { groups.Delete(ctx, ic, g.ID) })
	if g.Name != name || g.DomainID != "default" || g.Description != "acceptance" {
		t.Errorf("created group %+v", g)
	}
	_, err = groups.Create(ctx, ic, groups.CreateOpts{Name: name, DomainID: "default"}).Extract()
	wantCode(t, err, http.StatusConflict, "create a group with a name in use")

	u, err := users.Create(ctx, ic, users.CreateOpts{Name: uniq("acc-member"), DomainID: "default"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Delete(ctx, ic, u.ID) })

	if got, err := groups.Get(ctx, ic, g.ID).Extract(); err != nil || got.Name != name {
		t.Errorf("get group: %+v %v", got, err)
	}
	pages, err := groups.List(ic, groups.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gs, _ := groups.ExtractGroups(pages); len(gs) != 1 || gs[0].ID != g.ID {
		t.Errorf("list groups name=%s: %+v", name, gs)
	}
	desc := "changed"
	if upd, err := groups.Update(ctx, ic, g.ID, groups.UpdateOpts{Description: &desc}).Extract(); err != nil || upd.Description != desc {
		t.Errorf("update group: %+v %v", upd, err)
	}

	members := func() []string {
		t.Helper()
		pages, err := users.ListInGroup(ic, g.ID, nil).AllPages(ctx)
		if err != nil {
			t.Fatalf("list group users: %v", err)
		}
		us, _ := users.ExtractUsers(pages)
		var ids []string
		for _, x := range us {
			ids = append(ids, x.ID)
		}
		return ids
	}
	if m := members(); len(m) != 0 {
		t.Errorf("new group has members %v", m)
	}
	if err := users.AddToGroup(ctx, ic, g.ID, u.ID).ExtractErr(); err != nil {
		t.Fatalf("add user to group: %v", err)
	}
	if ok, err := users.IsMemberOfGroup(ctx, ic, g.ID, u.ID).Extract(); err != nil || !ok {
		t.Errorf("is member after add: %v %v", ok, err)
	}
	if m := members(); !slices.Equal(m, []string{u.ID}) {
		t.Errorf("group users %v, want %s", m, u.ID)
	}
	pages, err = users.ListGroups(ic, u.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gs, _ := groups.ExtractGroups(pages); len(gs) != 1 || gs[0].ID != g.ID {
		t.Errorf("user's groups %+v", gs)
	}
	if err := users.RemoveFromGroup(ctx, ic, g.ID, u.ID).ExtractErr(); err != nil {
		t.Fatalf("remove user from group: %v", err)
	}
	if ok, err := users.IsMemberOfGroup(ctx, ic, g.ID, u.ID).Extract(); err != nil || ok {
		t.Errorf("is member after remove: %v %v", ok, err)
	}
	if m := members(); len(m) != 0 {
		t.Errorf("group users after remove: %v", m)
	}
	wantCode(t, users.AddToGroup(ctx, ic, g.ID, "no-such-user").ExtractErr(), http.StatusNotFound, "add an unknown user to a group")

	if err := groups.Delete(ctx, ic, g.ID).ExtractErr(); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	_, err = groups.Get(ctx, ic, g.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted group")
}

func TestRoles(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	name := uniq("acc-role")
	r, err := roles.Create(ctx, ic, roles.CreateOpts{Name: name, Description: "acceptance"}).Extract()
	if err != nil {
		t.Fatalf("create role: %v", err)
	}
	t.Cleanup(func() { roles.Delete(ctx, ic, r.ID) })
	if r.Name != name || r.ID == "" {
		t.Errorf("created role %+v", r)
	}
	_, err = roles.Create(ctx, ic, roles.CreateOpts{Name: name}).Extract()
	wantCode(t, err, http.StatusConflict, "create a role with a name in use")

	if got, err := roles.Get(ctx, ic, r.ID).Extract(); err != nil || got.Name != name {
		t.Errorf("get role: %+v %v", got, err)
	}
	pages, err := roles.List(ic, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := roles.ExtractRoles(pages)
	for _, want := range []string{"admin", "member", "reader", name} {
		if !slices.ContainsFunc(rs, func(x roles.Role) bool { return x.Name == want }) {
			t.Errorf("list roles lacks %s: %+v", want, rs)
		}
	}
	newName := name + "-renamed"
	if upd, err := roles.Update(ctx, ic, r.ID, roles.UpdateOpts{Name: newName}).Extract(); err != nil || upd.Name != newName {
		t.Errorf("update role: %+v %v", upd, err)
	}
	if err := roles.Delete(ctx, ic, r.ID).ExtractErr(); err != nil {
		t.Fatalf("delete role: %v", err)
	}
	_, err = roles.Get(ctx, ic, r.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted role")
}

// assignmentKey is a role assignment as role@scope/actor, with names.
func assignmentKey(a roles.RoleAssignment) string {
	actor := "user:" + a.User.ID
	if a.Group.ID != "" {
		actor = "group:" + a.Group.ID
	}
	scope := "project:" + a.Scope.Project.ID
	if a.Scope.Domain.ID != "" {
		scope = "domain:" + a.Scope.Domain.ID
	}
	return a.Role.ID + "@" + scope + "/" + actor
}

func TestRoleAssignments(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	yes := true

	p, err := projects.Create(ctx, ic, projects.CreateOpts{Name: uniq("acc-ra-project")}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { projects.Delete(ctx, ic, p.ID) })
	u, err := users.Create(ctx, ic, users.CreateOpts{Name: uniq("acc-ra-user"), DomainID: "default"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Delete(ctx, ic, u.ID) })
	g, err := groups.Create(ctx, ic, groups.CreateOpts{Name: uniq("acc-ra-group"), DomainID: "default"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { groups.Delete(ctx, ic, g.ID) })
	r, err := roles.Create(ctx, ic, roles.CreateOpts{Name: uniq("acc-ra-role")}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { roles.Delete(ctx, ic, r.ID) })
	if err := users.AddToGroup(ctx, ic, g.ID, u.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	member, reader := roleID(t, ic, "member"), roleID(t, ic, "reader")

	// r to the user on the project and on the Default domain; member to the group on the project.
	for _, a := range []roles.AssignOpts{
		{UserID: u.ID, ProjectID: p.ID}, {UserID: u.ID, DomainID: "default"},
	} {
		if err := roles.Assign(ctx, ic, r.ID, a).ExtractErr(); err != nil {
			t.Fatalf("assign %+v: %v", a, err)
		}
	}
	if err := roles.Assign(ctx, ic, member, roles.AssignOpts{GroupID: g.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Fatalf("assign member to group: %v", err)
	}
	// Assigning twice is fine.
	if err := roles.Assign(ctx, ic, r.ID, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Errorf("assign again: %v", err)
	}
	if err := roles.Validate(ctx, ic, r.ID, roles.ValidateOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Errorf("check assignment on project: %v", err)
	}
	if err := roles.Validate(ctx, ic, r.ID, roles.ValidateOpts{UserID: u.ID, DomainID: "default"}).ExtractErr(); err != nil {
		t.Errorf("check assignment on domain: %v", err)
	}
	wantCode(t, roles.Validate(ctx, ic, member, roles.ValidateOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(),
		http.StatusNotFound, "check a direct assignment the user has only through a group")

	pages, err := roles.ListAssignmentsOnResource(ic, roles.ListAssignmentsOnResourceOpts{UserID: u.ID, ProjectID: p.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs, _ := roles.ExtractRoles(pages); len(rs) != 1 || rs[0].ID != r.ID {
		t.Errorf("roles of the user on the project: %+v", rs)
	}

	list := func(opts roles.ListAssignmentsOpts) []roles.RoleAssignment {
		t.Helper()
		pages, err := roles.ListAssignments(ic, opts).AllPages(ctx)
		if err != nil {
			t.Fatalf("list role assignments %+v: %v", opts, err)
		}
		as, err := roles.ExtractRoleAssignments(pages)
		if err != nil {
			t.Fatal(err)
		}
		return as
	}
	keys := func(as []roles.RoleAssignment) []string {
		var out []string
		for _, a := range as {
			out = append(out, assignmentKey(a))
		}
		sort.Strings(out)
		return out
	}
	want := func(ks ...string) []string { sort.Strings(ks); return ks }

	direct := list(roles.ListAssignmentsOpts{UserID: u.ID})
	if got, w := keys(direct), want(r.ID+"@project:"+p.ID+"/user:"+u.ID, r.ID+"@domain:default/user:"+u.ID); !slices.Equal(got, w) {
		t.Errorf("direct assignments of the user:\n got %v\nwant %v", got, w)
	}
	onProject := list(roles.ListAssignmentsOpts{ScopeProjectID: p.ID})
	if got, w := keys(onProject), want(r.ID+"@project:"+p.ID+"/user:"+u.ID, member+"@project:"+p.ID+"/group:"+g.ID); !slices.Equal(got, w) {
		t.Errorf("assignments on the project:\n got %v\nwant %v", got, w)
	}

	// Effective: group assignments expand to the member, implied roles show.
	eff := list(roles.ListAssignmentsOpts{UserID: u.ID, Effective: &yes, IncludeNames: &yes})
	if got, w := keys(eff), want(
		r.ID+"@project:"+p.ID+"/user:"+u.ID,
		r.ID+"@domain:default/user:"+u.ID,
		member+"@project:"+p.ID+"/user:"+u.ID,
		reader+"@project:"+p.ID+"/user:"+u.ID,
	); !slices.Equal(got, w) {
		t.Errorf("effective assignments of the user:\n got %v\nwant %v", got, w)
	}
	for _, a := range eff {
		if a.User.Name != u.Name || a.User.Domain.ID != "default" || a.User.Domain.Name != "Default" {
			t.Errorf("include_names: user %+v, want %s in Default", a.User, u.Name)
		}
		if a.Role.Name == "" {
			t.Errorf("include_names: role without a name: %+v", a.Role)
		}
		if a.Scope.Project.ID != "" && (a.Scope.Project.Name != p.Name || a.Scope.Project.Domain.Name != "Default") {
			t.Errorf("include_names: project %+v, want %s in Default", a.Scope.Project, p.Name)
		}
		if a.Scope.Domain.ID != "" && a.Scope.Domain.Name != "Default" {
			t.Errorf("include_names: domain %+v", a.Scope.Domain)
		}
	}
	effProject := list(roles.ListAssignmentsOpts{ScopeProjectID: p.ID, Effective: &yes})
	if got, w := keys(effProject), want(
		r.ID+"@project:"+p.ID+"/user:"+u.ID,
		member+"@project:"+p.ID+"/user:"+u.ID,
		reader+"@project:"+p.ID+"/user:"+u.ID,
	); !slices.Equal(got, w) {
		t.Errorf("effective assignments on the project:\n got %v\nwant %v", got, w)
	}
	if got := keys(list(roles.ListAssignmentsOpts{RoleID: r.ID})); len(got) != 2 {
		t.Errorf("assignments of role %s: %v", r.ID, got)
	}

	// The user's projects include the one reached through the group.
	pages, err = users.ListProjects(ic, u.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := projects.ExtractProjects(pages)
	if len(ps) != 1 || ps[0].ID != p.ID {
		t.Errorf("user's projects %+v, want %s", ps, p.ID)
	}

	// Unassign everything.
	for _, a := range []roles.UnassignOpts{{UserID: u.ID, ProjectID: p.ID}, {UserID: u.ID, DomainID: "default"}} {
		if err := roles.Unassign(ctx, ic, r.ID, a).ExtractErr(); err != nil {
			t.Errorf("unassign %+v: %v", a, err)
		}
	}
	if err := roles.Unassign(ctx, ic, member, roles.UnassignOpts{GroupID: g.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
		t.Errorf("unassign member from group: %v", err)
	}
	wantCode(t, roles.Unassign(ctx, ic, r.ID, roles.UnassignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(),
		http.StatusNotFound, "unassign a role that is not assigned")
	wantCode(t, roles.Validate(ctx, ic, r.ID, roles.ValidateOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(),
		http.StatusNotFound, "check a removed assignment")
	if got := keys(list(roles.ListAssignmentsOpts{UserID: u.ID, Effective: &yes})); len(got) != 0 {
		t.Errorf("effective assignments after unassign: %v", got)
	}
	wantCode(t, roles.Assign(ctx, ic, "no-such-role", roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(),
		http.StatusNotFound, "assign an unknown role")
	wantCode(t, roles.Assign(ctx, ic, r.ID, roles.AssignOpts{UserID: "no-such-user", ProjectID: p.ID}).ExtractErr(),
		http.StatusNotFound, "assign to an unknown user")
	wantCode(t, roles.Assign(ctx, ic, r.ID, roles.AssignOpts{UserID: u.ID, ProjectID: "no-such-project"}).ExtractErr(),
		http.StatusNotFound, "assign on an unknown project")
}

// TestPasswordChange: a user changes its password; its tokens are revoked,
// the old password stops working and the new one works. Disabling the user
// then revokes its tokens and stops authentication.
func TestPasswordChange(t *testing.T) {
	ctx := context.Background()
	admin := adminSession(t)
	ic := admin.ic
	demoProject := tokenProject(t, demoSession(t))
	name, oldPW, newPW := uniq("acc-pw"), "old-Secret-1", "new-Secret-2"
	u, err := users.Create(ctx, ic, users.CreateOpts{Name: name, DomainID: "default", Password: oldPW, DefaultProjectID: demoProject.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Delete(ctx, ic, u.ID) })
	if err := roles.Assign(ctx, ic, roleID(t, ic, "member"), roles.AssignOpts{UserID: u.ID, ProjectID: demoProject.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	upc, uic, err := cloud.login(ctx, cloud.authOpts(name, oldPW, "demo"))
	if err != nil {
		t.Fatalf("authenticate with the first password: %v", err)
	}
	oldToken := upc.Token()

	err = users.ChangePassword(ctx, uic, u.ID, users.ChangePasswordOpts{OriginalPassword: "wrong", Password: newPW}).ExtractErr()
	wantCode(t, err, http.StatusUnauthorized, "change password with a wrong original password")
	err = users.ChangePassword(ctx, demoSession(t).ic, u.ID, users.ChangePasswordOpts{OriginalPassword: oldPW, Password: newPW}).ExtractErr()
	wantCode(t, err, http.StatusForbidden, "change another user's password")
	if err := users.ChangePassword(ctx, uic, u.ID, users.ChangePasswordOpts{OriginalPassword: oldPW, Password: newPW}).ExtractErr(); err != nil {
		t.Fatalf("change password: %v", err)
	}

	if valid, err := tokens.Validate(ctx, ic, oldToken); err != nil || valid {
		t.Errorf("token issued before the password change: valid=%v err=%v, want revoked", valid, err)
	}
	_, err = users.Get(ctx, uic, u.ID).Extract()
	wantCode(t, err, http.StatusUnauthorized, "use a token issued before the password change")

	_, _, err = cloud.login(ctx, cloud.authOpts(name, oldPW, "demo"))
	wantCode(t, err, http.StatusUnauthorized, "authenticate with the old password")
	npc, nic, err := cloud.login(ctx, cloud.authOpts(name, newPW, "demo"))
	if err != nil {
		t.Fatalf("authenticate with the new password: %v", err)
	}
	if got, err := users.Get(ctx, nic, u.ID).Extract(); err != nil || got.Name != name {
		t.Errorf("user reads itself with the new token: %+v %v", got, err)
	}

	// Disabling the user revokes its tokens and stops authentication.
	f, tr := false, true
	if _, err := users.Update(ctx, ic, u.ID, users.UpdateOpts{Enabled: &f}).Extract(); err != nil {
		t.Fatal(err)
	}
	if valid, err := tokens.Validate(ctx, ic, npc.Token()); err != nil || valid {
		t.Errorf("token of a disabled user: valid=%v err=%v, want invalid", valid, err)
	}
	_, _, err = cloud.login(ctx, cloud.authOpts(name, newPW, "demo"))
	wantCode(t, err, http.StatusUnauthorized, "authenticate as a disabled user")

	// Enabled again, the user authenticates; its old tokens stay revoked.
	if _, err := users.Update(ctx, ic, u.ID, users.UpdateOpts{Enabled: &tr}).Extract(); err != nil {
		t.Fatal(err)
	}
	epc, _, err := cloud.login(ctx, cloud.authOpts(name, newPW, "demo"))
	if err != nil {
		t.Fatalf("authenticate after being enabled again: %v", err)
	}
	if valid, err := tokens.Validate(ctx, ic, npc.Token()); err != nil || valid {
		t.Errorf("token revoked by disabling, after enabling again: valid=%v err=%v, want invalid", valid, err)
	}
	// Without a role on its project, a project-scoped token is no longer valid.
	if err := roles.Unassign(ctx, ic, roleID(t, ic, "member"), roles.UnassignOpts{UserID: u.ID, ProjectID: demoProject.ID}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if valid, err := tokens.Validate(ctx, ic, epc.Token()); err != nil || valid {
		t.Errorf("project token of a user that lost its roles on the project: valid=%v err=%v, want invalid", valid, err)
	}
}

func TestApplicationCredentials(t *testing.T) {
	ctx := context.Background()
	demo, admin := demoSession(t), adminSession(t)
	demoUser, demoProject := tokenUser(t, demo), tokenProject(t, demo)
	name := uniq("acc-appcred")

	ac, err := applicationcredentials.Create(ctx, demo.ic, demoUser.ID, applicationcredentials.CreateOpts{
		Name: name, Description: "acceptance"}).Extract()
	if err != nil {
		t.Fatalf("create application credential: %v", err)
	}
	t.Cleanup(func() { applicationcredentials.Delete(ctx, demo.ic, demoUser.ID, ac.ID) })
	if ac.ID == "" || ac.Secret == "" || ac.ProjectID != demoProject.ID || ac.Name != name || ac.Unrestricted {
		t.Errorf("created application credential %+v", ac)
	}
	if !slices.ContainsFunc(ac.Roles, func(r applicationcredentials.Role) bool { return r.Name == "member" }) {
		t.Errorf("application credential roles %+v, want the token's (member)", ac.Roles)
	}
	_, err = applicationcredentials.Create(ctx, demo.ic, demoUser.ID, applicationcredentials.CreateOpts{Name: name}).Extract()
	wantCode(t, err, http.StatusConflict, "create an application credential with a name in use")

	got, err := applicationcredentials.Get(ctx, demo.ic, demoUser.ID, ac.ID).Extract()
	if err != nil || got.Name != name || got.Secret != "" {
		t.Errorf("get application credential: %+v %v (want no secret)", got, err)
	}
	pages, err := applicationcredentials.List(demo.ic, demoUser.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if acs, _ := applicationcredentials.ExtractApplicationCredentials(pages); !slices.ContainsFunc(acs,
		func(x applicationcredentials.ApplicationCredential) bool { return x.ID == ac.ID }) {
		t.Errorf("list application credentials lacks %s: %+v", ac.ID, acs)
	}
	_, err = applicationcredentials.Get(ctx, demo.ic, tokenUser(t, admin).ID, ac.ID).Extract()
	if err == nil {
		t.Errorf("demo read an application credential under admin's user id")
	}

	// Authenticate with id + secret.
	apc, aic, err := cloud.login(ctx, gophercloud.AuthOptions{ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret})
	if err != nil {
		t.Fatalf("authenticate with the application credential: %v", err)
	}
	as := session{apc, aic}
	if u, p := tokenUser(t, as), tokenProject(t, as); u.ID != demoUser.ID || p.ID != demoProject.ID {
		t.Errorf("application credential token: user %+v project %+v", u, p)
	}
	var tok struct {
		Methods []string `json:"methods"`
		AppCred struct {
			ID         string `json:"id"`
			Restricted bool   `json:"restricted"`
		} `json:"application_credential"`
	}
	if err := authResult(t, as).ExtractInto(&tok); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.Methods, []string{"application_credential"}) || tok.AppCred.ID != ac.ID || !tok.AppCred.Restricted {
		t.Errorf("application credential token body: %+v", tok)
	}
	// A restricted application credential cannot make another one.
	_, err = applicationcredentials.Create(ctx, aic, demoUser.ID, applicationcredentials.CreateOpts{Name: name + "-2"}).Extract()
	wantCode(t, err, http.StatusForbidden, "create an application credential with an application credential token")

	// And with name + user.
	_, _, err = cloud.login(ctx, gophercloud.AuthOptions{ApplicationCredentialName: name, ApplicationCredentialSecret: ac.Secret,
		Username: "demo", DomainID: "default"})
	if err != nil {
		t.Errorf("authenticate with the application credential by name: %v", err)
	}
	_, _, err = cloud.login(ctx, gophercloud.AuthOptions{ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: "wrong"})
	wantCode(t, err, http.StatusUnauthorized, "authenticate with a wrong application credential secret")

	// One limited to a role the user has (reader, implied by member) gives tokens with that role only.
	ro, err := applicationcredentials.Create(ctx, demo.ic, demoUser.ID, applicationcredentials.CreateOpts{
		Name: name + "-ro", Roles: []applicationcredentials.Role{{Name: "reader"}}}).Extract()
	if err != nil {
		t.Errorf("create a reader-only application credential: %v", err)
	} else {
		t.Cleanup(func() { applicationcredentials.Delete(ctx, demo.ic, demoUser.ID, ro.ID) })
		rpc, _, err := cloud.login(ctx, gophercloud.AuthOptions{ApplicationCredentialID: ro.ID, ApplicationCredentialSecret: ro.Secret})
		if err != nil {
			t.Errorf("authenticate with the reader-only application credential: %v", err)
		} else if rs, _ := rpc.GetAuthResult().(tokens.CreateResult).ExtractRoles(); !slices.Equal(roleNames(rs), []string{"reader"}) {
			t.Errorf("reader-only application credential token roles %v, want [reader]", roleNames(rs))
		}
	}
	_, err = applicationcredentials.Create(ctx, demo.ic, demoUser.ID, applicationcredentials.CreateOpts{
		Name: name + "-admin", Roles: []applicationcredentials.Role{{Name: "admin"}}}).Extract()
	if err == nil || !(gophercloud.ResponseCodeIs(err, 400) || gophercloud.ResponseCodeIs(err, 403) || gophercloud.ResponseCodeIs(err, 404)) {
		t.Errorf("create an application credential with a role the user lacks: %v, want refused", err)
	}

	if err := applicationcredentials.Delete(ctx, demo.ic, demoUser.ID, ac.ID).ExtractErr(); err != nil {
		t.Fatalf("delete application credential: %v", err)
	}
	_, err = applicationcredentials.Get(ctx, demo.ic, demoUser.ID, ac.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted application credential")
	_, _, err = cloud.login(ctx, gophercloud.AuthOptions{ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret})
	wantCode(t, err, http.StatusUnauthorized, "authenticate with a deleted application credential")
	if valid, err := tokens.Validate(ctx, admin.ic, apc.Token()); err != nil || valid {
		t.Errorf("token of a deleted application credential: valid=%v err=%v, want invalid", valid, err)
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	admin, demo := adminSession(t), demoSession(t)

	if valid, err := tokens.Validate(ctx, admin.ic, demo.token()); err != nil || !valid {
		t.Errorf("validate demo's token: %v %v", valid, err)
	}
	got := tokens.Get(ctx, admin.ic, demo.token())
	if u, err := got.ExtractUser(); err != nil || u.Name != "demo" {
		t.Errorf("GET demo's token: user %+v %v", u, err)
	}
	if p, err := got.ExtractProject(); err != nil || p.Name != "demo" {
		t.Errorf("GET demo's token: project %+v %v", p, err)
	}
	if sc, err := got.ExtractServiceCatalog(); err != nil || len(sc.Entries) == 0 {
		t.Errorf("GET demo's token: catalog %+v %v", sc, err)
	}
	if id, err := got.ExtractTokenID(); err != nil || id != demo.token() {
		t.Errorf("GET demo's token: X-Subject-Token %q %v", id, err)
	}
	// A user may validate its own token.
	if valid, err := tokens.Validate(ctx, demo.ic, demo.token()); err != nil || !valid {
		t.Errorf("demo validates its own token: %v %v", valid, err)
	}
	if valid, err := tokens.Validate(ctx, admin.ic, "gAAAAABnot-a-token"); err != nil || valid {
		t.Errorf("validate garbage: valid=%v err=%v, want false and no error", valid, err)
	}
	_, err := tokens.Get(ctx, admin.ic, "gAAAAABnot-a-token").Extract()
	wantCode(t, err, http.StatusNotFound, "GET an invalid subject token")

	// A second token from the first (token method), then revoked.
	pc, ic, err := cloud.login(ctx, gophercloud.AuthOptions{TokenID: demo.token(),
		Scope: &gophercloud.AuthScope{ProjectName: "demo", DomainID: "default"}})
	if err != nil {
		t.Fatalf("authenticate with a token: %v", err)
	}
	second := pc.Token()
	if second == demo.token() {
		t.Fatal("token method returned the same token")
	}
	if valid, err := tokens.Validate(ctx, admin.ic, second); err != nil || !valid {
		t.Errorf("validate the second token: %v %v", valid, err)
	}
	if err := tokens.Revoke(ctx, admin.ic, second).Err; err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if valid, err := tokens.Validate(ctx, admin.ic, second); err != nil || valid {
		t.Errorf("validate a revoked token: valid=%v err=%v", valid, err)
	}
	_, err = users.Get(ctx, ic, tokenUser(t, demo).ID).Extract()
	wantCode(t, err, http.StatusUnauthorized, "use a revoked token")
	wantCode(t, tokens.Revoke(ctx, admin.ic, second).Err, http.StatusNotFound, "revoke a revoked token")
	// Revoking one token of a chain leaves the token it came from valid.
	if valid, err := tokens.Validate(ctx, admin.ic, demo.token()); err != nil || !valid {
		t.Errorf("the original token after revoking the one made from it: valid=%v err=%v", valid, err)
	}

	// No token, a bad token.
	code, body := call(t, "GET", cloud.authURL()+"/v3/users", "", nil)
	if code != http.StatusUnauthorized || body["error"] == nil {
		t.Errorf("GET /v3/users without a token: %d %v", code, body)
	}
	code, _ = call(t, "GET", cloud.authURL()+"/v3/users", "gAAAAABbad", nil)
	if code != http.StatusUnauthorized {
		t.Errorf("GET /v3/users with a bad token: %d", code)
	}
}

// TestPolicy: demo, a member of project demo, cannot use the admin APIs but
// can read itself, its project and its domain.
func TestPolicy(t *testing.T) {
	ctx := context.Background()
	admin, demo := adminSession(t), demoSession(t)
	ic := demo.ic
	adminUser, adminProject := tokenUser(t, admin), tokenProject(t, admin)
	demoUser, demoProject := tokenUser(t, demo), tokenProject(t, demo)
	adminRole := roleID(t, admin.ic, "admin")

	forbidden := map[string]error{}
	_, forbidden["list users"] = users.List(ic, nil).AllPages(ctx)
	_, forbidden["create user"] = users.Create(ctx, ic, users.CreateOpts{Name: uniq("demo-made")}).Extract()
	_, forbidden["get admin user"] = users.Get(ctx, ic, adminUser.ID).Extract()
	_, forbidden["update admin user"] = users.Update(ctx, ic, adminUser.ID, users.UpdateOpts{Extra: map[string]any{"x": 1}}).Extract()
	forbidden["delete admin user"] = users.Delete(ctx, ic, adminUser.ID).ExtractErr()
	_, forbidden["list projects"] = projects.List(ic, nil).AllPages(ctx)
	_, forbidden["create project"] = projects.Create(ctx, ic, projects.CreateOpts{Name: uniq("demo-made")}).Extract()
	_, forbidden["get admin project"] = projects.Get(ctx, ic, adminProject.ID).Extract()
	forbidden["delete demo project"] = projects.Delete(ctx, ic, demoProject.ID).ExtractErr()
	_, forbidden["create domain"] = domains.Create(ctx, ic, domains.CreateOpts{Name: uniq("demo-made")}).Extract()
	forbidden["delete default domain"] = domains.Delete(ctx, ic, "default").ExtractErr()
	_, forbidden["create role"] = roles.Create(ctx, ic, roles.CreateOpts{Name: uniq("demo-made")}).Extract()
	_, forbidden["list role assignments"] = roles.ListAssignments(ic, roles.ListAssignmentsOpts{}).AllPages(ctx)
	forbidden["assign admin to self"] = roles.Assign(ctx, ic, adminRole, roles.AssignOpts{UserID: demoUser.ID, ProjectID: demoProject.ID}).ExtractErr()
	_, forbidden["list groups"] = groups.List(ic, nil).AllPages(ctx)
	_, forbidden["create group"] = groups.Create(ctx, ic, groups.CreateOpts{Name: uniq("demo-made")}).Extract()
	_, forbidden["list admin's application credentials"] = applicationcredentials.List(ic, adminUser.ID, nil).AllPages(ctx)
	for what, err := range forbidden {
		wantCode(t, err, http.StatusForbidden, "demo: "+what)
	}

	// What demo may do.
	if u, err := users.Get(ctx, ic, demoUser.ID).Extract(); err != nil || u.Name != "demo" {
		t.Errorf("demo reads itself: %+v %v", u, err)
	}
	if p, err := projects.Get(ctx, ic, demoProject.ID).Extract(); err != nil || p.Name != "demo" {
		t.Errorf("demo reads its project: %+v %v", p, err)
	}
	if d, err := domains.Get(ctx, ic, "default").Extract(); err != nil || d.Name != "Default" {
		t.Errorf("demo reads its domain: %+v %v", d, err)
	}
	pages, err := users.ListProjects(ic, demoUser.ID).AllPages(ctx)
	if err != nil {
		t.Errorf("demo lists its projects: %v", err)
	} else if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != demoProject.ID {
		t.Errorf("demo's projects %+v", ps)
	}
	pages, err = projects.ListAvailable(ic).AllPages(ctx)
	if err != nil {
		t.Errorf("GET /v3/auth/projects: %v", err)
	} else if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != demoProject.ID {
		t.Errorf("demo's available projects %+v", ps)
	}

	// Fault body shape.
	code, body := call(t, "POST", cloud.authURL()+"/v3/domains", demo.token(), map[string]any{"domain": map[string]any{"name": "x"}})
	e, _ := body["error"].(map[string]any)
	if code != http.StatusForbidden || e["code"] != float64(403) || e["title"] != "Forbidden" || e["message"] == "" {
		t.Errorf("POST /v3/domains as demo: %d %v, want a Keystone 403 fault", code, body)
	}
}

func TestUnknownIDs(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	const id = "0123456789abcdef0123456789abcdef"
	notFound := map[string]error{}
	_, notFound["get user"] = users.Get(ctx, ic, id).Extract()
	_, notFound["update user"] = users.Update(ctx, ic, id, users.UpdateOpts{Extra: map[string]any{"x": 1}}).Extract()
	notFound["delete user"] = users.Delete(ctx, ic, id).ExtractErr()
	_, notFound["get project"] = projects.Get(ctx, ic, id).Extract()
	_, notFound["update project"] = projects.Update(ctx, ic, id, projects.UpdateOpts{Name: "x"}).Extract()
	notFound["delete project"] = projects.Delete(ctx, ic, id).ExtractErr()
	_, notFound["get domain"] = domains.Get(ctx, ic, id).Extract()
	notFound["delete domain"] = domains.Delete(ctx, ic, id).ExtractErr()
	_, notFound["get group"] = groups.Get(ctx, ic, id).Extract()
	notFound["delete group"] = groups.Delete(ctx, ic, id).ExtractErr()
	_, notFound["get role"] = roles.Get(ctx, ic, id).Extract()
	notFound["delete role"] = roles.Delete(ctx, ic, id).ExtractErr()
	_, notFound["list tags of project"] = projects.ListTags(ctx, ic, id).Extract()
	_, notFound["list users of group"] = users.ListInGroup(ic, id, nil).AllPages(ctx)
	_, notFound["get application credential"] = applicationcredentials.Get(ctx, ic, tokenUser(t, adminSession(t)).ID, id).Extract()
	for what, err := range notFound {
		wantCode(t, err, http.StatusNotFound, what)
	}
	code, body := call(t, "GET", cloud.authURL()+"/v3/users/"+id, adminSession(t).token(), nil)
	e, _ := body["error"].(map[string]any)
	if code != http.StatusNotFound || e["code"] != float64(404) || e["title"] != "Not Found" {
		t.Errorf("GET unknown user: %d %v, want a Keystone 404 fault", code, body)
	}
}

// skipIfAbsent skips the test when the API answers 404 for the whole
// collection: the route is not implemented yet.
func skipIfAbsent(t *testing.T, err error, what string) {
	t.Helper()
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Skipf("%s answers 404: not implemented yet (%v)", what, err)
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestRegions(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	pages, err := regions.List(ic, nil).AllPages(ctx)
	skipIfAbsent(t, err, "GET /v3/regions")
	rs, _ := regions.ExtractRegions(pages)
	if !slices.ContainsFunc(rs, func(r regions.Region) bool { return r.ID == "RegionOne" }) {
		t.Errorf("regions lack RegionOne: %+v", rs)
	}
	id := uniq("acc-region")
	r, err := regions.Create(ctx, ic, regions.CreateOpts{ID: id, Description: "acceptance"}).Extract()
	if err != nil {
		t.Fatalf("create region: %v", err)
	}
	t.Cleanup(func() { regions.Delete(ctx, ic, id) })
	if r.ID != id || r.Description != "acceptance" {
		t.Errorf("created region %+v", r)
	}
	_, err = regions.Create(ctx, ic, regions.CreateOpts{ID: id}).Extract()
	wantCode(t, err, http.StatusConflict, "create a region with an id in use")
	if got, err := regions.Get(ctx, ic, id).Extract(); err != nil || got.ID != id {
		t.Errorf("get region: %+v %v", got, err)
	}
	desc := "changed"
	if upd, err := regions.Update(ctx, ic, id, regions.UpdateOpts{Description: &desc}).Extract(); err != nil || upd.Description != desc {
		t.Errorf("update region: %+v %v", upd, err)
	}
	child, err := regions.Create(ctx, ic, regions.CreateOpts{ID: id + "-child", ParentRegionID: id}).Extract()
	if err != nil || child.ParentRegionID != id {
		t.Fatalf("create child region: %+v %v", child, err)
	}
	t.Cleanup(func() { regions.Delete(ctx, ic, child.ID) })
	pages, err = regions.List(ic, regions.ListOpts{ParentRegionID: id}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs, _ := regions.ExtractRegions(pages); len(cs) != 1 || cs[0].ID != child.ID {
		t.Errorf("list parent_region_id=%s: %+v", id, cs)
	}
	_, err = regions.Create(ctx, ic, regions.CreateOpts{ID: id + "-orphan", ParentRegionID: "no-such-region"}).Extract()
	if err == nil || !(gophercloud.ResponseCodeIs(err, 400) || gophercloud.ResponseCodeIs(err, 404)) {
		t.Errorf("create a region under an unknown parent: %v, want 400 or 404", err)
	}
	_, err = regions.Create(ctx, demoSession(t).ic, regions.CreateOpts{ID: id + "-demo"}).Extract()
	wantCode(t, err, http.StatusForbidden, "demo creates a region")
	// As in Keystone, deleting a region deletes its children.
	if err := regions.Delete(ctx, ic, id).ExtractErr(); err != nil {
		t.Fatalf("delete region: %v", err)
	}
	_, err = regions.Get(ctx, ic, id).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted region")
	_, err = regions.Get(ctx, ic, child.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get the child of a deleted region")
}

func TestServicesAndEndpoints(t *testing.T) {
	ctx := context.Background()
	ic := adminSession(t).ic
	pages, err := services.List(ic, nil).AllPages(ctx)
	skipIfAbsent(t, err, "GET /v3/services")
	ss, _ := services.ExtractServices(pages)
	var keystone string
	for _, s := range ss {
		if s.Type == "identity" {
			keystone = s.ID
		}
	}
	if keystone == "" {
		t.Errorf("services lack identity: %+v", ss)
	}

	typ := uniq("acc-type")
	svc, err := services.Create(ctx, ic, services.CreateOpts{Type: typ, Name: "acc-svc", Description: "acceptance"}).Extract()
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	t.Cleanup(func() { services.Delete(ctx, ic, svc.ID) })
	if svc.Type != typ || svc.Name != "acc-svc" || !svc.Enabled || svc.ID == "" {
		t.Errorf("created service %+v", svc)
	}
	if got, err := services.Get(ctx, ic, svc.ID).Extract(); err != nil || got.Type != typ {
		t.Errorf("get service: %+v %v", got, err)
	}
	pages, err = services.List(ic, services.ListOpts{ServiceType: typ}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ss, _ := services.ExtractServices(pages); len(ss) != 1 || ss[0].ID != svc.ID {
		t.Errorf("list services type=%s: %+v", typ, ss)
	}
	newName := "acc-svc-renamed"
	if upd, err := services.Update(ctx, ic, svc.ID, services.UpdateOpts{Name: &newName}).Extract(); err != nil || upd.Name != newName {
		t.Errorf("update service: %+v %v", upd, err)
	}
	_, err = services.Create(ctx, demoSession(t).ic, services.CreateOpts{Type: typ}).Extract()
	wantCode(t, err, http.StatusForbidden, "demo creates a service")

	t.Run("endpoints", func(t *testing.T) {
		pages, err := endpoints.List(ic, endpoints.ListOpts{ServiceID: keystone}).AllPages(ctx)
		skipIfAbsent(t, err, "GET /v3/endpoints")
		if eps, _ := endpoints.ExtractEndpoints(pages); len(eps) != 3 {
			t.Errorf("identity endpoints %+v, want public, internal, admin", eps)
		}
		url := "http://127.0.0.1:1/acc"
		ep, err := endpoints.Create(ctx, ic, endpoints.CreateOpts{Availability: gophercloud.AvailabilityPublic,
			ServiceID: svc.ID, Region: "RegionOne", URL: url}).Extract()
		if err != nil {
			t.Fatalf("create endpoint: %v", err)
		}
		t.Cleanup(func() { endpoints.Delete(ctx, ic, ep.ID) })
		if ep.URL != url || ep.ServiceID != svc.ID || ep.Availability != gophercloud.AvailabilityPublic || ep.Region != "RegionOne" || !ep.Enabled {
			t.Errorf("created endpoint %+v", ep)
		}
		_, err = endpoints.Create(ctx, ic, endpoints.CreateOpts{Availability: gophercloud.AvailabilityPublic,
			ServiceID: "no-such-service", URL: url}).Extract()
		if err == nil || !(gophercloud.ResponseCodeIs(err, 400) || gophercloud.ResponseCodeIs(err, 404)) {
			t.Errorf("create an endpoint of an unknown service: %v, want 400 or 404", err)
		}
		_, err = endpoints.Create(ctx, ic, endpoints.CreateOpts{Availability: "sideways", ServiceID: svc.ID, URL: url}).Extract()
		wantCode(t, err, http.StatusBadRequest, "create an endpoint with a bad interface")

		pages, err = endpoints.List(ic, endpoints.ListOpts{ServiceID: svc.ID, Availability: gophercloud.AvailabilityPublic}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if eps, _ := endpoints.ExtractEndpoints(pages); len(eps) != 1 || eps[0].ID != ep.ID {
			t.Errorf("list endpoints of the service: %+v", eps)
		}
		if got, err := endpoints.Get(ctx, ic, ep.ID).Extract(); err != nil || got.URL != url {
			t.Errorf("get endpoint: %+v %v", got, err)
		}
		url2 := url + "/v2"
		if upd, err := endpoints.Update(ctx, ic, ep.ID, endpoints.UpdateOpts{URL: url2}).Extract(); err != nil || upd.URL != url2 {
			t.Errorf("update endpoint: %+v %v", upd, err)
		}

		// A region with an endpoint cannot be deleted (Keystone: 403).
		rid := uniq("acc-ep-region")
		if _, err := regions.Create(ctx, ic, regions.CreateOpts{ID: rid}).Extract(); err != nil {
			t.Errorf("create region: %v", err)
		} else {
			t.Cleanup(func() { regions.Delete(ctx, ic, rid) })
			ep2, err := endpoints.Create(ctx, ic, endpoints.CreateOpts{Availability: gophercloud.AvailabilityInternal,
				ServiceID: svc.ID, Region: rid, URL: url}).Extract()
			if err != nil {
				t.Errorf("create endpoint in %s: %v", rid, err)
			} else {
				if ep2.Region != rid || ep2.RegionID != rid {
					t.Errorf("endpoint region %q region_id %q, want %s", ep2.Region, ep2.RegionID, rid)
				}
				wantCode(t, regions.Delete(ctx, ic, rid).ExtractErr(), http.StatusForbidden, "delete a region that has an endpoint")
				if err := endpoints.Delete(ctx, ic, ep2.ID).ExtractErr(); err != nil {
					t.Errorf("delete endpoint: %v", err)
				}
			}
			if err := regions.Delete(ctx, ic, rid).ExtractErr(); err != nil {
				t.Errorf("delete a region whose endpoint was deleted: %v", err)
			}
		}
		// As in Keystone, an unknown "region" (the legacy attribute) is
		// created; an unknown "region_id" is refused.
		legacy := uniq("acc-legacy-region")
		ep3, err := endpoints.Create(ctx, ic, endpoints.CreateOpts{Availability: gophercloud.AvailabilityAdmin,
			ServiceID: svc.ID, Region: legacy, URL: url}).Extract()
		if err != nil {
			t.Errorf("create an endpoint in a new region given as \"region\": %v", err)
		} else {
			if _, err := regions.Get(ctx, ic, legacy).Extract(); err != nil {
				t.Errorf("the region of an endpoint made with \"region\": %v", err)
			}
			endpoints.Delete(ctx, ic, ep3.ID)
			regions.Delete(ctx, ic, legacy)
		}
		code, body := call(t, "POST", cloud.authURL()+"/v3/endpoints", adminSession(t).token(), map[string]any{"endpoint": map[string]any{
			"interface": "public", "service_id": svc.ID, "region_id": uniq("acc-no-region"), "url": url}})
		if code != http.StatusBadRequest {
			t.Errorf("create an endpoint with an unknown region_id: %d %v, want 400", code, body)
		}

		// The new service and endpoint are in the catalog.
		inCatalog := func() bool {
			pages, err := catalog.List(ic).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := catalog.ExtractServiceCatalog(pages)
			for _, e := range entries {
				for _, x := range e.Endpoints {
					if e.ID == svc.ID && x.ID == ep.ID && x.URL == url2 {
						return true
					}
				}
			}
			return false
		}
		if !inCatalog() {
			t.Errorf("the new endpoint is not in the catalog")
		}
		f := false
		if _, err := endpoints.Update(ctx, ic, ep.ID, endpoints.UpdateOpts{Enabled: &f}).Extract(); err != nil {
			t.Errorf("disable endpoint: %v", err)
		} else if inCatalog() {
			t.Errorf("a disabled endpoint is in the catalog")
		}

		if err := endpoints.Delete(ctx, ic, ep.ID).ExtractErr(); err != nil {
			t.Fatalf("delete endpoint: %v", err)
		}
		_, err = endpoints.Get(ctx, ic, ep.ID).Extract()
		wantCode(t, err, http.StatusNotFound, "get a deleted endpoint")
	})

	if err := services.Delete(ctx, ic, svc.ID).ExtractErr(); err != nil {
		t.Fatalf("delete service: %v", err)
	}
	_, err = services.Get(ctx, ic, svc.ID).Extract()
	wantCode(t, err, http.StatusNotFound, "get a deleted service")
}

// TestBadInput: malformed and wrong requests get the right 4xx in
// Keystone's fault format, never a 500, and leave nothing behind.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	admin := adminSession(t)
	base, tok := cloud.authURL(), admin.token()
	name := uniq("acc-bad")
	big := []byte(`{"user": {"name": "` + name + `", "description": "` + strings.Repeat("x", 2<<20) + `"}}`)
	for _, c := range []struct {
		method, path, body string
		raw                []byte
		want               int
	}{
		{"POST", "/v3/users", `{`, nil, 400},
		{"POST", "/v3/users", `[]`, nil, 400},
		{"POST", "/v3/users", `{"user": "` + name + `"}`, nil, 400},
		{"POST", "/v3/users", `{"user": {}}`, nil, 400},
		{"POST", "/v3/users", `{"user": {"name": 5}}`, nil, 400},
		{"POST", "/v3/users", `{"user": {"name": "` + name + `", "enabled": "yes"}}`, nil, 400},
		{"POST", "/v3/users", `{"user": {"name": "` + name + `", "domain_id": "no-such-domain"}}`, nil, 400},
		{"POST", "/v3/users", `{"user": {"name": "` + name + `"}} trailing`, nil, 400},
		{"POST", "/v3/users", "", big, 413},
		{"POST", "/v3/projects", `{"project": {"name": "` + name + `", "tags": "not-a-list"}}`, nil, 400},
		{"POST", "/v3/projects", `{"project": {"name": "` + name + `", "parent_id": "no-such-project"}}`, nil, 404}, // Keystone: ProjectNotFound
		{"POST", "/v3/projects", `{"project": {"name": ""}}`, nil, 400},
		{"POST", "/v3/domains", `{"domain": {"name": ["x"]}}`, nil, 400},
		{"POST", "/v3/roles", `{"role": {"name": "` + strings.Repeat("r", 256) + `"}}`, nil, 400},
		{"POST", "/v3/groups", `{"group": null}`, nil, 400},
		{"PATCH", "/v3/users/" + tokenUser(t, admin).ID, `{"user": {"enabled": null}}`, nil, 400},
		{"POST", "/v3/auth/tokens", `{"auth": {}}`, nil, 400},
		{"POST", "/v3/auth/tokens", `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "password": "x"}}}}}`, nil, 400},
		{"POST", "/v3/auth/tokens", `{"auth": {"identity": {"methods": ["totp"]}}}`, nil, 401},
		{"GET", "/v3/no-such-collection", "", nil, 404},
		{"PUT", "/v3/users", `{}`, nil, 405},
	} {
		body := c.raw
		if body == nil && c.body != "" {
			body = []byte(c.body)
		}
		code, out := callRaw(t, c.method, base+c.path, tok, body)
		shown := c.body
		if len(shown) > 80 {
			shown = shown[:80] + "..."
		}
		if code != c.want {
			t.Errorf("%s %s %s: %d %v, want %d", c.method, c.path, shown, code, out, c.want)
			continue
		}
		e, _ := out["error"].(map[string]any)
		if e == nil || e["code"] != float64(code) || e["message"] == "" || e["title"] == "" {
			t.Errorf("%s %s %s: %d with body %v, want a Keystone fault", c.method, c.path, shown, code, out)
		}
	}
	// None of the refused creations left a user or project behind.
	pages, err := users.List(admin.ic, users.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if us, _ := users.ExtractUsers(pages); len(us) != 0 {
		t.Errorf("refused creations left users %+v", us)
	}
	pages, err = projects.List(admin.ic, projects.ListOpts{Name: name}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 0 {
		t.Errorf("refused creations left projects %+v", ps)
	}
}
