package identity

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// Helpers shared by the API tests: request bodies, token issue, fixtures
// made through the API, and checks of Keystone's fault body.

const tokensPath = "/identity/v3/auth/tokens"

// pwAuth is an auth body for the password method; user is the "user"
// object (without password), scope may be nil.
func pwAuth(user map[string]any, password string, scope any) map[string]any {
	u := map[string]any{"password": password}
	for k, v := range user {
		u[k] = v
	}
	auth := map[string]any{"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": u}}}
	if scope != nil {
		auth["scope"] = scope
	}
	return map[string]any{"auth": auth}
}

// tokenAuth is an auth body for the token method.
func tokenAuth(tok string, scope any) map[string]any {
	auth := map[string]any{"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": tok}}}
	if scope != nil {
		auth["scope"] = scope
	}
	return map[string]any{"auth": auth}
}

// appCredAuth is an auth body for the application_credential method.
func appCredAuth(cred map[string]any) map[string]any {
	return map[string]any{"auth": map[string]any{"identity": map[string]any{
		"methods": []string{"application_credential"}, "application_credential": cred}}}
}

func byName(name, domainID string) map[string]any {
	return map[string]any{"name": name, "domain": map[string]any{"id": domainID}}
}

func projectScope(id string) map[string]any {
	return map[string]any{"project": map[string]any{"id": id}}
}

func domainScope(id string) map[string]any {
	return map[string]any{"domain": map[string]any{"id": id}}
}

var systemScope = map[string]any{"system": map[string]any{"all": true}}

// issue posts an auth body.
func (tc *testCloud) issue(body any, query ...string) response {
	tc.t.Helper()
	path := tokensPath
	if len(query) > 0 {
		path += "?" + query[0]
	}
	return tc.do("POST", path, "", body)
}

// mustToken issues a token, failing unless it is created, and returns the
// token string and its body.
func (tc *testCloud) mustToken(body any) (string, map[string]any) {
	tc.t.Helper()
	res := tc.must(201, tc.issue(body))
	tok := res.Header.Get("X-Subject-Token")
	if tok == "" {
		tc.t.Fatalf("no X-Subject-Token: %s", res.Body)
	}
	return tok, res.JSON(tc.t)["token"].(map[string]any)
}

// validate returns GET /v3/auth/tokens for subject, asked with the admin token.
func (tc *testCloud) validate(subject string, query ...string) response {
	tc.t.Helper()
	path := tokensPath
	if len(query) > 0 {
		path += "?" + query[0]
	}
	return tc.do("GET", path, tc.admin, nil, "X-Subject-Token", subject)
}

// usable reports whether tok is accepted as X-Auth-Token (GET of the
// caller's own token); anything but 200 and 401 fails the test.
func (tc *testCloud) usable(tok string) bool {
	tc.t.Helper()
	res := tc.do("GET", "/identity/v3/auth/projects", tok, nil)
	switch res.StatusCode {
	case 200:
		return true
	case 401:
		checkFault(tc.t, res, 401)
		if res.Header.Get("WWW-Authenticate") == "" {
			tc.t.Errorf("401 without WWW-Authenticate")
		}
		return false
	}
	tc.t.Fatalf("auth/projects: %d %s", res.StatusCode, res.Body)
	return false
}

// checkFault checks a Keystone fault: {"error": {"code", "title", "message"}}
// with the wanted status.
func checkFault(t *testing.T, res response, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("fault Content-Type %q", ct)
	}
	m := res.JSON(t)
	e, ok := m["error"].(map[string]any)
	if !ok || len(m) != 1 {
		t.Fatalf("not a Keystone fault: %s", res.Body)
	}
	if code, _ := e["code"].(float64); int(code) != status {
		t.Errorf("fault code %v, want %d", e["code"], status)
	}
	if e["title"] != http.StatusText(status) {
		t.Errorf("fault title %v, want %q", e["title"], http.StatusText(status))
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("fault without message: %s", res.Body)
	}
}

// fault sends a request and checks it fails with status in Keystone's format.
func (tc *testCloud) fault(status int, res response) response {
	tc.t.Helper()
	checkFault(tc.t, res, status)
	return res
}

// obj returns body[key] as an object.
func obj(t *testing.T, res response, key string) map[string]any {
	t.Helper()
	m, ok := res.JSON(t)[key].(map[string]any)
	if !ok {
		t.Fatalf("no %q object in %s", key, res.Body)
	}
	return m
}

// list returns body[key] as a list of objects.
func list(t *testing.T, res response, key string) []map[string]any {
	t.Helper()
	raw, ok := res.JSON(t)[key].([]any)
	if !ok {
		t.Fatalf("no %q list in %s", key, res.Body)
	}
	out := make([]map[string]any, 0, len(raw))
	for _, v := range raw {
		out = append(out, v.(map[string]any))
	}
	return out
}

// field returns the sorted values of one field of a list of objects.
func field(items []map[string]any, name string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, fmt.Sprint(it[name]))
	}
	sort.Strings(out)
	return out
}

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	sort.Strings(g)
	sort.Strings(w)
	return slices.Equal(g, w)
}

// Fixtures, made through the API with the cloud admin's token.

func (tc *testCloud) mkDomain(name string) string {
	tc.t.Helper()
	res := tc.must(201, tc.do("POST", "/identity/v3/domains", tc.admin, map[string]any{"domain": map[string]any{"name": name}}))
	return obj(tc.t, res, "domain")["id"].(string)
}

func (tc *testCloud) mkProject(name, domainID, parentID string) string {
	tc.t.Helper()
	p := map[string]any{"name": name}
	if domainID != "" {
		p["domain_id"] = domainID
	}
	if parentID != "" {
		p["parent_id"] = parentID
	}
	res := tc.must(201, tc.do("POST", "/identity/v3/projects", tc.admin, map[string]any{"project": p}))
	return obj(tc.t, res, "project")["id"].(string)
}

func (tc *testCloud) mkUser(name, domainID, password string) string {
	tc.t.Helper()
	u := map[string]any{"name": name, "domain_id": domainID}
	if password != "" {
		u["password"] = password
	}
	res := tc.must(201, tc.do("POST", "/identity/v3/users", tc.admin, map[string]any{"user": u}))
	return obj(tc.t, res, "user")["id"].(string)
}

func (tc *testCloud) mkGroup(name, domainID string) string {
	tc.t.Helper()
	res := tc.must(201, tc.do("POST", "/identity/v3/groups", tc.admin, map[string]any{"group": map[string]any{"name": name, "domain_id": domainID}}))
	return obj(tc.t, res, "group")["id"].(string)
}

func (tc *testCloud) mkRole(name string) string {
	tc.t.Helper()
	res := tc.must(201, tc.do("POST", "/identity/v3/roles", tc.admin, map[string]any{"role": map[string]any{"name": name}}))
	return obj(tc.t, res, "role")["id"].(string)
}

// roleID returns the id of a global role by name.
func (tc *testCloud) roleID(name string) string {
	tc.t.Helper()
	r, err := tc.svc.RoleByName(context.Background(), name)
	if err != nil {
		tc.t.Fatal(err)
	}
	return r.ID
}

func (tc *testCloud) projectID(name string) string {
	tc.t.Helper()
	p, err := tc.svc.ProjectByName(context.Background(), "default", name)
	if err != nil {
		tc.t.Fatal(err)
	}
	return p.ID
}

func (tc *testCloud) userID(name string) string {
	tc.t.Helper()
	u, err := tc.svc.UserByName(context.Background(), "default", name)
	if err != nil {
		tc.t.Fatal(err)
	}
	return u.ID
}

// grant PUTs a grant path such as "projects/P/users/U/roles/R".
func (tc *testCloud) grant(path string) {
	tc.t.Helper()
	tc.must(204, tc.do("PUT", "/identity/v3/"+path, tc.admin, nil))
}

// count returns the number of rows of a table.
func (tc *testCloud) count(table string) int {
	tc.t.Helper()
	var n int
	if err := tc.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		tc.t.Fatal(err)
	}
	return n
}

// counts returns the row counts of every identity table, to check that a
// failed request left nothing behind.
func (tc *testCloud) counts() map[string]int {
	tc.t.Helper()
	out := map[string]int{}
	for _, t := range []string{"domains", "projects", "project_tags", "users", "groups", "user_groups", "roles",
		"implied_roles", "assignments", "app_credentials", "revocation_events"} {
		out[t] = tc.count(t)
	}
	return out
}

// newUserToken makes a user in the Default domain with role on project
// (by id) and returns its id and a token scoped to the project.
func (tc *testCloud) newUserToken(name, role, projectID string) (string, string) {
	tc.t.Helper()
	uid := tc.mkUser(name, "default", name+"-pw")
	tc.grant("projects/" + projectID + "/users/" + uid + "/roles/" + tc.roleID(role))
	tok, _ := tc.mustToken(pwAuth(map[string]any{"id": uid}, name+"-pw", projectScope(projectID)))
	return uid, tok
}
