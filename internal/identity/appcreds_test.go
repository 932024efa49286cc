package identity

import (
	"slices"
	"testing"
	"time"
)

func (tc *testCloud) mkAppCred(user, token string, body map[string]any) map[string]any {
	tc.t.Helper()
	res := tc.must(201, tc.do("POST", "/identity/v3/users/"+user+"/application_credentials", token,
		map[string]any{"application_credential": body}))
	return obj(tc.t, res, "application_credential")
}

func appCredRoleNames(ac map[string]any) []string {
	out := []string{}
	for _, r := range ac["roles"].([]any) {
		out = append(out, r.(map[string]any)["name"].(string))
	}
	slices.Sort(out)
	return out
}

func TestAppCredentials(t *testing.T) {
	tc := newTestCloud(t)
	demoID, demoProject := tc.userID("demo"), tc.projectID("demo")
	base := "/identity/v3/users/" + demoID + "/application_credentials"

	ac := tc.mkAppCred(demoID, tc.demo, map[string]any{"name": "ci", "description": "for CI"})
	secret, _ := ac["secret"].(string)
	if len(secret) < 32 {
		t.Fatalf("secret %q", secret)
	}
	if ac["project_id"] != demoProject || ac["user_id"] != demoID || ac["unrestricted"] != false || ac["description"] != "for CI" {
		t.Errorf("credential %v", ac)
	}
	if ac["expires_at"] != nil {
		t.Errorf("expires_at %v", ac["expires_at"])
	}
	// By default, the roles of the token it was made with.
	if got := appCredRoleNames(ac); !slices.Equal(got, []string{"member", "reader"}) {
		t.Errorf("roles %v", got)
	}
	id := ac["id"].(string)

	t.Run("secret shown once", func(t *testing.T) {
		got := obj(t, tc.must(200, tc.do("GET", base+"/"+id, tc.demo, nil)), "application_credential")
		if _, ok := got["secret"]; ok {
			t.Errorf("GET shows the secret")
		}
		if got["name"] != "ci" {
			t.Errorf("GET %v", got)
		}
		l := list(t, tc.must(200, tc.do("GET", base, tc.demo, nil)), "application_credentials")
		if len(l) != 1 || l[0]["id"] != id {
			t.Fatalf("list %v", l)
		}
		if _, ok := l[0]["secret"]; ok {
			t.Errorf("list shows the secret")
		}
		if l := list(t, tc.must(200, tc.do("GET", base+"?name=nope", tc.demo, nil)), "application_credentials"); len(l) != 0 {
			t.Errorf("name filter: %v", l)
		}
		var hash string
		tc.db.QueryRow(`SELECT secret_hash FROM app_credentials WHERE id=?`, id).Scan(&hash)
		if hash == "" || hash == secret {
			t.Errorf("stored secret %q", hash)
		}
	})
	t.Run("authenticate", func(t *testing.T) {
		refs := map[string]map[string]any{
			"by id":                  {"id": id, "secret": secret},
			"by name and user id":    {"name": "ci", "user": map[string]any{"id": demoID}, "secret": secret},
			"by name and user name":  {"name": "ci", "user": byName("demo", "default"), "secret": secret},
			"by name and user dname": {"name": "ci", "user": map[string]any{"name": "demo", "domain": map[string]any{"name": "Default"}}, "secret": secret},
		}
		for name, ref := range refs {
			sub, tok := tc.mustToken(appCredAuth(ref))
			if tok["project"].(map[string]any)["id"] != demoProject {
				t.Errorf("%s: project %v", name, tok["project"])
			}
			if m := strList(tok["methods"]); !slices.Equal(m, []string{"application_credential"}) {
				t.Errorf("%s: methods %v", name, m)
			}
			if got := roleNames(tok); !slices.Equal(got, []string{"member", "reader"}) {
				t.Errorf("%s: roles %v", name, got)
			}
			if a, _ := tok["application_credential"].(map[string]any); a["id"] != id || a["restricted"] != true {
				t.Errorf("%s: application_credential %v", name, tok["application_credential"])
			}
			if !tc.usable(sub) {
				t.Errorf("%s: token not usable", name)
			}
		}
		wrong := tc.issue(appCredAuth(map[string]any{"id": id, "secret": "wrong"}))
		unknown := tc.issue(appCredAuth(map[string]any{"id": newID(), "secret": secret}))
		checkFault(t, wrong, 401)
		checkFault(t, unknown, 401)
		if string(wrong.Body) != string(unknown.Body) {
			t.Errorf("wrong secret %s, unknown credential %s", wrong.Body, unknown.Body)
		}
		tc.fault(401, tc.issue(appCredAuth(map[string]any{"name": "ci", "user": map[string]any{"id": tc.userID("admin")}, "secret": secret})))
		tc.fault(400, tc.issue(appCredAuth(map[string]any{"id": id})))
		// A credential decides its own scope.
		body := appCredAuth(map[string]any{"id": id, "secret": secret})
		body["auth"].(map[string]any)["scope"] = projectScope(demoProject)
		tc.fault(401, tc.issue(body))
		// Its tokens cannot be rescoped.
		sub, _ := tc.mustToken(appCredAuth(map[string]any{"id": id, "secret": secret}))
		tc.fault(403, tc.issue(tokenAuth(sub, nil)))
	})
	t.Run("role subset", func(t *testing.T) {
		ro := tc.mkAppCred(demoID, tc.demo, map[string]any{"name": "ro", "roles": []any{map[string]any{"name": "reader"}}})
		if got := appCredRoleNames(ro); !slices.Equal(got, []string{"reader"}) {
			t.Fatalf("roles %v", got)
		}
		_, tok := tc.mustToken(appCredAuth(map[string]any{"id": ro["id"], "secret": ro["secret"]}))
		if got := roleNames(tok); !slices.Equal(got, []string{"reader"}) {
			t.Errorf("token roles %v", got)
		}
		byID := tc.mkAppCred(demoID, tc.demo, map[string]any{"name": "ro2", "roles": []any{map[string]any{"id": tc.roleID("member")}}})
		if got := appCredRoleNames(byID); !slices.Equal(got, []string{"member"}) {
			t.Errorf("roles %v", got)
		}
		// A role the user does not have there cannot be delegated.
		before := tc.count("app_credentials")
		tc.fault(400, tc.do("POST", base, tc.demo, map[string]any{"application_credential": map[string]any{
			"name": "up", "roles": []any{map[string]any{"name": "admin"}}}}))
		tc.fault(404, tc.do("POST", base, tc.demo, map[string]any{"application_credential": map[string]any{
			"name": "up", "roles": []any{map[string]any{"name": "no-such-role"}}}}))
		tc.fault(400, tc.do("POST", base, tc.demo, map[string]any{"application_credential": map[string]any{
			"name": "up", "roles": []any{map[string]any{}}}}))
		if n := tc.count("app_credentials"); n != before {
			t.Errorf("refused creates left %d rows, had %d", n, before)
		}
	})
	t.Run("restricted", func(t *testing.T) {
		sub, _ := tc.mustToken(appCredAuth(map[string]any{"id": id, "secret": secret}))
		tc.fault(403, tc.do("POST", base, sub, map[string]any{"application_credential": map[string]any{"name": "child"}}))
		tc.fault(403, tc.do("DELETE", base+"/"+id, sub, nil))
		tc.must(200, tc.do("GET", base+"/"+id, tc.demo, nil))
	})
	t.Run("unrestricted", func(t *testing.T) {
		un := tc.mkAppCred(demoID, tc.demo, map[string]any{"name": "un", "unrestricted": true})
		if un["unrestricted"] != true {
			t.Fatalf("unrestricted %v", un["unrestricted"])
		}
		sub, tok := tc.mustToken(appCredAuth(map[string]any{"id": un["id"], "secret": un["secret"]}))
		if a := tok["application_credential"].(map[string]any); a["restricted"] != false {
			t.Errorf("restricted %v", a["restricted"])
		}
		child := tc.mkAppCred(demoID, sub, map[string]any{"name": "child"})
		tc.must(204, tc.do("DELETE", base+"/"+child["id"].(string), sub, nil))
	})
	t.Run("chosen secret", func(t *testing.T) {
		mine := tc.mkAppCred(demoID, tc.demo, map[string]any{"name": "mine", "secret": "my-own-secret"})
		if mine["secret"] != "my-own-secret" {
			t.Errorf("secret %v", mine["secret"])
		}
		tc.mustToken(appCredAuth(map[string]any{"id": mine["id"], "secret": "my-own-secret"}))
	})
	t.Run("expiry", func(t *testing.T) {
		exp := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Second)
		soon := tc.mkAppCred(demoID, tc.demo, map[string]any{"name": "soon", "expires_at": exp.Format("2006-01-02T15:04:05Z")})
		if soon["expires_at"] != exp.Format("2006-01-02T15:04:05.000000") {
			t.Errorf("expires_at %v", soon["expires_at"])
		}
		sub, tok := tc.mustToken(appCredAuth(map[string]any{"id": soon["id"], "secret": soon["secret"]}))
		if got := tokenTime(t, tok, "expires_at"); !got.Equal(exp) {
			t.Errorf("token expires at %v, credential at %v", got, exp)
		}
		// Once the credential has expired, neither it nor its tokens work.
		tc.db.Exec(`UPDATE app_credentials SET expires_at=? WHERE id=?`, timeText(time.Now().Add(-time.Minute)), soon["id"])
		tc.svc.changed()
		tc.fault(401, tc.issue(appCredAuth(map[string]any{"id": soon["id"], "secret": soon["secret"]})))
		if tc.usable(sub) {
			t.Error("token of an expired credential still usable")
		}
		tc.fault(400, tc.do("POST", base, tc.demo, map[string]any{"application_credential": map[string]any{
			"name": "past", "expires_at": "2001-01-01T00:00:00Z"}}))
		tc.fault(400, tc.do("POST", base, tc.demo, map[string]any{"application_credential": map[string]any{
			"name": "bad", "expires_at": "tomorrow"}}))
	})
	t.Run("duplicate name", func(t *testing.T) {
		tc.fault(409, tc.do("POST", base, tc.demo, map[string]any{"application_credential": map[string]any{"name": "ci"}}))
	})
	t.Run("needs a project token of the user", func(t *testing.T) {
		unscoped, _ := tc.mustToken(pwAuth(map[string]any{"id": demoID}, testDemoPassword, "unscoped"))
		tc.fault(403, tc.do("POST", base, unscoped, map[string]any{"application_credential": map[string]any{"name": "x"}}))
		// Not for another user, even as admin.
		tc.fault(403, tc.do("POST", base, tc.admin, map[string]any{"application_credential": map[string]any{"name": "x"}}))
		// Others cannot see them; the cloud admin can.
		tc.fault(403, tc.do("GET", "/identity/v3/users/"+tc.userID("admin")+"/application_credentials", tc.demo, nil))
		tc.must(200, tc.do("GET", base, tc.admin, nil))
		// Someone else's credential id under one's own user is not found.
		adminAC := tc.mkAppCred(tc.userID("admin"), tc.admin, map[string]any{"name": "adm"})
		tc.fault(404, tc.do("GET", base+"/"+adminAC["id"].(string), tc.demo, nil))
		tc.fault(404, tc.do("DELETE", base+"/"+adminAC["id"].(string), tc.demo, nil))
	})
	t.Run("user loses the role", func(t *testing.T) {
		pid := tc.mkProject("acp", "", "")
		uid, tok := tc.newUserToken("acuser", "member", pid)
		c := tc.mkAppCred(uid, tok, map[string]any{"name": "c"})
		sub, _ := tc.mustToken(appCredAuth(map[string]any{"id": c["id"], "secret": c["secret"]}))
		tc.must(204, tc.do("DELETE", "/identity/v3/projects/"+pid+"/users/"+uid+"/roles/"+tc.roleID("member"), tc.admin, nil))
		if tc.usable(sub) {
			t.Error("credential token usable after the user lost the role")
		}
		tc.fault(401, tc.issue(appCredAuth(map[string]any{"id": c["id"], "secret": c["secret"]})))
	})
	t.Run("delete revokes", func(t *testing.T) {
		sub, _ := tc.mustToken(appCredAuth(map[string]any{"id": id, "secret": secret}))
		tc.must(200, tc.validate(sub))
		tc.must(204, tc.do("DELETE", base+"/"+id, tc.demo, nil))
		tc.fault(404, tc.validate(sub))
		if tc.usable(sub) {
			t.Error("token of a deleted credential usable")
		}
		tc.fault(401, tc.issue(appCredAuth(map[string]any{"id": id, "secret": secret})))
		tc.fault(404, tc.do("GET", base+"/"+id, tc.demo, nil))
		tc.fault(404, tc.do("DELETE", base+"/"+id, tc.demo, nil))
		// The user's other tokens are untouched.
		if !tc.usable(tc.demo) {
			t.Error("deleting a credential revoked the user's token")
		}
	})
	t.Run("user disabled", func(t *testing.T) {
		// Disabling a user deletes its credentials: enabling it again does
		// not bring them back.
		pid := tc.mkProject("acp3", "", "")
		uid, tok := tc.newUserToken("acuser3", "member", pid)
		c := tc.mkAppCred(uid, tok, map[string]any{"name": "c"})
		tc.must(200, tc.do("PATCH", "/identity/v3/users/"+uid, tc.admin, map[string]any{"user": map[string]any{"enabled": false}}))
		tc.must(200, tc.do("PATCH", "/identity/v3/users/"+uid, tc.admin, map[string]any{"user": map[string]any{"enabled": true}}))
		tc.fault(401, tc.issue(appCredAuth(map[string]any{"id": c["id"], "secret": c["secret"]})))
		if l := list(t, tc.must(200, tc.do("GET", "/identity/v3/users/"+uid+"/application_credentials", tc.admin, nil)), "application_credentials"); len(l) != 0 {
			t.Errorf("credentials of a disabled user: %v", l)
		}
	})
	t.Run("project deleted", func(t *testing.T) {
		pid := tc.mkProject("acp4", "", "")
		uid, tok := tc.newUserToken("acuser4", "member", pid)
		tc.mkAppCred(uid, tok, map[string]any{"name": "c"})
		tc.must(204, tc.do("DELETE", "/identity/v3/projects/"+pid, tc.admin, nil))
		if l := list(t, tc.must(200, tc.do("GET", "/identity/v3/users/"+uid+"/application_credentials", tc.admin, nil)), "application_credentials"); len(l) != 0 {
			t.Errorf("credentials for a deleted project: %v", l)
		}
	})
	t.Run("roles named twice", func(t *testing.T) {
		twice := tc.mkAppCred(demoID, tc.demo, map[string]any{"name": "twice", "roles": []any{
			map[string]any{"name": "reader"}, map[string]any{"id": tc.roleID("reader")}}})
		if got := appCredRoleNames(twice); !slices.Equal(got, []string{"reader"}) {
			t.Errorf("roles %v", got)
		}
	})
	t.Run("user deleted", func(t *testing.T) {
		pid := tc.mkProject("acp2", "", "")
		uid, tok := tc.newUserToken("acuser2", "member", pid)
		tc.mkAppCred(uid, tok, map[string]any{"name": "c"})
		tc.must(204, tc.do("DELETE", "/identity/v3/users/"+uid, tc.admin, nil))
		var n int
		tc.db.QueryRow(`SELECT count(*) FROM app_credentials WHERE user_id=?`, uid).Scan(&n)
		if n != 0 {
			t.Errorf("%d credentials left of a deleted user", n)
		}
	})
}
