package identity

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput: every write API answers malformed, mistyped, incomplete and
// oversize bodies with a 4xx in Keystone's fault format, and leaves every
// table as it was.
func TestBadInput(t *testing.T) {
	tc := newTestCloud(t)
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")
	gid := tc.mkGroup("bad", "default")
	rid := tc.mkRole("bad")
	dom := tc.mkDomain("Bad")
	endpoints := []struct {
		method, path, key, token string
	}{
		{"POST", "users", "user", tc.admin},
		{"PATCH", "users/" + demoID, "user", tc.admin},
		{"POST", "projects", "project", tc.admin},
		{"PATCH", "projects/" + demoProject, "project", tc.admin},
		{"POST", "domains", "domain", tc.admin},
		{"PATCH", "domains/" + dom, "domain", tc.admin},
		{"POST", "groups", "group", tc.admin},
		{"PATCH", "groups/" + gid, "group", tc.admin},
		{"POST", "roles", "role", tc.admin},
		{"PATCH", "roles/" + rid, "role", tc.admin},
		{"POST", "users/" + demoID + "/application_credentials", "application_credential", tc.demo},
		{"POST", "users/" + demoID + "/password", "user", tc.demo},
		{"PUT", "projects/" + demoProject + "/tags", "tags", tc.admin},
		{"POST", "auth/tokens", "auth", ""},
	}
	bodies := map[string]string{
		"empty":            ``,
		"blank":            "  \n ",
		"malformed":        `{"x": `,
		"not json":         `name=foo`,
		"trailing data":    `{} {}`,
		"null":             `null`,
		"array":            `[]`,
		"string":           `"user"`,
		"number":           `42`,
		"entity is string": `{"%s": "x"}`,
		"entity is null":   `{"%s": null}`,
		"entity is array":  `{"%s": []}`,
		"entity is number": `{"%s": 1}`,
		"deep nesting":     strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
		"bad utf-8":        "{\"%s\": {\"name\": \"\xff\xfe\"}}",
		"huge number":      `{"%s": {"name": 1e999}}`,
	}
	for _, ep := range endpoints {
		for name, body := range bodies {
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, ep.key)
			}
			t.Run(ep.method+" "+ep.path+" "+name, func(t *testing.T) {
				before := tc.counts()
				res := tc.do(ep.method, v3+ep.path, ep.token, []byte(body))
				if res.StatusCode == 200 && ep.key == "tags" && name == "entity is array" {
					return // {"tags": []} is a valid body: no tags
				}
				if res.StatusCode != 400 {
					t.Fatalf("status %d, want 400: %s", res.StatusCode, res.Body)
				}
				checkFault(t, res, 400)
				if after := tc.counts(); !sameCounts(before, after) {
					t.Errorf("tables changed: %v -> %v", before, after)
				}
			})
		}
	}
	// The tags PUT above may have emptied demo's tags; nothing else changed.
}

func TestWrongTypesAndMissingFields(t *testing.T) {
	tc := newTestCloud(t)
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")
	cases := []struct {
		method, path, token string
		body                any
		status              int
	}{
		// Users.
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": 123}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": ""}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "   "}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": strings.Repeat("n", 256)}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "enabled": "yes"}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "enabled": nil}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "password": 5}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "password": strings.Repeat("p", MaxPasswordLength+1)}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "domain_id": 1}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "domain_id": "nowhere"}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "options": "o"}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "x", "default_project_id": []int{1}}}, 400},
		{"POST", "users", "", map[string]any{"usr": map[string]any{"name": "x"}}, 400},
		{"POST", "users", "", map[string]any{"user": map[string]any{"name": "demo"}}, 409},
		{"PATCH", "users/" + demoID, "", map[string]any{"user": map[string]any{"name": 1}}, 400},
		{"PATCH", "users/" + demoID, "", map[string]any{"user": map[string]any{"name": ""}}, 400},
		{"PATCH", "users/" + demoID, "", map[string]any{"user": map[string]any{"enabled": 0}}, 400},
		{"PATCH", "users/" + demoID, "", map[string]any{"user": map[string]any{"default_project_id": 7}}, 400},
		// Projects.
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": 123}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"description": "no name"}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "x", "tags": "a"}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "x", "tags": []int{1}}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "x", "tags": []string{"a/b"}}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "x", "enabled": "true"}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "x", "parent_id": 5}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "x", "is_domain": "no"}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "x", "options": []any{}}}, 400},
		{"POST", "projects", "", map[string]any{"project": map[string]any{"name": "demo"}}, 409},
		{"PATCH", "projects/" + demoProject, "", map[string]any{"project": map[string]any{"description": 1}}, 400},
		{"PATCH", "projects/" + demoProject, "", map[string]any{"project": map[string]any{"tags": []string{"a", "a"}}}, 400},
		{"PATCH", "projects/" + demoProject, "", map[string]any{"project": map[string]any{"id": newID()}}, 400},
		{"PATCH", "projects/" + demoProject, "", map[string]any{"project": map[string]any{"name": "admin"}}, 409},
		{"PUT", "projects/" + demoProject + "/tags", "", map[string]any{"tags": []any{1}}, 400},
		{"PUT", "projects/" + demoProject + "/tags", "", map[string]any{"tags": []string{strings.Repeat("t", 256)}}, 400},
		// Domains.
		{"POST", "domains", "", map[string]any{"domain": map[string]any{"name": false}}, 400},
		{"POST", "domains", "", map[string]any{"domain": map[string]any{}}, 400},
		{"POST", "domains", "", map[string]any{"domain": map[string]any{"name": "x", "description": 3}}, 400},
		{"POST", "domains", "", map[string]any{"domain": map[string]any{"name": "x", "explicit_domain_id": 3}}, 400},
		{"POST", "domains", "", map[string]any{"domain": map[string]any{"name": "Default"}}, 409},
		{"PATCH", "domains/default", "", map[string]any{"domain": map[string]any{"enabled": "false"}}, 400},
		// Groups and roles.
		{"POST", "groups", "", map[string]any{"group": map[string]any{"name": []string{"g"}}}, 400},
		{"POST", "groups", "", map[string]any{"group": map[string]any{}}, 400},
		{"POST", "groups", "", map[string]any{"group": map[string]any{"name": "g", "domain_id": "nowhere"}}, 400},
		{"POST", "roles", "", map[string]any{"role": map[string]any{"name": 1}}, 400},
		{"POST", "roles", "", map[string]any{"role": map[string]any{}}, 400},
		{"POST", "roles", "", map[string]any{"role": map[string]any{"name": "r", "options": 1}}, 400},
		{"POST", "roles", "", map[string]any{"role": map[string]any{"name": "admin"}}, 409},
		// Application credentials.
		{"POST", "users/" + demoID + "/application_credentials", "demo", map[string]any{"application_credential": map[string]any{}}, 400},
		{"POST", "users/" + demoID + "/application_credentials", "demo", map[string]any{"application_credential": map[string]any{"name": 1}}, 400},
		{"POST", "users/" + demoID + "/application_credentials", "demo", map[string]any{"application_credential": map[string]any{"name": "a", "unrestricted": "yes"}}, 400},
		{"POST", "users/" + demoID + "/application_credentials", "demo", map[string]any{"application_credential": map[string]any{"name": "a", "roles": "member"}}, 400},
		{"POST", "users/" + demoID + "/application_credentials", "demo", map[string]any{"application_credential": map[string]any{"name": "a", "roles": []any{"member"}}}, 400},
		{"POST", "users/" + demoID + "/application_credentials", "demo", map[string]any{"application_credential": map[string]any{"name": "a", "expires_at": 5}}, 400},
		{"POST", "users/" + demoID + "/application_credentials", "demo", map[string]any{"application_credential": map[string]any{"name": "a", "bogus": 1}}, 400},
		// Password change.
		{"POST", "users/" + demoID + "/password", "demo", map[string]any{"user": map[string]any{"password": "new"}}, 400},
		{"POST", "users/" + demoID + "/password", "demo", map[string]any{"user": map[string]any{"original_password": testDemoPassword}}, 400},
		{"POST", "users/" + demoID + "/password", "demo", map[string]any{"user": map[string]any{"original_password": testDemoPassword, "password": ""}}, 400},
		{"POST", "users/" + demoID + "/password", "demo", map[string]any{"user": map[string]any{"original_password": 1, "password": "x"}}, 400},
		{"POST", "users/" + demoID + "/password", "demo", map[string]any{"user": map[string]any{"original_password": testDemoPassword, "password": strings.Repeat("p", MaxPasswordLength+1)}}, 400},
	}
	for _, c := range cases {
		tok := tc.admin
		if c.token == "demo" {
			tok = tc.demo
		}
		before := tc.counts()
		res := tc.do(c.method, v3+c.path, tok, c.body)
		if res.StatusCode != c.status {
			t.Errorf("%s %s %v: %d, want %d: %s", c.method, c.path, c.body, res.StatusCode, c.status, res.Body)
			continue
		}
		checkFault(t, res, c.status)
		if after := tc.counts(); !sameCounts(before, after) {
			t.Errorf("%s %s %v changed the tables: %v -> %v", c.method, c.path, c.body, before, after)
		}
	}
	// Demo's password and token still work: no failed change went through.
	tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword, nil))
	if !tc.usable(tc.demo) {
		t.Fatal("demo's token was revoked by a failed request")
	}
}

func TestBadAuthBodies(t *testing.T) {
	tc := newTestCloud(t)
	demoID := tc.userID("demo")
	id := func(m map[string]any) map[string]any { return map[string]any{"auth": map[string]any{"identity": m}} }
	withScope := func(sc any) map[string]any {
		return pwAuth(map[string]any{"id": demoID}, testDemoPassword, sc)
	}
	cases := map[string]struct {
		body   any
		status int
	}{
		"no auth":              {map[string]any{}, 400},
		"auth null":            {map[string]any{"auth": nil}, 400},
		"auth string":          {map[string]any{"auth": "x"}, 400},
		"no identity":          {map[string]any{"auth": map[string]any{}}, 400},
		"no methods":           {id(map[string]any{}), 400},
		"empty methods":        {id(map[string]any{"methods": []string{}}), 400},
		"methods string":       {id(map[string]any{"methods": "password"}), 400},
		"methods numbers":      {id(map[string]any{"methods": []int{1}}), 400},
		"no password object":   {id(map[string]any{"methods": []string{"password"}}), 400},
		"password string":      {id(map[string]any{"methods": []string{"password"}, "password": "x"}), 400},
		"no user":              {id(map[string]any{"methods": []string{"password"}, "password": map[string]any{}}), 400},
		"user without id/name": {pwAuth(map[string]any{}, "x", nil), 400},
		"name without domain":  {pwAuth(map[string]any{"name": "demo"}, testDemoPassword, nil), 400},
		"empty domain":         {pwAuth(map[string]any{"name": "demo", "domain": map[string]any{}}, testDemoPassword, nil), 400},
		"user id number":       {pwAuth(map[string]any{"id": 5}, "x", nil), 400},
		"password number":      {id(map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{"id": demoID, "password": 5}}}), 400},
		"token id number":      {id(map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": 5}}), 400},
		"scope number":         {withScope(5), 400},
		"scope other string":   {withScope("everything"), 400},
		"scope empty":          {withScope(map[string]any{}), 400},
		"project empty":        {withScope(map[string]any{"project": map[string]any{}}), 400},
		"project no domain":    {withScope(map[string]any{"project": map[string]any{"name": "demo"}}), 400},
		"project string":       {withScope(map[string]any{"project": "demo"}), 400},
		"domain empty":         {withScope(map[string]any{"domain": map[string]any{}}), 400},
		"system string":        {withScope(map[string]any{"system": "all"}), 400},
		"system not all":       {withScope(map[string]any{"system": map[string]any{}}), 400},
		"app cred no secret":   {appCredAuth(map[string]any{"id": newID()}), 400},
		"app cred string":      {id(map[string]any{"methods": []string{"application_credential"}, "application_credential": "x"}), 400},
		// Valid shapes that authenticate nobody.
		"unknown method":   {id(map[string]any{"methods": []string{"kerberos"}}), 401},
		"unknown app cred": {appCredAuth(map[string]any{"id": newID(), "secret": "s"}), 401},
	}
	before := tc.counts()
	for name, c := range cases {
		res := tc.issue(c.body)
		if res.StatusCode != c.status {
			t.Errorf("%s: %d, want %d: %s", name, res.StatusCode, c.status, res.Body)
			continue
		}
		checkFault(t, res, c.status)
		if res.Header.Get("X-Subject-Token") != "" {
			t.Errorf("%s: X-Subject-Token on a failure", name)
		}
	}
	if after := tc.counts(); !sameCounts(before, after) {
		t.Errorf("failed auth changed the tables: %v -> %v", before, after)
	}
}

func TestOversizeBody(t *testing.T) {
	tc := newTestCloud(t)
	big := bytes.Repeat([]byte(" "), 1<<20)
	for _, path := range []string{"auth/tokens", "users", "projects", "domains", "groups", "roles"} {
		body := append([]byte(`{"user": {"name": "x", "description": "`), bytes.Repeat([]byte("a"), 1<<20)...)
		body = append(body, `"}}`...)
		tok := tc.admin
		if path == "auth/tokens" {
			tok = ""
		}
		before := tc.counts()
		checkFault(t, tc.do("POST", v3+path, tok, body), http.StatusRequestEntityTooLarge)
		// Whitespace padding counts too.
		padded := append([]byte(`{"user": {"name": "y"}}`), big...)
		checkFault(t, tc.do("POST", v3+path, tok, padded), http.StatusRequestEntityTooLarge)
		if after := tc.counts(); !sameCounts(before, after) {
			t.Errorf("%s: oversize body changed the tables", path)
		}
	}
	// Just under the limit is fine.
	desc := strings.Repeat("a", 1<<20-100)
	tc.must(201, tc.do("POST", v3+"users", tc.admin, map[string]any{"user": map[string]any{"name": "roomy", "description": desc}}))
}

func TestUnknownIDsAndMethods(t *testing.T) {
	tc := newTestCloud(t)
	nope := newID()
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")
	member := tc.roleID("member")
	notFound := []call{
		{"GET", v3 + "users/" + nope, nil},
		{"DELETE", v3 + "users/" + nope, nil},
		{"GET", v3 + "users/" + nope + "/projects", nil},
		{"GET", v3 + "users/" + nope + "/groups", nil},
		{"GET", v3 + "projects/" + nope, nil},
		{"PATCH", v3 + "projects/" + nope, map[string]any{"project": map[string]any{"description": "x"}}},
		{"DELETE", v3 + "projects/" + nope, nil},
		{"PUT", v3 + "projects/" + nope + "/tags/x", nil},
		{"GET", v3 + "domains/" + nope, nil},
		{"DELETE", v3 + "domains/" + nope, nil},
		{"GET", v3 + "groups/" + nope, nil},
		{"PATCH", v3 + "groups/" + nope, map[string]any{"group": map[string]any{"description": "x"}}},
		{"DELETE", v3 + "groups/" + nope, nil},
		{"GET", v3 + "groups/" + nope + "/users", nil},
		{"PUT", v3 + "groups/" + nope + "/users/" + demoID, nil},
		{"GET", v3 + "roles/" + nope, nil},
		{"PATCH", v3 + "roles/" + nope, map[string]any{"role": map[string]any{"description": "x"}}},
		{"DELETE", v3 + "roles/" + nope, nil},
		{"GET", v3 + "roles/" + nope + "/implies", nil},
		{"PUT", v3 + "roles/" + nope + "/implies/" + member, nil},
		{"GET", v3 + "roles/" + member + "/implies/" + nope, nil},
		{"GET", v3 + "projects/" + demoProject + "/users/" + nope + "/roles", nil},
		{"PUT", v3 + "projects/" + demoProject + "/users/" + demoID + "/roles/" + nope, nil},
		{"PUT", v3 + "domains/" + nope + "/users/" + demoID + "/roles/" + member, nil},
		{"GET", v3 + "users/" + demoID + "/application_credentials/" + nope, nil},
		{"DELETE", v3 + "users/" + demoID + "/application_credentials/" + nope, nil},
		{"GET", v3 + "no-such-collection", nil},
		{"GET", v3 + "users/" + demoID + "/nothing", nil},
		{"GET", "/identity/v2.0/tokens", nil},
	}
	tc.expect(t, tc.admin, 404, notFound...)
	// Another path with a known prefix but a method it does not serve.
	tc.expect(t, tc.admin, 405,
		call{"PATCH", tokensPath, map[string]any{}},
		call{"PUT", tokensPath, map[string]any{}},
		call{"POST", v3 + "users/" + demoID, map[string]any{}},
		call{"PUT", v3 + "users", map[string]any{}},
		call{"DELETE", v3 + "users", nil},
		call{"POST", v3 + "projects/" + demoProject, map[string]any{}},
		call{"PATCH", v3 + "role_assignments", nil},
		call{"GET", v3 + "users/" + demoID + "/password", nil},
		call{"POST", v3 + "auth/projects", nil},
	)
	// The same without a token: the method is refused before authentication
	// would be, or authentication is asked for; never a 500.
	res := tc.do("PATCH", tokensPath, "", map[string]any{})
	if res.StatusCode != 405 && res.StatusCode != 401 {
		t.Errorf("PATCH %s without a token: %d", tokensPath, res.StatusCode)
	}
	checkFault(t, res, res.StatusCode)
}

// TestNoInternalErrors throws odd but well-formed requests at the API and
// checks that none of them is a 500.
func TestNoInternalErrors(t *testing.T) {
	tc := newTestCloud(t)
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")
	odd := []string{"%00", "%2F", "..", "%20", strings.Repeat("x", 5000), "%ff", "default", "'%20OR%201=1", "Ω"}
	for _, id := range odd {
		for _, p := range []string{"users/", "projects/", "domains/", "groups/", "roles/", "projects/" + demoProject + "/tags/",
			"users/" + demoID + "/application_credentials/", "roles/" + id + "/implies/"} {
			for _, m := range []string{"GET", "DELETE", "PATCH", "HEAD", "PUT"} {
				res := tc.do(m, v3+p+id, tc.admin, map[string]any{"x": map[string]any{}})
				if res.StatusCode >= 500 {
					t.Errorf("%s %s%s: %d %s", m, p, id, res.StatusCode, res.Body)
				}
			}
		}
	}
	queries := []string{"users?enabled=maybe", "users?domain_id=%00", "projects?tags=,,,", "projects?not-tags=a,a",
		"projects?parent_id=" + strings.Repeat("p", 3000), "role_assignments?scope.project.id=x&include_subtree=1",
		"role_assignments?effective=true&include_names=true&scope.system=all", "role_assignments?user.id=x&effective",
		"roles?domain_id=x", "domains?enabled=0", "groups?domain_id=nowhere", "users/" + demoID + "/projects?enabled=no&name=x",
		"auth/projects?x=1", "projects?is_domain=true"}
	for _, q := range queries {
		res := tc.do("GET", v3+q, tc.admin, nil)
		if res.StatusCode >= 500 {
			t.Errorf("GET %s: %d %s", q, res.StatusCode, res.Body)
		}
	}
	// Headers.
	for _, sub := range []string{"", " ", "\t", strings.Repeat("g", 10000)} {
		res := tc.do("GET", tokensPath, tc.admin, nil, "X-Subject-Token", sub)
		if res.StatusCode >= 500 {
			t.Errorf("X-Subject-Token %q: %d", sub, res.StatusCode)
		}
	}
	res := tc.do("GET", v3+"users", strings.Repeat("t", 10000), nil)
	checkFault(t, res, 401)
}
